"""One HTTP/1.1 exchange on an already-connected socket: the request written at once, the answer read by hand.

urllib3's ``urlopen`` with http.client's and the email package's header parsing cost about 1 ms of CPU a
request; this reads the same answer in a fraction of that. It reads what the client needs and refuses the
rest, with http.client's own bounds and exception types (so a failure reads as it did before):

- the status line and each header line at most 65,536 bytes (``LineTooLong``), at most 100 headers
  (``HTTPException``), interim 1xx answers skipped, a status line that is not ``HTTP/1.x NNN`` refused
  (``BadStatusLine``, ``UnknownProtocol``), a header line without a colon refused, a connection closed before
  the headers end refused (``IncompleteRead``; ``RemoteDisconnected`` before the first byte);
- the body framed by ``Transfer-Encoding: chunked`` (which wins over a Content-Length), else by one
  Content-Length (several that disagree: ``InvalidHeader``), else by the end of the connection; a body cut
  short, a chunk size that is not hex or too long, a chunk not followed by CRLF: ``IncompleteRead`` or
  ``LineTooLong``;
- the connection kept for the next request only when the answer said so (HTTP/1.1 without
  ``Connection: close``, or HTTP/1.0 with ``keep-alive``), its body was read to its end and nothing followed.

Errors are wrapped as urllib3 wraps them (``ProtocolError``, ``ReadTimeoutError``, ``SSLError``), so
``_http.describe_failure`` and the messages above it stay as they were. The body is handed up as sent
(compressed or not): decoding and the size caps are the caller's.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from typing import Any

import urllib3

__all__ = ["Answer", "Headers", "exchange", "wrap_body_error", "wrap_head_error"]

MAX_LINE = 65536  # http.client's _MAXLINE
MAX_HEADERS = 100  # http.client's _MAXHEADERS
_RECV = 65536
_NO_BODY = (204, 304)


class Headers(Mapping[str, str]):
    """An answer's headers, looked up case-insensitively; a repeated header's values joined by ``", "``."""

    __slots__ = ("_items",)

    def __init__(self, items: dict[str, str]) -> None:
        self._items = items  # lower-cased names

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:
        return self._items.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class _Buffered:
    """A socket with what has been received and not yet consumed."""

    __slots__ = ("buf", "pos", "sock")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0

    def fill(self) -> bool:
        data = self.sock.recv(_RECV)
        if not data:
            return False
        if self.pos:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += data
        return True

    def line(self, what: str) -> bytes:
        """The next line, its end included; what is left at the end of the connection (maybe ``b""``)."""
        buf = self.buf
        while True:
            at = buf.find(b"\n", self.pos)
            if at >= 0:
                if at + 1 - self.pos > MAX_LINE:
                    raise http.client.LineTooLong(what)
                line = bytes(buf[self.pos:at + 1])
                self.pos = at + 1
                return line
            if len(buf) - self.pos > MAX_LINE:
                raise http.client.LineTooLong(what)
            if not self.fill():
                buf = self.buf
                line = bytes(buf[self.pos:])
                self.pos = len(buf)
                return line
            buf = self.buf

    def pending(self) -> int:
        return len(self.buf) - self.pos

    def take(self, size: int) -> bytes:
        end = min(self.pos + size, len(self.buf))
        data = bytes(self.buf[self.pos:end])
        self.pos = end
        if end == len(self.buf):
            self.buf.clear()
            self.pos = 0
        return data


def _status(wire: _Buffered) -> tuple[int, bool]:
    """``(status, HTTP/1.1)`` from the status line, as http.client reads it."""
    line = wire.line("status line")
    if not line:
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    if not line.endswith(b"\n"):
        raise http.client.IncompleteRead(line)
    parts = line.decode("iso-8859-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise http.client.BadStatusLine(repr(line)[:200])
    version, code = parts[0], parts[1]
    if version not in ("HTTP/1.0", "HTTP/1.1") and not version.startswith("HTTP/1."):
        raise http.client.UnknownProtocol(version[:40])
    if len(code) != 3 or not code.isdigit():
        raise http.client.BadStatusLine(repr(line)[:200])
    return int(code), version != "HTTP/1.0"


def _headers(wire: _Buffered) -> dict[str, str]:
    items: dict[str, str] = {}
    last = ""
    for _ in range(MAX_HEADERS + 1):
        line = wire.line("header line")
        if line in (b"\r\n", b"\n"):
            return items
        if not line.endswith(b"\n"):
            raise http.client.IncompleteRead(line[:200])  # the connection ended inside the headers
        text = line.decode("iso-8859-1")
        if text[0] in " \t" and last:  # an obsolete folded continuation of the previous header
            items[last] = f"{items[last]} {text.strip()}"
            continue
        name, colon, value = text.partition(":")
        name = name.strip().lower()
        if not colon or not name:
            raise http.client.HTTPException(f"a header line without a name and a colon: {text[:40]!r}")
        value = value.strip()
        items[name] = f"{items[name]}, {value}" if name in items else value
        last = name
    raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")


def _length(items: dict[str, str]) -> int | None:
    """The one Content-Length, or ``None`` (absent or unreadable: the body runs to the end of the connection)."""
    declared = items.get("content-length")
    if declared is None:
        return None
    values = {value.strip() for value in declared.split(",")}
    if len(values) > 1:
        raise urllib3.exceptions.InvalidHeader("Content-Length contained multiple unmatching values")
    value = values.pop()
    return int(value) if value.isdigit() else None


class Answer:
    """The body of one answer, read as it arrives (``read``), and the connection's release (``close``)."""

    __slots__ = ("_chunk_end", "_chunk_left", "_chunked", "_done", "_keep", "_left", "_release", "_released", "_wire")

    def __init__(
        self, wire: _Buffered, length: int | None, chunked: bool, keep: bool, release: Callable[[bool], None]
    ) -> None:
        self._wire = wire
        self._chunked = chunked
        self._left = length  # None: up to the end of the connection
        self._chunk_left = 0
        self._chunk_end = False
        self._done = length == 0 and not chunked
        self._keep = keep and (chunked or length is not None)
        self._release = release
        self._released = False

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes of the body as sent: what has arrived, ``b""`` at its end."""
        if self._done:
            return b""
        return self._read_chunked(size) if self._chunked else self._read_plain(size)

    def _read_plain(self, size: int) -> bytes:
        wire, left = self._wire, self._left
        want = size if left is None else min(size, left)
        data = wire.take(want) if wire.pending() else wire.sock.recv(want)
        if left is None:
            if not data:
                self._done = True
            return data
        if not data:
            raise http.client.IncompleteRead(b"", left)
        self._left = left = left - len(data)
        if left == 0:
            self._done = True
        return data

    def _read_chunked(self, size: int) -> bytes:
        wire = self._wire
        if self._chunk_left == 0:
            if self._chunk_end:  # the CRLF after the last chunk's data, checked here so its bytes counted
                self._chunk_end = False
                if wire.line("chunk end") not in (b"\r\n", b"\n"):
                    raise http.client.IncompleteRead(b"")
            line = wire.line("chunk size")
            try:
                chunk = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise http.client.IncompleteRead(b"") from None
            if chunk < 0 or not line.endswith(b"\n"):
                raise http.client.IncompleteRead(b"")
            if chunk == 0:
                for _ in range(MAX_HEADERS + 1):  # the trailer: read and dropped
                    trailer = wire.line("trailer line")
                    if trailer in (b"\r\n", b"\n"):
                        self._done = True
                        return b""
                    if not trailer:
                        raise http.client.IncompleteRead(b"")
                raise http.client.HTTPException(f"got more than {MAX_HEADERS} trailer lines")
            self._chunk_left = chunk
        if not wire.pending() and not wire.fill():
            raise http.client.IncompleteRead(b"", self._chunk_left)
        data = wire.take(min(size, self._chunk_left))
        self._chunk_left -= len(data)
        self._chunk_end = self._chunk_left == 0
        return data

    def close(self) -> None:
        """Hand the connection back: for the next request when the body was read to its end and nothing
        followed it, closed otherwise (a body not read to its end is not read further)."""
        if self._released:
            return
        self._released = True
        self._release(self._done and self._keep and not self._wire.pending())


def _timeout(pool: Any, url: str, exc: BaseException, timeout: Any) -> BaseException | None:
    if isinstance(exc, TimeoutError) or (isinstance(exc, ssl.SSLError) and "timed out" in str(exc)):
        return urllib3.exceptions.ReadTimeoutError(pool, url, f"Read timed out. (read timeout={timeout})")
    return None


def wrap_head_error(exc: Exception, pool: Any, url: str, timeout: Any) -> Exception:
    """The exception as urllib3's ``urlopen`` raises it with ``retries=False``."""
    late = _timeout(pool, url, exc, timeout)
    if late is not None:
        return late  # type: ignore[return-value]
    if isinstance(exc, ssl.SSLError):
        return urllib3.exceptions.SSLError(exc)
    if isinstance(exc, (OSError, http.client.HTTPException)) and not isinstance(exc, urllib3.exceptions.HTTPError):
        return urllib3.exceptions.ProtocolError("Connection aborted.", exc)
    return exc


