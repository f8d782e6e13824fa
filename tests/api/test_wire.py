"""The default transport (requests, urllib3, http.client) against answers that are odd or broken on the wire.

A raw-socket server on 127.0.0.1 answers each request with the bytes of one scenario (named by the request
path), so every framing fault can be sent exactly: an oversized or malformed status line or header, a
Content-Length or a chunked body that disagrees with the bytes sent, a connection closed mid-body, a
keep-alive connection closed between requests. Each outcome is the error type and sentence a lookup gives
(or the images it lists): what urllib3 and http.client make of the answer, in one sentence, never a traceback.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from pulumi_ucloud_images import Client, RetryPolicy, Settings, UCloudImagesError
from tests.api.hostile_server import image, page_body

pytestmark = pytest.mark.timeout(60)

ONCE = RetryPolicy(attempts=1, total_seconds=10)
PAGE = page_body([image("uimage-wire01"), image("uimage-wire02")])
OK = ["uimage-wire01", "uimage-wire02"]


def _answer(status: str, headers: list[str], body: bytes = b"") -> bytes:
    return ("\r\n".join([status, *headers]) + "\r\n\r\n").encode("latin-1") + body


def _raw_deflate(body: bytes) -> bytes:
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return raw.compress(body) + raw.flush()


def _chunked(body: bytes, size: int = 7) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[at:at + size]), body[at:at + size]) for at in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


CL = f"Content-Length: {len(PAGE)}"
JSON = "Content-Type: application/json"
GZIP_CRLF = gzip.compress(PAGE) + b"\r\n"
RAW_DEFLATE = _raw_deflate(PAGE)
# What each scenario sends for a request, then whether the server closes the connection after it. A
# FIRST_BYTE_APART answer is sent as its head and first body byte, then (after a pause) the rest.
FIRST_BYTE_APART = {"raw-deflate-first-read-1-byte"}
SCENARIOS: dict[str, tuple[bytes, bool]] = {
    "ok": (_answer("HTTP/1.1 200 OK", [JSON, CL], PAGE), False),
    "chunked": (_answer("HTTP/1.1 200 OK", [JSON, "Transfer-Encoding: chunked"], _chunked(PAGE)), False),
    "gzip-chunked": (_answer("HTTP/1.1 200 OK", [JSON, "Transfer-Encoding: chunked", "Content-Encoding: gzip"],
                             _chunked(gzip.compress(PAGE), 50)), False),
    "deflate": (_answer("HTTP/1.1 200 OK", [JSON, "Content-Encoding: deflate",
                                            f"Content-Length: {len(zlib.compress(PAGE))}"], zlib.compress(PAGE)),
                False),
    "until-close": (_answer("HTTP/1.1 200 OK", [JSON], PAGE), True),
    "http10": (_answer("HTTP/1.0 200 OK", [JSON, CL], PAGE), True),
    "connection-close": (_answer("HTTP/1.1 200 OK", [JSON, CL, "Connection: close"], PAGE), True),
    "continue": (b"HTTP/1.1 100 Continue\r\n\r\n" + _answer("HTTP/1.1 200 OK", [JSON, CL], PAGE), False),
    "folded": (_answer("HTTP/1.1 200 OK", [JSON, "X-UCLOUD-REQUEST-UUID: wire", " folded", CL], PAGE), False),
    "no-reason": (_answer("HTTP/1.1 200", [JSON, CL], PAGE), False),
    "chunked-and-length": (_answer("HTTP/1.1 200 OK", [JSON, "Content-Length: 5", "Transfer-Encoding: chunked"],
                                   _chunked(PAGE)), False),
    # refused
    "closed-at-once": (b"", True),
    "not-http": (b"HELLO THERE\r\n\r\n", True),
    "bad-status-code": (_answer("HTTP/1.1 2x0 OK", [JSON, CL], PAGE), True),
    "long-status-line": (b"HTTP/1.1 200 " + b"O" * 70_000 + b"\r\n\r\n", True),
    "long-header": (_answer("HTTP/1.1 200 OK", ["X-Pad: " + "p" * 70_000, CL], PAGE), True),
    "many-headers": (_answer("HTTP/1.1 200 OK", [f"X-Pad-{n}: p" for n in range(101)] + [CL], PAGE), True),
    "header-without-colon": (_answer("HTTP/1.1 200 OK", [JSON, "no colon here", CL], PAGE), True),
    "headers-cut": (b"HTTP/1.1 200 OK\r\nContent-Type: appl", True),
    "short-body": (_answer("HTTP/1.1 200 OK", [JSON, CL], PAGE[:40]), True),
    "long-body": (_answer("HTTP/1.1 200 OK", [JSON, "Content-Length: 40"], PAGE), True),
    "bad-length": (_answer("HTTP/1.1 200 OK", [JSON, "Content-Length: forty"], PAGE), True),
    "negative-length": (_answer("HTTP/1.1 200 OK", [JSON, "Content-Length: -5"], PAGE), True),
    "two-lengths": (_answer("HTTP/1.1 200 OK", [JSON, CL, "Content-Length: 40"], PAGE), True),
    "chunk-size-not-hex": (_answer("HTTP/1.1 200 OK", [JSON, "Transfer-Encoding: chunked"], b"zz\r\n" + PAGE),
                           True),
    "chunk-cut": (_answer("HTTP/1.1 200 OK", [JSON, "Transfer-Encoding: chunked"],
                          b"%x\r\n" % len(PAGE) + PAGE[:40]), True),
    "chunk-longer-than-said": (_answer("HTTP/1.1 200 OK", [JSON, "Transfer-Encoding: chunked"],
                                       b"10\r\n" + PAGE + b"\r\n0\r\n\r\n"), True),
    "no-last-chunk": (_answer("HTTP/1.1 200 OK", [JSON, "Transfer-Encoding: chunked"], _chunked(PAGE)[:-5]), True),
    "trailing-bytes": (_answer("HTTP/1.1 200 OK", [JSON, CL], PAGE) + b"HTTP/1.1 200 OK\r\n", False),
    # odd heads and bodies seen by hand: each ends as urllib3 and http.client make it end, in one sentence
    "length-superscript": (_answer("HTTP/1.1 200 OK", [JSON, "Content-Length: \u00b2"], PAGE), True),
    "length-5000-digits": (_answer("HTTP/1.1 200 OK", [JSON, "Content-Length: " + "9" * 5000], PAGE), True),
    "status-superscript": ("HTTP/1.1 \u00b2\u00b2\u00b2 OK\r\n".encode() + _answer("", [JSON, CL], PAGE)[2:], True),
    "two-chunked": (_answer("HTTP/1.1 200 OK", [JSON, "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
                            _chunked(PAGE)), False),
    "length-plus": (_answer("HTTP/1.1 200 OK", [JSON, f"Content-Length: +{len(PAGE)}"], PAGE), False),
    "raw-deflate-first-read-1-byte": (_answer("HTTP/1.1 200 OK", [JSON, "Content-Encoding: deflate",
                                                                 f"Content-Length: {len(RAW_DEFLATE)}"],
                                              RAW_DEFLATE), False),
    "gzip-then-crlf": (_answer("HTTP/1.1 200 OK", [JSON, "Content-Encoding: gzip",
                                                  f"Content-Length: {len(GZIP_CRLF)}"], GZIP_CRLF), False),
    "first-header-starts-with-space": (_answer("HTTP/1.1 200 OK", [" X-Odd: 1", JSON, CL], PAGE), False),
    "status-000": (_answer("HTTP/1.1 000 OK", [JSON, CL], PAGE), True),
    "status-099": (_answer("HTTP/1.1 099 OK", [JSON, CL], PAGE), True),
    "length-space-before-colon": (_answer("HTTP/1.1 200 OK", [JSON, f"Content-Length : {len(PAGE)}"], PAGE), True),
    "huge-chunk-size": (_answer("HTTP/1.1 200 OK", [JSON, "Transfer-Encoding: chunked"], b"f" * 70_000 + b"\r\n"),
                        True),
}


class WireServer:
    """Answers each request on a connection with the bytes of the scenario its path names."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests = 0
        self.close_after: set[int] = set()  # the n-th request (1-based) whose connection is closed after it
        self.closed = threading.Semaphore(0)  # released each time the server has closed a connection
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, scenario: str) -> str:
        return f"http://127.0.0.1:{self.port}/{scenario}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(sock,), daemon=True).start()

    def _handle(self, sock: socket.socket) -> None:
        sock.settimeout(10)
        reader = sock.makefile("rb")
        with sock, reader:
            while True:
                try:
                    line = reader.readline(65537)
                    if not line:
                        return
                    length = 0
                    while (header := reader.readline(65537)) not in (b"\r\n", b""):
                        name, _, value = header.decode("latin-1").partition(":")
                        if name.strip().lower() == "content-length":
                            length = int(value)
                    reader.read(length)
                    self.requests += 1
                    name = line.split()[1].decode().strip("/")
                    data, close = SCENARIOS[name]
                    if name in FIRST_BYTE_APART:
                        split = data.index(b"\r\n\r\n") + 5
                        sock.sendall(data[:split])
                        time.sleep(0.2)
                        data = data[split:]
                    sock.sendall(data)
                except OSError:
                    return
                if close or self.requests in self.close_after:
                    with_shutdown(sock)
                    sock.close()
                    self.closed.release()
                    return

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


