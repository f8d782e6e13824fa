"""The DescribeImage client: paging, the RetCode error, which failures are retried, backoff timing, keep-alive.

Paging runs against the emulator (real HTTP on loopback); the retry schedule and the time bound run against
a scripted session and a fake clock, so nothing here really sleeps.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import requests
import urllib3
from pydantic import SecretStr
from requests.structures import CaseInsensitiveDict

from pulumi_ucloud_images import (
    APIError,
    Client,
    InconsistentListingError,
    ResponseFormatError,
    RetryPolicy,
    Settings,
    TransportError,
)
from pulumi_ucloud_images._api.calls import REQUEST_ID_HEADER, is_retried_ret_code
from pulumi_ucloud_images._api.http import HTTPTransport
from pulumi_ucloud_images._cli.common import exit_code_for
from pulumi_ucloud_images._emulator.catalog import synthetic_catalog
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator

REGION = "cn-bj2"
LISTING = {"Action": "DescribeImage", "Region": REGION}
SECRET = "sk-never-shown-0123456789"
NO_SLEEP = RetryPolicy(attempts=4, sleep=lambda seconds: None)


# -- a fake clock and a scripted session ---------------------------------------------------------------------


class FakeClock:
    """``clock()`` reads it, ``sleep()`` records the pause and moves it on; nothing really waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def response(status: int = 200, body: bytes | Mapping[str, Any] = b"", request_id: str = "req-7") -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer.raw = urllib3.HTTPResponse(io.BytesIO(body if isinstance(body, bytes) else json.dumps(body).encode()),
                                      status=status, preload_content=False)
    answer.headers = CaseInsensitiveDict({REQUEST_ID_HEADER: request_id} if request_id else {})
    return answer


def image(image_id: str, created: int = 1_700_000_000) -> dict[str, Any]:
    return {"ImageId": image_id, "ImageName": f"name of {image_id}", "State": "Available", "CreateTime": created}


def page(images: list[dict[str, Any]], total: int | None = None) -> Mapping[str, Any]:
    return {"RetCode": 0, "TotalCount": len(images) if total is None else total, "ImageSet": images}


Answer = Callable[[dict[str, str]], requests.Response]


class ScriptedSession(requests.Session):
    """Answers each POST with the next scripted answer (the last one repeats); records forms and timeouts.

    An answer is a response, an exception to raise, or a function of the form. ``took`` seconds of fake time
    pass on ``clock`` during each request.
    """

    def __init__(self, *answers: Answer | requests.Response | BaseException | Mapping[str, Any],
                 clock: FakeClock | None = None, took: float = 0.0) -> None:
        super().__init__()
        self.answers = list(answers)
        self.forms: list[dict[str, str]] = []
        self.timeouts: list[tuple[float, float]] = []
        self.clock, self.took = clock, took

    def post(self, url: Any, data: Any = None, json: Any = None, **kwargs: Any) -> requests.Response:
        self.forms.append(dict(data))
        self.timeouts.append(kwargs["timeout"])
        if self.clock is not None:
            self.clock.now += self.took
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, requests.Response):
            return answer
        if callable(answer):
            return answer(dict(data))
        return response(body=answer)


@pytest.fixture
def offline() -> Settings:
    return Settings(public_key="pk-demo", private_key=SecretStr(SECRET), region=REGION,
                    base_url="http://127.0.0.1:9", timeout=3.0)


def scripted(settings: Settings, *answers: Any, retry: RetryPolicy = NO_SLEEP, **session: Any) -> Client:
    return Client(settings, session=ScriptedSession(*answers, **session), retry=retry, max_workers=1)


# -- paging against the emulator ------------------------------------------------------------------------------


@pytest.fixture
def catalog() -> list[dict[str, Any]]:
    return synthetic_catalog(REGION, 50)


def demo_settings(emulator: Emulator) -> Settings:
    return Settings(public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY), region=REGION,
                    base_url=emulator.base_url, timeout=5)


