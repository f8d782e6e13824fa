"""The transport seam: a lookup against the emulator in-process, with no socket, sees what it sees over HTTP."""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pulumi_ucloud_images import (
    APIError,
    Client,
    InconsistentListingError,
    ResponseTimeoutError,
    RetryPolicy,
    Settings,
    TransportError,
    lookup_images,
)
from pulumi_ucloud_images._emulator.catalog import synthetic_catalog
from pulumi_ucloud_images.testing import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, DEMO_REGION, Emulator

NO_SLEEP = RetryPolicy(attempts=4, sleep=lambda seconds: None)
QUERY: dict[str, Any] = {"os_type": "linux", "name_regex": r"^Ubuntu", "architecture": "x86_64", "most_recent": True}
LISTING = {"Action": "DescribeImage", "Region": DEMO_REGION}
NOWHERE = "http://emulator.invalid"  # never contacted by the in-process transport


def settings(base_url: str = NOWHERE, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"public_key": DEMO_PUBLIC_KEY, "private_key": SecretStr(DEMO_PRIVATE_KEY),
                              "region": DEMO_REGION, "base_url": base_url, "timeout": 5.0, **overrides}
    return Settings(**values)


def refuse_sockets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails any socket made from now on, and records the attempt (should the failure be swallowed)."""
    attempts: list[str] = []

    class Refused(socket.socket):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            attempts.append(repr(args))
            raise AssertionError("the in-process transport opened a socket")

    monkeypatch.setattr(socket, "socket", Refused)
    return attempts


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return refuse_sockets(monkeypatch)


def in_process(emulator: Emulator, **client: Any) -> Client:
    return Client(settings(), transport=emulator.transport(), retry=client.pop("retry", NO_SLEEP), **client)


def test_a_lookup_in_process_gives_the_same_answer_as_over_http() -> None:
    catalog = synthetic_catalog(DEMO_REGION, 2_500, seed=7)
    with Emulator(catalog, max_limit=100) as emulator:
        with Client(settings(emulator.base_url), retry=NO_SLEEP) as client:
            over_http = lookup_images(client=client, **QUERY)
            listed_over_http = client.describe_images(LISTING)
        pages_over_http = [request.params for request in emulator.requests]
        emulator.reset_requests()
        with in_process(emulator) as client:
            local = lookup_images(client=client, **QUERY)
            listed_locally = client.describe_images(LISTING)
        assert local == over_http and listed_locally == listed_over_http and len(listed_locally) == 2_500
        # The same paging: per listing a first page, then 24 at the server's cap of 100, with the same forms.
        assert len(pages_over_http) == 2 * 25
        assert sorted(map(sorted, (r.params.items() for r in emulator.requests))) == sorted(
            map(sorted, (params.items() for params in pages_over_http)))


def test_the_in_process_transport_opens_no_socket_and_needs_no_server(no_sockets: list[str]) -> None:
    emulator = Emulator()  # never started
    with in_process(emulator) as client:
        result = lookup_images(client=client, **QUERY)
    assert result.image_id == "uimage-ub2205" and no_sockets == []
    assert emulator.request_count == 1 and emulator.requests[0].method == "POST"
    with pytest.raises(RuntimeError, match="not running"):
        emulator.base_url  # noqa: B018 - no server was started for any of it


def test_the_socket_guard_does_stop_a_lookup_over_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard is real: with it on, the same lookup over HTTP gets no socket."""
    with Emulator() as emulator:
        attempts = refuse_sockets(monkeypatch)
        with Client(settings(emulator.base_url), retry=RetryPolicy(attempts=1)) as client, \
                pytest.raises(AssertionError, match="opened a socket"):
            client.describe_images(LISTING)
        monkeypatch.undo()
    assert attempts and emulator.request_count == 0


def test_the_emulator_checks_the_signature_in_process_too(no_sockets: list[str]) -> None:
    with Client(settings(private_key=SecretStr("not-the-demo-key")), transport=Emulator().transport(),
                retry=NO_SLEEP) as client, pytest.raises(APIError) as caught:
        client.describe_images(LISTING)
    assert caught.value.ret_code == 171 and client.requests_sent == 1  # final: not retried


@pytest.mark.parametrize(
    ("kind", "value"),
    [("ret_code", 153), ("ret_code", 150), ("http_status", 503), ("http_status", 429), ("malformed", None),
     ("drop", None)],
)
@pytest.mark.parametrize("after", [0, 2], ids=["first page", "a later page"])
def test_injected_faults_are_met_and_retried_in_process_as_over_http(
    no_sockets: list[str], kind: str, value: Any, after: int
) -> None:
    catalog = synthetic_catalog(DEMO_REGION, 500, seed=3)
    emulator = Emulator(catalog, max_limit=100)
    expected = [record["ImageId"] for record in emulator.images(DEMO_REGION)]
    emulator.inject(kind, value=value, times=2, after=after)
    retry = RetryPolicy(attempts=4, sleep=lambda seconds: None, throttle_base_delay=0, throttle_max_delay=0)
    with in_process(emulator, retry=retry) as client:
        assert [image.image_id for image in client.describe_images(LISTING)] == expected
        assert client.requests_sent == 5 + 2  # each fault cost exactly one more request
    assert [request.fault for request in emulator.requests].count(kind) == 2


