"""The DescribeImage client: signed form POSTs over one keep-alive session, retries, paging, a memo.

Paging costs close to the physical minimum: the first page tells ``TotalCount`` and how many images the
server is willing to return per page (it may cap ``Limit``); every other page is then fetched at once by a
bounded pool. A listing that changes while it is read (``TotalCount`` moves, a page comes back short) is
read again from the start, a bounded number of times, so a lookup never returns a torn list.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from ._version import __version__
from ._errors import APIError, ResponseFormatError, TransportError
from ._image import Image, Page, parse_page
from ._settings import Settings
from ._signing import flatten, sign

__all__ = ["Client", "RetryPolicy", "shared_client"]

REQUEST_ID_HEADER = "X-UCLOUD-REQUEST-UUID"
# Transient by the API's own table (110 timeout, 130 gateway, 150 unavailable, 153 rate limit) and by the
# official SDKs (>= 2000). Everything else (160/161/170/171/172/230/299, ...) is final.
_RETRIED_RET_CODES = frozenset({110, 130, 150, 153})
_LISTING_READS = 3


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by attempts and by total time.

    The delay before retry ``n`` (0-based) is ``min(max_delay, base_delay * 4**n)`` scaled by a random
    factor in [0.5, 1). ``sleep``, ``clock`` and ``jitter`` are injectable so tests never really sleep.
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

    def delay(self, retry: int) -> float:
        return float(min(self.max_delay, self.base_delay * 4**retry) * (0.5 + self.jitter() / 2))


class _Retryable(Exception):
    def __init__(self, error: TransportError | APIError) -> None:
        super().__init__(str(error))
        self.error = error


def _request_id(response: requests.Response | None) -> str:
    return "" if response is None else response.headers.get(REQUEST_ID_HEADER, "")


class Client:
    """Talks DescribeImage to one account and endpoint. Thread-safe; share one per settings."""

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
        self._session = session or self._new_session(max_workers)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._memo: dict[tuple[tuple[str, str], ...], tuple[Image, ...]] = {}
        self._inflight: dict[tuple[tuple[str, str], ...], threading.Lock] = {}
        self.requests_sent = 0

    @staticmethod
    def _new_session(max_workers: int) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(10, max_workers), max_retries=0)
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
        self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def clear_memo(self) -> None:
        with self._lock:
            self._memo.clear()

    # -- one call ----------------------------------------------------------------------------------------

    def call(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """Send one signed request, retrying transient failures. Returns the body and the request id."""
        action = str(params.get("Action", ""))
        policy = self.retry
        started = policy.clock()
        last: TransportError | APIError | None = None
        attempt = 0
        for attempt in range(policy.attempts):
            try:
                return self._send_once(params, action)
            except _Retryable as retryable:
                last = retryable.error
            if attempt + 1 >= policy.attempts:
                break
            pause = policy.delay(attempt)
            if policy.clock() - started + pause > policy.total_seconds:
                break
            policy.sleep(pause)
        assert last is not None
        if isinstance(last, TransportError):
            raise type(last)(
                f"{last} Gave up after {attempt + 1} attempt(s).", action=last.action, request_id=last.request_id
            )
        raise last

    def _send_once(self, params: Mapping[str, Any], action: str) -> tuple[dict[str, Any], str]:
        settings = self.settings
        form = sign(params, settings.public_key, settings.private_key.get_secret_value())
        with self._lock:
            self.requests_sent += 1
        url = settings.base_url
        try:
            response = self._session.post(
                url, data=form, timeout=(min(settings.timeout, 10.0), settings.timeout)
            )
        except requests.Timeout:
            raise _Retryable(
                TransportError(
                    f"UCloud API {action} at {url} did not answer within {settings.timeout:g} s.", action=action
                )
            ) from None
        except requests.RequestException as exc:
            reason = type(exc).__name__
            raise _Retryable(
                TransportError(f"UCloud API {action} at {url} could not be reached ({reason}).", action=action)
            ) from None
        request_id = _request_id(response)
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(
                TransportError(
                    f"UCloud API {action} answered HTTP {response.status_code} (request id {request_id or 'unknown'}).",
                    action=action,
                    request_id=request_id,
                )
            )
        try:
            body = response.json()
        except (ValueError, json.JSONDecodeError):
            raise _Retryable(
                ResponseFormatError(
                    f"UCloud API {action} answered HTTP {response.status_code} with a body that is not JSON "
                    f"(request id {request_id or 'unknown'}).",
                    action=action,
                    request_id=request_id,
                )
            ) from None
        if not isinstance(body, dict) or "RetCode" not in body:
            raise ResponseFormatError(
                f"UCloud API {action} answered HTTP {response.status_code} with JSON that has no RetCode "
                f"(request id {request_id or 'unknown'}).",
                action=action,
                request_id=request_id,
            )
        ret_code = body["RetCode"]
        if isinstance(ret_code, bool) or not isinstance(ret_code, int):
            raise ResponseFormatError(
                f"UCloud API {action} answered with a RetCode that is not an integer: {ret_code!r:.40} "
                f"(request id {request_id or 'unknown'}).",
                action=action,
                request_id=request_id,
            )
        if ret_code != 0:
            error = APIError(ret_code, str(body.get("Message", "")), action=action, request_id=request_id)
            if ret_code in _RETRIED_RET_CODES or ret_code >= 2000:
                raise _Retryable(error)
            raise error
        return body, request_id

    # -- paging ------------------------------------------------------------------------------------------

    def _page(self, params: Mapping[str, Any], offset: int, limit: int) -> Page:
        body, request_id = self.call({**params, "Offset": offset, "Limit": limit})
        return parse_page(body, action=str(params.get("Action", "")), request_id=request_id)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="ucloud-images")
            return self._pool

    def _read_listing(self, params: Mapping[str, Any]) -> tuple[Image, ...] | None:
        """One full read; ``None`` when the listing changed while it was read."""
        first = self._page(params, 0, self.page_size)
        total, step = first.total_count, len(first.images)
        if step == 0:
            return () if total == 0 else None
        offsets = list(range(step, total, step))
        if len(offsets) <= 1 or self.max_workers == 1:
            rest = [self._page(params, offset, self.page_size) for offset in offsets]
        else:
            rest = list(self._executor().map(lambda offset: self._page(params, offset, self.page_size), offsets))
        images: dict[str, Image] = {}
        for offset, page in zip([0, *offsets], [first, *rest], strict=True):
            if page.total_count != total or len(page.images) != min(step, total - offset):
                return None
            for image in page.images:
                images.setdefault(image.image_id, image)
        return tuple(images.values()) if len(images) == total else None

    def describe_images(self, params: Mapping[str, Any]) -> tuple[Image, ...]:
        """Every image DescribeImage lists for ``params``, read once per process (memoised)."""
        key = tuple(sorted(flatten(params).items()))
        with self._lock:
            if key in self._memo:
                return self._memo[key]
            gate = self._inflight.setdefault(key, threading.Lock())
        with gate:  # one fetch per key at a time; later callers find the memo filled
            with self._lock:
                if key in self._memo:
                    return self._memo[key]
            for _ in range(_LISTING_READS):
                listing = self._read_listing(params)
                if listing is not None:
                    with self._lock:
                        self._memo[key] = listing
                        self._inflight.pop(key, None)
                    return listing
        action = str(params.get("Action", ""))
        raise TransportError(
            f"UCloud API {action} kept changing its image list while it was read ({_LISTING_READS} reads: "
            "TotalCount moved or a page came back short); try again.",
            action=action,
        )


_clients: dict[tuple[str, ...], Client] = {}
_clients_lock = threading.Lock()


def shared_client(settings: Settings) -> Client:
    """One client (session, pool, memo) per account, endpoint and timeout, for the whole process."""
    secret_digest = hashlib.sha256(settings.private_key.get_secret_value().encode()).hexdigest()
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
