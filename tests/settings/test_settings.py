"""Settings: explicit > Pulumi config > environment > the UCloud CLI's profile files, and clear failures."""

from __future__ import annotations

import contextvars
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pulumi_ucloud_images._cli.common import exit_code_for
from pulumi_ucloud_images._errors import CredentialsError, InvalidQueryError, ProfileError
from pulumi_ucloud_images._settings.settings import (
    CLI_FACE,
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    PYTHON_FACE,
    Face,
    resolve_settings,
)

# setting -> (explicit keyword, Pulumi config key, environment variable, profile-file key)
SOURCES = {
    "public_key": ("ucloud:publicKey", "UCLOUD_PUBLIC_KEY", "public_key"),
    "private_key": ("ucloud:privateKey", "UCLOUD_PRIVATE_KEY", "private_key"),
    "region": ("ucloud:region", "UCLOUD_REGION", "region"),
    "project_id": ("ucloud:projectId", "UCLOUD_PROJECT_ID", "project_id"),
    "base_url": ("ucloud:baseUrl", "UCLOUD_API_BASE_URL", "base_url"),
    "timeout": ("ucloud:timeout", "UCLOUD_TIMEOUT_SECOND", "timeout_sec"),
}
CREDENTIALS = ("public_key", "private_key")


def _value(name: str, source: str) -> Any:
    if name == "timeout":
        return {"explicit": 11.0, "config": "12", "env": "13", "file": 14}[source]
    if name == "base_url":
        return f"http://{source}.example"
    return f"{name}-from-{source}"


def _read(settings: Any, name: str) -> Any:
    value = getattr(settings, name)
    return value.get_secret_value() if name == "private_key" else value


def _expected(name: str, source: str) -> Any:
    return float(_value(name, source)) if name == "timeout" else _value(name, source)


def write_profiles(home: Path, profiles: list[dict[str, Any]], credentials: list[dict[str, Any]]) -> Path:
    folder = home / ".ucloud"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(profiles), encoding="utf-8")
    (folder / "credential.json").write_text(json.dumps(credentials), encoding="utf-8")
    return folder


def _all_sources(home: Path, upto: str) -> tuple[dict[str, Any], Callable[[str], Any], dict[str, str]]:
    """Every setting given by ``upto`` and every source after it (the order: explicit, config, env, file)."""
    order = ["file", "env", "config", "explicit"]
    given = order[: order.index(upto) + 1]
    profile: dict[str, Any] = {"profile": "default", "active": True}
    credential: dict[str, Any] = {"profile": "default"}
    config: dict[str, Any] = {}
    env: dict[str, str] = {}
    explicit: dict[str, Any] = {}
    for name, (config_key, env_key, file_key) in SOURCES.items():
        if "file" in given:
            (credential if name in CREDENTIALS else profile)[file_key] = _value(name, "file")
        if "env" in given:
            env[env_key] = str(_value(name, "env"))
        if "config" in given:
            config[config_key] = _value(name, "config")
        if "explicit" in given:
            explicit[name] = _value(name, "explicit")
    write_profiles(home, [profile], [credential])
    return explicit, config.get, env


@pytest.mark.parametrize("winner", ["explicit", "config", "env", "file"])
def test_first_source_found_wins_for_every_setting(tmp_path: Path, winner: str) -> None:
    explicit, config, env = _all_sources(tmp_path, winner)
    settings = resolve_settings(**explicit, config=config, env=env, home=tmp_path)
    for name in SOURCES:
        assert _read(settings, name) == _expected(name, winner), name


@pytest.mark.parametrize("name", list(SOURCES))
def test_each_setting_falls_through_on_its_own(tmp_path: Path, name: str) -> None:
    """One setting missing from the explicit arguments is taken from the config; the others stay explicit."""
    explicit, config, env = _all_sources(tmp_path, "explicit")
    del explicit[name]
    settings = resolve_settings(**explicit, config=config, env=env, home=tmp_path)
    assert _read(settings, name) == _expected(name, "config")


def test_empty_values_count_as_unset(tmp_path: Path) -> None:
    env = {"UCLOUD_PUBLIC_KEY": "", "UCLOUD_PRIVATE_KEY": "sk-env", "UCLOUD_REGION": "cn-sh2"}
    settings = resolve_settings(public_key="", config={"ucloud:publicKey": "pk-config"}.get, env=env, home=tmp_path)
    assert settings.public_key == "pk-config"