def listed(emulator: Emulator, region: str = REGION) -> list[str]:
    return [record["ImageId"] for record in emulator.images(region)]


def connections_opened(client: Client) -> int:
    """How many TCP connections the client's session has opened so far (urllib3 counts them per pool)."""
    transport = client._transport
    assert isinstance(transport, HTTPTransport)  # the default
    adapter = transport._session.get_adapter(client.settings.base_url)
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    pools = adapter.poolmanager.pools
    return sum(pools[key].num_connections for key in pools.keys())  # noqa: SIM118 - the container does not iterate


def limits(emulator: Emulator) -> list[tuple[int, int]]:
    return sorted((int(r.params["Offset"]), int(r.params["Limit"])) for r in emulator.requests)


@pytest.mark.parametrize("workers", [1, 16])
def test_a_server_cap_below_limit_pages_by_what_it_returns(catalog: list[dict[str, Any]], workers: int) -> None:
    with Emulator(catalog, max_limit=7) as emulator, \
            Client(demo_settings(emulator), retry=NO_SLEEP, max_workers=workers) as client:
        images = client.describe_images(LISTING)
        assert [image.image_id for image in images] == listed(emulator)
        # The first page asks for 1000 and learns the cap; every other page asks for exactly the cap.
        assert limits(emulator) == [(0, 1000), *((offset, 7) for offset in range(7, 50, 7))]


def test_concurrent_paging_returns_what_a_sequential_read_returns(catalog: list[dict[str, Any]]) -> None:
    with Emulator(catalog, max_limit=4) as emulator:
        with Client(demo_settings(emulator), retry=NO_SLEEP, max_workers=1) as sequential:
            expected = sequential.describe_images(LISTING)
        with Client(demo_settings(emulator), retry=NO_SLEEP, max_workers=5, page_size=4) as concurrent:
            assert concurrent.describe_images(LISTING) == expected
        assert len(expected) == 50


def test_pages_after_the_first_are_in_flight_together(catalog: list[dict[str, Any]]) -> None:
    with Emulator(catalog, max_limit=10) as emulator, \
            Client(demo_settings(emulator), retry=NO_SLEEP, max_workers=16) as client:
        emulator.latency_ms = 50
        client.describe_images(LISTING)
        # Four pages after the first, all in flight at once: the first page's connection and three more.
        assert client.requests_sent == 5 and connections_opened(client) == 4


def test_total_count_changing_mid_way_is_read_again(catalog: list[dict[str, Any]]) -> None:
    newest = {**catalog[0], "ImageId": "uimage-late01", "CreateTime": 2_000_000_000}
    with Emulator(catalog, max_limit=10) as emulator, \
            Client(demo_settings(emulator), retry=NO_SLEEP, max_workers=1) as client:
        emulator.inject("publish", after=2, value=newest)
        images = client.describe_images(LISTING)
        assert [image.image_id for image in images] == listed(emulator)
        assert "uimage-late01" in {image.image_id for image in images} and len(images) == 51
        assert client.requests_sent == 3 + 6  # a torn read stops at the page that disagreed, then a full read


def test_an_empty_region_is_one_request_and_no_images() -> None:
    with Emulator(synthetic_catalog(REGION, 3)) as emulator, \
            Client(demo_settings(emulator), retry=NO_SLEEP) as client:
        assert client.describe_images({**LISTING, "Region": "tw-tp"}) == ()
        assert emulator.request_count == 1


def test_a_page_that_comes_back_empty_early_is_read_again(catalog: list[dict[str, Any]]) -> None:
    with Emulator(catalog, max_limit=20) as emulator, \
            Client(demo_settings(emulator), retry=NO_SLEEP, max_workers=1) as client:
        emulator.inject("empty_page", after=1)
        assert [image.image_id for image in client.describe_images(LISTING)] == listed(emulator)
        assert [r.fault for r in emulator.requests] == [None, "empty_page", None, None, None]


