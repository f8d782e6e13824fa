"""The default transport: signed form POSTs over one keep-alive requests/urllib3 session, each cut off at its deadline.

Over 400 lines: the watchdog, watched connections, TCP_QUICKACK, connect retry and fast path only work together.

A request's deadline covers connect, TLS handshake, status line, headers and body: a watchdog thread shuts
its socket down when it passes, so a server that stalls or trickles (even one byte a second, even in its
headers) is cut off then, not at the next full read. The exceptions urllib3 and requests raise are read here
too (:func:`describe_failure`), so the layer above never needs to know them.
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import os
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from typing import Any
from urllib.parse import urlencode

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager

from ._version import __version__
from ._wire import Answer, exchange, wrap_body_error, wrap_head_error

__all__ = ["HTTPTransport"]

CONNECT_TIMEOUT = 10.0
_INFLATE_STEP = 256 * 1024
_REQUEST_HEADERS = {"Accept-Encoding": "gzip, deflate"}  # the encodings inflated above, with a bound


# -- one deadline per request: a watchdog that shuts the sockets of late requests down ----------------------


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain-socket call, also for an SSLSocket


class _Cutoff:
    """The deadline of one request (on ``time.monotonic``). When it passes (or the client is closed) the
    sockets the request uses are shut down, which ends any read or write blocked on them at once."""

    __slots__ = ("_lock", "_sockets", "at", "done", "expired")

    def __init__(self, at: float) -> None:
        self.at = at
        self.expired = False
        self.done = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self.done:
                return
            if self.expired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def expire(self) -> None:
        with self._lock:
            if self.done or self.expired:
                return
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def finish(self) -> None:
        with self._lock:
            self.done = True
            self._sockets.clear()


class _Watchdog:
    """One daemon thread for the process: expires each armed cutoff when its time comes."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._heap: list[tuple[float, int, _Cutoff]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, cutoff: _Cutoff) -> None:
        with self._condition:
            while self._heap and self._heap[0][2].done:  # requests that finished in time: nothing to wake for
                heapq.heappop(self._heap)
            heapq.heappush(self._heap, (cutoff.at, next(self._order), cutoff))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ucloud-images-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0][2] is cutoff:
                self._condition.notify()

    def _run(self) -> None:
        with self._condition:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    heapq.heappop(self._heap)[2].expire()  # a no-op for one that finished in time
                self._condition.wait(self._heap[0][0] - now if self._heap else None)


_WATCHDOG = _Watchdog()
_CURRENT = threading.local()  # the cutoff of the request this thread is sending


def _watch_current(sock: socket.socket) -> None:
    cutoff: _Cutoff | None = getattr(_CURRENT, "cutoff", None)
    if cutoff is not None:
        cutoff.watch(sock)


class _WatchedHTTPConnection(HTTPConnection):
    """An urllib3 connection whose socket the current request's cutoff can shut down.

    A duplicate of the TCP socket is kept: the TLS wrap detaches the original, and shutting the duplicate
    down ends the connection (handshake included) all the same.
    """

    _watch_handle: socket.socket | None = None

    def _new_conn(self) -> socket.socket:
        sock = _connect(self, super()._new_conn)
        _replace_handle(self, sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self._watch_handle is not None and self.sock is not None:
            _watch_current(self._watch_handle)
        super().request(*args, **kwargs)

    def getresponse(self) -> Any:
        _quick_ack(self.sock)
        response = super().getresponse()
        _quick_ack(self.sock)  # the headers are in: acknowledge them now, so a Nagle-held body comes at once
        return response

    def close(self) -> None:
        try:
            super().close()
        finally:
            _drop_handle(self)


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    """The same, over TLS (the methods above run first, then HTTPSConnection's)."""


_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux


def _quick_ack(sock: socket.socket | None) -> None:
    """Acknowledge what has arrived at once, leaving delayed-ACK ("pingpong") mode.

    A server that writes its headers and its body in two sends without TCP_NODELAY (Python's http.server
    does) holds the body back under Nagle's algorithm until the headers are acknowledged; on a reused
    keep-alive connection Linux delays that ACK by 40 ms or more. Where TCP_QUICKACK does not exist this is a
    no-op.
    """
    if _TCP_QUICKACK is not None and sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)


