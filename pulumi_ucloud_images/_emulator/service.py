"""A local DescribeImage server: the real wire protocol on loopback, for offline use, tests and benchmarks.

The API's semantics (checks in the gateway's order, filters, paging, faults, projects) and the
catalogue's mutations share one lock and are one concern; how answers travel is in
:mod:`~pulumi_ucloud_images._emulator.server`.

It is a real HTTP/1.1 server (keep-alive, ``Content-Length``), so the very code path that talks to UCloud
talks to it: signed form POSTs (or GETs with a query string) to one URL, the RetCode envelope, the
``X-UCLOUD-REQUEST-UUID`` header, ``Offset``/``Limit`` paging with a capped ``Limit``.

Checks run in the order the real gateway applies them: missing ``Action`` (160), missing ``Signature`` (170),
unknown ``PublicKey`` (172), wrong signature (171), unknown action (161), missing or unknown ``Region``
(230), unknown ``ProjectId`` (292), bad ``Offset``/``Limit`` (230).

Projects: a custom image (one whose record carries ``_ProjectId``) is visible only to its project. A request
without ``ProjectId`` acts for the account's default project, ``org-platform``, as the real API does for a
main account; a ``ProjectId`` that no image belongs to (and that is not the default) answers 292. Base and
Business images, and custom images without ``_ProjectId``, are visible to every project.

Faults (:meth:`Emulator.inject`) hit only requests that passed every check, so a test can count exactly
which DescribeImage call misbehaves. Keys starting with ``_`` in a record never leave the emulator.

Bounds, since tests and benchmarks run it where other programs can reach it: a request body may hold at most
``MAX_REQUEST_BYTES`` (1 MiB; a real DescribeImage form is a few hundred bytes); at most ``max_connections``
(default 128) connections are served at once, each by one thread, and more wait in the listen queue; any
malformed or hostile request (a bad ``Content-Length``, an oversized or unreadable body, JSON nested past
Python's limits, a request line that is not HTTP) is answered with the RetCode envelope, RetCode 160 or 230,
and never with a traceback or a dropped connection. It binds loopback unless told otherwise, and
``ucloud-images emulator --host`` with anything else prints a warning.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import re
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast
from urllib.parse import parse_qsl, urlsplit

from .._api.signing import flatten, signature
from .._errors import InvalidQueryError
from .catalog import DEFAULT_PROJECT, DEMO_REGION, KNOWN_REGIONS, build_catalog, region_of
from .server import HTTP_REASONS, REQUEST_ID_HEADER, Answer, InProcessTransport, Server, dumps

__all__ = [
    "DEMO_PRIVATE_KEY",
    "DEMO_PUBLIC_KEY",
    "FAULT_KINDS",
    "Emulator",
    "InProcessTransport",
    "RequestRecord",
    "load_catalog",
    "serve_forever",
]

# The documented demo pair: it only opens the local emulator, so it is not a secret.
DEMO_PUBLIC_KEY = "ucloud-images-demo-public-key"
DEMO_PRIVATE_KEY = "ucloud-images-demo-private-key"
MAX_LATENCY_MS = 60_000.0  # a minute per answer: beyond that, a test or benchmark wants a fault, not latency
DEFAULT_MAX_CONNECTIONS = 128
DEFAULT_MAX_LIMIT = 1000
STRICT_MAX_LIMIT = 100  # the strict mode's Limit cap, as a plain server (and the SDKs' page size) has it
# An oversized body up to this size is read (and dropped) before the answer, so the client that sent it gets
# the answer rather than a reset; a larger one is answered at once and the connection closed.

ACTION = "DescribeImage"
DEFAULT_LIMIT = 20
FAULT_KINDS = (
    "ret_code", "http_status", "drop", "malformed", "no_retcode", "bad_shape", "slow", "empty_page", "publish",
)
DEFAULT_RANDOM_FAULTS = ("ret_code:153", "ret_code:150", "http_status:503", "drop")
_LOG_SIZE = 100_000  # a long-running emulator keeps the newest records only
_FUNC_TYPES = frozenset({"gpu", "app", "uhost"})
_IMAGE_IDS_KEY = re.compile(r"ImageIds\.(\d+)")
_RET_CODE_MESSAGES = {
    110: "API timeout",
    130: "Gateway service fault",
    150: "Service unavailable, please retry later",
    153: "Request rate limited, please retry later",
}


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it. ``params`` never holds ``Signature`` or ``PublicKey``."""

    method: str
    action: str
    params: dict[str, str]
    status: int  # HTTP status answered; 0 when the connection was dropped
    ret_code: int | None  # RetCode answered; None when the answer carried none
    request_id: str
    fault: str | None = None