def test_an_empty_first_page_with_a_total_is_read_again(catalog: list[dict[str, Any]]) -> None:
    with Emulator(catalog) as emulator, Client(demo_settings(emulator), retry=NO_SLEEP) as client:
        emulator.inject("empty_page")
        assert len(client.describe_images(LISTING)) == 50 and emulator.request_count == 2


def test_a_listing_that_never_settles_is_a_transport_error(catalog: list[dict[str, Any]]) -> None:
    with Emulator(catalog) as emulator, Client(demo_settings(emulator), retry=NO_SLEEP) as client:
        emulator.inject("empty_page", times=3)
        with pytest.raises(TransportError, match="did not return a consistent image list in 3 reads") as caught:
            client.describe_images(LISTING)
        assert type(caught.value) is InconsistentListingError and caught.value.action == "DescribeImage"


# -- dedupe (scripted pages) ---------------------------------------------------------------------------------


def by_offset(*reads: dict[int, list[dict[str, Any]]], total: int) -> Answer:
    """Serve read 1's pages, then read 2's, ...: a read ends at its last offset."""
    remaining = list(reads)

    def answer(form: dict[str, str]) -> requests.Response:
        pages = remaining[0]
        offset = int(form["Offset"])
        if offset == max(pages) and len(remaining) > 1:
            remaining.pop(0)
        return response(body=page(pages[offset], total))

    return answer


def test_a_duplicate_across_pages_is_listed_once_when_two_reads_agree(offline: Settings) -> None:
    read = {0: [image("uimage-a"), image("uimage-b")], 2: [image("uimage-b"), image("uimage-c")]}
    with scripted(offline, by_offset(read, read, total=4)) as client:
        images = client.describe_images(LISTING)
        assert [i.image_id for i in images] == ["uimage-a", "uimage-b", "uimage-c"]  # server order, first seen
        assert client.requests_sent == 4


def test_a_transient_overlap_is_read_again_until_complete(offline: Settings) -> None:
    torn = {0: [image("uimage-a"), image("uimage-b")], 2: [image("uimage-b"), image("uimage-c")]}
    whole = {0: [image("uimage-a"), image("uimage-b")], 2: [image("uimage-c"), image("uimage-d")]}
    with scripted(offline, by_offset(torn, whole, total=4)) as client:
        assert [i.image_id for i in client.describe_images(LISTING)] == ["uimage-a", "uimage-b", "uimage-c",
                                                                          "uimage-d"]


def test_a_duplicate_inside_one_page_is_listed_once(offline: Settings) -> None:
    twice = page([image("uimage-a"), image("uimage-a"), image("uimage-b")])
    with scripted(offline, twice) as client:
        assert [i.image_id for i in client.describe_images(LISTING)] == ["uimage-a", "uimage-b"]
        assert client.requests_sent == 2  # overlap: confirmed by a second identical read


# -- the memo -------------------------------------------------------------------------------------------------


def test_an_identical_repeat_makes_no_request_and_clear_memo_forgets(offline: Settings) -> None:
    with scripted(offline, page([image("uimage-a")])) as client:
        first = client.describe_images(LISTING)
        assert client.describe_images(dict(reversed(LISTING.items()))) is first
        assert client.requests_sent == 1
        client.describe_images({**LISTING, "Zone": "cn-bj2-02"})
        assert client.requests_sent == 2
        client.clear_memo()
        client.describe_images(LISTING)
        assert client.requests_sent == 3


def test_a_read_in_flight_when_the_memo_is_cleared_is_not_memoised(offline: Settings) -> None:
    def clear_the_memo_then_answer(form: Any) -> requests.Response:
        client.clear_memo()
        return response(body=page([image("uimage-a")]))

    client = scripted(offline, clear_the_memo_then_answer)
    with client:
        client.describe_images(LISTING)
        client.describe_images(LISTING)
        assert client.requests_sent == 2


