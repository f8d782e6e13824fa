"""Where a lookup's CPU goes at 30,000 images against the strict emulator, and how low it can go.

Run ``python benchmarks/cpu_floor.py`` (``--help`` for options). Prints markdown tables on stdout.
(Over 400 lines: a standalone benchmark, so the prototypes sit beside the floor they are measured against.)

Part 1, the floor: one thread, sequential, no other thread in the process. The pages of the catalogue are
fetched once and kept as bytes; then, per image: decoding them (``json.loads``, pydantic-core's
``from_json``), reading them into lean records (``parse_records``), selection (``select``), and the socket
side alone: signed requests sent one after another on one keep-alive connection, each answer read with a
``recv_into`` of its exact size and not decoded, at ``--floor-latency-ms``. Also what the machine charges
for a thread's sleep and wake-up, which every concurrent client pays per request and per GIL hand-over.

Part 2, the clients: the same lookup (``name_regex``, ``most_recent``) against the strict emulator (20 ms,
``Limit`` capped at 100, so 300 requests at 30,000 images) in a child process, every variant in every round,
rounds interleaved, medians of ``--runs``. CPU is the process's CPU time (all threads) per image listed.

- ``ours``: ``lookup_images`` with a fresh ``Client`` (``max_workers`` as named);
- ``ideal``: ``bench_lookup.ideal`` (http.client, a thread and a connection per page, ``json.loads``);
- ``threads-N``: N threads, each with one keep-alive raw socket, taking offsets from a queue;
- ``selector-N``: one thread, N non-blocking keep-alive sockets driven by ``selectors`` (epoll);
- suffixes: ``-json`` (``json.loads`` instead of ``from_json``), ``-gc`` (the collector left on: the
  prototypes otherwise run with it off, as ``gc.disable()`` around the read would), ``-nogc`` (``ours`` and
  ``ideal`` with the collector off).

Every prototype does per page what the package must: a signed form POST, the status check, the
Content-Length cap (``MAX_BYTES``) before reading, a body read into a buffer of its declared size, the
comma bound, the JSON decode, the RetCode check and ``parse_records`` (the package's own lean reading);
then the package's ``select`` over the records, in server order, each ImageId once. What it leaves out
(chunked bodies, gzip, redirects, retries, deadlines) costs nothing on this path. All variants must pick
the same image.
"""

from __future__ import annotations

import argparse
import functools
import gc
import http.client
import json
import os
import queue
import selectors
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from pydantic_core import from_json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_lookup as bench

from pulumi_ucloud_images import Client, lookup_images
from pulumi_ucloud_images._emulator import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY
from pulumi_ucloud_images._lean import ImageRecord, parse_records
from pulumi_ucloud_images._query import parse_query
from pulumi_ucloud_images._select import select
from pulumi_ucloud_images._signing import sign

PAGE = 100  # the strict emulator's Limit cap
MAX_BYTES = 32 * 1024 * 1024
QUERY = parse_query(name_regex=bench.NAME_REGEX, most_recent=True)
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)
Decoder = Callable[[bytes | bytearray], Any]


# -- one page on a raw socket --------------------------------------------------------------------------------


def request_bytes(host: str, port: int, offset: int, limit: int) -> bytes:
    form = urlencode(sign({"Action": "DescribeImage", "Region": bench.REGION, "Offset": offset, "Limit": limit},
                          DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY)).encode()
    return (f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(form)}\r\n\r\n").encode() + form


def quick_ack(sock: socket.socket) -> None:
    if _QUICKACK is not None:
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


def head_of(head: bytes | bytearray) -> int:
    """The Content-Length of a 200 answer's head, checked against the cap (the status check included)."""
    if head[9:12] != b"200":
        raise RuntimeError(f"HTTP {bytes(head[9:12])!r}")
    at = head.lower().find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError("no Content-Length (chunked bodies are not prototyped)")
    length = int(head[at + 17: head.find(b"\r\n", at + 2)])
    if length > MAX_BYTES:
        raise RuntimeError("answer too large")
    return length


def records_of(body: bytes | bytearray, decode: Decoder) -> tuple[int, tuple[ImageRecord, ...]]:
    """What the package does with a page body after reading it: bound, decode, RetCode, lean records."""
    if body.count(b",") > PAGE * 1024 + 4096:
        raise RuntimeError("too many JSON values")
    envelope = decode(body)
    if type(envelope) is not dict or envelope.get("RetCode") != 0:
        raise RuntimeError(f"bad envelope: {str(envelope)[:80]}")
    page = parse_records(envelope, limit=PAGE)
    return page.total_count, page.images