def test_defaults_for_the_endpoint_and_timeout(tmp_path: Path) -> None:
    settings = resolve_settings(public_key="pk", private_key="sk", region="cn-bj2", env={}, home=tmp_path)
    assert settings.base_url == DEFAULT_BASE_URL == "https://api.ucloud.cn"
    assert settings.timeout == DEFAULT_TIMEOUT == 30.0
    assert settings.project_id is None and settings.profile is None


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UCLOUD_PUBLIC_KEY", "pk-env")
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", "sk-env")
    monkeypatch.setenv("UCLOUD_REGION", "hk")
    settings = resolve_settings()
    assert (settings.public_key, settings.region) == ("pk-env", "hk")


# -- the real Pulumi config path: handed in by the Pulumi faces ---------------------------------------


def test_pulumi_stack_config_is_read_inside_a_pulumi_program(tmp_path: Path) -> None:
    import pulumi.runtime

    from pulumi_ucloud_images._pulumi.sdk import stack_config

    def in_program() -> None:
        pulumi.runtime.set_all_config(
            {"ucloud:publicKey": "pk-stack", "ucloud:privateKey": "sk-stack", "ucloud:region": "cn-gd"},
            ["ucloud:privateKey"],
        )
        env = {"UCLOUD_PUBLIC_KEY": "pk-env", "UCLOUD_REGION": "hk", "UCLOUD_PROJECT_ID": "org-env"}
        settings = resolve_settings(env=env, home=tmp_path, config=stack_config())
        assert (settings.public_key, settings.private_key.get_secret_value()) == ("pk-stack", "sk-stack")
        assert settings.region == "cn-gd"
        assert settings.project_id == "org-env"  # not in the stack config: the environment is next
        assert resolve_settings(region="us-ca", env=env, home=tmp_path, config=stack_config()).region == "us-ca"
        # The core itself reads no stack config: the faces hand theirs in.
        assert resolve_settings(env={**env, "UCLOUD_PRIVATE_KEY": "sk-env"}, home=tmp_path).public_key == "pk-env"

    contextvars.copy_context().run(in_program)  # set_all_config must not outlive this test


def test_pulumi_config_from_the_engines_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pulumi_ucloud_images._pulumi.sdk import stack_config

    monkeypatch.setenv(
        "PULUMI_CONFIG",
        json.dumps({"ucloud:publicKey": "pk-engine", "ucloud:privateKey": "sk-engine", "ucloud:projectId": "org-ml"}),
    )
    settings = resolve_settings(region="cn-bj2", env={"UCLOUD_PUBLIC_KEY": "pk-env"}, home=tmp_path,
                                config=stack_config())
    assert (settings.public_key, settings.project_id) == ("pk-engine", "org-ml")


