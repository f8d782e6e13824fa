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
    ProfileError,
    RetryPolicy,
    Settings,
    UCloudImagesError,
    list_images,
    lookup_images,
    resolve_settings,
)
from pulumi_ucloud_images._cli import main
from pulumi_ucloud_images._cli.common import exit_code_for
from pulumi_ucloud_images._emulator.catalog import build_catalog
from pulumi_ucloud_images._emulator.service import Emulator

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
        images = list_images(os_type="linux", client=client)
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


# -- a base URL with a user name or password is refused, in every face, without showing it --------------


USERINFO_URL = "http://ops-user:hunter2-userinfo@127.0.0.1:9"


def assert_url_not_shown(*texts: str) -> None:
    for text in texts:
        assert "hunter2" not in text and "ops-user" not in text


def _userinfo_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """The error of every face given the URL: each must be raised, so each face is really tried."""
    found: dict[str, str] = {}
    keys: dict[str, Any] = {"public_key": PUBLIC_KEY, "private_key": SECRET, "region": "cn-bj2"}

    def expect(face: str, call: Any) -> None:
        with pytest.raises(UCloudImagesError) as caught:
            call()
        assert exit_code_for(caught.value) == 2, face
        found[face] = f"{caught.value} {caught.value!r}"

    expect("resolve_settings argument", lambda: resolve_settings(**keys, base_url=USERINFO_URL, env={}, home=tmp_path))
    expect("environment", lambda: resolve_settings(**keys, env={"UCLOUD_API_BASE_URL": USERINFO_URL}, home=tmp_path))
    expect("Pulumi config", lambda: resolve_settings(**keys, config={"ucloud:baseUrl": USERINFO_URL}.get, env={},
                                                     home=tmp_path))
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "config.json").write_text(json.dumps([{"profile": "a", "active": True, "base_url": USERINFO_URL}]))
    expect("profile file", lambda: resolve_settings(**keys, env={"UCLOUD_SHARED_CONFIG_FILE": str(profiles /
                                                                                              "config.json")},
                                                    home=tmp_path))
    expect("Settings", lambda: Settings(public_key=PUBLIC_KEY, private_key=SECRET, base_url=USERINFO_URL))
    expect("lookup_images", lambda: lookup_images(**keys, base_url=USERINFO_URL, name_regex="x"))

    from pulumi_ucloud_images import get_images

    expect("get_images", lambda: get_images(**keys, base_url=USERINFO_URL, name_regex="x"))
    for label, argv in (("command flag", ["find", "--base-url", USERINFO_URL]),
                        ("command lock", ["lock", "--base-url", USERINFO_URL])):
        selections = tmp_path / "ucloud-images.toml"
        selections.write_text("[selections.web]\nregion = 'cn-bj2'\nname_regex = 'x'\n")
        code = main([*argv, "--public-key", PUBLIC_KEY, "--private-key", SECRET, "--region", "cn-bj2"]
                    if label == "command flag" else [*argv, "--file", str(selections), "--public-key", PUBLIC_KEY,
                                                     "--private-key", SECRET])
        captured = capsys.readouterr()
        assert code == 2, (label, captured.err)
        found[label] = captured.out + captured.err
    selections.write_text(f"[settings]\nbase_url = '{USERINFO_URL}'\n[selections.web]\nregion = 'cn-bj2'\n")
    assert main(["lock", "--file", str(selections), "--public-key", PUBLIC_KEY, "--private-key", SECRET]) == 2
    captured = capsys.readouterr()
    found["selection file [settings]"] = captured.out + captured.err
    return found