def test_a_fault_that_outlasts_the_attempts_fails_with_the_over_http_message() -> None:
    emulator = Emulator()
    emulator.inject("http_status", value=502, times=10)
    with in_process(emulator) as client, pytest.raises(TransportError) as caught:
        client.describe_images(LISTING)
    assert str(caught.value).startswith(f"UCloud API DescribeImage answered HTTP 502 (request id "
                                        f"{emulator.requests[-1].request_id}).")
    assert "Gave up after 4 attempt(s)" in str(caught.value) and emulator.request_count == 4


def test_a_dropped_connection_in_process_reads_as_one_over_http() -> None:
    emulator = Emulator()
    emulator.inject("drop", times=10)
    with in_process(emulator) as client, pytest.raises(TransportError) as caught:
        client.describe_images(LISTING)
    assert str(caught.value).startswith(f"UCloud API DescribeImage at {NOWHERE} closed the connection without "
                                        "answering. Gave up after 4 attempt(s)")


def test_an_answer_slower_than_the_timeout_is_a_timeout_in_process() -> None:
    emulator = Emulator()
    emulator.inject("slow", value=0.3, times=1)
    with Client(settings(timeout=0.1), transport=emulator.transport(), retry=NO_SLEEP) as client:
        assert len(client.describe_images(LISTING)) > 0 and client.requests_sent == 2  # the slow one, retried


def test_the_deadline_and_the_time_budget_bound_an_in_process_lookup_as_over_http() -> None:
    import threading
    import time

    emulator = Emulator()
    emulator.inject("slow", value=30.0, times=100)  # every answer would take half a minute
    started = time.monotonic()
    with Client(settings(timeout=0.2), transport=emulator.transport(), retry=NO_SLEEP) as client, \
            pytest.raises(ResponseTimeoutError):
        client.describe_images(LISTING)
    assert time.monotonic() - started < 10  # four tries of 0.2 s, not four of 30 s
    assert emulator.request_count == 4  # each try reached the emulator and was logged, as a server logs it
    budget = RetryPolicy(attempts=100, total_seconds=0.5, sleep=lambda seconds: None)
    started = time.monotonic()
    with Client(settings(timeout=5), transport=emulator.transport(), retry=budget) as client, \
            pytest.raises(TransportError):
        client.describe_images(LISTING)
    assert time.monotonic() - started < 10  # the budget, not 100 tries of 5 s
    client = Client(settings(timeout=60), transport=emulator.transport(), retry=NO_SLEEP)
    failed: list[BaseException] = []

    def look() -> None:
        try:
            client.describe_images(LISTING)
        except BaseException as exc:  # what the lookup raised is the test's answer
            failed.append(exc)

    worker = threading.Thread(target=look)
    started = time.monotonic()
    worker.start()
    time.sleep(0.3)
    client.close()  # cuts the waiting answer off
    worker.join(timeout=20)
    assert not worker.is_alive() and time.monotonic() - started < 10
    assert failed and isinstance(failed[0], TransportError)


def test_a_listing_that_never_settles_in_process_is_an_inconsistent_listing_error() -> None:
    emulator = Emulator()
    emulator.inject("empty_page", times=3)
    with in_process(emulator) as client, pytest.raises(InconsistentListingError, match="in 3 reads"):
        client.describe_images(LISTING)


def test_a_transport_is_given_instead_of_a_session_not_with_one() -> None:
    import requests

    with pytest.raises(ValueError, match="a session or a transport, not both"):
        Client(settings(), session=requests.Session(), transport=Emulator().transport())


class Recording:
    """A transport of the test's own: what the seam hands it is a signed form, a URL and a timeout."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.closed = inner, 0
        self.sent: list[tuple[str, dict[str, str], float]] = []

    def send(self, url: str, form: Mapping[str, str], timeout: float) -> Any:
        self.sent.append((url, dict(form), timeout))
        return self.inner.send(url, form, timeout)

    def close(self) -> None:
        self.closed += 1


def test_any_object_with_send_and_close_is_a_transport() -> None:
    recording = Recording(Emulator().transport())
    client = Client(settings(timeout=4.0), transport=recording, retry=NO_SLEEP)
    with client:
        client.call(LISTING)
    ((url, form, timeout),) = recording.sent
    assert url == NOWHERE and timeout == 4.0 and recording.closed == 1
    assert form["PublicKey"] == DEMO_PUBLIC_KEY and len(form["Signature"]) == 40
    assert DEMO_PRIVATE_KEY not in str(form)


def test_the_readme_snippet_runs_in_process(capsys: pytest.CaptureFixture[str], no_sockets: list[str]) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    (snippet,) = [block for block in re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
                  if "transport=Emulator().transport()" in block]
    assert "from pulumi_ucloud_images._" not in snippet  # a public import only
    exec(compile(snippet, "README.md", "exec"), {})
    assert capsys.readouterr().out == "uimage-f1chxn\n" and no_sockets == []