def test_a_failure_is_not_memoised(offline: Settings) -> None:
    with scripted(offline, {"RetCode": 171, "Message": "Signature verification failed"},
                  page([image("uimage-a")])) as client:
        with pytest.raises(APIError):
            client.describe_images(LISTING)
        assert [i.image_id for i in client.describe_images(LISTING)] == ["uimage-a"]


# -- the RetCode error ----------------------------------------------------------------------------------------


def test_a_retcode_error_carries_code_message_action_and_request_id(catalog: list[dict[str, Any]]) -> None:
    with Emulator(catalog) as emulator:
        settings = demo_settings(emulator).model_copy(update={"private_key": SecretStr(SECRET)})
        with Client(settings, retry=NO_SLEEP) as client, pytest.raises(APIError) as caught:
            client.describe_images(LISTING)
        error = caught.value
        request_id = emulator.requests[-1].request_id
        assert (error.ret_code, error.api_message, error.action) == (171, "Signature verification failed",
                                                                      "DescribeImage")
        assert error.request_id == request_id and request_id in str(error) and exit_code_for(error) == 5
        assert emulator.request_count == 1
        assert SECRET not in str(error) and SECRET not in repr(error) and SECRET not in repr(client)


def test_a_retcode_error_without_a_request_id_header_says_unknown(offline: Settings) -> None:
    answer = response(body={"RetCode": 299, "Message": "IAM permission check failed"}, request_id="")
    with scripted(offline, answer) as client, pytest.raises(APIError) as caught:
        client.call(LISTING)
    assert caught.value.request_id == "" and "request id unknown" in str(caught.value)


# -- which failures are retried -------------------------------------------------------------------------------

TRANSIENT: dict[str, Callable[[], Any]] = {
    "connection error": lambda: requests.ConnectionError("connection reset by peer"),
    "connect timeout": lambda: requests.ConnectTimeout("connect timed out"),
    "read timeout": lambda: requests.ReadTimeout("read timed out"),
    "broken body": lambda: requests.exceptions.ChunkedEncodingError("connection broken"),
    "HTTP 429": lambda: response(429, b"Too Many Requests"),
    "HTTP 500": lambda: response(500, b"Internal Server Error"),
    "HTTP 502": lambda: response(502, b"<html>Bad Gateway</html>"),
    "HTTP 503": lambda: response(503, b""),
    "HTTP 504": lambda: response(504, b"Gateway Timeout"),
    "not JSON": lambda: response(200, b'{"RetCode": 0, "TotalCo'),
    "HTML at 200": lambda: response(200, b"<html>maintenance</html>"),
    "RetCode 110": lambda: response(body={"RetCode": 110, "Message": "API timeout"}),
    "RetCode 130": lambda: response(body={"RetCode": 130, "Message": "Gateway service fault"}),
    "RetCode 150": lambda: response(body={"RetCode": 150, "Message": "Service unavailable"}),
    "RetCode 153": lambda: response(body={"RetCode": 153, "Message": "Request rate limited"}),
    "RetCode 2000": lambda: response(body={"RetCode": 2000, "Message": "internal"}),
    "RetCode 8039": lambda: response(body={"RetCode": 8039, "Message": "internal"}),
}
FINAL_RET_CODES = [160, 161, 170, 171, 172, 174, 230, 292, 293, 294, 295, 299, 1999]


@pytest.mark.parametrize("failure", sorted(TRANSIENT))
def test_transient_failures_are_retried_and_then_succeed(offline: Settings, failure: str) -> None:
    with scripted(offline, TRANSIENT[failure](), TRANSIENT[failure](), page([image("uimage-a")])) as client:
        assert [i.image_id for i in client.describe_images(LISTING)] == ["uimage-a"]
        assert client.requests_sent == 3


RATE_LIMITED = {"HTTP 429", "RetCode 153"}  # retried for as long as the time budget lasts, not `attempts` times


