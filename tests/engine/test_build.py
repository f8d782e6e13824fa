"""scripts/pulumi-engine: one line on stdout, the directory of the binaries; a second run reuses the build."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.engine.engine_project import ENGINE_BINARIES, ROOT, TOOL_HOME

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def test_the_build_script_prints_only_the_engine_directory_and_reuses_it(engine_dir: Path) -> None:
    done = subprocess.run([str(ROOT / "scripts" / "pulumi-engine")], capture_output=True, text=True, timeout=1800,
                          check=True, env={**os.environ, "HOME": TOOL_HOME})
    assert done.stdout.splitlines() == [str(engine_dir)]
    assert "reusing" in done.stderr  # the build .ci/run made is found again, not redone
    assert all(os.access(engine_dir / name, os.X_OK) for name in ENGINE_BINARIES)
    version = subprocess.run([str(engine_dir / "pulumi"), "version"], capture_output=True, text=True, check=True)
    pinned = next(line.split()[1] for line in (ROOT / "tools" / "pulumi-engine" / "go.mod").read_text().splitlines()
                  if line.strip().startswith("github.com/pulumi/pulumi/pkg/v3 "))
    assert version.stdout.strip() == pinned


def test_the_build_script_removes_builds_unused_for_a_week(engine_dir: Path) -> None:
    stale, recent = engine_dir.parent / "v0.0.0-stale-build", engine_dir.parent / "v0.0.0-recent-build"
    for build in (stale, recent):
        build.mkdir(exist_ok=True)
    week_and_a_day = 8 * 86400
    os.utime(stale, (os.path.getatime(stale) - week_and_a_day, os.path.getmtime(stale) - week_and_a_day))
    try:
        subprocess.run([str(ROOT / "scripts" / "pulumi-engine")], capture_output=True, text=True, timeout=1800,
                       check=True, env={**os.environ, "HOME": TOOL_HOME})
        assert not stale.exists() and recent.is_dir() and engine_dir.is_dir()
    finally:
        for build in (stale, recent):
            if build.exists():
                build.rmdir()
