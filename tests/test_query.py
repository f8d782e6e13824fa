"""The query model: normalisation, one-sentence validation errors, and the server/client split of filters."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from pulumi_ucloud_images._api.image import Image
from pulumi_ucloud_images._cli.common import exit_code_for
from pulumi_ucloud_images._errors import InvalidQueryError
from pulumi_ucloud_images._query import (
    ARCHITECTURES,
    FEATURES,
    FUNC_TYPES,
    IMAGE_TYPES,
    OS_TYPES,
    STATES,
    ImageQuery,
    invalid_query_error,
    parse_query,
)


def _image(**fields: Any) -> Image:
    record = {"ImageId": "uimage-test01", "ImageName": "CentOS 7.9 64位", "OsName": "CentOS 7.9 64位",
              "OsType": "Linux", "ImageType": "Base", "FuncType": "uhost", "State": "Available",
              "Zone": "cn-bj2-02", "Features": ["NetEnhanced", "CloudInit"], "CreateTime": 1700000000}
    record.update(fields)
    return Image.model_validate(record)


def _error(**values: Any) -> InvalidQueryError:
    with pytest.raises(InvalidQueryError) as caught:
        parse_query(values)
    return caught.value


def _one_sentence(message: str) -> None:
    assert "\n" not in message
    assert message[0].isupper() and message.endswith(".")
    assert "Traceback" not in message and "pydantic" not in message.lower()


# -- normalisation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "given", "expected"),
    [
        ("image_type", "base", "Base"),
        ("image_type", "BUSINESS", "Business"),
        ("image_type", " custom ", "Custom"),
        ("os_type", "WINDOWS", "Windows"),
        ("os_type", "linux", "Linux"),
        ("func_type", "GPU", "gpu"),
        ("func_type", "Uhost", "uhost"),
        ("architecture", "AARCH64", "aarch64"),
        ("architecture", "arm64", "aarch64"),
        ("architecture", "X86_64", "x86_64"),
        ("architecture", "amd64", "x86_64"),
    ],
)
def test_enum_values_accept_any_case_and_take_the_api_spelling(field: str, given: str, expected: str) -> None:
    assert getattr(parse_query({field: given}), field) == expected


def test_set_valued_filters_are_normalised_deduplicated_and_sorted() -> None:
    query = parse_query(
        features=["ipv6", "NetEnhnced", "netenhanced", "CLOUDINIT"], states=["making", "AVAILABLE"],
        ids=["uimage-b", " uimage-a", "uimage-b"],
    )
    assert query.features == ("CloudInit", "IPv6", "NetEnhanced")
    assert query.states == ("Available", "Making")
    assert query.ids == ("uimage-a", "uimage-b")


def test_queries_that_differ_only_in_the_order_of_a_set_valued_filter_are_equal() -> None:
    assert parse_query(features=["IPv6", "CloudInit"], states=["Making", "Available"], ids=["b", "a"]) == parse_query(
        features=["CloudInit", "IPv6"], states=["Available", "Making"], ids=["a", "b"]
    )


def test_the_documented_misspelling_netenhnced_is_read_as_netenhanced() -> None:
    assert parse_query(features=["NetEnhnced"]).features == ("NetEnhanced",)
    assert parse_query(features="netenhnced").features == ("NetEnhanced",)


def test_one_bare_value_is_a_list_of_one() -> None:
    query = parse_query(features="CloudInit", states="making", ids="uimage-f1chxn")
    assert (query.features, query.states, query.ids) == (("CloudInit",), ("Making",), ("uimage-f1chxn",))


def test_defaults() -> None:
    query = ImageQuery()
    assert query.states == ("Available",)
    assert query.most_recent is False
    assert query.features == () and query.ids == ()
    assert query.criteria() == "states=[Available]"


def test_none_means_not_given_for_every_field() -> None:
    values = dict.fromkeys(ImageQuery.model_fields)
    assert parse_query(values) == ImageQuery()


def test_blank_strings_are_unset_but_regexes_keep_their_spaces() -> None:
    query = parse_query(region="  ", zone="", image_id=" ", name_regex="", os_name_regex="^ CentOS")
    assert (query.region, query.zone, query.image_id, query.name_regex) == (None, None, None, None)
    assert query.os_name_regex == "^ CentOS"
    assert parse_query(region=" cn-bj2 ").region == "cn-bj2"


def test_ids_are_stripped_and_deduplicated() -> None:
    assert parse_query(ids=[" uimage-a", "uimage-b", "uimage-a "]).ids == ("uimage-a", "uimage-b")


def test_the_model_is_frozen() -> None:
    query = ImageQuery()
    with pytest.raises(ValidationError):
        query.region = "cn-bj2"


def test_to_args_round_trips() -> None:
    query = parse_query(region="cn-bj2", os_type="linux", features=["NetEnhnced"], ids=["uimage-a"], most_recent=True)
    assert query.to_args() == {
        "region": "cn-bj2", "os_type": "Linux", "features": ["NetEnhanced"], "ids": ["uimage-a"], "most_recent": True,
    }
    assert parse_query(query.to_args()) == query


def test_keywords_override_the_mapping() -> None:
    assert parse_query({"os_type": "linux"}, os_type="windows").os_type == "Windows"


# -- bad input: one sentence naming the field, the bad value and what is allowed ---------------------------


@pytest.mark.parametrize(
    ("field", "bad", "allowed"),
    [
        ("image_type", "golden", IMAGE_TYPES),
        ("os_type", "macos", OS_TYPES),
        ("func_type", "fpga", FUNC_TYPES),
        ("architecture", "riscv64", ARCHITECTURES),
        ("states", ["Available", "Deleted"], STATES),
        ("features", ["CloudInit", "Turbo"], FEATURES),
        ("image_type", 5, IMAGE_TYPES),
        ("features", [None], FEATURES),
    ],
)
def test_a_bad_enum_value_names_the_field_the_value_and_every_allowed_value(
    field: str, bad: Any, allowed: tuple[str, ...]
) -> None:
    error = _error(**{field: bad})
    message = str(error)
    _one_sentence(message)
    assert error.field == field
    assert message.startswith(f"Invalid {field} ")
    culprit = bad[-1] if isinstance(bad, list) else bad
    assert (f"'{culprit}'" if isinstance(culprit, str) else repr(culprit)) in message
    assert f"must be one of {', '.join(allowed)}." in message
    assert exit_code_for(error) == 2


@pytest.mark.parametrize(
    ("field", "pattern", "problem"),
    [
        ("name_regex", "^Ubuntu (22", "missing ), unterminated subpattern at position 8"),
        ("os_name_regex", "[a-", "unterminated character set at position 0"),
        ("name_regex", r"^CentOS 7\.9**", "multiple repeat at position 13"),
    ],
)
def test_a_bad_regex_names_the_regex_as_typed_and_the_position(field: str, pattern: str, problem: str) -> None:
    error = _error(**{field: pattern})
    _one_sentence(str(error))
    assert error.field == field
    assert str(error) == f"Invalid {field} '{pattern}': not a valid regular expression: {problem}."


def test_an_empty_states_list_says_what_to_name() -> None:
    error = _error(states=[])
    assert str(error) == f"Invalid states: must name at least one of {', '.join(STATES)}."


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"most_recent": "maybe"}, "Invalid most_recent 'maybe': must be true or false."),
        ({"region": 42}, "Invalid region 42: must be a string."),
        ({"ids": ["uimage-a", ""]}, "Invalid ids entry '': must not be empty."),
        ({"ids": ["uimage-a", 7]}, "Invalid ids entry 7: must be a string."),
        ({"features": 5}, "Invalid features 5: must be a list of strings."),
    ],
)
def test_other_bad_values_are_one_sentence_too(values: dict[str, Any], expected: str) -> None:
    assert str(_error(**values)) == expected


def test_an_unknown_filter_suggests_the_closest_and_lists_them_all() -> None:
    error = _error(regoin="cn-bj2")
    _one_sentence(str(error))
    assert error.field == "regoin"
    assert str(error).startswith("Unknown filter 'regoin' (did you mean 'region'?); the filters are region, zone,")
    for name in ImageQuery.model_fields:
        assert name in str(error)


def test_errors_use_the_callers_spelling_of_fields() -> None:
    naming = {"name_regex": "--name-regex", "os_type": "--os-type", "region": "--region"}
    with pytest.raises(ValidationError) as caught:
        ImageQuery.model_validate({"name_regex": "("})
    assert str(invalid_query_error(caught.value, naming=naming)).startswith("Invalid --name-regex '(': ")
    with pytest.raises(ValidationError) as caught:
        ImageQuery.model_validate({"os_type": "bsd"})
    assert str(invalid_query_error(caught.value, naming=naming)) == (
        "Invalid --os-type 'bsd': must be one of Linux, Windows."
    )
    with pytest.raises(ValidationError) as caught:
        ImageQuery.model_validate({"--regoin": "x"})
    assert "did you mean '--region'?" in str(invalid_query_error(caught.value, naming=naming))


# -- the server-side half ------------------------------------------------------------------------------


def test_server_params_carry_the_server_side_filters_only() -> None:
    query = parse_query(
        zone="cn-bj2-02", image_type="base", os_type="linux", func_type="GPU", image_id="uimage-a",
        ids=["uimage-a", "uimage-b"], name_regex="^x", os_name_regex="^y", features=["IPv6"],
        architecture="aarch64", states=["Making"], most_recent=True, exclude_eol=True,
        supported_until="2027-01-01", gpu_types=["A100"], scene_categories=["AIModels"], vendor_regex="^U",
        prices=True,
    )
    assert query.server_params("cn-bj2", "org-data") == {
        "Action": "DescribeImage", "Region": "cn-bj2", "Zone": "cn-bj2-02", "ProjectId": "org-data",
        "ImageType": "Base", "OsType": "Linux", "FuncType": "gpu", "ImageId": "uimage-a",
        "ImageIds": ["uimage-a", "uimage-b"], "PriceSet": 1,
    }
    assert parse_query().server_params("cn-bj2")["PriceSet"] is None  # left out of the request


def test_the_querys_project_wins_over_the_settings_project() -> None:
    from pydantic import SecretStr

    from pulumi_ucloud_images import Settings
    from pulumi_ucloud_images._settings.scope import lookup_scope

    settings = Settings(public_key="pk", private_key=SecretStr("sk"), region="cn-bj2", project_id="org-data")
    query = parse_query(project_id="org-ml")
    assert query.server_params(*lookup_scope(query, settings))["ProjectId"] == "org-ml"
    unset = ImageQuery().server_params("cn-bj2")
    assert unset["ProjectId"] is None and unset["ImageIds"] is None


# -- the client-side half -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "image", "expected"),
    [
        ({}, {}, True),
        ({}, {"State": "Making"}, False),
        ({"states": ["Making", "Available"]}, {"State": "Making"}, True),
        ({"zone": "cn-bj2-02"}, {}, True),
        ({"zone": "cn-bj2-03"}, {}, False),
        ({"image_type": "base"}, {}, True),
        ({"image_type": "custom"}, {}, False),
        ({"os_type": "windows"}, {}, False),
        ({"func_type": "gpu"}, {"FuncType": "GPU"}, True),
        ({"func_type": "app"}, {}, False),
        ({"image_id": "uimage-test01"}, {}, True),
        ({"image_id": "uimage-other"}, {}, False),
        ({"ids": ["uimage-x", "uimage-test01"]}, {}, True),
        ({"ids": ["uimage-x"]}, {}, False),
        ({"name_regex": "7\\.9 64位$"}, {}, True),
        ({"name_regex": "^CentOS 7\\.9"}, {"ImageName": " CentOS 7.9 64位"}, False),
        ({"name_regex": "^ CentOS"}, {"ImageName": " CentOS 7.9 64位"}, True),
        ({"name_regex": "centos"}, {}, False),
        ({"name_regex": "(?i)centos"}, {}, True),
        ({"os_name_regex": "^CentOS"}, {}, True),
        ({"os_name_regex": "^Ubuntu"}, {}, False),
        ({"features": ["CloudInit", "NetEnhanced"]}, {}, True),
        ({"features": ["CloudInit", "IPv6"]}, {}, False),
        ({"features": ["NetEnhanced"]}, {"Features": ["NetEnhnced"]}, True),
        ({"features": ["NetEnhanced_Ultra"]}, {}, False),
        ({"architecture": "x86_64"}, {}, True),
        ({"architecture": "aarch64"}, {}, False),
        ({"architecture": "aarch64"}, {"Features": ["Aarch64_Type"]}, True),
        ({"architecture": "x86_64"}, {"Features": ["Aarch64_Type"]}, False),
        ({"most_recent": True}, {}, True),
    ],
)
def test_matches_applies_every_filter(filters: dict[str, Any], image: dict[str, Any], expected: bool) -> None:
    assert parse_query(filters).matches(_image(**image)) is expected


def test_criteria_names_every_criterion_in_use_as_typed() -> None:
    query = parse_query(
        region="cn-bj2", zone="cn-bj2-02", os_type="linux", name_regex=r"^Ubuntu 22\.04", features=["IPv6", "GPU"],
        ids=["uimage-a"], architecture="arm64", most_recent=True,
    )
    assert query.criteria() == (
        "zone='cn-bj2-02', os_type='Linux', ids=[uimage-a], name_regex='^Ubuntu 22\\.04', features=[GPU, IPv6], "
        "architecture='aarch64', states=[Available], most_recent=True"
    )


def test_every_field_is_described_and_has_a_cli_flag() -> None:
    flags = set()
    for name, field in ImageQuery.model_fields.items():
        assert field.description, name
        extra = field.json_schema_extra
        assert isinstance(extra, dict) and re.fullmatch(r"--[a-z][a-z-]*", str(extra["cli"])), name
        flags.add(extra["cli"])
    assert len(flags) == len(ImageQuery.model_fields)


def test_features_and_architecture_read_an_images_features_alike() -> None:
    image = Image.model_validate({"ImageId": "uimage-a", "State": "Available", "Features": ["aarch64_type", "ARM64"]})
    assert image.architecture == "aarch64"
    assert parse_query(architecture="arm64").matches(image)
    assert parse_query(features=["Aarch64_Type"]).matches(image)
    assert not parse_query(architecture="x86_64").matches(image)
