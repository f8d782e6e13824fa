"""Fixtures of the engine tier: the engine from ``scripts/pulumi-engine``, an emulator and its settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from engine_project import ENGINE_BINARIES

from pulumi_ucloud_images._emulator import Emulator


@pytest.fixture(scope="session")
def engine_dir() -> Path:
    given = os.environ.get("PULUMI_ENGINE_DIR", "")
    missing = [name for name in ENGINE_BINARIES if not given or not os.access(Path(given, name), os.X_OK)]
    if missing:
        why = (f"the engine tests need PULUMI_ENGINE_DIR=$(scripts/pulumi-engine) "
               f"(missing: {', '.join(missing)}{' in ' + given if given else ''})")
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return Path(given)


@pytest.fixture
def emulator(ucloud_emulator_env: Emulator) -> Emulator:
    """The emulator, with the UCLOUD_* settings pointing at it (region cn-bj2) in this process too."""
    return ucloud_emulator_env


@pytest.fixture
def emulator_env(emulator: Emulator) -> dict[str, str]:
    """The environment for pulumi commands: this process's, with the emulator's UCLOUD_* settings."""
    return dict(os.environ)
