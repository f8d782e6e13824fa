"""The image lockfile against the emulator: lock, check, update, verify, and programs reading pins offline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pulumi_ucloud_images._api.client import reset_shared_clients
from pulumi_ucloud_images._cli import main
from pulumi_ucloud_images._cli.common import exit_code_for
from pulumi_ucloud_images._cli.lock import EXIT_OUT_OF_DATE
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator
from pulumi_ucloud_images._errors import LockfileError, NoImageFoundError
from pulumi_ucloud_images._lockfile import resolver as _pins_resolve
from pulumi_ucloud_images._lockfile import writer as _lockfile_write
from pulumi_ucloud_images._lockfile.lockfile import LOCKFILE_VERSION
from pulumi_ucloud_images._lockfile.pins import locked_lookup
from pulumi_ucloud_images._lookup import fetch_listing, lookup_images
from pulumi_ucloud_images._query import parse_query

SELECTIONS = """\
[settings]
region = "cn-bj2"

[selections.web]
image_type = "base"
os_type = "linux"
name_regex = '^Ubuntu 22\\.04'
architecture = "x86_64"
most_recent = true

[selections.legacy]
image_type = "Base"
name_regex = '^CentOS 7\\.2 '

[selections.golden-web]
project_id = "org-platform"
image_type = "custom"
name_regex = '^golden-web-'
most_recent = true
"""
WEB = {"image_type": "base", "os_type": "linux", "name_regex": r"^Ubuntu 22\.04", "architecture": "x86_64",
       "most_recent": True}
LEGACY = {"image_type": "Base", "name_regex": r"^CentOS 7\.2 "}
GOLDEN = {"project_id": "org-platform", "image_type": "custom", "name_regex": "^golden-web-", "most_recent": True}

Run = Callable[..., tuple[int, str, str]]
# CentOS 7.2 (uimage-f1chxn, the legacy selection) is past its end of life: locking it says so on stderr.
LEGACY_EOL = (
    "warning: selection 'legacy': image uimage-f1chxn 'CentOS 7.2 64位' in region cn-bj2 is past its end of life "
    "(2024/06/30, before 2026/12/01); set exclude_eol to leave such images out, or supported_until to require "
    "support until a date\n"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ucloud_emulator_env: Emulator) -> Path:
    """A repository directory holding the selection file, as the working directory, with the emulator set up."""
    (tmp_path / "ucloud-images.toml").write_text(SELECTIONS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["lock", *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def raw_lockfile(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "ucloud-images.lock.json").read_text(encoding="utf-8"))
    return data


def lockfile(directory: Path) -> dict[str, Any]:
    """The lockfile with each selection's own pin (channel ``latest``, one region) flattened with its query."""
    data = raw_lockfile(directory)
    flat: dict[str, Any] = {}
    for name, selection in data["selections"].items():
        ((region, image),) = selection["channels"]["latest"].items()
        flat[name] = {**image, "query": selection["query"], "region": region}
    return {**data, "selections": flat}


def as_format_1(directory: Path) -> dict[str, Any]:
    """The lockfile in ``directory`` as format 1 wrote it: one pin per selection, nothing format 2 adds."""
    added = ("image_type", "maintain_eol", "architecture")
    selections = {
        name: {key: value for key, value in entry.items() if key not in added}
        for name, entry in lockfile(directory)["selections"].items()
    }
    return {"selections": selections, "version": 1}


def pinned(directory: Path, name: str) -> str:
    return str(lockfile(directory)["selections"][name]["image_id"])


def publish_newer(emulator: Emulator, image_id: str, new_id: str, *, days: int = 1) -> None:
    """Publish a copy of ``image_id`` with a new ID, created ``days`` later: a newer image for the same query."""
    record = next(image for image in emulator.images(include_private=True) if image["ImageId"] == image_id)
    emulator.publish({**record, "ImageId": new_id, "CreateTime": record["CreateTime"] + days * 86400})


# -- lock -----------------------------------------------------------------------------------------------


