"""The default transport: signed form POSTs through a ``requests.Session``, each cut off at its deadline.

The deadline's classes, the words for every failure requests and urllib3 raise, and the
transport that uses both read best together.

Everything HTTP is requests' and urllib3's, through their public API: framing, content decoding, keep-alive,
proxies and TLS trust (decided by requests' own steps exactly as ``requests.post`` decides them, environment
included; each request is then urllib3's ``urlopen`` of the pool requests chose). This module adds, each
through a public seam:

- one deadline per request, from connect to the last body byte, without a thread: the connect timeout is the
  time left, and every read of the answer (status line, headers, body) waits at most the time left then,
  through the response class http.client builds answers with (``response_class`` of urllib3's connection
  classes, installed by the adapter's ``pool_classes_by_scheme``). So a server that trickles even its headers
  a byte at a time is cut off at the deadline, not at the next full read;
- ``close()`` shuts the sockets of the answers in flight down, which ends their reads at once;
- a fresh session in a forked child, never the parent's pooled sockets;
- the words for each failure requests and urllib3 raise (:func:`describe_failure`), so the layer above never
  needs to know them.
"""

from __future__ import annotations

import http.client
import io
import os
import socket
import ssl
import threading
import time
import weakref
import zlib
from collections.abc import Iterator, Mapping
from contextlib import suppress
from typing import Any, NamedTuple
from urllib.parse import urlencode

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager

from .._version import __version__

__all__ = ["HTTPTransport"]

CONNECT_TIMEOUT = 10.0
_REQUEST_HEADERS = {"Accept-Encoding": "gzip, deflate"}  # what urllib3 decodes, each read bounded (urllib3 >= 2.6)
_FORM = {"Content-Type": "application/x-www-form-urlencoded"}  # what Session.post(data=form) says


# -- one deadline per request, on every read of its answer --------------------------------------------------

_REQUEST = threading.local()  # (deadline, transport) of the request this thread is sending


class _DeadlineReader(io.RawIOBase):
    """The answer's socket, each read waiting at most until the request's deadline (then ``TimeoutError``)."""

    def __init__(self, sock: Any, deadline: float, transport: HTTPTransport) -> None:
        super().__init__()
        self._sock, self._deadline, self._transport = sock, deadline, transport
        self._reader = sock.makefile("rb", buffering=0)  # holds the socket open while the answer is read
        self.cut = False
        transport._track(self)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the answer was not in by the request's deadline")
        if self.cut:
            raise ConnectionAbortedError("the answer was cut off: the client was closed")
        self._sock.settimeout(left)
        try:
            count: int = self._reader.readinto(buffer)
        except TimeoutError as exc:
            if time.monotonic() + _SLACK < self._deadline:  # the socket waits until the deadline: not its timeout
                raise _CallerRaised(exc) from None
            raise
        if self.cut:  # a socket shut down reads as an end: never take that for the end of the answer
            raise ConnectionAbortedError("the answer was cut off: the client was closed")
        return count

    def shut(self) -> None:
        self.cut = True
        with suppress(OSError):
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)  # the plain-socket call, also for an SSLSocket

    def close(self) -> None:
        if not self.closed:
            self._transport._untrack(self)
            self._reader.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's answer, read through a :class:`_DeadlineReader` when a request of ours is in flight."""

    def __init__(self, sock: Any, debuglevel: int = 0, method: str | None = None, url: str | None = None) -> None:
        super().__init__(sock, debuglevel, method, url)
        request = getattr(_REQUEST, "current", None)
        if request is not None:
            plain = self.fp
            self.fp = io.BufferedReader(_DeadlineReader(sock, *request))
            plain.close()


class _HTTPConnection(HTTPConnection):
    response_class = _DeadlineResponse  # documented by urllib3's getresponse