def connect(host: str, port: int) -> socket.socket:
    """A connection, a SYN dropped against the backlog of 5 retried after 50 ms (as the ideal client does)."""
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=0.05)
        except TimeoutError:
            continue
        sock.settimeout(None)
        return sock


def fetch_blocking(sock: socket.socket, request: bytes, buffer: bytearray) -> bytearray:
    """One request on a blocking keep-alive socket; the body is read into one buffer of its exact size."""
    sock.sendall(request)
    head = bytearray()
    while True:
        quick_ack(sock)
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        head += chunk
        end = head.find(b"\r\n\r\n")
        if end >= 0:
            break
    quick_ack(sock)  # the head is in: acknowledge it, so a Nagle-held body comes at once
    length = head_of(head[:end])
    body = bytearray(length)
    got = len(head) - end - 4
    body[:got] = head[end + 4:]
    view = memoryview(body)
    while got < length:
        n = sock.recv_into(view[got:])
        if not n:
            raise RuntimeError("connection closed")
        got += n
    return body


def pick(pages: dict[int, tuple[ImageRecord, ...]]) -> str:
    images: dict[str, ImageRecord] = {}
    for offset in sorted(pages):
        for image in pages[offset]:
            images.setdefault(image.image_id, image)
    return select(list(images.values()), QUERY, bench.REGION).image.image_id  # type: ignore[arg-type]


def _gc_off(lookup: Callable[[str], str]) -> Callable[[str], str]:
    @functools.wraps(lookup)
    def run(base_url: str) -> str:
        gc.disable()
        try:
            return lookup(base_url)
        finally:
            gc.enable()

    return run


# -- the client variants --------------------------------------------------------------------------------------


def ours(workers: int, base_url: str) -> str:
    with Client(bench.demo_settings(base_url), max_workers=workers) as client:
        return lookup_images(client=client, name_regex=bench.NAME_REGEX, most_recent=True).image_id


def threads(count: int, decode: Decoder, base_url: str) -> str:
    """The first page, then ``count`` threads with a keep-alive raw socket each, taking offsets from a queue."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    first = connect(host, port)
    total, images = records_of(fetch_blocking(first, request_bytes(host, port, 0, 1000), bytearray()), decode)
    pages = {0: images}
    offsets: queue.SimpleQueue[int] = queue.SimpleQueue()
    for offset in range(len(images), total, len(images)):
        offsets.put(offset)
    errors: list[BaseException] = []

    def work(sock: socket.socket | None) -> None:
        try:
            while True:
                try:
                    offset = offsets.get_nowait()
                except queue.Empty:
                    return
                sock = sock or connect(host, port)
                body = fetch_blocking(sock, request_bytes(host, port, offset, len(images)), bytearray())
                pages[offset] = records_of(body, decode)[1]
        except BaseException as exc:
            errors.append(exc)
        finally:
            if sock is not None:
                sock.close()

    workers = [threading.Thread(target=work, args=(first if i == 0 else None,)) for i in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise errors[0]
    return pick(pages)


class _Conn:
    __slots__ = ("body", "got", "head", "offset", "sock", "started")

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.started = sock, time.monotonic()
        self.offset = -1
        self.head = bytearray()
        self.body: bytearray | None = None
        self.got = 0


def selector(count: int, decode: Decoder, base_url: str) -> str:
    """One thread, ``count`` non-blocking keep-alive connections on epoll; each page decoded as it completes."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    sel = selectors.DefaultSelector()
    pending: list[int] = [0]  # offsets to ask for, popped from the end; the first page first, alone
    pages: dict[int, tuple[ImageRecord, ...]] = {}
    limit, outstanding = 1000, 0
    conns: list[_Conn] = []

    def open_one() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((host, port))
        conn = _Conn(sock)
        conns.append(conn)
        sel.register(sock, selectors.EVENT_WRITE, conn)

    def send_next(conn: _Conn) -> None:
        nonlocal outstanding
        if not pending:
            sel.unregister(conn.sock)
            conn.sock.close()
            conns.remove(conn)
            return
        conn.offset = pending.pop()
        conn.head, conn.body, conn.got = bytearray(), None, 0
        conn.sock.send(request_bytes(host, port, conn.offset, limit))  # a few hundred bytes: one send
        outstanding += 1
        sel.modify(conn.sock, selectors.EVENT_READ, conn)

    open_one()
    try:
        while conns:
            for key, _ in sel.select(timeout=0.025):
                conn: _Conn = key.data
                sock = conn.sock
                if conn.offset < 0:  # connected (or refused)
                    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                        raise RuntimeError("connect failed")
                    send_next(conn)
                    continue
                if conn.body is None:
                    quick_ack(sock)
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise RuntimeError("connection closed")
                    conn.head += chunk
                    end = conn.head.find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    quick_ack(sock)
                    conn.body = bytearray(head_of(conn.head[:end]))
                    rest = conn.head[end + 4:]
                    conn.body[: len(rest)] = rest
                    conn.got = len(rest)
                else:
                    n = sock.recv_into(memoryview(conn.body)[conn.got:])
                    if not n:
                        raise RuntimeError("connection closed")
                    conn.got += n
                if conn.got < len(conn.body):
                    continue
                total, images = records_of(conn.body, decode)
                pages[conn.offset] = images
                outstanding -= 1
                if conn.offset == 0:  # the first page: now every other page, on up to ``count`` connections
                    limit = len(images)
                    pending.extend(reversed(range(limit, total, limit)))
                    for _ in range(min(count, len(pending)) - 1):
                        open_one()
                send_next(conn)
            now = time.monotonic()
            for conn in list(conns):  # a SYN dropped against the backlog of 5: a fresh one after 50 ms
                if conn.offset < 0 and now - conn.started > 0.05:
                    sel.unregister(conn.sock)
                    conn.sock.close()
                    conns.remove(conn)
                    open_one()
    finally:
        for conn in conns:
            conn.sock.close()
        sel.close()
    return pick(pages)