def test_lock_pins_every_selection_with_query_region_name_and_times(project: Path, run: Run) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    code, out, err = run()
    assert (code, err) == (0, LEGACY_EOL)
    text = (project / "ucloud-images.lock.json").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert "CentOS 7.2 64位" in text  # names stay readable, not \u-escaped
    data = lockfile(project)
    assert data["version"] == LOCKFILE_VERSION
    assert list(data["selections"]) == ["golden-web", "legacy", "web"]
    for name, filters in (("web", WEB), ("legacy", LEGACY), ("golden-web", GOLDEN)):
        expected = lookup_images(filters).image
        entry = data["selections"][name]
        assert entry["image_id"] == expected.image_id
        assert entry["image_name"] == expected.image_name
        created = datetime.fromisoformat(entry["create_time"].replace("Z", "+00:00"))
        assert int(created.timestamp()) == expected.create_time
        assert entry["query"] == parse_query(filters).to_args()
        assert entry["region"] == "cn-bj2"
        locked_at = datetime.fromisoformat(entry["locked_at"].replace("Z", "+00:00"))
        assert locked_at.tzinfo is not None and locked_at >= before
        assert f"+ {name}: {expected.image_id}" in out
        assert (entry["image_type"], entry["architecture"]) == (expected.image_type, expected.architecture)
        assert entry["maintain_eol"] == (expected.maintain_eol or None)
    assert data["selections"]["legacy"]["image_id"] == "uimage-f1chxn"
    history = raw_lockfile(project)["history"]
    assert sorted((e["action"], e["selection"], e["channel"], e["region"], e["old_image"], e["new_image"])
                  for e in history) == sorted(
        ("lock", name, "latest", "cn-bj2", None, data["selections"][name]["image_id"]) for name in data["selections"]
    )