class _HTTPSConnection(HTTPSConnection):
    response_class = _DeadlineResponse


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(HTTPAdapter):
    """requests' adapter, with the deadline's connection classes (also through an HTTP proxy). Sockets get
    urllib3's default ``socket_options`` (``TCP_NODELAY``)."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is ProxyManager:  # a SOCKS proxy keeps its own classes: per-read timeouts only
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager

    def route(self, request: requests.PreparedRequest, settings: Mapping[str, Any]) -> tuple[HTTPConnectionPool, str]:
        """The connection pool and the request-line URL ``send`` would use for ``request`` (proxy, TLS trust and
        client certificate as ``settings`` of ``Session.merge_environment_settings`` say), by the steps of
        ``HTTPAdapter.send`` before it calls ``urlopen``."""
        verify, cert, proxies = settings["verify"], settings["cert"], settings["proxies"]
        pool = self.get_connection_with_tls_context(request, verify, proxies=proxies, cert=cert)
        if not isinstance(pool, HTTPConnectionPool):  # what urllib3's pool managers hand out for http(s)
            raise TypeError(f"requests chose a {type(pool).__name__} for {request.url}")
        self.cert_verify(pool, str(request.url), verify, cert)  # type: ignore[no-untyped-call]  # unannotated
        return pool, self.request_url(request, proxies)


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


def _malformed_head(exc: BaseException) -> str | None:
    """What http.client or urllib3 could not read in an answer's status line or headers, or ``None``."""
    for current in _chain(exc):
        if isinstance(current, http.client.RemoteDisconnected):
            return None
        if isinstance(current, http.client.LineTooLong):
            return f"a line too long ({str(current)[:80]})"
        if isinstance(current, http.client.BadStatusLine):
            return "a status line that is not HTTP"
        if type(current) is http.client.HTTPException and "headers" in str(current):
            return "too many headers"
        if isinstance(current, (urllib3.exceptions.InvalidHeader, requests.exceptions.InvalidHeader)):
            return f"headers that disagree ({str(current)[:80]})"
    return None


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




class ExchangeFailure:
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


_PROXY_VARIABLES = tuple(spelling for name in ("all_proxy", "https_proxy", "http_proxy")
                         for spelling in (name.upper(), name))