# -- part 1: the floor ----------------------------------------------------------------------------------------


def _per_image(run: Callable[[], object], images: int, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        started = time.thread_time()
        run()
        times.append(time.thread_time() - started)
    return statistics.median(times) / images * 1e6


def wake_cost() -> tuple[float, float]:
    """CPU charged to a thread per ``time.sleep(0.02)`` and per Event hand-over between two threads (µs)."""
    started = time.thread_time()
    for _ in range(100):
        time.sleep(0.02)
    sleep = (time.thread_time() - started) / 100 * 1e6
    ping, pong = threading.Event(), threading.Event()

    def other() -> None:
        for _ in range(2000):
            ping.wait()
            ping.clear()
            pong.set()

    thread = threading.Thread(target=other)
    thread.start()
    started = time.process_time()
    for _ in range(2000):
        ping.set()
        pong.wait()
        pong.clear()
    thread.join()
    return sleep, (time.process_time() - started) / 4000 * 1e6


def floor(size: int, latency_ms: float) -> None:
    emulator = bench.RemoteEmulator(size, latency_ms, True)
    try:
        parts = urlsplit(emulator.base_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        sock = connect(host, port)
        requests = [request_bytes(host, port, offset, PAGE) for offset in range(0, size, PAGE)]
        bodies = [fetch_blocking(sock, request, bytearray()) for request in requests]
        wire = sum(map(len, bodies))
        recv = _per_image(lambda: [fetch_blocking(sock, request, bytearray()) for request in requests], size, 3)
        conn = http.client.HTTPConnection(host, port)
        form = urlencode(sign({"Action": "DescribeImage", "Region": bench.REGION, "Offset": 0, "Limit": PAGE},
                              DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY))

        def with_http_client() -> None:
            for _ in requests:
                quick_ack(conn.sock) if conn.sock else None
                conn.request("POST", "/", form, {"Content-Type": "application/x-www-form-urlencoded"})
                conn.getresponse().read()

        with_http_client()
        http_client = _per_image(with_http_client, size, 3)
        sock.close()
        conn.close()
    finally:
        emulator.close()
    sleep, handover = wake_cost()

    def each(step: Callable[[bytearray], object]) -> Callable[[], None]:
        def run() -> None:
            for body in bodies:
                step(body)
        return run

    def kept() -> None:  # as a lookup must: the listing is kept while the rest is read
        listing: list[ImageRecord] = []
        for body in bodies:
            listing.extend(records_of(body, from_json)[1])

    records = [record for body in bodies for record in records_of(body, from_json)[1]]
    steps: list[tuple[str, Callable[[], object]]] = [
        ("`json.loads`", each(json.loads)),
        ("`from_json`", each(from_json)),
        ("`from_json(cache_strings='keys')`", each(lambda body: from_json(body, cache_strings="keys"))),
        ("comma bound + `from_json` + RetCode + `parse_records`", each(lambda body: records_of(body, from_json))),
        ("the same with `json.loads`", each(lambda body: records_of(body, json.loads))),
        ("the same with `from_json`, the records kept (30,000 live at the end)", kept),
        ("`select` (name_regex, most_recent) over the records",
         lambda: select(records, QUERY, bench.REGION)),  # type: ignore[arg-type]
    ]
    measured = []
    for label, run in steps:
        on = _per_image(run, size)
        gc.disable()
        off = _per_image(run, size)
        gc.enable()
        before = sum(stat["collections"] for stat in gc.get_stats())
        run()
        measured.append((label, on, off, sum(stat["collections"] for stat in gc.get_stats()) - before))
    print(f"\n### Floor: one thread, sequential, {size:,} images ({size // PAGE} pages of {PAGE})\n")
    print(f"Body bytes per image on the wire: {wire / size:.0f}. Thread CPU per `time.sleep(0.02)`: {sleep:.0f} µs; "
          f"per Event hand-over between two threads: {handover:.0f} µs.\n")
    print("| step | CPU µs per image | gc off | collections |")
    print("|---|---:|---:|---:|")
    print(f"| sign + send + `recv_into` on one keep-alive socket, {latency_ms:g} ms latency, not decoded | {recv:.2f} "
          "| - | - |")
    print(f"| http.client request + read on one keep-alive connection, {latency_ms:g} ms latency, not decoded "
          f"| {http_client:.2f} | - | - |")
    for label, on, off, collections in measured:
        print(f"| {label} | {on:.2f} | {off:.2f} | {collections} |")


# -- part 2: the variants -------------------------------------------------------------------------------------

VARIANTS: dict[str, Callable[[str], str]] = {
    "ours-32": functools.partial(ours, 32),
    "ours-32-nogc": _gc_off(functools.partial(ours, 32)),
    "ours-8": functools.partial(ours, 8),
    "ours-1": functools.partial(ours, 1),
    "ideal": bench.ideal,
    "ideal-nogc": _gc_off(bench.ideal),
    "threads-1": _gc_off(functools.partial(threads, 1, from_json)),
    "threads-4": _gc_off(functools.partial(threads, 4, from_json)),
    "threads-16": _gc_off(functools.partial(threads, 16, from_json)),
    "threads-16-gc": functools.partial(threads, 16, from_json),
    "threads-32": _gc_off(functools.partial(threads, 32, from_json)),
    "selector-8": _gc_off(functools.partial(selector, 8, from_json)),
    "selector-16": _gc_off(functools.partial(selector, 16, from_json)),
    "selector-32": _gc_off(functools.partial(selector, 32, from_json)),
    "selector-16-gc": functools.partial(selector, 16, from_json),
    "selector-16-json": _gc_off(functools.partial(selector, 16, json.loads)),
}


def variants(size: int, latency_ms: float, runs: int, names: list[str]) -> None:
    emulator = bench.RemoteEmulator(size, latency_ms, True)
    cpus: dict[str, list[float]] = {name: [] for name in names}
    walls: dict[str, list[float]] = {name: [] for name in names}
    try:
        answers = {name: VARIANTS[name](emulator.base_url) for name in names}  # warm-up, and the answer
        if len(set(answers.values())) != 1:
            raise SystemExit(f"the variants disagree: {answers}")
        for _ in range(runs):
            for name in names:
                gc.collect()
                cpu, started = time.process_time(), time.perf_counter()
                VARIANTS[name](emulator.base_url)
                walls[name].append(time.perf_counter() - started)
                cpus[name].append(time.process_time() - cpu)
    finally:
        emulator.close()
    ideal = statistics.median(cpus["ideal"]) if "ideal" in cpus else None
    print(f"\n### Clients: {size:,} images, strict emulator, {latency_ms:g} ms, median (fastest-slowest) of {runs} "
          "interleaved runs\n")
    print("| variant | CPU µs/image | vs ideal | wall ms |")
    print("|---|---:|---:|---:|")
    for name in names:
        cpu, wall = statistics.median(cpus[name]), walls[name]
        ratio = f"{cpu / ideal:.2f}x" if ideal else "-"
        print(f"| {name} | {cpu / size * 1e6:.1f} ({min(cpus[name]) / size * 1e6:.1f}-"
              f"{max(cpus[name]) / size * 1e6:.1f}) | {ratio} | {statistics.median(wall) * 1e3:.0f} "
              f"({min(wall) * 1e3:.0f}-{max(wall) * 1e3:.0f}) |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=30000, help="catalogue size")
    parser.add_argument("--runs", type=int, default=7, help="interleaved runs per variant (median)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="emulator latency for the variants")
    parser.add_argument("--floor-latency-ms", type=float, default=20.0, help="emulator latency for the floor")
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--skip-floor", action="store_true")
    args = parser.parse_args(argv)
    print(f"Python {sys.version.split()[0]}, os.cpu_count() = {os.cpu_count()}")
    if not args.skip_floor:
        floor(args.size, args.floor_latency_ms)
    if args.variants:
        variants(args.size, args.latency_ms, args.runs, args.variants)
    return 0


if __name__ == "__main__":
    sys.exit(main())
