"""Lookups under the faults real APIs produce, driven by the emulator's fault switches.

Every lookup either returns the image a fault-free server would give or fails with one of the library's own
errors; it never returns another image and never hangs (each test has a hard timeout, and the retry policy's
attempts and time budget bound every lookup). Backoff pauses are skipped so the tests stay fast; the backoff
schedule itself is tested on a fake clock in test_client.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from pulumi_ucloud_images import (
    APIError,
    Client,
    ResponseFormatError,
    RetryPolicy,
    Settings,
    TransportError,
    UCloudImagesError,
    lookup_images,
)
from pulumi_ucloud_images._cli.common import exit_code_for
from pulumi_ucloud_images._emulator.catalog import synthetic_catalog
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator

pytestmark = pytest.mark.timeout(60)

REGION = "cn-gd"
ZONE = "cn-gd-02"
SIZE = 2400  # five pages of 500 (the server's cap): the first, then four fetched concurrently
NAME = r"^Rocky 9\.4"
ATTEMPTS = 4
TIMEOUT = 5.0  # seconds per request
SHORT_TIMEOUT = 0.3  # for the "slow" fault, which answers after a second
NO_SLEEP = RetryPolicy(attempts=ATTEMPTS, sleep=lambda seconds: None)


@pytest.fixture(scope="module")
def catalog() -> list[dict[str, Any]]:
    return synthetic_catalog(REGION, SIZE, zone=ZONE)


@pytest.fixture
def emulator(catalog: list[dict[str, Any]], start_emulator: Callable[[Emulator], Emulator]) -> Emulator:
    """A fresh server per test, so an answer still sleeping from one test never lands in another's log."""
    return start_emulator(Emulator(catalog, max_limit=500))


def client_for(emulator: Emulator, retry: RetryPolicy = NO_SLEEP, timeout: float = TIMEOUT) -> Client:
    settings = Settings(public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY), region=REGION,
                        base_url=emulator.base_url, timeout=timeout)
    return Client(settings, retry=retry)


def correct_answer(emulator: Emulator) -> str:
    """The newest Available image named like NAME, read straight from the emulator's records."""
    matches = [r for r in emulator.images(REGION) if r["State"] == "Available" and re.search(NAME, r["ImageName"])]
    return str(max(matches, key=lambda r: (r["CreateTime"], r["ImageId"]))["ImageId"])


def lookup(emulator: Emulator, retry: RetryPolicy = NO_SLEEP, timeout: float = TIMEOUT) -> str:
    with client_for(emulator, retry, timeout) as client:
        return lookup_images(client=client, name_regex=NAME, most_recent=True).image_id


def faults(emulator: Emulator, at_least: int = 0) -> list[str | None]:
    """The fault each request met; first waits (up to 5 s) for ``at_least`` requests to be logged, since a
    "slow" answer is logged only when the server finally answers, after the client gave up on it.
    """
    deadline = time.monotonic() + 5
    while emulator.request_count < at_least and time.monotonic() < deadline:
        time.sleep(0.02)
    return [request.fault for request in emulator.requests]


# -- transient faults: the lookup still returns the right image ---------------------------------------------

TRANSIENT = [
    pytest.param("ret_code", 153, 3, id="burst of RetCode 153"),
    pytest.param("ret_code", 150, 3, id="burst of RetCode 150"),
    pytest.param("http_status", 502, 2, id="HTTP 502"),
    pytest.param("http_status", 503, 3, id="HTTP 503"),
    pytest.param("http_status", 429, 2, id="HTTP 429"),
    pytest.param("drop", None, 3, id="connection dropped"),
    pytest.param("slow", 1.0, 1, id="answer slower than the timeout"),
    pytest.param("malformed", None, 2, id="malformed JSON"),
]


@pytest.mark.parametrize(("kind", "value", "times"), TRANSIENT)
@pytest.mark.parametrize("after", [0, 1, 3], ids=["on the first page", "on a concurrent page", "on the last pages"])
def test_a_transient_fault_is_retried_and_the_right_image_returned(
    emulator: Emulator, kind: str, value: Any, times: int, after: int
) -> None:
    emulator.inject(kind, value=value, times=times, after=after)
    assert lookup(emulator, timeout=SHORT_TIMEOUT if kind == "slow" else TIMEOUT) == correct_answer(emulator)
    met = faults(emulator, at_least=5 + times)
    assert met.count(kind) == times and len(met) == 5 + times  # each fault cost exactly one extra request


def test_an_empty_page_early_is_read_again(emulator: Emulator) -> None:
    emulator.inject("empty_page", after=2)
    assert lookup(emulator) == correct_answer(emulator)
    assert faults(emulator).count("empty_page") == 1 and emulator.request_count > 5


def test_an_empty_first_page_is_read_again(emulator: Emulator) -> None:
    emulator.inject("empty_page")
    assert lookup(emulator) == correct_answer(emulator)
    assert emulator.request_count == 6


def test_total_count_changing_between_pages_returns_the_new_listing(emulator: Emulator) -> None:
    newest = {**emulator.images(REGION)[0], "ImageId": "uimage-rky999", "ImageName": "Rocky 9.4 64位",
              "CreateTime": 2_000_000_000, "State": "Available"}
    emulator.inject("publish", after=2, value=newest)
    assert lookup(emulator) == "uimage-rky999" == correct_answer(emulator)


