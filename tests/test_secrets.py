"""The private key never shows: not in a repr, a str, an error, a log line, the command's output or a pickle."""

from __future__ import annotations

import copy
import json
import logging
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pulumi_ucloud_images import (
    APIError,
    Client,
    RetryPolicy,
    Settings,
    UCloudImagesError,
    find_images,
    lookup_images,
    resolve_settings,
)
from pulumi_ucloud_images._catalog import build_catalog
from pulumi_ucloud_images._cli import main
from pulumi_ucloud_images._emulator import Emulator

PUBLIC_KEY = "pk-team-platform"
SECRET = "sk-Zq8vR2-very-private-4f9a"  # distinctive, so any leak is found
FRAGMENTS = (SECRET, SECRET[3:15], "very-private")
NO_SLEEP = RetryPolicy(attempts=2, sleep=lambda seconds: None)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for fragment in FRAGMENTS:
            assert fragment not in text


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(build_catalog(), keys={PUBLIC_KEY: SECRET}) as server:
        yield server


@pytest.fixture
def settings(emulator: Emulator, tmp_path: Path) -> Settings:
    return resolve_settings(public_key=PUBLIC_KEY, private_key=SECRET, region="cn-bj2", base_url=emulator.base_url,
                            env={}, home=tmp_path)


def test_settings_show_no_secret(settings: Settings) -> None:
    assert_no_secret(repr(settings), str(settings), f"{settings!r:>200}", settings.model_dump_json(),
                     json.dumps(settings.model_dump(mode="json")), repr(settings.model_dump()))
    assert settings.private_key.get_secret_value() == SECRET  # it is there, only hidden
    assert "**********" in settings.model_dump_json()


def test_settings_refuse_to_be_pickled(settings: Settings) -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError) as caught:
            pickle.dumps(settings, protocol=protocol)
        assert str(caught.value) == (
            "Settings hold a private key and are never pickled; resolve them where they are used."
        )
    for duplicate in (copy.copy(settings), copy.deepcopy(settings)):  # copies do not go through pickling
        assert duplicate == settings
        assert duplicate.private_key.get_secret_value() == SECRET


def test_a_client_shows_no_secret(settings: Settings) -> None:
    with Client(settings) as client:
        assert_no_secret(repr(client), str(client))
        assert PUBLIC_KEY in repr(client)


def test_results_and_images_carry_no_secret(settings: Settings) -> None:
    with Client(settings, retry=NO_SLEEP) as client:
        result = lookup_images(image_id="uimage-f1chxn", client=client)
        images = find_images(os_type="linux", client=client)
    assert_no_secret(repr(result), json.dumps(result.to_json(), ensure_ascii=False), repr(images),
                     pickle.dumps(result).decode("latin-1"))


def test_errors_show_no_secret(settings: Settings, emulator: Emulator, tmp_path: Path) -> None:
    errors: list[UCloudImagesError] = []
    wrong = settings.model_copy(update={"public_key": "pk-unknown"})
    for case in (settings, wrong):
        with Client(case, retry=NO_SLEEP) as client:
            cases: list[dict[str, Any]] = [{"name_regex": "^Ubuntu"}, {"name_regex": "^Plan 9"}, {"region": "mars"}]
            for filters in cases:
                try:
                    lookup_images(client=client, **filters)
                except UCloudImagesError as failure:
                    errors.append(failure)
    with pytest.raises(UCloudImagesError) as caught:  # a key without its public half
        resolve_settings(private_key=SECRET, region="cn-bj2", env={}, home=tmp_path)
    errors.append(caught.value)
    with pytest.raises(UCloudImagesError) as caught:  # the private key of a different account
        resolve_settings(public_key="pk", private_key=SECRET, region="cn-bj2", timeout=-1, env={}, home=tmp_path)
    errors.append(caught.value)
    assert {type(error).__name__ for error in errors} >= {
        "AmbiguousImageError", "NoImageFoundError", "APIError", "CredentialsError", "InvalidQueryError"
    }
    for error in errors:
        assert_no_secret(str(error), repr(error), repr(error.args), repr(vars(error)),
                         pickle.dumps(error).decode("latin-1"))


def test_a_wrong_private_key_is_not_echoed_either(settings: Settings) -> None:
    wrong = settings.model_copy(update={"private_key": settings.private_key.__class__(SECRET + "-typo")})
    with Client(wrong, retry=NO_SLEEP) as client, pytest.raises(APIError) as caught:
        lookup_images(client=client)
    assert caught.value.ret_code == 171
    assert_no_secret(str(caught.value), repr(caught.value))


def test_no_log_line_carries_the_secret(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with Client(settings, retry=NO_SLEEP) as client:
        lookup_images(image_id="uimage-f1chxn", client=client)
        with pytest.raises(UCloudImagesError):
            lookup_images(name_regex="^Ubuntu", client=client)
    wrong = settings.model_copy(update={"public_key": "pk-unknown"})
    with Client(wrong, retry=NO_SLEEP) as client, pytest.raises(APIError):
        lookup_images(client=client)
    assert caplog.records, "DEBUG logging was captured (urllib3 logs every connection and request)"
    assert_no_secret(caplog.text, *(repr(record.args) for record in caplog.records))


@pytest.mark.parametrize(
    "argv",
    [
        ["find", "--image-id", "uimage-f1chxn"],
        ["find", "--image-id", "uimage-f1chxn", "--output", "json"],
        ["list", "--name-regex", "^CentOS"],
        ["list", "--name-regex", "^CentOS", "--output", "json"],
        ["find", "--name-regex", "^Ubuntu"],
        ["find", "--name-regex", "^Plan 9"],
        ["find", "--os-type", "plan9"],
        ["find", "--region", "mars"],
        ["find", "--timeout", "-1"],
        ["find", "--public-key", "pk-unknown"],
        ["find", "--colour", "red"],
    ],
)
def test_the_command_never_prints_the_secret(
    emulator: Emulator, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, argv: list[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = ["--region", "cn-bj2", "--base-url", emulator.base_url, "--private-key", SECRET]
    if "--public-key" not in argv:
        settings += ["--public-key", PUBLIC_KEY]
    main([*argv, *settings])
    captured = capsys.readouterr()
    assert captured.out or captured.err
    assert_no_secret(captured.out, captured.err, caplog.text)


@pytest.mark.parametrize(
    "argv",
    [
        ["find", "--region", "cn-bj2", "--private_key", SECRET],  # the Python spelling of the flag
        ["find", "--region", "cn-bj2", "--private-kye", SECRET],
        ["find", "--region", "cn-bj2", "--private", SECRET],  # no abbreviations: not taken as --private-key
        ["find", "--region", "cn-bj2", SECRET],
    ],
)
def test_a_mistyped_secret_flag_is_a_usage_error_that_does_not_echo_the_value(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ucloud-images: error: Un")
    assert_no_secret(captured.out, captured.err)


def test_the_command_never_prints_a_secret_from_the_environment(
    emulator: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", SECRET)
    monkeypatch.setenv("UCLOUD_API_BASE_URL", emulator.base_url)
    monkeypatch.setenv("UCLOUD_REGION", "cn-bj2")
    assert main(["find", "--image-id", "uimage-f1chxn"]) == 5  # no public key: the error names the places
    monkeypatch.setenv("UCLOUD_PUBLIC_KEY", PUBLIC_KEY)
    assert main(["find", "--image-id", "uimage-f1chxn", "--output", "json"]) == 0
    captured = capsys.readouterr()
    assert "uimage-f1chxn" in captured.out and "public key" in captured.err
    assert_no_secret(captured.out, captured.err)
