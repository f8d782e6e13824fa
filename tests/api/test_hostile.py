"""Bounded against hostile servers: time, redirects, memory, regexes, rate limits, final failures, the emulator.

Every server here is on 127.0.0.1: the hostile one of ``hostile_server.py`` (its modes trickle, stall,
redirect, inflate, pad, lie about TotalCount, rate-limit, ...), or the emulator. Times are asserted as generous
upper bounds, never as tight timings; memory is measured in a child process, from its own peak RSS, with slack.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from pulumi_ucloud_images import (
    APIError,
    Client,
    ConnectionFailedError,
    InvalidQueryError,
    RedirectError,
    ResponseFormatError,
    ResponseTimeoutError,
    ResponseTooLargeError,
    RetryPolicy,
    Settings,
    TransportError,
    UCloudImagesError,
    lookup_images,
)
from pulumi_ucloud_images._api.retry import _retry_after, _RetryBudget
from pulumi_ucloud_images._cli.common import exit_code_for
from pulumi_ucloud_images._emulator.service import (
    DEMO_PRIVATE_KEY,
    DEMO_PUBLIC_KEY,
    Emulator,
    is_loopback,
    serve_forever,
)
from pulumi_ucloud_images._query import MATCH_SECONDS, parse_query
from tests.api.hostile_server import HostileServer

pytestmark = pytest.mark.timeout(120)

SECRET = "sk-hostile-never-shown-4242"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, throttle_base_delay=0.05, throttle_max_delay=0.1)
CLI = "import sys; from pulumi_ucloud_images._cli import main; sys.exit(main())"
KEYS = ["--region", "cn-bj2", "--public-key", "pk-hostile", "--private-key", SECRET]


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer(hold=30) as hostile:
        yield hostile


@pytest.fixture(scope="module")
def other() -> Iterator[HostileServer]:
    """Another origin, for redirects to point at."""
    with HostileServer(hold=30) as hostile:
        yield hostile


def unique() -> str:
    """A query-string value that gives a URL (and so the server's per-URL counters) to one test alone."""
    return f"{time.monotonic_ns()}"


def client(url: str, *, timeout: float = 5.0, retry: RetryPolicy = FAST, **kwargs: Any) -> Client:
    settings = Settings(public_key="pk-hostile", private_key=SecretStr(SECRET), region="cn-bj2", base_url=url,
                        timeout=timeout)
    return Client(settings, retry=retry, **kwargs)


def lookup(url: str, *, timeout: float = 5.0, retry: RetryPolicy = FAST, **filters: Any) -> str:
    with client(url, timeout=timeout, retry=retry) as hostile:
        return lookup_images(client=hostile, **filters).image_id


def timed(function: Any, *args: Any, **kwargs: Any) -> tuple[BaseException | Any, float]:
    started = time.monotonic()
    try:
        outcome: Any = function(*args, **kwargs)
    except UCloudImagesError as error:
        outcome = error
    return outcome, time.monotonic() - started


def run_cli(*args: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env={**_clean_env(), "HOME": str(home)})


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("UCLOUD_")}


def one_sentence(stderr: str) -> str:
    assert "Traceback" not in stderr and SECRET not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ucloud-images: error: "), stderr
    return lines[0].removeprefix("ucloud-images: error: ")


# -- time: one deadline per request ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "what"),
    [
        ("trickle-body", "its body stalled or trickled"),
        ("trickle-headers", "its status line and headers had not arrived"),
        ("stall", "its status line and headers had not arrived"),
        ("stall-body", "its body stalled or trickled"),
    ],
)
def test_a_trickling_or_stalling_server_is_cut_off_at_the_request_deadline(
    server: HostileServer, mode: str, what: str
) -> None:
    one_attempt = RetryPolicy(attempts=1)
    error, seconds = timed(lookup, server.url(mode, interval=0.2, key=unique()), timeout=1.0, retry=one_attempt)
    assert isinstance(error, ResponseTimeoutError) and exit_code_for(error) == 5
    assert f"did not answer within 1 s: {what}" in str(error) and "Gave up after 1 attempt(s)" in str(error)
    assert seconds < 1.0 + 2.0  # the deadline covers headers and body, however slowly they come