# The fastest connect seen per (host, port): a connect that takes many times longer lost its SYN (a full
# accept queue drops it, and the kernel only sends it again after a second).
_FASTEST_CONNECT: dict[tuple[str, int], float] = {}
SYN_RETRY_FLOOR = 0.025  # seconds: the shortest connect attempt before a fresh SYN is sent
SYN_RETRY_CEILING = 1.0  # the kernel's own first SYN retransmission: no gain in retrying later than that
_SYN_RETRY_FACTOR = 8.0


def _connect(connection: HTTPConnection, new_conn: Callable[[], socket.socket]) -> socket.socket:
    """``new_conn()`` within the connection's connect timeout; once the host has been reached before, in
    attempts of a few times its fastest connect (25 ms up, doubling), each a fresh SYN, then the time left.

    So a SYN dropped against a small listen backlog costs tens of milliseconds instead of the kernel's
    one-second retransmission. A host far away (connects of 125 ms and more) is connected to in one attempt.
    """
    total = connection.timeout
    key = (str(connection.host), int(connection.port or 0))
    fastest = _FASTEST_CONNECT.get(key)
    started = time.monotonic()
    if isinstance(total, (int, float)) and fastest is not None:
        ends = started + total
        attempt = max(SYN_RETRY_FLOOR, _SYN_RETRY_FACTOR * fastest)
        try:
            while attempt < SYN_RETRY_CEILING and ends - time.monotonic() > 2 * attempt:
                connection.timeout = attempt
                try:
                    sock = new_conn()
                except urllib3.exceptions.ConnectTimeoutError as exc:
                    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # a subclass in urllib3 2: refused
                        raise
                    attempt *= 2
                    continue
                break
            else:
                connection.timeout = max(ends - time.monotonic(), 0.001)
                sock = new_conn()
        finally:
            connection.timeout = total
    else:
        sock = new_conn()
    elapsed = time.monotonic() - started
    if fastest is None or elapsed < fastest:
        _FASTEST_CONNECT[key] = elapsed
    return sock


def _replace_handle(connection: _WatchedHTTPConnection, sock: socket.socket) -> None:
    _drop_handle(connection)
    connection._watch_handle = handle = sock.dup()
    _watch_current(handle)


def _drop_handle(connection: _WatchedHTTPConnection) -> None:
    handle, connection._watch_handle = connection._watch_handle, None
    if handle is not None:
        with suppress(OSError):
            handle.close()


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOL_CLASSES = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _Adapter(HTTPAdapter):
    """requests' adapter, with connections that a request's cutoff can shut down (also through an HTTP proxy)."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is ProxyManager:
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager


# -- bounded decompression ----------------------------------------------------------------------------------


class Inflater:
    """Inflates gzip (several members too) or deflate (zlib-wrapped or raw), never more than asked per call."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding != "deflate"
        self._first = True
        self._inflater = self._new()

    def _new(self, raw: bool = False) -> Any:
        return zlib.decompressobj(16 + zlib.MAX_WBITS if self._gzip else -zlib.MAX_WBITS if raw else zlib.MAX_WBITS)

    def feed(self, data: bytes, room: int) -> Iterator[bytes]:
        """Inflate ``data`` in pieces of at most ``_INFLATE_STEP`` bytes, ``room`` (>= 1) bytes in all: the caller
        stops as soon as more than it accepts has come out, so a bomb never inflates further than that."""
        while data and room > 0:
            step = min(room, _INFLATE_STEP)
            try:
                piece = self._inflater.decompress(data, step)
            except zlib.error:
                if not (self._first and not self._gzip):
                    raise
                self._inflater = self._new(raw=True)  # deflate without its zlib wrapper, as some servers send
                piece = self._inflater.decompress(data, step)
            self._first = False
            room -= len(piece)
            yield piece
            inflater = self._inflater
            if inflater.eof:  # the stream (or a gzip member) ended: what follows may be the next member
                rest = inflater.unused_data.lstrip(b"\0")  # (at the end, unconsumed_tail repeats it)
                if not (rest and self._gzip):
                    break
                data, self._inflater = rest, self._new()
            elif inflater.unconsumed_tail and (piece or inflater.unconsumed_tail != data):
                data = inflater.unconsumed_tail
            else:
                break  # all of this input is taken in (or no progress is possible: never loop on it)



# -- what a failure was ---------------------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and the exceptions urllib3 and requests wrap in args/reason."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [arg for arg in current.args if isinstance(arg, BaseException)]
        reason = getattr(current, "reason", None)
        for candidate in (current.__cause__, current.__context__, reason, *nested):
            if isinstance(candidate, BaseException):
                pending.append(candidate)


