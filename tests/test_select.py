"""Selection: the strict rules on zero, one and several matches, and what the result carries."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest

from pulumi_ucloud_images._api.image import Image
from pulumi_ucloud_images._cli.common import exit_code_for
from pulumi_ucloud_images._errors import AmbiguousImageError, NoImageFoundError
from pulumi_ucloud_images._pulumi.schema import IMAGE_TOKEN, build_schema
from pulumi_ucloud_images._query import parse_query
from pulumi_ucloud_images._select import LookupResult, filter_images, newest_first, select

T0 = int(datetime(2025, 3, 1, 6, 12, tzinfo=timezone.utc).timestamp())


def image(image_id: str, created: int = T0, name: str = "Ubuntu 22.04 64位", **fields: Any) -> Image:
    return Image.model_validate(
        {"ImageId": image_id, "ImageName": name, "CreateTime": created, "State": "Available", "OsType": "Linux",
         "ImageType": "Base", "Zone": "cn-bj2-02", **fields}
    )


def test_one_match_is_the_answer_without_most_recent() -> None:
    images = [image("uimage-a"), image("uimage-b", name="CentOS 7.9 64位")]
    result = select(images, parse_query(name_regex="^CentOS"), "cn-bj2")
    assert result.image_id == "uimage-b"
    assert result.ids == ("uimage-b",) and result.total_count == 1
    assert result.image.image_name == "CentOS 7.9 64位"


def test_most_recent_takes_the_newest_and_the_result_lists_every_match_newest_first() -> None:
    images = [image("uimage-old", T0), image("uimage-new", T0 + 86400), image("uimage-mid", T0 + 3600)]
    query = parse_query(os_type="linux", most_recent=True)
    result = select(images, query, "cn-bj2")
    assert isinstance(result, LookupResult)
    assert result.image_id == "uimage-new"
    assert result.ids == ("uimage-new", "uimage-mid", "uimage-old")
    assert [item.image_id for item in result.images] == list(result.ids)
    assert all(isinstance(item, Image) for item in result.images)
    assert result.total_count == 3
    assert (result.region, result.query) == ("cn-bj2", query)


def test_equal_create_times_are_broken_by_image_id_whatever_the_input_order() -> None:
    tied = [image("uimage-c", T0), image("uimage-a", T0), image("uimage-b", T0), image("uimage-z", T0 - 1)]
    query = parse_query(most_recent=True)
    for order in (tied, tied[::-1], tied[1:] + tied[:1]):
        result = select(order, query, "cn-bj2")
        assert result.image_id == "uimage-a"
        assert result.ids == ("uimage-a", "uimage-b", "uimage-c", "uimage-z")
    assert [item.image_id for item in newest_first(tied)] == ["uimage-a", "uimage-b", "uimage-c", "uimage-z"]


def test_zero_matches_name_the_region_and_every_criterion() -> None:
    query = parse_query(zone="cn-bj2-03", os_type="linux", name_regex=r"^Rocky 9\.4", features=["IPv6"],
                        architecture="aarch64")
    with pytest.raises(NoImageFoundError) as caught:
        select([image("uimage-a"), image("uimage-b")], query, "cn-bj2")
    assert exit_code_for(caught.value) == 3
    assert str(caught.value) == (
        "No image in region cn-bj2 matches zone='cn-bj2-03', os_type='Linux', name_regex='^Rocky 9\\.4', "
        "features=[IPv6], architecture='aarch64', states=[Available]: DescribeImage listed 2 images, none passing "
        "every filter."
    )


def test_zero_matches_from_an_empty_listing_say_the_server_listed_nothing() -> None:
    with pytest.raises(NoImageFoundError) as caught:
        select([], parse_query(image_type="custom"), "us-ca")
    assert str(caught.value) == (
        "No image in region us-ca matches image_type='Custom', states=[Available]: DescribeImage listed no image "
        "for the server-side filters."
    )


def test_zero_matches_point_at_images_that_only_the_state_excluded() -> None:
    images = [image("uimage-mk", State="Making"), image("uimage-gone", State="Unavailable"),
              image("uimage-gone2", State="Unavailable"), image("uimage-other", name="Debian 12 64位", State="Making")]
    with pytest.raises(NoImageFoundError) as caught:
        select(images, parse_query(name_regex="^Ubuntu"), "cn-bj2")
    assert str(caught.value).endswith(
        "DescribeImage listed 4 images, none passing every filter, though 1 Making and 2 Unavailable images would "
        "pass if states allowed them."
    )
    with pytest.raises(NoImageFoundError) as caught:
        select(images[:1], parse_query(name_regex="^Ubuntu"), "cn-bj2")
    assert str(caught.value).endswith(
        "DescribeImage listed 1 image, none passing every filter, though 1 Making image would pass if states "
        "allowed it."
    )


def _candidates(message: str) -> list[tuple[str, str, str]]:
    return re.findall(r"(uimage-\d+) '([^']*)' created (\d{4}-\d\d-\d\d \d\d:\d\d UTC|unknown)", message)


def test_several_matches_list_every_candidate_with_name_and_creation_time() -> None:
    images = [image(f"uimage-{index:02d}", T0 + index * 60) for index in range(3)]
    with pytest.raises(AmbiguousImageError) as caught:
        select(images, parse_query(os_type="linux"), "cn-bj2")
    message = str(caught.value)
    assert exit_code_for(caught.value) == 4
    assert message.startswith("3 images in region cn-bj2 match os_type='Linux', states=[Available]: ")
    assert _candidates(message) == [
        ("uimage-02", "Ubuntu 22.04 64位", "2025-03-01 06:14 UTC"),
        ("uimage-01", "Ubuntu 22.04 64位", "2025-03-01 06:13 UTC"),
        ("uimage-00", "Ubuntu 22.04 64位", "2025-03-01 06:12 UTC"),
    ]
    assert "more" not in message
    assert message.endswith(". Set most_recent to take the newest, or tighten the filters.")
    assert caught.value.image_ids == ["uimage-02", "uimage-01", "uimage-00"]


@pytest.mark.parametrize(("count", "more"), [(10, None), (11, 1), (250, 240)])
def test_at_most_ten_candidates_are_listed_then_how_many_more(count: int, more: int | None) -> None:
    images = [image(f"uimage-{index:03d}", T0 + index) for index in range(count)]
    with pytest.raises(AmbiguousImageError) as caught:
        select(images, parse_query(), "cn-bj2")
    message = str(caught.value)
    shown = _candidates(message)
    assert [item[0] for item in shown] == [f"uimage-{index:03d}" for index in range(count - 1, count - 11, -1)]
    assert (f"; and {more} more." in message) is (more is not None)
    assert len(caught.value.image_ids) == count


def test_candidate_names_show_stray_spaces_and_unknown_times() -> None:
    images = [image("uimage-1", name=" CentOS 7.9 64位"), image("uimage-2", created=0, name="CentOS 7.9 64位 ")]
    with pytest.raises(AmbiguousImageError) as caught:
        select(images, parse_query(name_regex="CentOS"), "cn-bj2")
    assert _candidates(str(caught.value)) == [
        ("uimage-1", " CentOS 7.9 64位", "2025-03-01 06:12 UTC"),
        ("uimage-2", "CentOS 7.9 64位 ", "unknown"),
    ]


def test_filter_images_is_not_strict() -> None:
    images = [image("uimage-a", T0), image("uimage-b", T0 + 1), image("uimage-c", State="Making")]
    assert [item.image_id for item in filter_images(images, parse_query())] == ["uimage-b", "uimage-a"]
    assert filter_images(images, parse_query(name_regex="^nothing")) == []


def test_to_json_speaks_one_spelling_the_schemas() -> None:
    result = select([image("uimage-a", T0), image("uimage-b", T0 + 1)], parse_query(most_recent=True), "cn-bj2")
    data = result.to_json()
    assert data["imageId"] == "uimage-b" and data["ids"] == ["uimage-b", "uimage-a"]
    assert data["totalCount"] == 2 and data["region"] == "cn-bj2" and data["warnings"] == []
    assert data["image"]["imageId"] == "uimage-b" and data["image"]["imageName"] == "Ubuntu 22.04 64位"
    assert [item["imageId"] for item in data["images"]] == ["uimage-b", "uimage-a"]
    # Every key of a record is the schema's property name: camelCase, derived fields included.
    image_type = build_schema()["types"][IMAGE_TOKEN]
    assert list(data["image"]) == list(image_type["properties"])
    assert data["image"]["architecture"] == "x86_64"


def test_errors_spell_the_fields_as_the_caller_does() -> None:
    naming = {"name_regex": "nameRegex", "states": "states", "most_recent": "mostRecent"}
    images = [image("uimage-a"), image("uimage-b"), image("uimage-m", name="Ubuntu 22.04 64位", State="Making")]
    with pytest.raises(AmbiguousImageError) as ambiguous:
        select(images, parse_query(name_regex="^Ubuntu"), "cn-bj2", naming=naming)
    assert "match nameRegex='^Ubuntu', states=[Available]:" in str(ambiguous.value)
    assert str(ambiguous.value).endswith("Set mostRecent to take the newest, or tighten the filters.")
    with pytest.raises(NoImageFoundError) as none:
        select(images[2:], parse_query(name_regex="^Ubuntu"), "cn-bj2", naming={"states": "--state"})
    assert str(none.value).endswith("though 1 Making image would pass if --state allowed it.")
