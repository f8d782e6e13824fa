"""The provider plugin under the engine: a YAML program (no Python of ours in it) invokes getImages and
creates a PinnedImage through ``pulumi-resource-ucloud-images``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pulumi_ucloud_images import list_images, lookup_images
from pulumi_ucloud_images._emulator.service import Emulator
from pulumi_ucloud_images._version import __version__
from tests.engine.engine_project import ROOT, VENV_BIN, Project, new_project

pytestmark = [pytest.mark.engine, pytest.mark.slow]

UBUNTU = {"osType": "Linux", "imageType": "Base", "nameRegex": r"^Ubuntu 22\.04", "architecture": "x86_64",
          "mostRecent": True}
PROGRAM = {
    "variables": {
        "centos": {"fn::invoke": {"function": "ucloud-images:index:getImages",
                                  "arguments": {"osType": "Linux", "nameRegex": r"^CentOS 7\.2 64"}}},
    },
    "resources": {
        "pinnedUbuntu": {"type": "ucloud-images:index:PinnedImage", "properties": {**UBUNTU, "repin": "1"}},
    },
    "outputs": {
        "centosImageId": "${centos.imageId}",
        "centosCandidates": "${centos.ids}",
        "pinnedImageId": "${pinnedUbuntu.imageId}",
        "pinnedLatestImageId": "${pinnedUbuntu.latestImageId}",
    },
}
PROVIDERS = {"providers": [{"name": "ucloud-images", "path": str(VENV_BIN)}]}


def pin_outputs(project: Project) -> dict[str, Any]:
    (pin,) = [r for r in project.resources().values() if r["type"] == "ucloud-images:index:PinnedImage"]
    return dict(pin["outputs"])


def test_a_yaml_program_invokes_get_images_and_pins_through_the_plugin(
    tmp_path: Path, engine_dir: Path, emulator: Emulator, emulator_env: dict[str, str]
) -> None:
    project = new_project(tmp_path, engine_dir, emulator_env,
                          manifest={"name": "plugin", "runtime": "yaml", **PROGRAM, "plugins": PROVIDERS})
    centos = lookup_images(os_type="linux", name_regex=r"^CentOS 7\.2 64")
    ubuntu = lookup_images(os_type="linux", image_type="base", name_regex=r"^Ubuntu 22\.04", architecture="x86_64",
                           most_recent=True)
    # The first preview shows the image the new pin will take (resolved at check, previewed by the plugin).
    planned = project.preview()
    (pin_step,) = [s for s in planned["steps"] if s["urn"].endswith("::pinnedUbuntu")]
    assert pin_step["newState"]["inputs"]["imageId"] == ubuntu.image_id
    assert re.search(rf'pinnedImageId +: "{ubuntu.image_id}"', project.run("preview").stdout)
    project.run("up", "--yes")

    outputs = project.outputs()
    assert (outputs["centosImageId"], outputs["centosCandidates"]) == (centos.image_id, list(centos.ids))
    assert outputs["pinnedImageId"] == outputs["pinnedLatestImageId"] == ubuntu.image_id
    assert pin_outputs(project)["imageName"] == ubuntu.image.image_name

    # A newer image matching the pin's query changes nothing; a refresh shows it as the latest.
    newest = next(r for r in emulator.images("cn-bj2") if r["ImageId"] == ubuntu.image_id)
    emulator.publish({**newest, "ImageId": "uimage-ub2212", "CreateTime": newest["CreateTime"] + 86400})
    project.run("preview", "--expect-no-changes")
    project.run("refresh", "--yes")
    pin = pin_outputs(project)
    assert (pin["imageId"], pin["latestImageId"]) == (ubuntu.image_id, "uimage-ub2212")

    # A new repin value re-pins to the newest image.
    project.manifest_update({"resources": {"pinnedUbuntu": {"type": "ucloud-images:index:PinnedImage",
                                                            "properties": {**UBUNTU, "repin": "2"}}}})
    project.run("up", "--yes")
    assert project.outputs()["pinnedImageId"] == "uimage-ub2212"
    project.run("destroy", "--yes")


def test_a_yaml_program_shows_the_plugin_error_for_an_ambiguous_query(
    tmp_path: Path, engine_dir: Path, emulator_env: dict[str, str]
) -> None:
    manifest = {
        "name": "plugin-errors", "runtime": "yaml",
        "plugins": PROVIDERS,
        "variables": {"any": {"fn::invoke": {"function": "ucloud-images:index:getImages",
                                             "arguments": {"osType": "Linux", "nameRegex": "^Ubuntu"}}}},
        "outputs": {"id": "${any.imageId}"},
    }
    count = len(list_images(os_type="linux", name_regex="^Ubuntu"))
    project = new_project(tmp_path, engine_dir, emulator_env, manifest=manifest)
    done = project.run("preview", check=False)
    shown = done.stdout + done.stderr
    assert done.returncode != 0
    # The core's sentence, in the plugin's spelling of the query (camelCase).
    assert f"{count} images in region cn-bj2 match osType='Linux', nameRegex='^Ubuntu', states=[Available]" in shown
    assert "Set mostRecent to take the newest, or tighten the filters." in shown
    assert "Traceback" not in shown


def test_the_yaml_example_runs_under_the_engine(tmp_path: Path, engine_dir: Path, emulator_env: dict[str, str]) -> None:
    """examples/yaml as shipped, with the plugin named by path as its README shows."""
    project = new_project(tmp_path, engine_dir, emulator_env, source=ROOT / "examples" / "yaml",
                          manifest={"plugins": PROVIDERS})
    project.run("up", "--yes")
    outputs = project.outputs()
    centos = lookup_images(os_type="linux", name_regex=r"^CentOS 7\.2 64")
    ubuntu = lookup_images(os_type="linux", image_type="base", name_regex=r"^Ubuntu 22\.04", features=["CloudInit"],
                           architecture="x86_64", most_recent=True)
    assert outputs == {"centosImageId": centos.image_id, "ubuntuImageId": ubuntu.image_id,
                       "ubuntuCandidates": list(ubuntu.ids), "pinnedImageId": centos.image_id}
    project.run("destroy", "--yes")


def test_an_explicit_provider_takes_the_ucloud_config_so_keys_are_set_once(
    tmp_path: Path, engine_dir: Path, emulator: Emulator, emulator_env: dict[str, str]
) -> None:
    """The engine hands a provider only its own namespace (ucloud-images:*); a YAML program that already sets
    ucloud:* for the UCloud provider passes those values to an explicit provider, timeout included."""
    env = {key: value for key, value in emulator_env.items() if not key.startswith("UCLOUD_")}
    settings = {"region": "${ucloud:region}", "publicKey": "${ucloud:publicKey}",
                "privateKey": "${ucloud:privateKey}", "baseUrl": "${ucloud:baseUrl}", "timeout": 20}
    manifest = {
        "name": "plugin-ucloud-config", "runtime": "yaml", "plugins": PROVIDERS,
        "resources": {"images": {"type": "pulumi:providers:ucloud-images", "properties": settings}},
        "variables": {"centos": {"fn::invoke": {"function": "ucloud-images:index:getImages",
                                                "arguments": {"osType": "Linux", "nameRegex": r"^CentOS 7\.2 64"},
                                                "options": {"provider": "${images}"}}}},
        "outputs": {"centosImageId": "${centos.imageId}"},
    }
    project = new_project(tmp_path, engine_dir, env, manifest=manifest)
    project.config("ucloud:region", "cn-bj2")
    project.config("ucloud:publicKey", emulator_env["UCLOUD_PUBLIC_KEY"])
    project.config("ucloud:privateKey", emulator_env["UCLOUD_PRIVATE_KEY"], secret=True)
    project.config("ucloud:baseUrl", emulator.base_url)
    project.run("up", "--yes")
    assert project.outputs() == {"centosImageId": "uimage-f1chxn"}
    state = project.export()
    assert emulator_env["UCLOUD_PRIVATE_KEY"] not in json.dumps(state)  # the key stays a secret in state
    project.run("destroy", "--yes")


def counting_plugin_dir(tmp_path: Path) -> tuple[Path, Path]:
    """A directory holding a ``pulumi-resource-ucloud-images`` that notes each start, then runs the real one."""
    directory, starts = tmp_path / "plugin" / "bin", tmp_path / "starts.log"
    directory.mkdir(parents=True)
    script = directory / "pulumi-resource-ucloud-images"
    script.write_text(f'#!/bin/sh\necho start >> "{starts}"\nexec "{VENV_BIN / script.name}" "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    return directory, starts


@pytest.mark.parametrize(("version", "starts_per_preview"), [(True, 1), (False, 2)], ids=["version", "no version"])
def test_a_declared_version_lets_the_yaml_host_cache_the_schema(
    tmp_path: Path, engine_dir: Path, emulator_env: dict[str, str], version: bool, starts_per_preview: int
) -> None:
    """The YAML host starts the plugin for its schema unless it has the schema cached, which it does only for a
    plugin whose version it knows; the engine starts it again for the invoke."""
    directory, starts = counting_plugin_dir(tmp_path)
    provider = {"name": "ucloud-images", "path": str(directory), **({"version": __version__} if version else {})}
    manifest = {"name": "plugin-starts", "runtime": "yaml", "plugins": {"providers": [provider]},
                "variables": PROGRAM["variables"], "outputs": {"centosImageId": "${centos.imageId}"}}
    project = new_project(tmp_path, engine_dir, emulator_env, manifest=manifest)
    project.run("preview")  # the first fills the cache, if it may
    before = len(starts.read_text(encoding="utf-8").splitlines())
    project.run("preview")
    project.run("preview")
    assert len(starts.read_text(encoding="utf-8").splitlines()) - before == 2 * starts_per_preview
    cached = tmp_path / "plugin" / f"schema-ucloud-images-{__version__}-.json"
    assert cached.exists() == version