@pytest.mark.slow
def test_the_core_never_imports_pulumi_nor_reads_its_config() -> None:
    import subprocess
    import sys

    code = (
        "import os, json, sys\n"
        "os.environ['PULUMI_CONFIG'] = json.dumps({'ucloud:publicKey': 'pk-engine', 'ucloud:privateKey': 'sk'})\n"
        "from pulumi_ucloud_images._settings.settings import resolve_settings\n"
        "env = {'UCLOUD_PUBLIC_KEY': 'pk-env', 'UCLOUD_PRIVATE_KEY': 'sk'}\n"
        "s = resolve_settings(region='cn-bj2', env=env)\n"
        "print(s.public_key, 'pulumi' in sys.modules)\n"
        "import pulumi.runtime\n"
        "print(resolve_settings(region='cn-bj2', env=env).public_key)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["pk-env", "False", "pk-env"]


# -- the UCloud CLI's profile files --------------------------------------------------------------------


PROFILES: list[dict[str, Any]] = [
    {"profile": "default", "active": True, "region": "cn-bj2", "project_id": "org-platform", "timeout_sec": 15},
    {"profile": "data", "region": "cn-sh2", "project_id": "org-data", "base_url": "http://data.example"},
]
KEYS: list[dict[str, Any]] = [
    {"profile": "default", "public_key": "pk-default", "private_key": "sk-default"},
    {"profile": "data", "public_key": "pk-data", "private_key": "sk-data"},
]


def test_the_active_profile_is_used_when_none_is_named(tmp_path: Path) -> None:
    write_profiles(tmp_path, PROFILES, KEYS)
    settings = resolve_settings(env={}, home=tmp_path)
    assert (settings.profile, settings.public_key, settings.region) == ("default", "pk-default", "cn-bj2")
    assert (settings.project_id, settings.timeout) == ("org-platform", 15.0)


@pytest.mark.parametrize("how", ["argument", "config", "env"])
def test_a_named_profile_wins_over_the_active_one(tmp_path: Path, how: str) -> None:
    write_profiles(tmp_path, PROFILES, KEYS)
    settings = resolve_settings(
        profile="data" if how == "argument" else None,
        config={"ucloud:profile": "data"}.get if how == "config" else None,
        env={"UCLOUD_PROFILE": "data"} if how == "env" else {},
        home=tmp_path,
    )
    assert (settings.profile, settings.public_key, settings.private_key.get_secret_value()) == (
        "data", "pk-data", "sk-data"
    )
    assert (settings.region, settings.project_id, settings.base_url) == ("cn-sh2", "org-data", "http://data.example")


def test_an_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    folder = write_profiles(tmp_path, PROFILES, KEYS)
    with pytest.raises(CredentialsError) as caught:
        resolve_settings(profile="prod", env={}, home=tmp_path)
    assert str(caught.value) == (
        f"The UCloud profile 'prod' is in neither {folder / 'config.json'} nor {folder / 'credential.json'}; "
        "the profiles there are data, default."
    )


def test_missing_default_files_are_ignored(tmp_path: Path) -> None:
    settings = resolve_settings(env={"UCLOUD_PUBLIC_KEY": "pk", "UCLOUD_PRIVATE_KEY": "sk"}, region="hk", home=tmp_path)
    assert settings.public_key == "pk"


@pytest.mark.parametrize(
    ("variable", "what"), [("UCLOUD_SHARED_CONFIG_FILE", "config"), ("UCLOUD_SHARED_CREDENTIAL_FILE", "credential")]
)
def test_a_missing_file_named_explicitly_is_an_error(tmp_path: Path, variable: str, what: str) -> None:
    missing = tmp_path / "nowhere" / f"{what}.json"
    env = {variable: str(missing), "UCLOUD_PUBLIC_KEY": "pk", "UCLOUD_PRIVATE_KEY": "sk", "UCLOUD_REGION": "hk"}
    with pytest.raises(CredentialsError) as caught:
        resolve_settings(env=env, home=tmp_path)
    assert str(caught.value) == f"The UCloud {what} file {missing} named by {variable} does not exist."


def test_files_named_by_the_environment_are_read(tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "c.json").write_text(json.dumps(PROFILES), encoding="utf-8")
    (folder / "k.json").write_text(json.dumps(KEYS), encoding="utf-8")
    env = {"UCLOUD_SHARED_CONFIG_FILE": str(folder / "c.json"), "UCLOUD_SHARED_CREDENTIAL_FILE": str(folder / "k.json")}
    assert resolve_settings(env=env, home=tmp_path / "empty-home").public_key == "pk-default"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "is not valid JSON: Expecting property name enclosed in double quotes"),
        ('{"profile": "default"}', "must hold a JSON array of profile objects."),
        ('["default"]', "must hold a JSON array of profile objects."),
        (b"\xff\xfe[]", "cannot be read: it is not UTF-8 text."),
    ],
)
def test_a_malformed_profile_file_is_one_sentence(tmp_path: Path, content: str | bytes, problem: str) -> None:
    folder = write_profiles(tmp_path, PROFILES, KEYS)
    path = folder / "credential.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(CredentialsError) as caught:
        resolve_settings(env={}, home=tmp_path)
    assert str(caught.value).startswith(f"The UCloud credential file {path} {problem}")
    assert str(caught.value).endswith(".") and "\n" not in str(caught.value)


def test_an_unreadable_profile_file_is_one_sentence(tmp_path: Path) -> None:
    folder = write_profiles(tmp_path, PROFILES, KEYS)
    (folder / "config.json").unlink()
    (folder / "config.json").mkdir()  # a directory where a file should be: unreadable for every user
    with pytest.raises(CredentialsError) as caught:
        resolve_settings(env={}, home=tmp_path)
    assert str(caught.value).startswith(f"The UCloud config file {folder / 'config.json'} cannot be read: ")
    assert str(caught.value).endswith(".") and "\n" not in str(caught.value)


# -- missing settings name every place that was looked at ----------------------------------------------


