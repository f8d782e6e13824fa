"""The DescribeImage client: signed form POSTs over one keep-alive session, retries, paging, a memo.

Paging costs close to the physical minimum. The first page asks for ``page_size`` images (default 1000) and
tells ``TotalCount`` and how many images the server really returns per page (it may cap ``Limit``); every
other page is then requested with that size, at once, by a bounded pool (``max_workers``, default 16), while
the first page is being validated. So a lookup takes ``1 + ceil(later_pages / max_workers)`` sequential round
trips: two for up to 17,000 images when the server accepts 1000 per page. The result is what a careful
sequential reader (``Offset +=`` page length until ``TotalCount``) sees: server order, each ImageId once.

A read that is torn (``TotalCount`` moves, a page comes back short or empty, or adds no new image) is read
again from the start, at most three reads in all. A read whose pages overlap (fewer distinct images than
``TotalCount``) is accepted only when the next read lists exactly the same images. So a lookup never returns
a list torn by a change on the server; it fails with :class:`TransportError` instead.

Bounds, whatever the server does:

- Time. Every request has one deadline, covering connect, TLS handshake, status line, headers and body: the
  budget left, capped at ``Settings.timeout``. A watchdog thread shuts the request's socket down when it
  passes, so a server that stalls or trickles (even one byte a second, even in its headers) is cut off then.
  One :meth:`Client.describe_images` (every page, retry and re-read) starts no request and no pause once
  ``RetryPolicy.total_seconds`` (default 60 s) have passed since it began, so it returns or raises within
  that budget (plus host-name resolution, which no socket deadline covers).
- Redirects are never followed: a 3xx is a :class:`RedirectError` naming where it pointed, and the signed form
  only ever goes to the base URL.
- Memory. A response may hold at most ``max_response_bytes`` (default 32 MiB) after decompression (gzip and
  deflate are inflated here, a bounded step at a time); a page may hold at most ``Limit`` images and a bounded
  number of JSON values per image; the pages after the first are parsed one at a time per client; a listing may
  claim at most ``max_images`` (default 50,000) images. Memory grows with the images listed, not with what a
  server claims.

Retries. Connection errors, timeouts, HTTP 5xx, a 2xx body that is cut short or garbled, and RetCode 110, 130,
150 and >= 2000 are retried with exponential backoff and jitter, at most ``RetryPolicy.attempts`` tries per
request. Rate limiting (RetCode 153, HTTP 429) is retried with longer pauses for as long as the time budget
lasts; ``Retry-After`` is honoured within it. Every retry also takes tokens from the client's retry budget (a
token bucket, as in the AWS SDKs' standard mode), shared by every page of every lookup of the client, so an
outage cannot multiply requests. What cannot change is not retried: every other RetCode (160, 161, 170, 171,
172, 230, 299, ...), a JSON answer of the wrong shape, a 3xx or 4xx answer, a body that is not UTF-8 or is
nested absurdly deep, an answer over the size limits, an invalid base URL or port (:class:`InvalidQueryError`),
a TLS certificate that fails verification and TLS to a server that does not speak it.
"""

from __future__ import annotations

import codecs
import email.utils
import heapq
import hmac
import http.client
import itertools
import logging
import math
import os
import random
import secrets
import socket
import ssl
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import closing, suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import urllib3
from pydantic_core import from_json
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager

from ._display import shown as server_text
from ._errors import (
    APIError,
    ConnectionFailedError,
    InvalidQueryError,
    RedirectError,
    ResponseFormatError,
    ResponseTimeoutError,
    ResponseTooLargeError,
    TransportError,
)
from ._image import Image
from ._lean import ImageRecord, RecordPage, parse_records
from ._settings import Settings
from ._signing import flatten, sign
from ._version import __version__

__all__ = [
    "DEFAULT_MAX_IMAGES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "Client",
    "RetryPolicy",
    "reset_shared_clients",
    "shared_client",
]

REQUEST_ID_HEADER = "X-UCLOUD-REQUEST-UUID"
# Transient by the API's own table (110 timeout, 130 gateway, 150 unavailable, 153 rate limit) and by the
# official SDKs (>= 2000). Everything else (160/161/170/171/172/230/299, ...) is final.
RETRIED_RET_CODES = frozenset({110, 130, 150, 153})
RATE_LIMITED_RET_CODE = 153
LISTING_READS = 3
CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_IMAGES = 50_000
# A listing needing more pages than this (a server answering a few images per page for a large TotalCount)
# is refused rather than read with thousands of requests.
MAX_PAGES = 5_000
# JSON values (counted as commas) a page may hold per image it may carry: real records have ~60.
_VALUES_PER_IMAGE = 1024
_READ_SIZE = 256 * 1024
_INFLATE_STEP = 256 * 1024
_REQUEST_HEADERS = {"Accept-Encoding": "gzip, deflate"}  # the encodings inflated here, with a bound
_MIB = 1024 * 1024

_MemoKey = tuple[tuple[str, str], ...]
_T = TypeVar("_T")
# One INFO line per request (its retries included) when enabled, as `ucloud-images --verbose` does.
REQUEST_LOG = logging.getLogger("pulumi_ucloud_images.requests")


