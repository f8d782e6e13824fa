"""Pins by name alone (``get_images(lock=...)``, ``PinnedImage(lock=...)``), end-of-life warnings in programs
(``pulumi.log.warn``), and ``lock --check`` / ``--verify`` reporting pins past their end of life."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
import pytest
from pulumi.runtime.sync_await import _ensure_event_loop

from pulumi_ucloud_images import LockfileError, PinnedImage, get_images, get_images_output, lookup_images
from pulumi_ucloud_images._cli import main as cli_main
from pulumi_ucloud_images._emulator.service import Emulator
from pulumi_ucloud_images._lockfile.lockfile import read_lockfile
from pulumi_ucloud_images._pulumi.functions import GetImagesResult
from pulumi_ucloud_images._pulumi.pinned_image import LOCKED, PinnedImageProvider
from pulumi_ucloud_images._query import ImageQuery

SELECTIONS = """\
[settings]
region = "cn-bj2"

[selections.web]
image_type = "base"
os_type = "linux"
name_regex = '^Ubuntu 22\\.04'
architecture = "x86_64"
most_recent = true

[selections.legacy]
image_type = "base"
name_regex = '^CentOS 7\\.2 '
"""
WEB: dict[str, Any] = {"image_type": "base", "os_type": "linux", "name_regex": r"^Ubuntu 22\.04",
                       "architecture": "x86_64", "most_recent": True}
TOKEN = "ucloud-images:index:getImages"


@pytest.fixture
def locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ucloud_emulator_env: Emulator) -> Path:
    """A project directory (the working directory) with its selections locked against the emulator."""
    (tmp_path / "ucloud-images.toml").write_text(SELECTIONS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert cli_main(["lock"]) == 0
    ucloud_emulator_env.reset_requests()
    return tmp_path / "ucloud-images.lock.json"


@pytest.fixture
def no_engine() -> Iterator[None]:
    pulumi.runtime.reset_options()
    yield
    pulumi.runtime.reset_options()


class Recording(pulumi.runtime.Mocks):
    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.answer = answer or {"imageId": "uimage-mocked"}
        self.calls: list[pulumi.runtime.MockCallArgs] = []
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append(args)
        return (self.answer if args.token == TOKEN else {}), []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        return f"{args.name}-id", {**args.inputs, "image_id": "uimage-pinned"}


def with_mocks(mocks: Recording) -> None:
    _ensure_event_loop()
    pulumi.runtime.reset_options()
    pulumi.runtime.set_mocks(mocks, preview=False)


# -- get_images(lock=NAME): the pin by its name alone ---------------------------------------------------------


def test_a_pin_is_read_by_its_name_alone(locked: Path, ucloud_emulator_env: Emulator, no_engine: None) -> None:
    pins = read_lockfile(locked)
    result = get_images(lock="web")
    assert result.image_id == pins["web"].image_id == lookup_images(region="cn-bj2", **WEB).image_id
    assert result.query == pins["web"].query and result.region == "cn-bj2"
    assert ucloud_emulator_env.request_count == 0  # no API call, no query repeated in code
    assert get_images(lock="legacy", lockfile=locked).image_id == "uimage-f1chxn"


def test_a_query_given_with_the_pin_must_be_the_one_locked(locked: Path, no_engine: None) -> None:
    assert get_images(**WEB, lock="web").image_id == read_lockfile(locked)["web"].image_id
    with pytest.raises(LockfileError) as caught:
        get_images(**{**WEB, "architecture": "aarch64"}, lock="web")
    message = str(caught.value)
    assert "The query for selection 'web' differs from the lockfile" in message
    assert "architecture is 'aarch64' in code but 'x86_64' in the lockfile" in message
    assert isinstance(caught.value, pulumi.RunError)  # one sentence under the engine, no traceback


def test_the_output_form_reads_a_pin_by_its_name_too(locked: Path, no_engine: None) -> None:
    seen: list[str] = []

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        return get_images_output(lock="web").apply(lambda result: seen.append(result.image_id))

    program()
    assert seen == [read_lockfile(locked)["web"].image_id]


def test_under_mocks_a_pin_by_name_invokes_with_the_locked_query(locked: Path) -> None:
    mocks = Recording()
    with_mocks(mocks)
    try:
        assert get_images(lock="web").image_id == "uimage-mocked"
    finally:
        pulumi.runtime.reset_options()
    (call,) = mocks.calls
    assert call.args == {"region": "cn-bj2", "imageType": "Base", "osType": "Linux", "nameRegex": r"^Ubuntu 22\.04",
                         "architecture": "x86_64", "mostRecent": True}


# -- warnings in programs -------------------------------------------------------------------------------------


def test_a_program_is_warned_when_the_image_is_past_its_end_of_life(
    ucloud_emulator_env: Emulator, no_engine: None, capsys: pytest.CaptureFixture[str]
) -> None:
    result = get_images(name_regex=r"^CentOS 7\.2 64位$")
    assert result.image_id == "uimage-f1chxn"
    (warning,) = result.warnings
    assert "uimage-f1chxn" in warning and "2024/06/30" in warning
    # without an engine, pulumi.log.warn writes the warning to stderr
    assert capsys.readouterr().err == f"warning: {warning}\n"
    get_images(**WEB)
    assert capsys.readouterr().err == ""  # a maintained image: no warning


def test_under_mocks_the_warnings_go_to_pulumi_log(caplog: pytest.LogCaptureFixture) -> None:
    mocks = Recording({"imageId": "uimage-old", "warnings": ["image uimage-old is past its end of life"]})
    with_mocks(mocks)
    try:
        with caplog.at_level(logging.WARNING):
            result = get_images(name_regex="^old")
    finally:
        pulumi.runtime.reset_options()
    assert isinstance(result, GetImagesResult) and result.warnings == ["image uimage-old is past its end of life"]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "image uimage-old is past its end of life"]


# -- PinnedImage(lock=NAME) ------------------------------------------------------------------------------------


def test_pinned_image_takes_a_pin_by_its_name(locked: Path) -> None:
    mocks = Recording()
    with_mocks(mocks)
    try:
        @pulumi.runtime.test
        def program() -> pulumi.Output[str]:
            return PinnedImage("web", lock="web").image_id

        program()
    finally:
        pulumi.runtime.reset_options()
    (args,) = mocks.resources
    pin = read_lockfile(locked)["web"]
    carried = args.inputs[LOCKED]
    assert (carried["name"], carried["image_id"], carried["region"]) == ("web", pin.image_id, "cn-bj2")
    assert carried["lockfile"] == str(locked)
    assert ImageQuery.model_validate(carried["query"]) == pin.query
    assert not any(args.inputs.get(name) for name in ImageQuery.model_fields)  # no filter repeated in code


def test_pinned_image_names_a_missing_pin_in_one_sentence(locked: Path) -> None:
    with pytest.raises(LockfileError) as caught:
        PinnedImage("nope", lock="nope")
    assert str(caught.value).startswith(f"The lockfile {locked} has no selection 'nope' (it has: legacy, web)")


def pinned_inputs(locked: Path, name: str, **filters: Any) -> dict[str, Any]:
    pin = read_lockfile(locked)[name]
    return {**filters, LOCKED: {"name": name, "lockfile": str(locked), **pin.to_json()}, "__provider": "x"}


def test_the_provider_keeps_the_lockfile_pin_and_its_query(locked: Path, ucloud_emulator_env: Emulator) -> None:
    provider = PinnedImageProvider()
    pin = read_lockfile(locked)["web"]
    checked = provider.check({}, pinned_inputs(locked, "web"))
    assert checked.failures == []
    assert ImageQuery.model_validate({k: v for k, v in checked.inputs.items() if k in ImageQuery.model_fields}) == \
        pin.query.model_copy(update={"region": "cn-bj2"})
    # a newer image that matches the query does not move a pin taken from the lockfile
    newest = next(r for r in ucloud_emulator_env.images("cn-bj2") if r["ImageId"] == pin.image_id)
    ucloud_emulator_env.publish({**newest, "ImageId": "uimage-ub22zz", "CreateTime": newest["CreateTime"] + 86400})
    created = provider.create(checked.inputs)
    assert created.id == pin.image_id and created.outs is not None
    assert created.outs["image_id"] == pin.image_id and created.outs["latest_image_id"] == "uimage-ub22zz"
    assert not provider.diff(created.id, created.outs, checked.inputs).changes
    moved = {**checked.inputs, LOCKED: {**checked.inputs[LOCKED], "image_id": "uimage-ub22zz"}}
    diff = provider.diff(created.id, created.outs, moved)
    assert diff.changes and LOCKED in (diff.replaces or []) and "image_id" in (diff.replaces or [])


def test_the_provider_checks_filters_given_with_a_pin_and_refuses_repin(locked: Path) -> None:
    provider = PinnedImageProvider()
    assert provider.check({}, pinned_inputs(locked, "web", **WEB)).failures == []
    wrong = provider.check({}, pinned_inputs(locked, "web", **{**WEB, "name_regex": "^Ubuntu 24"}))
    (failure,) = wrong.failures or []
    assert "name_regex is '^Ubuntu 24' in code but '^Ubuntu 22\\\\.04' in the lockfile" in failure.reason
    refused = provider.check({}, pinned_inputs(locked, "web", repin="2"))
    (failure,) = refused.failures or []
    assert failure.property == "repin" and "ucloud-images lock --update web" in failure.reason


def test_a_new_pin_past_its_end_of_life_is_a_warning_at_check(
    ucloud_emulator_env: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    warned: list[str] = []
    provider = PinnedImageProvider()
    monkeypatch.setattr(provider, "warn", warned.append)
    result = provider.check({}, {"name_regex": r"^CentOS 7\.2 64位$", "__provider": "x"})
    assert result.failures == []
    (warning,) = warned
    assert "uimage-f1chxn" in warning and "2024/06/30" in warning
    provider.check(result.inputs, {"name_regex": r"^CentOS 7\.2 64位$", "__provider": "x"})
    assert len(warned) == 1  # an unchanged pin is not resolved again, so not warned again


# -- lock --check / --verify ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["--check", "--verify"])
def test_lock_check_and_verify_report_pins_past_their_end_of_life(
    locked: Path, mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert cli_main(["lock", mode]) == 0  # the pins are current: an EOL date passing changes no pin
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "1 pin(s) past their end of life:" in lines
    (report,) = [line for line in lines if line.startswith("  ! ")]
    assert report.startswith("  ! legacy: uimage-f1chxn 'CentOS 7.2 64位' created ") and report.endswith(
        "is past its end of life (2024/06/30)")
    assert "exclude_eol = true" in out