def with_shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture(scope="module")
def wire() -> Iterator[WireServer]:
    server = WireServer()
    yield server
    server.close()


def settings(url: str) -> Settings:
    return Settings(public_key="pk-wire", private_key=SecretStr("sk-wire"), region="cn-bj2", base_url=url,
                    timeout=5)


def outcome(url: str, lookups: int = 1) -> Any:
    """The image IDs listed, or ``(error type, sentence without the time it took)``."""
    try:
        with Client(settings(url), retry=ONCE) as client:
            for _ in range(lookups):
                listed = [record.image_id for record in client.list_records({"Action": "DescribeImage"})]
                client.clear_memo()
    except UCloudImagesError as error:
        return type(error).__name__, re.sub(r" in [0-9.]+ s", "", str(error)).replace(url, "URL")
    return listed


def _messages() -> dict[str, Any]:
    server = WireServer()
    try:
        return {name: outcome(server.url(name)) for name in SCENARIOS}
    finally:
        server.close()


if __name__ == "__main__":  # prints every outcome: how the expectations below were read off
    for name, seen in _messages().items():
        print(f"{name!r}: {seen!r},")


def _refused(kind: str, words: str) -> tuple[str, str]:
    return kind, f"UCloud API DescribeImage at URL {words}. Gave up after 1 attempt(s)."