def _cause(exc: BaseException) -> str:
    """The innermost reason of a connection failure, in words: ``connection refused``, not ``ConnectionError``."""
    reasons = {
        ConnectionRefusedError: "connection refused",
        ConnectionResetError: "connection reset",
        ConnectionAbortedError: "connection aborted",
        BrokenPipeError: "connection closed while sending",
        socket.gaierror: "host name not resolved",
        ssl.SSLError: "TLS handshake failed",
        http.client.RemoteDisconnected: "connection closed without an answer",
        http.client.IncompleteRead: "connection closed mid-answer",
    }
    for current in _chain(exc):
        for kind, words in reasons.items():
            if isinstance(current, kind):
                return words
    unresolved = getattr(urllib3.exceptions, "NameResolutionError", ())  # urllib3 >= 2
    if unresolved and any(isinstance(current, unresolved) for current in _chain(exc)):
        return "host name not resolved"
    return type(exc).__name__


def _connect_phase(exc: BaseException) -> bool:
    """Whether the failure happened before a connection was made."""
    kinds = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError, socket.gaierror)
    return isinstance(exc, requests.ConnectTimeout) or any(isinstance(cur, kinds) for cur in _chain(exc))


def _tls_problem(exc: BaseException) -> tuple[str, bool] | None:
    """``(words, final)`` for a TLS failure, or ``None`` when there was none."""
    for current in _chain(exc):
        if isinstance(current, ssl.SSLCertVerificationError):
            detail = current.verify_message or "certificate verification failed"
            return f"presented a TLS certificate that could not be verified ({detail}); not retried", True
        if isinstance(current, ssl.SSLError):
            text = f"{current.reason or ''} {current}".lower()
            if any(sign in text for sign in ("wrong_version_number", "wrong version number", "http_request",
                                              "http request", "record_layer_failure", "packet_length_too_long",
                                              "unknown protocol")):
                return "does not speak TLS: check the base URL's scheme (http:// or https://); not retried", True
            return "could not be reached (TLS handshake failed)", False
    return None


# What a session reads from the environment for an http(s) URL (the proxy variables, in either case, and the
# CA bundle variables): while these stay the same, so does the route (see HTTPTransport._route).
_ROUTE_VARIABLES = (
    *(spelling for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for spelling in (name, name.upper())),
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


def _environment_key() -> tuple[str | None, ...]:
    environ = os.environ
    return tuple([environ.get(name) for name in _ROUTE_VARIABLES])


class Failure:
    """What a failed exchange was, in the words its message uses (see :func:`describe_failure`)."""

    __slots__ = ("kind", "words")

    def __init__(self, kind: str, words: str = "") -> None:
        self.kind, self.words = kind, words


# What a transport may raise for a failed exchange: the rest is a bug, and is not caught.
FAILURES: tuple[type[BaseException], ...] = (
    requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError,
)
_INVALID_URL = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                requests.exceptions.URLRequired, urllib3.exceptions.LocationParseError)
_TIMEOUTS = (requests.Timeout, TimeoutError, urllib3.exceptions.TimeoutError)
_DROPPED = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError,
            http.client.HTTPException, ConnectionError)


def describe_failure(exc: BaseException) -> Failure:
    """The kind of a failure raised by a transport (requests', urllib3's or plain ``OSError`` s).

    Kinds: ``invalid_url``; ``connect_timeout`` and ``timeout`` (no connection, or no full answer, in time);
    ``tls_final`` and ``tls`` (words: what went wrong); ``unreachable`` (words: the cause); ``dropped`` (the
    connection closed or broke; words: the cause) and ``dropped_quietly`` (closed without an answer, nothing
    more to say).
    """
    if isinstance(exc, _INVALID_URL):
        return Failure("invalid_url", str(exc))
    connect = _connect_phase(exc)
    timed_out = isinstance(exc, _TIMEOUTS)
    if timed_out and isinstance(exc, urllib3.exceptions.NewConnectionError):
        timed_out = any(isinstance(current, TimeoutError) for current in _chain(exc))  # a refusal is not one
    if timed_out:
        return Failure("connect_timeout" if connect else "timeout")
    tls = _tls_problem(exc)
    if tls is not None:
        words, final = tls
        return Failure("tls_final" if final else "tls", words)
    cause = _cause(exc)
    if connect or not isinstance(exc, _DROPPED) or cause == type(exc).__name__:
        return Failure("unreachable", cause)
    quiet = isinstance(exc, http.client.RemoteDisconnected) or cause.startswith("connection closed")
    return Failure("dropped_quietly" if quiet else "dropped", cause)