def test_lockfile_goes_next_to_the_selection_file_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ucloud_emulator_env: Emulator, run: Run
) -> None:
    infra = tmp_path / "infra"
    infra.mkdir()
    (infra / "images.toml").write_text(SELECTIONS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert run("--file", "infra/images.toml")[0] == 0
    assert pinned(infra, "legacy") == "uimage-f1chxn"
    assert not (tmp_path / "ucloud-images.lock.json").exists()


def test_selections_resolve_concurrently_and_share_fetched_pages(
    project: Path, run: Run, ucloud_emulator_env: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fourth selection with web's server-side filters (Base, Linux) reads the pages web reads: it must not
    # cost a single request more than resolving the other three alone.
    same_pages = SELECTIONS + "\n[selections.web-24]\nimage_type = 'base'\nos_type = 'linux'\n"
    same_pages += "name_regex = '^Ubuntu 24'\nmost_recent = true\n"
    (project / "ucloud-images.toml").write_text(same_pages, encoding="utf-8")
    for filters in (WEB, LEGACY, GOLDEN):
        lookup_images(filters)
    alone = ucloud_emulator_env.request_count
    reset_shared_clients()
    ucloud_emulator_env.reset_requests()

    barrier = threading.Barrier(4, timeout=10)

    def fetch_once_all_have_started(*args: Any, **kwargs: Any) -> Any:
        barrier.wait()  # breaks (and fails the lock) unless all four selections are being resolved at once
        return fetch_listing(*args, **kwargs)

    monkeypatch.setattr(_pins_resolve, "fetch_listing", fetch_once_all_have_started)
    code, _, err = run()
    assert (code, err) == (0, LEGACY_EOL)
    assert ucloud_emulator_env.request_count == alone
    assert pinned(project, "web-24") == lookup_images({**WEB, "name_regex": "^Ubuntu 24"}).image_id


def test_lock_with_nothing_changed_does_not_rewrite_the_file(
    project: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    run()
    before = (project / "ucloud-images.lock.json").read_bytes()

    def refuse(*args: Any) -> None:
        raise AssertionError("an unchanged lockfile was rewritten")

    monkeypatch.setattr(_lockfile_write, "write_lockfile", refuse)  # the command imports it when it runs
    code, out, _ = run()
    assert code == 0
    assert "up to date" in out
    assert (project / "ucloud-images.lock.json").read_bytes() == before


def test_a_selection_that_matches_nothing_fails_naming_it_and_writes_nothing(project: Path, run: Run) -> None:
    (project / "ucloud-images.toml").write_text(SELECTIONS + "\n[selections.ghost]\nname_regex = '^NoSuchOS'\n")
    code, _, err = run()
    assert code == 3
    assert "Selection 'ghost' of ucloud-images.toml: No image in region cn-bj2 matches" in err
    assert not (project / "ucloud-images.lock.json").exists()


# -- check and update ----------------------------------------------------------------------------------


def test_check_is_quiet_and_zero_without_drift(project: Path, run: Run) -> None:
    run()
    before = (project / "ucloud-images.lock.json").read_bytes()
    code, out, err = run("--check")
    assert (code, err) == (0, "")
    assert "up to date" in out
    assert (project / "ucloud-images.lock.json").read_bytes() == before


def test_check_shows_drift_when_a_newer_image_is_published(
    project: Path, run: Run, ucloud_emulator_env: Emulator
) -> None:
    run()
    old = pinned(project, "web")
    before = (project / "ucloud-images.lock.json").read_bytes()
    publish_newer(ucloud_emulator_env, old, "uimage-ub22nw")
    reset_shared_clients()  # a new CI run: a new process, no memo

    code, out, err = run("--check")
    assert code == EXIT_OUT_OF_DATE != 0
    assert err == ""
    drift = [line for line in out.splitlines() if line.startswith(("  ~", "  +", "  -"))]
    assert len(drift) == 1
    assert "  ! legacy: uimage-f1chxn 'CentOS 7.2 64位' created 2019-04-16T13:05:03Z is past its end of life " \
        "(2024/06/30)" in out.splitlines()
    assert drift[0].startswith("  ~ web: ")
    assert old in drift[0] and "uimage-ub22nw" in drift[0]
    assert drift[0].index(old) < drift[0].index("->") < drift[0].index("uimage-ub22nw")
    assert (project / "ucloud-images.lock.json").read_bytes() == before


def test_update_repins_only_the_named_selection(project: Path, run: Run, ucloud_emulator_env: Emulator) -> None:
    run()
    first = lockfile(project)["selections"]
    publish_newer(ucloud_emulator_env, first["web"]["image_id"], "uimage-ub22nw")
    publish_newer(ucloud_emulator_env, first["golden-web"]["image_id"], "uimage-gwnew1", days=30)
    reset_shared_clients()

    code, out, err = run("--update", "web")
    assert (code, err) == (0, "")
    after = lockfile(project)["selections"]
    assert after["web"]["image_id"] == "uimage-ub22nw"
    assert after["golden-web"] == first["golden-web"]  # drifted too, but not asked for: keeps its pin
    assert after["legacy"] == first["legacy"]
    assert "~ web: " in out and "golden-web" not in out

    reset_shared_clients()
    code, out, _ = run("--check")
    assert code == EXIT_OUT_OF_DATE
    assert "golden-web" in out and "uimage-gwnew1" in out
    assert "~ web:" not in out


def test_plain_lock_repins_everything_and_keeps_unchanged_entries_verbatim(
    project: Path, run: Run, ucloud_emulator_env: Emulator
) -> None:
    run()
    first = lockfile(project)["selections"]
    publish_newer(ucloud_emulator_env, first["web"]["image_id"], "uimage-ub22nw")
    reset_shared_clients()
    code, out, _ = run()
    assert code == 0
    after = lockfile(project)["selections"]
    assert after["web"]["image_id"] == "uimage-ub22nw"
    assert after["legacy"] == first["legacy"]  # same pin: locked_at does not churn
    assert "1 of 3 pin(s) changed" in out


def test_added_changed_and_removed_selections(project: Path, run: Run) -> None:
    run()
    first = lockfile(project)["selections"]
    edited = SELECTIONS.replace("name_regex = '^CentOS 7\\.2 '", "name_regex = '^CentOS 7\\.2 '\nzone = 'cn-bj2-02'")
    debian = "[selections.debian]\nname_regex = '^Debian 12'\narchitecture = 'x86_64'\nmost_recent = true\n"
    edited = edited.split("[selections.golden-web]")[0] + debian
    (project / "ucloud-images.toml").write_text(edited, encoding="utf-8")

    code, out, _ = run("--check")
    assert code == EXIT_OUT_OF_DATE
    assert "+ debian: " in out
    assert "~ legacy: uimage-f1chxn unchanged (query changed in the selection file: zone)" in out
    assert "- golden-web: " in out and "no longer in ucloud-images.toml" in out

    # --update NAME also pins what cannot keep a pin (new or changed queries) and drops removed selections.
    code, out, _ = run("--update", "web")
    assert code == 0
    after = lockfile(project)["selections"]
    assert sorted(after) == ["debian", "legacy", "web"]
    assert after["legacy"]["query"] == {**first["legacy"]["query"], "zone": "cn-bj2-02"}
    assert after["debian"]["image_id"] == lookup_images(name_regex="^Debian 12", architecture="x86_64",
                                                        most_recent=True).image_id
    assert after["web"] == first["web"]
    assert run("--check")[0] == 0


def test_update_of_an_unknown_selection_names_the_known_ones(project: Path, run: Run) -> None:
    code, _, err = run("--update", "nope")
    assert code == 2
    assert "Selection 'nope' is not in ucloud-images.toml; its selections are web, legacy, golden-web." in err


def test_check_without_a_lockfile_says_how_to_create_it(project: Path, run: Run) -> None:
    code, _, err = run("--check")
    assert code == 2
    assert "The lockfile ucloud-images.lock.json does not exist; run 'ucloud-images lock'" in err


def test_check_and_update_cannot_be_combined(project: Path, run: Run) -> None:
    code, _, err = run("--check", "--update", "web")
    assert code == 2
    assert "not allowed with argument --check" in err


def test_lock_runs_against_the_in_process_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Run
) -> None:
    (tmp_path / "ucloud-images.toml").write_text(SELECTIONS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert run("--emulator")[0] == 0
    assert pinned(tmp_path, "legacy") == "uimage-f1chxn"
    assert run("--emulator", "--check")[0] == 0


# -- verify --------------------------------------------------------------------------------------------


def test_verify_checks_every_pin_with_one_request_each(project: Path, run: Run, ucloud_emulator_env: Emulator) -> None:
    run()
    reset_shared_clients()
    ucloud_emulator_env.reset_requests()
    code, out, _ = run("--verify")
    assert code == 0
    assert sorted(request.params["ImageId"] for request in ucloud_emulator_env.requests) == sorted(
        entry["image_id"] for entry in lockfile(project)["selections"].values()
    )

    reset_shared_clients()
    ucloud_emulator_env.remove(pinned(project, "legacy"))
    ucloud_emulator_env.set_state(pinned(project, "web"), "Unavailable")
    code, out, _ = run("--verify")
    assert code == EXIT_OUT_OF_DATE
    assert "! legacy: the pinned image uimage-f1chxn no longer exists in region cn-bj2" in out
    assert f"! web: the pinned image {pinned(project, 'web')} is Unavailable in region cn-bj2, not Available" in out
    assert "golden-web" not in out


# -- programs reading a pin ----------------------------------------------------------------------------


def test_locked_lookup_reads_the_pin_without_any_request_or_credentials(
    project: Path, run: Run, ucloud_emulator_env: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    run()
    entry = lockfile(project)["selections"]["web"]
    ucloud_emulator_env.reset_requests()
    for name in ("UCLOUD_PUBLIC_KEY", "UCLOUD_PRIVATE_KEY", "UCLOUD_API_BASE_URL"):
        monkeypatch.delenv(name)
    nested = project / "stacks" / "web"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)  # the nearest lockfile upwards is found

    result = locked_lookup("web", parse_query({**WEB, "os_type": "LINUX"}))
    assert ucloud_emulator_env.request_count == 0
    assert result.image_id == entry["image_id"]
    assert result.ids == (entry["image_id"],)
    assert result.total_count == 1
    assert result.region == "cn-bj2"
    assert result.image.image_name == entry["image_name"]
    created = datetime.fromisoformat(entry["create_time"].replace("Z", "+00:00"))
    assert result.image.create_time == int(created.timestamp())
    assert locked_lookup("web", parse_query(WEB, region="cn-bj2")).image_id == entry["image_id"]


def test_locked_lookup_names_the_selection_and_every_differing_field(project: Path, run: Run) -> None:
    run()
    with pytest.raises(LockfileError) as error:
        locked_lookup("web", parse_query(WEB, name_regex="^Ubuntu 24", most_recent=False, features=["IPv6"]))
    message = str(error.value)
    assert "selection 'web'" in message
    assert "name_regex is '^Ubuntu 24' in code but '^Ubuntu 22\\\\.04' in the lockfile" in message
    assert "most_recent is False in code but True in the lockfile" in message
    assert "features is ['IPv6'] in code but [] in the lockfile" in message
    assert exit_code_for(error.value) == 2

    with pytest.raises(LockfileError, match=r"pin web of .* does not cover region 'cn-sh2'; it covers cn-bj2"):
        locked_lookup("web", parse_query(WEB, region="cn-sh2"))
    with pytest.raises(LockfileError, match=r"has no selection 'db' \(it has: golden-web, legacy, web\)"):
        locked_lookup("db", parse_query(WEB))


def test_locked_lookup_without_any_lockfile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LockfileError, match=r"No ucloud-images\.lock\.json was found in the working directory"):
        locked_lookup("web", parse_query(WEB))
    with pytest.raises(LockfileError, match=r"The lockfile elsewhere\.json does not exist"):
        locked_lookup("web", parse_query(WEB), path="elsewhere.json")


def test_verify_costs_one_request_and_fails_when_the_image_is_gone(
    project: Path, run: Run, ucloud_emulator_env: Emulator
) -> None:
    run()
    image_id = pinned(project, "web")
    reset_shared_clients()
    ucloud_emulator_env.reset_requests()
    settings = {"public_key": DEMO_PUBLIC_KEY, "private_key": DEMO_PRIVATE_KEY}
    result = locked_lookup("web", parse_query(WEB), verify=True, settings_args=settings)
    assert result.image_id == image_id
    assert result.image.state == "Available"
    assert [request.params.get("ImageId") for request in ucloud_emulator_env.requests] == [image_id]

    reset_shared_clients()
    ucloud_emulator_env.set_state(image_id, "Unavailable")
    with pytest.raises(NoImageFoundError, match=f"selection 'web'.*{image_id} is Unavailable in region cn-bj2, not"):
        locked_lookup("web", parse_query(WEB), verify=True, settings_args=settings)

    reset_shared_clients()
    ucloud_emulator_env.remove(image_id)
    with pytest.raises(NoImageFoundError, match=f"{image_id} no longer exists in region cn-bj2.*--update web"):
        locked_lookup("web", parse_query(WEB), verify=True)


def test_set_valued_filters_in_another_order_are_the_same_selection(project: Path, run: Run) -> None:
    features = SELECTIONS.replace("most_recent = true\n\n[selections.legacy]",
                                  "features = ['IPv6', 'CloudInit']\nmost_recent = true\n\n[selections.legacy]")
    (project / "ucloud-images.toml").write_text(features, encoding="utf-8")
    assert run()[0] == 0
    first = (project / "ucloud-images.lock.json").read_text(encoding="utf-8")
    assert lockfile(project)["selections"]["web"]["query"]["features"] == ["CloudInit", "IPv6"]

    # the selection file reordered: no re-pin, and the lockfile is not rewritten
    (project / "ucloud-images.toml").write_text(features.replace("['IPv6', 'CloudInit']", "['cloudinit', 'IPv6']"))
    code, out, _ = run()
    assert (code, out.startswith("ucloud-images.lock.json is up to date")) == (0, True)
    assert run("--check")[0] == 0 and run("--verify")[0] == 0

    # the lockfile reordered by hand, and the code in yet another order: still the same query
    path = project / "ucloud-images.lock.json"
    path.write_text(first.replace('"CloudInit",\n          "IPv6"', '"IPv6",\n          "CloudInit"'), encoding="utf-8")
    assert lockfile(project)["selections"]["web"]["query"]["features"] == ["IPv6", "CloudInit"]
    result = locked_lookup("web", parse_query(WEB, features=["IPv6", "CloudInit", "ipv6"]))
    assert result.image_id == lockfile(project)["selections"]["web"]["image_id"]
    assert run("--check")[0] == 0


# -- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            "[selections.web]\nname_regex '^Ubuntu'\n",
            ("The selection file ucloud-images.toml is not valid TOML: Expected '='", "(at line 2, column 12)"),
        ),
        ("[selections.web]\nname_regex = '^Ubuntu\n", ("is not valid TOML", "(at the end of the document, line 2)")),
        (
            "[selections.web]\nnme_regex = 'x'\n",
            ("In the selection file ucloud-images.toml, [selections.web]:", "'nme_regex'"),
        ),
        ("[selections.web]\nos_type = 'solaris'\n", ("[selections.web]: invalid os_type 'solaris'", "Linux, Windows")),
        ("[selections.web]\nstates = []\n", ("[selections.web]: invalid states", "Available")),
        ("[selections.web]\nfeatures = ['IPv6', 7]\n", ("[selections.web]: invalid features entry 7: must be",)),
        ("[settings]\nregion = 'cn-bj2'\n", ("The selection file ucloud-images.toml has no [selections.NAME] table",)),
        ("[selections]\n", ("ucloud-images.toml declares no selections; add a [selections.NAME] table.",)),
        ("[selections]\nweb = 'ubuntu'\n", ("[selections.web] must be a table, not str 'ubuntu'.",)),
        ("[selections.'my web']\nname_regex = 'x'\n", ("the selection name 'my web' is not allowed",)),
        ("[settings]\nzone = 'x'\n[selections.a]\n", ("[settings] has the unknown key 'zone'; the keys are region",)),
        ("[setting]\nregion = 'x'\n", ("the top-level key 'setting' is unknown; expected [settings]",)),
    ],
)
def test_malformed_selection_files_name_the_file_and_the_key_or_line(
    project: Path, run: Run, text: str, fragments: tuple[str, ...]
) -> None:
    (project / "ucloud-images.toml").write_text(text, encoding="utf-8")
    code, out, err = run()
    assert code == 2
    assert out == ""
    for fragment in fragments:
        assert fragment in err, err
    assert err.count("\n") == 1  # one sentence
    assert not (project / "ucloud-images.lock.json").exists()