@pytest.mark.parametrize(
    ("missing", "label", "config_key", "env_key"),
    [
        ("public_key", "public key", "ucloud:publicKey", "UCLOUD_PUBLIC_KEY"),
        ("private_key", "private key", "ucloud:privateKey", "UCLOUD_PRIVATE_KEY"),
    ],
)
def test_a_missing_key_names_every_place_looked(tmp_path: Path, missing: str, label: str, config_key: str,
                                                env_key: str) -> None:
    given: dict[str, Any] = {"public_key": "pk", "private_key": "sk"}
    del given[missing]
    with pytest.raises(CredentialsError) as caught:
        resolve_settings(**given, region="cn-bj2", env={}, config=lambda key: None, home=tmp_path)
    assert caught.value.setting == missing
    assert exit_code_for(caught.value) == 5
    assert str(caught.value) == (
        f"No UCloud {label} was found; looked at the {missing} argument, Pulumi config {config_key}, the environment "
        f"variable {env_key} and the UCloud CLI's {tmp_path / '.ucloud' / 'credential.json'} (no such file)."
    )


def test_a_missing_region_names_every_place_looked(tmp_path: Path) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        resolve_settings(public_key="pk", private_key="sk", env={}, home=tmp_path, config=lambda key: None)
    assert caught.value.field == "region"
    assert exit_code_for(caught.value) == 2
    assert str(caught.value) == (
        "No UCloud region was given; looked at the region argument, Pulumi config ucloud:region, the environment "
        f"variable UCLOUD_REGION and the UCloud CLI's {tmp_path / '.ucloud' / 'config.json'} (no such file)."
    )
    with pytest.raises(InvalidQueryError) as caught:  # plain Python: no config source, none named
        resolve_settings(public_key="pk", private_key="sk", env={}, home=tmp_path)
    assert str(caught.value) == (
        "No UCloud region was given; looked at the region argument, the environment variable UCLOUD_REGION and the "
        f"UCloud CLI's {tmp_path / '.ucloud' / 'config.json'} (no such file)."
    )


def test_a_missing_key_names_the_profile_that_was_searched(tmp_path: Path) -> None:
    folder = write_profiles(tmp_path, PROFILES, [KEYS[0]])
    with pytest.raises(CredentialsError) as caught:
        resolve_settings(profile="data", env={}, home=tmp_path)
    assert str(caught.value).endswith(f"and profile 'data' in {folder / 'credential.json'}.")


def test_a_missing_key_says_when_no_profile_is_active(tmp_path: Path) -> None:
    folder = write_profiles(tmp_path, [{"profile": "default", "region": "cn-bj2"}], KEYS)
    with pytest.raises(CredentialsError) as caught:  # a region is given: a missing one would be said first
        resolve_settings(region="hk", env={}, home=tmp_path)
    assert str(caught.value).endswith(
        f"and the UCloud CLI's {folder / 'credential.json'} (no profile is named, and none is marked active in "
        f"{folder / 'config.json'})."
    )


def test_region_may_be_left_for_later(tmp_path: Path) -> None:
    settings = resolve_settings(public_key="pk", private_key="sk", env={}, home=tmp_path, require_region=False)
    assert settings.region is None


# -- bad values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_timeout_is_bad_input(tmp_path: Path, timeout: str) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        resolve_settings(
            public_key="pk", private_key="sk", region="hk", env={"UCLOUD_TIMEOUT_SECOND": timeout}, home=tmp_path
        )
    assert str(caught.value) == (
        f"Invalid timeout '{timeout}' (from the environment variable UCLOUD_TIMEOUT_SECOND): "
        "must be a positive, finite number of seconds."
    )
    assert caught.value.field == "timeout"


def test_a_bad_timeout_in_a_profile_file_names_the_file_and_profile(tmp_path: Path) -> None:
    folder = write_profiles(tmp_path, [{"profile": "default", "active": True, "timeout_sec": "fast"}], KEYS)
    with pytest.raises(InvalidQueryError) as caught:
        resolve_settings(region="hk", env={}, home=tmp_path)
    assert str(caught.value).startswith(
        f"Invalid timeout 'fast' (from timeout_sec of profile 'default' in {folder / 'config.json'}):"
    )


@pytest.mark.parametrize("url", ["api.ucloud.cn", "ftp://api.ucloud.cn", "http://", "https://[::1"])
def test_a_bad_base_url_is_bad_input(tmp_path: Path, url: str) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        resolve_settings(public_key="pk", private_key="sk", region="hk", base_url=url, env={}, home=tmp_path)
    assert str(caught.value) == (
        f"Invalid base_url '{url}' (from the base_url argument): must be an http:// or https:// URL."
    )


