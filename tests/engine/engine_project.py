"""The engine tier's helpers: real ``pulumi`` commands on throw-away projects with a file backend.

The engine comes from ``scripts/pulumi-engine``, which prints the directory of the binaries; point
``PULUMI_ENGINE_DIR`` at it (``.ci/run`` does). Without it these tests skip, except under ``CI=true``, where a
missing engine fails the run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ENGINE_BINARIES = ("pulumi", "pulumi-language-python", "pulumi-language-python-exec",
                   "pulumi-resource-pulumi-python", "pulumi-language-yaml", "pulumi-sdkgen")
PASSPHRASE = "engine-tests"
# The venv the tests run in has the package installed; programs and plugins run in it too.
VENV = Path(sys.prefix)
VENV_BIN = Path(sys.executable).parent
# HOME as it was before the test fixtures isolate it: Go's and npm's caches live there, and are kept between runs.
TOOL_HOME = os.environ.get("HOME", "")


class Project:
    """One Pulumi project in a temp dir, with its own PULUMI_HOME and file backend, and one stack ``dev``."""

    def __init__(self, directory: Path, engine: Path, env: Mapping[str, str]) -> None:
        self.dir = directory
        self.engine = engine
        self.state = directory.parent / "state"
        self.home = directory.parent / "pulumi-home"
        self.state.mkdir(exist_ok=True)
        self.home.mkdir(exist_ok=True)
        path = os.pathsep.join([str(engine), str(VENV_BIN), os.environ.get("PATH", "")])
        self.env = {
            **env,
            "PATH": path,
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": f"file://{self.state}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "1",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "1",
            "PULUMI_DISABLE_REGISTRY_RESOLVE": "1",
            "PULUMI_SKIP_CONFIRMATIONS": "1",
            "NO_COLOR": "1",
        }

    def run(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.engine / "pulumi"), *args, "--non-interactive"], cwd=self.dir, env=self.env,
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def config(self, key: str, value: str, *, secret: bool = False) -> None:
        self.run("config", "set", *(["--secret"] if secret else ["--plaintext"]), key, value)

    def manifest_update(self, changes: Mapping[str, Any]) -> None:
        """Merge ``changes`` into Pulumi.yaml (top-level keys replaced): a YAML program's edit."""
        path = self.dir / "Pulumi.yaml"
        manifest = yaml.safe_load(path.read_text(encoding="utf-8"))
        manifest.update(changes)
        path.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")

    def outputs(self) -> dict[str, Any]:
        return dict(json.loads(self.run("stack", "output", "--json", "--show-secrets").stdout))

    def preview(self) -> dict[str, Any]:
        """``pulumi preview --json``: the steps and the change summary."""
        return dict(json.loads(self.run("preview", "--json", "--show-sames").stdout))

    def export(self) -> dict[str, Any]:
        return dict(json.loads(self.run("stack", "export").stdout))

    def resources(self) -> dict[str, dict[str, Any]]:
        """The stack's resources by name, from ``pulumi stack export``."""
        deployment = self.export()["deployment"]
        return {r["urn"].rsplit("::", 1)[1]: r for r in deployment.get("resources", [])}


def python_runtime() -> dict[str, Any]:
    """The runtime section of a Python project's Pulumi.yaml: pip, in the venv that runs the tests."""
    return {"name": "python", "options": {"toolchain": "pip", "virtualenv": str(VENV)}}


def new_project(
    tmp_path: Path, engine: Path, env: Mapping[str, str], *, manifest: Mapping[str, Any],
    files: Mapping[str, str] | None = None, source: Path | None = None,
) -> Project:
    """Write a project (a copy of ``source``, if given, with ``manifest`` merged into its Pulumi.yaml and
    ``files`` added), make its stack ``dev`` and return it."""
    directory = tmp_path / "project"
    merged: dict[str, Any] = {}
    if source is not None:
        shutil.copytree(source, directory, ignore=shutil.ignore_patterns("venv", "__pycache__"))
        merged = yaml.safe_load((source / "Pulumi.yaml").read_text(encoding="utf-8"))
    directory.mkdir(exist_ok=True)
    merged.update(manifest)
    (directory / "Pulumi.yaml").write_text(yaml.safe_dump(merged, sort_keys=False), encoding="utf-8")
    for relative, text in (files or {}).items():
        (directory / relative).write_text(text, encoding="utf-8")
    project = Project(directory, engine, env)
    project.run("stack", "init", "dev")
    return project