# -- the transport ------------------------------------------------------------------------------------------


def _release(raw: Any) -> Callable[[], None]:
    def close() -> None:  # as requests' Response.close(): a connection not read to its end is not reused
        raw.close()
        raw.release_conn()

    return close


class HTTPResponse:
    """An answer whose body is read as it arrives; once its deadline has cut it off, reading raises TimeoutError."""

    __slots__ = ("_cutoff", "_done", "_read", "_release", "headers", "status")

    def __init__(
        self, status: int, headers: Mapping[str, str], raw: Any, release: Callable[[], None], cutoff: _Cutoff,
        done: Callable[[_Cutoff], None],
    ) -> None:
        self.status, self.headers, self._release, self._cutoff, self._done = status, headers, release, cutoff, done
        if isinstance(raw, Answer):  # read by ._wire (the fast path)

            def read(size: int) -> bytes:
                try:
                    return raw.read(size)
                except (OSError, http.client.HTTPException) as exc:
                    raise wrap_body_error(exc, None) from exc
        elif hasattr(raw, "read1") and hasattr(raw, "stream"):  # urllib3 >= 2.3: what has arrived, up to a size

            def read(size: int) -> bytes:
                return bytes(raw.read1(size, decode_content=False))
        elif hasattr(raw, "stream"):  # older urllib3

            def read(size: int) -> bytes:
                return bytes(raw.read(size, decode_content=False))
        else:  # a plain file (a test's)

            def read(size: int) -> bytes:
                return bytes(raw.read(size))

        self._read = read

    def read(self, size: int) -> bytes:
        try:
            chunk = self._read(size)
        except Exception as exc:
            if self._cutoff.expired:
                raise TimeoutError("the answer was cut off at its deadline") from exc
            raise
        if self._cutoff.expired:  # a socket shut down reads as the end: the body may be short
            raise TimeoutError("the answer was cut off at its deadline")
        return chunk

    def close(self) -> None:
        try:
            self._release()
        finally:
            self._done(self._cutoff)


