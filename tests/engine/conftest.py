"""Fixtures of the engine tier: the engine from ``scripts/pulumi-engine``, an emulator and its settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pulumi_ucloud_images._emulator.service import Emulator
from tests.engine.engine_project import ENGINE_BINARIES


def _engine_problem() -> str | None:
    """Why the engine cannot be used, or None: it is PULUMI_ENGINE_DIR, as ``scripts/pulumi-engine`` prints it."""
    given = os.environ.get("PULUMI_ENGINE_DIR", "")
    if not given:
        return "PULUMI_ENGINE_DIR is not set"
    missing = [name for name in ENGINE_BINARIES if not os.access(Path(given, name), os.X_OK)]
    return f"{given} lacks {', '.join(missing)}" if missing else None


_SKIPPED: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside CI, without an engine, the engine tier is left out and says so in one line."""
    problem = _engine_problem()
    if problem is None or os.environ.get("CI") == "true":
        return  # under CI the engine_dir fixture fails each test instead
    left_out = [item for item in items if item.get_closest_marker("engine")]
    if left_out:
        items[:] = [item for item in items if not item.get_closest_marker("engine")]
        config.hook.pytest_deselected(items=left_out)
        _SKIPPED.append(f"engine tier: {len(left_out)} tests left out; run them with "
                        f"PULUMI_ENGINE_DIR=\"$(scripts/pulumi-engine)\" ({problem})")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _SKIPPED:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def engine_dir() -> Path:
    """The directory of the engine's binaries; under ``CI=true`` a missing engine fails the test."""
    problem = _engine_problem()
    if problem is not None:
        pytest.fail(f"the engine tier needs PULUMI_ENGINE_DIR=\"$(scripts/pulumi-engine)\" ({problem})")
    return Path(os.environ["PULUMI_ENGINE_DIR"])


@pytest.fixture
def emulator(ucloud_emulator_env: Emulator) -> Emulator:
    """The emulator, with the UCLOUD_* settings pointing at it (region cn-bj2) in this process too."""
    return ucloud_emulator_env


@pytest.fixture
def emulator_env(emulator: Emulator) -> dict[str, str]:
    """The environment for pulumi commands: this process's, with the emulator's UCLOUD_* settings."""
    return dict(os.environ)
