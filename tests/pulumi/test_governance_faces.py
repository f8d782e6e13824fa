"""Golden-image governance in every face that reads a pin: ``lookup_images(lock=...)``, ``get_images`` (plain and
under mocks), ``PinnedImage`` (under mocks, and its provider's check) and the plugin's ``lock`` input.

The lockfile is built with the model's own API (what the commands write), holding a channel ``prod`` over two
regions, so no API call is needed to read it; the emulator only stands by to prove none is made.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import pulumi
import pulumi.runtime
import pytest
from google.protobuf import json_format
from pulumi.runtime.proto import engine_pb2

from pulumi_ucloud_images import (
    InvalidQueryError,
    LockfileError,
    PinnedImage,
    RevokedImageError,
    get_images,
    get_images_output,
    lookup_images,
)
from pulumi_ucloud_images._cli.common import exit_code_for
from pulumi_ucloud_images._emulator.service import Emulator
from pulumi_ucloud_images._lockfile.lockfile import LATEST, LockedImage, Lockfile, utc_iso
from pulumi_ucloud_images._lockfile.writer import write_lockfile
from pulumi_ucloud_images._pulumi.pinned_image import LOCKED, PinnedImageProvider
from pulumi_ucloud_images._query import parse_query
from tests.lockfile.test_pins_and_warnings import Recording, with_mocks
from tests.pulumi.test_provider import (  # noqa: F401  (fixtures)
    FakeEngine,
    Plugin,
    engine,
    failures,
    pinned_call,
    plugin,
    result,
    slow,
)

QUERY = parse_query(project_id="org-platform", image_type="custom", name_regex="^golden-web-", most_recent=True)
BJ, SH = "uimage-gw0314", "uimage-s52iks"  # golden-web-2026.03.14 in cn-bj2 and in cn-sh2 (the catalogue's)
OLD_BJ = "uimage-gw0307"


def image(image_id: str, name: str = "golden-web-2026.03.14") -> LockedImage:
    return LockedImage(image_id=image_id, image_name=name, image_type="Custom", maintain_eol=None,
                       architecture="x86_64", create_time=1773400000, locked_at="2026-03-15T00:00:00Z")


def governed(path: Path) -> Lockfile:
    """``web`` over cn-bj2 and cn-sh2, promoted to ``prod``; ``dev`` declared and empty; ``one`` in cn-bj2."""
    lockfile = Lockfile.empty(path).with_selection("web", QUERY, ["dev", "prod"])
    lockfile = lockfile.with_images("web", LATEST, {"cn-bj2": image(BJ), "cn-sh2": image(SH)}, "lock")
    lockfile = lockfile.with_images("web", "prod", {"cn-bj2": image(BJ), "cn-sh2": image(SH)}, "promote")
    lockfile = lockfile.with_selection("one", QUERY, [])
    lockfile = lockfile.with_images("one", LATEST, {"cn-bj2": image(OLD_BJ, "golden-web-2026.03.07")}, "lock")
    write_lockfile(path, lockfile)
    return lockfile


@pytest.fixture
def lock_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ucloud_emulator_env: Emulator) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UCLOUD_REGION", raising=False)
    path = tmp_path / "ucloud-images.lock.json"
    governed(path)
    ucloud_emulator_env.reset_requests()
    return path


@pytest.fixture
def no_engine() -> Iterator[None]:
    pulumi.runtime.reset_options()
    yield
    pulumi.runtime.reset_options()


def revoke(path: Path, image_id: str, *, days: int = 0) -> None:
    at = utc_iso(int((datetime.now(timezone.utc) + timedelta(days=days)).timestamp()))
    lockfile = Lockfile.load(path)
    write_lockfile(path, lockfile.with_revocation(image_id, "CVE-2026-0001", at), lockfile)


def deprecate(path: Path, image_id: str, replacement: str) -> None:
    lockfile = Lockfile.load(path)
    write_lockfile(path, lockfile.with_deprecation(image_id, replacement, "kernel 6.8"), lockfile)


# -- plain Python: lookup_images(lock=...) ---------------------------------------------------------------


def test_lookup_images_reads_a_channel_per_region_without_any_request(
    lock_path: Path, ucloud_emulator_env: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert lookup_images(lock="web@prod", region="cn-sh2").image_id == SH
    result = lookup_images(lock="web@prod", region="cn-bj2")
    assert (result.image_id, result.region, result.query) == (BJ, "cn-bj2", QUERY)
    assert lookup_images(lock="one").image_id == OLD_BJ  # one region: no need to name it
    assert lookup_images(lock="one", lockfile=lock_path, **QUERY.to_args()).image_id == OLD_BJ
    with pytest.raises(LockfileError, match=r"covers the regions cn-bj2, cn-sh2; name one"):
        lookup_images(lock="web@prod")
    monkeypatch.setenv("UCLOUD_REGION", "cn-sh2")  # the configured region picks one
    assert lookup_images(lock="web@prod").image_id == SH
    with pytest.raises(LockfileError, match=r"does not cover region 'hk'; it covers cn-bj2, cn-sh2"):
        lookup_images(lock="web@prod", region="hk")
    with pytest.raises(LockfileError, match=r"Channel web@dev of .* is empty; fill it with 'ucloud-images promote"):
        lookup_images(lock="web@dev", region="cn-bj2")
    with pytest.raises(LockfileError, match=r"has no channel 'qa' \(its declared channels: dev, prod\)"):
        lookup_images(lock="web@qa")
    with pytest.raises(InvalidQueryError, match=r"With lock no API call is made, so public_key would do nothing"):
        lookup_images(lock="one", public_key="x")
    assert ucloud_emulator_env.request_count == 0


def test_revoked_is_an_error_from_its_date_and_a_warning_before_in_plain_python(lock_path: Path) -> None:
    revoke(lock_path, SH, days=5)
    result = lookup_images(lock="web@prod", region="cn-sh2")
    assert result.image_id == SH
    (warning,) = result.warnings
    assert f"the pin web@prod holds image {SH}, which will be revoked on " in warning
    assert lookup_images(lock="web@prod", region="cn-bj2").warnings == ()  # the other region's image is fine
    revoke(lock_path, SH)
    with pytest.raises(RevokedImageError) as caught:
        lookup_images(lock="web@prod", region="cn-sh2")
    message = str(caught.value)
    assert f"The pin web@prod holds image {SH}, revoked since" in message and "(CVE-2026-0001; recorded in" in message
    assert "'ucloud-images rollback web --channel prod' or 'ucloud-images promote web --to prod'" in message
    assert exit_code_for(caught.value) == 2


# -- get_images -------------------------------------------------------------------------------------------


def test_get_images_reads_a_channel_and_warns_through_pulumi(
    lock_path: Path, no_engine: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert get_images(lock="web@prod", region="cn-sh2").image_id == SH
    deprecate(lock_path, BJ, "web@dev")
    capsys.readouterr()
    assert get_images(lock="web@prod", region="cn-bj2").image_id == BJ
    assert f"warning: the pin web@prod holds image {BJ}, deprecated in favour of web@dev: kernel 6.8" in (
        capsys.readouterr().err
    )
    revoke(lock_path, BJ)
    with pytest.raises(RevokedImageError) as caught:
        get_images(lock="web@prod", region="cn-bj2")
    assert isinstance(caught.value, pulumi.RunError)  # one sentence under the engine
    seen: list[str] = []

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        return get_images_output(lock="web@prod", region="cn-sh2").apply(lambda found: seen.append(found.image_id))

    program()
    assert seen == [SH]


def test_under_mocks_a_channel_invokes_with_its_query_in_the_region(lock_path: Path) -> None:
    mocks = Recording()
    with_mocks(mocks)
    try:
        assert get_images(lock="web@prod", region="cn-sh2").image_id == "uimage-mocked"
        revoke(lock_path, SH)
        with pytest.raises(RevokedImageError):
            get_images(lock="web@prod", region="cn-sh2")
    finally:
        pulumi.runtime.reset_options()
    (call,) = mocks.calls
    assert call.args == {"region": "cn-sh2", "projectId": "org-platform", "imageType": "Custom",
                         "nameRegex": "^golden-web-", "mostRecent": True}


# -- PinnedImage -------------------------------------------------------------------------------------------


def test_pinned_image_takes_a_channel_and_surfaces_its_warnings(
    lock_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deprecate(lock_path, SH, BJ)
    mocks = Recording()
    with_mocks(mocks)
    try:
        @pulumi.runtime.test
        def program() -> pulumi.Output[str]:
            return PinnedImage("web", lock="web@prod", region="cn-sh2").image_id

        with caplog.at_level(logging.WARNING):
            program()
        revoke(lock_path, SH)
        with pytest.raises(RevokedImageError, match=f"holds image {SH}, revoked since"):
            PinnedImage("again", lock="web@prod", region="cn-sh2")
        with pytest.raises(LockfileError, match="is empty; fill it with 'ucloud-images promote web --to dev'"):
            PinnedImage("dev", lock="web@dev", region="cn-bj2")
    finally:
        pulumi.runtime.reset_options()
    (args,) = mocks.resources
    carried = args.inputs[LOCKED]
    assert (carried["name"], carried["image_id"], carried["region"]) == ("web@prod", SH, "cn-sh2")
    assert carried["image_type"] == "Custom" and carried["architecture"] == "x86_64"
    assert f"the pin web@prod holds image {SH}, deprecated in favour of {BJ}: kernel 6.8" in [
        record.getMessage() for record in caplog.records if record.levelno == logging.WARNING
    ]


def test_pinned_image_provider_checks_a_pin_with_only_its_region(lock_path: Path) -> None:
    provider = PinnedImageProvider()
    lockfile = Lockfile.load(lock_path)
    pin = lockfile.pin("web", "prod", "cn-sh2")
    inputs = {"region": "cn-sh2", LOCKED: {"name": "web@prod", "lockfile": str(lock_path), **pin.to_json()},
              "__provider": "x"}
    checked = provider.check({}, inputs)
    assert checked.failures == []
    assert checked.inputs["region"] == "cn-sh2" and checked.inputs[LOCKED]["image_id"] == SH


# -- the plugin ----------------------------------------------------------------------------------------------


@slow
def test_the_plugin_reads_a_channel_in_getimages_and_pinnedimage(
    plugin: Plugin, engine: FakeEngine, tmp_path: Path  # noqa: F811
) -> None:
    path = tmp_path / "ucloud-images.lock.json"
    governed(path)
    plugin.configure({"region": "cn-sh2"})  # the configured region picks one of the pin's regions
    found = result(plugin.invoke({"lock": "web@prod", "lockfile": str(path)}))
    assert (found["imageId"], found["region"]) == (SH, "cn-sh2")
    found = result(plugin.invoke({"lock": "web@prod", "lockfile": str(path), "region": "cn-bj2"}))
    assert found["imageId"] == BJ
    assert "does not cover region 'hk'; it covers cn-bj2, cn-sh2" in plugin.invoke_error(
        {"lock": "web@prod", "lockfile": str(path), "region": "hk"})
    assert "is empty; fill it with 'ucloud-images promote web --to dev'" in plugin.invoke_error(
        {"lock": "web@dev", "lockfile": str(path)})
    deprecate(path, BJ, "uimage-newer1")
    seen = len(engine.entries)
    result(plugin.invoke({"lock": "web@prod", "lockfile": str(path), "region": "cn-bj2"}))
    assert [(s, m) for s, m, _ in engine.entries[seen:]] == [(
        engine_pb2.WARNING,
        f"ucloud-images:index:getImages: the pin web@prod holds image {BJ}, deprecated in favour of uimage-newer1: "
        "kernel 6.8",
    )]
    checked = pinned_call(plugin, "Check", news={"lock": "web@prod", "lockfile": str(path), "region": "cn-sh2"})
    assert not checked.failures
    inputs = json_format.MessageToDict(checked.inputs)
    assert (inputs["locked"]["imageId"], inputs["region"], inputs["lock"]) == (SH, "cn-sh2", "web@prod")
    revoke(path, SH)
    refused = pinned_call(plugin, "Check", news={"lock": "web@prod", "lockfile": str(path), "region": "cn-sh2"})
    assert f"holds image {SH}, revoked since" in failures(refused)["lock"]
    with pytest.raises(grpc.RpcError) as caught:
        plugin.invoke({"lock": "web@prod", "lockfile": str(path), "region": "cn-sh2"})
    assert f"The pin web@prod holds image {SH}, revoked since" in str(caught.value.details())

