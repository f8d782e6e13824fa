"""The DescribeImage emulator, over real loopback HTTP: envelope, checks, filters, paging, faults, SDK."""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

import pulumi_ucloud_images.testing as plugin
from pulumi_ucloud_images._api.image import Image
from pulumi_ucloud_images._api.signing import flatten, sign, signature
from pulumi_ucloud_images._emulator.catalog import (
    DEFAULT_PROJECT,
    DEMO_REGION,
    build_catalog,
    region_of,
    synthetic_catalog,
)
from pulumi_ucloud_images._emulator.service import (
    DEMO_PRIVATE_KEY,
    DEMO_PUBLIC_KEY,
    FAULT_KINDS,
    Emulator,
    load_catalog,
    serve_forever,
)
from pulumi_ucloud_images._errors import InvalidQueryError

# The plugin's fixtures, bound here so this file does not depend on the entry point being installed.
ucloud_emulator = plugin.ucloud_emulator
ucloud_emulator_env = plugin.ucloud_emulator_env

CATALOG = build_catalog()
REQUEST_ID = "X-UCLOUD-REQUEST-UUID"


@pytest.fixture(scope="module")
def shared() -> Iterator[Emulator]:
    """One emulator for the tests that only read (no faults, no publishing)."""
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def post(
    base_url: str,
    params: Mapping[str, Any],
    *,
    public: str = DEMO_PUBLIC_KEY,
    private: str = DEMO_PRIVATE_KEY,
    session: requests.Session | None = None,
) -> requests.Response:
    form = sign(params, public, private)
    return (session or requests.Session()).post(base_url, data=form, timeout=10)


def describe(emulator: Emulator, **params: Any) -> dict[str, Any]:
    """A successful DescribeImage answer (RetCode 0 asserted)."""
    response = post(emulator.base_url, {"Action": "DescribeImage", "Region": DEMO_REGION, **params})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body["RetCode"] == 0, body
    assert body["Action"] == "DescribeImageResponse"
    return body


def visible(region: str, project: str = DEFAULT_PROJECT) -> list[dict[str, Any]]:
    """What the catalogue shows a project in a region, in catalogue order."""
    return [
        record for record in CATALOG
        if region_of(record) == region
        and not (record["ImageType"] == "Custom" and record["_ProjectId"] != project)
    ]


def ids(images: list[dict[str, Any]]) -> list[str]:
    return [image["ImageId"] for image in images]


# -- the envelope and the checks, in the gateway's order --------------------------------------------------

REJECTIONS = [
    pytest.param({"Region": DEMO_REGION}, {}, 160, id="160-missing-action"),
    pytest.param({"Action": "DescribeImage", "Region": DEMO_REGION}, {"drop": "Signature"}, 170, id="170-no-signature"),
    pytest.param({"Action": "DescribeImage", "Region": DEMO_REGION}, {"public": "nobody"}, 172, id="172-unknown-key"),
    pytest.param({"Action": "DescribeImage", "Region": DEMO_REGION}, {"private": "wrong"}, 171, id="171-bad-signature"),
    pytest.param({"Action": "DescribeUHostInstance", "Region": DEMO_REGION}, {}, 161, id="161-unknown-action"),
    pytest.param({"Action": "DescribeImage"}, {}, 230, id="230-missing-region"),
    pytest.param({"Action": "DescribeImage", "Region": "mars-1"}, {}, 230, id="230-unknown-region"),
    pytest.param({"Action": "DescribeImage", "Region": DEMO_REGION, "ProjectId": "org-nope"}, {}, 292, id="292"),
    pytest.param({"Action": "DescribeImage", "Region": DEMO_REGION, "Limit": "ten"}, {}, 230, id="230-limit-text"),
    pytest.param({"Action": "DescribeImage", "Region": DEMO_REGION, "Limit": "0"}, {}, 230, id="230-limit-zero"),
    pytest.param({"Action": "DescribeImage", "Region": DEMO_REGION, "Offset": "-1"}, {}, 230, id="230-offset"),
    pytest.param({"Action": "DescribeImage", "Region": DEMO_REGION, "Offset": "1.5"}, {}, 230, id="230-offset-float"),
    # several problems at once: the earliest check answers
    pytest.param({"Region": DEMO_REGION}, {"drop": "Signature", "public": "nobody"}, 160, id="160-before-170"),
    pytest.param({"Action": "X"}, {"drop": "Signature", "public": "nobody"}, 170, id="170-before-172"),
    pytest.param({"Action": "X"}, {"public": "nobody", "private": "wrong"}, 172, id="172-before-171"),
    pytest.param({"Action": "X"}, {"private": "wrong"}, 171, id="171-before-161"),
    pytest.param({"Action": "X", "Region": "mars-1"}, {}, 161, id="161-before-230"),
    pytest.param({"Action": "DescribeImage", "ProjectId": "org-nope"}, {}, 230, id="230-before-292"),
]