def wrap_body_error(exc: Exception, pool: Any) -> Exception:
    """The exception as urllib3's response reads raise it."""
    if isinstance(exc, TimeoutError) or (isinstance(exc, ssl.SSLError) and "timed out" in str(exc)):
        return urllib3.exceptions.ReadTimeoutError(pool, None, "Read timed out.")
    if isinstance(exc, ssl.SSLError):
        return urllib3.exceptions.SSLError(exc)
    if isinstance(exc, (OSError, http.client.HTTPException)) and not isinstance(exc, urllib3.exceptions.HTTPError):
        return urllib3.exceptions.ProtocolError(f"Connection broken: {exc!r}", exc)
    return exc


def exchange(
    sock: Any, request: bytes, release: Callable[[bool], None], acknowledge: Callable[[Any], None]
) -> tuple[int, Headers, Answer]:
    """Write ``request`` and read the answer's status line and headers; the body is read through the
    :class:`Answer`. ``release(reusable)`` is called once, when the answer is closed; ``acknowledge(sock)``
    before the head is read and once it is in (TCP_QUICKACK). Raises http.client's exceptions and
    ``OSError`` s unwrapped (see :func:`wrap_head_error`)."""
    with suppress(BrokenPipeError, ConnectionResetError):  # as urllib3: the server may have answered (an
        sock.sendall(request)  # error, say) before it closed, so what it sent is read all the same
    wire = _Buffered(sock)
    acknowledge(sock)
    while True:
        status, http11 = _status(wire)
        items = _headers(wire)
        if status < 100 or status >= 200 or status == 101:
            break  # 1xx (but 101): an interim answer; the final one follows
    acknowledge(sock)  # the headers are in: acknowledge them now, so a Nagle-held body comes at once
    tokens = {token.strip().lower() for token in items.get("connection", "").split(",")}
    keep = "close" not in tokens if http11 else "keep-alive" in tokens or "keep-alive" in items
    chunked = items.get("transfer-encoding", "").strip().lower() == "chunked"
    if status in _NO_BODY or 100 <= status < 200:
        length: int | None = 0
        chunked = False
    elif chunked:
        length = None
    else:
        length = _length(items)
    return status, Headers(items), Answer(wire, length, chunked, keep, release)
