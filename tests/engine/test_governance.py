"""Golden-image governance under the real engine: a PinnedImage reads a lockfile channel, and a revoked image
fails the preview with the library's sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulumi_ucloud_images._lockfile.lockfile import LATEST, LockedImage, Lockfile, now_iso
from pulumi_ucloud_images._lockfile.writer import write_lockfile
from pulumi_ucloud_images._query import parse_query
from tests.engine.engine_project import new_project, python_runtime

pytestmark = [pytest.mark.engine, pytest.mark.slow]

PROGRAM = '''\
import pulumi
from pulumi_ucloud_images import PinnedImage

pin = PinnedImage("web", lock="web@prod")
pulumi.export("pinned", pin.image_id)
'''
PROD, NEWER = "uimage-gw0307", "uimage-gw0314"  # golden-web builds of the catalogue, in cn-bj2


def image(image_id: str, name: str) -> LockedImage:
    return LockedImage(image_id=image_id, image_name=name, image_type="Custom", architecture="x86_64",
                       create_time=1773000000, locked_at=now_iso())


def test_pinned_image_reads_a_channel_and_a_revoked_image_fails_the_preview(
    tmp_path: Path, engine_dir: Path, emulator_env: dict[str, str]
) -> None:
    project = new_project(tmp_path, engine_dir, emulator_env, manifest={"name": "golden", "runtime": python_runtime()},
                          files={"__main__.py": PROGRAM})
    path = project.dir / "ucloud-images.lock.json"
    query = parse_query(project_id="org-platform", image_type="custom", name_regex="^golden-web-", most_recent=True)
    lockfile = Lockfile.empty(path).with_selection("web", query, ["prod"])
    lockfile = lockfile.with_images("web", LATEST, {"cn-bj2": image(NEWER, "golden-web-2026.03.14")}, "lock")
    lockfile = lockfile.with_images("web", "prod", {"cn-bj2": image(PROD, "golden-web-2026.03.07")}, "promote")
    write_lockfile(path, lockfile)

    project.run("up", "--yes")
    assert project.outputs()["pinned"] == PROD  # the channel, not the newest match (latest)

    revoked = lockfile.with_revocation(PROD, "CVE-2026-0001 in openssl", now_iso())
    write_lockfile(path, revoked, lockfile)
    done = project.run("preview", check=False)
    shown = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"The pin web@prod holds image {PROD}, revoked since" in shown
    assert "CVE-2026-0001 in openssl" in shown and "ucloud-images rollback web --channel prod" in shown
    assert "Traceback" not in shown
