"""Provider plugin timings, and what the plugin and the Python faces add to a preview under the real engine.

Run ``python benchmarks/plugin_startup.py`` (``--help`` for options). Prints markdown tables on stdout and, per
target, whether it is met. ``--smoke`` runs every measurement once, in seconds, to keep this script working (CI
runs it); any error fails it.

Start-up: each run starts ``pulumi-resource-ucloud-images <engine-address>`` the way the engine does, beside a
bare ``python -c pass`` started the same way (the two alternate, so load on the machine hits both), and measures:

- port: from spawning the process to reading the gRPC port from its stdout;
- first GetSchema: from spawning to the first GetSchema answer (all a language host starts it for);
- Configure: the first call that needs the provider, so it includes loading it (the SDK, pydantic, requests);
- first Invoke: then getImages against an emulator (a child process, with ``--latency-ms`` per answer):
  settings, the signed DescribeImage pages and selection;
- warm Invoke: the same getImages again in the same plugin (the lookup is memoised per process);
- stop: from SIGINT, which is how the engine stops every plugin (and then waits for it to exit), to the exit.

The plugin never dials the engine for these calls, so the address given is a closed local port.

Previews, when ``PULUMI_ENGINE_DIR`` (from ``scripts/pulumi-engine``) names the engine; without it the script says
so and measures start-up only. Each pair of programs runs ``pulumi preview`` alternately, after one unmeasured
preview each, on a file backend against the emulator:

- YAML: one getImages against the same program exporting a constant. The plugin is a project plugin
  (``plugins.providers``) with its ``version`` declared, so the YAML host caches the schema and starts the
  plugin once per preview; a third program without the ``version`` shows the cost of the second start.
- Python: 20 distinct ``get_images`` lookups (base images of 20 OS releases) against the same program with the
  20 IDs written out, and two floors, that program with the core's dependencies loaded before anything of
  ours: ``import requests, pydantic`` (``import pydantic`` alone loads little of pydantic: its model machinery
  is imported when the first model is built), and the floor proper, requests, regex and a pydantic model with
  a described field and a secret, as the core's models have.

The package's modules are compiled to bytecode first, as installing a wheel does: with ``PYTHONDONTWRITEBYTECODE``
set, an editable install's modules would otherwise be compiled from source at every start.
"""

from __future__ import annotations

import argparse
import compileall
import multiprocessing
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.protobuf import struct_pb2
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

import pulumi_ucloud_images
from pulumi_ucloud_images import NoImageFoundError, Settings, lookup_images
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator
from pulumi_ucloud_images._naming import GET_IMAGES_TOKEN
from pulumi_ucloud_images._version import __version__

REGION = "cn-bj2"
QUERY = {"osType": "Linux", "nameRegex": r"^Ubuntu 22\.04", "architecture": "x86_64", "mostRecent": True}
PLUGIN = "pulumi-resource-ucloud-images"
LOOKUPS = 20
VENV_BIN = Path(sys.executable).parent

# The targets (issue: a fast plugin), each checked on this run's medians.
SCHEMA_TARGET_MS = 150.0
YAML_TARGET_S = 0.4
PYTHON_TARGET_RATIO = 1.15


# -- start-up ---------------------------------------------------------------------------------------------


def _serve(latency_ms: float, conn: Connection) -> None:
    with Emulator(latency_ms=latency_ms) as emulator:
        conn.send(emulator.base_url)
        conn.recv()  # until told to stop