NOT_HTTP = _refused("TransportError", "answered with a status line that is not HTTP")


def _too_long(what: str) -> tuple[str, str]:
    return _refused("TransportError", f"answered with a line too long (got more than 65536 bytes when reading {what})")


EXPECTED: dict[str, Any] = {
    **{name: OK for name in ("ok", "chunked", "gzip-chunked", "deflate", "until-close", "http10",
                             "connection-close", "continue", "folded", "no-reason", "chunked-and-length",
                             "bad-length", "negative-length", "trailing-bytes", "header-without-colon",
                             "length-superscript", "length-5000-digits", "two-chunked", "length-plus",
                             "raw-deflate-first-read-1-byte", "gzip-then-crlf", "first-header-starts-with-space",
                             "length-space-before-colon")},
    "closed-at-once": _refused("TransportError", "closed the connection without answering (connection reset)"),
    "not-http": NOT_HTTP,
    "bad-status-code": NOT_HTTP,
    "status-superscript": NOT_HTTP,
    "status-000": NOT_HTTP,
    "status-099": NOT_HTTP,
    "long-status-line": _too_long("status line"),
    "long-header": _too_long("header line"),
    "many-headers": _refused("TransportError", "answered with too many headers"),
    "headers-cut": ("ResponseFormatError", "UCloud API DescribeImage answered HTTP 200 with a body that is not JSON "
                                           "(request id unknown). Gave up after 1 attempt(s)."),
    "short-body": _refused("TransportError", "broke off its answer after 40 bytes of the body (connection closed "
                                             "mid-answer)"),
    "long-body": ("ResponseFormatError", "UCloud API DescribeImage answered HTTP 200 with a body that is not JSON "
                                         "(request id unknown). Gave up after 1 attempt(s)."),
    "two-lengths": _refused("TransportError", "answered with headers that disagree (Content-Length contained "
                                              f"multiple unmatching values ({len(PAGE)}, 40))"),
    "chunk-size-not-hex": _refused("TransportError", "broke off its answer after 0 bytes of the body (connection "
                                                     "closed mid-answer)"),
    "chunk-cut": _refused("TransportError", "broke off its answer after 40 bytes of the body (connection closed "
                                            "mid-answer)"),
    "chunk-longer-than-said": _refused("TransportError", "broke off its answer after 16 bytes of the body "
                                                         "(connection closed mid-answer)"),
    "no-last-chunk": _refused("TransportError", f"broke off its answer after {len(PAGE)} bytes of the body "
                                                "(connection closed mid-answer)"),
    "huge-chunk-size": _too_long("chunk size"),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_each_answer_is_read_or_refused_in_one_sentence(wire: WireServer, scenario: str) -> None:
    assert outcome(wire.url(scenario)) == EXPECTED[scenario]


def test_every_scenario_has_an_expectation() -> None:
    assert set(EXPECTED) == set(SCENARIOS)


def connections_for(scenario: str, lookups: int, close_after: set[int] | None = None) -> tuple[Any, int, int]:
    server = WireServer()
    server.close_after = close_after or set()
    try:
        listed = outcome(server.url(scenario), lookups)
        return listed, server.connections, server.requests
    finally:
        server.close()


def test_a_keep_alive_connection_is_reused() -> None:
    assert connections_for("ok", 3) == (OK, 1, 3)
    assert connections_for("chunked", 3) == (OK, 1, 3)


@pytest.mark.parametrize("scenario", ["until-close", "http10", "connection-close"])
def test_a_connection_the_answer_did_not_leave_clean_is_not_reused(scenario: str) -> None:
    assert connections_for(scenario, 3) == (OK, 3, 3)


def test_a_keep_alive_connection_the_server_closed_before_reuse_is_replaced() -> None:
    """The server says keep-alive, then closes the connection once idle: the next request gets a new one."""
    server = WireServer()
    server.close_after = {1, 2}
    try:
        with Client(settings(server.url("ok")), retry=ONCE) as client:
            for _ in range(3):
                assert [record.image_id for record in client.list_records({"Action": "DescribeImage"})] == OK
                client.clear_memo()
                if server.requests < 3:
                    assert server.closed.acquire(timeout=5)  # closed: its FIN is on the way
        assert (server.connections, server.requests) == (3, 3)
    finally:
        server.close()


def test_a_stalled_body_is_cut_off_at_the_deadline_by_the_reader_too() -> None:
    """Half a Content-Length body, then silence: the read waits no longer than the deadline."""
    stall = _answer("HTTP/1.1 200 OK", [JSON, CL], PAGE[:40])
    SCENARIOS["stall-body"] = (stall, False)
    try:
        with Client(settings(WireServer().url("stall-body")).model_copy(update={"timeout": 0.5}),
                    retry=ONCE) as client, pytest.raises(UCloudImagesError, match="its body stalled or trickled"):
            client.list_records({"Action": "DescribeImage"})
    finally:
        del SCENARIOS["stall-body"]
