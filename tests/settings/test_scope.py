"""One lookup scope: the query's region and project beat the settings', and the sources are asked in order."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pulumi_ucloud_images import InvalidQueryError, Settings, lookup_images
from pulumi_ucloud_images._query import parse_query
from pulumi_ucloud_images._settings.scope import lookup_scope, settings_for
from pulumi_ucloud_images._settings.sources import (
    CLI_FACE,
    PYTHON_FACE,
    SETTINGS,
    ArgumentsSource,
    ConfigSource,
    EnvironmentSource,
)
from pulumi_ucloud_images.testing import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator

KEYS: dict[str, Any] = {"public_key": "pk", "private_key": "sk"}


def _settings(**values: str | None) -> Settings:
    return Settings(public_key="pk", private_key=SecretStr("sk"), **values)


@pytest.mark.parametrize(
    ("query_region", "settings_region", "expected"),
    [("cn-sh2", "cn-bj2", "cn-sh2"), (None, "cn-bj2", "cn-bj2"), ("hk", None, "hk")],
)
def test_the_querys_region_beats_the_settings(query_region: str | None, settings_region: str | None,
                                              expected: str) -> None:
    scope = lookup_scope(parse_query(region=query_region), _settings(region=settings_region))
    assert scope.region == expected


def test_the_querys_project_beats_the_settings() -> None:
    settings = _settings(region="cn-bj2", project_id="org-settings")
    assert lookup_scope(parse_query(project_id="org-query"), settings).project_id == "org-query"
    assert lookup_scope(parse_query(), settings).project_id == "org-settings"
    assert lookup_scope(parse_query(), _settings(region="cn-bj2")).project_id is None


def test_no_region_anywhere_is_one_error_naming_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        lookup_scope(parse_query(), _settings())
    assert (caught.value.field, str(caught.value)) == (
        "region", "No UCloud region was given: pass region, or settings that have one."
    )
    resolved = settings_for(parse_query(), **KEYS, env={}, home=tmp_path, require_region=False)
    with pytest.raises(InvalidQueryError) as caught:
        lookup_scope(parse_query(), resolved)
    assert str(caught.value) == (
        "No UCloud region was given; looked at the region argument, the environment variable UCLOUD_REGION and "
        f"the UCloud CLI's {tmp_path / '.ucloud' / 'config.json'} (no such file)."
    )
    with pytest.raises(InvalidQueryError) as again:  # resolving with the region required: the same sentence
        settings_for(parse_query(), **KEYS, env={}, home=tmp_path)
    assert str(again.value) == str(caught.value)


def test_settings_for_lets_the_query_beat_every_source(tmp_path: Path) -> None:
    env = {"UCLOUD_REGION": "cn-env", "UCLOUD_PROJECT_ID": "org-env"}
    query = parse_query(region="cn-query", project_id="org-query")
    settings = settings_for(query, **KEYS, region="cn-backup", env=env, home=tmp_path,
                            config={"ucloud:region": "cn-config"}.get)
    assert (settings.region, settings.project_id) == ("cn-query", "org-query")
    backed = settings_for(parse_query(), **KEYS, region="cn-backup", env=env, home=tmp_path)
    assert (backed.region, backed.project_id) == ("cn-backup", "org-env")  # a region argument only backs up


def test_a_lookup_runs_in_the_scope_of_its_query() -> None:
    with Emulator() as emulator:
        settings = Settings(public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY),
                            base_url=emulator.base_url, region="cn-sh2")
        result = lookup_images(region="cn-bj2", image_type="Base", architecture="x86_64",
                               name_regex=r"^Ubuntu 22\.04", most_recent=True, settings=settings)
        assert result.region == "cn-bj2"
        assert {request.params["Region"] for request in emulator.requests} == {"cn-bj2"}


def test_each_source_reads_its_own_place_and_names_it_in_the_faces_words() -> None:
    arguments = ArgumentsSource({"region": "cn-arg", "private_key": "sk-arg"})
    assert arguments.read("region") == "cn-arg"
    assert isinstance(arguments.read("private_key"), SecretStr)  # concealed from the moment it is held
    assert (arguments.label("region", PYTHON_FACE), arguments.label("region", CLI_FACE)) == (
        "the region argument", "--region"
    )
    config = ConfigSource({"ucloud:region": "cn-config", "ucloud:privateKey": "sk-config"}.get)
    assert (config.key("project_id"), config.read("region")) == ("ucloud:projectId", "cn-config")
    assert isinstance(config.read("private_key"), SecretStr)
    assert config.label("region", PYTHON_FACE) == "Pulumi config ucloud:region"
    assert config.label("region", CLI_FACE) is None  # the command has no config: it is neither read nor named
    plain = ConfigSource({"region": "cn-file"}.get, namespace=None, labels={"region": "region in [settings]"})
    assert (plain.read("region"), plain.label("region", CLI_FACE)) == ("cn-file", "region in [settings]")
    environment = EnvironmentSource({"UCLOUD_REGION": "cn-env", "UCLOUD_PRIVATE_KEY": "sk-env"})
    assert environment.read("region") == "cn-env"
    assert isinstance(environment.read("private_key"), SecretStr)
    for source in (arguments, config, environment):
        assert "sk" not in repr(source) and "cn-" not in repr(source)
        with pytest.raises((TypeError, pickle.PicklingError, AttributeError)):
            pickle.dumps(source)


def test_every_setting_has_one_row_naming_it_everywhere() -> None:
    assert list(SETTINGS) == ["public_key", "private_key", "region", "project_id", "base_url", "timeout",
                              "profile"]
    assert [name for name, setting in SETTINGS.items() if setting.secret] == ["private_key"]
    assert {setting.variable for setting in SETTINGS.values()} == {
        "UCLOUD_PUBLIC_KEY", "UCLOUD_PRIVATE_KEY", "UCLOUD_REGION", "UCLOUD_PROJECT_ID", "UCLOUD_API_BASE_URL",
        "UCLOUD_TIMEOUT_SECOND", "UCLOUD_PROFILE",
    }


def test_every_face_takes_its_settings_from_the_one_table() -> None:
    import argparse
    import inspect

    from pulumi_ucloud_images import get_images, lookup_images, resolve_settings
    from pulumi_ucloud_images._cli import build_parser
    from pulumi_ucloud_images._pulumi.schema import build_schema

    arguments = {name for name, setting in SETTINGS.items() if not setting.query_field}
    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command in ("find", "list", "lock"):
        flags = {flag for action in subcommands[command]._actions for flag in action.option_strings}
        assert {CLI_FACE.arguments[name] for name in arguments} <= flags, command
    assert set(inspect.signature(resolve_settings).parameters) >= set(SETTINGS)
    assert set(Settings.model_fields) >= set(SETTINGS)
    assert arguments <= set(inspect.signature(get_images).parameters)
    given: dict[str, Any] = dict.fromkeys(arguments, "x")
    with pytest.raises(TypeError, match="not both") as caught:  # lookup_images takes each setting as a keyword
        lookup_images(settings=_settings(region="cn-bj2"), **given)
    assert all(name in str(caught.value) for name in arguments)
    config = build_schema()["config"]["variables"]
    assert set(config) == {setting.config_key for setting in SETTINGS.values() if setting.in_provider_config}
    assert [key for key, spec in config.items() if spec.get("secret")] == [
        setting.config_key for setting in SETTINGS.values() if setting.secret
    ]


def test_settings_are_validated_once_by_the_same_rules_whoever_builds_them(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from pulumi_ucloud_images import resolve_settings

    cases: list[tuple[dict[str, Any], str]] = [
        ({"base_url": "ftp://api.example"}, "must be an http:// or https:// URL"),
        ({"base_url": "http://api.example:0"}, "must have a port from 1 to 65535, or none"),
        ({"timeout": float("inf")}, "must be a positive, finite number of seconds"),
    ]
    for bad, rule in cases:
        with pytest.raises(ValidationError, match=rule):
            Settings(public_key="pk", private_key=SecretStr("sk"), **bad)
        with pytest.raises(InvalidQueryError) as caught:
            resolve_settings(**KEYS, region="cn-bj2", env={}, home=tmp_path, **bad)
        name, value = next(iter(bad.items()))
        assert str(caught.value) == f"Invalid {name} {value!r} (from the {name} argument): {rule}."
    assert Settings(public_key="pk", private_key=SecretStr("sk"), timeout="12").timeout == 12.0
    settings = Settings(public_key="pk", private_key=SecretStr("sk"))
    assert settings.model_copy(update={"region": "hk"}).region == "hk"
    with pytest.raises(ValidationError, match="must be a positive"):
        settings.model_copy(update={"timeout": -1})
    with pytest.raises(InvalidQueryError, match="carries a user name or password"):
        settings.model_copy(update={"base_url": "https://user:pass@api.example"})
