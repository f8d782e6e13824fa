"""Behaviour behind the speed work: the strict emulator, the lean page parse, and the fast send path keeping
what requests users configure (proxies, CA bundles, their own session). Timings live in the benchmark."""

from __future__ import annotations

import http.client
import json
import socket
import socketserver
from datetime import date
from functools import partial
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from pulumi_ucloud_images import Client, ResponseFormatError, Settings, lookup_images
from pulumi_ucloud_images._api import calls
from pulumi_ucloud_images._api.image import parse_page
from pulumi_ucloud_images._api.records import ImageRecord, parse_records, records_from_json
from pulumi_ucloud_images._api.signing import sign
from pulumi_ucloud_images._emulator.catalog import synthetic_catalog
from pulumi_ucloud_images._emulator.server import STRICT_BACKLOG
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator
from pulumi_ucloud_images._query import parse_query
from pulumi_ucloud_images._select import filter_images

REGION = "cn-bj2"


def demo_settings(base_url: str) -> Settings:
    return Settings(public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY), region=REGION,
                    base_url=base_url)


def _form(**params: Any) -> str:
    return urlencode(sign({"Action": "DescribeImage", "Region": REGION, **params}, DEMO_PUBLIC_KEY,
                          DEMO_PRIVATE_KEY))


# -- the strict emulator --------------------------------------------------------------------------------------


def test_strict_mode_writes_headers_and_body_apart_without_nodelay_the_default_in_one_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writes: list[bytes] = []
    # socketserver._SocketWriter is private, and typeshed leaves it out.
    original = socketserver._SocketWriter.write  # type: ignore[attr-defined]

    def record(self: Any, data: bytes) -> int:
        writes.append(bytes(data))
        return int(original(self, data))

    monkeypatch.setattr(socketserver._SocketWriter, "write", record)  # type: ignore[attr-defined]
    for strict in (True, False):
        writes.clear()
        with Emulator(synthetic_catalog(REGION, 5), strict=strict) as emulator:
            host, port = emulator.base_url.removeprefix("http://").split(":")
            connection = http.client.HTTPConnection(host, int(port))
            connection.request("POST", "/", _form(Limit=5), {"Content-Type": "application/x-www-form-urlencoded"})
            body = connection.getresponse().read()
            server = emulator._server
            assert server is not None
            (accepted,) = server.connections  # the keep-alive connection, still open
            nodelay = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            connection.close()
        if strict:
            assert len(writes) == 2 and writes[0].endswith(b"\r\n\r\n") and writes[1] == body  # two sends
        else:
            assert len(writes) == 1 and writes[0].endswith(b"\r\n\r\n" + body)  # one, as a gateway sends it
        assert (nodelay == 0) is strict


def test_strict_mode_listens_with_a_backlog_of_5(monkeypatch: pytest.MonkeyPatch) -> None:
    backlogs: list[int] = []
    original = socket.socket.listen

    def listen(self: socket.socket, backlog: int = 0) -> None:
        backlogs.append(backlog)
        original(self, backlog)

    monkeypatch.setattr(socket.socket, "listen", listen)
    with Emulator(synthetic_catalog(REGION, 1), strict=True):
        pass
    with Emulator(synthetic_catalog(REGION, 1)):
        pass
    assert backlogs == [STRICT_BACKLOG, 128] and STRICT_BACKLOG == 5


def test_strict_mode_caps_limit_at_100_and_a_lookup_pages_through_it() -> None:
    with Emulator(synthetic_catalog(REGION, 250), strict=True) as strict, Client(demo_settings(strict.base_url)) as c:
        assert strict.max_limit == 100
        images = c.describe_images({"Action": "DescribeImage", "Region": REGION})
        assert len(images) == 250
        assert [r.params.get("Limit") for r in strict.requests] == ["1000", "100", "100"]
    assert Emulator(strict=True, max_limit=7).max_limit == 7
    assert Emulator().max_limit == 1000


