"""The provider plugin under the engine: a YAML program (no Python of ours in it) invokes getImages and
creates a PinnedImage through ``pulumi-resource-ucloud-images``."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_project import VENV_BIN, new_project

from pulumi_ucloud_images import AmbiguousImageError, lookup_images
from pulumi_ucloud_images._emulator import Emulator

pytestmark = [pytest.mark.engine, pytest.mark.slow]

PROGRAM = {
    "variables": {
        "centos": {"fn::invoke": {"function": "ucloud-images:index:getImages",
                                  "arguments": {"osType": "Linux", "nameRegex": r"^CentOS 7\.2 64"}}},
        "ubuntu": {"fn::invoke": {"function": "ucloud-images:index:getImages",
                                  "arguments": {"osType": "Linux", "imageType": "Base", "nameRegex": r"^Ubuntu 22\.04",
                                                "architecture": "x86_64", "mostRecent": True}}},
    },
    "resources": {
        "pinnedCentos": {"type": "ucloud-images:index:PinnedImage",
                         "properties": {"osType": "Linux", "nameRegex": r"^CentOS 7\.2 64", "repin": "1"}},
    },
    "outputs": {
        "centosImageId": "${centos.imageId}",
        "ubuntuImageId": "${ubuntu.imageId}",
        "ubuntuCandidates": "${ubuntu.ids}",
        "pinnedImageId": "${pinnedCentos.imageId}",
        "pinnedLatestImageId": "${pinnedCentos.latestImageId}",
    },
}


def test_a_yaml_program_invokes_get_images_and_pins_through_the_plugin(
    tmp_path: Path, engine_dir: Path, emulator: Emulator, emulator_env: dict[str, str]
) -> None:
    manifest = {"name": "plugin", "runtime": "yaml", **PROGRAM,
                "plugins": {"providers": [{"name": "ucloud-images", "path": str(VENV_BIN)}]}}
    project = new_project(tmp_path, engine_dir, emulator_env, manifest=manifest)
    project.run("preview")
    project.run("up", "--yes")

    outputs = project.outputs()
    centos = lookup_images(os_type="linux", name_regex=r"^CentOS 7\.2 64")
    ubuntu = lookup_images(os_type="linux", image_type="base", name_regex=r"^Ubuntu 22\.04", architecture="x86_64",
                           most_recent=True)
    assert outputs["centosImageId"] == outputs["pinnedImageId"] == outputs["pinnedLatestImageId"] == centos.image_id
    assert outputs["ubuntuImageId"] == ubuntu.image_id
    assert outputs["ubuntuCandidates"] == list(ubuntu.ids)
    (pin,) = [r for r in project.resources().values() if r["type"] == "ucloud-images:index:PinnedImage"]
    assert pin["outputs"]["imageId"] == centos.image_id

    # A newer twin of the pinned image changes nothing; a refresh shows it as the latest.
    newest = next(r for r in emulator.images("cn-bj2") if r["ImageId"] == centos.image_id)
    emulator.publish({**newest, "ImageId": "uimage-c72new", "CreateTime": newest["CreateTime"] + 1})
    project.run("preview", "--expect-no-changes")
    project.run("refresh", "--yes")
    (pin,) = [r for r in project.resources().values() if r["type"] == "ucloud-images:index:PinnedImage"]
    assert (pin["outputs"]["imageId"], pin["outputs"]["latestImageId"]) == (centos.image_id, "uimage-c72new")
    project.run("destroy", "--yes")


def test_a_yaml_program_shows_the_plugin_error_for_an_ambiguous_query(
    tmp_path: Path, engine_dir: Path, emulator_env: dict[str, str]
) -> None:
    manifest = {
        "name": "plugin-errors", "runtime": "yaml",
        "plugins": {"providers": [{"name": "ucloud-images", "path": str(VENV_BIN)}]},
        "variables": {"any": {"fn::invoke": {"function": "ucloud-images:index:getImages",
                                             "arguments": {"osType": "Linux", "nameRegex": "^Ubuntu"}}}},
        "outputs": {"id": "${any.imageId}"},
    }
    with pytest.raises(AmbiguousImageError) as raised:
        lookup_images(os_type="linux", name_regex="^Ubuntu")
    project = new_project(tmp_path, engine_dir, emulator_env, manifest=manifest)
    done = project.run("preview", check=False)
    shown = done.stdout + done.stderr
    assert done.returncode != 0
    assert str(raised.value).splitlines()[0] in shown
    assert "Traceback" not in shown
