"""The Python example under the real engine: preview, up, golden-image pinning and rolling the hosts end to end.

The example's UHosts come from the UCloud provider's generated SDK, which cannot be had offline; the copy of the
example gets a ``pulumi_ucloud`` module whose ``Instance`` is a dynamic resource taking the same arguments and,
like the real ``ucloud_instance``, ignoring a changed ``image_id`` once the host exists, so the engine diffs,
updates and replaces the hosts as it would real ones. Everything else is the example as shipped.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pulumi_ucloud_images import lookup_images
from pulumi_ucloud_images._emulator.service import Emulator
from tests.engine.engine_project import ROOT, Project, new_project, python_runtime

pytestmark = [pytest.mark.engine, pytest.mark.slow]

EXAMPLE = ROOT / "examples" / "python"
HOST_TYPE = "pulumi-python:dynamic:Resource"
PIN_TYPE = "pulumi-python:dynamic/ucloud-images:PinnedImage"

STAND_IN = '''\
"""Stand-in for the generated UCloud SDK: ``Instance`` as a dynamic resource with the same arguments."""

import uuid

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult


class _InstanceProvider(ResourceProvider):
    def create(self, props):
        return CreateResult(f"uhost-{uuid.uuid4().hex[:12]}", dict(props))  # a new host, a new ID

    def diff(self, _id, olds, news):
        # As ucloud_instance's DiffSuppressFunc on image_id (ucloud/terraform-provider-ucloud,
        # ucloud/resource_ucloud_instance.go): once the host has an image, a changed image_id is no change.
        suppressed = {"__provider", "image_id"} if olds.get("image_id") else {"__provider"}
        changed = [key for key in news if key not in suppressed and olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(changed), replaces=[])

    def update(self, _id, olds, news):
        return UpdateResult({**news, "image_id": olds["image_id"]})  # the host keeps the image it booted


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


def new_inputs(preview: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Name -> the inputs a preview's step plans for that resource (its checked inputs)."""
    return {s["urn"].rsplit("::", 1)[1]: s["newState"].get("inputs", {}) for s in preview["steps"] if s.get("newState")}


def test_up_with_the_previews_plan_pins_the_previewed_image_or_stops(example: Project, emulator: Emulator) -> None:
    """The image a preview showed travels in the pin's checked inputs, which a saved plan holds: ``up --plan``
    pins it, and after a newer image was published in between, stops before it changes anything."""
    golden = newest_golden_web(emulator)
    example.run("preview", "--save-plan", "plan.json")
    emulator.publish({**golden, "ImageId": "uimage-gw1201", "ImageName": "golden-web-2026.12.01",
                      "CreateTime": int(time.time())})
    done = example.run("up", "--yes", "--plan", "plan.json", check=False)
    assert done.returncode != 0
    assert f"violates plan: properties changed: ++image_id[{{{golden['ImageId']}}}!={{uimage-gw1201}}]" in done.stdout
    assert not [r for r in example.resources().values() if r["type"] != "pulumi:pulumi:Stack"]

    emulator.remove("uimage-gw1201")
    example.run("preview", "--save-plan", "plan.json")
    example.run("up", "--yes", "--plan", "plan.json")
    assert example.outputs()["goldenImageId"] == golden["ImageId"]


def replaced(operations: dict[str, str]) -> set[str]:
    """The names a preview replaces (a replacement shows as several steps: create-replacement, replace, ...)."""
    return {name for name, op in operations.items() if "replace" in op}