def _command() -> list[str]:
    found = shutil.which(PLUGIN, path=str(VENV_BIN))
    return [found] if found else [sys.executable, "-m", "pulumi_ucloud_images"]


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def one_start(base_url: str) -> dict[str, float]:
    started = time.perf_counter()
    process = subprocess.Popen([*_command(), "127.0.0.1:1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            process.kill()
            raise RuntimeError(f"the plugin printed no port: {line!r}; stderr:\n{process.communicate()[1].decode()}")
        timings = {"port": time.perf_counter() - started}
        with grpc.insecure_channel(f"127.0.0.1:{int(line)}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            schema = stub.GetSchema(provider_pb2.GetSchemaRequest(version=0), timeout=60).schema
            timings["first GetSchema"] = time.perf_counter() - started
            if '"name": "ucloud-images"' not in schema:
                raise RuntimeError("GetSchema answered something other than the ucloud-images schema")
            settings = {"publicKey": DEMO_PUBLIC_KEY, "privateKey": DEMO_PRIVATE_KEY, "baseUrl": base_url,
                        "region": REGION}
            begin = time.perf_counter()
            stub.Configure(provider_pb2.ConfigureRequest(args=_struct(settings), acceptSecrets=True), timeout=60)
            timings["Configure (loads the provider)"] = time.perf_counter() - begin
            request = provider_pb2.InvokeRequest(tok=GET_IMAGES_TOKEN, args=_struct(dict(QUERY)))
            for label in ("first Invoke", "warm Invoke"):
                begin = time.perf_counter()
                answer = stub.Invoke(request, timeout=60)
                timings[label] = time.perf_counter() - begin
                if answer.failures or not getattr(answer, "return").fields["imageId"].string_value:
                    raise RuntimeError(f"getImages failed: {answer.failures}")
        begin = time.perf_counter()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        timings["stop (SIGINT to exit)"] = time.perf_counter() - begin
        return timings
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
        if process.stdout is not None:
            process.stdout.close()


def _time_command(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - started


# -- previews under the engine ----------------------------------------------------------------------------


class Program:
    """A Pulumi project in its own directory with its own PULUMI_HOME, file backend and stack ``dev``."""

    def __init__(self, root: Path, name: str, manifest: Mapping[str, Any], engine: Path, env: Mapping[str, str],
                 files: Mapping[str, str] | None = None) -> None:
        self.dir = root / name / "project"
        self.dir.mkdir(parents=True)
        (self.dir / "Pulumi.yaml").write_text(yaml.safe_dump({"name": name, **manifest}, sort_keys=False))
        for relative, text in (files or {}).items():
            (self.dir / relative).write_text(text, encoding="utf-8")
        (root / name / "state").mkdir()
        self.engine = engine
        self.env = {
            **env,
            "PATH": os.pathsep.join([str(engine), str(VENV_BIN), os.environ.get("PATH", "")]),
            "PULUMI_HOME": str(root / name / "home"),
            "PULUMI_BACKEND_URL": f"file://{root / name / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": "benchmark",
            "PULUMI_SKIP_UPDATE_CHECK": "1",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "1",
            "PULUMI_DISABLE_REGISTRY_RESOLVE": "1",
            "NO_COLOR": "1",
        }
        self.run("stack", "init", "dev")

    def run(self, *args: str) -> str:
        done = subprocess.run([str(self.engine / "pulumi"), *args, "--non-interactive"], cwd=self.dir, env=self.env,
                              capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pulumi {' '.join(args)} in {self.dir.parent.name} exited {done.returncode}:\n"
                               f"{done.stdout}\n{done.stderr}")
        return done.stdout

    def preview(self) -> float:
        started = time.perf_counter()
        self.run("preview")
        return time.perf_counter() - started


def _plugin_dir(root: Path, name: str) -> Path:
    """A directory holding only the plugin (a link to the console script): the YAML host keeps its schema cache
    beside a versioned plugin's directory, and that should not be the virtual environment."""
    directory = root / name / "plugin" / "bin"
    directory.mkdir(parents=True)
    found = shutil.which(PLUGIN, path=str(VENV_BIN))
    if found is None:
        raise RuntimeError(f"{PLUGIN} is not installed next to {sys.executable}; pip install the package first")
    (directory / PLUGIN).symlink_to(found)
    return directory


def yaml_programs(root: Path, engine: Path, env: Mapping[str, str]) -> dict[str, Program]:
    invoke = {"fn::invoke": {"function": GET_IMAGES_TOKEN,
                             "arguments": {"osType": "Linux", "nameRegex": r"^CentOS 7\.2 64"}}}
    programs = {"without": Program(root, "yaml-without", {"runtime": "yaml", "outputs": {"imageId": "uimage-f1chxn"}},
                                   engine, env)}
    for name, version in (("with", {"version": __version__}), ("unversioned", {})):
        provider = {"name": "ucloud-images", "path": str(_plugin_dir(root, f"yaml-{name}")), **version}
        manifest = {"runtime": "yaml", "plugins": {"providers": [provider]}, "variables": {"centos": invoke},
                    "outputs": {"imageId": "${centos.imageId}"}}
        programs[name] = Program(root, f"yaml-{name}", manifest, engine, env)
    return programs


def _os_releases() -> list[tuple[str, str]]:
    """(OS name pattern, image ID) of base x86_64 images of ``LOOKUPS`` distinct OS releases, as looked up here."""
    with Emulator() as emulator:
        settings = Settings(public_key=DEMO_PUBLIC_KEY, private_key=DEMO_PRIVATE_KEY, base_url=emulator.base_url,
                            region=REGION)
        names = sorted({str(image.get("OsName", "")) for image in emulator.images(REGION)
                        if image.get("ImageType") == "Base" and image.get("OsName")})
        found: list[tuple[str, str]] = []
        for name in names:
            pattern = f"^{re.escape(name)}$"
            try:
                result = lookup_images(region=REGION, image_type="base", os_name_regex=pattern,
                                       architecture="x86_64", most_recent=True, settings=settings)
            except NoImageFoundError:
                continue  # a release with no Available x86_64 image
            found.append((pattern, result.image_id))
    if len(found) < LOOKUPS:
        raise RuntimeError(f"the emulator's catalogue has {len(found)} base OS releases in {REGION}, not {LOOKUPS}")
    return found[:LOOKUPS]


def python_programs(root: Path, engine: Path, env: Mapping[str, str]) -> dict[str, Program]:
    releases = _os_releases()
    lookups = "\n".join([
        "import pulumi",
        "from pulumi_ucloud_images import get_images",
        f"for index, pattern in enumerate({[pattern for pattern, _ in releases]!r}):",
        f"    found = get_images(region={REGION!r}, image_type='base', os_name_regex=pattern, architecture='x86_64',",
        "                       most_recent=True)",
        "    pulumi.export(f'image{index}', found.image_id)",
        "",
    ])
    constants = "\n".join([
        "import pulumi",
        f"for index, image_id in enumerate({[image_id for _, image_id in releases]!r}):",
        "    pulumi.export(f'image{index}', image_id)",
        "",
    ])
    imports = "import requests, pydantic\n" + constants
    floor = "\n".join([
        "import requests, regex",
        "from pydantic import BaseModel, Field, SecretStr",
        "class Floor(BaseModel):  # what the core's models make pydantic load",
        "    image_id: str = Field(description='an image')",
        "    private_key: SecretStr | None = None",
        constants,
    ])
    runtime = {"name": "python", "options": {"toolchain": "pip", "virtualenv": str(VENV_BIN.parent)}}
    return {name: Program(root, f"python-{name}", {"runtime": runtime}, engine, env, files={"__main__.py": text})
            for name, text in (("lookups", lookups), ("constants", constants), ("imports", imports),
                               ("floor", floor))}


def preview_medians(programs: Mapping[str, Program], runs: int) -> dict[str, list[float]]:
    for program in programs.values():
        program.preview()  # unmeasured: the first preview also fills the YAML host's schema cache
    samples: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(runs):
        for name, program in programs.items():
            samples[name].append(program.preview())
    return samples


def _same_outputs(programs: Mapping[str, Program], first: str, second: str) -> None:
    """Both programs export the same values (the lookups found what was written out)."""
    shown = {name: programs[name].run("preview", "--diff") for name in (first, second)}
    ids = {name: sorted(re.findall(r"uimage-[a-z0-9]+", text)) for name, text in shown.items()}
    if ids[first] != ids[second] or not ids[first]:
        raise RuntimeError(f"the previews of {first} and {second} disagree: {ids}")


# -- report -----------------------------------------------------------------------------------------------


def _row(label: str, samples: list[float], unit: float = 1000.0, digits: int = 1) -> str:
    scaled = [sample * unit for sample in samples]
    return f"| {label} | {statistics.median(scaled):.{digits}f} | {min(scaled):.{digits}f} | {max(scaled):.{digits}f} |"


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10, help="plugin starts to time (default 10)")
    parser.add_argument("--preview-runs", type=int, default=5, help="previews per program (default 5)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="emulator latency per answer (default 0)")
    parser.add_argument("--smoke", action="store_true", help="everything once, to check that it runs (CI)")
    args = parser.parse_args(argv)
    runs, preview_runs = (1, 1) if args.smoke else (args.runs, args.preview_runs)
    compileall.compile_dir(Path(pulumi_ucloud_images.__file__).parent, quiet=1)
    engine_dir = os.environ.get("PULUMI_ENGINE_DIR", "")

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(args.latency_ms, child), daemon=True)
    server.start()
    base_url = parent.recv()
    targets: list[str] = []
    try:
        starts: list[dict[str, float]] = []
        bare: list[float] = []
        for _ in range(runs):
            bare.append(_time_command([sys.executable, "-c", "pass"]))
            starts.append(one_start(base_url))
        sdk = [_time_command([sys.executable, "-c", "import pulumi.provider.experimental.server"])
               for _ in range(max(1, runs // 3))]

        print(f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
              f"{os.cpu_count()} CPUs; {runs} plugin starts; emulator latency {args.latency_ms:g} ms per answer.\n")
        print("| step | median ms | min ms | max ms |")
        print("| --- | ---: | ---: | ---: |")
        for label in starts[0]:
            print(_row(label, [start[label] for start in starts]))
        print(_row("python -c pass", bare))
        print(_row("python -c 'import pulumi.provider.experimental.server' (for scale)", sdk))
        over = (statistics.median(s["first GetSchema"] for s in starts) - statistics.median(bare)) * 1000
        targets.append(f"- first GetSchema {over:.0f} ms after a bare `python -c pass` "
                       f"(target {SCHEMA_TARGET_MS:g} ms): {_verdict(over <= SCHEMA_TARGET_MS)}")

        if not engine_dir:
            print("\nPULUMI_ENGINE_DIR is not set: previews not measured. "
                  "Run with PULUMI_ENGINE_DIR=\"$(scripts/pulumi-engine)\" to measure them.")
        else:
            env = {**os.environ, "UCLOUD_API_BASE_URL": base_url, "UCLOUD_PUBLIC_KEY": DEMO_PUBLIC_KEY,
                   "UCLOUD_PRIVATE_KEY": DEMO_PRIVATE_KEY, "UCLOUD_REGION": REGION}
            with tempfile.TemporaryDirectory(prefix="plugin-startup-") as temp:
                root = Path(temp)
                yaml_set = yaml_programs(root, Path(engine_dir), env)
                python_set = python_programs(root, Path(engine_dir), env)
                _same_outputs(python_set, "lookups", "constants")
                yaml_times = preview_medians(yaml_set, preview_runs)
                python_times = preview_medians(python_set, preview_runs)
            print(f"\n`pulumi preview`, {preview_runs} runs each (after one unmeasured run):\n")
            print("| program | median s | min s | max s |")
            print("| --- | ---: | ---: | ---: |")
            for label, samples in (
                ("YAML, a constant", yaml_times["without"]),
                ("YAML, one getImages (plugin version declared: one start)", yaml_times["with"]),
                ("YAML, one getImages (no version: started twice)", yaml_times["unversioned"]),
                ("Python, 20 IDs written out", python_times["constants"]),
                ("Python, 20 IDs written out and `import requests, pydantic`", python_times["imports"]),
                ("Python, 20 IDs written out and requests, regex, a pydantic model (the floor)", python_times["floor"]),
                (f"Python, {LOOKUPS} get_images lookups", python_times["lookups"]),
            ):
                print(_row(label, samples, unit=1.0, digits=2))
            extra = statistics.median(yaml_times["with"]) - statistics.median(yaml_times["without"])
            targets.append(f"- YAML preview with one getImages {extra:.2f} s over the same program without it "
                           f"(target {YAML_TARGET_S:g} s): {_verdict(extra <= YAML_TARGET_S)}")
            constants = statistics.median(python_times["constants"])
            ratio, imports, floor = (statistics.median(python_times[name]) / constants
                                     for name in ("lookups", "imports", "floor"))
            targets.append(f"- Python preview with {LOOKUPS} lookups {ratio:.2f}x the one with IDs written out "
                           f"(target {PYTHON_TARGET_RATIO:g}x): {_verdict(ratio <= PYTHON_TARGET_RATIO)}; "
                           f"`import requests, pydantic` alone is {imports:.2f}x, the core's dependencies loaded "
                           f"as it uses them (the floor) {floor:.2f}x")
    finally:
        parent.send("stop")
        server.join(timeout=10)

    print("\nTargets (medians of this run" + (", one sample each: --smoke proves only that it runs" if args.smoke
                                              else "") + "):\n")
    print("\n".join(targets))
    return 0


if __name__ == "__main__":
    sys.exit(main())
