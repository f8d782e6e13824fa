"""schema.json: generated from the models, never drifting from them, and valid for Pulumi."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import FormatChecker
from jsonschema.validators import validator_for

from pulumi_ucloud_images import Image, ImageQuery, LookupResult, __version__
from pulumi_ucloud_images._api.image import ImagePrice
from pulumi_ucloud_images._naming import camel
from pulumi_ucloud_images._pulumi.schema import (
    GET_IMAGES_TOKEN,
    IMAGE_TOKEN,
    PINNED_IMAGE_TOKEN,
    build_schema,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
METASCHEMA = ROOT / "tests" / "data" / "pulumi-metaschema.json"  # Pulumi's own; see tests/data/README.md


def _function() -> dict[str, Any]:
    function: dict[str, Any] = build_schema()["functions"][GET_IMAGES_TOKEN]
    return function


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    ref = spec["$ref"]
    assert ref.startswith("#/types/"), ref
    resolved: dict[str, Any] = schema["types"][ref.removeprefix("#/types/")]
    return resolved


SCHEMA_PATH = ROOT / "schema.json"


def test_render_is_stable_utf8_json() -> None:
    text = render()
    assert text == render()
    assert text.endswith("}\n")
    assert "64位" in text  # descriptions keep their characters rather than \u escapes
    assert json.loads(text) == build_schema()


def _metaschema_validator() -> Any:
    # The metaschema's patterns use (?<name>...) groups, which Python's re spells (?P<name>...).
    metaschema = json.loads(METASCHEMA.read_text(encoding="utf-8").replace("(?<", "(?P<"))
    cls = validator_for(metaschema)
    cls.check_schema(metaschema)
    return cls(metaschema, format_checker=FormatChecker())


def test_schema_json_is_valid_against_the_pulumi_metaschema() -> None:
    validator = _metaschema_validator()
    errors = sorted(validator.iter_errors(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))), key=str)
    assert not errors, "\n".join(f"{list(error.path)}: {error.message}" for error in errors)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("name",), "1-starts-with-a-digit"),
        (("version",), "one"),
        (("functions",), {"not a token": {}}),
        (("types", IMAGE_TOKEN, "properties", "imageId", "type"), "text"),
    ],
)
def test_the_metaschema_check_catches_broken_schemas(path: tuple[str, ...], value: Any) -> None:
    validator = _metaschema_validator()
    broken = build_schema()
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert list(validator.iter_errors(broken))


def test_package_identity_and_languages() -> None:
    schema = build_schema()
    assert schema["name"] == "ucloud-images"
    assert schema["version"] == __version__
    assert schema["language"]["python"]["packageName"] == "pulumi_ucloud_images"
    assert schema["language"]["nodejs"]["packageName"] == "pulumi-ucloud-images"


def test_every_query_field_is_an_input_with_the_models_description() -> None:
    inputs = _function()["inputs"]["properties"]
    assert list(inputs) == [*(camel(name) for name in ImageQuery.model_fields), "lock", "lockfile"]
    for name, field in ImageQuery.model_fields.items():
        assert inputs[camel(name)]["description"] == field.description
    assert {"nameRegex", "osNameRegex", "mostRecent", "projectId", "imageType"} <= set(inputs)
    assert inputs["mostRecent"]["type"] == "boolean"
    assert inputs["ids"] == {
        "type": "array", "items": {"type": "string"}, "description": ImageQuery.model_fields["ids"].description
    }
    assert "required" not in _function()["inputs"]  # every filter is optional; region falls back to the config


def test_enum_fields_refer_to_enum_types_with_the_models_values() -> None:
    schema = build_schema()
    inputs = _function()["inputs"]["properties"]
    seen = 0
    for name, field in ImageQuery.model_fields.items():
        extra = field.json_schema_extra
        assert isinstance(extra, dict)
        spec = inputs[camel(name)]
        if "enum" not in extra:
            assert "$ref" not in json.dumps(spec)
            continue
        seen += 1
        enum = _resolve(schema, spec["items"] if spec.get("type") == "array" else spec)
        assert enum["type"] == "string"
        assert [value["value"] for value in enum["enum"]] == extra["enum"]
    assert seen == 7  # imageType, osType, funcType, features, architecture, states, sceneCategories
    assert inputs["features"]["items"]["$ref"].endswith(":Feature")
    assert inputs["states"]["items"]["$ref"].endswith(":State")
    assert inputs["sceneCategories"]["items"]["$ref"].endswith(":SceneCategory")


def test_every_result_field_is_an_output() -> None:
    schema = build_schema()
    outputs = _function()["outputs"]
    assert list(outputs["properties"]) == [camel(name) for name in LookupResult.model_fields]
    assert outputs["required"] == ["imageId", "images", "ids", "totalCount", "region", "query", "warnings"]
    for name, field in LookupResult.model_fields.items():
        assert outputs["properties"][camel(name)]["description"] == field.description
    assert outputs["properties"]["images"]["items"] == {"$ref": f"#/types/{IMAGE_TOKEN}"}
    assert outputs["properties"]["totalCount"]["type"] == "integer"
    echoed = _resolve(schema, outputs["properties"]["query"])
    assert [*echoed["properties"], "lock", "lockfile"] == list(_function()["inputs"]["properties"])


def test_image_object_type_mirrors_the_image_model() -> None:
    schema = build_schema()
    image = schema["types"][IMAGE_TOKEN]
    assert image["type"] == "object"
    derived = list(Image.model_computed_fields)
    assert derived == ["architecture", "eol_date"]
    assert list(image["properties"]) == [camel(name) for name in [*Image.model_fields, *derived]]
    # the plugin always sends every attribute, but an EOL date that is unknown
    assert image["required"] == [name for name in image["properties"] if name != "eolDate"]
    for name, field in Image.model_fields.items():
        assert image["properties"][camel(name)]["description"] == field.description
    for name, computed in Image.model_computed_fields.items():
        assert image["properties"][camel(name)] == {"type": "string", "description": computed.description}
    assert image["properties"]["createTime"]["type"] == "integer"
    assert image["properties"]["minimalCpu"]["type"] == "string"
    price = _resolve(schema, image["properties"]["priceSet"]["items"])
    assert list(price["properties"]) == [camel(name) for name in ImagePrice.model_fields]
    assert price["required"] == ["chargeType"]  # prices may be absent


def test_provider_config_marks_only_the_private_key_secret() -> None:
    schema = build_schema()
    variables = schema["config"]["variables"]
    assert list(variables) == ["publicKey", "privateKey", "region", "projectId", "baseUrl", "timeout", "profile"]
    assert [key for key, spec in variables.items() if spec.get("secret")] == ["privateKey"]
    assert schema["provider"]["inputProperties"] == variables
    assert "UCLOUD_PRIVATE_KEY" in variables["privateKey"]["description"]
    assert {key: spec["type"] for key, spec in variables.items() if spec["type"] != "string"} == {"timeout": "number"}


def test_every_reference_resolves() -> None:
    schema = build_schema()
    text = json.dumps(schema)
    refs = {part.split('"')[0] for part in text.split('"$ref": "')[1:]}
    assert refs
    for ref in refs:
        assert ref.removeprefix("#/types/") in schema["types"], ref


@pytest.mark.parametrize(
    ("name", "expected"),
    [("region", "region"), ("os_name_regex", "osNameRegex"), ("minimal_cpu", "minimalCpu"), ("ids", "ids")],
)
def test_camel(name: str, expected: str) -> None:
    assert camel(name) == expected


def test_pinned_image_resource_takes_the_query_and_repin() -> None:
    schema = build_schema()
    pinned = schema["resources"][PINNED_IMAGE_TOKEN]
    inputs = _function()["inputs"]["properties"]
    assert pinned["inputProperties"] == {**inputs, "repin": pinned["inputProperties"]["repin"]}
    assert pinned["inputProperties"]["repin"]["type"] == "string"
    outputs = pinned["properties"]
    assert pinned["required"] == ["imageId", "imageName", "osName", "createTime", "features", "query"]
    assert set(pinned["required"]) | {"latestImageId", "repin"} <= set(outputs)
    # As an input `features` filters; as an output it is the pinned image's own features.
    assert outputs["features"] == schema["types"][IMAGE_TOKEN]["properties"]["features"]
    assert outputs["imageId"]["description"] == Image.model_fields["image_id"].description
    assert _resolve(schema, outputs["query"]) == _resolve(schema, _function()["outputs"]["properties"]["query"])
