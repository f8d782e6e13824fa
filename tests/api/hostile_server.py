"""A hostile (or just broken) DescribeImage server on loopback, for the bounds tests and benchmarks/hostile.py.

One raw-socket server answers every mode; the mode is the first segment of the request path and its options
are the query string, so a base URL such as ``http://127.0.0.1:PORT/trickle-body?interval=1`` picks both.
It never verifies a signature: it only moves bytes the way a hostile server would.

Modes (``size`` in MiB unless said otherwise):

- ``ok``: a valid page of ``images`` (default 3) images; ``name`` names the first one; ``ignore_limit=1``
  answers them all whatever the ``Limit``.
- ``trickle-body``: valid status line and headers, then the body one byte per ``interval`` seconds.
- ``trickle-headers``: the status line and headers (then the body) one byte per ``interval`` seconds.
- ``stall``: reads the request and never answers.
- ``stall-body``: the headers and half of the body, then nothing.
- ``stall-later``: the first page of a ``total``-image listing (see ``fake-total``); later pages hang.
- ``redirect``: HTTP ``code`` (301/302/303/307/308) with ``Location: target``.
- ``capture``: records every request it gets (the other origin of a redirect), answers a valid page.
- ``gzip``: ``Content-Encoding: gzip`` that inflates to ``size`` MiB of JSON whitespace then a valid page.
- ``huge``: a valid page padded to ``size`` MiB, sent at once (``chunked=1``: without a Content-Length).
- ``junk``: ``size`` MiB of ``[{},{},...]`` in an extra key of a valid page: cheap bytes, costly to parse.
- ``fake-total``: ``TotalCount`` = ``total`` (default 9,999,999) and full pages of new images; ``dup=1``: one
  new image per page, the rest repeats.
- ``status``: HTTP ``code`` for the first ``times`` requests to this URL (``Retry-After: retry_after`` when
  given), then a valid page.
- ``retcode``: RetCode ``code`` (default 153) for the first ``times`` requests to this URL, or for the first
  ``seconds`` after its first request; ``retry_after`` adds the header; then a valid page.
- ``sequence``: answers ``seq`` in turn (``153``, ``502``, ``ok``, ...), then valid pages.
- ``utf8``: HTTP 200, a JSON body whose Message is not UTF-8.
- ``nested``: HTTP 200, ``depth`` nested JSON arrays.
- ``html``: HTTP ``code`` (default 404) with an HTML page.

Every connection is bounded: no mode holds one longer than ``hold`` seconds (default 120), and ``stop()``
ends them all.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

REQUEST_ID_HEADER = "X-UCLOUD-REQUEST-UUID"
MIB = 1024 * 1024
_MAX_REQUEST_BODY = 16 * MIB


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def mode(self) -> str:
        return urlsplit(self.target).path.strip("/").split("/")[0] or "ok"

    @property
    def options(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query))

    @property
    def form(self) -> dict[str, str]:
        try:
            return dict(parse_qsl(self.body.decode("utf-8", "replace")))
        except ValueError:
            return {}


def image(image_id: str, name: str = "", created: int = 1_700_000_000) -> dict[str, Any]:
    return {"ImageId": image_id, "ImageName": name or f"Hostile {image_id}", "State": "Available",
            "CreateTime": created, "ImageType": "Base", "OsType": "Linux", "Zone": "cn-bj2-02",
            "OsName": "Hostile OS", "Features": ["CloudInit"]}


def page_body(images: list[dict[str, Any]], total: int | None = None, **extra: Any) -> bytes:
    payload = {"RetCode": 0, "Action": "DescribeImageResponse",
               "TotalCount": len(images) if total is None else total, "ImageSet": images, **extra}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def head(status: int, headers: dict[str, str], length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 303: "See Other", 307: "Temporary Redirect",
            308: "Permanent Redirect", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class _State:
    counts: Counter[str] = field(default_factory=Counter)
    first_seen: dict[str, float] = field(default_factory=dict)
    captured: list[Request] = field(default_factory=list)
    gzip_cache: dict[int, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _NotHTTP(Exception):
    """The request line is not HTTP."""


class _Closed(Exception):
    """The server is stopping or the hold time is over: end the connection."""


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    hostile: HostileServer


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        assert isinstance(self.server, _TCPServer)
        server = self.server.hostile
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server._track(sock, True)
        try:
            reader = sock.makefile("rb")
            started = time.monotonic()
            while not server.stopping.is_set():
                sock.settimeout(max(0.1, server.hold - (time.monotonic() - started)))
                request = _read_request(reader)
                if request is None:
                    return
                if not server._answer(sock, request, started):
                    return
        except _NotHTTP:
            with contextlib.suppress(OSError):
                sock.sendall(head(400, {"Content-Type": "text/plain", "Connection": "close"}, 12) + b"Bad request\n")
            return
        except (OSError, _Closed, ValueError):
            return
        finally:
            server._track(sock, False)
            with contextlib.suppress(OSError):
                sock.close()


def _read_request(reader: Any) -> Request | None:
    line = reader.readline(65537)
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise _NotHTTP  # a TLS hello to this plain port, say: answered as plain HTTP servers do
    headers: dict[str, str] = {}
    for _ in range(200):
        header = reader.readline(65537)
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = min(int(headers.get("content-length") or 0), _MAX_REQUEST_BODY)
    body = reader.read(length) if length else b""
    return Request(parts[0], parts[1], headers, body)


class HostileServer:
    """The server; use as a context manager. ``url(mode, **options)`` is a base URL for a client."""

    def __init__(self, *, hold: float = 120.0) -> None:
        self.hold = hold
        self.stopping = threading.Event()
        self._state = _State()
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> HostileServer:
        server = _TCPServer(("127.0.0.1", 0), _Handler)
        server.hostile = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not running"
        return int(self._server.server_address[1])

    def url(self, mode: str = "ok", **options: Any) -> str:
        query = urlencode({key: value for key, value in options.items() if value is not None})
        return f"http://127.0.0.1:{self.port}/{mode}{'?' + query if query else ''}"

    def requests(self, mode: str | None = None) -> int:
        """How many requests were answered (of one mode)."""
        with self._state.lock:
            counts = self._state.counts
            return sum(counts.values()) if mode is None else sum(n for t, n in counts.items() if _mode(t) == mode)

    @property
    def captured(self) -> list[Request]:
        with self._state.lock:
            return list(self._state.captured)

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._sockets_lock:
            (self._sockets.add if add else self._sockets.discard)(sock)

    # -- answering ---------------------------------------------------------------------------------------

    def _wait(self, seconds: float, started: float) -> None:
        """Sleep, but never past the hold time and not once the server is stopping."""
        end = min(time.monotonic() + seconds, started + self.hold)
        if self.stopping.wait(max(0.0, end - time.monotonic())) or time.monotonic() >= started + self.hold:
            raise _Closed

    def _trickle(self, sock: socket.socket, data: bytes, interval: float, started: float) -> None:
        for index in range(len(data)):
            sock.sendall(data[index:index + 1])
            self._wait(interval, started)

    def _answer(self, sock: socket.socket, request: Request, started: float) -> bool:
        """Answer one request; ``True`` to keep the connection for the next."""
        state = self._state
        with state.lock:
            count = state.counts[request.target]
            state.counts[request.target] += 1
            first = state.first_seen.setdefault(request.target, time.monotonic())
        options = request.options
        mode = request.mode
        headers = {"Content-Type": "application/json", REQUEST_ID_HEADER: f"hostile-{mode}-{count}"}

        def send(status: int, body: bytes, extra: dict[str, str] | None = None) -> bool:
            sock.sendall(head(status, {**headers, **(extra or {})}, len(body)) + body)
            return True

        def valid_page() -> bytes:
            return self._page(request)

        if mode == "ok":
            return send(200, valid_page())
        if mode == "capture":
            with state.lock:
                state.captured.append(request)
            return send(200, page_body([image("uimage-evil01", "Captured by another origin")]))
        if mode == "trickle-body":
            body = valid_page()
            sock.sendall(head(200, headers, len(body)))
            self._trickle(sock, body, float(options.get("interval", 1.0)), started)
            return True
        if mode == "trickle-headers":
            body = valid_page()
            self._trickle(sock, head(200, headers, len(body)) + body, float(options.get("interval", 1.0)), started)
            return True
        if mode == "stall":
            self._wait(self.hold, started)
            return False
        if mode == "stall-later":  # a real first page of a long listing; every later page hangs
            if int(request.form.get("Offset") or 0) == 0:
                return send(200, self._fake_page(request))
            self._wait(self.hold, started)
            return False
        if mode == "stall-body":
            body = valid_page()
            sock.sendall(head(200, headers, len(body)) + body[: len(body) // 2])
            self._wait(self.hold, started)
            return False
        if mode == "redirect":
            code = int(options.get("code", 302))
            return send(code, b"moved", {"Location": options.get("target", "http://127.0.0.1:9/"),
                                          "Content-Type": "text/plain"})
        if mode == "gzip":
            sock.sendall(self._gzip_answer(headers, int(options.get("size", 1024))))
            return True
        if mode == "huge":
            size = int(float(options.get("size", 200)) * MIB)
            body = valid_page()
            padded = body[:-1] + b',"Pad":"' + b"x" * max(0, size - len(body) - 10) + b'"}'
            if options.get("chunked"):
                sock.sendall(head(200, {**headers, "Transfer-Encoding": "chunked"}, None))
                chunk = 1 * MIB
                for offset in range(0, len(padded), chunk):
                    piece = padded[offset:offset + chunk]
                    sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                sock.sendall(b"0\r\n\r\n")
                return True
            return send(200, padded)
        if mode == "junk":
            size = int(float(options.get("size", 30)) * MIB)
            body = valid_page()
            junk = b"[" + b"{}," * (size // 3) + b"{}]"
            return send(200, body[:-1] + b',"Junk":' + junk + b"}")
        if mode == "fake-total":
            return send(200, self._fake_page(request))
        if mode == "status":
            if count < int(options.get("times", 1_000_000)):
                extra = {"Content-Type": "text/plain"}
                if "retry_after" in options:
                    extra["Retry-After"] = options["retry_after"]
                return send(int(options.get("code", 503)), b"try later", extra)
            return send(200, valid_page())
        if mode == "retcode":
            seconds = options.get("seconds")
            failing = (time.monotonic() - first < float(seconds)) if seconds is not None else (
                count < int(options.get("times", 1_000_000)))
            if failing:
                extra = {"Retry-After": options["retry_after"]} if "retry_after" in options else {}
                code = int(options.get("code", 153))
                return send(200, json.dumps({"RetCode": code, "Message": "Request rate limited"}).encode(), extra)
            return send(200, valid_page())
        if mode == "sequence":
            steps = options.get("seq", "").split(",")
            step = steps[count] if count < len(steps) else "ok"
            if step == "ok":
                return send(200, valid_page())
            code = int(step)
            if code >= 300:
                return send(code, b"upstream trouble", {"Content-Type": "text/plain"})
            return send(200, json.dumps({"RetCode": code, "Message": f"Error {code}"}).encode())
        if mode == "utf8":
            return send(200, b'{"RetCode": 0, "TotalCount": 0, "ImageSet": [], "Message": "\xff\xfe\xfa"}')
        if mode == "nested":
            depth = int(options.get("depth", 100_000))
            return send(200, b"[" * depth + b"]" * depth)
        if mode == "html":
            return send(int(options.get("code", 404)), b"<html><body>Not Found</body></html>",
                        {"Content-Type": "text/html"})
        return send(404, b"unknown mode", {"Content-Type": "text/plain"})

    def _page(self, request: Request) -> bytes:
        options = request.options
        count = int(options.get("images", 3))
        names = [options.get("name", "")] + [""] * (count - 1)
        records = [image(f"uimage-h{index:05d}", names[index], 1_700_000_000 + index) for index in range(count)]
        form = request.form
        offset, limit = int(form.get("Offset") or 0), int(form.get("Limit") or 20)
        if options.get("ignore_limit"):
            limit = count
        return page_body(records[offset:offset + limit], total=count)

    def _fake_page(self, request: Request) -> bytes:
        options = request.options
        total = int(options.get("total", 9_999_999))
        cap = int(options.get("cap", 1000))
        form = request.form
        offset, limit = int(form.get("Offset") or 0), min(int(form.get("Limit") or 20), cap)
        size = max(0, min(limit, total - offset))
        if options.get("dup"):
            records = [image(f"uimage-d{offset:08d}")] + [image("uimage-d00000000")] * (size - 1)
        else:
            records = [image(f"uimage-f{offset + index:08d}") for index in range(size)]
        return page_body(records, total=total)

    def _gzip_answer(self, headers: dict[str, str], size_mib: int) -> bytes:
        """Gzip members of JSON whitespace, then one member with a valid page: ``size_mib`` MiB inflated."""
        state = self._state
        with state.lock:
            cached = state.gzip_cache.get(size_mib)
        if cached is None:
            member = gzip.compress(b" " * (64 * MIB), compresslevel=9)
            whole, rest = divmod(size_mib, 64)
            parts = [member] * whole + ([gzip.compress(b" " * (rest * MIB), 9)] if rest else [])
            parts.append(gzip.compress(page_body([image("uimage-gz0001")])))
            cached = b"".join(parts)
            with state.lock:
                state.gzip_cache[size_mib] = cached
        return head(200, {**headers, "Content-Encoding": "gzip"}, len(cached)) + cached


def _mode(target: str) -> str:
    return urlsplit(target).path.strip("/").split("/")[0] or "ok"


@contextlib.contextmanager
def hostile_server(hold: float = 120.0) -> Iterator[HostileServer]:
    with HostileServer(hold=hold) as server:
        yield server