def test_strict_mode_encodes_every_answer_afresh() -> None:
    with Emulator(synthetic_catalog(REGION, 3), strict=True) as emulator, \
            Client(demo_settings(emulator.base_url)) as client:
        client.describe_images({"Action": "DescribeImage", "Region": REGION})
        assert emulator._encoded == {}


# -- the lean parse gives what the full parse gives -------------------------------------------------------------

_text = st.one_of(st.sampled_from(["", "Ubuntu 22.04 64位", "CentOS 7.9 64位", " Rocky 9.4 64位", "x"]),
                  st.text(max_size=8))
_maybe_text = st.one_of(_text, st.none(), st.integers(-5, 5))
_features = st.lists(st.sampled_from(["CloudInit", "IPv6", "NetEnhanced", "Aarch64_Type", "aarch64_type", "GPU"]),
                     max_size=4)
_record = st.fixed_dictionaries(
    {"ImageId": st.one_of(st.from_regex(r"uimage-[a-z0-9]{6}", fullmatch=True), st.sampled_from(["", "bad id", 7]))},
    optional={
        "ImageName": _maybe_text, "OsName": _maybe_text, "Zone": st.sampled_from(["cn-bj2-02", "cn-bj2-03", ""]),
        "OsType": st.sampled_from(["Linux", "Windows", "linux"]),
        "ImageType": st.sampled_from(["Base", "Business", "Custom", "business"]),
        "FuncType": st.sampled_from(["", "gpu", "app", "uhost"]),
        "State": st.sampled_from(["Available", "Making", "Unavailable", None]),
        "CreateTime": st.one_of(st.integers(0, 2_000_000_000), st.sampled_from(["", None, "12", True, 1.5])),
        "Features": st.one_of(_features, st.just("CloudInit"), st.none()),
        "Vendor": _maybe_text, "MaintainEol": st.sampled_from(["", "2020/01/31", "2035/12/31", "soon", "2030-02-30"]),
        "SupportedGPUTypes": st.lists(st.sampled_from(["T4", "A100", "V100S"]), max_size=2),
        "SceneCategories": st.lists(st.sampled_from(["Featured", "AIModels", "HPC"]), max_size=2),
        "ImageSize": st.one_of(st.integers(0, 100), st.just("big")),
        "ImageDescription": _maybe_text, "Tag": st.just("Default"), "Links": st.just(""),
        "PriceSet": st.one_of(st.just([{"ChargeType": "Month", "Price": 1.5}]), st.just("free")),
        "Extra": st.integers(),
    },
)
_queries = st.fixed_dictionaries({}, optional={
    "name_regex": st.sampled_from([r"^Ubuntu", "64", r"^\s"]), "most_recent": st.booleans(),
    "os_type": st.sampled_from(["linux", "windows"]), "architecture": st.sampled_from(["x86_64", "aarch64"]),
    "include_marketplace": st.booleans(), "features": st.just(["CloudInit"]),
    "states": st.just(["Available", "Making"]), "exclude_eol": st.booleans(), "gpu_types": st.just(["T4"]),
    "scene_categories": st.just(["HPC"]), "vendor_regex": st.just("x"),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(_record, max_size=6), query=_queries, extra_total=st.integers(-1, 3))
def test_a_lean_page_selects_as_the_full_page_does(
    records: list[dict[str, Any]], query: dict[str, Any], extra_total: int
) -> None:
    body = {"RetCode": 0, "TotalCount": len(records) + extra_total, "ImageSet": records}
    from_bytes = records_from_json(json.dumps(body).encode(), limit=10)  # None: left to the general path
    try:
        full = parse_page(body, limit=10)
    except ResponseFormatError as error:
        assert from_bytes is None  # the one-pass read never accepts what the model refuses
        with pytest.raises(ResponseFormatError) as lean_error:
            parse_records(body, limit=10)
        assert str(lean_error.value) == str(error)
        return
    lean = parse_records(body, limit=10)
    assert lean.total_count == full.total_count
    assert [record.full() for record in lean.images] == list(full.images)
    if from_bytes is not None:
        assert from_bytes.total_count == full.total_count
        assert [record.full() for record in from_bytes.images] == list(full.images)
        assert [(r.architecture, r.eol_date, r.features) for r in from_bytes.images] == [
            (r.architecture, r.eol_date, r.features) for r in lean.images
        ]
    parsed = parse_query({"region": REGION, **query})
    today = date(2026, 1, 1)
    # filter_images is typed for Image; that lean records stand in for them is what this checks.
    lean_matches = filter_images(lean.images, parsed, today=today)  # type: ignore[arg-type]
    assert lean_matches == filter_images(full.images, parsed, today=today)
    for record, image in zip(lean.images, full.images, strict=True):
        assert (record.architecture, record.eol_date) == (image.architecture, image.eol_date)


@pytest.mark.parametrize("odd", [
    {"ImageId": 12345}, {"ImageId": 1e2}, {"ImageId": "uimage a"}, {"ImageId": ""}, {"ImageName": None},
    {"OsName": 7}, {"CreateTime": 1.0}, {"CreateTime": True}, {"CreateTime": "1"}, {"Features": "CloudInit"},
    {"Features": [1]}, {"Zone": None},
])
def test_a_page_with_an_odd_record_is_left_to_the_model(odd: dict[str, Any]) -> None:
    records = synthetic_catalog(REGION, 3)
    records[1] = {**records[1], **odd}
    assert records_from_json(json.dumps({"RetCode": 0, "TotalCount": 3, "ImageSet": records}).encode()) is None


@pytest.mark.parametrize("envelope", [
    {"RetCode": 8039, "Message": "no"}, {"RetCode": False, "TotalCount": 1}, {"RetCode": 0, "TotalCount": 0},
    {"RetCode": 0, "TotalCount": -1}, {"RetCode": 0, "TotalCount": 1.0}, {"RetCode": 0, "ImageSet": None},
])
def test_an_answer_other_than_a_clean_page_is_left_to_the_general_path(envelope: dict[str, Any]) -> None:
    body = {"TotalCount": 1, "ImageSet": synthetic_catalog(REGION, 1), **envelope}
    assert records_from_json(json.dumps(body).encode()) is None
    assert records_from_json(json.dumps({**body, "RetCode": 0, "TotalCount": 1}).encode(), limit=0) is None


_IMAGE = '"ImageId":"uimage-aaaaaa"'


@pytest.mark.parametrize("raw", [
    '{"RetCode":0,"TotalCount":1,"ImageSet":[{"ImageId":"uimage-aaaaaa","ImageId":5}]}',
    '{"RetCode":0,"TotalCount":1,"ImageSet":[{"ImageId":5,"ImageId":"uimage-bbbbbb"}]}',
    '{"RetCode":5,"RetCode":0,"TotalCount":1,"ImageSet":[{' + _IMAGE + '}]}',
    '{"RetCode":0,"RetCode":5,"TotalCount":1,"ImageSet":[{' + _IMAGE + '}]}',
    '{"RetCode":0,"TotalCount":1,"ImageSet":[{' + _IMAGE + ',"Tag":' + "[" * 3000 + "]" * 3000 + "}]}",
    '{"RetCode":0,"TotalCount":1,"ImageSet":[{"ImageId":"\\ud800"}]}',
    '{"RetCode":0,"TotalCount":1e400,"ImageSet":[]}',
    '{"RetCode":0,"TotalCount":99999999999999999999999,"ImageSet":[{' + _IMAGE + '}]}',
    '{"RetCode":0,"TotalCount":1,"ImageSet":[{' + _IMAGE + ',"ImageSize":1e999,"Links":NaN}]}',
])
def test_the_one_pass_read_of_odd_json_is_the_general_reads(raw: str) -> None:
    """Repeated keys (the last wins), deep nesting, lone surrogates, infinities: the one-pass read either leaves
    the answer to the general path or reads exactly what it reads."""
    fast = records_from_json(raw.encode())
    if fast is None:
        return
    general = parse_records(calls.from_json(raw.encode()))  # type: ignore[attr-defined]
    assert fast.total_count == general.total_count
    assert [record.full() for record in fast.images] == [record.full() for record in general.images]


def test_a_clean_listing_is_read_in_one_pass_without_decoding_its_pages_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every page but the first (whose TotalCount is read before it is validated) skips the general path."""
    decoded: list[int] = []
    original = calls.from_json  # type: ignore[attr-defined]  # the JSON parser calls.py imports

    def counting(raw: Any) -> Any:
        decoded.append(len(raw))
        return original(raw)

    monkeypatch.setattr(calls, "from_json", counting)
    with Emulator(synthetic_catalog(REGION, 1000), max_limit=100) as emulator:
        with Client(demo_settings(emulator.base_url)) as client:
            images = client.list_records({"Action": "DescribeImage", "Region": REGION})
        assert len(images) == 1000 and emulator.request_count == 10
    assert len(decoded) == 1


def test_a_lookup_builds_full_models_for_the_matches_only(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    original = ImageRecord.full

    def full(self: ImageRecord) -> Any:
        built.append(self.image_id)
        return original(self)

    monkeypatch.setattr(ImageRecord, "full", full)
    with Emulator() as emulator, Client(demo_settings(emulator.base_url)) as client:
        result = lookup_images(client=client, name_regex=r"^CentOS 7\.2 ")
    assert result.image_id == "uimage-f1chxn"
    assert built == list(result.ids)


# -- the fast path keeps what requests users configure -----------------------------------------------------------


def test_an_https_proxy_in_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTPS_PROXY/HTTP_PROXY send the request through the proxy: here a loopback emulator standing in for it,
    reached with the absolute URL of a host that does not exist."""
    with Emulator() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
        monkeypatch.setenv("HTTPS_PROXY", proxy.base_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with Client(demo_settings("http://api.ucloud.invalid")) as client:
            images = client.describe_images({"Action": "DescribeImage", "Region": REGION})
        assert images and proxy.request_count == 1
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # and NO_PROXY is honoured, read again when it changes
        with Emulator() as direct, Client(demo_settings(direct.base_url)) as client:
            assert client.describe_images({"Action": "DescribeImage", "Region": REGION})
            assert direct.request_count == 1 and proxy.request_count == 1


def test_requests_ca_bundle_reaches_the_connection_pool(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    seen: list[Any] = []
    original = requests.adapters.HTTPAdapter.get_connection_with_tls_context

    def spy(self: Any, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        seen.append(verify)
        return original(self, request, verify, proxies, cert)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "get_connection_with_tls_context", spy)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with Emulator() as emulator, Client(demo_settings(emulator.base_url)) as client:
        client.describe_images({"Action": "DescribeImage", "Region": REGION})
    assert seen and set(seen) == {str(bundle)}


def test_requests_decides_a_route_once_and_each_request_is_one_urlopen_of_its_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deciding the pool, the trust and the proxy again for every request (as ``Session.send`` does) cost
    ~0.35 ms of CPU a request; the transport asks requests once per URL and sends through urllib3's urlopen."""
    import urllib3

    decided: list[str] = []
    opened: list[str] = []
    original_decide = requests.adapters.HTTPAdapter.get_connection_with_tls_context
    original_open = urllib3.HTTPConnectionPool.urlopen

    def decide(self: Any, request: Any, verify: Any, proxies: Any = None, cert: Any = None) -> Any:
        decided.append(str(request.url))
        return original_decide(self, request, verify, proxies, cert)

    def urlopen(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        opened.append(url)
        return original_open(self, method, url, *args, **kwargs)

    def no_session_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the transport's own session sent a request through Session.send")

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "get_connection_with_tls_context", decide)
    monkeypatch.setattr(urllib3.HTTPConnectionPool, "urlopen", urlopen)
    monkeypatch.setattr(requests.Session, "send", no_session_send)
    with Emulator(synthetic_catalog(REGION, 250), strict=True) as emulator:
        with Client(demo_settings(emulator.base_url)) as client:
            assert len(client.describe_images({"Action": "DescribeImage", "Region": REGION})) == 250
        assert len(decided) == 1 and opened == ["/"] * emulator.request_count == ["/"] * 3


def test_after_close_no_connection_from_before_is_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    """``close()`` drops the routes it kept, with their pools: the next request is decided again and connects
    afresh (urllib3 drops a cleared pool without closing it, so a kept route would still reach its socket)."""
    import urllib3

    from pulumi_ucloud_images._api.http import HTTPTransport

    connects: list[object] = []
    original = urllib3.connection.HTTPConnection.connect

    def connect(self: Any) -> None:
        connects.append(self)
        original(self)

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "connect", connect)
    with Emulator() as emulator:
        transport = HTTPTransport()
        form = sign({"Action": "DescribeImage", "Region": REGION, "Limit": 1}, DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY)
        for _ in range(2):
            answer = transport.send(emulator.base_url, form, 10)
            body = b"".join(iter(partial(answer.read, 65536), b""))
            answer.close()
            assert answer.status == 200 and json.loads(body)["RetCode"] == 0
            transport.close()
        assert emulator.request_count == 2 and len(connects) == 2


def test_a_session_passed_in_is_used_for_every_request() -> None:
    sent: list[str] = []

    class Counting(requests.Session):
        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            sent.append(str(request.url))
            return super().send(request, **kwargs)

    with Emulator(synthetic_catalog(REGION, 250), strict=True) as emulator:
        with Client(demo_settings(emulator.base_url), session=Counting()) as client:
            assert len(client.describe_images({"Action": "DescribeImage", "Region": REGION})) == 250
        assert len(sent) == emulator.request_count == 3


def test_threads_asking_a_shared_record_for_its_model_at_once_each_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """No lock: a record's fields never change, so a build under way cannot spoil another (the earlier race
    dropped the raw fields once one build ended: 'zip() argument 2 is shorter')."""
    import threading

    from pulumi_ucloud_images._api import records as _lean

    (record,) = parse_records({"RetCode": 0, "TotalCount": 1, "ImageSet": synthetic_catalog(REGION, 1)},
                              limit=10).images
    building, release = threading.Event(), threading.Event()
    from pulumi_ucloud_images._api.image import validate_image as validate

    def slow_first(data: Any) -> Any:
        if not building.is_set():
            building.set()
            release.wait(5)  # the first build is under way while another thread builds and finishes
        return validate(data)

    monkeypatch.setattr(_lean, "validate_image", slow_first)
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(record.full()))
    first.start()
    assert building.wait(5)
    second = threading.Thread(target=lambda: results.append(record.full()))
    second.start()
    second.join(5)
    assert not second.is_alive() and len(results) == 1  # it did not wait for the first
    release.set()
    first.join(5)
    assert len(results) == 2 and results[0] == results[1] == record.full()


def test_a_records_full_model_reads_odd_descriptive_fields_as_a_page_does(caplog: pytest.LogCaptureFixture) -> None:
    """Raw fields pass the one-pass read unvalidated; ``full()`` then ignores one of an odd type with the same
    warning as a page read by the model, rather than fail."""
    import logging

    record = {"ImageId": "uimage-odd", "ImageName": "CentOS 7.9 64位", "State": "Available",
              "ImageSize": 20.5, "MinimalCPU": [], "PriceSet": [{"Price": "free"}], "Tag": "Default"}
    (lean,) = parse_records({"RetCode": 0, "TotalCount": 1, "ImageSet": [record]}, limit=10).images
    assert isinstance(lean, ImageRecord)
    with caplog.at_level(logging.WARNING, logger="pulumi_ucloud_images"):
        image = lean.full()
    assert (image.image_id, image.image_size, image.minimal_cpu, image.price_set, image.tag) == (
        "uimage-odd", 0, "", (), "Default"
    )
    assert "(uimage-odd): ignored ImageSize, MinimalCPU, PriceSet of an unexpected type" in caplog.text