@pytest.mark.parametrize("failure", sorted(set(TRANSIENT) - RATE_LIMITED))
def test_a_persistent_transient_failure_gives_up_after_the_attempts(offline: Settings, failure: str) -> None:
    answers = [TRANSIENT[failure]() for _ in range(NO_SLEEP.attempts)]
    with scripted(offline, *answers) as client:
        with pytest.raises((TransportError, APIError)) as caught:
            client.describe_images(LISTING)
        assert client.requests_sent == NO_SLEEP.attempts
    if isinstance(caught.value, TransportError):
        assert f"Gave up after {NO_SLEEP.attempts} attempt(s)" in str(caught.value)
    if failure.startswith("RetCode"):
        assert isinstance(caught.value, APIError) and caught.value.ret_code == int(failure.split()[1])
    if failure.startswith(("not JSON", "HTML")):
        assert isinstance(caught.value, ResponseFormatError)


@pytest.mark.parametrize("ret_code", FINAL_RET_CODES)
def test_final_retcodes_are_never_retried(offline: Settings, ret_code: int) -> None:
    with scripted(offline, {"RetCode": ret_code, "Message": "no"}, page([image("uimage-a")])) as client:
        with pytest.raises(APIError) as caught:
            client.describe_images(LISTING)
        assert caught.value.ret_code == ret_code and client.requests_sent == 1
    assert not is_retried_ret_code(ret_code)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (response(404, b"<html>Not Found</html>"), "answered HTTP 404 with a body that is not JSON"),
        (response(403, b"Forbidden"), "answered HTTP 403 with a body that is not JSON"),
        (response(200, b'{"TotalCount": 1}'), "answered HTTP 200 with JSON that has no RetCode"),
        (response(200, b"[1, 2]"), "answered HTTP 200 with JSON that has no RetCode"),
        (response(200, b'{"RetCode": "0"}'), "a RetCode that is not an integer: '0'"),
        (response(200, b'{"RetCode": true}'), "a RetCode that is not an integer: True"),
        (response(200, b'{"RetCode": 0, "ImageSet": "none"}'), "an ImageSet that is not a list"),
    ],
)
def test_a_wrong_shape_fails_at_once_as_a_response_format_error(
    offline: Settings, answer: requests.Response, expected: str
) -> None:
    with scripted(offline, answer, page([image("uimage-a")])) as client:
        with pytest.raises(ResponseFormatError, match=expected) as caught:
            client.describe_images(LISTING)
        assert client.requests_sent == 1 and caught.value.request_id == "req-7"


def test_a_retcode_150_then_153_then_success(offline: Settings) -> None:
    answers = [{"RetCode": 150}, {"RetCode": 153}, page([image("uimage-a")])]
    with scripted(offline, *answers) as client:
        assert len(client.describe_images(LISTING)) == 1 and client.requests_sent == 3


# -- retry timing, on a fake clock --------------------------------------------------------------------------


def test_the_backoff_schedule_is_exponential_and_capped() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=5.0, jitter=lambda: 1.0)
    assert [policy.delay(n) for n in range(5)] == pytest.approx([0.1, 0.4, 1.6, 5.0, 5.0])
    halved = RetryPolicy(base_delay=0.1, max_delay=5.0, jitter=lambda: 0.0)
    assert [halved.delay(n) for n in range(4)] == pytest.approx([0.05, 0.2, 0.8, 2.5])


@pytest.mark.parametrize("failure", sorted(RATE_LIMITED))
def test_a_rate_limited_call_backs_off_longer_until_the_time_budget_is_spent(offline: Settings, failure: str) -> None:
    clock = FakeClock()
    policy = RetryPolicy(attempts=5, total_seconds=60, sleep=clock.sleep, clock=clock, jitter=lambda: 1.0)
    with scripted(offline, lambda form: TRANSIENT[failure](), retry=policy) as client:
        with pytest.raises((APIError, TransportError)) as caught:
            client.call(LISTING)
        sent = client.requests_sent
    # Not stopped at `attempts`: 1, 2, 4, 8 s, then 10 s pauses for as long as they fit in the 60 s.
    assert clock.sleeps == pytest.approx([1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0]) and sent == 9
    assert "Gave up after 9 attempt(s) in 55.0 s: the next pause (10.0 s) would outlast the lookup's time " \
           "budget of 60 s" in str(caught.value)