def test_keys_in_the_selection_file_are_refused_without_echoing_them(project: Path, run: Run) -> None:
    with_key = SELECTIONS.replace('region = "cn-bj2"', "private_key = 'hunter2-secret'")
    (project / "ucloud-images.toml").write_text(with_key, encoding="utf-8")
    code, _, err = run()
    assert code == 2
    assert "[settings] must not hold private_key" in err and "UCLOUD_PRIVATE_KEY" in err
    assert "hunter2-secret" not in err


def test_missing_selection_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Run) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run("--file", "nowhere.toml")
    assert code == 2
    assert "The selection file nowhere.toml does not exist" in err


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda text: text.replace('"version": 1', '"version": 1,'), "is not valid JSON at line"),
        (lambda text: "<<<<<<< HEAD\n" + text, "is not valid JSON at line 1 column 1"),
        (lambda text: text.replace('"version": 1', '"version": 7'), "has format version 7, which this"),
        (
            lambda text: text.replace('"image_id": "uimage-f1chxn"', '"image_id": 12'),
            "is malformed at selections.legacy.image_id: expected a non-empty image ID, found int 12.",
        ),
        (
            lambda text: text.replace('"image_id": "uimage-f1chxn",', ""),
            "is malformed at selections.legacy.image_id: expected a non-empty image ID, found nothing.",
        ),
        (
            lambda text: text.replace('"image_id": "uimage-f1chxn"', '"image_id": "uimage-f1chxn", "note": 1'),
            "is malformed at selections.legacy.note: expected only the keys architecture, create_time, image_id",
        ),
        (
            lambda text: text.replace('"create_time": "2019-04-16T13:05:03Z"', '"create_time": "yesterday"'),
            "is malformed at selections.legacy.create_time: expected a UTC ISO-8601 time or null, found str",
        ),
        (
            lambda text: text.replace('"name_regex": "^CentOS', '"name_regx": "^CentOS'),
            "is malformed at selections.legacy.query: unknown filter 'name_regx'",
        ),
        (lambda text: "[]", "is malformed at the top level: expected an object with 'version' and 'selections'"),
        (
            lambda text: text.replace('"region": "cn-bj2"', '"region": ""', 1),
            "is malformed at selections.golden-web.region: expected a non-empty region, found str ''.",
        ),
        (
            lambda text: text.replace('"legacy": {', '"my legacy": {'),
            "is malformed at selections.my legacy: expected a selection name of letters, digits, '_', '.' and '-'",
        ),
        (
            lambda text: text.replace('"image_id": "uimage-f1chxn"', '"image_id": "uimage-f1chxn", "image_id": "x"'),
            "has the key 'image_id' twice in one object",
        ),
        (
            lambda text: text.replace('"selections": {', '"selections": {"web": {},', 1),
            "has the key 'web' twice in one object (a merge left both sides?); keep one and run",
        ),
    ],
)
def test_malformed_lockfiles_name_the_file_and_the_line_or_key(
    project: Path, run: Run, edit: Callable[[str], str], message: str
) -> None:
    """On a lockfile of format 1 (read everywhere), which ``lock`` writes again only once it can read it."""
    run()
    path = project / "ucloud-images.lock.json"
    path.write_text(json.dumps(as_format_1(project), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    broken = path.read_bytes()
    code, _, err = run("--check")
    assert code == 2
    assert f"The lockfile ucloud-images.lock.json {message}" in err, err
    assert err.count("\n") == 1
    with pytest.raises(LockfileError, match=r"ucloud-images\.lock\.json"):
        locked_lookup("web", parse_query(WEB))
    assert run()[0] == 2  # `lock` does not overwrite a file it cannot read
    assert path.read_bytes() == broken


# -- atomic writes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_leaves_the_old_lockfile_intact(
    project: Path, run: Run, ucloud_emulator_env: Emulator, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    run()
    before = (project / "ucloud-images.lock.json").read_bytes()
    publish_newer(ucloud_emulator_env, pinned(project, "web"), "uimage-ub22nw")
    reset_shared_clients()
    written: list[str] = []
    real_fsync = os.fsync

    def fail(*args: Any) -> None:
        if failing == "fsync":  # the new text is in the temporary file, half-way through the replacement
            real_fsync(*args)
            written.extend(path.name for path in project.iterdir())
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    code, _, err = run()
    assert code == 2
    assert "The lockfile ucloud-images.lock.json cannot be written (No space left on device)" in err
    assert "it was left unchanged" in err
    assert (project / "ucloud-images.lock.json").read_bytes() == before
    assert sorted(path.name for path in project.iterdir()) == ["ucloud-images.lock.json", "ucloud-images.toml"]
    if failing == "fsync":
        assert any(name.endswith(".tmp") for name in written)  # there was a temporary file, and it is gone


# -- secrets and the real command ----------------------------------------------------------------------


def test_the_private_key_never_reaches_output_or_the_lockfile(
    project: Path, run: Run, ucloud_emulator_env: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UCLOUD_PRIVATE_KEY")
    code, out, err = run("--private-key", DEMO_PRIVATE_KEY)
    assert code == 0
    code, out2, err2 = run("--check", "--private-key", "wrong-" + DEMO_PRIVATE_KEY)
    assert code == 5 and "RetCode 171" in err2
    text = (project / "ucloud-images.lock.json").read_text(encoding="utf-8")
    for shown in (out, err, out2, err2, text):
        assert DEMO_PRIVATE_KEY not in shown


def console_script() -> str:
    script = Path(sys.executable).parent / "ucloud-images"
    assert script.exists(), f"the ucloud-images console script is not installed next to {sys.executable}"
    return str(script)


@pytest.mark.slow
def test_the_installed_command_locks_and_checks_in_a_pipeline(project: Path, ucloud_emulator_env: Emulator) -> None:
    env = {**os.environ}

    def command(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [console_script(), "lock", *argv], cwd=project, env=env, capture_output=True, text=True, timeout=60
        )

    locked = command()
    assert locked.returncode == 0, locked.stderr
    assert command("--check").returncode == 0
    old = pinned(project, "web")
    publish_newer(ucloud_emulator_env, old, "uimage-ub22nw")
    drift = command("--check")
    assert drift.returncode == EXIT_OUT_OF_DATE
    assert f"~ web: {old} " in drift.stdout and "-> uimage-ub22nw " in drift.stdout
    updated = command("--update", "web")
    assert updated.returncode == 0, updated.stderr
    assert pinned(project, "web") == "uimage-ub22nw"
    assert command("--check").returncode == 0


# -- two writers, links, leftovers and files that are not lockfiles --------------------------------------


def _stale_pins(directory: Path, *names: str) -> None:
    """Point the named pins at an image no query resolves to, so an update must re-pin them."""
    path = directory / "ucloud-images.lock.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    for name in names:
        data["selections"][name]["channels"]["latest"]["cn-bj2"]["image_id"] = f"uimage-old{name[:3]}"
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def test_concurrent_updates_take_turns_and_keep_every_pin(
    project: Path, run: Run, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run()[0] == 0
    _stale_pins(project, "web", "legacy")
    inside: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    real_resolve = _pins_resolve.resolve_pins  # the command imports it when it runs

    def slow_resolve(names: Any, selections: Any, client: Any, revoked: Any) -> Any:
        inside.append(threading.current_thread().name)
        if len(inside) > 1:
            overlaps.append(tuple(inside))
        try:
            time.sleep(0.3)  # long enough for the other update to reach this point, were it not held back
            return real_resolve(names, selections, client, revoked)
        finally:
            inside.remove(threading.current_thread().name)

    monkeypatch.setattr(_pins_resolve, "resolve_pins", slow_resolve)
    codes: dict[str, int] = {}

    def update(name: str) -> None:
        codes[name] = main(["lock", "--update", name])

    threads = [threading.Thread(target=update, args=(name,), name=name) for name in ("web", "legacy")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert codes == {"web": 0, "legacy": 0}
    assert overlaps == []  # one read-modify-write at a time
    pins = lockfile(project)["selections"]
    assert pins["legacy"]["image_id"] == "uimage-f1chxn"
    assert not pins["web"]["image_id"].startswith("uimage-old")
    assert "waiting for another 'ucloud-images lock'" in capsys.readouterr().err
    assert sorted(path.name for path in project.iterdir()) == ["ucloud-images.lock.json", "ucloud-images.toml"]


@pytest.mark.slow
def test_concurrent_update_processes_lose_no_pin(project: Path, run: Run) -> None:
    assert run()[0] == 0
    for _ in range(3):
        _stale_pins(project, "web", "legacy")
        commands = [
            subprocess.Popen([console_script(), "lock", "--update", name], cwd=project, env={**os.environ},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name in ("web", "legacy")
        ]
        assert [command.wait(60) for command in commands] == [0, 0]
        pins = lockfile(project)["selections"]
        assert [name for name in ("web", "legacy") if pins[name]["image_id"].startswith("uimage-old")] == []


def test_a_symlinked_lockfile_is_updated_through_the_link(project: Path, run: Run, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    link = project / "ucloud-images.lock.json"
    link.symlink_to(shared / "pins.json")  # dangling: the first lock creates the target
    assert run()[0] == 0
    assert link.is_symlink() and (shared / "pins.json").is_file()
    _stale_pins(project, "legacy")
    code, out, _ = run("--update", "legacy")
    assert code == 0 and "~ legacy: uimage-oldleg" in out
    assert link.is_symlink() and os.readlink(link) == str(shared / "pins.json")
    data = json.loads((shared / "pins.json").read_text())
    assert data["selections"]["legacy"]["channels"]["latest"]["cn-bj2"]["image_id"] == "uimage-f1chxn"
    assert sorted(path.name for path in shared.iterdir()) == ["pins.json"]  # no lock or temporary file left


def test_the_lock_is_taken_beside_the_real_lockfile(tmp_path: Path) -> None:
    target = tmp_path / "real" / "pins.json"
    target.parent.mkdir()
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    one.symlink_to(target)
    two.symlink_to(target)
    with _lockfile_write.exclusive(one):
        assert (target.parent / ".pins.json.lock").exists()
        held = pytest.raises(LockfileError, match=r"Another 'ucloud-images lock' has been updating .*two\.json")
        with held, _lockfile_write.exclusive(two, wait=0.2):  # the other link: the same lock
            pass
    assert not (target.parent / ".pins.json.lock").exists()


def test_temporary_files_a_killed_write_left_are_removed_by_the_next_lock(project: Path, run: Run) -> None:
    assert run()[0] == 0
    left = project / ".ucloud-images.lock.json.k1ll3d_x.tmp"
    left.write_text('{"half": ', encoding="utf-8")
    other = project / ".ucloud-images.lock.json.notmine.tmp"  # not a name lock makes: kept
    other.write_text("", encoding="utf-8")
    _stale_pins(project, "legacy")
    assert run("--update", "legacy")[0] == 0
    assert not left.exists() and other.exists()


@pytest.mark.slow
def test_a_write_killed_before_its_rename_leaves_a_file_the_next_run_removes(project: Path, run: Run) -> None:
    assert run()[0] == 0
    _stale_pins(project, "legacy")
    before = (project / "ucloud-images.lock.json").read_bytes()
    killer = (
        "import os, signal, sys\n"
        "os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)\n"
        "from pulumi_ucloud_images._cli import main\n"
        "sys.exit(main(['lock', '--update', 'legacy']))\n"
    )
    done = subprocess.run([sys.executable, "-c", killer], cwd=project, env={**os.environ}, capture_output=True,
                          timeout=60)
    assert done.returncode == -9
    assert (project / "ucloud-images.lock.json").read_bytes() == before  # never half-written
    leftovers = sorted(path.name for path in project.iterdir() if path.name.endswith(".tmp"))
    assert len(leftovers) == 1 and leftovers[0].startswith(".ucloud-images.lock.json.")
    assert run("--update", "legacy")[0] == 0
    assert sorted(path.name for path in project.iterdir()) == ["ucloud-images.lock.json", "ucloud-images.toml"]


@pytest.mark.timeout(30)  # reading a FIFO would wait for a writer for ever
@pytest.mark.parametrize("flag", ["--lockfile", "--file"])
@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda directory: _mkfifo(directory / "pipe"),
         "cannot be read: it is a FIFO (named pipe), not a regular file."),
        (lambda directory: Path("/dev/full"), "cannot be read: it is a character device, not a regular file."),
        (lambda directory: Path("/dev/zero"), "cannot be read: it is a character device, not a regular file."),
        (lambda directory: directory, "cannot be read: it is a directory, not a regular file."),
        (
            lambda directory: _write(directory / "big", " " * (4 * 1024 * 1024 + 1)),
            "cannot be read: it is larger than 4 MiB, far more than such a file ever holds.",
        ),
    ],
)
def test_only_regular_files_of_a_sane_size_are_read(
    project: Path, run: Run, tmp_path: Path, flag: str, make: Callable[[Path], Path], problem: str
) -> None:
    odd = tmp_path / "odd"
    odd.mkdir()
    path = make(odd)
    what = "lockfile" if flag == "--lockfile" else "selection file"
    for mode in (["--check"], []):
        code, out, err = run(flag, str(path), *mode)
        assert (code, out) == (2, "")
        assert err == f"ucloud-images: error: The {what} {path} {problem}\n"
    if flag == "--lockfile":
        with pytest.raises(LockfileError, match=re.escape(problem)):
            locked_lookup("web", parse_query(WEB), path=path)


def _mkfifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("flag", "text", "problem"),
    [
        ("--lockfile", "[" * 100_000, "nests arrays or objects too deeply to be a lockfile; fix it, or delete it"),
        ("--file", "a = " + "[" * 100_000, "nests arrays or tables too deeply to be a selection file."),
        ("--lockfile", '{"version": 1, "selections": {"web": ' + "[" * 500 + "]" * 500 + "}}",
         "is malformed at selections.web: expected an object, found list [[[[...]]]]."),
    ],
)
def test_deep_nesting_is_one_sentence(project: Path, run: Run, flag: str, text: str, problem: str) -> None:
    path = _write(project / "deep", text)
    code, _, err = run(flag, str(path), "--check")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert problem in err


def test_a_selection_without_a_region_is_said_before_missing_keys(
    project: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("UCLOUD_REGION", "UCLOUD_PUBLIC_KEY", "UCLOUD_PRIVATE_KEY"):
        monkeypatch.delenv(name)
    (project / "ucloud-images.toml").write_text("[selections.web]\nname_regex = 'x'\n", encoding="utf-8")
    code, _, err = run()
    assert code == 2
    assert err == (
        "ucloud-images: error: Selection 'web' of ucloud-images.toml has no region; set region in it or in "
        "[settings], or set UCLOUD_REGION or the region of the ~/.ucloud profile (--profile).\n"
    )


def test_settings_errors_name_the_selection_files_settings(project: Path, run: Run) -> None:
    (project / "ucloud-images.toml").write_text(SELECTIONS.replace('region = "cn-bj2"', 'profile = "prod"'))
    code, _, err = run()
    assert code == 2
    assert err == (
        "ucloud-images: error: The UCloud profile 'prod' is in neither ~/.ucloud/config.json (no such file) nor "
        "~/.ucloud/credential.json (no such file).\n"
    )
    (project / "ucloud-images.toml").write_text(SELECTIONS.replace('region = "cn-bj2"', 'base_url = "ftp://x"'))
    code, _, err = run()
    assert code == 2
    assert "Invalid base_url 'ftp://x' (from base_url in [settings] of ucloud-images.toml)" in err