@pytest.mark.parametrize(("params", "tamper", "ret_code"), REJECTIONS)
def test_every_rejection_is_an_http_200_envelope_with_a_request_id(
    shared: Emulator, params: dict[str, str], tamper: dict[str, str], ret_code: int
) -> None:
    form = sign(params, DEMO_PUBLIC_KEY, tamper.get("private", DEMO_PRIVATE_KEY))
    if "public" in tamper:
        form["PublicKey"] = tamper["public"]
        form["Signature"] = signature(form, tamper.get("private", DEMO_PRIVATE_KEY))
    form.pop(tamper.get("drop", ""), None)
    response = requests.post(shared.base_url, data=form, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["RetCode"] == ret_code
    assert body["Action"] == f"{params.get('Action', '')}Response"
    assert body["Message"]
    assert "ImageSet" not in body
    request_id = response.headers[REQUEST_ID]
    assert uuid.UUID(request_id).version == 4
    logged = next(r for r in shared.requests if r.request_id == request_id)
    assert logged.ret_code == ret_code and logged.status == 200
    assert "Signature" not in logged.params and "PublicKey" not in logged.params


def test_a_success_carries_the_envelope_and_a_fresh_request_id_each_time(shared: Emulator) -> None:
    session = requests.Session()
    first = post(shared.base_url, {"Action": "DescribeImage", "Region": DEMO_REGION}, session=session)
    second = post(shared.base_url, {"Action": "DescribeImage", "Region": DEMO_REGION}, session=session)
    assert first.headers["Content-Type"].startswith("application/json")
    assert first.json()["RetCode"] == 0 and first.json()["Action"] == "DescribeImageResponse"
    assert first.headers[REQUEST_ID] != second.headers[REQUEST_ID]
    logged = {r.request_id: r for r in shared.requests}
    assert logged[first.headers[REQUEST_ID]].params == {"Action": "DescribeImage", "Region": DEMO_REGION}
    assert logged[first.headers[REQUEST_ID]].ret_code == 0


def test_signatures_are_checked_against_a_custom_key_pair_and_the_published_known_answer() -> None:
    public, private = "ucloudsomeone@example.com1296235120854146120", "46f09bb9fab4f12dfc160dae12273d5332b5debe"
    with Emulator(keys={public: private, "pk-second": "sk-second"}) as emulator:
        # The documented known answer passes the signature check; the action is then unknown to the emulator.
        form = {"Action": "DescribeUHostInstance", "Region": "cn-bj2", "Limit": "10", "PublicKey": public,
                "Signature": "cba5cf5ec4d4233d206b1b54951e3787350a642f"}
        assert requests.post(emulator.base_url, data=form, timeout=10).json()["RetCode"] == 161
        form["Limit"] = "11"  # any change to a signed parameter breaks it
        assert requests.post(emulator.base_url, data=form, timeout=10).json()["RetCode"] == 171
        params = {"Action": "DescribeImage", "Region": "cn-bj2", "ImageId": "uimage-f1chxn"}
        assert post(emulator.base_url, params, public=public, private=private).json()["TotalCount"] == 1
        assert post(emulator.base_url, params, public="pk-second", private="sk-second").json()["RetCode"] == 0
        assert post(emulator.base_url, params, public="pk-second", private=private).json()["RetCode"] == 171
        assert post(emulator.base_url, params).json()["RetCode"] == 172  # the demo pair is not accepted here
        assert private not in repr(emulator) and "sk-second" not in repr(emulator)
        assert all(private not in json.dumps(r.params) for r in emulator.requests)


def test_the_official_sdk_oracle_agrees_with_the_emulator(shared: Emulator) -> None:
    from ucloud.core.auth import Credential

    params = {"Action": "DescribeImage", "Region": DEMO_REGION, "ImageIds": ["uimage-f1chxn", "uimage-ub2205"]}
    form = flatten(params)
    form["Signature"] = Credential(DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY).verify_ac(form)  # adds PublicKey
    body = requests.post(shared.base_url, data=form, timeout=10).json()
    assert body["RetCode"] == 0 and body["TotalCount"] == 2


def test_get_with_a_query_string_and_a_json_body_are_accepted(shared: Emulator) -> None:
    form = sign({"Action": "DescribeImage", "Region": DEMO_REGION, "ImageId": "uimage-f1chxn"},
                DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY)
    by_get = requests.get(shared.base_url, params=form, timeout=10).json()
    by_json = requests.post(shared.base_url, json=form, timeout=10).json()
    assert by_get["RetCode"] == by_json["RetCode"] == 0
    assert ids(by_get["ImageSet"]) == ids(by_json["ImageSet"]) == ["uimage-f1chxn"]
    assert [r.method for r in shared.requests[-2:]] == ["GET", "POST"]
    garbage = requests.post(shared.base_url, data=b"\xff\xfe", timeout=10)
    assert garbage.json()["RetCode"] == 160


def test_connections_are_kept_alive(shared: Emulator) -> None:
    host, port = shared.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for _ in range(3):  # all three on one socket: the server neither closes it nor omits the length
            body = json.dumps(sign({"Action": "DescribeImage", "Region": "hk"}, DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY))
            connection.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.getheader("Content-Length") is not None
            assert json.loads(response.read())["RetCode"] == 0
            assert not response.will_close
    finally:
        connection.close()


# -- server-side filters ----------------------------------------------------------------------------------


def test_no_filter_lists_the_region_in_catalogue_order(shared: Emulator) -> None:
    expected = visible(DEMO_REGION)
    body = describe(shared, Limit=1000)
    assert body["TotalCount"] == len(expected)
    assert ids(body["ImageSet"]) == ids(expected)
    assert all(not key.startswith("_") for image in body["ImageSet"] for key in image)
    for image in body["ImageSet"]:
        Image.model_validate(image)


@pytest.mark.parametrize(
    ("name", "value"),
    [("Zone", "cn-bj2-05"), ("ImageType", "Base"), ("ImageType", "Business"), ("ImageType", "Custom"),
     ("OsType", "Windows"), ("OsType", "Linux"), ("FuncType", "gpu"), ("FuncType", "app"), ("FuncType", "uhost"),
     ("Tag", "Default")],
)
def test_each_field_filter(shared: Emulator, name: str, value: str) -> None:
    expected = [record for record in visible(DEMO_REGION) if record[name] == value]
    body = describe(shared, **{name: value}, Limit=1000)
    assert expected and body["TotalCount"] == len(expected)
    assert ids(body["ImageSet"]) == ids(expected)


def test_a_wrong_func_type_is_ignored_like_the_real_server(shared: Emulator) -> None:
    assert describe(shared, FuncType="banana")["TotalCount"] == len(visible(DEMO_REGION))


def test_filters_combine(shared: Emulator) -> None:
    body = describe(shared, Zone="cn-bj2-02", ImageType="Base", OsType="Linux", Limit=1000)
    assert body["ImageSet"] and all(
        (i["Zone"], i["ImageType"], i["OsType"]) == ("cn-bj2-02", "Base", "Linux") for i in body["ImageSet"]
    )
    assert body["TotalCount"] == len(body["ImageSet"])
    assert describe(shared, Zone="cn-sh2-01")["TotalCount"] == 0  # a zone of another region


def test_image_id_and_image_ids(shared: Emulator) -> None:
    one = describe(shared, ImageId="uimage-f1chxn")
    assert one["TotalCount"] == 1 and one["ImageSet"][0]["ImageName"] == "CentOS 7.2 64位"
    several = describe(shared, ImageIds=["uimage-ub2205", "uimage-f1chxn", "uimage-nope00"])
    assert ids(several["ImageSet"]) == ["uimage-f1chxn", "uimage-ub2205"]  # catalogue order, unknown IDs dropped
    assert describe(shared, ImageId="uimage-ub2205", ImageIds=["uimage-f1chxn"])["TotalCount"] == 0
    assert describe(shared, ImageId="uimage-f1chxn", Region="cn-sh2")["TotalCount"] == 0  # IDs are regional


def test_custom_images_are_visible_only_to_their_project(shared: Emulator) -> None:
    default = describe(shared, ImageType="Custom", Limit=1000)["ImageSet"]
    platform = describe(shared, ImageType="Custom", ProjectId="org-platform", Limit=1000)["ImageSet"]
    data = describe(shared, ImageType="Custom", ProjectId="org-data", Limit=1000)["ImageSet"]
    assert ids(default) == ids(platform) == ids([r for r in visible(DEMO_REGION) if r["ImageType"] == "Custom"])
    assert "uimage-gw0314" in ids(default) and "uimage-gw0314" not in ids(data)
    assert data and all(image["ImageName"].startswith(("golden-etl-", "golden-spark-")) for image in data)
    base = describe(shared, ImageType="Base")["TotalCount"]
    assert describe(shared, ImageType="Base", ProjectId="org-ml")["TotalCount"] == base  # public images for all
    assert describe(shared, Region="afr-nigeria")["TotalCount"] == 0  # a known region without images


# -- paging -------------------------------------------------------------------------------------------------


def test_offset_limit_and_total_count(shared: Emulator) -> None:
    everything = ids(visible(DEMO_REGION))
    default = describe(shared)
    assert len(default["ImageSet"]) == 20 and default["TotalCount"] == len(everything)
    pages: list[str] = []
    for offset in range(0, len(everything), 37):
        page = describe(shared, Offset=offset, Limit=37)
        assert page["TotalCount"] == len(everything)
        pages += ids(page["ImageSet"])
    assert pages == everything
    beyond = describe(shared, Offset=len(everything) + 5)
    assert beyond["ImageSet"] == [] and beyond["TotalCount"] == len(everything)


def test_limit_is_capped_by_max_limit() -> None:
    with Emulator(synthetic_catalog("cn-bj2", 120), max_limit=50) as emulator:
        body = describe(emulator, Limit=1000)
        assert len(body["ImageSet"]) == 50 and body["TotalCount"] == 120
        assert len(describe(emulator, Limit=30)["ImageSet"]) == 30
        emulator.max_limit = 100
        assert len(describe(emulator, Limit=1000)["ImageSet"]) == 100
        assert len(describe(emulator, Offset=100, Limit=1000)["ImageSet"]) == 20
    with pytest.raises(ValueError):
        Emulator([], max_limit=0)


def test_price_set_only_when_asked(shared: Emulator) -> None:
    plain = describe(shared, ImageIds=["uimage-f1chxn"])["ImageSet"][0]
    assert "PriceSet" not in plain
    priced = describe(shared, PriceSet=1, OsType="Windows", Limit=1000)["ImageSet"]
    for image in priced:
        parsed = Image.model_validate(image)
        assert [p.charge_type for p in parsed.price_set] == ["Month", "Year", "Dynamic"]
        assert parsed.price_set[0].price is not None and parsed.price_set[0].price > 0  # Windows licence
    free = describe(shared, PriceSet=1, ImageId="uimage-f1chxn")["ImageSet"][0]
    assert free["PriceSet"][0] == {"ChargeType": "Month", "Price": 0.0, "OriginalPrice": 0.0}


# -- publishing -------------------------------------------------------------------------------------------


def test_publish_replace_remove_and_set_state(emu: Emulator) -> None:
    before = describe(emu, ImageType="Custom")["TotalCount"]
    new = {**CATALOG[0], "ImageId": "uimage-new001", "ImageName": "golden-web-2026.04.01", "ImageType": "Custom",
           "_ProjectId": "org-platform", "CreateTime": 1775000000}
    emu.publish(new)
    listed = describe(emu, ImageType="Custom", Limit=1000)
    assert listed["TotalCount"] == before + 1 and ids(listed["ImageSet"])[-1] == "uimage-new001"
    assert "_ProjectId" not in listed["ImageSet"][-1]
    order = ids(describe(emu, Limit=1000)["ImageSet"])
    emu.publish({**CATALOG[0], "ImageName": "renamed"})  # same ID: replaced where it was
    again = describe(emu, Limit=1000)["ImageSet"]
    assert ids(again) == order and again[0]["ImageName"] == "renamed"
    emu.set_state("uimage-new001", "Unavailable")
    assert describe(emu, ImageId="uimage-new001")["ImageSet"][0]["State"] == "Unavailable"
    emu.remove("uimage-new001")
    assert describe(emu, ImageId="uimage-new001")["TotalCount"] == 0
    with pytest.raises(KeyError):
        emu.remove("uimage-new001")
    with pytest.raises(KeyError):
        emu.set_state("uimage-nope00", "Available")
    with pytest.raises(ValueError, match="ImageId"):
        emu.publish({"ImageName": "no id", "Zone": "cn-bj2-02"})
    with pytest.raises(ValueError, match="Zone"):
        emu.publish({"ImageId": "uimage-nozone"})
    emu.publish({"ImageId": "uimage-newprj", "Zone": "cn-bj2-02", "ImageType": "Custom", "_ProjectId": "org-new"})
    assert describe(emu, ProjectId="org-new", ImageType="Custom")["TotalCount"] == 1  # the project now exists


def test_images_lists_the_current_records(emu: Emulator) -> None:
    hk = emu.images("hk")
    assert hk and {region_of(record) for record in hk} == {"hk"}
    assert all(not key.startswith("_") for record in hk for key in record)
    assert any("_ProjectId" in record for record in emu.images("hk", include_private=True))
    assert len(emu.images()) == len(CATALOG)


# -- faults -----------------------------------------------------------------------------------------------


def test_fault_ret_code_hits_the_next_requests_after_skipping_some(emu: Emulator) -> None:
    emu.inject("ret_code", value=153, times=2, after=1)
    codes = [post(emu.base_url, {"Action": "DescribeImage", "Region": DEMO_REGION}).json() for _ in range(4)]
    assert [body["RetCode"] for body in codes] == [0, 153, 153, 0]
    assert codes[1]["Message"] and codes[1]["Action"] == "DescribeImageResponse"
    assert [r.fault for r in emu.requests] == [None, "ret_code", "ret_code", None]
    emu.inject("ret_code", value=150)
    assert post(emu.base_url, {"Action": "DescribeImage", "Region": DEMO_REGION}).json()["RetCode"] == 150


def test_faults_skip_requests_that_fail_their_checks(emu: Emulator) -> None:
    emu.inject("ret_code", value=153)
    params = {"Action": "DescribeImage", "Region": DEMO_REGION}
    assert post(emu.base_url, params, private="wrong").json()["RetCode"] == 171
    assert post(emu.base_url, {"Action": "DescribeImage"}).json()["RetCode"] == 230
    assert post(emu.base_url, params).json()["RetCode"] == 153


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_fault_http_status(emu: Emulator, status: int) -> None:
    emu.inject("http_status", value=status)
    response = post(emu.base_url, {"Action": "DescribeImage", "Region": DEMO_REGION})
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/plain") and str(status) in response.text
    assert len(response.content) < 100
    assert emu.requests[-1].status == status and emu.requests[-1].ret_code is None
    assert post(emu.base_url, {"Action": "DescribeImage", "Region": DEMO_REGION}).status_code == 200


def test_fault_drop_closes_the_connection_unanswered(emu: Emulator) -> None:
    session = requests.Session()
    params = {"Action": "DescribeImage", "Region": DEMO_REGION}
    assert post(emu.base_url, params, session=session).json()["RetCode"] == 0  # a kept-alive connection
    emu.inject("drop")
    with pytest.raises(requests.ConnectionError):
        post(emu.base_url, params, session=session)
    assert emu.requests[-1].fault == "drop" and emu.requests[-1].status == 0
    assert post(emu.base_url, params, session=session).json()["RetCode"] == 0


def test_fault_malformed_no_retcode_and_bad_shape(emu: Emulator) -> None:
    params = {"Action": "DescribeImage", "Region": DEMO_REGION}
    emu.inject("malformed")
    malformed = post(emu.base_url, params)
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        malformed.json()
    assert malformed.text.startswith('{"Action":"DescribeImageResponse"')
    emu.inject("no_retcode")
    no_retcode = post(emu.base_url, params).json()
    assert "RetCode" not in no_retcode and no_retcode["TotalCount"] > 0 and no_retcode["ImageSet"]
    emu.inject("bad_shape")
    bad_shape = post(emu.base_url, params).json()
    assert bad_shape["RetCode"] == 0 and isinstance(bad_shape["ImageSet"], str)
    assert [r.fault for r in emu.requests] == ["malformed", "no_retcode", "bad_shape"]


def test_fault_slow_and_empty_page(emu: Emulator) -> None:
    params = {"Action": "DescribeImage", "Region": DEMO_REGION}
    emu.inject("slow", value=0.3)
    started = time.monotonic()
    body = post(emu.base_url, params).json()
    assert time.monotonic() - started >= 0.3 and body["RetCode"] == 0 and len(body["ImageSet"]) == 20
    emu.inject("empty_page")
    empty = post(emu.base_url, params).json()
    assert empty["RetCode"] == 0 and empty["ImageSet"] == [] and empty["TotalCount"] == len(visible(DEMO_REGION))


def test_fault_publish_changes_the_listing_mid_way(emu: Emulator) -> None:
    total = len(visible(DEMO_REGION))
    newcomer = {**CATALOG[0], "ImageId": "uimage-late01", "ImageName": "Ubuntu 22.04 64位"}
    emu.inject("publish", after=1, value=newcomer)
    first = describe(emu, Limit=100)
    second = describe(emu, Offset=100, Limit=100)
    assert first["TotalCount"] == total and second["TotalCount"] == total + 1
    assert describe(emu, ImageId="uimage-late01")["TotalCount"] == 1


def test_inject_validates_its_arguments_and_clear_faults_forgets_them(emu: Emulator) -> None:
    assert set(FAULT_KINDS) == {"ret_code", "http_status", "drop", "malformed", "no_retcode", "bad_shape", "slow",
                                "empty_page", "publish"}
    with pytest.raises(ValueError, match="unknown fault kind"):
        emu.inject("explode")
    with pytest.raises(ValueError):
        emu.inject("drop", times=0)
    with pytest.raises(ValueError):
        emu.inject("publish", value={"ImageName": "no id"})
    emu.inject("drop", times=5)
    emu.clear_faults()
    assert describe(emu)["TotalCount"] > 0


def test_random_faults_follow_the_rate_and_the_seed() -> None:
    def outcomes(seed: int) -> list[int]:
        with Emulator(synthetic_catalog("cn-bj2", 5), fault_rate=0.5, fault_kinds=("ret_code:153", "http_status:503"),
                      fault_seed=seed) as emulator:
            params = {"Action": "DescribeImage", "Region": DEMO_REGION}
            return [
                response.status_code if response.status_code != 200 else response.json()["RetCode"]
                for response in (post(emulator.base_url, params) for _ in range(30))
            ]

    first = outcomes(7)
    assert first == outcomes(7)
    assert set(first) == {0, 153, 503}
    assert 5 <= first.count(0) <= 25
    with Emulator([], fault_rate=1.0, fault_kinds=("ret_code:150",)) as always:
        assert post(always.base_url, {"Action": "DescribeImage", "Region": DEMO_REGION}).json()["RetCode"] == 150
    with pytest.raises(ValueError):
        Emulator([], fault_rate=1.5)
    with pytest.raises(ValueError):
        Emulator([], fault_kinds=("explode",))


def test_latency_applies_to_every_request_and_can_be_switched_while_running(emu: Emulator) -> None:
    params = {"Action": "DescribeImage", "Region": DEMO_REGION, "Limit": 1}
    emu.latency_ms = 200
    started = time.monotonic()
    post(emu.base_url, params)
    post(emu.base_url, {"Action": "Nope"})
    assert time.monotonic() - started >= 0.4
    emu.latency_ms = 0
    started = time.monotonic()
    post(emu.base_url, params)
    assert time.monotonic() - started < 0.15


def test_request_log_and_reset(emu: Emulator) -> None:
    describe(emu, Zone="cn-bj2-02")
    assert emu.request_count == 1
    record = emu.requests[0]
    assert record.method == "POST" and record.action == "DescribeImage" and record.status == 200
    assert record.params == {"Action": "DescribeImage", "Region": DEMO_REGION, "Zone": "cn-bj2-02"}
    emu.reset_requests()
    assert emu.request_count == 0 and emu.requests == []


def test_concurrent_clients_all_get_correct_pages(emu: Emulator) -> None:
    everything = ids(visible(DEMO_REGION))

    def page(offset: int) -> list[str]:
        return ids(describe(emu, Offset=offset, Limit=10)["ImageSet"])

    with ThreadPoolExecutor(16) as pool:
        pages = list(pool.map(page, range(0, len(everything), 10)))
    assert [image_id for chunk in pages for image_id in chunk] == everything
    assert emu.request_count == len(pages)


def test_lifecycle(emu: Emulator) -> None:
    url = emu.base_url
    assert url.startswith("http://127.0.0.1:") and emu.start() is emu  # starting twice is harmless
    emu.stop()
    emu.stop()
    with pytest.raises(RuntimeError):
        _ = emu.base_url
    with pytest.raises(requests.ConnectionError):
        requests.post(url, data={}, timeout=2)


# -- the official SDK ---------------------------------------------------------------------------------------


def test_the_official_python_sdk_talks_to_the_emulator(shared: Emulator) -> None:
    from ucloud.client import Client
    from ucloud.core.exc import RetCodeException

    config = {"region": DEMO_REGION, "public_key": DEMO_PUBLIC_KEY, "private_key": DEMO_PRIVATE_KEY,
              "base_url": shared.base_url, "max_retries": 0, "timeout": 10}
    uhost = Client(config).uhost()
    by_id = uhost.describe_image({"ImageIds": ["uimage-f1chxn"]})
    assert by_id["TotalCount"] == 1
    image = by_id["ImageSet"][0]
    assert (image["ImageName"], image["Zone"], image["CreateTime"]) == ("CentOS 7.2 64位", "cn-bj2-02", 1555419903)
    filtered = uhost.describe_image({"Zone": "cn-bj2-03", "ImageType": "Base", "OsType": "Linux", "Limit": 100})
    expected = [r for r in visible(DEMO_REGION) if (r["Zone"], r["ImageType"], r["OsType"]) ==
                ("cn-bj2-03", "Base", "Linux")]
    assert filtered["TotalCount"] == len(expected)
    assert [i["ImageId"] for i in filtered["ImageSet"]] == ids(expected)
    project = Client({**config, "project_id": "org-data"}).uhost().describe_image({"ImageType": "Custom"})
    assert project["TotalCount"] == len([r for r in visible(DEMO_REGION, "org-data") if r["ImageType"] == "Custom"])
    with pytest.raises(RetCodeException) as wrong_key:
        Client({**config, "private_key": "wrong"}).uhost().describe_image({})
    assert wrong_key.value.code == 171


# -- the command's server and its catalogue files ------------------------------------------------------------


def _serve_in_thread(**kwargs: Any) -> tuple[threading.Thread, threading.Event, io.StringIO]:
    out, stop = io.StringIO(), threading.Event()
    thread = threading.Thread(target=serve_forever, kwargs={"port": 0, "out": out, "stop": stop, **kwargs})
    thread.start()
    deadline = time.monotonic() + 5
    while out.getvalue().count("\n") < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    return thread, stop, out


def test_serve_forever_prints_the_url_and_env_hints_and_serves(tmp_path: Path) -> None:
    catalog = tmp_path / "images.json"
    catalog.write_text(json.dumps({"ImageSet": synthetic_catalog("cn-bj2", 3)}), encoding="utf-8")
    thread, stop, out = _serve_in_thread(catalog_path=str(catalog), latency_ms=1.0, max_limit=2)
    try:
        first, second = out.getvalue().splitlines()[:2]
        url = first.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and "3 images" in first
        assert f"UCLOUD_API_BASE_URL={url}" in second and f"UCLOUD_PUBLIC_KEY={DEMO_PUBLIC_KEY}" in second
        assert f"UCLOUD_PRIVATE_KEY={DEMO_PRIVATE_KEY}" in second and "UCLOUD_REGION=cn-bj2" in second
        body = post(url, {"Action": "DescribeImage", "Region": "cn-bj2", "Limit": 10}).json()
        assert body["TotalCount"] == 3 and len(body["ImageSet"]) == 2
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    with pytest.raises(requests.ConnectionError):
        requests.post(url, data={}, timeout=2)


def test_serve_forever_never_prints_a_private_key_it_was_given() -> None:
    thread, stop, out = _serve_in_thread(keys={"my-public": "my-very-private"})
    stop.set()
    thread.join(5)
    assert "my-public" in out.getvalue() and "my-very-private" not in out.getvalue()


@pytest.mark.slow
def test_serve_forever_stops_cleanly_on_ctrl_c() -> None:
    code = "from pulumi_ucloud_images._emulator.service import serve_forever; serve_forever(port=0)"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split(" at ")[1].split()[0]
        assert post(url, {"Action": "DescribeImage", "Region": "hk"}).json()["RetCode"] == 0
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_catalogue_files_are_read_or_rejected_naming_the_file(tmp_path: Path) -> None:
    records = synthetic_catalog("hk", 2)
    array = tmp_path / "array.json"
    array.write_text(json.dumps(records), encoding="utf-8")
    assert load_catalog(array) == records
    for name, content, why in [
        ("broken.json", "[{", "not valid JSON"),
        ("scalar.json", "42", "JSON array"),
        ("no-id.json", json.dumps([{"ImageName": "x"}]), "index 0"),
    ]:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        with pytest.raises(InvalidQueryError, match=why) as error:
            load_catalog(path)
        assert str(path) in str(error.value)
    with pytest.raises(InvalidQueryError, match=r"missing\.json"):
        load_catalog(tmp_path / "missing.json")


# -- the pytest plugin ----------------------------------------------------------------------------------------


def test_plugin_fixture_serves_the_bundled_catalogue(ucloud_emulator: Emulator) -> None:
    assert describe(ucloud_emulator, ImageId="uimage-f1chxn")["TotalCount"] == 1


def test_plugin_env_fixture_points_the_library_at_the_emulator(ucloud_emulator_env: Emulator) -> None:
    assert os.environ["UCLOUD_API_BASE_URL"] == ucloud_emulator_env.base_url
    assert os.environ["UCLOUD_REGION"] == DEMO_REGION
    from pulumi_ucloud_images import lookup_images

    # the example in the plugin's docstring
    result = lookup_images(os_type="linux", name_regex=r"^Ubuntu 22\.04", architecture="x86_64", most_recent=True)
    assert result.image_id == "uimage-ub2205"
    assert ucloud_emulator_env.request_count >= 1


@pytest.fixture
def developer_settings(monkeypatch: pytest.MonkeyPatch) -> Path:
    """A developer's own machine: an active ~/.ucloud profile with its project, and a profile in the shell."""
    home = Path(os.environ["HOME"])
    (home / ".ucloud").mkdir(exist_ok=True)
    (home / ".ucloud" / "config.json").write_text(json.dumps(
        [{"profile": "work", "active": True, "project_id": "org-elsewhere", "region": "cn-sh2"}]))
    (home / ".ucloud" / "credential.json").write_text(json.dumps(
        [{"profile": "work", "public_key": "pk-work", "private_key": "sk-work"}]))
    monkeypatch.setenv("UCLOUD_PROFILE", "work")
    monkeypatch.setenv("UCLOUD_PROJECT_ID", "org-elsewhere")
    monkeypatch.setenv("UCLOUD_TIMEOUT_SECOND", "abc")  # a broken value in the shell must not reach a test
    return home


def test_plugin_env_fixture_keeps_the_developers_own_settings_out(
    developer_settings: Path, ucloud_emulator_env: Emulator
) -> None:
    from pulumi_ucloud_images import lookup_images, resolve_settings

    assert Path.home() != developer_settings and not (Path.home() / ".ucloud").exists()
    assert "UCLOUD_PROFILE" not in os.environ and "UCLOUD_PROJECT_ID" not in os.environ
    settings = resolve_settings()
    assert (settings.region, settings.project_id, settings.timeout) == (DEMO_REGION, None, 30.0)
    assert lookup_images(image_id="uimage-f1chxn").image_id == "uimage-f1chxn"  # no RetCode 292


@pytest.mark.parametrize("latency", [-1.0, float("inf"), float("nan"), 60_001.0])
def test_latency_outside_zero_to_a_minute_is_refused(latency: float) -> None:
    with pytest.raises(ValueError, match="latency_ms must be between 0 and 60000"):
        Emulator([], latency_ms=latency)
    emulator = Emulator([])
    with pytest.raises(ValueError, match="latency_ms"):
        emulator.latency_ms = latency
    assert emulator.latency_ms == 0.0


def test_empty_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="non-empty public and private key"):
        Emulator([], keys={"pk": ""})


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_a_bad_content_length_is_answered_400_not_a_traceback(
    length: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with Emulator([]) as emulator:
        connection = http.client.HTTPConnection("127.0.0.1", int(emulator.base_url.rsplit(":", 1)[1]), timeout=5)
        connection.putrequest("POST", "/")
        connection.putheader("Content-Length", length)
        connection.endheaders()
        assert connection.getresponse().status == 400
        connection.close()
    assert "Traceback" not in capfd.readouterr().err