def test_an_image_withdrawn_between_pages_is_never_returned(emulator: Emulator) -> None:
    before = correct_answer(emulator)
    emulator.inject("publish", after=3, value={**emulator.images(include_private=True)[-1], "ImageId": "uimage-x"})
    emulator.remove(before)  # gone before the read starts: the publish above moves TotalCount mid-way
    answer = lookup(emulator)
    assert answer != before and answer == correct_answer(emulator)


# -- persistent faults: a typed error, after a bounded number of requests -----------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "error", "message"),
    [
        pytest.param("ret_code", 150, APIError, "RetCode 150", id="RetCode 150"),
        pytest.param("http_status", 502, TransportError, "answered HTTP 502", id="HTTP 502"),
        pytest.param("http_status", 503, TransportError, "answered HTTP 503", id="HTTP 503"),
        pytest.param("drop", None, TransportError, "closed the connection without answering", id="connection dropped"),
        pytest.param("slow", 1.0, TransportError, "did not answer within", id="slow"),
        pytest.param("malformed", None, ResponseFormatError, "a body that is not JSON", id="malformed JSON"),
    ],
)
@pytest.mark.parametrize("after", [0, 2], ids=["on the first page", "on a concurrent page"])
def test_a_persistent_fault_fails_with_a_typed_error_after_the_attempts(
    emulator: Emulator, kind: str, value: Any, error: type[UCloudImagesError], message: str, after: int
) -> None:
    emulator.inject(kind, value=value, times=1000, after=after)
    with pytest.raises(error, match=message) as caught:
        lookup(emulator, timeout=SHORT_TIMEOUT if kind == "slow" else TIMEOUT)
    assert exit_code_for(caught.value) == 5
    # No page is tried more than ATTEMPTS times, and no page is started after another one failed for good.
    assert faults(emulator).count(kind) <= ATTEMPTS * 4
    assert emulator.request_count <= after + ATTEMPTS * 4


@pytest.mark.parametrize("after", [0, 2], ids=["on the first page", "on a concurrent page"])
def test_persistent_rate_limiting_is_retried_until_the_time_budget_and_the_retry_budget_end(
    emulator: Emulator, after: int
) -> None:
    emulator.inject("ret_code", value=153, times=100_000, after=after)
    budget = RetryPolicy(attempts=ATTEMPTS, total_seconds=4, throttle_base_delay=0.05, throttle_max_delay=0.1)
    started = time.monotonic()
    with pytest.raises(APIError, match="RetCode 153") as caught:
        lookup(emulator, budget)
    assert time.monotonic() - started < budget.total_seconds + 2
    assert exit_code_for(caught.value) == 5
    assert "time budget of 4 s" in str(caught.value) or "retry budget is spent" in str(caught.value)
    # Rate limiting is not bounded by the attempts but by the time budget, and every page's retries draw on
    # the client's one retry budget: 500 tokens at 5 a retry (refilled by 1 a second), for the whole lookup.
    assert emulator.request_count > after + ATTEMPTS * 4
    assert emulator.request_count <= after + 5 + 500 / 5 + 6 / 5


@pytest.mark.parametrize(("kind", "message"), [("no_retcode", "no RetCode"), ("bad_shape", "ImageSet")])
def test_a_wrong_shape_fails_at_once(emulator: Emulator, kind: str, message: str) -> None:
    emulator.inject(kind, times=1000)
    with pytest.raises(ResponseFormatError, match=message):
        lookup(emulator)
    assert emulator.request_count == 1


def test_a_listing_that_changes_on_every_page_is_a_transport_error(emulator: Emulator) -> None:
    template = emulator.images(REGION)[0]
    added = [f"uimage-chg{n:03d}" for n in range(40)]
    for image_id in added:
        emulator.inject("publish", value={**template, "ImageId": image_id})
    with pytest.raises(TransportError, match="did not return a consistent image list in 3 reads"):
        lookup(emulator)


def test_a_slow_server_is_cut_off_by_the_time_budget(emulator: Emulator) -> None:
    emulator.inject("slow", value=2.0, times=1000)
    budget = RetryPolicy(attempts=1000, total_seconds=1.0, sleep=lambda seconds: None)
    with pytest.raises(TransportError, match="did not answer within"):
        lookup(emulator, budget, timeout=SHORT_TIMEOUT)
    # One second of budget and 0.3 s per attempt: the budget, not the 1000 attempts, ended the lookup.
    assert emulator.request_count < 10


# -- random faults: never a wrong image ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_random_faults_give_the_right_image_or_a_typed_error(seed: int) -> None:
    catalog = synthetic_catalog(REGION, SIZE, zone=ZONE, seed=seed)
    kinds = ("ret_code:153", "ret_code:150", "http_status:502", "http_status:503", "drop", "malformed",
             "empty_page")
    with Emulator(catalog, max_limit=500, fault_rate=0.3, fault_kinds=kinds, fault_seed=seed) as emulator:
        outcomes = []
        for _ in range(4):
            try:
                outcomes.append(lookup(emulator))
            except UCloudImagesError as error:
                outcomes.append(type(error).__name__)
        expected = correct_answer(emulator)
        typed = ("APIError", "TransportError", "ResponseFormatError", "InconsistentListingError")
        assert all(outcome in (expected, *typed) for outcome in outcomes)
        assert expected in outcomes  # with a 30 % fault rate and four attempts, most lookups get through
