"""The plugin benchmark keeps running: ``--smoke`` measures everything once and fails on any error.

Without the engine here (CI runs the script with it, in ``.ci/run``), so it takes seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_plugin_startup_benchmark_runs() -> None:
    env = {key: value for key, value in os.environ.items() if key != "PULUMI_ENGINE_DIR"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "plugin_startup.py"), "--smoke"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "| first GetSchema |" in done.stdout
    assert "PULUMI_ENGINE_DIR is not set: previews not measured" in done.stdout
    assert "- first GetSchema" in done.stdout