def test_a_rate_limit_burst_is_ridden_out(offline: Settings) -> None:
    clock = FakeClock()
    started = clock.now
    policy = RetryPolicy(attempts=5, sleep=clock.sleep, clock=clock, jitter=lambda: 1.0)

    def limited_for_8_seconds(form: dict[str, str]) -> requests.Response:
        if clock.now - started < 8:
            return response(body={"RetCode": 153, "Message": "rate limited"})
        return response(body=page([image("uimage-a")]))

    with scripted(offline, limited_for_8_seconds, retry=policy) as client:
        assert [i.image_id for i in client.describe_images(LISTING)] == ["uimage-a"]
        assert client.requests_sent == 5  # after 1 + 2 + 4 + 8 s of pauses


def test_rate_limiting_then_server_errors_do_not_add_up_to_the_attempts(offline: Settings) -> None:
    clock = FakeClock()
    policy = RetryPolicy(attempts=3, sleep=clock.sleep, clock=clock, jitter=lambda: 1.0)
    answers = [{"RetCode": 153}, {"RetCode": 153}, {"RetCode": 153}, response(502), response(502),
               page([image("uimage-a")])]
    with scripted(offline, *answers, retry=policy) as client:
        assert len(client.describe_images(LISTING)) == 1 and client.requests_sent == 6


def test_no_attempt_or_pause_starts_after_the_total_time(offline: Settings) -> None:
    clock = FakeClock()
    started = clock.now
    policy = RetryPolicy(attempts=50, total_seconds=10, base_delay=0.5, max_delay=1.0, sleep=clock.sleep,
                         clock=clock, jitter=lambda: 1.0)
    session = dict(clock=clock, took=2.0)  # every request takes 2 s of fake time, then fails
    with scripted(offline, requests.ConnectionError("reset"), retry=policy, **session) as client:
        with pytest.raises(TransportError, match="could not be reached"):
            client.call(LISTING)
        sent = client.requests_sent
        scripted_session = client._transport._session  # type: ignore[attr-defined]  # the HTTP transport's
        assert isinstance(scripted_session, ScriptedSession)
        timeouts = scripted_session.timeouts
    deadline = started + policy.total_seconds
    assert clock.now <= deadline + offline.timeout
    assert sent < policy.attempts and sum(clock.sleeps) + sent * 2.0 == pytest.approx(clock.now - started)
    # Each request's read timeout is the budget left when it started, capped at the settings' timeout.
    assert all(read <= offline.timeout and connect <= read for connect, read in timeouts)
    assert timeouts[-1][1] < offline.timeout


def test_no_retry_starts_in_a_sliver_of_the_time_budget(offline: Settings) -> None:
    """After the pauses of 1, 2 and 4 s, 0.03 s of the 10 s are left: too little for an answer, so no fourth
    request is sent and the error is the server's (RetCode 153), not a timeout of 0.03 s."""
    clock = FakeClock()
    policy = RetryPolicy(attempts=5, total_seconds=10, sleep=clock.sleep, clock=clock, jitter=lambda: 1.0)
    limited = {"RetCode": 153, "Message": "rate limited"}
    with scripted(offline, limited, retry=policy, clock=clock, took=0.99) as client:
        with pytest.raises(APIError, match="RetCode 153") as caught:
            client.call(LISTING)
        assert client.requests_sent == 3 and clock.sleeps == pytest.approx([1.0, 2.0, 4.0])
    assert "Gave up after 3 attempt(s) in 10.0 s: the lookup's time budget of 10 s is spent" in str(caught.value)


