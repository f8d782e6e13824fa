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

Retries: connection errors, timeouts, HTTP 429 and 5xx, a 2xx/3xx body that is not JSON, and RetCode 110,
130, 150, 153 and >= 2000 are retried with exponential backoff and jitter (:class:`RetryPolicy`). Every other
RetCode (160, 161, 170, 171, 172, 230, 299, ...) and a JSON answer of the wrong shape fail at once.

Time bound: one :meth:`Client.describe_images` (every page, retry and re-read of a lookup) starts no request
and no backoff pause once ``RetryPolicy.total_seconds`` (default 60 s) have passed since it began, and gives
each request the budget left, capped at ``Settings.timeout``, as its read timeout and as the deadline for its
whole body (connect timeout: at most 10 s). A lookup therefore returns or raises within ``total_seconds`` plus
one connect timeout for a server that answers, fails, resets or stalls; a server that trickles its body can
stretch the last request by one more read timeout.
"""
from __future__ import annotations

import hmac
import random
import secrets
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import requests
from pydantic_core import from_json
from requests.adapters import HTTPAdapter

from ._display import shown as server_text
from ._errors import APIError, ResponseFormatError, TransportError
from ._image import Image, Page, parse_page
from ._settings import Settings
from ._signing import flatten, sign
from ._version import __version__

__all__ = ["Client", "RetryPolicy", "reset_shared_clients", "shared_client"]

# Pages are requested before the first one is validated; a TotalCount beyond this is not trusted that far.
_PREFETCH_TOTAL_LIMIT = 10_000_000
REQUEST_ID_HEADER = "X-UCLOUD-REQUEST-UUID"
# Transient by the API's own table (110 timeout, 130 gateway, 150 unavailable, 153 rate limit) and by the
# official SDKs (>= 2000). Everything else (160/161/170/171/172/230/299, ...) is final.
RETRIED_RET_CODES = frozenset({110, 130, 150, 153})
LISTING_READS = 3
CONNECT_TIMEOUT = 10.0
_CHUNK = 256 * 1024

_MemoKey = tuple[tuple[str, str], ...]


def is_retried_ret_code(ret_code: int) -> bool:
    """Whether an answer with this RetCode is worth another attempt."""
    return ret_code in RETRIED_RET_CODES or ret_code >= 2000


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by attempts per request and by total time per lookup.

    The pause before retry ``n`` (0-based) is ``min(max_delay, base_delay * 4**n)`` scaled by
    ``0.5 + jitter() / 2``: 50-100 ms, 0.2-0.4 s, 0.8-1.6 s, then 2.5-5 s by default (the official Go SDK
    also grows by 4x; the jitter spreads the retries of concurrent pages). ``attempts`` bounds the tries of one
    request, ``total_seconds`` a whole :meth:`Client.describe_images`. ``sleep``, ``clock`` and ``jitter`` are
    injectable so tests never really sleep.
    """

    attempts: int = 5
    total_seconds: float = 60.0
    base_delay: float = 0.1
    max_delay: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if not self.total_seconds > 0:
            raise ValueError("RetryPolicy.total_seconds must be positive")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def delay(self, retry: int) -> float:
        """The pause before retry ``retry`` (0-based)."""
        return float(min(self.max_delay, self.base_delay * 4**retry) * (0.5 + self.jitter() / 2))


class _Retryable(Exception):
    def __init__(self, error: TransportError | APIError) -> None:
        super().__init__(str(error))
        self.error = error


def _read_body(response: requests.Response, deadline: float, clock: Callable[[], float]) -> bytes:
    """The whole body, or ``requests.Timeout`` once ``deadline`` passes (a trickling server is cut off)."""
    chunks = []
    for chunk in response.iter_content(_CHUNK):
        chunks.append(chunk)
        if clock() > deadline:
            raise requests.Timeout("the response body did not arrive in time")
    return b"".join(chunks)