@dataclass
class _Fault:
    kind: str
    value: Any
    times: int
    after: int


class _Rejected(Exception):
    def __init__(self, ret_code: int, message: str) -> None:
        super().__init__(message)
        self.ret_code = ret_code
        self.message = message


def _public(record: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in record.items() if not key.startswith("_")}


def _check_record(record: Any) -> dict[str, Any]:
    if not isinstance(record, Mapping):
        raise ValueError(f"an image record must be an object, not {type(record).__name__}")
    image_id = record.get("ImageId")
    if not isinstance(image_id, str) or not image_id:
        raise ValueError("an image record needs a non-empty ImageId")
    if not region_of(record):
        raise ValueError(f"image {image_id} needs a Zone like cn-bj2-02 (or a _Region)")
    return dict(record)


def _parse_fault_spec(spec: str) -> tuple[str, Any]:
    kind, _, raw = spec.partition(":")
    if kind not in FAULT_KINDS or kind == "publish":
        raise ValueError(f"unknown random fault kind {spec!r}")
    if kind in ("ret_code", "http_status"):
        return kind, int(raw or (153 if kind == "ret_code" else 503))
    if kind == "slow":
        return kind, float(raw or 1.0)
    return kind, None


def _price_set(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Deterministic prices: Base Linux is free, Windows carries a licence, market images their vendor's fee."""
    monthly = 0.0
    if record.get("OsType") == "Windows":
        monthly += 60.0
    if record.get("ImageType") == "Business":
        monthly += 20.0 + sum(map(ord, str(record.get("ImageId", "")))) % 80
    return [
        {"ChargeType": "Month", "Price": round(monthly, 2), "OriginalPrice": round(monthly * 1.25, 2)},
        {"ChargeType": "Year", "Price": round(monthly * 10, 2), "OriginalPrice": round(monthly * 12.5, 2)},
        {"ChargeType": "Dynamic", "Price": round(monthly / 720, 2), "OriginalPrice": round(monthly / 576, 2)},
    ]


class Emulator:
    """A DescribeImage server on loopback. Thread-safe; use as a context manager or ``start()``/``stop()``.

    ``keys`` maps accepted public keys to their private keys (default: the demo pair). ``max_limit`` caps
    ``Limit`` as the real server may. ``latency_ms`` is added to every answer and may be changed while
    running. ``fault_rate`` answers that share of valid requests with a fault drawn (from a generator seeded
    with ``fault_seed``) among ``fault_kinds``, written ``kind`` or ``kind:value``, e.g. ``"ret_code:153"``.
    ``max_connections`` bounds the connections (and threads) served at once. ``host`` is loopback unless
    given: anything else lets other machines query it with the demo keys.

    ``strict=True`` behaves like a server built on Python's ``http.server``, for honest benchmarks: headers
    and body in separate sends without TCP_NODELAY (so Nagle's algorithm meets the client's delayed ACK), a
    listen backlog of 5 (a burst of connections loses SYNs), ``Limit`` capped at 100 unless ``max_limit``
    says otherwise, and every answer filtered and encoded afresh (no cache). The default answers as an API
    gateway does: TCP_NODELAY, each answer in one send, a listen backlog of 128; it serves up to 1,000 images a
    page (``max_limit=100`` makes it the benchmark's realistic server) and encodes each record once per
    catalogue version.
    """

    def __init__(
        self,
        catalog: Iterable[Mapping[str, Any]] | None = None,
        *,
        keys: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_limit: int | None = None,
        latency_ms: float = 0.0,
        fault_rate: float = 0.0,
        fault_kinds: Sequence[str] = DEFAULT_RANDOM_FAULTS,
        fault_seed: int = 0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        strict: bool = False,
    ) -> None:
        if max_limit is None:
            max_limit = STRICT_MAX_LIMIT if strict else DEFAULT_MAX_LIMIT
        if max_limit < 1:
            raise ValueError("max_limit must be at least 1")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        if keys is not None and not all(public and private for public, private in keys.items()):
            raise ValueError("every key pair needs a non-empty public and private key")
        self.strict = strict
        self.host = host
        self.port = port
        self.max_limit = max_limit
        self.max_connections = max_connections
        self._latency_ms = 0.0
        self.latency_ms = latency_ms
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        self._random_faults = [_parse_fault_spec(spec) for spec in self.fault_kinds]
        self._rng = random.Random(fault_seed)
        self._keys = dict(keys) if keys is not None else {DEMO_PUBLIC_KEY: DEMO_PRIVATE_KEY}
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, Any]] = {}
        self._projects: set[str] = {DEFAULT_PROJECT}
        self._regions: set[str] = set(KNOWN_REGIONS)
        self._version = 0
        self._encoded: dict[int, tuple[dict[str, Any], bytes]] = {}
        self._encoded_version = -1
        self._matches: dict[tuple[Any, ...], tuple[int, list[dict[str, Any]]]] = {}
        self._faults: list[_Fault] = []
        self._log: deque[RequestRecord] = deque(maxlen=_LOG_SIZE)
        self._count = 0
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        for record in build_catalog() if catalog is None else catalog:
            self._store(_check_record(record))

    @property
    def latency_ms(self) -> float:
        """Milliseconds added to every answer; may be changed while serving."""
        return self._latency_ms

    @latency_ms.setter
    def latency_ms(self, value: float) -> None:
        if not 0.0 <= value <= MAX_LATENCY_MS:  # also refuses nan and inf
            raise ValueError(f"latency_ms must be between 0 and {MAX_LATENCY_MS:g}")
        self._latency_ms = float(value)

    def __repr__(self) -> str:
        state = self.base_url if self._server is not None else "stopped"
        return f"Emulator({state}, images={len(self._records)}, public_keys={sorted(self._keys)!r})"

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind and serve in a daemon thread. Returns ``self`` so ``Emulator().start()`` reads naturally."""
        with self._lock:
            if self._server is not None:
                return self
            server = Server((self.host, self.port), self, self.max_connections)
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="ucloud-images-emulator",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection. Safe to call twice."""
        with self._lock:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        server = self._server
        if server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        host, port = server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    # -- the catalogue -----------------------------------------------------------------------------------

    def _store(self, record: dict[str, Any]) -> None:
        self._records[record["ImageId"]] = record
        self._regions.add(region_of(record))
        project = record.get("_ProjectId")
        if isinstance(project, str) and project:
            self._projects.add(project)
        self._version += 1

    def publish(self, image: Mapping[str, Any]) -> None:
        """Add an image, or replace the one with the same ``ImageId`` (keeping its place in the order)."""
        record = _check_record(image)
        with self._lock:
            self._store(record)

    def remove(self, image_id: str) -> None:
        """Delete an image; ``KeyError`` if there is none with that ID."""
        with self._lock:
            del self._records[image_id]
            self._version += 1

    def set_state(self, image_id: str, state: str) -> None:
        """Change an image's ``State`` (e.g. Making -> Available); ``KeyError`` if there is none."""
        with self._lock:
            self._records[image_id] = {**self._records[image_id], "State": state}
            self._version += 1

    def copy_image(
        self, image_id: str, region: str, *, zone: str | None = None, new_id: str | None = None,
        state: str = "Copying",
    ) -> str:
        """Copy a custom image to ``region`` as CopyCustomImage does: the copy keeps its name and gets a new ID
        there, and is ``Copying`` until :meth:`set_state` makes it ``Available``. Returns the new ID.

        UCloud's CopyCustomImage documents that the target image has its own ID in the target region and is
        listed while the copy runs; only Available images can boot a host (ucloud-api-facts.md, section 4).
        ``zone`` defaults to the region's first zone (``REGION-01``); ``KeyError`` if there is no such image.
        """
        with self._lock:
            source = dict(self._records[image_id])
            if source.get("ImageType") != "Custom":
                raise ValueError(f"only custom images are copied between regions, not {image_id}")
            copy_id = new_id or self._fresh_id(image_id, region)
            if copy_id in self._records:
                raise ValueError(f"an image {copy_id} exists already")
            source.pop("_Region", None)
            source.update(ImageId=copy_id, Zone=zone or f"{region}-01", State=state)
            self._store(source)
        return copy_id

    def _fresh_id(self, image_id: str, region: str) -> str:
        """A new ``uimage-`` ID for a copy, stable for the same source and region (tests can predict it)."""
        digest = hashlib.sha1(f"{image_id}/{region}".encode()).hexdigest()
        for start in range(0, len(digest) - 6):
            candidate = f"uimage-{digest[start:start + 6]}"
            if candidate not in self._records:
                return candidate
        raise ValueError(f"no fresh ID for a copy of {image_id} in {region}")

    def images(self, region: str | None = None, *, include_private: bool = False) -> list[dict[str, Any]]:
        """Copies of the stored images (of one region), as the API would show them unless ``include_private``."""
        with self._lock:
            records = [r for r in self._records.values() if region is None or region_of(r) == region]
        return [dict(r) if include_private else _public(r) for r in records]

    # -- faults and the request log ----------------------------------------------------------------------

    def inject(self, kind: str, *, times: int = 1, after: int = 0, value: Any = None) -> None:
        """Misbehave on the next ``times`` valid DescribeImage requests, after letting ``after`` through.

        Kinds: ``ret_code`` (value: the RetCode, default 153), ``http_status`` (value: 429/500/502/503...,
        default 503, small text body), ``drop`` (close the connection unanswered), ``malformed`` (HTTP 200,
        truncated JSON), ``no_retcode`` (JSON without RetCode), ``bad_shape`` (``ImageSet`` is a string),
        ``slow`` (value: seconds to wait, then answer normally), ``empty_page`` (RetCode 0, true TotalCount,
        empty ImageSet), ``publish`` (value: an image record, published just before answering normally).
        Faults queue up in order; one request meets at most one fault.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if times < 1 or after < 0:
            raise ValueError("times must be at least 1 and after not negative")
        if kind in ("ret_code", "http_status"):
            value = int(value if value is not None else (153 if kind == "ret_code" else 503))
        elif kind == "slow":
            value = float(value if value is not None else 1.0)
        elif kind == "publish":
            value = _check_record(value)
        with self._lock:
            self._faults.append(_Fault(kind, value, times, after))

    def clear_faults(self) -> None:
        """Forget every injected fault (the random ``fault_rate`` stays as set)."""
        with self._lock:
            self._faults.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the requests answered so far, oldest first (the newest 100,000 at most)."""
        with self._lock:
            return list(self._log)

    @property
    def request_count(self) -> int:
        """How many requests were answered since the start or the last :meth:`reset_requests`."""
        with self._lock:
            return self._count

    def reset_requests(self) -> None:
        with self._lock:
            self._log.clear()
            self._count = 0

    def _next_fault(self) -> tuple[str, Any] | None:
        with self._lock:
            chosen: _Fault | None = None
            for fault in self._faults:
                if fault.after > 0:
                    fault.after -= 1
                elif chosen is None:
                    chosen = fault
            if chosen is not None:
                chosen.times -= 1
                if chosen.times == 0:
                    self._faults.remove(chosen)
                return chosen.kind, chosen.value
            if self.fault_rate > 0 and self._random_faults and self._rng.random() < self.fault_rate:
                return self._rng.choice(self._random_faults)
        return None

    # -- answering ---------------------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, content_type: str, body: bytes, *, wait: Callable[[float], None] = time.sleep
    ) -> Answer:
        """Answer one request, given as its method, target (path and query), Content-Type and body.

        Both faces call this: the HTTP server (which only moves bytes) and :meth:`transport` (no socket).
        Parameters come from the query string and from the form or JSON body; an unreadable body (not UTF-8,
        not JSON, nested too deep) carries none, which answers as a missing Action. ``wait`` is how latency and
        the ``slow`` fault pass time (the in-process transport stops waiting at its request's deadline).
        """
        pairs = parse_qsl(urlsplit(target).query, keep_blank_values=True)
        if method == "POST":
            try:
                text = body.decode("utf-8")
                if "json" in content_type:
                    loaded = json.loads(text) if text.strip() else {}
                    if isinstance(loaded, Mapping):
                        pairs.extend(flatten(loaded).items())
                else:
                    pairs.extend(parse_qsl(text, keep_blank_values=True))
            except (UnicodeDecodeError, ValueError, RecursionError):
                pass
        return self._answer(method, dict(pairs), wait)

    def transport(self) -> InProcessTransport:
        """A transport for ``Client(settings, transport=...)`` that answers from this emulator in-process.

        No socket is opened, and the server need not be started: each request goes through :meth:`handle`,
        so signature checks, RetCodes, filters, paging, faults, latency and the request log are the same as
        over HTTP. The settings' ``base_url`` is never contacted.
        """
        return InProcessTransport(self)

    def _answer(self, method: str, params: Mapping[str, str], wait: Callable[[float], None]) -> Answer:
        """Answer one request (the HTTP layer only moves bytes). Also logs it."""
        request_id = str(uuid.uuid4())
        latency = self.latency_ms
        if latency > 0:
            wait(latency / 1000.0)
        action = params.get("Action", "")
        logged = {k: v for k, v in params.items() if k not in ("Signature", "PublicKey")}
        try:
            self._verify(params)
            page_params = self._page_params(params)
        except _Rejected as rejected:
            answer = self._envelope(action, rejected.ret_code, {"Message": rejected.message})
        else:
            answer = self._describe(action, params, page_params, wait)
        answer.headers[REQUEST_ID_HEADER] = request_id
        record = RequestRecord(
            method=method, action=action, params=logged, status=0 if answer.drop else answer.status,
            ret_code=answer.ret_code, request_id=request_id, fault=answer.fault,
        )
        with self._lock:
            self._log.append(record)
            self._count += 1
        return answer

    def _verify(self, params: Mapping[str, str]) -> None:
        action = params.get("Action", "")
        if not action:
            raise _Rejected(160, "Missing Action")
        given = params.get("Signature", "")
        if not given:
            raise _Rejected(170, "Missing signature")
        private_key = self._keys.get(params.get("PublicKey", ""))
        if private_key is None:
            raise _Rejected(172, "User not exist: public or private key invalid")
        expected = signature({k: v for k, v in params.items() if k != "Signature"}, private_key)
        if not hmac.compare_digest(expected, given.lower()):
            raise _Rejected(171, "Signature verification failed")
        if action != ACTION:
            raise _Rejected(161, f"Action [{action}] not exist")

    def _page_params(self, params: Mapping[str, str]) -> tuple[str, str, int, int]:
        region = params.get("Region", "")
        if not region:
            raise _Rejected(230, "Missing params [Region]")
        with self._lock:
            known_region = region in self._regions
            project = params.get("ProjectId") or DEFAULT_PROJECT
            known_project = project in self._projects
        if not known_region:
            raise _Rejected(230, f"Params [Region] not available: {region}")
        if not known_project:
            raise _Rejected(292, f"Project [{project}] not exist")
        offset = self._number(params, "Offset", 0)
        limit = self._number(params, "Limit", DEFAULT_LIMIT)
        if offset < 0:
            raise _Rejected(230, "Params [Offset] not available")
        if limit < 1:
            raise _Rejected(230, "Params [Limit] not available")
        return region, project, offset, min(limit, self.max_limit)

    @staticmethod
    def _number(params: Mapping[str, str], name: str, default: int) -> int:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise _Rejected(230, f"Params [{name}] not available") from None

    def _matching(self, region: str, project: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """The public records that pass every server-side filter, in catalogue order (cached per version)."""
        func_type = params.get("FuncType") or None
        if func_type not in _FUNC_TYPES:
            func_type = None  # the real server ignores a wrong FuncType
        ids = [value for key, value in params.items() if _IMAGE_IDS_KEY.fullmatch(key) and value]
        filters: dict[str, str | None] = {
            "Zone": params.get("Zone") or None,
            "ImageType": params.get("ImageType") or None,
            "OsType": params.get("OsType") or None,
            "FuncType": func_type,
            "ImageId": params.get("ImageId") or None,
            "Tag": params.get("Tag") or None,
        }
        key = (region, project, tuple(sorted(ids)), *filters.values())
        wanted_ids = set(ids)
        with self._lock:
            cached = self._matches.get(key)
            if cached is not None and cached[0] == self._version:
                return cached[1]
            matches = []
            for record in self._records.values():
                if region_of(record) != region:
                    continue
                owner = record.get("_ProjectId")
                if record.get("ImageType") == "Custom" and owner and owner != project:
                    continue
                if any(wanted is not None and record.get(name) != wanted for name, wanted in filters.items()):
                    continue
                if wanted_ids and record.get("ImageId") not in wanted_ids:
                    continue
                matches.append(_public(record))
            if len(self._matches) > 256:
                self._matches.clear()
            self._matches[key] = (self._version, matches)
            return matches

    def _describe(
        self, action: str, params: Mapping[str, str], page: tuple[str, str, int, int], wait: Callable[[float], None]
    ) -> Answer:
        region, project, offset, limit = page
        fault = self._next_fault()
        kind = fault[0] if fault is not None else None
        if fault is not None:
            early = self._fault_answer(action, *fault, wait)
            if early is not None:
                return early
        matches = self._matching(region, project, params)
        images: list[dict[str, Any]] = matches[offset:offset + limit]
        payload: dict[str, Any] = {"TotalCount": len(matches)}
        if params.get("PriceSet") == "1":  # fresh records: encoded as they are, not cached
            payload["ImageSet"] = [{**image, "PriceSet": _price_set(image)} for image in images]
        if kind == "empty_page":
            payload["ImageSet"] = []
        elif kind == "bad_shape":
            payload["ImageSet"] = "ImageSet is not available"
        answer = self._envelope(
            action,
            0,
            payload,
            with_ret_code=kind != "no_retcode",
            image_set=None if "ImageSet" in payload else self._encode_records(images),
        )
        answer.fault = kind
        if kind == "malformed":
            answer.body = answer.body[: max(1, len(answer.body) // 2)]
            answer.ret_code = None
        return answer

    def _fault_answer(self, action: str, kind: str, value: Any, wait: Callable[[float], None]) -> Answer | None:
        """The answer a fault gives instead of the page, or ``None`` when the page is still answered."""
        if kind == "publish":
            self.publish(cast(Mapping[str, Any], value))
        elif kind == "slow":
            wait(float(value))
        elif kind == "drop":
            return Answer(drop=True, fault=kind)
        elif kind == "http_status":
            status = int(value)
            text = f"{status} {HTTP_REASONS.get(status, 'Error')}\n"
            return Answer(status=status, body=text.encode(), content_type="text/plain", fault=kind)
        elif kind == "ret_code":
            code = int(value)
            answer = self._envelope(action, code, {"Message": _RET_CODE_MESSAGES.get(code, f"Error {code}")})
            answer.fault = kind
            return answer
        return None

    def _encode_records(self, records: Sequence[dict[str, Any]]) -> bytes:
        """The records as a JSON array, each encoded once per catalogue version: pages are then cheap to
        serve, so a benchmark measures the client rather than this server's JSON encoder. In strict mode
        every answer is encoded afresh, as a plain server does."""
        if self.strict:
            return dumps(list(records))
        with self._lock:
            if self._encoded_version != self._version:
                self._encoded.clear()
                self._encoded_version = self._version
            cache = self._encoded
            parts = []
            for record in records:
                hit = cache.get(id(record))
                if hit is None or hit[0] is not record:  # the record is kept in the entry, so its id stays its own
                    hit = cache[id(record)] = (record, dumps(record))
                parts.append(hit[1])
        return b"[" + b",".join(parts) + b"]"

    @staticmethod
    def _envelope(
        action: str,
        ret_code: int,
        payload: Mapping[str, Any],
        *,
        with_ret_code: bool = True,
        image_set: bytes | None = None,
    ) -> Answer:
        body: dict[str, Any] = {"Action": f"{action}Response"}
        if with_ret_code:
            body["RetCode"] = ret_code
        body.update(payload)
        encoded = dumps(body)
        if image_set is not None:
            encoded = encoded[:-1] + b',"ImageSet":' + image_set + b"}"
        return Answer(body=encoded, ret_code=ret_code if with_ret_code else None)


def load_catalog(path: str | Path) -> list[dict[str, Any]]:
    """Read a catalogue file: a JSON array of image records, or an object with an ``ImageSet`` array."""

    def bad(why: str) -> InvalidQueryError:
        return InvalidQueryError(f"Catalogue file {path} {why}.", field="catalog")

    try:
        loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise bad(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"is not valid JSON ({exc})") from None
    if isinstance(loaded, Mapping):
        loaded = loaded.get("ImageSet")
    if not isinstance(loaded, list):
        raise bad("must hold a JSON array of images, or an object with an ImageSet array")
    records = []
    for index, item in enumerate(loaded):
        try:
            records.append(_check_record(item))
        except ValueError as exc:
            raise bad(f"has a bad image at index {index}: {exc}") from None
    return records


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the emulator to this machine (``''`` binds every interface)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost, or '': may be reachable from elsewhere


def _env_hint(emulator: Emulator, keys: Mapping[str, str] | None) -> str:
    if keys is None:
        public, private = DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY
    else:
        public, private = next(iter(keys)), "<your private key>"  # a key given on purpose is never echoed
    return (
        f"UCLOUD_API_BASE_URL={emulator.base_url} UCLOUD_PUBLIC_KEY={public} "
        f"UCLOUD_PRIVATE_KEY={private} UCLOUD_REGION={DEMO_REGION}"
    )


def serve_forever(
    *,
    host: str = "127.0.0.1",
    port: int = 8642,
    catalog_path: str | None = None,
    keys: Mapping[str, str] | None = None,
    latency_ms: float = 0.0,
    max_limit: int | None = None,
    fault_rate: float = 0.0,
    strict: bool = False,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
    err: TextIO | None = None,
) -> None:
    """Serve until Ctrl+C (or until ``stop`` is set), for the ``ucloud-images emulator`` command.

    Binding anything but loopback prints a warning on ``err`` (default stderr).
    """
    if keys is not None and not keys:
        raise InvalidQueryError("Give at least one public/private key pair, or none for the demo pair.")
    catalog = load_catalog(catalog_path) if catalog_path else None
    emulator = Emulator(catalog, keys=keys, host=host, port=port, latency_ms=latency_ms, max_limit=max_limit,
                        fault_rate=fault_rate, strict=strict)
    emulator.start()
    if not is_loopback(host):
        where = "every network interface" if host in ("", "0.0.0.0", "::") else f"{host}, not only loopback"
        (err or sys.stderr).write(
            f"warning: the emulator listens on {where}: other machines that can reach this one can query it"
            f"{' with the public demo keys' if keys is None else ''}.\n"
        )
    try:
        out.write(f"DescribeImage emulator serving {len(emulator.images())} images at {emulator.base_url}"
                  " (Ctrl+C to stop)\n")
        out.write(f"Point the tools at it: {_env_hint(emulator, keys)}\n")
        out.flush()
        waiter = stop or threading.Event()
        while not waiter.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()