def test_a_trickling_server_cannot_stretch_a_lookup_past_its_time_budget(server: HostileServer) -> None:
    budget = RetryPolicy(total_seconds=3, base_delay=0.01, max_delay=0.05)
    error, seconds = timed(lookup, server.url("trickle-headers", interval=0.3, key=unique()), timeout=1.0,
                           retry=budget)
    assert isinstance(error, ResponseTimeoutError)
    assert seconds < budget.total_seconds + 2.0


def test_the_message_says_when_the_time_budget_ran_out_rather_than_the_timeout(server: HostileServer) -> None:
    short = RetryPolicy(total_seconds=1.5)
    error, seconds = timed(lookup, server.url("stall", key=unique()), timeout=30.0, retry=short)
    assert isinstance(error, ResponseTimeoutError)
    assert "did not answer within 1.5 s, all that was left of the lookup's time budget of 1.5 s" in str(error)
    assert "the lookup's time budget of 1.5 s is spent" in str(error)
    assert seconds < 1.5 + 2.0


# -- redirects ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed_and_names_where_it_pointed(
    server: HostileServer, other: HostileServer, code: int
) -> None:
    before = len(other.captured)
    url = server.url("redirect", code=code, target=other.url("capture"), key=unique())
    with client(url) as hostile:
        with pytest.raises(RedirectError) as caught:
            lookup_images(client=hostile)
        assert hostile.requests_sent == 1  # not retried
    assert len(other.captured) == before  # the signed form never went to the other origin
    error = caught.value
    assert error.location_host == f"127.0.0.1:{other.port}" and exit_code_for(error) == 5
    assert f"answered HTTP {code}, a redirect to 127.0.0.1:{other.port}" in str(error)
    assert "redirects are not followed" in str(error) and SECRET not in str(error)


@pytest.mark.slow
def test_a_redirect_from_the_command_line_is_one_sentence_and_exit_5(
    server: HostileServer, other: HostileServer, tmp_path: Path
) -> None:
    url = server.url("redirect", code=307, target=other.url("capture"), key=unique())
    finished = run_cli("find", *KEYS, "--base-url", url, home=tmp_path)
    assert finished.returncode == 5 and finished.stdout == ""
    assert "a redirect to 127.0.0.1" in one_sentence(finished.stderr)


def test_the_pulumi_function_refuses_a_redirect_too(server: HostileServer, other: HostileServer) -> None:
    from pulumi_ucloud_images import get_images

    url = server.url("redirect", code=302, target=other.url("capture"), key=unique())
    with pytest.raises(RedirectError):
        get_images(region="cn-bj2", public_key="pk-hostile", private_key=SECRET, base_url=url)


# -- Ctrl+C ------------------------------------------------------------------------------------------------------


def _wait_for_requests(server: HostileServer, mode: str, count: int) -> None:
    deadline = time.monotonic() + 15
    while server.requests(mode) < count:
        assert time.monotonic() < deadline, f"the command never sent {count} requests to {mode}"
        time.sleep(0.05)


@pytest.mark.parametrize(("mode", "in_flight"), [("stall", 1), ("stall-later", 3)],
                         ids=["the first page hangs", "pages hang in the pool"])
@pytest.mark.slow
def test_ctrl_c_exits_130_at_once_cutting_off_the_pages_in_flight(
    server: HostileServer, tmp_path: Path, mode: str, in_flight: int
) -> None:
    url = server.url(mode, total=3000, key=unique())
    seen = server.requests(mode)
    child = subprocess.Popen([sys.executable, "-c", CLI, "find", *KEYS, "--base-url", url, "--timeout", "30"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**_clean_env(), "HOME": str(tmp_path)})
    try:
        _wait_for_requests(server, mode, seen + in_flight)
        time.sleep(0.2)
        interrupted = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=10)
        seconds = time.monotonic() - interrupted
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130 and out == "" and "Traceback" not in err
    assert seconds < 2.0  # within a second, measured; two allow for a busy machine


# -- memory: capped after decompression, and by a sane TotalCount ------------------------------------------------

