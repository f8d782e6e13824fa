"""Properties (hypothesis): hostile answers raise only the library's errors; paging never changes the answer.

- ``parse_page`` and the client's response handling, given arbitrary JSON (or bytes), either succeed or raise
  one of the library's own errors.
- The images read, and the image selected, do not depend on the server's page size (its cap on Limit), the
  client's page size and pool size, the order in which concurrent pages complete, or the order in which the
  server lists the catalogue.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Mapping
from typing import Any

import pytest
import requests
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from requests.structures import CaseInsensitiveDict

from pulumi_ucloud_images import (
    AmbiguousImageError,
    Client,
    ImageQuery,
    NoImageFoundError,
    ResponseFormatError,
    RetryPolicy,
    Settings,
    UCloudImagesError,
)
from pulumi_ucloud_images._api.calls import REQUEST_ID_HEADER
from pulumi_ucloud_images._api.image import Image, parse_page
from pulumi_ucloud_images._select import select

REGION = "cn-bj2"
LISTING = {"Action": "DescribeImage", "Region": REGION}
SECRET = "sk-property-secret-9876"
SETTINGS = Settings(public_key="pk", private_key=SecretStr(SECRET), region=REGION, base_url="http://127.0.0.1:9")
ONE_ATTEMPT = RetryPolicy(attempts=1, total_seconds=5, sleep=lambda seconds: None)
FIELDS = ["ImageId", "ImageName", "Zone", "OsType", "OsName", "ImageType", "Features", "FuncType", "State",
          "CreateTime", "ImageSize", "MaintainEol", "SupportedGPUTypes", "PriceSet", "Tag"]


def encoded(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def response(status: int, body: bytes) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer.raw = urllib3.HTTPResponse(io.BytesIO(body), status=status, preload_content=False)
    answer.headers = CaseInsensitiveDict({REQUEST_ID_HEADER: "req-prop"})
    return answer


# -- arbitrary JSON -----------------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
image_like = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8) | st.fixed_dictionaries(
    {"ImageId": st.text(min_size=1, max_size=10)},
    optional={name: json_values for name in FIELDS[1:]},
)
bodies = json_values | st.fixed_dictionaries(
    {},
    optional={
        "RetCode": st.sampled_from([0, 0, 0, 150, 171, 2000]) | json_values,
        "Message": json_values,
        "TotalCount": st.integers(min_value=-2, max_value=10**19) | json_values,
        "ImageSet": st.lists(image_like | json_values, max_size=4) | json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(bodies)
def test_parse_page_returns_a_page_or_raises_a_response_format_error(body: Any) -> None:
    try:
        page = parse_page(body, request_id="req-prop")
    except ResponseFormatError as error:
        assert error.request_id == "req-prop" and "\n" not in str(error)
    else:
        assert page.total_count >= 0 and all(isinstance(image, Image) and image.image_id for image in page.images)


raw_bodies = bodies.map(lambda body: json.dumps(body, allow_nan=True).encode()) | st.binary(max_size=64)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(status=st.sampled_from([200, 200, 200, 301, 400, 403, 404, 429, 500, 502, 503]), body=raw_bodies)
def test_the_client_given_any_answer_returns_images_or_raises_its_own_errors(status: int, body: bytes) -> None:
    class Session(requests.Session):
        def post(self, url: Any, data: Any = None, json: Any = None, **kwargs: Any) -> requests.Response:
            return response(status, body)

    with Client(SETTINGS, session=Session(), retry=ONE_ATTEMPT, max_workers=2) as client:
        try:
            images = client.describe_images(LISTING)
        except UCloudImagesError as error:
            assert SECRET not in str(error) and "\n" not in str(error)
        else:
            assert all(isinstance(image, Image) for image in images)
            assert len({image.image_id for image in images}) == len(images)


# -- paging never changes the answer --------------------------------------------------------------------------


class CatalogSession(requests.Session):
    """DescribeImage over a list of records, in process: caps Limit at ``cap``; pages after the first are
    answered in the order ``release`` gives (each waits for its turn), to shuffle when concurrent pages land.
    """

    def __init__(self, records: list[dict[str, Any]], cap: int, release: list[int] | None = None) -> None:
        super().__init__()
        self.records, self.cap, self.release = records, cap, release or []
        self.turn = threading.Condition()
        self.released = 0

    def post(self, url: Any, data: Any = None, json: Any = None, **kwargs: Any) -> requests.Response:
        offset, limit = int(data["Offset"]), int(data["Limit"])
        if offset in self.release:
            with self.turn:
                self.turn.wait_for(lambda: self.release[self.released] == offset, timeout=5)
                self.released += 1
                self.turn.notify_all()
        chunk = self.records[offset:offset + min(limit, self.cap)]
        payload = {"RetCode": 0, "TotalCount": len(self.records), "ImageSet": chunk}
        return response(200, encoded(payload))


NAMES = ["Ubuntu 22.04 64位", "Ubuntu 22.04 64位 ", "CentOS 7.9 64位", "Rocky 9.4 64位"]


@st.composite
def catalogues(draw: st.DrawFn) -> list[dict[str, Any]]:
    size = draw(st.integers(min_value=1, max_value=40))
    return [
        {
            "ImageId": f"uimage-{index:04d}",
            "ImageName": draw(st.sampled_from(NAMES)),
            "State": draw(st.sampled_from(["Available", "Available", "Making"])),
            "CreateTime": draw(st.integers(min_value=1_600_000_000, max_value=1_600_000_005)),  # ties happen
            "Zone": "cn-bj2-02",
        }
        for index in range(size)
    ]


def outcome(images: tuple[Image, ...], query: ImageQuery) -> tuple[str, ...]:
    """The selection's answer: the chosen image and every match, or the kind of refusal and its candidates."""
    try:
        result = select(images, query, REGION)
    except AmbiguousImageError as error:
        return ("ambiguous", *error.image_ids)
    except NoImageFoundError:
        return ("none",)
    return (result.image_id, *result.ids)