class Client:
    """Talks DescribeImage to one account and endpoint. Thread-safe; share one per settings.

    ``page_size`` is the ``Limit`` of the first page (later pages ask for as many as it returned);
    ``max_workers`` bounds the pages fetched at once. ``session`` replaces the keep-alive session the client
    makes (and then closes) itself.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        max_workers: int = 16,
        page_size: int = 1000,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.max_workers = max_workers
        self.page_size = page_size
        self._owns_session = session is None
        self._session = session or self._new_session(max_workers)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._memo: dict[_MemoKey, tuple[Image, ...]] = {}
        self._inflight: dict[_MemoKey, Future[tuple[Image, ...]]] = {}
        self._generation = 0
        self.requests_sent = 0

    @staticmethod
    def _new_session(max_workers: int) -> requests.Session:
        session = requests.Session()
        # Room for every pool worker plus as many callers fetching first pages, so no connection is discarded.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, 2 * max_workers), max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = f"pulumi-ucloud-images/{__version__}"
        return session

    def __repr__(self) -> str:
        return f"Client(base_url={self.settings.base_url!r}, public_key={self.settings.public_key!r})"

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
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
            self._generation += 1

    # -- one call ----------------------------------------------------------------------------------------

    def call(self, params: Mapping[str, Any], *, deadline: float | None = None) -> tuple[dict[str, Any], str]:
        """Send one signed request, retrying transient failures. Returns the body and the request id.

        ``deadline`` (on ``retry.clock``) is when to stop starting attempts; by default ``total_seconds`` from now.
        """
        action = str(params.get("Action", ""))
        policy = self.retry
        started = policy.clock()
        if deadline is None:
            deadline = started + policy.total_seconds
        last: TransportError | APIError | None = None
        attempts = 0
        while attempts < policy.attempts:
            remaining = deadline - policy.clock()
            if remaining <= 0:
                break
            attempts += 1
            try:
                return self._send_once(params, action, min(self.settings.timeout, remaining))
            except _Retryable as retryable:
                last = retryable.error
            if attempts >= policy.attempts:
                break
            pause = policy.delay(attempts - 1)
            if policy.clock() + pause >= deadline:
                break
            policy.sleep(pause)
        elapsed = policy.clock() - started
        if last is None:
            raise TransportError(
                f"UCloud API {action} was not called: the lookup's time budget of {policy.total_seconds:g} s "
                "was spent.",
                action=action,
            )
        if isinstance(last, TransportError):
            raise type(last)(
                f"{last} Gave up after {attempts} attempt(s) in {elapsed:.1f} s.",
                action=last.action,
                request_id=last.request_id,
            )
        raise last

    def _send_once(self, params: Mapping[str, Any], action: str, timeout: float) -> tuple[dict[str, Any], str]:
        settings = self.settings
        form = sign(params, settings.public_key, settings.private_key)  # revealed only inside the hash
        with self._lock:
            self.requests_sent += 1
        url = settings.base_url
        clock = self.retry.clock
        try:
            response = self._session.post(
                url, data=form, timeout=(min(timeout, CONNECT_TIMEOUT), timeout), stream=True
            )
            try:
                raw = _read_body(response, clock() + timeout, clock)
            finally:
                response.close()
        except requests.Timeout:
            raise _Retryable(
                TransportError(f"UCloud API {action} at {url} did not answer within {timeout:g} s.", action=action)
            ) from None
        except requests.RequestException as exc:
            raise _Retryable(
                TransportError(
                    f"UCloud API {action} at {url} could not be reached ({_cause(exc)}).", action=action
                )
            ) from None
        return self._decode(response, raw, action)

    def _decode(self, response: requests.Response, raw: bytes, action: str) -> tuple[dict[str, Any], str]:
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
                    f"UCloud API {action} answered HTTP {status} (request id {shown_id}).",
                    action=action,
                    request_id=request_id,
                )
            )
        try:
            body = from_json(raw)  # pydantic's JSON parser: ~40% faster than json.loads, interns repeated keys
        except ValueError:
            not_json = malformed("a body that is not JSON")
            # A truncated or garbled answer is transient; an HTML 4xx page (wrong base URL) is not.
            if status < 400:
                raise _Retryable(not_json) from None
            raise not_json from None
        if not isinstance(body, dict) or "RetCode" not in body:
            raise malformed("JSON that has no RetCode")
        ret_code = body["RetCode"]
        if isinstance(ret_code, bool) or not isinstance(ret_code, int):
            raise malformed(f"a RetCode that is not an integer: {ret_code!r:.40}")
        if ret_code != 0:
            message = body.get("Message")
            error = APIError(
                ret_code,
                "" if message is None else str(message),
                action=action,
                request_id=request_id,
                detail=self._key_detail(ret_code),
            )
            if is_retried_ret_code(ret_code):
                raise _Retryable(error)
            raise error
        return body, request_id

    def _key_detail(self, ret_code: int) -> str:
        """For a rejected key pair: where each key came from, since two sources can mix two accounts."""
        public, private = self.settings.key_sources
        if ret_code not in (171, 172) or not (public and private):  # hand-made Settings say nothing of sources
            return ""
        return f"the public key came from {public}, the private key from {private}"

    # -- paging ------------------------------------------------------------------------------------------

    def _page(self, params: Mapping[str, Any], offset: int, limit: int, deadline: float) -> Page:
        body, request_id = self.call({**params, "Offset": offset, "Limit": limit}, deadline=deadline)
        return parse_page(body, action=str(params.get("Action", "")), request_id=request_id)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="ucloud-images")
            return self._pool

    def _read_listing(self, params: Mapping[str, Any], deadline: float) -> tuple[tuple[Image, ...], bool] | None:
        """One full read: the images (each ImageId once, server order) and whether there were exactly
        ``TotalCount`` of them; ``None`` when the read was torn (TotalCount moved, a page short or empty).
        """
        action = str(params.get("Action", ""))
        body, request_id = self.call({**params, "Offset": 0, "Limit": self.page_size}, deadline=deadline)
        # Ask for the other pages before validating this one, so validation overlaps their round trip.
        raw_total, raw_images = body.get("TotalCount"), body.get("ImageSet")
        served = len(raw_images) if isinstance(raw_images, list) else 0
        total_hint = raw_total if type(raw_total) is int and raw_total <= _PREFETCH_TOTAL_LIMIT else 0
        offsets = range(served, total_hint, served) if served else range(0)  # parse_page judges the page itself
        with closing(_Prefetch(self, params, offsets, served, deadline)) as rest:
            first = parse_page(body, action=action, request_id=request_id)
            del body, raw_images  # the raw page is garbage now; do not keep it alive through the read
            total, step = first.total_count, len(first.images)
            if step == 0:
                return ((), True) if total == 0 else None
            if total > _PREFETCH_TOTAL_LIMIT:
                return None  # no listing is that long: not a count to page by
            images: dict[str, Image] = {}  # first occurrence wins
            for image in first.images:
                images.setdefault(image.image_id, image)
            for offset, page in rest:
                if page.total_count != total or len(page.images) != min(step, total - offset):
                    return None
                seen = len(images)
                for image in page.images:
                    images.setdefault(image.image_id, image)
                if len(images) == seen:  # nothing new: the listing is shifting (or endless); read it again
                    return None
        return tuple(images.values()), len(images) == total

    def _read_consistent_listing(self, params: Mapping[str, Any]) -> tuple[Image, ...]:
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
    """One client (session, pool, memo) per account, endpoint and timeout, for the whole process."""
    # Keyed by a salted HMAC, so not even a digest that could be checked against a guessed key is kept.
    secret_digest = hmac.new(_PROCESS_SALT, settings.private_key.get_secret_value().encode(), "sha256").hexdigest()
    key = (*settings.cache_key, secret_digest, repr(settings.timeout))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = Client(settings)
        return client


def reset_shared_clients() -> None:
    """Forget every shared client and its memo (tests; long-running processes that want fresh data)."""
    with _clients_lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()


def _cause(exc: BaseException) -> str:
    """The innermost reason of a connection failure, in words: ``connection refused``, not ``ConnectionError``."""
    reasons = {
        ConnectionRefusedError: "connection refused",
        ConnectionResetError: "connection reset",
        ConnectionAbortedError: "connection aborted",
        socket.gaierror: "host name not resolved",
        ssl.SSLError: "TLS handshake failed",
    }
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for kind, words in reasons.items():
            if isinstance(current, kind):
                return words
        nested = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = current.__cause__ or current.__context__ or nested or getattr(current, "reason", None)
    return type(exc).__name__


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
        self._queued: deque[tuple[int, Future[Page]]] = deque()
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
        action = str(self._params.get("Action", ""))
        return TransportError(
            f"UCloud API {action} was not read to the end: the client was closed meanwhile.", action=action
        )

    def __iter__(self) -> Iterator[tuple[int, Page]]:
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
