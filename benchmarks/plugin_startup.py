"""Provider plugin timings: start-up to the first answer, and getImages round trips against the emulator.

Run ``python benchmarks/plugin_startup.py`` (``--help`` for options). Prints a markdown table on stdout.

Each run starts ``pulumi-resource-ucloud-images <engine-address>`` the way the engine does and measures:

- port: from spawning the process to reading the gRPC port from its stdout;
- first GetSchema: from spawning to the first GetSchema answer (what the engine waits for);
- first Invoke: Configure, then getImages against an emulator (a child process, with ``--latency-ms`` per
  answer): settings resolution, the signed DescribeImage pages and selection;
- warm Invoke: the same getImages again in the same plugin (the lookup is memoised per process).

For scale, it also times a bare ``python -c pass`` and the import of the SDK's provider server.
The plugin never dials the engine for these calls, so the address given is a closed local port.
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from pulumi_ucloud_images._emulator import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator
from pulumi_ucloud_images._schema import GET_IMAGES_TOKEN

REGION = "cn-bj2"
QUERY = {"osType": "Linux", "nameRegex": r"^Ubuntu 22\.04", "architecture": "x86_64", "mostRecent": True}


def _serve(latency_ms: float, conn: Connection) -> None:
    with Emulator(latency_ms=latency_ms) as emulator:
        conn.send(emulator.base_url)
        conn.recv()  # until told to stop


def _command() -> list[str]:
    found = shutil.which("pulumi-resource-ucloud-images", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "pulumi_ucloud_images"]


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def one_run(base_url: str) -> dict[str, float]:
    started = time.perf_counter()
    process = subprocess.Popen([*_command(), "127.0.0.1:1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        timings = {"port": time.perf_counter() - started}
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60)
            timings["first GetSchema"] = time.perf_counter() - started
            settings = {"publicKey": DEMO_PUBLIC_KEY, "privateKey": DEMO_PRIVATE_KEY, "baseUrl": base_url,
                        "region": REGION}
            stub.Configure(provider_pb2.ConfigureRequest(args=_struct(settings), acceptSecrets=True), timeout=60)
            request = provider_pb2.InvokeRequest(tok=GET_IMAGES_TOKEN, args=_struct(dict(QUERY)))
            for label in ("first Invoke", "warm Invoke"):
                begin = time.perf_counter()
                answer = stub.Invoke(request, timeout=60)
                timings[label] = time.perf_counter() - begin
                assert not answer.failures and getattr(answer, "return").fields["imageId"].string_value
        return timings
    finally:
        process.terminate()
        process.wait(timeout=10)


def _time_command(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - started


def _row(label: str, samples: list[float]) -> str:
    ms = [sample * 1000 for sample in samples]
    return f"| {label} | {statistics.median(ms):.1f} | {min(ms):.1f} | {max(ms):.1f} |"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="plugin starts to time (default 10)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="emulator latency per answer (default 0)")
    args = parser.parse_args(argv)

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(args.latency_ms, child), daemon=True)
    server.start()
    base_url = parent.recv()
    try:
        runs = [one_run(base_url) for _ in range(args.runs)]
    finally:
        parent.send("stop")
        server.join(timeout=10)

    baselines: dict[str, Callable[[], float]] = {
        "python -c pass": lambda: _time_command([sys.executable, "-c", "pass"]),
        "import the SDK's provider server": lambda: _time_command(
            [sys.executable, "-c", "import pulumi.provider.experimental.server"]
        ),
    }
    print(f"Python {platform.python_version()} on {platform.system()} {platform.machine()}; "
          f"{args.runs} runs; emulator latency {args.latency_ms:g} ms per answer.\n")
    print("| step | median ms | min ms | max ms |")
    print("| --- | ---: | ---: | ---: |")
    for label in runs[0]:
        print(_row(label, [run[label] for run in runs]))
    for label, measure in baselines.items():
        print(_row(label, [measure() for _ in range(max(3, args.runs // 2))]))


if __name__ == "__main__":
    main()
