"""Lookup speed: this library vs the official SDK paging 100 at a time, against the emulator with latency.

Run ``python benchmarks/bench_lookup.py`` (``--help`` for options). Prints markdown tables on stdout.

The emulator runs in a child process (a real server is remote; in-process it would compete with the client
for the GIL) with ``--latency-ms`` added to every answer and a ``synthetic_catalog`` of N images in one
region. Per size, both lookups run in the same process against the same server:

- ours: ``lookup_images`` with a fresh :class:`Client` per run (new session, empty memo), default page size
  and pool;
- baseline: ``ucloud-sdk-python3``'s ``uhost().describe_image`` paging ``Limit=100`` sequentially until a
  short page, as the Terraform ``ucloud_images`` data source does, then the same filter in plain Python. Its
  logging middleware is left out so the baseline is not charged for formatting log lines.

Requests and sequential round trips (the longest chain of requests that did not overlap in time) are counted
by the emulator; ours in one extra run at 250 ms latency, so that thread scheduling on a busy machine cannot
make concurrent requests look sequential (the SDK's are sequential by construction). Peak memory is measured
in another run under ``tracemalloc`` (it slows code down). Cold starts are fresh processes with a warm
bytecode cache, as an installed package has.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from pydantic import SecretStr

from pulumi_ucloud_images import Client, lookup_images
from pulumi_ucloud_images._catalog import synthetic_catalog
from pulumi_ucloud_images._client import reset_shared_clients
from pulumi_ucloud_images._emulator import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator
from pulumi_ucloud_images._settings import Settings

REGION = "cn-bj2"
NAME_REGEX = r"^Ubuntu 22\.04"
BASELINE_PAGE = 100
PROBE_LATENCY_MS = 250.0


# -- the emulator, in a child process -----------------------------------------------------------------------


def _serve(size: int, latency_ms: float, conn: Connection) -> None:
    """Child process: serve ``size`` images and answer 'spans'/'reset'/'stop' commands over ``conn``."""
    emulator = Emulator(synthetic_catalog(REGION, size), latency_ms=latency_ms)
    spans: list[tuple[float, float]] = []
    answer = emulator._answer

    def timed(method: str, params: Any) -> Any:
        started = time.monotonic()
        result = answer(method, params)
        spans.append((started, time.monotonic()))
        return result

    emulator._answer = timed  # type: ignore[method-assign]
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
    def __init__(self, size: int, latency_ms: float) -> None:
        self.latency_ms = latency_ms
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(size, latency_ms, child), daemon=True)
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
    depth: list[int] = []
    ordered = sorted(spans)
    for index, (start, _) in enumerate(ordered):
        before = [depth[j] for j in range(index) if ordered[j][1] <= start]
        depth.append(1 + max(before, default=0))
    return max(depth, default=0)


# -- the two lookups ----------------------------------------------------------------------------------------


def demo_settings(base_url: str) -> Settings:
    return Settings(
        public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY), region=REGION, base_url=base_url
    )


def ours(base_url: str) -> str:
    with Client(demo_settings(base_url)) as client:
        return lookup_images(client=client, name_regex=NAME_REGEX, most_recent=True).image_id


def baseline(base_url: str) -> str:
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
    pattern = re.compile(NAME_REGEX)
    matches = [i for i in images if i.get("State") == "Available" and pattern.search(i.get("ImageName", ""))]
    return str(max(matches, key=lambda i: (i.get("CreateTime", 0), i.get("ImageId", "")))["ImageId"])


class Measurement(NamedTuple):
    wall: float  # median seconds
    best: float  # fastest run, seconds
    requests: int
    round_trips: int
    peak_mib: float
    answer: str


def measure(
    lookup: Callable[[str], str], emulator: RemoteEmulator, runs: int, probe_latency_ms: float | None = None
) -> Measurement:
    """Median wall time of ``runs`` lookups, the requests and round trips of one, peak memory of another.

    With ``probe_latency_ms``, requests and round trips come from one extra run at that latency: long
    requests keep scheduling jitter on a busy machine from making concurrent requests look sequential.
    """
    walls = []
    answer = ""
    spans: list[tuple[float, float]] = []
    for _ in range(runs):
        emulator.reset()
        started = time.perf_counter()
        answer = lookup(emulator.base_url)
        walls.append(time.perf_counter() - started)
        spans = emulator.spans()
    if probe_latency_ms is not None:
        emulator.set_latency(probe_latency_ms)
        emulator.reset()
        lookup(emulator.base_url)
        spans = emulator.spans()
        emulator.set_latency(emulator.latency_ms)
    tracemalloc.start()
    lookup(emulator.base_url)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return Measurement(statistics.median(walls), min(walls), len(spans), round_trips(spans), peak, answer)


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
    """Median wall time of ``runs`` fresh processes, after one warm-up run fills the bytecode cache.

    Bytecode goes to the temporary ``bytecode`` directory (as an installed package has it compiled), even
    where ``PYTHONDONTWRITEBYTECODE`` is set, and never into the source tree.
    """
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 5000], help="catalogue sizes")
    parser.add_argument("--runs", type=int, default=9, help="timed runs per size and lookup (median)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="latency the emulator adds per request")
    parser.add_argument("--cold-runs", type=int, default=7, help="subprocess runs per cold-start measurement")
    args = parser.parse_args(argv)
    logging.getLogger("ucloud").setLevel(logging.WARNING)

    print(
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"os.cpu_count() = {os.cpu_count()}; emulator latency {args.latency_ms:g} ms per request; "
        f"median of {args.runs} runs.\n"
    )
    print("| images | requests (ours / SDK) | sequential round trips (ours / SDK) | ours, median (best) "
          "| official SDK, median (best) | SDK / ours (medians) | peak memory (ours / SDK) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    results: dict[int, tuple[Measurement, Measurement]] = {}
    repeat = -1
    for size in args.sizes:
        emulator = RemoteEmulator(size, args.latency_ms)
        try:
            mine = measure(ours, emulator, args.runs, probe_latency_ms=PROBE_LATENCY_MS)
            theirs = measure(baseline, emulator, args.runs)  # sequential by construction: no probe needed
            if size == max(args.sizes):
                repeat = repeat_requests(emulator)
        finally:
            emulator.close()
        if mine.answer != theirs.answer:
            raise SystemExit(f"the lookups disagree at {size} images: {mine.answer} vs {theirs.answer}")
        results[size] = (mine, theirs)
        print(
            f"| {size:,} | {mine.requests} / {theirs.requests} | {mine.round_trips} / {theirs.round_trips} "
            f"| {mine.wall * 1000:.0f} ms ({mine.best * 1000:.0f}) | {theirs.wall * 1000:.0f} ms "
            f"({theirs.best * 1000:.0f}) | **{theirs.wall / mine.wall:.1f}x** "
            f"| {mine.peak_mib:.1f} / {theirs.peak_mib:.1f} MiB |"
        )

    print(f"\nAn identical repeat lookup ({max(args.sizes):,} images, shared client) made {repeat} requests.\n")
    with tempfile.TemporaryDirectory() as bytecode:
        cli = cold_start(cli_command(), args.cold_runs, bytecode)
        library = cold_start([sys.executable, "-c", "import pulumi_ucloud_images"], args.cold_runs, bytecode)
        bare = cold_start([sys.executable, "-c", "pass"], args.cold_runs, bytecode)
    print(f"| cold start (median of {args.cold_runs} fresh processes, warm bytecode cache) | wall |")
    print("|---|---:|")
    print(f"| `ucloud-images find --help` | {cli * 1000:.0f} ms |")
    print(f"| `python -c \"import pulumi_ucloud_images\"` | {library * 1000:.0f} ms |")
    print(f"| `python -c \"pass\"` (the interpreter alone) | {bare * 1000:.0f} ms |")

    largest = results[max(args.sizes)]
    targets = [
        (f">= 10x faster than the SDK at {max(args.sizes):,} images", largest[1].wall / largest[0].wall >= 10),
        ("<= 3 sequential round trips at every size", all(m.round_trips <= 3 for m, _ in results.values())),
        ("an identical repeat makes 0 requests", repeat == 0),
        ("`ucloud-images find --help` starts in <= 0.3 s", cli <= 0.3),
    ]
    print("\n| target | met |")
    print("|---|---|")
    for target, met in targets:
        print(f"| {target} | {'yes' if met else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