MEMORY_CHILD = textwrap.dedent("""
    import json, sys
    from pydantic import SecretStr
    from pulumi_ucloud_images import Client, RetryPolicy, Settings, UCloudImagesError, lookup_images

    def peak_kib():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))

    settings = Settings(public_key="pk", private_key=SecretStr("sk"), region="cn-bj2", base_url=sys.argv[1],
                        timeout=30)
    client = Client(settings, retry=RetryPolicy(attempts=1, total_seconds=60))
    baseline = peak_kib()
    try:
        outcome = lookup_images(client=client, most_recent=True).image_id
    except UCloudImagesError as error:
        outcome = type(error).__name__ + ": " + str(error)
    print(json.dumps({"grew_mib": (peak_kib() - baseline) / 1024, "outcome": outcome}))
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc")
@pytest.mark.parametrize(
    ("mode", "options", "expected"),
    [
        ("gzip", {"size": 1024}, "ResponseTooLargeError: "),
        ("huge", {"size": 200}, "ResponseTooLargeError: "),
        ("huge", {"size": 200, "chunked": 1}, "ResponseTooLargeError: "),
        ("junk", {"size": 30}, "ResponseFormatError: "),
        ("fake-total", {}, "ResponseTooLargeError: "),
        ("fake-total", {"dup": 1}, "ResponseTooLargeError: "),
        ("fake-total", {"total": 40_000}, "uimage-f00000000"),
    ],
    ids=["gzip bomb of 1 GiB", "200 MB body", "200 MB chunked body", "30 MiB of empty objects",
         "TotalCount of 9,999,999", "TotalCount of 9,999,999, one new image a page", "40,000 real images"],
)
@pytest.mark.slow
def test_memory_grows_with_the_images_listed_not_with_what_the_server_claims(
    server: HostileServer, mode: str, options: dict[str, Any], expected: str
) -> None:
    url = server.url(mode, key=unique(), **options)
    finished = subprocess.run([sys.executable, "-c", MEMORY_CHILD, url], capture_output=True, text=True,
                              timeout=100, env=_clean_env())
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    assert str(report["outcome"]).startswith(expected), report
    if expected.startswith("uimage"):
        assert report["grew_mib"] < 250  # 40,000 images, each held once (before: the same)
    else:
        assert report["grew_mib"] < 32 + 48  # one capped answer (32 MiB) and slack; before: 0.4 to 4.8 GB


def test_a_page_holding_more_images_than_asked_for_is_refused(server: HostileServer) -> None:
    with client(server.url("ok", images=50, ignore_limit=1, key=unique()), page_size=10) as hostile:
        with pytest.raises(ResponseFormatError, match="50 images in ImageSet for a Limit of 10"):
            hostile.describe_images({"Action": "DescribeImage", "Region": "cn-bj2"})
        assert hostile.requests_sent == 1


def test_tiny_pages_for_a_large_total_are_refused_not_paged(server: HostileServer) -> None:
    with client(server.url("fake-total", total=40_000, cap=1, key=unique())) as hostile:
        with pytest.raises(ResponseTooLargeError, match=r"1 image\(s\) per page for a TotalCount of 40,000"):
            hostile.describe_images({"Action": "DescribeImage", "Region": "cn-bj2"})
        assert hostile.requests_sent == 1


def test_a_compressed_page_is_inflated(server: HostileServer) -> None:
    assert lookup(server.url("gzip", size=1, key=unique())) == "uimage-gz0001"


def test_the_response_cap_is_configurable(server: HostileServer) -> None:
    small = client(server.url("gzip", size=1, key=unique()), max_response_bytes=512 * 1024)
    with small, pytest.raises(ResponseTooLargeError, match=r"at most 0\.5 MiB"):
        lookup_images(client=small)
    few = client(server.url("fake-total", total=500, key=unique()), max_images=100)
    with few, pytest.raises(ResponseTooLargeError, match="a TotalCount of 500"):
        lookup_images(client=few)


def test_one_read_of_a_compressed_body_never_inflates_more_than_asked() -> None:
    """What the decompression cap rests on: urllib3 (>= 2.6) bounds what one read inflates, in each encoding."""
    import gzip
    import io

    import requests
    import urllib3

    from pulumi_ucloud_images._api.http import HTTPResponse

    def answer(body: bytes, encoding: str) -> HTTPResponse:
        response = requests.Response()
        response.status_code = 200
        response.raw = urllib3.HTTPResponse(io.BytesIO(body), headers={"Content-Encoding": encoding},
                                            preload_content=False)
        return HTTPResponse(response)

    bomb = zlib.compress(b" " * (64 * 1024 * 1024), 9)
    assert len(answer(bomb, "deflate").read(1000)) == 1000
    assert len(answer(gzip.compress(b" " * (64 * 1024 * 1024), 9), "gzip").read(1000)) == 1000
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw_deflate = answer(raw.compress(b'{"RetCode": 0}') + raw.flush(), "deflate")
    assert b"".join(iter(lambda: raw_deflate.read(3), b"")) == b'{"RetCode": 0}'
    two_members = answer(gzip.compress(b"abc") + gzip.compress(b"def"), "gzip")
    assert b"".join(iter(lambda: two_members.read(10_000), b"")) == b"abcdef"


# -- regexes -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("x{99999999999}", "a repetition count is too large"),
        ("(" * 450 + "a" + ")" * 450, "its groups nest too deeply"),
        ("a" * 1001, "at most 1000 characters long"),
        ("(CentOS", "missing ), unterminated subpattern at position 0"),
    ],
    ids=["overflowing repetition", "450 nested groups", "too long", "unbalanced"],
)
@pytest.mark.parametrize("field", ["name_regex", "os_name_regex"])
def test_a_regex_that_cannot_compile_is_one_invalid_query_sentence(field: str, pattern: str, problem: str) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        parse_query(region="cn-bj2", **{field: pattern})
    assert caught.value.field == field and exit_code_for(caught.value) == 2
    assert problem in str(caught.value) and "\n" not in str(caught.value)
    pattern_argument: dict[str, Any] = {field: pattern}
    with pytest.raises(InvalidQueryError):
        lookup_images(region="cn-bj2", public_key="pk", private_key=SECRET, base_url="http://127.0.0.1:9",
                      **pattern_argument)


@pytest.mark.parametrize("pattern", ["x{99999999999}", "(" * 450 + "a" + ")" * 450, "(" * 500 + "a" + ")" * 500])
@pytest.mark.slow
def test_a_hostile_regex_on_the_command_line_exits_2(pattern: str, tmp_path: Path) -> None:
    finished = run_cli("find", *KEYS, "--base-url", "http://127.0.0.1:9", "--name-regex", pattern, home=tmp_path)
    assert finished.returncode == 2
    assert one_sentence(finished.stderr).startswith("Invalid --name-regex")


@pytest.mark.slow
def test_a_hostile_regex_in_a_selection_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "ucloud-images.toml").write_text(
        "[settings]\nregion = 'cn-bj2'\n\n[selections.web]\nname_regex = 'x{99999999999}'\n"
    )
    keys = ["--public-key", "pk-hostile", "--private-key", SECRET]
    finished = subprocess.run([sys.executable, "-c", CLI, "lock", *keys, "--base-url", "http://127.0.0.1:9"],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path,
                              env={**_clean_env(), "HOME": str(tmp_path)})
    assert finished.returncode == 2, finished.stderr
    assert "Traceback" not in finished.stderr and "repetition count is too large" in finished.stderr


def test_catastrophic_backtracking_is_cut_off_by_the_matching_budget(server: HostileServer) -> None:
    url = server.url("ok", images=1, name="a" * 40 + "!", key=unique())
    error, seconds = timed(lookup, url, name_regex="(a|aa)+$")
    assert isinstance(error, InvalidQueryError) and error.field == "name_regex" and exit_code_for(error) == 2
    assert "Invalid name_regex '(a|aa)+$': matching it against the listed images took more than" in str(error)
    # The match is cut after MATCH_SECONDS of CPU time; the wall-clock bound allows for a loaded machine.
    assert seconds < 4 * MATCH_SECONDS + 3.0


def test_the_nested_repetition_of_the_report_no_longer_hangs(server: HostileServer) -> None:
    url = server.url("ok", images=1, name="a" * 34 + "!", key=unique())
    error, seconds = timed(lookup, url, name_regex="(a+)+$")  # before: ran forever under Python's re
    assert type(error).__name__ == "NoImageFoundError" and seconds < MATCH_SECONDS + 3.0


def test_ordinary_regexes_still_match_as_python_re_does(server: HostileServer) -> None:
    url = server.url("ok", images=3, name="Ubuntu 22.04 64位", key=unique())
    assert lookup(url, name_regex=r"^Ubuntu 22\.04 64\w$") == "uimage-h00000"  # \w is Unicode, as in re
    assert lookup(url, name_regex=r"^(?!Hostile)U(?=b)") == "uimage-h00000"  # lookarounds work
    assert lookup(url, name_regex=r"^Hostile .*(\d)\1", most_recent=True) == "uimage-h00002"  # backreferences


# -- retries: Retry-After, rate limits, one budget ----------------------------------------------------------------


@pytest.mark.parametrize("code", [429, 503])
def test_retry_after_is_honoured_within_the_budget(server: HostileServer, code: int) -> None:
    url = server.url("status", code=code, times=1, retry_after=2, key=unique())
    outcome, seconds = timed(lookup, url, retry=RetryPolicy(base_delay=0.01, throttle_base_delay=0.01),
                             most_recent=True)
    assert outcome == "uimage-h00002"
    assert 2.0 <= seconds < 2.0 + 3.0


def test_a_retry_after_beyond_the_budget_ends_the_lookup_at_once(server: HostileServer) -> None:
    url = server.url("status", code=429, retry_after=120, key=unique())
    error, seconds = timed(lookup, url, retry=RetryPolicy(total_seconds=10))
    assert isinstance(error, TransportError) and seconds < 2.0
    assert "the server asked to wait 120 s (Retry-After)" in str(error)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert _retry_after("3") == 3.0 and _retry_after(" 0 ") == 0.0
    assert _retry_after(None) is None and _retry_after("soon") is None and _retry_after("nan") is None
    in_a_minute = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 55 <= (_retry_after(in_a_minute) or 0) <= 61
    assert _retry_after("1e12") == 86_400.0


def test_a_rate_limit_burst_is_ridden_out_with_longer_pauses(server: HostileServer) -> None:
    url = server.url("retcode", code=153, seconds=3, key=unique())
    outcome, seconds = timed(lookup, url, retry=RetryPolicy(), most_recent=True)
    assert outcome == "uimage-h00002"  # before: failed after 5 attempts in under 6 s
    assert 3.0 <= seconds < 3.0 + 10.0


def test_rate_limiting_then_server_errors_on_the_first_page_still_succeed(server: HostileServer) -> None:
    url = server.url("sequence", seq="153,153,153,502,502", key=unique())
    with client(url) as hostile:
        assert lookup_images(client=hostile, most_recent=True).image_id == "uimage-h00002"
        assert hostile.requests_sent == 6


def test_concurrent_lookups_share_one_retry_budget(server: HostileServer) -> None:
    url = server.url("retcode", code=153, key=unique())
    lookups = 40
    policy = RetryPolicy(total_seconds=3, throttle_base_delay=0.01, throttle_max_delay=0.02)
    failures: list[BaseException] = []
    with client(url, retry=policy) as shared:
        def one(index: int) -> None:
            try:
                lookup_images(client=shared, zone=f"cn-bj2-{index:02d}")
            except UCloudImagesError as error:
                failures.append(error)

        threads = [threading.Thread(target=one, args=(index,)) for index in range(lookups)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        seconds = time.monotonic() - started
        sent = shared.requests_sent
    assert len(failures) == lookups and all(isinstance(error, APIError) for error in failures)
    # Each lookup's first request, then retries from one bucket of 500 tokens at 5 a retry (plus its refill of
    # 1 token a second); without the shared budget, 40 lookups pausing 20 ms would send thousands in 3 s.
    assert sent <= lookups + 500 / 5 + (3 + 2) / 5
    assert seconds < policy.total_seconds + 3


def test_the_retry_budget_takes_refills_and_refunds() -> None:
    now = [0.0]
    policy = RetryPolicy(retry_tokens=10, retry_cost=5, refill_per_second=1, clock=lambda: now[0])
    budget = _RetryBudget(policy)
    assert budget.take(5) == 0 and budget.take(5) == 0
    assert budget.take(5) == pytest.approx(5.0)  # empty: five seconds until a retry's worth is back
    now[0] += 2
    assert budget.tokens == pytest.approx(2.0)
    budget.give(100)
    assert budget.tokens == 10  # never beyond its capacity
    assert _RetryBudget(RetryPolicy(retry_tokens=1, refill_per_second=0)).take(5) == float("inf")


# -- failures that cannot change are not retried -------------------------------------------------------------------


@pytest.mark.slow
def test_an_invalid_port_is_bad_input_found_before_any_request(tmp_path: Path) -> None:
    finished = run_cli("find", *KEYS, "--base-url", "http://127.0.0.1:99999", home=tmp_path)
    assert finished.returncode == 2
    assert "must have a port from 1 to 65535" in one_sentence(finished.stderr)
    with pytest.raises(ValidationError, match="must have a port from 1 to 65535"):
        client("http://127.0.0.1:99999")  # hand-made settings meet the same rule, before any client exists


def test_tls_to_a_plain_http_port_is_not_retried(server: HostileServer) -> None:
    with client(f"https://127.0.0.1:{server.port}/ok", retry=RetryPolicy()) as hostile:
        error, seconds = timed(lookup_images, client=hostile)
        assert isinstance(error, ConnectionFailedError) and hostile.requests_sent == 1
    assert "does not speak TLS" in str(error) and "Gave up" not in str(error) and seconds < 2.0


@pytest.mark.parametrize(
    ("mode", "options", "what"),
    [
        ("utf8", {}, "answered HTTP 200 with bytes that are not UTF-8"),
        ("nested", {}, "answered HTTP 200 with JSON nested too deeply to be an answer"),
        ("html", {"code": 404}, "answered HTTP 404 with a body that is not JSON"),
        ("html", {"code": 400}, "answered HTTP 400 with a body that is not JSON"),
    ],
)
def test_answers_that_cannot_change_fail_at_once(
    server: HostileServer, mode: str, options: dict[str, Any], what: str
) -> None:
    with client(server.url(mode, key=unique(), **options), retry=RetryPolicy()) as hostile:
        error, _ = timed(lookup_images, client=hostile)
        assert isinstance(error, ResponseFormatError) and hostile.requests_sent == 1
    assert what in str(error) and exit_code_for(error) == 5


def test_a_refused_connection_says_so() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    error, _ = timed(lookup, url)
    assert isinstance(error, ConnectionFailedError)
    assert str(error).startswith(f"UCloud API DescribeImage at {url} could not be reached (connection refused).")


# -- the emulator, bounded ---------------------------------------------------------------------------------------


def _raw_exchange(emulator: Emulator, head: bytes, body: bytes = b"", body_size: int = 0) -> tuple[int, Any]:
    """Send ``head`` (+ body), read the answer: the HTTP status and the JSON body."""
    port = int(emulator.base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        chunk = b" " * 65536
        sent = 0
        while sent < body_size:
            sock.sendall(chunk[: body_size - sent])
            sent += min(len(chunk), body_size - sent)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, json.loads(answer.read())


def _post(length: int | str, content_type: str = "application/x-www-form-urlencoded", extra: str = "") -> bytes:
    return (f"POST / HTTP/1.1\r\nHost: emulator\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n"
            f"{extra}\r\n").encode()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator([]) as server:
        yield server


def test_an_oversized_request_body_is_answered_230_without_holding_it(emulator: Emulator) -> None:
    size = 20 * 1024 * 1024
    status, body = _raw_exchange(emulator, _post(size), body_size=size)
    assert (status, body["RetCode"]) == (413, 230) and "too large" in body["Message"]


def test_an_absurd_content_length_is_answered_at_once(emulator: Emulator) -> None:
    status, body = _raw_exchange(emulator, _post(10**12), b"Action=DescribeImage")
    assert (status, body["RetCode"]) == (413, 230)


def test_a_deeply_nested_json_body_is_a_missing_action(
    emulator: Emulator, capfd: pytest.CaptureFixture[str]
) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    status, body = _raw_exchange(emulator, _post(len(nested), "application/json"), nested)
    assert (status, body["RetCode"]) == (200, 160)
    assert "Traceback" not in capfd.readouterr().err


def test_a_chunked_request_body_is_read_and_a_broken_one_refused(emulator: Emulator) -> None:
    form = b"Action=DescribeImage"
    chunked = f"{len(form):x}\r\n".encode() + form + b"\r\n0\r\n\r\n"
    head = (b"POST / HTTP/1.1\r\nHost: emulator\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    status, body = _raw_exchange(emulator, head, chunked)
    assert (status, body["RetCode"]) == (200, 170)  # read: the Action arrived, the signature is missing
    status, body = _raw_exchange(emulator, head, b"zz\r\n")
    assert (status, body["RetCode"]) == (400, 230)


def test_a_request_that_is_not_http_gets_the_envelope(emulator: Emulator) -> None:
    status, body = _raw_exchange(emulator, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n")
    assert status == 400 and body["RetCode"] == 230


def test_the_emulator_serves_at_most_max_connections_at_once() -> None:
    with Emulator([], max_connections=4) as emulator:
        port = int(emulator.base_url.rsplit(":", 1)[1])
        before = threading.active_count()
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(12)]
        try:
            time.sleep(0.5)
            assert threading.active_count() - before <= 4
            for sock in idle[:4]:
                sock.close()
            # A waiting connection is served once a slot is free.
            idle[4].sendall(b"GET /?Action=DescribeImage HTTP/1.1\r\nHost: e\r\n\r\n")
            idle[4].settimeout(10)
            assert idle[4].recv(12).startswith(b"HTTP/1.1 200")
        finally:
            for sock in idle:
                sock.close()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc")
@pytest.mark.slow
def test_the_emulator_process_stays_small_under_a_300_mb_body(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CLI, "emulator", "--port", "0"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env={**_clean_env(), "HOME": str(tmp_path)})
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        port = int(line.rsplit(":", 1)[1].split()[0])
        size = 300 * 1024 * 1024
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            sock.sendall(_post(size))
            chunk = b" " * (1024 * 1024)
            for _ in range(300):
                sock.sendall(chunk)
            assert sock.recv(12) == b"HTTP/1.1 413"
        status = Path(f"/proc/{child.pid}/status").read_text()
        peak_mib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")) / 1024
        assert peak_mib < 150  # before: 1.3 GB
    finally:
        child.send_signal(signal.SIGINT)
        try:
            _, err = child.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            _, err = child.communicate()
    assert "Traceback" not in err


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                                 ("[::1]", True), ("localhost", True), ("", False),
                                                 ("0.0.0.0", False), ("::", False), ("10.1.2.3", False),
                                                 ("build-box", False)])
def test_which_hosts_count_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serving_beyond_loopback_prints_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi_ucloud_images._emulator.service as emulator_module

    monkeypatch.setattr(emulator_module, "is_loopback", lambda host: False)  # so the test still binds loopback
    stop, out, err = threading.Event(), io.StringIO(), io.StringIO()
    serving = threading.Thread(target=serve_forever, kwargs={"port": 0, "out": out, "err": err, "stop": stop})
    serving.start()
    deadline = time.monotonic() + 10
    while "serving" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    serving.join(timeout=10)
    assert err.getvalue().startswith("warning: the emulator listens on 127.0.0.1, not only loopback")
    assert "public demo keys" in err.getvalue()


def test_a_loopback_emulator_prints_no_warning() -> None:
    stop, out, err = threading.Event(), io.StringIO(), io.StringIO()
    stop.set()
    serve_forever(port=0, out=out, err=err, stop=stop)
    assert "serving" in out.getvalue() and err.getvalue() == ""


def test_the_emulator_still_answers_a_real_lookup_after_all_this(emulator: Emulator) -> None:
    settings = Settings(public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY), region="cn-bj2",
                        base_url=emulator.base_url)
    with Client(settings, retry=FAST) as healthy:
        assert healthy.describe_images({"Action": "DescribeImage", "Region": "cn-bj2"}) == ()


# -- the caller's own exceptions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["stall", "stall-body"])
def test_a_signal_handlers_timeout_error_propagates_at_once(server: HostileServer, mode: str) -> None:
    """A handler raising the built-in TimeoutError mid-request (as a SIGALRM handler does) is the caller's: it
    is neither taken for the request's timeout nor retried. (SIGUSR1 here: pytest-timeout owns SIGALRM.)"""

    def handler(signum: int, frame: Any) -> None:
        raise TimeoutError("the caller's own deadline")

    previous = signal.signal(signal.SIGUSR1, handler)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGUSR1))
    url = server.url(mode, key=unique())
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(TimeoutError, match="the caller's own deadline"), client(url, timeout=20) as slow:
            lookup_images(client=slow)
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
    assert time.monotonic() - started < 3
    assert server.requests(mode) >= 1 and slow.requests_sent == 1