class HTTPTransport:
    """Sends over a ``requests.Session``, through its urllib3 pool directly where no proxy applies.

    The session it makes itself is configured as a requests session is (``HTTPS_PROXY``/``NO_PROXY``,
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, its ``proxies``, ``verify`` and ``cert``). Where no proxy
    applies, a request goes through that session's own urllib3 connection pool, with the CA bundle and client
    certificate the session would use, rather than ``Session.post``, which costs ~1 ms of CPU per request on
    building, hooks and re-reading the environment; the environment is re-read only when a proxy or CA bundle
    variable changes. A proxied request, and every request of a ``session`` passed in, goes through
    ``Session.post``; the deadline then holds only as far as that session's adapters allow.

    ``close()`` cuts off what is in flight and closes the session it made; it may be used again afterwards.
    """

    def __init__(self, session: requests.Session | None = None, *, pool_size: int = 64) -> None:
        self._owns_session = session is None
        self._session = session or self._new_session(pool_size)
        self._lock = threading.Lock()
        self._active: set[_Cutoff] = set()
        self._routes: tuple[tuple[str | None, ...], tuple[Any, Any] | None] | None = None
        self._stub: tuple[str, requests.PreparedRequest] | None = None  # (the URL as given, its prepared stub)
        self._heads: dict[str, tuple[str, bytes]] = {}  # URL: (its path, the request head up to Content-Length)
        self._fast_headers = {
            **self._session.headers, **_REQUEST_HEADERS, "Content-Type": "application/x-www-form-urlencoded",
        }

    @staticmethod
    def _new_session(pool_size: int) -> requests.Session:
        session = requests.Session()
        adapter = _Adapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = f"pulumi-ucloud-images/{__version__}"
        return session

    def close(self) -> None:
        with self._lock:
            active = list(self._active)
        for cutoff in active:
            cutoff.expire()
        if self._owns_session:
            self._session.close()

    def _done(self, cutoff: _Cutoff) -> None:
        cutoff.finish()
        with self._lock:
            self._active.discard(cutoff)

    def send(self, url: str, form: Mapping[str, str], timeout: float) -> HTTPResponse:
        cutoff = _Cutoff(time.monotonic() + timeout)
        with self._lock:
            self._active.add(cutoff)
        _WATCHDOG.arm(cutoff)
        previous = getattr(_CURRENT, "cutoff", None)
        _CURRENT.cutoff = cutoff
        try:
            status, headers, raw, release = self._post(url, form, timeout)
        except Exception as exc:
            self._done(cutoff)
            if cutoff.expired:
                raise TimeoutError("the exchange was cut off at its deadline") from exc
            raise
        except BaseException:
            self._done(cutoff)
            raise
        finally:
            _CURRENT.cutoff = previous
        return HTTPResponse(status, headers, raw, release, cutoff, self._done)

    def _route(self, url: str) -> tuple[Any, Any] | None:
        """``(verify, cert)`` for a request sent straight through the session's pool, or ``None`` when it must
        go through ``Session.post`` (a session passed in; a proxy for this URL)."""
        if not self._owns_session or not hasattr(HTTPAdapter, "get_connection_with_tls_context"):
            return None
        key = _environment_key()
        cached = self._routes
        if cached is not None and cached[0] == key:
            return cached[1]
        session = self._session
        found = session.merge_environment_settings(url, {}, None, None, None)
        proxied = requests.utils.select_proxy(url, found["proxies"]) is not None
        route = None if proxied else (found["verify"], found["cert"])
        self._routes = (key, route)
        return route

    def _post(self, url: str, form: Mapping[str, str], timeout: float) -> tuple[int, Any, Any, Callable[[], None]]:
        connect = min(timeout, CONNECT_TIMEOUT)
        route = self._route(url)
        if route is None:
            response = self._session.post(
                url, data=form, timeout=(connect, timeout), stream=True, allow_redirects=False,
                headers=_REQUEST_HEADERS,
            )
            return response.status_code, response.headers, response.raw, response.close
        cached = self._stub
        if cached is not None and cached[0] == url:  # keyed by the URL as given: the stub's own gains a "/"
            stub = cached[1]
        else:
            stub = requests.Request("POST", url).prepare()
            self._stub = (url, stub)
        adapter = self._session.get_adapter(url)
        verify, cert = route
        pool = adapter.get_connection_with_tls_context(stub, verify, None, cert)  # type: ignore[attr-defined]
        return self._exchange(pool, url, stub.path_url, urlencode(form).encode(), connect, timeout)

    def _exchange(
        self, pool: Any, url: str, path: str, body: bytes, connect: float, timeout: float
    ) -> tuple[int, Any, Any, Callable[[], None]]:
        """One request on a connection of ``pool`` (reused, or connected now with the SYN retry and TLS of
        the watched connections), written and read by :mod:`._wire` rather than by urllib3 and http.client."""
        conn = pool._get_conn()
        try:
            fresh = conn.sock is None
            conn.timeout = connect
            pool._validate_conn(conn)  # HTTPS: connects (TLS included) and warns when not verifying
            if conn.sock is None:
                conn.connect()
            elif not fresh and conn._watch_handle is not None:
                _watch_current(conn._watch_handle)
            sock = conn.sock
            sock.settimeout(timeout)
            request = self._request_head(url, path, len(body)) + body

            def release(reusable: bool) -> None:
                if not reusable:
                    conn.close()
                pool._put_conn(conn)

            status, headers, answer = exchange(sock, request, release, _quick_ack)
        except Exception as exc:
            conn.close()
            pool._put_conn(conn)
            raise wrap_head_error(exc, pool, url, timeout) from exc
        return status, headers, answer, answer.close

    def _request_head(self, url: str, path: str, length: int) -> bytes:
        """The request line and headers (what urllib3 would send), the per-URL part cached."""
        cached = self._heads.get(url)
        if cached is None or cached[0] != path:
            parsed = urllib3.util.parse_url(url)
            host = parsed.host or ""
            default = 443 if parsed.scheme == "https" else 80
            netloc = host if parsed.port in (None, default) else f"{host}:{parsed.port}"
            try:
                netloc_bytes = netloc.encode("ascii")
            except UnicodeEncodeError:
                netloc_bytes = netloc.encode("idna")
            lines = "".join(
                f"{name}: {value.decode('latin-1') if isinstance(value, bytes) else value}\r\n"
                for name, value in self._fast_headers.items()
            )
            head = (f"POST {path} HTTP/1.1\r\n".encode("ascii") + b"Host: " + netloc_bytes + b"\r\n"
                    + lines.encode("latin-1") + b"Content-Length: ")
            cached = self._heads[url] = (path, head)
            if len(self._heads) > 64:
                self._heads.clear()
                self._heads[url] = cached
        return cached[1] + b"%d\r\n\r\n" % length
