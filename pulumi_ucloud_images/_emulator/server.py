"""How the emulator's answers travel: over HTTP on loopback, or in process with no socket at all.

Both carry what :meth:`~pulumi_ucloud_images._emulator.service.Emulator.handle` answers, so every check, fault and
page is the same.
The HTTP side is a real HTTP/1.1 server (keep-alive, ``Content-Length``) with its own bounds: a request body
of at most ``MAX_REQUEST_BYTES``, at most ``max_connections`` connections served at once, and every request
it cannot read answered with the RetCode envelope, never with a traceback. By default each answer goes out in
one send, with ``TCP_NODELAY``, from a listen backlog of 128, as an API gateway answers; its strict mode writes
headers and body in two sends without ``TCP_NODELAY`` and listens with a backlog of 5, as Python's
``http.server`` does.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, cast
from urllib.parse import urlencode

__all__ = [
    "HTTP_REASONS", "MAX_REQUEST_BYTES", "REQUEST_ID_HEADER", "STRICT_BACKLOG", "Answer", "InProcessTransport",
    "Server", "dumps",
]

MAX_REQUEST_BYTES = 1024 * 1024
STRICT_BACKLOG = 5  # socketserver's default listen backlog
_DRAIN_BYTES = 1024 * 1024 * 1024
REQUEST_ID_HEADER = "X-UCLOUD-REQUEST-UUID"
HTTP_REASONS = {400: "Bad Request", 413: "Content Too Large", 429: "Too Many Requests",
                 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    ret_code: int | None = None
    drop: bool = False
    fault: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class AnswerSource(Protocol):
    """What carrying an emulator's answers needs of it (the emulator module imports this one, not the reverse)."""

    strict: bool

    def handle(
        self, method: str, target: str, content_type: str, body: bytes, *, wait: Callable[[float], None] = ...
    ) -> Answer: ...


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs from a parallel client, which then waits a second
    emulator: AnswerSource
    strict = False

    def __init__(self, address: tuple[str, int], emulator: AnswerSource, max_connections: int) -> None:
        self.emulator = emulator
        self.strict = emulator.strict
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.stopping = threading.Event()
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, _Handler)

    def server_activate(self) -> None:
        """Listen with a backlog of 128, or http.server's 5 in strict mode."""
        self.socket.listen(STRICT_BACKLOG if self.strict else self.request_queue_size)

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per connection, at most ``max_connections`` at once: the next waits in the listen queue."""
        while not self._slots.acquire(timeout=0.1):
            if self.stopping.is_set():
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up mid-answer (a timed-out test, a benchmark) is routine, not a traceback."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Shut idle keep-alive connections so their handler threads end with the server."""
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ucloud-images-emulator"
    timeout = 120  # idle keep-alive connections are closed after this many seconds

    def setup(self) -> None:
        super().setup()
        server = cast(Server, self.server)
        if not server.strict:
            # Headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms per answer
            # (the strict mode leaves it so, as Python's http.server does, and a client has to cope).
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with server.connections_lock:
            server.connections.add(self.connection)

    def finish(self) -> None:
        server = cast(Server, self.server)
        with server.connections_lock:
            server.connections.discard(self.connection)
        with contextlib.suppress(OSError):  # the client may have gone already
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log is :attr:`Emulator.requests`, and a line could carry a key."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What http.server answers in HTML (a request line that is not HTTP, too many headers, an unknown
        method) is answered in the API's envelope, RetCode 230, and the connection closed."""
        reason = message or self.responses.get(code, ("Bad request",))[0]
        self._refuse(230, f"Bad request: {reason}", status=code)

    def _refuse(self, ret_code: int, message: str, *, status: int = 200) -> None:
        """Answer a request that cannot be read with the RetCode envelope, then close the connection."""
        body = dumps({"RetCode": ret_code, "Message": message})
        self.close_connection = True
        if not self.request_version.startswith("HTTP/1."):
            self.request_version = "HTTP/1.1"  # a request line that is not HTTP still gets status and headers
        with contextlib.suppress(OSError):
            self.send_response(status, HTTP_REASONS.get(status))
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.send_header(REQUEST_ID_HEADER, str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._serve("GET", b"")

    def _read_body(self) -> bytes | None:
        """The request body, at most MAX_REQUEST_BYTES; ``None`` once a refusal has been answered."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        declared = self.headers.get("Content-Length") or "0"
        if not declared.strip().isdigit():
            self._refuse(230, "Bad Content-Length", status=400)
            return None
        length = int(declared)
        if length > MAX_REQUEST_BYTES:
            if length <= _DRAIN_BYTES:
                self._drain(length)
            self._refuse(230, f"Request body too large: at most {MAX_REQUEST_BYTES} bytes", status=413)
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _drain(self, length: int) -> None:
        with contextlib.suppress(OSError):
            while length > 0:
                piece = self.rfile.read(min(length, 65536))
                if not piece:
                    return
                length -= len(piece)

    def _read_chunked(self) -> bytes | None:
        body = bytearray()
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self._refuse(230, "Bad chunked body", status=400)
                return None
            if size == 0:
                for _ in range(100):  # trailers, up to the blank line
                    if self.rfile.readline(65537) in (b"\r\n", b"\n", b""):
                        break
                return bytes(body)
            if len(body) + size > MAX_REQUEST_BYTES:
                self._refuse(230, f"Request body too large: at most {MAX_REQUEST_BYTES} bytes", status=413)
                return None
            body += self.rfile.read(size)
            self.rfile.readline(3)

    def do_POST(self) -> None:
        raw = self._read_body()
        if raw is None:
            return
        self._serve("POST", raw)

    def _serve(self, method: str, body: bytes) -> None:
        emulator = cast(Server, self.server).emulator
        answer = emulator.handle(method, self.path, self.headers.get("Content-Type", ""), body)
        if answer.drop:
            self.close_connection = True
            return
        strict = cast(Server, self.server).strict
        socket_writer = self.wfile
        if not strict:  # one send per answer, as a gateway sends it: headers and body gathered first
            self.wfile = io.BytesIO()
        try:
            self.send_response(answer.status, HTTP_REASONS.get(answer.status))
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.body)
        finally:
            if not strict:
                gathered, self.wfile = self.wfile, socket_writer
                socket_writer.write(cast(io.BytesIO, gathered).getvalue())


class _Headers(Mapping[str, str]):
    """An answer's headers, looked up case-insensitively as HTTP headers are."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = {name.lower(): (name, value) for name, value in headers.items()}

    def __getitem__(self, name: str) -> str:
        return self._headers[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._headers.values())

    def __len__(self) -> int:
        return len(self._headers)


class _InProcessResponse:
    __slots__ = ("_body", "headers", "length", "status")

    def __init__(self, answer: Answer) -> None:
        self.status = answer.status
        self.length: int | None = len(answer.body)
        self.headers = _Headers({
            "Content-Type": answer.content_type, "Content-Length": str(len(answer.body)), **answer.headers,
        })
        self._body = io.BytesIO(answer.body)

    def read(self, size: int) -> bytes:
        return self._body.read(size)

    def close(self) -> None:
        self._body.close()


class InProcessTransport:
    """Sends each signed form straight to :meth:`Emulator.handle`: the emulator's answers without a socket.

    A dropped connection (the ``drop`` fault) raises what a dropped HTTP connection raises. Time passes as it
    would over HTTP: latency and the ``slow`` fault are waited only until the request's deadline, which then
    is a timeout (the emulator still logs the request, as a server would), and :meth:`close` cuts off every
    wait in flight.
    """

    def __init__(self, emulator: AnswerSource) -> None:
        self.emulator = emulator
        self._closing = threading.Event()  # replaced on close(): waits in flight stop, later requests proceed

    def send(self, url: str, form: Mapping[str, str], timeout: float) -> _InProcessResponse:
        deadline, closing, late = time.monotonic() + timeout, self._closing, False

        def wait(seconds: float) -> None:
            nonlocal late
            left = deadline - time.monotonic()
            late = late or seconds > left
            if closing.wait(max(0.0, min(seconds, left))):
                raise ConnectionAbortedError("the request was cut off: its client was closed")

        answer = self.emulator.handle(
            "POST", url, "application/x-www-form-urlencoded", urlencode(form).encode(), wait=wait
        )
        if answer.drop:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        if late or time.monotonic() > deadline:
            raise TimeoutError(f"the emulator did not answer within {timeout:g} s")
        return _InProcessResponse(answer)

    def close(self) -> None:
        """Cut off every request waiting in flight; the transport may be used again."""
        closing, self._closing = self._closing, threading.Event()
        closing.set()


