"""The Python example under the real engine: preview, up, golden-image pinning end to end, destroy.

The example's UHosts come from the UCloud provider's generated SDK, which cannot be had offline; the copy of the
example gets a ``pulumi_ucloud`` module whose ``Instance`` is a dynamic resource taking the same arguments, so
the engine diffs and updates the hosts as it would real ones. Everything else is the example as shipped.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pulumi_ucloud_images import lookup_images
from pulumi_ucloud_images._emulator import Emulator
from tests.engine.engine_project import ROOT, Project, new_project, python_runtime

pytestmark = [pytest.mark.engine, pytest.mark.slow]

EXAMPLE = ROOT / "examples" / "python"
HOST_TYPE = "pulumi-python:dynamic:Resource"
PIN_TYPE = "pulumi-python:dynamic/ucloud-images:PinnedImage"

STAND_IN = '''\
"""Stand-in for the generated UCloud SDK: ``Instance`` as a dynamic resource with the same arguments."""

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult


class _InstanceProvider(ResourceProvider):
    def create(self, props):
        return CreateResult(f"uhost-{props['image_id']}", dict(props))

    def diff(self, _id, olds, news):
        changed = [key for key in news if key != "__provider" and olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[])

    def update(self, _id, _olds, news):
        return UpdateResult(dict(news))


class Instance(pulumi.dynamic.Resource):
    image_id: pulumi.Output[str]

    def __init__(self, name, *, availability_zone, image_id, instance_type, root_password=None,
                 boot_disk_type=None, tag=None, opts=None):
        props = {"availability_zone": availability_zone, "image_id": image_id, "instance_type": instance_type,
                 "root_password": root_password, "boot_disk_type": boot_disk_type, "tag": tag}
        super().__init__(_InstanceProvider(), name, props, opts)
'''


def newest_golden_web(emulator: Emulator) -> dict[str, Any]:
    golden = lookup_images(region="cn-bj2", zone="cn-bj2-02", image_type="custom",
                           name_regex=r"^golden-web-\d{4}\.\d{2}\.\d{2}$", most_recent=True)
    return next(r for r in emulator.images("cn-bj2") if r["ImageId"] == golden.image_id)


@pytest.fixture
def example(tmp_path: Path, engine_dir: Path, emulator_env: dict[str, str]) -> Project:
    """A copy of examples/python (its own Pulumi.yaml, with the test venv), its stand-in for pulumi_ucloud on
    the PYTHONPATH of the program and of the dynamic-provider host, and the emulator's settings as stack config."""
    env = {**emulator_env, "PYTHONPATH": str(tmp_path / "project")}
    project = new_project(tmp_path, engine_dir, env, source=EXAMPLE, manifest={"runtime": python_runtime()},
                          files={"pulumi_ucloud.py": STAND_IN})
    project.config("rootPassword", "Example-Passw0rd", secret=True)
    return project


def steps(preview: dict[str, Any], type_: str) -> dict[str, str]:
    """Name -> operation of the preview's steps for resources of one type."""
    return {s["urn"].rsplit("::", 1)[1]: s["op"] for s in preview["steps"] if s["urn"].split("::")[2] == type_}


def test_preview_then_up_resolves_the_example_images(example: Project, emulator: Emulator) -> None:
    started = time.monotonic()
    planned = example.preview()
    assert steps(planned, PIN_TYPE) == {"web-golden": "create"}
    assert steps(planned, HOST_TYPE) == {"scratch": "create", "web-0": "create", "web-1": "create"}

    example.run("up", "--yes")
    outputs = example.outputs()
    ubuntu = lookup_images(region="cn-bj2", zone="cn-bj2-02", image_type="base", os_type="linux",
                           name_regex=r"^Ubuntu 22\.04", architecture="x86_64", most_recent=True)
    golden = newest_golden_web(emulator)
    assert outputs["ubuntuImageId"] == ubuntu.image_id
    assert outputs["goldenImageId"] == outputs["goldenLatestImageId"] == golden["ImageId"]
    assert outputs["goldenImageName"] == golden["ImageName"]
    hosts = example.resources()
    assert hosts["scratch"]["outputs"]["image_id"] == ubuntu.image_id
    assert hosts["web-0"]["outputs"]["image_id"] == hosts["web-1"]["outputs"]["image_id"] == golden["ImageId"]
    print(f"\nexample preview + up under the engine: {time.monotonic() - started:.1f} s")


