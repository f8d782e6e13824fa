"""Golden-image governance through the command: channels, promotion, rollback, revocation, deprecation,
history and one pin across regions, against the emulator (CopyCustomImage's Copying state included)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pulumi_ucloud_images._api.client import reset_shared_clients
from pulumi_ucloud_images._cli import main
from pulumi_ucloud_images._emulator.service import Emulator
from pulumi_ucloud_images._lockfile.lockfile import Lockfile

SELECTIONS = """\
[settings]
region = "cn-bj2"

[selections.web]
project_id = "org-platform"
image_type = "custom"
name_regex = '^golden-web-'
most_recent = true
channels = ["dev", "prod"]
"""
NEWEST, OLDER = "uimage-gw0314", "uimage-gw0307"
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ucloud_emulator_env: Emulator) -> Path:
    (tmp_path / "ucloud-images.toml").write_text(SELECTIONS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        reset_shared_clients()  # each run of the command is a new process: nothing memoised
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def lockfile_bytes(project: Path) -> bytes:
    return (project / "ucloud-images.lock.json").read_bytes()


def data(project: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(lockfile_bytes(project))
    return loaded


def hide_newest(emulator: Emulator) -> None:
    """Make the older golden image the newest match, so that a later publish moves ``latest``."""
    emulator.set_state(NEWEST, "Making")


def test_declared_channels_start_empty_and_say_what_fills_them(project: Path, run: Run) -> None:
    assert run("lock")[0] == 0
    channels = data(project)["selections"]["web"]["channels"]
    assert channels["dev"] == {} and channels["prod"] == {}
    assert channels["latest"]["cn-bj2"]["image_id"] == NEWEST
    code, out, err = run("find", "--lock", "web@prod")
    assert (code, out) == (2, "")
    assert "Channel web@prod of" in err and "is empty; fill it with 'ucloud-images promote web --to prod'" in err
    code, out, err = run("find", "--lock", "web@qa")
    assert code == 2 and "has no channel 'qa' (its declared channels: dev, prod)" in err
    assert run("find", "--lock", "web")[1] == f"{NEWEST}\n"


def test_promote_rollback_and_history(project: Path, run: Run, ucloud_emulator_env: Emulator) -> None:
    hide_newest(ucloud_emulator_env)
    assert run("lock")[0] == 0
    code, out, _ = run("promote", "web", "--to", "prod", "--note", "first release")
    assert code == 0 and f"cn-bj2: (empty) -> {OLDER}" in out
    assert run("find", "--lock", "web@prod")[1] == f"{OLDER}\n"
    # A new golden image is baked: lock moves latest only; prod stays until promoted.
    ucloud_emulator_env.set_state(NEWEST, "Available")
    assert run("lock", "--update", "web")[0] == 0
    assert run("find", "--lock", "web")[1] == f"{NEWEST}\n"
    assert run("find", "--lock", "web@prod")[1] == f"{OLDER}\n"
    assert run("promote", "web", "--to", "dev")[0] == 0
    assert run("promote", "web", "--to", "prod", "--from", "dev")[0] == 0
    assert run("find", "--lock", "web@prod")[1] == f"{NEWEST}\n"
    code, out, _ = run("rollback", "web", "--channel", "prod")
    assert code == 0 and f"cn-bj2: {NEWEST} -> {OLDER}" in out
    assert run("find", "--lock", "web@prod")[1] == f"{OLDER}\n"
    code, _, err = run("rollback", "web", "--channel", "prod")
    assert code == 2 and "holds no earlier images for web@prod" in err
    code, out, _ = run("history", "web", "--output", "json")
    entries = json.loads(out)
    assert [(e["action"], e["channel"], e["old_image"], e["new_image"]) for e in entries] == [
        ("rollback", "prod", NEWEST, OLDER),
        ("promote", "prod", OLDER, NEWEST),
        ("promote", "dev", None, NEWEST),
        ("update", "latest", OLDER, NEWEST),
        ("promote", "prod", None, OLDER),
        ("lock", "latest", None, OLDER),
    ]
    assert entries[-2]["note"] == "first release" and entries[0]["time"] >= entries[-1]["time"]
    code, out, _ = run("history")
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "ACTION", "PIN", "REGION", "OLD", "NEW", "NOTE"]
    assert lines[1].split()[1:5] == ["rollback", "web@prod", "cn-bj2", NEWEST]
    # The history only grows: every earlier entry is kept, in order, by every write.
    assert run("lock", "--check")[0] == 0


def test_rollback_refuses_latest_and_a_revoked_image_and_writes_nothing(
    project: Path, run: Run, ucloud_emulator_env: Emulator
) -> None:
    hide_newest(ucloud_emulator_env)
    assert run("lock")[0] == 0
    assert run("promote", "web", "--to", "prod")[0] == 0
    ucloud_emulator_env.set_state(NEWEST, "Available")
    assert run("lock", "--update", "web")[0] == 0
    assert run("promote", "web", "--to", "prod")[0] == 0
    assert run("revoke", OLDER, "--reason", "CVE-2026-0002")[0] == 0
    before = lockfile_bytes(project)
    code, out, err = run("rollback", "web", "--channel", "prod")
    assert (code, out) == (2, "")
    assert f"would put it on image {OLDER} in cn-bj2, revoked since" in err and "rollback refuses it" in err
    code, out, err = run("rollback", "web", "--channel", "latest")
    assert (code, out) == (2, "") and "moves only with 'ucloud-images lock --update web'" in err
    assert lockfile_bytes(project) == before
    assert run("find", "--lock", "web@prod")[1] == f"{NEWEST}\n"


def test_an_image_cannot_replace_itself(project: Path, run: Run) -> None:
    assert run("lock")[0] == 0
    assert run("promote", "web", "--to", "prod")[0] == 0
    before = lockfile_bytes(project)
    code, _, err = run("deprecate", NEWEST, "--replacement", NEWEST)
    assert code == 2 and "cannot be its own replacement" in err
    code, _, err = run("deprecate", NEWEST, "--replacement", "web@prod")
    assert code == 2 and f"web@prod holds {NEWEST} itself" in err
    assert lockfile_bytes(project) == before


def test_revocation_warns_before_its_date_and_fails_from_it(project: Path, run: Run) -> None:
    assert run("lock")[0] == 0
    assert run("promote", "web", "--to", "prod")[0] == 0
    later = (datetime.now(timezone.utc) + timedelta(days=10)).date().isoformat()
    code, out, _ = run("revoke", NEWEST, "--reason", "CVE-2026-0001 in openssl", "--at", later)
    assert code == 0 and f"Revoked {NEWEST} from {later}" in out and "web [cn-bj2], web@prod [cn-bj2]" in out
    code, out, err = run("find", "--lock", "web@prod")
    assert (code, out) == (0, f"{NEWEST}\n")
    assert f"warning: the pin web@prod holds image {NEWEST}, which will be revoked on {later}" in err
    code, out, _ = run("lock", "--check")
    assert code == 0 and "1 pin(s) on images with a revocation scheduled" not in out  # two pins hold it
    assert "2 pin(s) on images with a revocation scheduled" in out
    # Now in force.
    assert run("revoke", NEWEST, "--reason", "CVE-2026-0001 in openssl")[0] == 0
    code, out, err = run("find", "--lock", "web@prod")
    assert (code, out) == (2, "")
    assert f"The pin web@prod holds image {NEWEST}, revoked since" in err
    assert re.search(r"CVE-2026-0001 in openssl; recorded in \S*ucloud-images\.lock\.json on \d{4}-\d\d-\d\d\)", err)
    assert "'ucloud-images rollback web --channel prod' or 'ucloud-images promote web --to prod'" in err
    code, out, _ = run("lock", "--check")
    assert code == 1 and "2 pin(s) on revoked images" in out
    assert f"web@prod [cn-bj2]: {NEWEST} is revoked since" in out
    assert f"~ web: {NEWEST}" in out and OLDER in out  # lock would now leave the revoked image out
    # promote refuses it; lock never pins it.
    before = lockfile_bytes(project)
    code, _, err = run("promote", "web", "--to", "dev")
    assert code == 2 and "promote refuses it" in err and lockfile_bytes(project) == before
    assert run("lock", "--update", "web")[0] == 0
    assert run("find", "--lock", "web")[1] == f"{OLDER}\n"
    assert run("promote", "web", "--to", "prod")[0] == 0
    assert run("lock", "--check")[0] == 0
    assert run("restore", NEWEST)[0] == 0
    assert run("lock", "--check")[0] == 1  # the newest image may be pinned again: latest is out of date
    code, _, err = run("restore", NEWEST)
    assert code == 2 and f"Image {NEWEST} is not revoked" in err


def test_lock_counts_revoked_images_in_a_zero_match_error(project: Path, run: Run) -> None:
    (project / "ucloud-images.toml").write_text(
        SELECTIONS.replace("name_regex = '^golden-web-'", "name_regex = '^golden-web-2026\\.03\\.14$'"),
        encoding="utf-8",
    )
    assert run("lock")[0] == 0
    assert run("revoke", NEWEST, "--reason", "bad build")[0] == 0
    code, _, err = run("lock", "--update", "web")
    assert code == 3
    assert f"1 revoked image was left out ({NEWEST}; 'ucloud-images restore IMAGE_ID' lets one in again)" in err


def test_deprecation_warns_naming_the_replacement(project: Path, run: Run, ucloud_emulator_env: Emulator) -> None:
    hide_newest(ucloud_emulator_env)
    assert run("lock")[0] == 0
    assert run("promote", "web", "--to", "prod")[0] == 0  # prod holds the older image
    code, out, _ = run("deprecate", OLDER, "--replacement", "web@dev", "--reason", "kernel 6.8")
    assert code == 2 and out == ""  # web@dev is empty: nothing to replace it with yet
    ucloud_emulator_env.set_state(NEWEST, "Available")
    assert run("lock", "--update", "web")[0] == 0
    assert run("promote", "web", "--to", "dev")[0] == 0  # dev holds the newer one
    code, out, _ = run("deprecate", OLDER, "--replacement", "web@dev", "--reason", "kernel 6.8")
    assert code == 0 and "Held by: web@prod [cn-bj2]" in out
    code, out, err = run("find", "--lock", "web@prod")
    assert code == 0 and "deprecated in favour of web@dev: kernel 6.8" in err
    assert run("deprecate", OLDER, "--replacement", "uimage-abc123")[0] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["promote", "web", "--to", "qa"], "has no channel 'qa' (its declared channels: dev, prod)"),
        (["promote", "web", "--to", "prod", "--from", "dev"], "is empty; fill it with 'ucloud-images promote web --to"),
        (["promote", "web", "--to", "latest"], "moves only with 'ucloud-images lock --update web'"),
        (["promote", "db", "--to", "prod"], "has no selection 'db' (it has: web)"),
        (["rollback", "web", "--channel", "stage"], "has no channel 'stage'"),
        (["revoke", "web@prod", "--reason", "x"], "IMAGE_ID 'web@prod' is not an image ID (uimage- followed by"),
        (["revoke", NEWEST, "--reason", "x", "--at", "2026-13-01"], "Argument --at must be a date as YYYY-MM-DD"),
        (["revoke", NEWEST, "--reason", "x", "--at", "tomorrow"], "Argument --at must be a date as YYYY-MM-DD"),
        (["revoke", NEWEST, "--reason", " "], "--reason must not be empty"),
        (["restore", "golden"], "IMAGE_ID 'golden' is not an image ID"),
        (["deprecate", NEWEST, "--replacement", "web@@x"], "is neither an image ID"),
        (["deprecate", NEWEST, "--replacement", "db"], "has no selection 'db'"),
        (["find", "--lock", "web@prod", "--name-regex", "x"], "--lock reads the pin from the lockfile without an API"),
        (["find", "--lock", "web", "--region", "hk"], "does not cover region 'hk'; it covers cn-bj2"),
        (["history", "db"], "has no selection 'db'"),
    ],
)
def test_bad_input_is_one_sentence_exit_2_and_writes_nothing(
    project: Path, run: Run, argv: list[str], message: str
) -> None:
    assert run("lock")[0] == 0
    before = lockfile_bytes(project)
    code, out, err = run(*argv)
    assert (code, out) == (2, "")
    assert message in err, err
    assert err.startswith("ucloud-images: error: ") and err.count(". ") <= 3
    assert lockfile_bytes(project) == before


def test_check_fails_on_a_channel_pin_no_history_explains(project: Path, run: Run) -> None:
    assert run("lock")[0] == 0
    assert run("promote", "web", "--to", "prod")[0] == 0
    edited = data(project)
    edited["selections"]["web"]["channels"]["prod"]["cn-bj2"]["image_id"] = OLDER  # a hand edit
    (project / "ucloud-images.lock.json").write_text(json.dumps(edited), encoding="utf-8")
    code, out, _ = run("lock", "--check")
    assert code == 1
    assert f"1 pin(s) that no history entry explains:\n  ? web@prod [cn-bj2]: {OLDER}" in out


# -- one pin across regions ------------------------------------------------------------------------------


MULTI = SELECTIONS.replace('channels = ["dev", "prod"]', 'channels = ["prod"]\nregions = ["cn-bj2", "sg"]')


def test_a_region_without_the_image_fails_the_lock_and_says_where_it_is_still_copying(
    project: Path, run: Run, ucloud_emulator_env: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "ucloud-images.toml").write_text(MULTI, encoding="utf-8")
    code, _, err = run("lock")
    assert code == 3 and "Selection 'web' of ucloud-images.toml has no image in region sg; in sg: no image" in err
    assert not (project / "ucloud-images.lock.json").exists()
    copy = ucloud_emulator_env.copy_image(NEWEST, "sg")
    code, _, err = run("lock")
    assert code == 3
    assert f"{copy} 'golden-web-2026.03.14' is still Copying in sg: wait until it is Available" in err
    ucloud_emulator_env.set_state(copy, "Available")
    code, out, _ = run("lock")
    assert code == 0 and f"+ web [sg]: {copy}" in out and f"+ web [cn-bj2]: {NEWEST}" in out
    assert run("find", "--lock", "web", "--region", "sg")[1] == f"{copy}\n"
    assert run("find", "--lock", "web")[1] == f"{NEWEST}\n"  # the settings' region (UCLOUD_REGION here)
    monkeypatch.delenv("UCLOUD_REGION")
    code, _, err = run("find", "--lock", "web")
    assert code == 2 and "covers the regions cn-bj2, sg; name one" in err
    assert run("promote", "web", "--to", "prod")[0] == 0
    lockfile = Lockfile.load(project / "ucloud-images.lock.json")
    assert {r: i.image_id for r, i in lockfile.selections["web"].channels["prod"].items()} == {
        "cn-bj2": NEWEST, "sg": copy,
    }
    assert run("lock", "--check")[0] == 0


def test_check_reports_regions_holding_different_builds(
    project: Path, run: Run, ucloud_emulator_env: Emulator
) -> None:
    (project / "ucloud-images.toml").write_text(
        MULTI.replace('"cn-bj2", "sg"', '"cn-bj2", "cn-sh2"'), encoding="utf-8"
    )
    assert run("lock")[0] == 0
    record = next(i for i in ucloud_emulator_env.images(include_private=True) if i["ImageId"] == NEWEST)
    ucloud_emulator_env.publish({**record, "ImageId": "uimage-gw0328", "ImageName": "golden-web-2026.03.28",
                                 "CreateTime": record["CreateTime"] + 14 * 86400})
    assert run("lock", "--update", "web")[0] == 0
    code, out, _ = run("lock", "--check")
    assert code == 1
    assert "1 pin(s) whose regions hold different builds:" in out
    assert "web: its regions hold differently named images (cn-bj2: 'golden-web-2026.03.28', cn-sh2:" in out


# -- format 1 --------------------------------------------------------------------------------------------


def test_a_format_1_lockfile_is_read_and_migrated_by_the_next_write(
    project: Path, run: Run, ucloud_emulator_env: Emulator
) -> None:
    without_channels = SELECTIONS.replace('channels = ["dev", "prod"]\n', "")
    (project / "ucloud-images.toml").write_text(without_channels, encoding="utf-8")
    hide_newest(ucloud_emulator_env)
    query = {"image_type": "Custom", "most_recent": True, "name_regex": "^golden-web-", "project_id": "org-platform"}
    v1 = {"version": 1, "selections": {"web": {
        "create_time": "2026-03-07T02:00:00Z", "image_id": OLDER, "image_name": "golden-web-2026.03.07",
        "locked_at": "2026-03-08T00:00:00Z", "query": query, "region": "cn-bj2",
    }}}
    path = project / "ucloud-images.lock.json"
    path.write_text(json.dumps(v1, indent=2), encoding="utf-8")
    assert run("find", "--lock", "web")[1] == f"{OLDER}\n"  # read as it is
    code, out, _ = run("lock", "--check")
    assert code == 0, out
    assert json.loads(path.read_text(encoding="utf-8"))["version"] == 1  # reading writes nothing
    ucloud_emulator_env.set_state(NEWEST, "Available")
    assert run("lock", "--update", "web")[0] == 0
    upgraded = json.loads(path.read_text(encoding="utf-8"))
    assert upgraded["version"] == 2
    assert [(e["action"], e["new_image"]) for e in upgraded["history"]] == [("migrate", OLDER), ("update", NEWEST)]
    assert upgraded["selections"]["web"]["channels"]["latest"]["cn-bj2"]["image_type"] == "Custom"
    assert run("find", "--lock", "web")[1] == f"{NEWEST}\n"
    assert run("lock", "--check")[0] == 0


def test_lock_fills_in_what_a_format_1_pin_lacks_without_moving_it(
    project: Path, run: Run, ucloud_emulator_env: Emulator
) -> None:
    """Enforcement reads image_type, maintain_eol and architecture from the lockfile alone: a pin migrated from
    format 1 gets them from the next lock, which keeps its image and its time."""
    without_channels = SELECTIONS.replace('channels = ["dev", "prod"]\n', "")
    (project / "ucloud-images.toml").write_text(without_channels, encoding="utf-8")
    query = {"image_type": "Custom", "most_recent": True, "name_regex": "^golden-web-", "project_id": "org-platform"}
    v1 = {"version": 1, "selections": {"web": {
        "create_time": "2026-03-14T02:00:00Z", "image_id": NEWEST, "image_name": "golden-web-2026.03.14",
        "locked_at": "2026-03-15T00:00:00Z", "query": query, "region": "cn-bj2",
    }}}
    path = project / "ucloud-images.lock.json"
    path.write_text(json.dumps(v1, indent=2), encoding="utf-8")
    code, out, _ = run("lock")
    assert code == 0 and "0 of 1 pin(s) changed" in out, out
    pin = data(project)["selections"]["web"]["channels"]["latest"]["cn-bj2"]
    assert (pin["image_id"], pin["locked_at"], pin["image_type"], pin["architecture"]) == (
        NEWEST, "2026-03-15T00:00:00Z", "Custom", "x86_64")
    assert run("lock")[1].endswith("is up to date: 1 pin(s).\n")


def test_a_query_that_differs_from_the_lock_names_a_command_that_runs(project: Path, run: Run) -> None:
    from pulumi_ucloud_images import LockfileError, lookup_images

    assert run("lock")[0] == 0
    assert run("promote", "web", "--to", "prod")[0] == 0
    with pytest.raises(LockfileError) as caught:
        lookup_images(lock="web@prod", image_type="base")
    assert str(caught.value).endswith("then run 'ucloud-images lock --update web'.")
    assert run("lock", "--update", "web")[0] == 0  # the command it names is one that runs