def _log_request(
    params: Mapping[str, Any], started: float, attempts: int, ret_code: Any, request_id: str,
    error: BaseException | None = None,
) -> None:
    """``DescribeImage offset=0 RetCode=0 request-id=... 12 ms retries=0``: what one request did, in one line."""
    offset = params.get("Offset")
    outcome = "" if error is None else f" failed: {type(error).__name__}"
    REQUEST_LOG.info(
        "%s offset=%s RetCode=%s request-id=%s %.0f ms retries=%d%s",
        params.get("Action", ""), "-" if offset is None else offset, "-" if ret_code is None else ret_code,
        request_id or "-", (time.monotonic() - started) * 1000, max(attempts - 1, 0), outcome,
    )


def _logging(
    use: Callable[[dict[str, Any], str], _T], params: Mapping[str, Any], began: float, attempts: Callable[[], int]
) -> Callable[[dict[str, Any], str], _T]:
    """``use``, logging the request that succeeded first (its RetCode is 0: others never reach ``use``)."""

    def logged(body: dict[str, Any], request_id: str) -> _T:
        _log_request(params, began, attempts(), body.get("RetCode"), request_id)
        return use(body, request_id)

    return logged


def is_retried_ret_code(ret_code: int) -> bool:
    """Whether an answer with this RetCode is worth another attempt."""
    return ret_code in RETRIED_RET_CODES or ret_code >= 2000


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff with jitter, bounded by attempts per request, by total time per lookup and by a retry budget.

    Transient failures: the pause before retry ``n`` (0-based) is ``min(max_delay, base_delay * 4**n)`` scaled
    by ``0.5 + jitter() / 2``: 50-100 ms, 0.2-0.4 s, 0.8-1.6 s, then 2.5-5 s by default (the official Go SDK
    also grows by 4x; the jitter spreads the retries of concurrent pages), and ``attempts`` bounds the tries of
    one request. Rate limiting (RetCode 153, HTTP 429) does not count against ``attempts``: it is retried for as
    long as ``total_seconds`` lasts, pausing ``min(throttle_max_delay, throttle_base_delay * 2**n)`` (same
    jitter): 0.5-1 s, 1-2 s, 2-4 s, 4-8 s, then 5-10 s. A ``Retry-After`` header makes a pause at least that
    long; one that does not fit in the time left ends the lookup at once.

    ``total_seconds`` bounds a whole :meth:`Client.describe_images`. The retry budget is a token bucket per
    client, shared by all its lookups and pages (as in the AWS SDKs' standard mode): it holds ``retry_tokens``;
    a retry takes ``retry_cost`` (``timeout_retry_cost`` after a timeout); a success gives one back (a
    retried success its cost); it refills by ``refill_per_second``. A transient failure is not retried while
    the bucket is short; a rate-limited request waits for the refill, within the time budget.

    ``sleep``, ``clock`` and ``jitter`` are injectable so tests never really sleep. With the default ``sleep``
    a pause ends early when the client is closed.
    """

    attempts: int = 5
    total_seconds: float = 60.0
    base_delay: float = 0.1
    max_delay: float = 5.0
    throttle_base_delay: float = 1.0
    throttle_max_delay: float = 10.0
    retry_tokens: float = 500.0
    retry_cost: float = 5.0
    timeout_retry_cost: float = 10.0
    refill_per_second: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if not 0 < self.total_seconds < math.inf:
            raise ValueError("RetryPolicy.total_seconds must be positive and finite")
        delays = (self.base_delay, self.max_delay, self.throttle_base_delay, self.throttle_max_delay)
        if not all(0 <= delay < math.inf for delay in delays):
            raise ValueError("RetryPolicy delays must not be negative")
        costs = (self.retry_tokens, self.retry_cost, self.timeout_retry_cost, self.refill_per_second)
        if not all(0 <= value < math.inf for value in costs):
            raise ValueError("RetryPolicy retry budget values must not be negative")

    def delay(self, retry: int) -> float:
        """The pause before retry ``retry`` (0-based) after a transient failure."""
        return float(min(self.max_delay, self.base_delay * 4 ** min(retry, 32)) * (0.5 + self.jitter() / 2))

    def throttle_delay(self, retry: int) -> float:
        """The pause before retry ``retry`` (0-based) after rate limiting."""
        grown = self.throttle_base_delay * 2 ** min(retry, 32)
        return float(min(self.throttle_max_delay, grown) * (0.5 + self.jitter() / 2))


class _RetryBudget:
    """The token bucket of one client (see :class:`RetryPolicy`). Thread-safe."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._tokens = policy.retry_tokens
        self._updated = policy.clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._policy.clock()
        elapsed, self._updated = max(0.0, now - self._updated), now
        self._tokens = min(self._policy.retry_tokens, self._tokens + elapsed * self._policy.refill_per_second)

    def take(self, cost: float) -> float:
        """Take ``cost`` tokens and return 0; or take nothing and return the seconds until the refill has them."""
        with self._lock:
            self._refill()
            if self._tokens >= cost:
                self._tokens -= cost
                return 0.0
            rate = self._policy.refill_per_second
            if cost > self._policy.retry_tokens or rate <= 0:
                return math.inf
            return (cost - self._tokens) / rate

    def give(self, amount: float) -> None:
        with self._lock:
            self._refill()
            self._tokens = min(self._policy.retry_tokens, self._tokens + amount)

    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens


# -- one deadline per request: a watchdog that shuts the sockets of late requests down ----------------------


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain-socket call, also for an SSLSocket


class _Cutoff:
    """The deadline of one request (on ``time.monotonic``). When it passes (or the client is closed) the
    sockets the request uses are shut down, which ends any read or write blocked on them at once."""

    __slots__ = ("_lock", "_sockets", "at", "done", "expired", "reason")

    def __init__(self, at: float) -> None:
        self.at = at
        self.expired = False
        self.done = False
        self.reason = "deadline"
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

    def expire(self, reason: str = "deadline") -> None:
        with self._lock:
            if self.done or self.expired:
                return
            self.expired, self.reason = True, reason
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


class _Inflater:
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


# -- errors ---------------------------------------------------------------------------------------------------


class _Retryable(Exception):
    def __init__(
        self,
        error: TransportError | APIError,
        *,
        throttled: bool = False,
        timeout: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.throttled = throttled
        self.timeout = timeout
        self.retry_after = retry_after


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


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), 86_400.0) if math.isfinite(seconds) else None


