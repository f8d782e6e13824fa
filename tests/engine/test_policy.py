"""The golden-image policy pack under the real engine: ``pulumi preview/up --policy-pack examples/policy``.

The program's hosts are a stand-in for the UCloud instance (a dynamic resource typed
``pulumi-python:dynamic/ucloud:Instance``, its image in ``image_id``); the pack is told that type through
``--policy-pack-config``, as a team would name its own host component. The pack is a copy of examples/policy
as shipped, except that its virtualenv is the one these tests run in (a local pack is not installed by the
engine; its virtualenv must exist, and this one has the package and pulumi-policy). The lockfile holds one
image per rule (tests/policy/policy_lockfile.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.engine.engine_project import ROOT, VENV, Project, new_project, python_runtime
from tests.policy import policy_lockfile as pins

pytestmark = [pytest.mark.engine, pytest.mark.slow]

HOST_TYPE = "pulumi-python:dynamic/ucloud:Instance"
RULE_NAMES = ("untracked-image", "revoked-image", "scheduled-revocation", "deprecated-image", "image-past-eol",
              "marketplace-image")

PROGRAM = '''\
"""Hosts booting the images named in config: `hosts` (name -> image ID) and `derived` (hosts whose image is
the output of another resource, so unknown at preview)."""

import json

import pulumi
from pulumi.dynamic import CreateResult, ResourceProvider


class _Provider(ResourceProvider):
    def create(self, props):
        return CreateResult(f"id-{props['image_id']}", dict(props))


class _BuildProvider(ResourceProvider):
    def create(self, props):
        return CreateResult(f"build-{props['source']}", {**props, "built_image_id": props["source"]})


class Instance(pulumi.dynamic.Resource, module="ucloud", name="Instance"):
    """Stand-in for the UCloud instance: the image ID is an input, as the real resource's imageId is."""

    def __init__(self, name, *, image_id, instance_type="n-basic-2", opts=None):
        super().__init__(_Provider(), name, {"image_id": image_id, "instance_type": instance_type}, opts)


class ImageBuild(pulumi.dynamic.Resource, module="ucloud", name="ImageBuild"):
    """An image made by the same run: its ID is known only once it is created."""

    built_image_id: pulumi.Output[str]

    def __init__(self, name, *, source, opts=None):
        # An output that is not an input: unknown at preview, as a real build's image ID is.
        super().__init__(_BuildProvider(), name, {"source": source, "built_image_id": None}, opts)


config = pulumi.Config()
for name, image in json.loads(config.get("hosts") or "{}").items():
    Instance(name, image_id=image)
for name, image in json.loads(config.get("derived") or "{}").items():
    build = ImageBuild(f"{name}-image", source=image)
    Instance(name, image_id=build.built_image_id)
