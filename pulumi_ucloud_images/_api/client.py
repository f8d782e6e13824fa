"""The DescribeImage client: listings read whole and consistent, memoised, shared; over ``calls.py``.

Paging, consistency, the memo and what a forked child drops are one client's state.

Paging costs close to the physical minimum. The first page asks for ``page_size`` images (default 1000) and
tells ``TotalCount`` and how many images the server really returns per page (it may cap ``Limit``); every
other page is then requested with that size, at once, by a bounded pool (``max_workers``, default 32), while
the first page is being validated. So a lookup takes ``1 + ceil(later_pages / max_workers)`` sequential round
trips. The result is what a careful sequential reader (``Offset +=`` page length until ``TotalCount``) sees:
server order, each ImageId once.

A read that is torn (``TotalCount`` moves, a page comes back short or empty, or adds no new image) is read
again from the start, at most three reads in all. A read whose pages overlap (fewer distinct images than
``TotalCount``) is accepted only when the next read lists exactly the same images. So a lookup never returns
a list torn by a change on the server; it fails with :class:`InconsistentListingError` instead.

A listing is memoised per client and server-side parameters, identical reads in flight share one
(single-flight), and :func:`shared_client` keeps one client per account and endpoint for the process. Every
bound on time and memory of one request is the transport layer's; this module adds the bounds of a listing:
at most ``max_images`` (default 50,000) images in at most ``MAX_PAGES`` pages, and one page parsed at a time.
"""

from __future__ import annotations

import hmac
import math
import os
import secrets
import threading
import weakref
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import closing
from typing import Any

import requests

from .._errors import InconsistentListingError, ResponseTooLargeError, TransportError
from .._settings.settings import Settings
from .calls import DEFAULT_MAX_RESPONSE_BYTES, Sender, Transport
from .http import HTTPTransport
from .image import Image
from .records import ImageRecord, RecordPage, parse_records, records_from_json
from .retry import RetryPolicy
from .signing import flatten

__all__ = [
    "DEFAULT_MAX_IMAGES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "Client",
    "reset_shared_clients",
    "shared_client",
]

LISTING_READS = 3
DEFAULT_MAX_IMAGES = 50_000
# A listing needing more pages than this (a server answering a few images per page for a large TotalCount)
# is refused rather than read with thousands of requests.
MAX_PAGES = 5_000

_MemoKey = tuple[tuple[str, str], ...]


class Client:
    """Talks DescribeImage to one account and endpoint. Thread-safe; share one per settings.

    ``page_size`` is the ``Limit`` of the first page (later pages ask for as many as it returned);
    ``max_workers`` bounds the pages fetched at once. ``max_response_bytes`` caps one answer after
    decompression, ``max_images`` the TotalCount of a listing.

    ``transport`` sends the signed requests (see :class:`~pulumi_ucloud_images._api.calls.Transport`); by default an
    :class:`~pulumi_ucloud_images._api.http.HTTPTransport` over a keep-alive ``requests.Session`` the client makes (and
    closes)
    itself, or over ``session`` when one is given; the per-request deadline then holds only as far as that
    session's adapters allow. ``pulumi_ucloud_images.testing.Emulator.transport()`` answers in-process.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        transport: Transport | None = None,
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
        if session is not None and transport is not None:
            raise ValueError("give a session or a transport, not both")
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.max_workers = max_workers
        self.page_size = page_size
        self.max_response_bytes = max_response_bytes
        self.max_images = max_images
        if transport is None:
            # Room for every pool worker plus as many callers fetching first pages, so no connection is discarded.
            transport = HTTPTransport(session, pool_size=max(10, 2 * max_workers))
        self._transport = transport
        self._sender = Sender(settings, transport, self.retry, max_response_bytes)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._memo: dict[_MemoKey, tuple[ImageRecord, ...]] = {}
        self._inflight: dict[_MemoKey, Future[tuple[ImageRecord, ...]]] = {}
        # describe_images' models of a memoised listing (the listing is kept in the entry, so its id stays its own)
        self._full_memo: dict[int, tuple[tuple[ImageRecord, ...], tuple[Image, ...]]] = {}
        self._generation = 0
        self._pid = os.getpid()
        _MADE.add(self)

    def _forked(self) -> None:
        """In a forked child: drop what the parent's threads held (locks, the page pool, reads in flight); the
        transport makes its own connections. Memoised listings are kept: they are answers, not connections."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._pool = None  # its threads stayed in the parent
        self._inflight = {}  # their readers too
        self._sender.forked()

    def _in_this_process(self) -> None:
        if self._pid != os.getpid():  # forked without the at-fork hook (a fork() from C)
            self._forked()

    @property
    def requests_sent(self) -> int:
        """How many requests this client has sent (every attempt counts)."""
        return self._sender.requests_sent

    def __repr__(self) -> str:
        return f"Client(base_url={self.settings.base_url!r}, public_key={self.settings.public_key!r})"

    def close(self) -> None:
        """Stop: requests in flight are cut off, pauses end, pages not started are cancelled.

        The client (and its transport) can be used again afterwards.
        """
        self._in_this_process()
        with self._lock:
            pool, self._pool = self._pool, None
        self._sender.close()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

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

    def call(self, params: Mapping[str, Any], *, deadline: float | None = None) -> tuple[dict[str, Any], str]:
        """Send one signed request, retrying transient failures. Returns the body and the request id.

        ``deadline`` (on ``retry.clock``) is when to stop starting attempts; by default ``total_seconds`` from now.
        """
        self._in_this_process()
        return self._sender.send(params, deadline, None, lambda body, request_id: (body, request_id))

    # -- paging ------------------------------------------------------------------------------------------

    def _page(self, params: Mapping[str, Any], offset: int, limit: int, deadline: float) -> RecordPage:
        action = str(params.get("Action", ""))
        return self._sender.send(
            {**params, "Offset": offset, "Limit": limit}, deadline, limit,
            lambda body, request_id: parse_records(
                body, action=action, request_id=request_id, limit=limit, params=params
            ),
            lambda raw, request_id: records_from_json(
                raw, action=action, request_id=request_id, limit=limit, params=params
            ),
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
        body, request_id = self._sender.send(
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
            first = parse_records(body, action=action, request_id=request_id, limit=self.page_size, params=params)
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
        raise InconsistentListingError(
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
            cached = self._full_memo.get(id(records))
            if cached is not None and cached[0] is records:
                return cached[1]  # another thread built them meanwhile: every caller gets the one tuple
            if len(self._full_memo) > 64:
                self._full_memo.clear()
            self._full_memo[id(records)] = (records, images)
        return images

    def list_records(self, params: Mapping[str, Any]) -> tuple[ImageRecord, ...]:
        """:meth:`describe_images` as lean records (what selection reads; ``full()`` is the :class:`Image`).

        This is what lookups use: a listing costs a fraction of the CPU and memory of validated models.
        """
        key = tuple(sorted(flatten(params).items()))
        self._in_this_process()
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
_MADE: weakref.WeakSet[Client] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked child (multiprocessing's default on Linux, prefork servers) shares nothing with its parent:
    the shared clients are forgotten, and every client drops its locks, pool and reads in flight."""
    global _clients_lock
    _clients_lock = threading.Lock()
    _clients.clear()
    for client in list(_MADE):
        client._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


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
        return self._client._sender.closed_error(str(self._params.get("Action", "")))

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
