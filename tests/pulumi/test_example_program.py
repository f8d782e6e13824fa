"""The examples keep working: the Python program under mocks (lookups answered by the emulator), pipeline.sh,
and the selection file ucloud-images.toml locked against the emulator."""

from __future__ import annotations

import inspect
import json
import os
import runpy
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi
import pulumi.runtime
import pytest
from pulumi.runtime.sync_await import _ensure_event_loop

from pulumi_ucloud_images import ImageQuery, lookup_images
from pulumi_ucloud_images._cli import main as cli_main
from pulumi_ucloud_images._emulator.service import Emulator
from pulumi_ucloud_images._lockfile.lockfile import read_lockfile
from pulumi_ucloud_images._lockfile.selections import read_selections
from pulumi_ucloud_images._naming import wire_names
from pulumi_ucloud_images._pulumi.pinned_image import PinnedImageProvider

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROGRAM = EXAMPLES / "python" / "__main__.py"
UHOST = "ucloud:index/instance:Instance"
PINNED_IMAGE = "pulumi-python:dynamic/ucloud-images:PinnedImage"
FIELD_BY_PROPERTY = {prop: name for name, prop in wire_names(ImageQuery).items()}


def stand_in_for_pulumi_ucloud() -> ModuleType:
    """The part of the generated ``pulumi_ucloud`` SDK the example uses: ``Instance``, with its keyword arguments."""
    module = ModuleType("pulumi_ucloud")

    class Instance(pulumi.CustomResource):
        def __init__(
            self,
            resource_name: str,
            *,
            availability_zone: pulumi.Input[str],
            image_id: pulumi.Input[str],
            instance_type: pulumi.Input[str],
            root_password: pulumi.Input[str] | None = None,
            boot_disk_type: pulumi.Input[str] | None = None,
            tag: pulumi.Input[str] | None = None,
            opts: pulumi.ResourceOptions | None = None,
        ) -> None:
            props = {"availabilityZone": availability_zone, "imageId": image_id, "instanceType": instance_type,
                     "rootPassword": root_password, "bootDiskType": boot_disk_type, "tag": tag}
            super().__init__(UHOST, resource_name, props, opts)

    module.Instance = Instance  # type: ignore[attr-defined]  # a module made here: the checker knows no attributes
    return module


class EmulatorBackedMocks(pulumi.runtime.Mocks):
    """The engine is mocked; the lookups and the PinnedImage provider really run, against the emulator."""

    def __init__(self) -> None:
        self.calls: list[pulumi.runtime.MockCallArgs] = []
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    # The SDK takes a bare dict from call() too; its annotation names only the (outputs, failures) pair.
    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        self.calls.append(args)
        assert args.token == "ucloud-images:index:getImages"
        filters = {FIELD_BY_PROPERTY[prop]: value for prop, value in args.args.items()}
        return lookup_images(filters).to_json()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        if args.typ != PINNED_IMAGE:
            return f"{args.name}-id", dict(args.inputs)
        provider = PinnedImageProvider()
        checked = provider.check({}, dict(args.inputs))
        assert checked.failures == []
        created = provider.create(checked.inputs)
        assert created.outs is not None
        return created.id, created.outs


# The example rolls its web hosts onto a new pin with replacement_trigger, which came in Pulumi 3.214; the package
# itself supports 3.200, and CI's run on 3.200 leaves the example out (examples/python/requirements.txt says 3.214).
ROLLS_HOSTS = "replacement_trigger" in inspect.signature(pulumi.ResourceOptions.__init__).parameters


@pytest.fixture
def example(ucloud_emulator_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorBackedMocks]:
    if not ROLLS_HOSTS:
        pytest.skip("examples/python needs Pulumi 3.214 or newer (replacement_trigger); this SDK is older")
    monkeypatch.setitem(sys.modules, "pulumi_ucloud", stand_in_for_pulumi_ucloud())
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"golden-web:rootPassword": "Example-Passw0rd"}))
    mocks = EmulatorBackedMocks()
    _ensure_event_loop()  # set_mocks needs a current event loop, which an earlier asyncio.run unsets
    pulumi.runtime.reset_options()
    pulumi.runtime.set_mocks(mocks, project="golden-web", stack="dev", preview=False)
    yield mocks
    pulumi.runtime.reset_options()


def run_program() -> None:
    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(PROGRAM))

    program()


def test_the_example_program_gives_the_hosts_the_looked_up_and_pinned_images(example: EmulatorBackedMocks) -> None:
    run_program()
    hosts = {args.name: args.inputs for args in example.resources if args.typ == UHOST}
    assert sorted(hosts) == ["scratch", "web-0", "web-1"]
    assert hosts["scratch"]["imageId"] == "uimage-ub2202"  # newest x86_64 Ubuntu 22.04 base image in cn-bj2-02
    assert hosts["web-0"]["imageId"] == hosts["web-1"]["imageId"] == "uimage-gw0314"  # newest golden-web
    assert {host["availabilityZone"] for host in hosts.values()} == {"cn-bj2-02"}
    (call,) = example.calls
    assert call.args == {"region": "cn-bj2", "zone": "cn-bj2-02", "imageType": "Base", "osType": "Linux",
                         "nameRegex": r"^Ubuntu 22\.04", "architecture": "x86_64", "mostRecent": True}
    (pin,) = [args for args in example.resources if args.typ == PINNED_IMAGE]
    assert pin.name == "web-golden" and "repin" not in pin.inputs