'''


@pytest.fixture(scope="session")
def policy_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/policy, copied once per session, run in the test venv (so nothing is installed per test)."""
    pack = tmp_path_factory.mktemp("policy") / "pack"
    shutil.copytree(ROOT / "examples" / "policy", pack, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    manifest = yaml.safe_load((pack / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    assert manifest["runtime"]["name"] == "python"
    manifest["runtime"]["options"]["virtualenv"] = str(VENV)
    (pack / "PulumiPolicy.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return pack


@pytest.fixture
def project(tmp_path: Path, engine_dir: Path) -> Project:
    return new_project(tmp_path, engine_dir, dict(os.environ), manifest={"name": "hosts", "runtime": python_runtime()},
                       files={"__main__.py": PROGRAM})


def pack_config(tmp_path: Path, lockfile: Path, **levels: str) -> Path:
    """The pack's config: every rule checks the stand-in host type and reads ``lockfile``; ``levels`` by rule."""
    document: dict[str, Any] = {
        name: {"lockfile": str(lockfile), "resources": {HOST_TYPE: "image_id"}} for name in RULE_NAMES
    }
    for rule, level in levels.items():
        document[rule.replace("_", "-")]["enforcementLevel"] = level
    path = tmp_path / "policy-config.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


class Run:
    """One policy run: the command's exit code, its output, and the violations it printed."""

    def __init__(self, done: subprocess.CompletedProcess[str], seconds: float) -> None:
        self.code = done.returncode
        self.text = done.stdout + done.stderr
        self.seconds = seconds

    def violations(self, level: str) -> list[str]:
        """The rules reported at ``level``: Pulumi prints ``- [mandatory]  <rule>  (<type>: <name>)`` under the pack."""
        lines = (line.strip().removeprefix("- ") for line in self.text.splitlines())
        return [line.split()[1] for line in lines if line.startswith(f"[{level}]")]


@pytest.fixture
def policy_run(project: Project, policy_pack: Path, tmp_path: Path) -> Iterator[Any]:
    timings: list[tuple[str, float]] = []

    def run(command: str, hosts: dict[str, str], *, lockfile: Path, derived: dict[str, str] | None = None,
            **levels: str) -> Run:
        project.config("hosts", json.dumps(hosts))
        project.config("derived", json.dumps(derived or {}))
        config = pack_config(tmp_path, lockfile, **levels)
        args = [command, "--policy-pack", str(policy_pack), "--policy-pack-config", str(config)]
        if command == "up":
            args.append("--yes")
        started = time.monotonic()
        done = project.run(*args, check=False)
        timings.append((f"{command} {'+'.join(hosts) or '-'}", time.monotonic() - started))
        return Run(done, time.monotonic() - started)

    yield run
    sys.stdout.write("\npolicy pack under the engine: " + ", ".join(f"{n} {s:.1f} s" for n, s in timings) + "\n")


def test_a_pinned_image_passes_and_a_hand_pasted_one_fails_the_preview(policy_run: Any, tmp_path: Path) -> None:
    lockfile = pins.write(tmp_path / "ucloud-images.lock.json")
    passed = policy_run("preview", {"web": pins.GOOD}, lockfile=lockfile)
    assert passed.code == 0, passed.text
    assert passed.violations("mandatory") == passed.violations("advisory") == []

    failed = policy_run("preview", {"web": pins.GOOD, "pasted": pins.UNTRACKED}, lockfile=lockfile)
    assert failed.code != 0, failed.text
    assert failed.violations("mandatory") == ["untracked-image"], failed.text
    assert pins.UNTRACKED in failed.text and "ucloud-images lock" in failed.text
    assert "::pasted" in failed.text  # the message names the resource


def test_a_revoked_image_warns_before_its_date_and_fails_after(policy_run: Any, tmp_path: Path) -> None:
    before = pins.write(tmp_path / "before.lock.json", revoked_at=pins.FUTURE)
    warned = policy_run("preview", {"old": pins.REVOKED}, lockfile=before)
    assert warned.code == 0, warned.text
    assert warned.violations("advisory") == ["scheduled-revocation"]
    assert "2099-12-10" in warned.text

    after = pins.write(tmp_path / "after.lock.json", revoked_at=pins.PAST)
    failed = policy_run("preview", {"old": pins.REVOKED}, lockfile=after)
    assert failed.code != 0, failed.text
    assert failed.violations("mandatory") == ["revoked-image"]
    assert "revoked since 2020-01-01" in failed.text


def test_eol_deprecated_and_marketplace_images_warn_and_pass(policy_run: Any, tmp_path: Path) -> None:
    lockfile = pins.write(tmp_path / "ucloud-images.lock.json")
    hosts = {"eol": pins.PAST_EOL, "legacy": pins.DEPRECATED, "shop": pins.MARKETPLACE}
    done = policy_run("preview", hosts, lockfile=lockfile)
    assert done.code == 0, done.text
    assert sorted(done.violations("advisory")) == ["deprecated-image", "image-past-eol", "marketplace-image"]
    assert done.violations("mandatory") == []
    assert "in favour of web@prod" in done.text  # names the replacement


def test_levels_come_from_the_pack_config(policy_run: Any, tmp_path: Path) -> None:
    lockfile = pins.write(tmp_path / "ucloud-images.lock.json")
    relaxed = policy_run("preview", {"pasted": pins.UNTRACKED, "shop": pins.MARKETPLACE}, lockfile=lockfile,
                         untracked_image="advisory", marketplace_image="disabled")
    assert relaxed.code == 0, relaxed.text
    assert relaxed.violations("advisory") == ["untracked-image"]
    strict = policy_run("preview", {"eol": pins.PAST_EOL}, lockfile=lockfile, image_past_eol="mandatory")
    assert strict.code != 0 and strict.violations("mandatory") == ["image-past-eol"], strict.text


def test_up_with_a_mandatory_violation_creates_nothing(policy_run: Any, project: Project, tmp_path: Path) -> None:
    lockfile = pins.write(tmp_path / "ucloud-images.lock.json")
    failed = policy_run("up", {"web": pins.GOOD, "pasted": pins.UNTRACKED}, lockfile=lockfile)
    assert failed.code != 0, failed.text
    assert failed.violations("mandatory") == ["untracked-image"], failed.text
    assert [name for name, r in project.resources().items() if r["type"] == HOST_TYPE] == []


def test_an_image_unknown_at_preview_passes_it_and_is_checked_at_up(
    policy_run: Any, project: Project, tmp_path: Path
) -> None:
    lockfile = pins.write(tmp_path / "ucloud-images.lock.json")
    preview = policy_run("preview", {}, lockfile=lockfile, derived={"baked": pins.UNTRACKED})
    assert preview.code == 0, preview.text
    assert preview.violations("mandatory") == preview.violations("advisory") == []

    up = policy_run("up", {}, lockfile=lockfile, derived={"baked": pins.UNTRACKED})
    assert up.code != 0, up.text
    assert up.violations("mandatory") == ["untracked-image"]
    types = {r["type"] for r in project.resources().values()}
    assert HOST_TYPE not in types  # the image build ran; the host that boots it did not


def test_the_state_of_a_real_up_is_audited(policy_run: Any, project: Project, tmp_path: Path) -> None:
    """A stack brought up with warnings only, then audited offline: the same verdicts, and a revocation that
    came into force since the up fails the audit."""
    lockfile = pins.write(tmp_path / "ucloud-images.lock.json", revoked_at=pins.FUTURE)
    hosts = {"web": pins.GOOD, "old": pins.REVOKED, "legacy": pins.DEPRECATED}
    up = policy_run("up", hosts, lockfile=lockfile)
    assert up.code == 0, up.text
    state = tmp_path / "state.json"
    state.write_text(project.run("stack", "export").stdout, encoding="utf-8")
    command = [str(Path(sys.executable).with_name("ucloud-images")), "audit", "--state", str(state),
               "--resource", f"{HOST_TYPE}=image_id", "--output", "json"]

    now_ok = subprocess.run([*command, "--lockfile", str(lockfile)], capture_output=True, text=True, timeout=60)
    assert now_ok.returncode == 0, now_ok.stderr
    verdicts = {r["urn"].rsplit("::", 1)[1]: r for r in json.loads(now_ok.stdout)["resources"]}
    assert set(verdicts) == set(hosts)
    assert verdicts["web"]["pinned_as"] == ["web@latest/cn-bj2", "web@prod/cn-bj2"]
    assert [f["rule"] for f in verdicts["old"]["findings"]] == ["scheduled-revocation"]
    assert [f["rule"] for f in verdicts["legacy"]["findings"]] == ["deprecated-image"]

    revoked = pins.write(tmp_path / "revoked.lock.json", revoked_at=pins.PAST)
    failing = subprocess.run([*command, "--lockfile", str(revoked)], capture_output=True, text=True, timeout=60)
    assert failing.returncode == 1, failing.stderr
    failed = [r["urn"].rsplit("::", 1)[1] for r in json.loads(failing.stdout)["resources"] if r["failed"]]
    assert failed == ["old"]