def test_settings_are_frozen_and_compare_by_value(tmp_path: Path) -> None:
    one = resolve_settings(public_key="pk", private_key="sk", region="hk", env={}, home=tmp_path)
    two = resolve_settings(public_key="pk", private_key="sk", region="hk", env={}, home=tmp_path)
    assert one == two
    assert one.cache_key == ("https://api.ucloud.cn", "pk", "")
    with pytest.raises(Exception):  # noqa: B017  (pydantic's ValidationError for a frozen model)
        one.region = "cn-bj2"


def test_copying_settings_with_changes_leaves_the_original_alone(tmp_path: Path) -> None:
    original = resolve_settings(public_key="pk", private_key="sk", region="hk", env={}, home=tmp_path)
    changed = original.model_copy(update={"region": "cn-bj2", "public_key": "pk-2"})
    assert (original.region, original.public_key) == ("hk", "pk")
    assert (changed.region, changed.public_key) == ("cn-bj2", "pk-2")


# -- whitespace, entry shapes, and where each value came from -------------------------------------------


def test_values_are_stripped_and_blank_ones_count_as_unset(tmp_path: Path) -> None:
    write_profiles(tmp_path, [{"profile": "default", "active": True, "region": " hk "}],
                   [{"profile": "default", "public_key": "pk-file", "private_key": "sk-file "}])
    env = {"UCLOUD_REGION": " cn-bj2 ", "UCLOUD_PUBLIC_KEY": "  ", "UCLOUD_PRIVATE_KEY": " "}
    settings = resolve_settings(env=env, home=tmp_path)
    assert (settings.region, settings.public_key, settings.private_key.get_secret_value()) == (
        "cn-bj2", "pk-file", "sk-file"
    )


def test_settings_say_where_each_key_came_from_without_the_key(tmp_path: Path) -> None:
    folder = write_profiles(tmp_path, [{"profile": "default", "active": True}], KEYS)
    settings = resolve_settings(region="hk", env={"UCLOUD_PUBLIC_KEY": "pk-env"}, home=tmp_path)
    assert settings.key_sources == (
        "the environment variable UCLOUD_PUBLIC_KEY",
        f"private_key of profile 'default' in {folder / 'credential.json'}",
    )
    assert "pk-env" not in repr(settings)


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"active": True, "region": "hk"}, 'has no "profile" name.'),
        ({"profile": " ", "region": "hk"}, 'has no "profile" name.'),
        ({"profile": "default", "active": "true"}, "has \"active\": 'true'; it must be true or false."),
        ({"profile": "default", "active": True, "region": ["cn-bj2"]}, "has a 'region' that is not a string."),
    ],
)
def test_odd_profile_entries_are_one_sentence_naming_the_file(
    tmp_path: Path, entry: dict[str, Any], problem: str
) -> None:
    folder = write_profiles(tmp_path, [entry], KEYS)
    with pytest.raises(CredentialsError) as caught:
        resolve_settings(env={}, home=tmp_path)
    message = str(caught.value)
    assert str(folder / "config.json") in message
    assert message.endswith(problem)


def test_a_key_of_the_wrong_type_in_the_credential_file_is_refused(tmp_path: Path) -> None:
    folder = write_profiles(tmp_path, [{"profile": "default", "active": True}],
                            [{"profile": "default", "public_key": 123, "private_key": "sk"}])
    with pytest.raises(CredentialsError) as caught:
        resolve_settings(region="hk", env={}, home=tmp_path)
    assert str(caught.value) == (
        f"Profile 'default' in the UCloud credential file {folder / 'credential.json'} has a 'public_key' "
        "that is not a string."
    )


# -- profiles asked for, profiles in doubt, and files that are not profile files ----------------------


def test_a_named_profile_is_an_error_when_there_are_no_files(tmp_path: Path) -> None:
    env = {"UCLOUD_PUBLIC_KEY": "pk", "UCLOUD_PRIVATE_KEY": "sk", "UCLOUD_REGION": "hk", "UCLOUD_PROFILE": "prod"}
    with pytest.raises(ProfileError) as caught:
        resolve_settings(env=env, home=tmp_path)
    folder = tmp_path / ".ucloud"
    assert str(caught.value) == (
        f"The UCloud profile 'prod' is in neither {folder / 'config.json'} (no such file) nor "
        f"{folder / 'credential.json'} (no such file)."
    )
    assert exit_code_for(caught.value) == 2 and isinstance(caught.value, CredentialsError)


