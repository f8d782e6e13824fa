"""``ucloud-images audit``: the pack's rules on a ``pulumi stack export``, as a table, JSON or SARIF."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pulumi_ucloud_images import _cli
from tests.policy import policy_lockfile as pins

SCRIPT = Path(sys.executable).with_name("ucloud-images")
BRIDGED = "ucloud:uhost/instance:Instance"
TERRAFORM = "ucloud:index/instance:Instance"
RULES = ("untracked-image", "revoked-image", "scheduled-revocation", "deprecated-image", "image-past-eol",
         "marketplace-image")
SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}


def host(name: str, image: Any, type_: str = BRIDGED, prop: str = "imageId") -> dict[str, Any]:
    return {"urn": f"urn:pulumi:dev::hosts::{type_}::{name}", "type": type_, "custom": True,
            "inputs": {prop: image, "instanceType": "n-basic-2"}, "outputs": {prop: image}}


def export(*resources: dict[str, Any]) -> dict[str, Any]:
    stack = {"urn": "urn:pulumi:dev::hosts::pulumi:pulumi:Stack::hosts-dev", "type": "pulumi:pulumi:Stack"}
    manifest = {"time": "2026-06-01T00:00:00Z"}
    return {"version": 3, "deployment": {"manifest": manifest, "resources": [stack, *resources]}}


@pytest.fixture
def lockfile(tmp_path: Path) -> Path:
    return pins.write(tmp_path / "ucloud-images.lock.json")


def audit(capsys: pytest.CaptureFixture[str], state: Path | dict[str, Any], *args: str,
          monkeypatch: pytest.MonkeyPatch | None = None) -> tuple[int, str, str]:
    if isinstance(state, dict):
        assert monkeypatch is not None
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(state).encode())))
        code = _cli.main(["audit", "--state", "-", *args])
    else:
        code = _cli.main(["audit", "--state", str(state), *args])
    out, err = capsys.readouterr()
    return code, out, err


def write_state(tmp_path: Path, *resources: dict[str, Any]) -> Path:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(export(*resources)), encoding="utf-8")
    return path


EVERY_CASE = [
    host("good", pins.GOOD), host("pasted", pins.UNTRACKED, TERRAFORM), host("old", pins.REVOKED),
    host("soon", pins.SCHEDULED), host("legacy", pins.DEPRECATED), host("eol", pins.PAST_EOL),
    host("shop", pins.MARKETPLACE),
    {"urn": "urn:pulumi:dev::hosts::ucloud:vpc/vPC:VPC::net", "type": "ucloud:vpc/vPC:VPC"},
]


def test_json_lists_every_checked_host_with_its_verdict(
    tmp_path: Path, lockfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = audit(capsys, write_state(tmp_path, *EVERY_CASE), "--lockfile", str(lockfile), "--output", "json")
    assert (code, err) == (1, "")
    report = json.loads(out)
    assert report["passed"] is False
    by_name = {r["urn"].rsplit("::", 1)[1]: r for r in report["resources"]}
    assert list(by_name) == ["good", "pasted", "old", "soon", "legacy", "eol", "shop"]  # not the stack or the VPC
    assert {name: r["verdict"] for name, r in by_name.items()} == {
        "good": "pinned as web@latest/cn-bj2, web@prod/cn-bj2",
        "pasted": "untracked",
        "old": "pinned as old@latest/cn-bj2; revoked",
        "soon": "pinned as soon@latest/cn-bj2, soon@prod/cn-sh2; revocation scheduled",
        "legacy": "pinned as legacy@latest/cn-bj2; deprecated",
        "eol": "pinned as base@latest/cn-bj2; EOL",
        "shop": "pinned as mkt@latest/cn-bj2; marketplace",
    }
    assert [name for name, r in by_name.items() if r["failed"]] == ["pasted", "old"]
    assert by_name["pasted"]["type"] == TERRAFORM and by_name["pasted"]["image_id"] == pins.UNTRACKED
    assert [(f["rule"], f["level"]) for f in by_name["soon"]["findings"]] == [("scheduled-revocation", "advisory")]


def test_the_table_shows_urn_image_verdict_and_every_finding(
    tmp_path: Path, lockfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = audit(capsys, write_state(tmp_path, *EVERY_CASE), "--lockfile", str(lockfile))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split() == ["URN", "IMAGE", "VERDICT"]
    assert lines[1].split()[:3] == [EVERY_CASE[0]["urn"], pins.GOOD, "pinned"]
    assert f"{EVERY_CASE[1]['urn']}  {pins.UNTRACKED}  untracked" in out
    assert "[mandatory] untracked-image: " in out and "[advisory] marketplace-image: " in out
    assert lines[-1] == "7 host(s) checked; 2 fail a mandatory rule."


def test_sarif_has_what_code_scanning_requires(
    tmp_path: Path, lockfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = audit(capsys, write_state(tmp_path, *EVERY_CASE), "--lockfile", str(lockfile), "--output", "sarif")
    assert code == 1
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    (run,) = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "ucloud-images audit"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert rule_ids == ["untracked-image", "revoked-image", "scheduled-revocation", "deprecated-image",
                        "image-past-eol", "marketplace-image"]
    results = run["results"]
    assert sorted((r["ruleId"], r["level"]) for r in results) == [
        ("deprecated-image", "warning"), ("image-past-eol", "warning"), ("marketplace-image", "warning"),
        ("revoked-image", "error"), ("scheduled-revocation", "warning"), ("untracked-image", "error"),
    ]
    for result in results:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        assert result["message"]["text"]
        (location,) = result["locations"]
        assert location["logicalLocations"][0]["fullyQualifiedName"].startswith("urn:pulumi:dev::hosts::")


def test_stdin_and_exit_0_when_no_mandatory_rule_fails(
    lockfile: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = export(host("good", pins.GOOD), host("legacy", pins.DEPRECATED))
    code, out, err = audit(capsys, state, "--lockfile", str(lockfile), monkeypatch=monkeypatch)
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "2 host(s) checked; no mandatory rule fails."


def test_levels_resources_and_the_pack_config_file(
    tmp_path: Path, lockfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = write_state(tmp_path, host("pasted", pins.UNTRACKED), host("mine", pins.REVOKED, "my:index:Host", "image"))
    code, out, _ = audit(capsys, state, "--lockfile", str(lockfile), "--level", "untracked-image=advisory",
                         "--output", "json")
    assert code == 0 and [r["urn"].rsplit("::", 1)[1] for r in json.loads(out)["resources"]] == ["pasted"]

    code, out, _ = audit(capsys, state, "--lockfile", str(lockfile), "--resource", "my:index:Host=image",
                         "--level", "all=advisory", "--output", "json")
    assert code == 0
    levels = {f["rule"]: f["level"] for r in json.loads(out)["resources"] for f in r["findings"]}
    assert levels == {"untracked-image": "advisory", "revoked-image": "advisory"}

    config = tmp_path / "policy-config.json"  # the very file `pulumi preview --policy-pack-config` takes
    config.write_text(json.dumps({
        name: {"lockfile": str(lockfile), "resources": {"my:index:Host": "image"}}
        for name in RULES
    } | {"marketplace-image": "disabled"}), encoding="utf-8")
    code, out, _ = audit(capsys, state, "--policy-config", str(config), "--output", "json")
    assert code == 1
    failed = {r["urn"].rsplit("::", 1)[1]: [f["rule"] for f in r["findings"]] for r in json.loads(out)["resources"]}
    assert failed == {"pasted": ["untracked-image"], "mine": ["revoked-image"]}


def test_the_nearest_lockfile_is_found_from_the_working_directory(
    tmp_path: Path, lockfile: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    nested = tmp_path / "infra" / "stack"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    code, out, _ = audit(capsys, write_state(tmp_path, host("good", pins.GOOD)), "--output", "json")
    assert code == 0 and json.loads(out)["resources"][0]["pinned_as"] == ["web@latest/cn-bj2", "web@prod/cn-bj2"]


def test_secrets_are_checked_when_shown_and_named_when_not(
    tmp_path: Path, lockfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = {**SECRET_SIG, "plaintext": json.dumps(pins.UNTRACKED)}
    hidden = {**SECRET_SIG, "ciphertext": "v1:abc"}
    state = write_state(tmp_path, host("shown", shown), host("hidden", hidden))
    code, out, _ = audit(capsys, state, "--lockfile", str(lockfile), "--output", "json")
    assert code == 1
    rows = {r["urn"].rsplit("::", 1)[1]: r for r in json.loads(out)["resources"]}
    assert rows["shown"]["verdict"] == "untracked"
    assert rows["hidden"]["image_id"] is None and "--show-secrets" in rows["hidden"]["verdict"]
    assert not rows["hidden"]["failed"]


def test_with_every_rule_disabled_it_says_so_rather_than_that_there_is_no_host(
    tmp_path: Path, lockfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = write_state(tmp_path, host("web", pins.UNTRACKED))
    code, out, _ = audit(capsys, state, "--lockfile", str(lockfile), "--level", "all=disabled")
    assert (code, out) == (0, "Every rule is disabled, so no host was checked.\n")


def test_an_empty_stack_passes(tmp_path: Path, lockfile: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.json"
    path.write_text(json.dumps({"version": 3, "deployment": {"manifest": {}}}), encoding="utf-8")
    code, out, _ = audit(capsys, path, "--lockfile", str(lockfile))
    assert (code, out) == (0, "No host resource of a checked type is in the state.\n")


@pytest.mark.parametrize(("content", "words"), [
    (None, "cannot be read: it does not exist"),
    ("{", "is not valid JSON at line 1 column 2"),
    (b"\xff\xfe", "is not UTF-8 text"),
    ("[]", "has no 'deployment' object, so it is not the output of 'pulumi stack export'"),
    ('{"deployment": {"resources": {}}}', "malformed at deployment.resources: expected an array"),
    ('{"deployment": {"resources": [{"urn": 1}]}}', "malformed at deployment.resources[0]: expected an object"),
    ('{"deployment": {"resources": [{"urn": "a"}]}, "deployment": {"resources": []}}',
     "has the key 'deployment' twice in one object"),  # json would keep the last, hiding the first's hosts
])
def test_bad_state_is_one_sentence_and_exit_2(
    tmp_path: Path, lockfile: Path, capsys: pytest.CaptureFixture[str], content: str | bytes | None, words: str
) -> None:
    path = tmp_path / "state.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = audit(capsys, path, "--lockfile", str(lockfile))
    assert (code, out) == (2, "")
    assert err.startswith(f"ucloud-images: error: The state file {path} ") and words in err
    assert err.count("\n") == 1


def test_bad_lockfile_config_and_levels_are_exit_2(
    tmp_path: Path, lockfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = write_state(tmp_path, host("good", pins.GOOD))
    code, _, err = audit(capsys, state, "--lockfile", str(tmp_path / "none.json"))
    assert code == 2 and "none.json does not exist; run 'ucloud-images lock'" in err
    code, _, err = audit(capsys, state, "--lockfile", str(lockfile), "--level", "untracked=advisory")
    assert code == 2 and "There is no rule 'untracked' to set a level for" in err
    code, _, err = audit(capsys, state, "--lockfile", str(lockfile), "--level", "untracked-image=warn")
    assert code == 2 and "level untracked-image must be one of mandatory, advisory, disabled" in err.lower()
    code, _, err = audit(capsys, state, "--lockfile", str(lockfile), "--level", "untracked-image")
    assert code == 2 and "Argument --level must be of the form RULE=LEVEL" in err


@pytest.mark.slow
def test_the_installed_command_audits_stdin_without_importing_pulumi(tmp_path: Path, lockfile: Path) -> None:
    state = json.dumps(export(host("pasted", pins.UNTRACKED)))
    done = subprocess.run([sys.executable, "-X", "importtime", str(SCRIPT), "audit", "--state", "-", "--lockfile",
                           str(lockfile), "--output", "json"], input=state, capture_output=True, text=True, timeout=60,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1, done.stderr[-2000:]
    assert json.loads(done.stdout)["resources"][0]["verdict"] == "untracked"
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "pulumi_ucloud_images._policy.rules" in imported
    assert sorted(n for n in imported if n.split(".")[0] in ("pulumi", "pulumi_policy", "grpc", "google")) == []