def test_the_example_passes_its_zone_and_repin_settings_to_the_pin(
    example: EmulatorBackedMocks, ucloud_emulator_env: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"golden-web:rootPassword": "Example-Passw0rd", "golden-web:webRepin": "2026-03-21",
              "golden-web:zone": "cn-sh2-01", "ucloud:region": "cn-sh2"}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    run_program()
    (pin,) = [args for args in example.resources if args.typ == PINNED_IMAGE]
    assert (pin.inputs["repin"], pin.inputs["region"], pin.inputs["zone"]) == ("2026-03-21", "cn-sh2", "cn-sh2-01")
    golden_sh2 = lookup_images(region="cn-sh2", image_type="custom", name_regex=r"^golden-web-\d", most_recent=True)
    hosts = {args.name: args.inputs for args in example.resources if args.typ == UHOST}
    assert hosts["web-0"]["imageId"] == hosts["web-1"]["imageId"] == golden_sh2.image_id
    scratch = next(r for r in ucloud_emulator_env.images("cn-sh2") if r["ImageId"] == hosts["scratch"]["imageId"])
    assert (scratch["Zone"], scratch["ImageName"].strip()) == ("cn-sh2-01", "Ubuntu 22.04 64位")


def test_the_scratch_host_boots_the_image_a_pipeline_chose(
    example: EmulatorBackedMocks, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"golden-web:rootPassword": "Example-Passw0rd", "golden-web:scratchImageId": "uimage-ub2205"}
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps(config))
    run_program()
    hosts = {args.name: args.inputs for args in example.resources if args.typ == UHOST}
    assert hosts["scratch"]["imageId"] == "uimage-ub2205"  # the program's own lookup gives uimage-ub2202


# -- pipeline.sh -----------------------------------------------------------------------------------------


@pytest.fixture
def fake_pulumi(tmp_path: Path) -> tuple[Path, Path]:
    """A ``pulumi`` on PATH that records its arguments, one line per call."""
    bin_dir, record = tmp_path / "bin", tmp_path / "pulumi-calls.txt"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{record}"\n', encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir, record


def run_pipeline(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])
    return subprocess.run(["bash", str(EXAMPLES / "pipeline.sh"), *args], capture_output=True, text=True,
                          env={**os.environ, "PATH": path}, timeout=60, check=False)


@pytest.mark.slow
def test_pipeline_hands_the_found_image_to_pulumi_config(
    ucloud_emulator_env: Emulator, fake_pulumi: tuple[Path, Path]
) -> None:
    bin_dir, record = fake_pulumi
    done = run_pipeline(bin_dir, "dev")
    assert done.returncode == 0, done.stderr
    assert record.read_text(encoding="utf-8").splitlines() == [
        "config get --stack dev ucloud:region", "config get --stack dev zone",  # unset here: region-wide
        "config set --stack dev scratchImageId uimage-ub2205"]
    assert done.stderr == "scratchImageId = uimage-ub2205\n"


@pytest.mark.slow
def test_pipeline_looks_in_the_stacks_region_and_zone(ucloud_emulator_env: Emulator, tmp_path: Path) -> None:
    bin_dir, record = tmp_path / "bin", tmp_path / "pulumi-calls.txt"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{record}"\n'
                      'case "$*" in *"get --stack dev ucloud:region") echo cn-sh2;;'
                      ' *"get --stack dev zone") echo cn-sh2-01;; esac\n', encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    done = run_pipeline(bin_dir, "dev")
    assert done.returncode == 0, done.stderr
    expected = lookup_images(region="cn-sh2", zone="cn-sh2-01", image_type="base", os_type="linux",
                             name_regex=r"^Ubuntu 22\.04", architecture="x86_64", most_recent=True).image_id
    assert record.read_text(encoding="utf-8").splitlines()[-1] == f"config set --stack dev scratchImageId {expected}"


@pytest.mark.slow
def test_pipeline_takes_the_region_of_the_ucloud_profile(
    ucloud_emulator_env: Emulator, fake_pulumi: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UCLOUD_REGION")
    home = Path(os.environ["HOME"])
    (home / ".ucloud").mkdir(exist_ok=True)
    (home / ".ucloud" / "config.json").write_text(json.dumps([{"profile": "ci", "active": True, "region": "cn-sh2"}]))
    bin_dir, record = fake_pulumi
    done = run_pipeline(bin_dir, "dev")
    assert done.returncode == 0, done.stderr
    expected = lookup_images(region="cn-sh2", image_type="base", os_type="linux", name_regex=r"^Ubuntu 22\.04",
                             architecture="x86_64", most_recent=True).image_id
    assert record.read_text(encoding="utf-8").splitlines()[-1] == f"config set --stack dev scratchImageId {expected}"


@pytest.mark.slow
def test_pipeline_stops_before_the_stack_when_the_lookup_fails(
    ucloud_emulator_env: Emulator, fake_pulumi: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, record = fake_pulumi
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", "a-wrong-private-key")
    done = run_pipeline(bin_dir)
    assert done.returncode == 5
    assert "RetCode 171" in done.stderr
    assert [line for line in record.read_text(encoding="utf-8").splitlines() if "config set" in line] == []


# -- ucloud-images.toml ----------------------------------------------------------------------------------


def test_the_example_selection_file_locks_against_the_emulator(
    ucloud_emulator_env: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(EXAMPLES / "ucloud-images.toml", tmp_path / "ucloud-images.toml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UCLOUD_REGION")  # the file's [settings] names the region
    assert cli_main(["lock"]) == 0
    selections = read_selections(tmp_path / "ucloud-images.toml")
    pins = read_lockfile(tmp_path / "ucloud-images.lock.json")
    assert sorted(pins) == sorted(selections.queries) == ["golden-web", "legacy", "web"]
    for name, query in selections.queries.items():
        assert pins[name].query == query and pins[name].region == "cn-bj2"
        assert pins[name].image_id == lookup_images(query, region="cn-bj2").image_id
    assert pins["legacy"].image_id == "uimage-f1chxn"
    assert cli_main(["lock", "--check"]) == 0
