"""Lookup speed against a realistic server: this library vs an ideal client and the official SDK, same run.

Run ``python benchmarks/bench_lookup.py`` (``--help`` for options; ``--smoke`` for a run of a few seconds that
only checks every client still agrees). Prints markdown tables on stdout.

The emulator runs in a child process (a real server is remote; in-process it would compete with the client
for the GIL) with ``--latency-ms`` added to every answer and a ``synthetic_catalog`` of N images in one
region. The targets are judged against its **realistic** mode, which answers as an API gateway does:
``TCP_NODELAY``, each answer in one send, a listen backlog of 128, ``Limit`` capped at 100. A second table,
reported for comparison only (no target), repeats the lookups against its **strict** mode, which behaves like
a server built on Python's ``http.server``: headers and body in separate sends without TCP_NODELAY, a listen
backlog of 5, every answer encoded afresh. Per size, every client runs in the same process against the same
server:

- ours: ``lookup_images(name_regex=..., most_recent=True)`` with a fresh :class:`Client` per run (new
  connections, empty memo), default page size and pool;
- ideal: the physical limit of a Python client: ``http.client``, the first page, then every later page at
  once (one fresh connection and thread each, a connect retried after 50 ms if its SYN was dropped),
  ``json.loads`` only, then the same selection in plain Python;
- SDK: ``ucloud-sdk-python3``'s ``uhost().describe_image`` paging ``Limit=100`` sequentially until a short
  page, as the Terraform ``ucloud_images`` data source does, then the same filter. Its logging middleware is
  left out. It is slow (one round trip per 100 images), so it runs ``--sdk-runs`` times up to 3,009 images
  and once above.

Every client must pick the same image. CPU is the process's CPU time (every thread) per lookup, divided by the
images listed. Requests and sequential round trips (the longest chain of requests that did not overlap in
time) are counted by the emulator in one extra run at 250 ms latency, so that thread scheduling on a busy
machine cannot make concurrent requests look sequential. Peak memory comes from ``tracemalloc`` in another
run (it slows code down). Stability: ``--stability-runs`` lookups at 3,009 images, realistic mode; the
slowest against the median.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import multiprocessing
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

from pydantic import SecretStr

from pulumi_ucloud_images import Client, lookup_images
from pulumi_ucloud_images._api.client import reset_shared_clients
from pulumi_ucloud_images._api.signing import sign
from pulumi_ucloud_images._emulator.catalog import synthetic_catalog
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator
from pulumi_ucloud_images._settings.settings import Settings

REGION = "cn-bj2"
NAME_REGEX = r"^Ubuntu 22\.04"
BASELINE_PAGE = 100
PROBE_LATENCY_MS = 250.0
STABILITY_SIZE = 3009
SDK_FULL_RUNS_UP_TO = 3009


# -- the emulator, in a child process -----------------------------------------------------------------------


PAGE_CAP = 100  # the Limit both modes cap at, as the API's own examples and the SDKs page


def _serve(size: int, latency_ms: float, strict: bool, conn: Connection) -> None:
    """Child process: serve ``size`` images and answer 'spans'/'reset'/'stop' commands over ``conn``."""
    emulator = Emulator(synthetic_catalog(REGION, size), latency_ms=latency_ms, strict=strict, max_limit=PAGE_CAP)
    spans: list[tuple[float, float]] = []
    answer = emulator._answer

    def timed(method: str, params: Any, wait: Any) -> Any:
        started = time.monotonic()
        result = answer(method, params, wait)
        spans.append((started, time.monotonic()))
        return result

    emulator._answer = timed  # type: ignore[method-assign]  # the emulator's own answers, timed in place
    with emulator:
        conn.send(emulator.base_url)
        while True:
            command = conn.recv()
            if command == "spans":
                conn.send(list(spans))
            elif isinstance(command, tuple) and command[0] == "latency":
                emulator.latency_ms = float(command[1])
                conn.send(None)
            elif command == "reset":
                spans.clear()
                conn.send(None)
            else:
                return


class RemoteEmulator:
    def __init__(self, size: int, latency_ms: float, strict: bool) -> None:
        self.size = size
        self.latency_ms = latency_ms
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(size, latency_ms, strict, child), daemon=True)
        self._process.start()
        self.base_url: str = self._conn.recv()

    def _ask(self, command: Any) -> Any:
        self._conn.send(command)
        return self._conn.recv()

    def reset(self) -> None:
        self._ask("reset")

    def spans(self) -> list[tuple[float, float]]:
        return list(self._ask("spans"))

    def set_latency(self, latency_ms: float) -> None:
        self._ask(("latency", latency_ms))

    def close(self) -> None:
        self._conn.send("stop")
        self._process.join(timeout=10)


def round_trips(spans: list[tuple[float, float]]) -> int:
    """The longest chain of requests in which each started after the previous one ended."""
    ends: list[tuple[float, int]] = []  # (end, depth), for the requests seen so far
    best = 0
    for start, end in sorted(spans):
        depth = 1 + max((d for e, d in ends if e <= start), default=0)
        ends.append((end, depth))
        best = max(best, depth)
    return best


# -- the lookups ----------------------------------------------------------------------------------------------


def demo_settings(base_url: str) -> Settings:
    return Settings(
        public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY), region=REGION, base_url=base_url
    )


def ours(base_url: str) -> str:
    with Client(demo_settings(base_url)) as client:
        return lookup_images(client=client, name_regex=NAME_REGEX, most_recent=True).image_id


def _pick(images: list[dict[str, Any]]) -> str:
    pattern = re.compile(NAME_REGEX)
    matches = [i for i in images if i.get("State") == "Available" and pattern.search(i.get("ImageName", ""))]
    return str(max(matches, key=lambda i: (i.get("CreateTime", 0), i.get("ImageId", "")))["ImageId"])


def _ideal_page(host: str, port: int, offset: int, limit: int) -> dict[str, Any]:
    form = urlencode(sign({"Action": "DescribeImage", "Region": REGION, "Offset": offset, "Limit": limit},
                          DEMO_PUBLIC_KEY, DEMO_PRIVATE_KEY))
    while True:  # a SYN dropped against a full accept queue: try again at once, not after the kernel's 1 s
        try:
            sock = socket.create_connection((host, port), timeout=0.05)
            break
        except TimeoutError:
            continue
    sock.settimeout(30)
    connection = http.client.HTTPConnection(host, port)
    connection.sock = sock
    try:
        connection.request("POST", "/", form, {"Content-Type": "application/x-www-form-urlencoded"})
        body: dict[str, Any] = json.loads(connection.getresponse().read())
        return body
    finally:
        connection.close()


def ideal(base_url: str) -> str:
    """http.client; the first page, then every later page at once (a thread and connection each); json.loads."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    first = _ideal_page(host, port, 0, 1000)
    images: list[dict[str, Any]] = list(first["ImageSet"])
    served, total = len(images), first["TotalCount"]
    pages: dict[int, list[dict[str, Any]]] = {}

    def fetch(offset: int) -> None:
        pages[offset] = _ideal_page(host, port, offset, served)["ImageSet"]

    threads = [threading.Thread(target=fetch, args=(offset,)) for offset in range(served, total, served)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for offset in sorted(pages):
        images.extend(pages[offset])
    return _pick(images)


def sdk(base_url: str) -> str:
    from ucloud.client import Client as SDKClient
    from ucloud.core.utils.middleware import Middleware

    config = {
        "region": REGION,
        "public_key": DEMO_PUBLIC_KEY,
        "private_key": DEMO_PRIVATE_KEY,
        "base_url": base_url,
        "max_retries": 0,
    }
    uhost = SDKClient(config, middleware=Middleware()).uhost()
    images: list[dict[str, Any]] = []
    while True:
        page = uhost.describe_image({"Offset": len(images), "Limit": BASELINE_PAGE}).get("ImageSet") or []
        images.extend(page)
        if len(page) < BASELINE_PAGE:
            break
    return _pick(images)


class Measurement(NamedTuple):
    walls: list[float]  # seconds, every timed run
    cpu: float  # median CPU seconds per lookup
    requests: int
    round_trips: int
    peak_mib: float
    answer: str

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)