def test_preview_then_up_resolves_the_example_images(example: Project, emulator: Emulator) -> None:
    started = time.monotonic()
    golden = newest_golden_web(emulator)
    planned = example.preview()
    assert steps(planned, PIN_TYPE) == {"web-golden": "create"}
    assert steps(planned, HOST_TYPE) == {"scratch": "create", "web-0": "create", "web-1": "create"}
    # The first preview already shows the image the new pin will take, and so the web hosts' image.
    assert new_inputs(planned)["web-golden"]["image_id"] == golden["ImageId"]
    assert new_inputs(planned)["web-0"]["image_id"] == new_inputs(planned)["web-1"]["image_id"] == golden["ImageId"]

    example.run("up", "--yes")
    outputs = example.outputs()
    ubuntu = lookup_images(region="cn-bj2", zone="cn-bj2-02", image_type="base", os_type="linux",
                           name_regex=r"^Ubuntu 22\.04", architecture="x86_64", most_recent=True)
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

    # A new repin value replaces the pin, and its replacement_trigger replaces exactly the hosts on that pin.
    example.config("webRepin", "2026-12-01")
    planned = example.preview()
    assert steps(planned, PIN_TYPE)["web-golden"] in {"replace", "create-replacement"}
    assert replaced(steps(planned, HOST_TYPE)) == {"web-0", "web-1"}
    before = example.resources()
    timed("up (re-pin)", "up", "--yes")
    hosts = example.resources()
    assert example.outputs()["goldenImageId"] == "uimage-gw1201"
    assert hosts["web-0"]["outputs"]["image_id"] == hosts["web-1"]["outputs"]["image_id"] == "uimage-gw1201"
    assert {name for name in ("scratch", "web-0", "web-1") if hosts[name]["id"] != before[name]["id"]} == {
        "web-0", "web-1"}

    # A re-pin that finds no newer image keeps the image: the trigger is unchanged, no host is replaced.
    example.config("webRepin", "2026-12-02")
    planned = example.preview()
    assert steps(planned, PIN_TYPE)["web-golden"] in {"replace", "create-replacement"}
    assert replaced(steps(planned, HOST_TYPE)) == set()  # the preview knows the image, and so the trigger
    example.run("up", "--yes")
    after = example.resources()
    assert {name: after[name]["id"] for name in after if name.startswith("web-")} == {
        name: hosts[name]["id"] for name in hosts if name.startswith("web-")}

    timed("destroy", "destroy", "--yes")
    assert example.resources() == {}
    print("\nengine wall times on the example: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def test_without_the_replacement_trigger_a_repin_leaves_the_hosts_alone(
    tmp_path: Path, engine_dir: Path, emulator_env: dict[str, str], emulator: Emulator
) -> None:
    """What the example's replacement_trigger is for: with the real provider's diff, a re-pin alone changes the
    pin and nothing on the hosts, which keep booting the image they were created with."""
    program = (EXAMPLE / "__main__.py").read_text(encoding="utf-8")
    assert ', roll_with_the_pin)' in program
    env = {**emulator_env, "PYTHONPATH": str(tmp_path / "project")}
    project = new_project(tmp_path, engine_dir, env, source=EXAMPLE, manifest={"runtime": python_runtime()},
                          files={"pulumi_ucloud.py": STAND_IN,
                                 "__main__.py": program.replace(", roll_with_the_pin)", ")")})
    project.config("rootPassword", "Example-Passw0rd", secret=True)
    project.run("up", "--yes")
    first = project.resources()
    emulator.publish({**newest_golden_web(emulator), "ImageId": "uimage-gw1201",
                      "ImageName": "golden-web-2026.12.01", "CreateTime": int(time.time())})
    project.config("webRepin", "2026-12-01")
    planned = project.preview()
    assert steps(planned, PIN_TYPE)["web-golden"] in {"replace", "create-replacement"}
    assert set(steps(planned, HOST_TYPE).values()) == {"same"}
    project.run("up", "--yes")
    hosts = project.resources()
    assert project.outputs()["goldenImageId"] == "uimage-gw1201"
    assert hosts["web-0"]["outputs"]["image_id"] == first["web-0"]["outputs"]["image_id"] != "uimage-gw1201"
    assert all(hosts[name]["id"] == first[name]["id"] for name in ("scratch", "web-0", "web-1"))


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