def _location_host(base_url: str, location: str | None) -> str:
    """The host (and port) a redirect points to, without any credentials or path."""
    if not location:
        return ""
    try:
        parts = urlsplit(urljoin(base_url, location.strip()))
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "an unreadable location"
    shown = f"{host}:{port}" if port else host
    return shown[:100] or "an unreadable location"


def _bad_text_reason(raw: bytes | bytearray) -> str | None:
    """Why ``raw`` is not UTF-8 text (checked a slice at a time, so no decoded copy is kept), or ``None``.

    A multi-byte character cut off by the end of the body is not reported: that is a truncated body.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(raw)
    try:
        for offset in range(0, len(view), _MIB):
            decoder.decode(view[offset:offset + _MIB])
    except UnicodeDecodeError as exc:
        return f"bytes that are not UTF-8 (near byte {offset + exc.start})"
    return None


class _Reply:
    """What ``_send_once`` reads of an answer, whichever path sent the request."""

    __slots__ = ("close", "headers", "raw", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], raw: Any, close: Callable[[], None]) -> None:
        self.status_code, self.headers, self.raw, self.close = status_code, headers, raw, close


def _release(raw: Any) -> Callable[[], None]:
    def close() -> None:  # as requests' Response.close(): a connection not read to its end is not reused
        raw.close()
        raw.release_conn()

    return close


# What a session reads from the environment for an http(s) URL (the proxy variables, in either case, and the
# CA bundle variables): while these stay the same, so does the route (see Client._route).
_ROUTE_VARIABLES = (
    *(spelling for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for spelling in (name, name.upper())),
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


def _environment_key() -> tuple[str | None, ...]:
    environ = os.environ
    return tuple([environ.get(name) for name in _ROUTE_VARIABLES])


def _describe_phase(timeout: float, capped: bool, budget: float) -> str:
    within = f"within {timeout:.3g} s"
    return f"{within}, all that was left of the lookup's time budget of {budget:g} s" if capped else within


class Client:
    """Talks DescribeImage to one account and endpoint. Thread-safe; share one per settings.

    ``page_size`` is the ``Limit`` of the first page (later pages ask for as many as it returned);
    ``max_workers`` bounds the pages fetched at once. ``session`` replaces the keep-alive session the client
    makes (and then closes) itself; the per-request deadline then holds only as far as that session's
    adapters allow (between reads of the body, and each socket operation's timeout).

    The client's own session is a ``requests.Session`` and is configured as one: ``HTTPS_PROXY``/``NO_PROXY``,
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, its ``proxies``, ``verify`` and ``cert``. Where no proxy applies,
    requests are sent through that session's own urllib3 connection pool (with the CA bundle and client
    certificate the session would use) rather than ``Session.post``, which costs ~1 ms of CPU per request
    on building, hooks and re-reading the environment; the environment is re-read only when a proxy or CA
    bundle variable changes. A proxied request, and every request of a ``session`` passed in, goes through
    ``Session.post``.
    ``max_response_bytes`` caps one answer after decompression, ``max_images`` the TotalCount of a listing.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        max_workers: int = 32,
        page_size: int = 1000,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_images: int = DEFAULT_MAX_IMAGES,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if max_response_bytes < 1024:
            raise ValueError("max_response_bytes must be at least 1024")
        if max_images < 1:
            raise ValueError("max_images must be at least 1")
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.max_workers = max_workers
        self.page_size = page_size
        self.max_response_bytes = max_response_bytes
        self.max_images = max_images
        self._owns_session = session is None
        self._session = session or self._new_session(max_workers)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._parse_lock = threading.Lock()  # one page parsed at a time: parsing is what costs memory
        self._budget = _RetryBudget(self.retry)
        self._closing = threading.Event()  # replaced on close(): calls in flight stop, later calls proceed
        self._active: set[_Cutoff] = set()
        self._memo: dict[_MemoKey, tuple[ImageRecord, ...]] = {}
        self._inflight: dict[_MemoKey, Future[tuple[ImageRecord, ...]]] = {}
        # describe_images' models of a memoised listing (the listing is kept in the entry, so its id stays its own)
        self._full_memo: dict[int, tuple[tuple[ImageRecord, ...], tuple[Image, ...]]] = {}
        self._generation = 0
        self.requests_sent = 0
        self._routes: tuple[tuple[str | None, ...], tuple[Any, Any] | None] | None = None
        self._stub: requests.PreparedRequest | None = None
        self._fast_headers = {
            **self._session.headers, **_REQUEST_HEADERS, "Content-Type": "application/x-www-form-urlencoded",
        }

    @staticmethod
    def _new_session(max_workers: int) -> requests.Session:
        session = requests.Session()
        # Room for every pool worker plus as many callers fetching first pages, so no connection is discarded.
        adapter = _Adapter(pool_connections=4, pool_maxsize=max(10, 2 * max_workers), max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = f"pulumi-ucloud-images/{__version__}"
        return session

    def __repr__(self) -> str:
        return f"Client(base_url={self.settings.base_url!r}, public_key={self.settings.public_key!r})"

    def close(self) -> None:
        """Stop: requests in flight are cut off, pauses end, pages not started are cancelled."""
        with self._lock:
            pool, self._pool = self._pool, None
            closing_event, self._closing = self._closing, threading.Event()
            active = list(self._active)
        closing_event.set()
        for cutoff in active:
            cutoff.expire("closed")
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def clear_memo(self) -> None:
        """Forget every listing read so far; a read in flight is not memoised either."""
        with self._lock:
            self._memo.clear()
            self._full_memo.clear()
            self._generation += 1

    # -- one call ----------------------------------------------------------------------------------------

    def call(self, params: Mapping[str, Any], *, deadline: float | None = None) -> tuple[dict[str, Any], str]:
        """Send one signed request, retrying transient failures. Returns the body and the request id.

        ``deadline`` (on ``retry.clock``) is when to stop starting attempts; by default ``total_seconds`` from now.
        """
        return self._with_retries(params, deadline, None, lambda body, request_id: (body, request_id))

    def _sleep(self, seconds: float, closing: threading.Event) -> None:
        if self.retry.sleep is time.sleep:
            closing.wait(seconds)
        else:
            self.retry.sleep(seconds)

    def _closed_error(self, action: str) -> TransportError:
        return TransportError(
            f"UCloud API {action} was not read to the end: the client was closed meanwhile.", action=action
        )

    def _with_retries(
        self,
        params: Mapping[str, Any],
        deadline: float | None,
        limit: int | None,
        use: Callable[[dict[str, Any], str], _T],
    ) -> _T:
        """Send until an answer is usable, retrying what may change; ``use`` turns the envelope into the result
        (under the parse lock, when ``limit`` says it is a page of at most that many images)."""
        action = str(params.get("Action", ""))
        policy = self.retry
        closing = self._closing
        started = policy.clock()
        if deadline is None:
            deadline = started + policy.total_seconds
        last: TransportError | APIError | None = None
        attempts = failures = throttles = 0
        why = ""
        retried_cost = 0.0
        traced, began = REQUEST_LOG.isEnabledFor(logging.INFO), time.monotonic()
        if traced:
            use = _logging(use, params, began, lambda: attempts)
        while True:
            if closing.is_set():
                raise self._closed_error(action)
            remaining = deadline - policy.clock()
            if remaining <= 0:
                why = f": the lookup's time budget of {policy.total_seconds:g} s is spent"
                break
            attempts += 1
            timeout = min(self.settings.timeout, remaining)
            try:
                result = self._send_once(params, action, timeout, timeout < self.settings.timeout, limit, use)
            except _Retryable as retryable:
                last = retryable.error
                failure = retryable
            except (APIError, TransportError) as exc:
                if traced:
                    _log_request(params, began, attempts, getattr(exc, "ret_code", None), exc.request_id, exc)
                raise
            else:
                self._budget.give(retried_cost or 1.0)
                return result
            if closing.is_set():
                raise self._closed_error(action)
            if failure.throttled:
                pause = policy.throttle_delay(throttles)
                throttles += 1
                cost = policy.retry_cost
            else:
                failures += 1
                if failures >= policy.attempts:
                    break
                pause = policy.delay(failures - 1)
                cost = policy.timeout_retry_cost if failure.timeout else policy.retry_cost
            left = deadline - policy.clock()
            if failure.retry_after is not None:
                if failure.retry_after >= left:
                    why = (
                        f": the server asked to wait {failure.retry_after:g} s (Retry-After), more than the "
                        f"{max(left, 0):.1f} s left of the lookup's time budget of {policy.total_seconds:g} s"
                    )
                    break
                pause = max(pause, failure.retry_after)
            if pause >= left:
                spent = left <= max(0.05, 0.01 * policy.total_seconds)
                why = f": the lookup's time budget of {policy.total_seconds:g} s is spent" if spent else (
                    f": the next pause ({pause:.1f} s) would outlast the lookup's time budget of "
                    f"{policy.total_seconds:g} s")
                break
            wait = self._budget.take(cost)
            if wait > 0 and failure.throttled and max(pause, wait) < left:
                self._sleep(max(pause, wait), closing)  # rate limited: wait for the bucket to refill, once
                pause = 0.0
                wait = self._budget.take(cost)
            if wait > 0:
                why = (
                    ": the client's retry budget is spent by recent failures (it refills with successes and "
                    "with time)"
                )
                break
            retried_cost = cost
            if pause > 0:
                self._sleep(pause, closing)
        if traced and last is not None:
            _log_request(params, began, attempts, getattr(last, "ret_code", None), last.request_id, last)
        self._give_up(action, last, attempts, policy.clock() - started, why)

    def _give_up(
        self, action: str, last: TransportError | APIError | None, attempts: int, elapsed: float, why: str
    ) -> NoReturn:
        if last is None:
            raise TransportError(
                f"UCloud API {action} was not called: the lookup's time budget of {self.retry.total_seconds:g} s "
                "was spent.",
                action=action,
            )
        note = f"Gave up after {attempts} attempt(s) in {elapsed:.1f} s{why}."
        if isinstance(last, APIError):
            raise APIError(
                last.ret_code, last.api_message, action=last.action, request_id=last.request_id,
                detail=last.detail, note=note,
            )
        error = type(last)(f"{last} {note}", action=last.action, request_id=last.request_id)
        error.__dict__.update({key: value for key, value in last.__dict__.items() if key not in error.__dict__})
        raise error

    def _send_once(
        self,
        params: Mapping[str, Any],
        action: str,
        timeout: float,
        capped: bool,
        limit: int | None,
        use: Callable[[dict[str, Any], str], _T],
    ) -> _T:
        settings = self.settings
        form = sign(params, settings.public_key, settings.private_key)  # revealed only inside the hash
        with self._lock:
            self.requests_sent += 1
            cutoff = _Cutoff(time.monotonic() + timeout)
            self._active.add(cutoff)
        _WATCHDOG.arm(cutoff)
        url = settings.base_url
        clock = self.retry.clock
        soft_deadline = clock() + timeout  # the same deadline on the policy's clock, checked between reads
        received = [-1]  # bytes of the body read so far; -1 while waiting for the status line and headers
        previous = getattr(_CURRENT, "cutoff", None)
        _CURRENT.cutoff = cutoff
        try:
            try:
                response = self._post(url, form, timeout)
            except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException,
                    OSError) as exc:
                raise self._failure(exc, cutoff, action, timeout, capped, received[0]) from None
            try:
                status = response.status_code
                if 300 <= status < 400:
                    raise self._redirect(response, action)
                raw = self._read_body(response, cutoff, soft_deadline, action, received)
            except (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException,
                    OSError) as exc:
                raise self._failure(exc, cutoff, action, timeout, capped, received[0]) from None
            finally:
                response.close()
        finally:
            _CURRENT.cutoff = previous
            cutoff.finish()
            with self._lock:
                self._active.discard(cutoff)
        if cutoff.expired:
            raise self._failure(None, cutoff, action, timeout, capped, received[0])
        if clock() > soft_deadline:
            raise self._late(action, timeout, capped, received[0])
        return self._decode(response, raw, action, limit, use)

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

    def _post(self, url: str, form: Mapping[str, str], timeout: float) -> _Reply:
        connect = min(timeout, CONNECT_TIMEOUT)
        route = self._route(url)
        if route is None:
            response = self._session.post(
                url, data=form, timeout=(connect, timeout), stream=True, allow_redirects=False,
                headers=_REQUEST_HEADERS,
            )
            return _Reply(response.status_code, response.headers, response.raw, response.close)
        stub = self._stub
        if stub is None or stub.url != url:
            stub = self._stub = requests.Request("POST", url).prepare()
        adapter = self._session.get_adapter(url)
        verify, cert = route
        pool = adapter.get_connection_with_tls_context(stub, verify, None, cert)  # type: ignore[attr-defined]
        raw = pool.urlopen(
            "POST", stub.path_url, body=urlencode(form).encode(), headers=self._fast_headers, retries=False,
            redirect=False, assert_same_host=False, preload_content=False, decode_content=False,
            timeout=urllib3.Timeout(connect=connect, read=timeout),
        )
        return _Reply(raw.status, raw.headers, raw, _release(raw))

    def _late(self, action: str, timeout: float, capped: bool, received: int) -> _Retryable:
        url = self.settings.base_url
        within = _describe_phase(timeout, capped, self.retry.total_seconds)
        if received < 0:
            what = "its status line and headers had not arrived"
        else:
            what = f"its body stalled or trickled ({received:,} bytes had arrived)"
        return _Retryable(ResponseTimeoutError(f"UCloud API {action} at {url} did not answer {within}: {what}.",
                                               action=action), timeout=True)

    def _failure(
        self, exc: BaseException | None, cutoff: _Cutoff, action: str, timeout: float, capped: bool, received: int
    ) -> Exception:
        """What a failed exchange means: a final error, or a :class:`_Retryable` one."""
        url = self.settings.base_url
        if cutoff.reason == "closed":
            return self._closed_error(action)
        if exc is not None and isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                                                 requests.exceptions.InvalidSchema, requests.exceptions.URLRequired,
                                                 urllib3.exceptions.LocationParseError)):
            return InvalidQueryError(f"Invalid base_url {url!r}: {exc}.", field="base_url")
        connect = exc is not None and _connect_phase(exc)
        timeouts = (requests.Timeout, TimeoutError, urllib3.exceptions.TimeoutError)
        timed_out = exc is not None and isinstance(exc, timeouts)
        if exc is not None and timed_out and isinstance(exc, urllib3.exceptions.NewConnectionError):
            timed_out = any(isinstance(current, TimeoutError) for current in _chain(exc))  # a refusal is not one
        if cutoff.expired or timed_out:
            if connect:
                return _Retryable(ConnectionFailedError(
                    f"UCloud API {action} at {url} could not be reached (no connection "
                    f"{_describe_phase(timeout, capped, self.retry.total_seconds)}).", action=action), timeout=True)
            return self._late(action, timeout, capped, received)
        assert exc is not None
        tls = _tls_problem(exc)
        if tls is not None:
            words, final = tls
            error = ConnectionFailedError(f"UCloud API {action} at {url} {words}.", action=action)
            return error if final else _Retryable(error)
        cause = _cause(exc)
        if connect or not isinstance(exc, (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                                           urllib3.exceptions.ProtocolError, http.client.HTTPException,
                                           ConnectionError)) or cause == type(exc).__name__:
            return _Retryable(ConnectionFailedError(f"UCloud API {action} at {url} could not be reached ({cause}).",
                                                    action=action))
        if received < 0:
            shown = "" if isinstance(exc, http.client.RemoteDisconnected) or cause.startswith("connection closed") \
                else f" ({cause})"
            return _Retryable(TransportError(
                f"UCloud API {action} at {url} closed the connection without answering{shown}.", action=action))
        return _Retryable(TransportError(
            f"UCloud API {action} at {url} broke off its answer after {received:,} bytes of the body ({cause}).",
            action=action))

    def _redirect(self, response: _Reply, action: str) -> RedirectError:
        url = self.settings.base_url
        request_id = server_text(response.headers.get(REQUEST_ID_HEADER, ""), 100)  # the server's text
        host = _location_host(url, response.headers.get("Location"))
        where = f"a redirect to {host}" if host else "a redirect without a Location"
        return RedirectError(
            f"UCloud API {action} at {url} answered HTTP {response.status_code}, {where} (request id "
            f"{request_id or 'unknown'}); redirects are not followed, so the signed request never leaves the "
            "base URL: set the base URL to the API endpoint itself.",
            action=action, request_id=request_id, location_host=host,
        )

    def _too_large(self, action: str, what: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"UCloud API {action} at {self.settings.base_url} answered {what}: an answer may hold at most "
            f"{self.max_response_bytes / _MIB:g} MiB (Client(max_response_bytes=...)), so it was not read further.",
            action=action,
        )

    def _read_body(
        self, response: _Reply, cutoff: _Cutoff, soft_deadline: float, action: str, received: list[int]
    ) -> bytearray:
        """The whole body, inflated, a bounded read at a time; over the size limit or past the deadline, an
        error (a trickling server is cut off: by the watchdog, or between reads on the policy's clock)."""
        limit = self.max_response_bytes
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("", "identity"):
            inflater = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            inflater = _Inflater(encoding)
        else:
            raise ResponseFormatError(
                f"UCloud API {action} answered with Content-Encoding {encoding[:40]!r}, which was not asked for.",
                action=action, request_id=server_text(response.headers.get(REQUEST_ID_HEADER, ""), 100),
            )
        declared = response.headers.get("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > limit:
            raise self._too_large(action, f"a Content-Length of {int(declared):,} bytes")
        raw = response.raw
        if hasattr(raw, "read1") and hasattr(raw, "stream"):  # urllib3 >= 2.3: what has arrived, up to a size

            def read() -> bytes:
                return bytes(raw.read1(_READ_SIZE, decode_content=False))
        elif hasattr(raw, "stream"):  # older urllib3

            def read() -> bytes:
                return bytes(raw.read(_READ_SIZE, decode_content=False))
        else:  # a plain file (a test's)

            def read() -> bytes:
                return bytes(raw.read(_READ_SIZE))

        clock = self.retry.clock
        body = bytearray()
        received[0] = 0
        wire = 0
        while True:
            chunk = read()
            if cutoff.expired or clock() > soft_deadline:
                raise requests.Timeout("the body did not arrive in time")
            if not chunk:
                break
            wire += len(chunk)
            received[0] = wire
            pieces = (chunk,) if inflater is None else inflater.feed(chunk, limit - len(body) + 1)
            try:
                for piece in pieces:
                    body += piece
                    if len(body) > limit:
                        size = f"{limit / _MIB:g} MiB"
                        what = f"a {encoding} body that inflates past {size}" if inflater else f"a body over {size}"
                        raise self._too_large(action, what)
            except zlib.error:
                raise ResponseFormatError(
                    f"UCloud API {action} answered a {encoding} body that does not inflate.", action=action
                ) from None
        return body

    def _decode(
        self,
        response: _Reply,
        raw: bytearray,
        action: str,
        limit: int | None,
        use: Callable[[dict[str, Any], str], _T],
    ) -> _T:
        status = response.status_code
        request_id = server_text(response.headers.get(REQUEST_ID_HEADER, ""), 100)  # the server's text
        shown_id = request_id or "unknown"

        def malformed(what: str) -> ResponseFormatError:
            return ResponseFormatError(
                f"UCloud API {action} answered HTTP {status} with {what} (request id {shown_id}).",
                action=action,
                request_id=request_id,
            )

        if status == 429 or status >= 500:
            raise _Retryable(
                TransportError(
                    f"UCloud API {action} answered HTTP {status}{' (rate limited)' if status == 429 else ''} "
                    f"(request id {shown_id}).",
                    action=action,
                    request_id=request_id,
                ),
                throttled=status == 429,
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        if limit is not None:
            # Every JSON value after the first of its array or object follows a comma; nesting alone is cut at
            # 200 levels by the parser. So commas bound what parsing could build, before it builds anything.
            values = raw.count(b",")
            allowed = limit * _VALUES_PER_IMAGE + 4096
            if values > allowed:
                raise malformed(f"{values:,} JSON values, more than a page of {limit:,} images can hold")
        with self._parse_lock:
            try:
                body = from_json(raw)  # pydantic's JSON parser: ~40% faster than json.loads, interns repeated keys
            except ValueError as exc:
                bad_text = _bad_text_reason(raw)
                if bad_text is not None:
                    raise malformed(bad_text) from None
                if "recursion limit" in str(exc):
                    raise malformed("JSON nested too deeply to be an answer") from None
                not_json = malformed("a body that is not JSON")
                # A truncated or garbled answer is transient; an HTML 4xx page (wrong base URL) is not.
                if status < 400:
                    raise _Retryable(not_json) from None
                raise not_json from None
            del raw
            if not isinstance(body, dict) or "RetCode" not in body:
                raise malformed("JSON that has no RetCode")
            ret_code = body["RetCode"]
            if isinstance(ret_code, bool) or not isinstance(ret_code, int):
                raise malformed(f"a RetCode that is not an integer: {ret_code!r:.40}")
            if ret_code != 0:
                message = body.get("Message")
                error = APIError(
                    ret_code,
                    "" if message is None else str(message)[:500],
                    action=action,
                    request_id=request_id,
                    detail=self._key_detail(ret_code),
                )
                if is_retried_ret_code(ret_code):
                    raise _Retryable(
                        error,
                        throttled=ret_code == RATE_LIMITED_RET_CODE,
                        retry_after=_retry_after(response.headers.get("Retry-After")),
                    )
                raise error
            return use(body, request_id)

    def _key_detail(self, ret_code: int) -> str:
        """For a rejected key pair: where each key came from, since two sources can mix two accounts."""
        public, private = self.settings.key_sources
        if ret_code not in (171, 172) or not (public and private):  # hand-made Settings say nothing of sources
            return ""
        return f"the public key came from {public}, the private key from {private}"

    # -- paging ------------------------------------------------------------------------------------------

    def _page(self, params: Mapping[str, Any], offset: int, limit: int, deadline: float) -> RecordPage:
        action = str(params.get("Action", ""))
        return self._with_retries(
            {**params, "Offset": offset, "Limit": limit}, deadline, limit,
            lambda body, request_id: parse_records(body, action=action, request_id=request_id, limit=limit),
        )

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="ucloud-images")
            return self._pool

    def _too_many(self, action: str, what: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"UCloud API {action} at {self.settings.base_url} answered {what}; the listing was not read "
            f"(a client reads at most {self.max_images:,} images, Client(max_images=...), in at most "
            f"{MAX_PAGES:,} pages).",
            action=action,
        )

    def _read_listing(
        self, params: Mapping[str, Any], deadline: float
    ) -> tuple[tuple[ImageRecord, ...], bool] | None:
        """One full read: the images (each ImageId once, server order) and whether there were exactly
        ``TotalCount`` of them; ``None`` when the read was torn (TotalCount moved, a page short or empty).
        """
        action = str(params.get("Action", ""))
        body, request_id = self._with_retries(
            {**params, "Offset": 0, "Limit": self.page_size}, deadline, self.page_size,
            lambda body, request_id: (body, request_id),
        )
        # Ask for the other pages before validating this one, so validation overlaps their round trip.
        raw_total, raw_images = body.get("TotalCount"), body.get("ImageSet")
        served = len(raw_images) if isinstance(raw_images, list) else 0
        if type(raw_total) is int and raw_total > self.max_images:
            raise self._too_many(action, f"a TotalCount of {raw_total:,}")
        total_hint = raw_total if type(raw_total) is int and 0 < served <= self.page_size else 0
        if total_hint and math.ceil(total_hint / served) > MAX_PAGES:
            raise self._too_many(action, f"{served:,} image(s) per page for a TotalCount of {total_hint:,}")
        offsets = range(served, total_hint, served) if total_hint else range(0)  # parse_page judges the page
        images: dict[str, ImageRecord] = {}  # first occurrence wins
        with closing(_Prefetch(self, params, offsets, served, deadline)) as rest:
            first = parse_records(body, action=action, request_id=request_id, limit=self.page_size)
            del body, raw_images  # the raw page is garbage now; do not keep it alive through the read
            total, step = first.total_count, len(first.images)
            if step == 0:
                return ((), True) if total == 0 else None
            for image in first.images:
                images.setdefault(image.image_id, image)
            del first
            for offset, page in rest:
                if page.total_count != total or len(page.images) != min(step, total - offset):
                    return None
                seen = len(images)
                for image in page.images:
                    images.setdefault(image.image_id, image)
                if len(images) == seen:  # nothing new: the listing is shifting (or endless); read it again
                    return None
        return tuple(images.values()), len(images) == total

    def _read_consistent_listing(self, params: Mapping[str, Any]) -> tuple[ImageRecord, ...]:
        """Read until a read is complete, or two reads agree on a listing whose pages overlap."""
        deadline = self.retry.clock() + self.retry.total_seconds
        previous: list[str] | None = None
        for _ in range(LISTING_READS):
            read = self._read_listing(params, deadline)
            if read is None:
                continue
            images, complete = read
            if complete:
                return images
            ids = [image.image_id for image in images]
            if ids == previous:
                return images
            previous = ids
        action = str(params.get("Action", ""))
        raise TransportError(
            f"UCloud API {action} did not return a consistent image list in {LISTING_READS} reads (TotalCount "
            "moved, a page came back short or empty, or pages overlapped); try again.",
            action=action,
        )

    def describe_images(self, params: Mapping[str, Any]) -> tuple[Image, ...]:
        """Every image DescribeImage lists for ``params``, in server order, read once per process (memoised).

        Concurrent identical calls share one read (its answer or its error).
        """
        records = self.list_records(params)
        with self._lock:
            cached = self._full_memo.get(id(records))
        if cached is not None and cached[0] is records:
            return cached[1]
        images = tuple(record.full() for record in records)
        with self._lock:
            if len(self._full_memo) > 64:
                self._full_memo.clear()
            self._full_memo[id(records)] = (records, images)
        return images

    def list_records(self, params: Mapping[str, Any]) -> tuple[ImageRecord, ...]:
        """:meth:`describe_images` as lean records (what selection reads; ``full()`` is the :class:`Image`).

        This is what lookups use: a listing costs a fraction of the CPU and memory of validated models.
        """
        key = tuple(sorted(flatten(params).items()))
        with self._lock:
            listing = self._memo.get(key)
            if listing is not None:
                return listing
            flight = self._inflight.get(key)
            if flight is None:
                flight = self._inflight[key] = Future()
                leader, generation = True, self._generation
            else:
                leader = False
        if not leader:
            return flight.result()
        try:
            listing = self._read_consistent_listing(params)
        except BaseException as exc:
            with self._lock:
                self._inflight.pop(key, None)
            action = str(params.get("Action", ""))
            # A KeyboardInterrupt belongs to the reading thread; the waiters get an error of their own.
            shared = exc if isinstance(exc, Exception) else TransportError(
                f"UCloud API {action} was not read to the end: interrupted.", action=action
            )
            flight.set_exception(shared)
            raise
        with self._lock:
            if generation == self._generation:
                self._memo[key] = listing
            self._inflight.pop(key, None)
        flight.set_result(listing)
        return listing


_PROCESS_SALT = secrets.token_bytes(32)
_clients: dict[tuple[str, ...], Client] = {}
_clients_lock = threading.Lock()


def shared_client(settings: Settings) -> Client:
    """One client (session, pool, memo, retry budget) per account, endpoint and timeout, for the whole process."""
    # Keyed by a salted HMAC, so not even a digest that could be checked against a guessed key is kept.
    secret_digest = hmac.new(_PROCESS_SALT, settings.private_key.get_secret_value().encode(), "sha256").hexdigest()
    key = (*settings.cache_key, secret_digest, repr(settings.timeout))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = Client(settings)
        return client


def reset_shared_clients() -> None:
    """Forget every shared client and its memo, cutting off what they have in flight (tests; Ctrl+C;
    long-running processes that want fresh data)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


class _Prefetch:
    """The pages at ``offsets``, handed out in order; the pool fetches up to ``2 * max_workers`` ahead.

    Fetching starts on construction. ``close()`` cancels the pages not yet started (a failed or
    inconsistent page makes the rest useless).
    """

    def __init__(
        self, client: Client, params: Mapping[str, Any], offsets: Sequence[int], limit: int, deadline: float
    ) -> None:
        self._client, self._params, self._limit, self._deadline = client, params, limit, deadline
        self._upcoming = iter(offsets)
        self._queued: deque[tuple[int, Future[RecordPage]]] = deque()
        self._pool = client._executor() if client.max_workers > 1 and len(offsets) > 1 else None
        if self._pool is not None:
            for _ in range(2 * client.max_workers):
                if not self._submit_next():
                    break

    def _submit_next(self) -> bool:
        offset = next(self._upcoming, None)
        if offset is None or self._pool is None:
            return False
        try:
            future = self._pool.submit(self._client._page, self._params, offset, self._limit, self._deadline)
        except RuntimeError:  # the pool was shut down: the client was closed meanwhile
            raise self._closed() from None
        self._queued.append((offset, future))
        return True

    def _closed(self) -> TransportError:
        return self._client._closed_error(str(self._params.get("Action", "")))

    def __iter__(self) -> Iterator[tuple[int, RecordPage]]:
        if self._pool is None:  # sequential: one page at a time, in the caller's thread
            for offset in self._upcoming:
                yield offset, self._client._page(self._params, offset, self._limit, self._deadline)
            return
        while self._queued:
            offset, future = self._queued.popleft()
            try:
                page = future.result()
            except CancelledError:
                raise self._closed() from None
            self._submit_next()
            yield offset, page

    def close(self) -> None:
        for _, future in self._queued:
            future.cancel()
        self._queued.clear()