def test_golden_image_pinning_end_to_end(example: Project, emulator: Emulator) -> None:
    timings: dict[str, float] = {}

    def timed(name: str, *args: str) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = example.run(*args)
        timings[name] = time.monotonic() - started
        return done

    timed("up", "up", "--yes")
    pinned = example.outputs()["goldenImageId"]

    # A newer golden image is published: nothing moves.
    newer = {**newest_golden_web(emulator), "ImageId": "uimage-gw1201", "ImageName": "golden-web-2026.12.01",
             "CreateTime": int(time.time())}
    emulator.publish(newer)
    started = time.monotonic()
    quiet = example.preview()
    timings["preview"] = time.monotonic() - started
    assert steps(quiet, PIN_TYPE) == {"web-golden": "same"}
    assert set(steps(quiet, HOST_TYPE).values()) == {"same"}
    example.run("preview", "--expect-no-changes")

    # A refresh records the newer image as the latest, without touching the pin.
    timed("refresh", "refresh", "--yes")
    pin = example.resources()["web-golden"]["outputs"]
    assert (pin["image_id"], pin["latest_image_id"]) == (pinned, "uimage-gw1201")
    example.run("preview", "--expect-no-changes")

    # A new repin value replaces the pin and updates the hosts that use it.
    example.config("webRepin", "2026-12-01")
    planned = example.preview()
    assert steps(planned, PIN_TYPE)["web-golden"] in {"replace", "create-replacement"}
    assert steps(planned, HOST_TYPE) == {"scratch": "same", "web-0": "update", "web-1": "update"}
    example.run("up", "--yes")
    hosts = example.resources()
    assert example.outputs()["goldenImageId"] == "uimage-gw1201"
    assert hosts["web-0"]["outputs"]["image_id"] == hosts["web-1"]["outputs"]["image_id"] == "uimage-gw1201"
    assert hosts["scratch"]["outputs"]["image_id"] != "uimage-gw1201"

    timed("destroy", "destroy", "--yes")
    assert example.resources() == {}
    print("\nengine wall times on the example: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def test_pipeline_script_hands_the_image_to_the_stack(example: Project) -> None:
    """examples/pipeline.sh with the real CLI: the ID found in the stack's zone lands in its config, and the
    program boots the scratch host on it."""
    example.config("zone", "cn-bj2-02")  # where the golden images are; the region-wide newest is elsewhere
    done = subprocess.run(["bash", str(ROOT / "examples" / "pipeline.sh"), "dev"], cwd=example.dir,
                          env=example.env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    expected = lookup_images(region="cn-bj2", zone="cn-bj2-02", image_type="base", os_type="linux",
                             name_regex=r"^Ubuntu 22\.04", architecture="x86_64", most_recent=True).image_id
    assert example.run("config", "get", "scratchImageId").stdout.strip() == expected
    assert done.stderr.strip().endswith(f"scratchImageId = {expected}")
    def scratch_image() -> str:
        (scratch,) = [s for s in example.preview()["steps"] if s["urn"].endswith("::scratch")]
        return str(scratch["newState"]["inputs"]["image_id"])

    assert scratch_image() == expected
    example.config("scratchImageId", "uimage-ub2205")  # not what the program's own lookup gives: it is read
    assert scratch_image() == "uimage-ub2205"


def test_pipeline_script_leaves_the_stack_alone_when_the_lookup_fails(example: Project) -> None:
    env = {**example.env, "UCLOUD_PRIVATE_KEY": "a-wrong-private-key"}
    done = subprocess.run(["bash", str(ROOT / "examples" / "pipeline.sh"), "dev"], cwd=example.dir, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 5
    assert "RetCode 171" in done.stderr
    assert "a-wrong-private-key" not in done.stderr + done.stdout
    assert example.run("config", "get", "scratchImageId", check=False).returncode != 0