def test_a_base_url_with_userinfo_is_refused_in_every_face(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _userinfo_errors(tmp_path, capsys)
    assert len(found) == 10
    for face, text in found.items():
        assert_url_not_shown(text)
        assert "user name or password" in text, face
    assert "Invalid --base-url: it carries a user name or password" in found["command flag"]
    assert "(from the environment variable UCLOUD_API_BASE_URL)" in found["environment"]
    assert "(from base_url in [settings] of " in found["selection file [settings]"]


# -- no local variable on a lookup's way holds the private key outside a SecretStr -------------------------


def _shows_secret(value: Any, depth: int = 0) -> bool:
    """What a traceback with locals (pytest --showlocals) or an error tracker would show of a value."""
    if isinstance(value, str):
        return any(fragment in value for fragment in FRAGMENTS)
    if depth < 4 and isinstance(value, (dict, list, tuple, set, frozenset)):
        items = value.items() if isinstance(value, dict) else value
        return any(_shows_secret(item, depth + 1) for item in items)
    try:
        return any(fragment in repr(value) for fragment in FRAGMENTS)
    except Exception:
        return False


def _holders(call: Any) -> list[str]:
    """Package frames whose locals show the key as they return, and the frames of a raised error."""
    import sys

    seen: set[str] = set()

    def profile(frame: Any, event: str, arg: Any) -> None:
        code = frame.f_code
        in_package = "pulumi_ucloud_images" in code.co_filename and "_emulator" not in code.co_filename
        # the command line itself is the user's input, read by the parser: it is not kept past parsing
        if event == "return" and in_package and code.co_name != "parse":
            for name, value in list(frame.f_locals.items()):
                if _shows_secret(value):
                    seen.add(f"{Path(code.co_filename).name}:{code.co_name}:{name}")

    sys.setprofile(profile)
    try:
        call()
    except UCloudImagesError as exc:
        trace = exc.__traceback__
        while trace is not None:
            for name, value in list(trace.tb_frame.f_locals.items()):
                if _shows_secret(value) and trace.tb_frame.f_code.co_name != "<lambda>":
                    seen.add(f"traceback {trace.tb_frame.f_code.co_name}:{name}")
            trace = trace.tb_next
    finally:
        sys.setprofile(None)
    return sorted(seen)


def test_no_local_holds_the_private_key_on_a_lookups_way(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = emulator.base_url
    checked = 0

    def lookup(**kwargs: Any) -> Any:
        return lambda: lookup_images(region="cn-bj2", base_url=url, **kwargs)

    calls = {
        "explicit, found": lookup(public_key=PUBLIC_KEY, private_key=SECRET, image_id="uimage-f1chxn"),
        "explicit, no match": lookup(public_key=PUBLIC_KEY, private_key=SECRET, name_regex="^Plan 9"),
        "explicit, ambiguous": lookup(public_key=PUBLIC_KEY, private_key=SECRET, name_regex="^Ubuntu"),
        "explicit, keys rejected": lookup(public_key="pk-unknown", private_key=SECRET),
        "explicit, bad filter": lookup(public_key=PUBLIC_KEY, private_key=SECRET, os_type="plan9"),
        "explicit, bad timeout": lookup(public_key=PUBLIC_KEY, private_key=SECRET, timeout=-1),
        "command": lambda: main(["find", "--region", "cn-bj2", "--base-url", url, "--public-key", PUBLIC_KEY,
                                 "--private-key", SECRET, "--name-regex", "^Plan 9"]),
    }
    for label, call in calls.items():
        assert _holders(call) == [], label
        checked += 1
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", SECRET)
    monkeypatch.setenv("UCLOUD_PUBLIC_KEY", PUBLIC_KEY)
    assert _holders(lookup(name_regex="^Ubuntu")) == [], "from the environment"
    monkeypatch.delenv("UCLOUD_PRIVATE_KEY")
    folder = Path.home() / ".ucloud"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps([{"profile": "p", "active": True}]))
    (folder / "credential.json").write_text(json.dumps([{"profile": "p", "public_key": PUBLIC_KEY,
                                                         "private_key": SECRET}]))
    assert _holders(lookup(name_regex="^Ubuntu")) == [], "from the credential file"
    (folder / "credential.json").write_text(json.dumps([{"profile": "p", "private_key": SECRET}]) + "]")
    assert _holders(lookup(name_regex="^Ubuntu")) == [], "from a malformed credential file"
    capsys.readouterr()
    assert checked == len(calls)


def test_no_local_holds_the_private_key_in_the_pulumi_faces(emulator: Emulator) -> None:
    """``get_images`` in plain Python, and PinnedImage's provider reading the key from the stack config."""
    from pulumi.dynamic import ConfigureRequest
    from pulumi.dynamic.config import Config

    from pulumi_ucloud_images import get_images
    from pulumi_ucloud_images._pulumi.pinned_image import PinnedImageProvider

    url = emulator.base_url
    explicit: dict[str, Any] = {"region": "cn-bj2", "base_url": url, "public_key": PUBLIC_KEY, "private_key": SECRET}
    provider = PinnedImageProvider()
    config = {"ucloud:region": "cn-bj2", "ucloud:baseUrl": url, "ucloud:publicKey": PUBLIC_KEY,
              "ucloud:privateKey": SECRET}
    provider.configure(ConfigureRequest(Config(raw_config=config, project_name="secrets")))
    calls = {
        "get_images, found": lambda: get_images(**explicit, image_id="uimage-f1chxn"),
        "get_images, no match": lambda: get_images(**explicit, name_regex="^Plan 9"),
        "get_images, keys rejected": lambda: get_images(**{**explicit, "public_key": "pk-unknown"}),
        "pin check, no match": lambda: provider.check({}, {"name_regex": "^Plan 9"}),
        "pin create": lambda: provider.create({"image_id": "uimage-f1chxn"}),
        "pin read": lambda: provider.read("uimage-f1chxn", {"image_id": "uimage-f1chxn"}),
    }
    for label, call in calls.items():
        assert _holders(call) == [], label


def test_the_holder_check_sees_a_key_held_in_a_local() -> None:
    """The check above can fail: a plain key in a local of package code is found."""
    from pulumi_ucloud_images._api import signing as _signing

    assert _holders(lambda: _signing.sign({"Action": "DescribeImage"}, PUBLIC_KEY, SECRET)) == [
        "signing.py:sign:private_key", "signing.py:signature:private_key"
    ]


def _traceback_holders(call: Any) -> list[str]:
    """Frames of the error ``call`` raises (any error) whose locals show the key."""
    try:
        call()
    except Exception as exc:  # what failed does not matter here: what its frames hold does
        found, trace = [], exc.__traceback__
        while trace is not None:
            if trace.tb_frame.f_code.co_name != "<lambda>":
                found += [f"{trace.tb_frame.f_code.co_name}:{name}" for name, value in
                          list(trace.tb_frame.f_locals.items()) if _shows_secret(value)]
            trace = trace.tb_next
        return found
    raise AssertionError("the call did not fail")


def test_a_settings_object_that_fails_validation_holds_no_plain_key_in_its_frames() -> None:
    for bad in ({"timeout": -1}, {"base_url": "ftp://x"}, {"unknown": 1}, {"base_url": "http://u:p@x"}):
        assert _traceback_holders(lambda bad=bad: Settings(public_key=PUBLIC_KEY, private_key=SECRET, **bad)) == [], bad


def test_a_private_key_of_the_wrong_type_in_a_credential_file_is_said_but_not_held(tmp_path: Path) -> None:
    folder = tmp_path / ".ucloud"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps([{"profile": "p", "active": True, "region": "cn-bj2"}]))
    for shape in ([SECRET], {"key": SECRET}, 12345):
        entry = {"profile": "p", "public_key": "pk", "private_key": shape}
        (folder / "credential.json").write_text(json.dumps([entry]))
        assert _traceback_holders(lambda: resolve_settings(env={}, home=tmp_path)) == [], shape
        with pytest.raises(ProfileError, match="has a 'private_key' that is not a string"):
            resolve_settings(env={}, home=tmp_path)


def test_the_plugin_never_quotes_an_endpoint_with_a_password_in_it() -> None:
    import asyncio

    from pulumi.provider.experimental.property_value import PropertyValue
    from pulumi.provider.experimental.provider import CheckRequest

    from pulumi_ucloud_images._pulumi.provider import UCloudImagesProvider

    provider = UCloudImagesProvider()
    for url in (f"ftp://user:{SECRET}@api.example", f"https://user:{SECRET}@api.example"):
        request = CheckRequest(urn="urn:pulumi:dev::p::pulumi:providers:ucloud-images::default", old_inputs={},
                               new_inputs={"baseUrl": PropertyValue(url)}, random_seed=b"")
        response = asyncio.run(provider.check_config(request))
        failures = response.failures or []
        assert [failure.property for failure in failures] == ["baseUrl"]
        assert_no_secret(*(failure.reason for failure in failures))
        assert "user name or password" in failures[0].reason
