"""Signed requests over a :class:`Transport`: one deadline each, bodies read within size caps, retries, the envelope.

One request's life (send, bounded read, decode, retry, the words for each failure) reads best whole.

The transport (``http.HTTPTransport`` by default, or any object with its ``send``/``close``) only moves a
signed form to a URL and hands back status, headers and a readable body. Everything a server could abuse is
judged here, above it, whatever the transport: the deadline on the policy's clock, redirects (never
followed), the size of the body after decompression, the JSON and its RetCode, and which failures are
retried (:class:`~pulumi_ucloud_images._api.retry.RetryPolicy`).
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

from pydantic_core import from_json

from .._display import shown as server_text
from .._errors import (
    APIError,
    ConnectionFailedError,
    InvalidQueryError,
    RedirectError,
    ResponseFormatError,
    ResponseTimeoutError,
    ResponseTooLargeError,
    TransportError,
)
from .._settings.settings import Settings
from .http import FAILURES, describe_failure, raised_by_caller
from .retry import RetryPolicy, _retry_after, _RetryBudget
from .signing import sign

__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "REQUEST_LOG", "Sender", "Transport", "TransportResponse"]

REQUEST_ID_HEADER = "X-UCLOUD-REQUEST-UUID"
# Transient by the API's own table (110 timeout, 130 gateway, 150 unavailable, 153 rate limit) and by the
# official SDKs (>= 2000). Everything else (160/161/170/171/172/230/299, ...) is final.
RETRIED_RET_CODES = frozenset({110, 130, 150, 153})
RATE_LIMITED_RET_CODE = 153
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# JSON values (counted as commas) a page may hold per image it may carry: real records have ~60.
_VALUES_PER_IMAGE = 1024
_READ_SIZE = 256 * 1024
_MIB = 1024 * 1024

_T = TypeVar("_T")
_A = TypeVar("_A")
_R = TypeVar("_R")
# One INFO line per request (its retries included) when enabled, as `ucloud-images --verbose` does.
REQUEST_LOG = logging.getLogger("pulumi_ucloud_images.requests")


class TransportResponse(Protocol):
    """One answer: its status, its headers (looked up case-insensitively) and its body, read as it arrives."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def length(self) -> int | None:
        """The body's length as its ``Content-Length`` declares it (as sent), or ``None`` when it declares none."""
        ...

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes of the body, decoded as its ``Content-Encoding`` says (gzip, deflate), each read
        inflating no more than that; ``b""`` at its end. A body that does not decode raises ``zlib.error``. A
        transport that cut the answer off (its deadline passed, or it was closed) raises ``TimeoutError``
        rather than end early."""
        ...

    def close(self) -> None:
        """Release the answer (a connection not read to its end is not reused)."""
        ...


class Transport(Protocol):
    """Sends one signed form and hands back the answer; size caps, decoding and retries run above it.

    ``send`` POSTs ``form`` (``application/x-www-form-urlencoded``, ``Accept-Encoding: gzip, deflate``) to
    ``url`` and must not follow redirects; ``timeout`` is the seconds the whole exchange may take, body
    included. Failures are ``OSError`` s (``ConnectionRefusedError``, ``TimeoutError``, ...) or
    requests'/urllib3's exceptions; a caller's exception (a signal handler's) propagates, marked by
    ``http.raised_by_caller`` when it is an ``OSError``. ``close()`` cuts off what is in flight; the transport
    may be used again.
    """

    def send(self, url: str, form: Mapping[str, str], timeout: float) -> TransportResponse: ...

    def close(self) -> None: ...


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
    step: Callable[[_A, str], _R], params: Mapping[str, Any], began: float, attempts: Callable[[], int]
) -> Callable[[_A, str], _R]:
    """``step`` (``use`` or ``read``), logging the request once it made a result of a successful answer (only
    RetCode 0 reaches either; ``read`` returns ``None`` to leave the answer to ``use``). A step that raises
    leaves the line to the failure, so a request is never logged twice."""

    def logged(answer: _A, request_id: str) -> _R:
        result = step(answer, request_id)
        if result is not None:
            _log_request(params, began, attempts(), 0, request_id)
        return result

    return logged


def is_retried_ret_code(ret_code: int) -> bool:
    """Whether an answer with this RetCode is worth another attempt."""
    return ret_code in RETRIED_RET_CODES or ret_code >= 2000



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


def _describe_phase(timeout: float, capped: bool, budget: float) -> str:
    within = f"within {timeout:.3g} s"
    return f"{within}, all that was left of the lookup's time budget of {budget:g} s" if capped else within



class Sender:
    """Signed requests to one endpoint over one transport, with one retry budget. Thread-safe.

    ``close()`` cuts off the requests in flight and ends their pauses; later requests proceed.
    """

    def __init__(
        self, settings: Settings, transport: Transport, retry: RetryPolicy, max_response_bytes: int
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.retry = retry
        self.max_response_bytes = max_response_bytes
        self.requests_sent = 0
        self._lock = threading.Lock()
        self._parse_lock = threading.Lock()  # one page parsed at a time: parsing is what costs memory
        self._budget = _RetryBudget(retry)
        self._closing = threading.Event()  # replaced on close(): calls in flight stop, later calls proceed

    def forked(self) -> None:
        """In a forked child: locks held by the parent's threads are not this process's to wait for."""
        self._lock = threading.Lock()
        self._parse_lock = threading.Lock()
        self._closing = threading.Event()
        self._budget.forked()

    def close(self) -> None:
        with self._lock:
            closing, self._closing = self._closing, threading.Event()
        closing.set()
        self.transport.close()

    def _sleep(self, seconds: float, closing: threading.Event) -> None:
        if self.retry.sleep is time.sleep:
            closing.wait(seconds)
        else:
            self.retry.sleep(seconds)

    def closed_error(self, action: str) -> TransportError:
        return TransportError(
            f"UCloud API {action} was not read to the end: the client was closed meanwhile.", action=action
        )

    def send(
        self,
        params: Mapping[str, Any],
        deadline: float | None,
        limit: int | None,
        use: Callable[[dict[str, Any], str], _T],
        read: Callable[[bytearray, str], _T | None] | None = None,
    ) -> _T:
        """Send until an answer is usable, retrying what may change; ``use`` turns the envelope into the result
        (under the parse lock, when ``limit`` says it is a page of at most that many images). ``read``, if
        given, is tried first on the answer's bytes: it returns the result of a clean, successful answer in one
        pass, or ``None`` to leave the answer to the general path (JSON, RetCode, ``use``)."""
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
            if read is not None:
                read = _logging(read, params, began, lambda: attempts)
        # Time too short for an answer: a retry is not started in it, so the error stays the last real one
        # (a RetCode, a refused connection), not a timeout of a few microseconds.
        sliver = max(0.05, 0.01 * policy.total_seconds)
        while True:
            if closing.is_set():
                raise self.closed_error(action)
            remaining = deadline - policy.clock()
            if remaining <= 0 or (last is not None and remaining < sliver):
                why = f": the lookup's time budget of {policy.total_seconds:g} s is spent"
                break
            attempts += 1
            timeout = min(self.settings.timeout, remaining)
            try:
                result = self._send_once(
                    params, action, timeout, timeout < self.settings.timeout, limit, use, read, closing
                )
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
                raise self.closed_error(action)
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
                spent = left <= sliver
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
        read: Callable[[bytearray, str], _T | None] | None,
        closing: threading.Event,
    ) -> _T:
        settings = self.settings
        form = sign(params, settings.public_key, settings.private_key)  # revealed only inside the hash
        with self._lock:
            self.requests_sent += 1
        clock = self.retry.clock
        soft_deadline = clock() + timeout  # the same deadline on the policy's clock, checked between reads
        received = [-1]  # bytes of the body read so far; -1 while waiting for the status line and headers
        try:
            response = self.transport.send(settings.base_url, form, timeout)
        except FAILURES as exc:
            if raised_by_caller(exc):
                raise
            raise self._failure(exc, closing, action, timeout, capped, received[0]) from None
        try:
            if 300 <= response.status < 400:
                raise self._redirect(response, action)
            raw = self._read_body(response, soft_deadline, action, received)
        except FAILURES as exc:
            if raised_by_caller(exc):
                raise
            raise self._failure(exc, closing, action, timeout, capped, received[0]) from None
        finally:
            response.close()
        if closing.is_set():
            raise self.closed_error(action)
        if clock() > soft_deadline:
            raise self._late(action, timeout, capped, received[0])
        return self._decode(response, raw, action, limit, use, read)

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
        self, exc: BaseException, closing: threading.Event, action: str, timeout: float, capped: bool, received: int
    ) -> Exception:
        """What a failed exchange means: a final error, or a :class:`_Retryable` one."""
        url = self.settings.base_url
        if closing.is_set():
            return self.closed_error(action)
        failure = describe_failure(exc)
        kind, words = failure.kind, failure.words
        if kind == "setup":
            return ConnectionFailedError(f"UCloud API {action} was not sent: {words}.", action=action)
        if kind == "invalid_url":
            return InvalidQueryError(f"Invalid base_url {url!r}: {words}.", field="base_url")
        if kind == "connect_timeout":
            return _Retryable(ConnectionFailedError(
                f"UCloud API {action} at {url} could not be reached (no connection "
                f"{_describe_phase(timeout, capped, self.retry.total_seconds)}).", action=action), timeout=True)
        if kind == "timeout":
            return self._late(action, timeout, capped, received)
        if kind in ("tls", "tls_final"):
            error = ConnectionFailedError(f"UCloud API {action} at {url} {words}.", action=action)
            return error if kind == "tls_final" else _Retryable(error)
        if kind == "malformed":
            return _Retryable(TransportError(f"UCloud API {action} at {url} answered with {words}.", action=action))
        if kind == "unreachable":
            return _Retryable(ConnectionFailedError(f"UCloud API {action} at {url} could not be reached ({words}).",
                                                    action=action))
        if received < 0:
            shown = "" if kind == "dropped_quietly" else f" ({words})"
            return _Retryable(TransportError(
                f"UCloud API {action} at {url} closed the connection without answering{shown}.", action=action))
        return _Retryable(TransportError(
            f"UCloud API {action} at {url} broke off its answer after {received:,} bytes of the body ({words}).",
            action=action))

    def _redirect(self, response: TransportResponse, action: str) -> RedirectError:
        url = self.settings.base_url
        request_id = server_text(response.headers.get(REQUEST_ID_HEADER, ""), 100)  # the server's text
        host = _location_host(url, response.headers.get("Location"))
        where = f"a redirect to {host}" if host else "a redirect without a Location"
        return RedirectError(
            f"UCloud API {action} at {url} answered HTTP {response.status}, {where} (request id "
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
        self, response: TransportResponse, soft_deadline: float, action: str, received: list[int]
    ) -> bytearray:
        """The whole body, decoded by the transport a bounded read at a time; over the size limit or past the
        deadline, an error (a trickling server is cut off: by the transport, or between reads on the policy's
        clock)."""
        limit = self.max_response_bytes
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise ResponseFormatError(
                f"UCloud API {action} answered with Content-Encoding {encoding[:40]!r}, which was not asked for.",
                action=action, request_id=server_text(response.headers.get(REQUEST_ID_HEADER, ""), 100),
            )
        declared = response.length
        if declared is not None and declared > limit:
            raise self._too_large(action, f"a Content-Length of {declared:,} bytes")
        clock = self.retry.clock
        body = bytearray()
        received[0] = 0
        while True:
            try:
                chunk = response.read(min(_READ_SIZE, limit + 1 - len(body)))
            except zlib.error:
                raise ResponseFormatError(
                    f"UCloud API {action} answered a {encoding} body that does not inflate.", action=action
                ) from None
            if clock() > soft_deadline:
                raise TimeoutError("the body did not arrive in time")
            if not chunk:
                break
            body += chunk
            received[0] = len(body)
            if len(body) > limit:
                size = f"{limit / _MIB:g} MiB"
                compressed = encoding not in ("", "identity")
                raise self._too_large(
                    action, f"a {encoding} body that inflates past {size}" if compressed else f"a body over {size}"
                )
        return body

    def _decode(
        self,
        response: TransportResponse,
        raw: bytearray,
        action: str,
        limit: int | None,
        use: Callable[[dict[str, Any], str], _T],
        read: Callable[[bytearray, str], _T | None] | None = None,
    ) -> _T:
        status = response.status
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
            # A body no longer than the bound cannot hold more commas than it: only a longer one is counted.
            allowed = limit * _VALUES_PER_IMAGE + 4096
            values = raw.count(b",") if len(raw) > allowed else 0
            if values > allowed:
                raise malformed(f"{values:,} JSON values, more than a page of {limit:,} images can hold")
        with self._parse_lock:
            if read is not None:
                result = read(raw, request_id)
                if result is not None:
                    return result
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