def test_every_page_of_a_lookup_shares_one_time_budget(offline: Settings) -> None:
    clock = FakeClock()
    started = clock.now
    policy = RetryPolicy(attempts=5, total_seconds=6, base_delay=1.0, max_delay=1.0, sleep=clock.sleep,
                         clock=clock, jitter=lambda: 1.0)

    def first_page_then_outage(form: dict[str, str]) -> requests.Response:
        if form["Offset"] == "0":
            return response(body=page([image("uimage-a")], total=10))
        return response(503, b"unavailable")

    client = scripted(offline, first_page_then_outage, retry=policy, clock=clock, took=1.0)
    with client, pytest.raises(TransportError, match="HTTP 503"):
        client.describe_images(LISTING)
    assert clock.now - started <= policy.total_seconds + offline.timeout


def test_a_spent_budget_sends_nothing(offline: Settings) -> None:
    clock = FakeClock()
    policy = RetryPolicy(sleep=clock.sleep, clock=clock)
    with scripted(offline, page([image("uimage-a")]), retry=policy) as client:
        with pytest.raises(TransportError, match="was not called: the lookup's time budget of 60 s was spent"):
            client.call(LISTING, deadline=clock.now)
        assert client.requests_sent == 0


def test_a_body_slower_than_the_timeout_is_cut_off(offline: Settings) -> None:
    clock = FakeClock()

    class Trickle(io.RawIOBase):
        """A body that arrives slower than the timeout: fake time passes with every chunk read."""

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            clock.now += 2.0
            buffer[:1] = b" "
            return 1

    slow = response()
    slow.raw = urllib3.HTTPResponse(io.BufferedReader(Trickle()), preload_content=False)
    policy = RetryPolicy(attempts=1, sleep=clock.sleep, clock=clock)
    with scripted(offline, slow, retry=policy) as client, pytest.raises(TransportError, match="did not answer"):
        client.call(LISTING)


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="total_seconds"):
        RetryPolicy(total_seconds=0)
    with pytest.raises(ValueError, match="max_workers"):
        Client(Settings(public_key="p", private_key=SecretStr("s")), max_workers=0)
    with pytest.raises(ValueError, match="page_size"):
        Client(Settings(public_key="p", private_key=SecretStr("s")), page_size=0)


# -- keep-alive ------------------------------------------------------------------------------------------------


@pytest.fixture
def emulator(catalog: list[dict[str, Any]], start_emulator: Callable[[Emulator], Emulator]) -> Emulator:
    return start_emulator(Emulator(catalog))


def test_one_session_and_one_connection_serve_sequential_calls(emulator: Emulator) -> None:
    with Client(demo_settings(emulator), retry=NO_SLEEP) as client:
        for _ in range(10):
            client.clear_memo()
            assert len(client.describe_images(LISTING)) == 50
        assert emulator.request_count == 10 and connections_opened(client) == 1


def test_a_dropped_connection_is_replaced_and_the_call_retried(emulator: Emulator) -> None:
    with Client(demo_settings(emulator), retry=NO_SLEEP) as client:
        emulator.inject("drop")
        assert len(client.describe_images(LISTING)) == 50
        assert [r.fault for r in emulator.requests] == ["drop", None]


def test_the_request_carries_a_user_agent_and_the_signature_but_no_secret() -> None:
    from tests.api.hostile_server import hostile_server

    with hostile_server() as server:
        settings = Settings(public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY), region="cn-bj2",
                            base_url=server.url("capture"))
        with Client(settings, retry=NO_SLEEP) as client:
            client.describe_images(LISTING)
        seen = server.captured[0]
    assert seen.method == "POST"
    assert "Signature" in seen.form and "PublicKey" in seen.form and DEMO_PRIVATE_KEY not in str(seen.form)
    headers = {name.lower(): value for name, value in seen.headers.items()}
    assert headers["user-agent"].startswith("pulumi-ucloud-images/")
    assert headers["content-type"] == "application/x-www-form-urlencoded"


# -- an answer is checked against its question -------------------------------------------------------------------