QUERIES = [
    ImageQuery(name_regex=r"^Ubuntu 22\.04", most_recent=True),
    ImageQuery(name_regex=r"^Ubuntu 22\.04"),
    ImageQuery(most_recent=True),
    ImageQuery(name_regex="CentOS", states=("Available", "Making"), most_recent=True),
]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    catalogue=catalogues(),
    data=st.data(),
    page_size=st.integers(min_value=1, max_value=50),
    workers=st.integers(min_value=1, max_value=8),
)
def test_the_listing_is_the_servers_order_whatever_the_page_sizes(
    catalogue: list[dict[str, Any]], data: st.DataObject, page_size: int, workers: int
) -> None:
    cap = data.draw(st.integers(min_value=1, max_value=len(catalogue) + 1), label="server cap")
    with Client(SETTINGS, session=CatalogSession(catalogue, cap), retry=ONE_ATTEMPT, max_workers=workers,
                page_size=page_size) as client:
        images = client.describe_images(LISTING)
    assert [image.image_id for image in images] == [record["ImageId"] for record in catalogue]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogue=catalogues(), data=st.data())
def test_selection_ignores_page_size_page_order_and_catalogue_order(
    catalogue: list[dict[str, Any]], data: st.DataObject
) -> None:
    # A cap of 3 or more keeps the later pages (at most 13) within the pool, so every landing order can happen.
    cap = data.draw(st.integers(min_value=3, max_value=max(3, len(catalogue) + 1)), label="server cap")
    listed = data.draw(st.permutations(catalogue), label="server order")
    later_pages = list(range(min(cap, len(listed)), len(listed), min(cap, len(listed))))
    release = data.draw(st.permutations(later_pages), label="order the later pages land in")
    with Client(SETTINGS, session=CatalogSession(listed, cap, release), retry=ONE_ATTEMPT, max_workers=16) as client:
        images = client.describe_images(LISTING)
    reference = tuple(Image.model_validate(record) for record in catalogue)
    for query in QUERIES:
        assert outcome(images, query) == outcome(reference, query)


@pytest.mark.parametrize(("total", "error"), [(3, "consistent image list"),
                                              (10**12, "a TotalCount of 1,000,000,000,000; the listing was not read")])
def test_pages_that_repeat_the_same_images_end_in_an_error_not_a_loop(total: int, error: str) -> None:
    class Repeating(requests.Session):
        def post(self, url: Any, data: Any = None, json: Any = None, **kwargs: Any) -> requests.Response:
            body: Mapping[str, Any] = {"RetCode": 0, "TotalCount": total, "ImageSet": [{"ImageId": "uimage-same"}]}
            return response(200, encoded(body))

    with Client(SETTINGS, session=Repeating(), retry=ONE_ATTEMPT, max_workers=4) as client:
        with pytest.raises(UCloudImagesError, match=error):
            client.describe_images(LISTING)
        assert client.requests_sent <= 3 * (1 + 2 * 4)