def test_two_active_profiles_are_an_error_unless_one_is_named(tmp_path: Path) -> None:
    folder = write_profiles(tmp_path, [{**PROFILES[0]}, {**PROFILES[1], "active": True}], KEYS)
    with pytest.raises(ProfileError) as caught:
        resolve_settings(env={}, home=tmp_path)
    assert str(caught.value) == (
        f"The UCloud config file {folder / 'config.json'} marks 2 profiles active ('default', 'data'); mark one, "
        "or name the profile with the profile argument or UCLOUD_PROFILE."
    )
    assert resolve_settings(profile="data", env={}, home=tmp_path).public_key == "pk-data"  # no doubt then


def test_two_profiles_of_one_name_are_an_error(tmp_path: Path) -> None:
    folder = write_profiles(tmp_path, PROFILES, [*KEYS, {"profile": "data", "public_key": "pk-other"}])
    with pytest.raises(ProfileError, match=r"credential file .* has two profiles named 'data'; keep one") as caught:
        resolve_settings(env={}, home=tmp_path)
    assert str(folder / "credential.json") in str(caught.value)


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.timeout(20)  # a FIFO read would wait for a writer for ever
@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda folder: _fifo(folder / "fifo.json"), "cannot be read: it is a FIFO (named pipe), not a regular file."),
        (lambda folder: Path("/dev/zero"), "cannot be read: it is a character device, not a regular file."),
        (lambda folder: folder, "cannot be read: it is a directory, not a regular file."),
        (
            lambda folder: (folder / "big.json").write_text("[" + " " * (1024 * 1024) + "]") and folder / "big.json",
            "cannot be read: it is larger than 1 MiB, far more than such a file ever holds.",
        ),
        (lambda folder: (folder / "deep.json").write_text("[" * 100_000) and folder / "deep.json",
         "is nested too deeply to be a profile file."),
    ],
)
def test_a_profile_file_that_is_no_profile_file_is_one_sentence(
    tmp_path: Path, make: Callable[[Path], Path], problem: str
) -> None:
    path = make(tmp_path)
    env = {"UCLOUD_SHARED_CONFIG_FILE": str(path), "UCLOUD_PUBLIC_KEY": "pk", "UCLOUD_PRIVATE_KEY": "sk"}
    with pytest.raises(ProfileError) as caught:
        resolve_settings(region="hk", env=env, home=tmp_path)
    assert str(caught.value) == f"The UCloud config file {path} {problem}"
    assert exit_code_for(caught.value) == 2


# -- each front end speaks its own words ---------------------------------------------------------------


def test_the_command_names_its_flags_and_the_files_under_home(tmp_path: Path) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        resolve_settings(public_key="pk", private_key="sk", env={}, home=tmp_path, face=CLI_FACE)
    assert str(caught.value) == (
        "No UCloud region was given; looked at --region, the environment variable UCLOUD_REGION and the UCloud "
        "CLI's ~/.ucloud/config.json (no such file)."
    )
    with pytest.raises(CredentialsError) as no_key:
        resolve_settings(public_key="pk", region="hk", env={}, home=tmp_path, face=CLI_FACE)
    assert str(no_key.value) == (
        "No UCloud private key was found; looked at --private-key, the environment variable UCLOUD_PRIVATE_KEY "
        "and the UCloud CLI's ~/.ucloud/credential.json (no such file)."
    )
    with pytest.raises(ProfileError) as no_profile:
        resolve_settings(public_key="pk", private_key="sk", region="hk", profile="prod", env={}, home=tmp_path,
                         face=CLI_FACE)
    assert str(no_profile.value) == (
        "The UCloud profile named by --profile is in neither ~/.ucloud/config.json (no such file) nor "
        "~/.ucloud/credential.json (no such file)."
    )