def zoned(image_id: str, zone: str) -> dict[str, Any]:
    return {**image(image_id), "Zone": zone}


@pytest.mark.parametrize("zone", ["us-ca-01", "cn-bj22-01", "cn-bj", "hk"])
def test_an_image_outside_the_region_asked_is_an_error_not_an_image(offline: Settings, zone: str) -> None:
    answer = page([zoned("uimage-ours01", "cn-bj2-03"), zoned("uimage-other1", zone)])
    with scripted(offline, response(body=answer, request_id="req-cross")) as client, pytest.raises(
        ResponseFormatError, match=r"^UCloud API DescribeImage answered with ImageSet\[1\] \('uimage-other1'\) in zone "
        rf"'{zone}', outside the region asked, 'cn-bj2' \(request id req-cross\)"
    ) as caught:
        client.describe_images(LISTING)
    assert caught.value.action == "DescribeImage" and caught.value.request_id == "req-cross"
    assert client.requests_sent == 1  # not retried


@pytest.mark.parametrize("zone", ["cn-bj2", "cn-bj2-02", ""])
def test_an_image_of_the_region_asked_or_without_a_zone_is_listed(offline: Settings, zone: str) -> None:
    with scripted(offline, page([zoned("uimage-ours01", zone)])) as client:
        assert [record.image_id for record in client.list_records(LISTING)] == ["uimage-ours01"]


@pytest.mark.parametrize("asked", [{"ImageId": "uimage-asked1"}, {"ImageIds": ["uimage-asked1", "uimage-asked2"]},
                                   {"ImageIds.0": "uimage-asked1"}])
def test_a_question_naming_image_ids_gets_only_those_back(offline: Settings, asked: dict[str, Any]) -> None:
    answer = page([image("uimage-asked1"), image("uimage-stray1")])
    with scripted(offline, answer) as client, pytest.raises(
        ResponseFormatError, match=r"ImageSet\[1\] \('uimage-stray1'\) which the question did not name"
    ):
        client.describe_images({**LISTING, **asked})
    with scripted(offline, page([image("uimage-asked1")])) as client:
        assert [i.image_id for i in client.describe_images({**LISTING, **asked})] == ["uimage-asked1"]


@pytest.mark.parametrize("value", [1e2, 12345, 0, True])
def test_a_numeric_image_id_is_refused_like_any_malformed_record(offline: Settings, value: Any) -> None:
    answer = page([image("uimage-fine01", created=1), {**image("x", created=2), "ImageId": value}])
    with scripted(offline, answer) as client, pytest.raises(
        ResponseFormatError, match=r"ImageSet\[1\]\.ImageId that is not a string"
    ):
        client.describe_images(LISTING)


@pytest.mark.parametrize("padding", [0, 1])
def test_a_page_with_more_json_values_than_its_limit_allows_is_refused_before_parsing(
    offline: Settings, padding: int
) -> None:
    """Commas bound what parsing could build: a page asked for 1 image may hold 1,024 values per image plus
    4,096. One comma more is refused unparsed, not retried. (A body no longer than the bound is not counted:
    it cannot hold more commas than bytes.)"""
    from pulumi_ucloud_images._api.calls import _VALUES_PER_IMAGE

    allowed = _VALUES_PER_IMAGE + 4096
    head, tail = b'{"RetCode": 0, "TotalCount": 0, "ImageSet": [], "Junk": [', b"0]}"
    body = head + b"0," * (allowed - 3 + padding) + tail  # the head holds 3 commas
    assert body.count(b",") == allowed + padding and len(body) > allowed
    with Client(offline, session=ScriptedSession(response(body=body)), retry=NO_SLEEP, page_size=1) as client:
        if padding:
            with pytest.raises(ResponseFormatError, match=f"{allowed + 1:,} JSON values, more than a page of 1 "):
                client.describe_images(LISTING)
            assert client.requests_sent == 1
        else:
            assert client.describe_images(LISTING) == ()
