"""The naming layer: every face's spelling of a field is derived from the models, and spelled back."""

from __future__ import annotations

import pytest

from pulumi_ucloud_images import Image, ImageQuery, LookupResult
from pulumi_ucloud_images._api.image import ImagePrice
from pulumi_ucloud_images._naming import (
    GET_IMAGES_TOKEN,
    PINNED_IMAGE_TOKEN,
    api_names,
    camel,
    camel_keys,
    cli_flags,
    field_keys,
    pascal,
    snake,
    wire_names,
)
from pulumi_ucloud_images._pulumi.schema import build_schema

MODELS = (Image, ImagePrice, ImageQuery, LookupResult)


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_every_field_spelled_in_camel_case_spells_back_to_itself(model: type[ImageQuery]) -> None:
    names = wire_names(model)
    assert set(names) == {*model.model_fields, *model.model_computed_fields}
    assert all(snake(prop) == name for name, prop in names.items())
    assert len(set(names.values())) == len(names)  # no two fields share a property


def test_the_schema_names_the_properties_as_the_naming_layer_does() -> None:
    schema = build_schema()
    function = schema["functions"][GET_IMAGES_TOKEN]
    assert list(function["inputs"]["properties"]) == [*wire_names(ImageQuery).values(), "lock", "lockfile"]
    assert list(function["outputs"]["properties"]) == list(wire_names(LookupResult).values())
    pinned = schema["resources"][PINNED_IMAGE_TOKEN]["inputProperties"]
    assert set(pinned) == {*wire_names(ImageQuery).values(), "repin", "lock", "lockfile"}


def test_the_query_and_the_result_dump_by_alias_in_the_schemas_spelling() -> None:
    query = ImageQuery(os_type="linux", name_regex="^Ubuntu", most_recent=True)
    assert query.model_dump(mode="json", by_alias=True, exclude_defaults=True) == {
        "osType": "Linux", "nameRegex": "^Ubuntu", "mostRecent": True}
    with pytest.raises(ValueError, match=r"nameRegex\s+Extra inputs are not permitted"):
        ImageQuery.model_validate({"nameRegex": "^Ubuntu"})  # a query is validated by field name only


def test_a_field_in_any_spelling_is_read_as_the_field_and_other_keys_stay_as_given() -> None:
    assert field_keys(Image, {"ImageId": "a", "imageName": "b", "os_name": "c", "Colour": "d"}) == {
        "image_id": "a", "image_name": "b", "os_name": "c", "Colour": "d"}
    assert field_keys(Image, {"SupportedGPUTypes": ["A100"], "eolDate": None}) == {
        "supported_gpu_types": ["A100"], "eol_date": None}


def test_the_api_spelling_is_the_models_alias_even_where_it_is_irregular() -> None:
    assert api_names(Image, ("image_id", "minimal_cpu", "supported_gpu_types")) == {
        "image_id": "ImageId", "minimal_cpu": "MinimalCPU", "supported_gpu_types": "SupportedGPUTypes"}


def test_dumps_are_spelled_in_camel_case_at_every_depth() -> None:
    assert camel_keys({"image_id": "a", "price_set": [{"charge_type": "Month"}], "query": {"name_regex": None}}) == {
        "imageId": "a", "priceSet": [{"chargeType": "Month"}], "query": {"nameRegex": None}}
    assert (camel("scene_categories"), pascal("scene_category")) == ("sceneCategories", "SceneCategory")


def test_cli_flags_come_from_the_fields_metadata() -> None:
    flags = cli_flags(ImageQuery)
    assert list(flags) == list(ImageQuery.model_fields)
    assert (flags["name_regex"], flags["ids"], flags["states"], flags["gpu_types"]) == (
        "--name-regex", "--id", "--state", "--gpu-type")