def measure(
    lookup: Callable[[str], str], emulator: RemoteEmulator, runs: int, *, probe: bool = True, memory: bool = True
) -> Measurement:
    """Median wall and CPU time of ``runs`` lookups; requests and round trips of one run at 250 ms latency
    (``probe``); peak memory of another under tracemalloc (``memory``)."""
    lookup(emulator.base_url)  # warm-up: imports, compiled patterns
    walls, cpus = [], []
    answer = ""
    spans: list[tuple[float, float]] = []
    for _ in range(runs):
        emulator.reset()
        cpu, started = time.process_time(), time.perf_counter()
        answer = lookup(emulator.base_url)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
        spans = emulator.spans()
    if probe:
        emulator.set_latency(PROBE_LATENCY_MS)
        emulator.reset()
        lookup(emulator.base_url)
        spans = emulator.spans()
        emulator.set_latency(emulator.latency_ms)
    peak = 0.0
    if memory:
        tracemalloc.start()
        lookup(emulator.base_url)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return Measurement(walls, statistics.median(cpus), len(spans), round_trips(spans), peak, answer)


def repeat_requests(emulator: RemoteEmulator) -> int:
    """Requests made by a second identical lookup through the shared client (the memo answers it)."""
    settings = demo_settings(emulator.base_url)
    reset_shared_clients()
    lookup_images(settings=settings, name_regex=NAME_REGEX, most_recent=True)
    emulator.reset()
    lookup_images(settings=settings, name_regex=NAME_REGEX, most_recent=True)
    made = len(emulator.spans())
    reset_shared_clients()
    return made