@pytest.mark.parametrize(("face", "region_at"), [
    (PYTHON_FACE, "the region argument, Pulumi config ucloud:region, the environment variable UCLOUD_REGION"),
    (CLI_FACE, "--region, the environment variable UCLOUD_REGION"),
])
def test_a_missing_region_is_said_before_missing_keys(tmp_path: Path, face: Face, region_at: str) -> None:
    """And it is the region's error (bad input, exit 2), whether or not keys are missing too."""
    with pytest.raises(InvalidQueryError) as caught:
        resolve_settings(env={}, home=tmp_path, face=face, config=(lambda key: None) if face.config else None)
    assert caught.value.field == "region" and exit_code_for(caught.value) == 2
    message = str(caught.value)
    assert message.startswith(f"No UCloud region was given and no public or private key was found; looked for "
                              f"the region at {region_at} and ")
    assert message.index("region") < message.index("public key")
    assert message.endswith("(and likewise for the private key).")
    with pytest.raises(InvalidQueryError) as caught:
        resolve_settings(public_key="pk", env={}, home=tmp_path, face=face)
    assert str(caught.value).startswith("No UCloud region was given and no private key was found; looked for the "
                                        "region at ")
    with pytest.raises(InvalidQueryError) as caught:
        resolve_settings(public_key="pk", private_key="sk", env={}, home=tmp_path, face=face)
    assert exit_code_for(caught.value) == 2 and str(caught.value).startswith("No UCloud region was given; looked at ")
    with pytest.raises(CredentialsError) as keys_missing:
        resolve_settings(region="cn-bj2", env={}, home=tmp_path, face=face)
    assert exit_code_for(keys_missing.value) == 5
    assert str(keys_missing.value).startswith("No UCloud public key was found")


def test_the_command_never_repeats_the_value_of_a_settings_flag(tmp_path: Path) -> None:
    for bad in ({"timeout": 0.0}, {"base_url": "api.ucloud.cn-SECRETISH"}):
        with pytest.raises(InvalidQueryError) as caught:
            resolve_settings(public_key="pk", private_key="sk", region="hk", env={}, home=tmp_path, face=CLI_FACE,
                             **bad)
        assert "SECRETISH" not in str(caught.value) and "0.0" not in str(caught.value)
        assert str(caught.value).endswith("(the value given is not shown).")
    # a value from the environment is not a flag's: it is named with the variable it came from
    with pytest.raises(InvalidQueryError, match=r"^Invalid timeout 'soon' \(from the environment variable"):
        resolve_settings(public_key="pk", private_key="sk", region="hk", env={"UCLOUD_TIMEOUT_SECOND": "soon"},
                         home=tmp_path, face=CLI_FACE)


def test_a_face_config_source_is_read_only_for_what_it_can_hold(tmp_path: Path) -> None:
    face = CLI_FACE.with_config({"region": "region in [settings] of x.toml"})
    read: list[str] = []

    def config(key: str) -> str | None:
        read.append(key)
        return "cn-sh2" if key == "ucloud:region" else "never-read"

    settings = resolve_settings(public_key="pk", private_key="sk", env={}, home=tmp_path, face=face, config=config)
    assert settings.region == "cn-sh2" and set(read) == {"ucloud:region"}
    with pytest.raises(CredentialsError, match=r"looked at --public-key, the environment variable UCLOUD_PUBLIC"):
        resolve_settings(private_key="sk", env={}, home=tmp_path, face=face, config=config)


def test_profile_files_that_start_with_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    """The UCloud CLI and Windows editors may write one."""
    folder = write_profiles(tmp_path, PROFILES, KEYS)
    for name, data in (("config.json", PROFILES), ("credential.json", KEYS)):
        (folder / name).write_bytes(b"\xef\xbb\xbf" + json.dumps(data).encode())
    settings = resolve_settings(env={}, home=tmp_path)
    assert (settings.public_key, settings.region) == ("pk-default", "cn-bj2")


@pytest.mark.parametrize(
    ("variable", "what"), [("UCLOUD_SHARED_CONFIG_FILE", "config"), ("UCLOUD_SHARED_CREDENTIAL_FILE", "credential")]
)
def test_a_file_named_under_an_unknown_users_home_is_one_sentence(tmp_path: Path, variable: str, what: str) -> None:
    env = {variable: "~nosuchuser-ucloud/x.json", "UCLOUD_PUBLIC_KEY": "pk", "UCLOUD_PRIVATE_KEY": "sk",
           "UCLOUD_REGION": "hk"}
    with pytest.raises(CredentialsError) as caught:
        resolve_settings(env=env, home=tmp_path)
    assert str(caught.value) == f"The UCloud {what} file ~nosuchuser-ucloud/x.json named by {variable} does not exist."