_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def _setup_problem(exc: BaseException) -> str | None:
    """What in this process's own configuration (not the server, not the base URL) stopped the request, naming
    the variable to fix, or ``None``. The texts are requests' own (adapters.py)."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.InvalidSchema) and "SOCKS" in text:
        named = [name for name in _PROXY_VARIABLES if os.environ.get(name, "").lower().startswith("socks")]
        where = named[0] if named else "the proxy setting"
        return (f"{where} names a SOCKS proxy, which needs the PySocks package (pip install 'requests[socks]'); "
                "install it or unset it")
    if isinstance(exc, OSError) and text.startswith(("Could not find a suitable TLS CA certificate bundle",
                                                     "Could not find the TLS certificate file",
                                                     "Could not find the TLS key file")):
        path = text.rpartition("invalid path: ")[2]
        named = [name for name in _CA_VARIABLES if os.environ.get(name) == path]
        if named:
            return f"{named[0]} names {path!r}, which is not a CA bundle file or directory; fix or unset it"
        return f"the session's TLS setting names {path!r}, which does not exist"
    return None


def describe_failure(exc: BaseException) -> ExchangeFailure:
    """The kind of a failure raised by a transport (requests', urllib3's or plain ``OSError`` s).

    Kinds: ``setup`` (this process's proxy or CA settings; words: which, and what to do); ``invalid_url``;
    ``malformed`` (a status line or headers that could not be read; words: what); ``connect_timeout`` and
    ``timeout`` (no connection, or no full answer, in time);
    ``tls_final`` and ``tls`` (words: what went wrong); ``unreachable`` (words: the cause); ``dropped`` (the
    connection closed or broke; words: the cause) and ``dropped_quietly`` (closed without an answer, nothing
    more to say).
    """
    setup = _setup_problem(exc)
    if setup is not None:
        return ExchangeFailure("setup", setup)
    if isinstance(exc, _INVALID_URL):
        return ExchangeFailure("invalid_url", str(exc).rstrip("."))
    connect = _connect_phase(exc)
    timed_out = isinstance(exc, _TIMEOUTS)
    if timed_out and isinstance(exc, urllib3.exceptions.NewConnectionError):
        timed_out = any(isinstance(current, TimeoutError) for current in _chain(exc))  # a refusal is not one
    if timed_out:
        return ExchangeFailure("connect_timeout" if connect else "timeout")
    malformed = _malformed_head(exc)
    if malformed is not None:
        return ExchangeFailure("malformed", malformed)
    tls = _tls_problem(exc)
    if tls is not None:
        words, final = tls
        return ExchangeFailure("tls_final" if final else "tls", words)
    cause = _cause(exc)
    if connect or not isinstance(exc, _DROPPED) or cause == type(exc).__name__:
        return ExchangeFailure("unreachable", cause)
    quiet = isinstance(exc, http.client.RemoteDisconnected) or cause.startswith("connection closed")
    return ExchangeFailure("dropped_quietly" if quiet else "dropped", cause)


# -- the transport ------------------------------------------------------------------------------------------


class _CallerRaised(BaseException):
    """Carries an exception the caller raised during a read (a signal handler's ``TimeoutError``) past urllib3
    and requests, which would take it for the socket's."""

    def __init__(self, original: BaseException) -> None:
        super().__init__()
        self.original = original


_SLACK = 0.005  # seconds: a socket times out no earlier than its timeout


def raised_by_caller(exc: BaseException) -> bool:
    """Whether ``exc`` is the caller's own (marked by this transport), never to be taken for a failure."""
    return getattr(exc, "raised_by_caller", False) is True


def _callers(exc: BaseException) -> BaseException:
    exc.raised_by_caller = True  # type: ignore[attr-defined]
    return exc


def _early_timeout(exc: BaseException, limit: float, elapsed: float) -> BaseException | None:
    """The caller's ``TimeoutError`` inside a timeout urllib3 reported before its time was up, or ``None``."""
    if elapsed + _SLACK >= limit:
        return None
    inner = [current for current in _chain(exc) if type(current) is TimeoutError]
    return _callers(inner[-1]) if inner else None


class HTTPResponse:
    """One answer: status, headers, and the body decoded by urllib3 (gzip, deflate) as it arrives.

    Made of urllib3's answer (the transport's own session), or of the ``requests.Response`` a session passed in
    gave, whose status and headers are then the ones requests reports."""

    __slots__ = ("_raw", "_response", "headers", "length", "status")

    headers: Mapping[str, str]  # looked up case-insensitively

    def __init__(self, answer: requests.Response | urllib3.BaseHTTPResponse) -> None:
        if isinstance(answer, requests.Response):
            self._response: requests.Response | None = answer
            self._raw: urllib3.BaseHTTPResponse = answer.raw
            self.status, self.headers = answer.status_code, answer.headers
        else:
            self._response, self._raw = None, answer
            self.status, self.headers = answer.status, answer.headers
        self.length: int | None = self._raw.length_remaining  # urllib3's reading of Content-Length

    def read(self, size: int) -> bytes:
        try:
            return bytes(self._raw.read1(size, decode_content=True))
        except _CallerRaised as carrier:
            raise _callers(carrier.original) from None
        except urllib3.exceptions.DecodeError as exc:  # the Transport protocol's word for an undecodable body
            raise zlib.error(str(exc)) from None

    def close(self) -> None:
        """As ``requests.Response.close``: a connection not read to its end is closed, not reused."""
        if self._response is not None:
            self._response.close()
        else:
            self._raw.close()
            self._raw.release_conn()


_TRANSPORTS: weakref.WeakSet[HTTPTransport] = weakref.WeakSet()
# What Session.merge_environment_settings reads for an http(s) URL on this platform's environment: the proxy
# variables that can apply (either case; REQUEST_METHOD turns HTTP_PROXY off, as in CGI) and the CA bundle ones.
_ENVIRONMENT = (
    *(spelling for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy") for spelling in (name, name.upper())),
    "REQUEST_METHOD", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
)


def _environment() -> tuple[str | None, ...]:
    environ = os.environ
    return tuple([environ.get(name) for name in _ENVIRONMENT])


class _Route(NamedTuple):
    """How a request to one URL is sent, as requests decides it, while the variables it read stay the same."""

    environment: tuple[str | None, ...]
    pool: HTTPConnectionPool  # proxy, TLS trust and client certificate: requests' choice for the URL
    target: str  # what the request line names: the path, or the whole URL through an HTTP proxy
    headers: Mapping[str, str]  # the session's headers (User-Agent, netrc auth), the form's type, Accept-Encoding


_ROUTES = 16  # URLs a transport keeps routes for; its adapter keeps as many pools, so a kept route's pool stays its


class HTTPTransport:
    """Sends through a ``requests.Session``: its own (closed by ``close()``), or ``session`` when given.

    A request is what ``Session.post`` sends: proxies, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``/certifi and the
    session's ``verify``/``cert``/``proxies`` apply as they do to ``requests.post``; redirects are not followed.

    On its own session, requests decides once per URL, and again whenever a variable it reads changes: the
    prepared request (``Session.prepare_request``), the environment's settings
    (``Session.merge_environment_settings``), and the connection pool and request-line URL
    (``HTTPAdapter.get_connection_with_tls_context``, ``cert_verify``, ``request_url``: the steps of
    ``HTTPAdapter.send``). Each request is then one ``urlopen`` of that pool, urllib3's public call. Deciding
    it all again for every request, as ``Session.send`` does, cost about 0.35 ms of CPU a request (3.5 µs an
    image) against a server 20 ms away. Cookies a server sets are not kept (the API sets none). A session
    passed in gets ``Session.post`` itself, and keeps its own adapters: the deadline then holds only as far as
    they allow.

    Its own session mounts an adapter whose answers keep the request's deadline. ``close()`` cuts off what is
    in flight; the transport may be used again afterwards. In a forked child the parent's session is never
    used: the child makes its own (or, for a session passed in, first closes its pools).
    """

    def __init__(self, session: requests.Session | None = None, *, pool_size: int = 64) -> None:
        self._given = session
        self._pool_size = pool_size
        self._session = session or self._new_session(pool_size)
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._readers: set[_DeadlineReader] = set()
        self._routes: dict[str, _Route] = {}
        _TRANSPORTS.add(self)

    def _new_session(self, pool_size: int) -> requests.Session:
        session = requests.Session()
        adapter = _Adapter(pool_connections=_ROUTES, pool_maxsize=pool_size, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = f"pulumi-ucloud-images/{__version__}"
        return session

    def _forked(self) -> None:
        """In a forked child: drop everything the parent opened (sockets, locks, answers in flight)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._readers = set()
        self._routes = {}
        if self._given is None:
            self._session = self._new_session(self._pool_size)  # the parent's is dropped unused
        else:
            self._given.close()  # its pools' sockets are the parent's: close this process's copies

    def _track(self, reader: _DeadlineReader) -> None:
        with self._lock:
            self._readers.add(reader)

    def _untrack(self, reader: _DeadlineReader) -> None:
        with self._lock:
            self._readers.discard(reader)

    def close(self) -> None:
        if self._pid != os.getpid():
            self._forked()
        with self._lock:
            readers = list(self._readers)
            self._routes = {}  # their pools leave with the session's (urllib3 drops, not closes, them)
        for reader in readers:
            reader.shut()
        if self._given is None:
            self._session.close()

    def send(self, url: str, form: Mapping[str, str], timeout: float) -> HTTPResponse:
        if self._pid != os.getpid():
            self._forked()
        previous = getattr(_REQUEST, "current", None)
        started = time.monotonic()
        _REQUEST.current = (started + timeout, self)
        connect = min(timeout, CONNECT_TIMEOUT)
        try:
            if self._given is None:
                return HTTPResponse(self._open(url, urlencode(form).encode("ascii"), connect, timeout))
            response = self._given.post(
                url, data=form, timeout=(connect, timeout), stream=True, allow_redirects=False,
                headers=_REQUEST_HEADERS,
            )
            return HTTPResponse(response)
        except _CallerRaised as carrier:
            raise _callers(carrier.original) from None
        except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
            early = isinstance(exc, (requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError))
            caller = _early_timeout(exc, connect if early else timeout, time.monotonic() - started)
            if caller is not None:
                raise caller from None
            raise
        finally:
            _REQUEST.current = previous

    def _open(self, url: str, body: bytes, connect: float, timeout: float) -> urllib3.BaseHTTPResponse:
        """``urlopen`` of the URL's route, as ``HTTPAdapter.send`` calls it (no retries, no redirects)."""
        route = self._route(url)
        return route.pool.urlopen(
            "POST", route.target, body=body, headers={**route.headers, "Content-Length": str(len(body))},
            redirect=False, assert_same_host=False, preload_content=False, decode_content=False,
            retries=False, timeout=urllib3.Timeout(connect=connect, read=timeout), chunked=False,
        )

    def _route(self, url: str) -> _Route:
        """How ``url`` is reached, as ``Session.post`` would decide it now (see the class's note)."""
        environment = _environment()
        route = self._routes.get(url)
        if route is not None and route.environment == environment:
            return route
        session = self._session
        request = session.prepare_request(requests.Request("POST", url, headers={**_REQUEST_HEADERS, **_FORM}))
        settings = session.merge_environment_settings(request.url, {}, True, None, None)
        adapter = session.get_adapter(str(request.url))
        if not isinstance(adapter, _Adapter):  # only a session this transport made comes here
            raise TypeError("the transport's own session lost its adapter")
        pool, target = adapter.route(request, settings)
        headers = {name: value for name, value in request.headers.items() if name.lower() != "content-length"}
        route = _Route(environment, pool, target, headers)  # each request adds its body's length
        with self._lock:
            if len(self._routes) >= _ROUTES:
                self._routes = {}
            self._routes[url] = route
        return route


def _after_fork_in_child() -> None:
    for transport in list(_TRANSPORTS):
        transport._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)