# -- cold start ---------------------------------------------------------------------------------------------


def cold_start(command: list[str], runs: int, bytecode: str) -> float:
    """Median wall time of ``runs`` fresh processes, after one warm-up run fills the bytecode cache."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = bytecode
    walls = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        walls.append(time.perf_counter() - started)
    return statistics.median(walls[1:])


def cli_command() -> list[str]:
    script = shutil.which("ucloud-images", path=os.path.dirname(sys.executable))
    if script is not None:
        return [script, "find", "--help"]
    return [sys.executable, "-c", "from pulumi_ucloud_images._cli import main; main(['find', '--help'])"]


# -- report -------------------------------------------------------------------------------------------------


class Row(NamedTuple):
    size: int
    ours: Measurement
    ideal: Measurement
    sdk: Measurement | None


def _ms(measurement: Measurement) -> str:
    walls = measurement.walls
    return f"{measurement.wall * 1000:.0f} ({min(walls) * 1000:.0f}-{max(walls) * 1000:.0f})"


def run_table(mode: str, sizes: list[int], args: argparse.Namespace) -> tuple[list[Row], int]:
    strict = mode == "strict"
    print(f"\n### {mode} emulator\n")
    print("| images | ours, ms | ideal, ms | SDK, ms | SDK / ours | ours / ideal | CPU µs/image (ours / ideal) "
          "| requests (ours / ideal / SDK) | sequential rounds (ours / ideal / SDK) | peak memory per image (ours) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    repeat = -1
    for size in sizes:
        emulator = RemoteEmulator(size, args.latency_ms, strict)
        try:
            mine = measure(ours, emulator, args.runs)
            best = measure(ideal, emulator, args.runs, memory=False)
            theirs = None
            if args.sdk_runs > 0 and size <= args.sdk_max_size:
                sdk_runs = args.sdk_runs if size <= SDK_FULL_RUNS_UP_TO else 1
                theirs = measure(sdk, emulator, sdk_runs, probe=False, memory=False)
                pages = size // BASELINE_PAGE + 1  # sequential until a short (or empty) page
                theirs = theirs._replace(requests=pages, round_trips=pages)
            if size == max(sizes):
                repeat = repeat_requests(emulator)
        finally:
            emulator.close()
        for other in (best, theirs):
            if other is not None and other.answer != mine.answer:
                raise SystemExit(f"the lookups disagree at {size} images: {mine.answer} vs {other.answer}")
        rows.append(Row(size, mine, best, theirs))
        sdk_ms = f"{_ms(theirs)}" if theirs else "-"
        ratio = f"**{theirs.wall / mine.wall:.1f}x**" if theirs else "-"
        sdk_requests = str(theirs.requests) if theirs else "-"
        print(
            f"| {size:,} | {_ms(mine)} | {_ms(best)} | {sdk_ms} | {ratio} | **{mine.wall / best.wall:.2f}x** "
            f"| {mine.cpu / size * 1e6:.1f} / {best.cpu / size * 1e6:.1f} "
            f"| {mine.requests} / {best.requests} / {sdk_requests} "
            f"| {mine.round_trips} / {best.round_trips} / {sdk_requests} "
            f"| {mine.peak_mib * 1024 * 1024 / size / 1024:.2f} KiB |"
        )
    return rows, repeat


def stability(runs: int, latency_ms: float) -> list[float]:
    emulator = RemoteEmulator(STABILITY_SIZE, latency_ms, False)
    try:
        ours(emulator.base_url)
        walls = []
        for _ in range(runs):
            started = time.perf_counter()
            ours(emulator.base_url)
            walls.append(time.perf_counter() - started)
        return walls
    finally:
        emulator.close()


def targets_for(tables: dict[str, list[Row]], repeat: int, cli: float) -> list[tuple[str, str, bool]]:
    """The targets, judged on the realistic table only (strict is reported for comparison)."""
    targets: list[tuple[str, str, bool]] = []
    rows = {row.size: row for row in tables.get("realistic", [])}
    for size in (STABILITY_SIZE, 30000):
        if size in rows:
            ratio = rows[size].ours.wall / rows[size].ideal.wall
            targets.append((f"ours <= 1.2x the ideal client at {size:,} images", f"{ratio:.2f}x", ratio <= 1.2))
    row = rows.get(STABILITY_SIZE)
    if row is not None and row.sdk is not None:
        ratio = row.sdk.wall / row.ours.wall
        targets.append((f"SDK / ours >= 8.5 at {STABILITY_SIZE:,} images", f"{ratio:.1f}x", ratio >= 8.5))
    largest = max(rows, default=0)
    if largest:
        row = rows[largest]
        cpu = row.ours.cpu / largest * 1e6
        memory = row.ours.peak_mib * 1024 / largest
        targets.append((f"CPU <= 15 µs per image at {largest:,} images", f"{cpu:.1f} µs", cpu <= 15))
        targets.append((f"peak memory <= 1.5 KiB per image at {largest:,} images", f"{memory:.2f} KiB",
                        memory <= 1.5))
    targets.append(("an identical repeat makes 0 requests", str(repeat), repeat == 0))
    if cli >= 0:
        targets.append(("`ucloud-images find --help` starts in <= 0.3 s", f"{cli:.2f} s", cli <= 0.3))
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3009, 10000, 30000], help="catalogue sizes")
    parser.add_argument("--runs", type=int, default=9, help="timed runs per size and client (median)")
    parser.add_argument("--sdk-runs", type=int, default=3, help="timed SDK runs up to 3,009 images (1 above; 0: none)")
    parser.add_argument("--sdk-max-size", type=int, default=30000, help="largest catalogue the SDK is run at")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="latency the emulator adds per request")
    parser.add_argument("--modes", nargs="+", choices=["realistic", "strict"], default=["realistic", "strict"])
    parser.add_argument("--stability-runs", type=int, default=20, help="realistic runs at 3,009 images (0: none)")
    parser.add_argument("--cold-runs", type=int, default=7, help="subprocess runs per cold start (0: none)")
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds: 300 images, 2 runs, realistic only, no SDK, stability or cold start; "
                             "checks the clients agree, judges no target")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.runs, args.sdk_runs, args.modes = [300], 2, 0, ["realistic"]
        args.stability_runs = args.cold_runs = 0
    logging.getLogger("ucloud").setLevel(logging.WARNING)

    print(
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"os.cpu_count() = {os.cpu_count()}, load average {' '.join(f'{n:.1f}' for n in os.getloadavg())}; "
        f"emulator latency {args.latency_ms:g} ms per request; "
        f"median (fastest-slowest) of {args.runs} runs; SDK {args.sdk_runs} runs up to {SDK_FULL_RUNS_UP_TO:,} "
        "images, 1 above."
    )
    tables: dict[str, list[Row]] = {}
    repeat = -1
    for mode in args.modes:
        tables[mode], made = run_table(mode, args.sizes, args)
        repeat = made if mode == args.modes[0] else repeat
    print(f"\nAn identical repeat lookup ({max(args.sizes):,} images, shared client) made {repeat} requests.")

    if args.stability_runs > 0:
        walls = stability(args.stability_runs, args.latency_ms)
        median = statistics.median(walls)
        print(f"\nStability, realistic, {STABILITY_SIZE:,} images, {len(walls)} runs: median {median * 1000:.0f} ms, "
              f"fastest {min(walls) * 1000:.0f} ms, slowest {max(walls) * 1000:.0f} ms "
              f"({max(walls) / median:.2f}x the median).")

    cli = -1.0
    if args.cold_runs > 0:
        with tempfile.TemporaryDirectory() as bytecode:
            cli = cold_start(cli_command(), args.cold_runs, bytecode)
            library = cold_start([sys.executable, "-c", "import pulumi_ucloud_images"], args.cold_runs, bytecode)
            bare = cold_start([sys.executable, "-c", "pass"], args.cold_runs, bytecode)
        print(f"\n| cold start (median of {args.cold_runs} fresh processes, warm bytecode cache) | wall |")
        print("|---|---:|")
        print(f"| `ucloud-images find --help` | {cli * 1000:.0f} ms |")
        print(f"| `python -c \"import pulumi_ucloud_images\"` | {library * 1000:.0f} ms |")
        print(f"| `python -c \"pass\"` (the interpreter alone) | {bare * 1000:.0f} ms |")

    if args.smoke:
        print("\nSmoke run: every client agreed; no target is judged at this size.")
        return 0
    print("\n| target (realistic server) | measured | met |")
    print("|---|---:|---|")
    for target, value, met in targets_for(tables, repeat, cli):
        print(f"| {target} | {value} | {'yes' if met else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
