"""The ``ucloud_images`` pytest plugin: registered by the distribution, free until a fixture is used."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

from pulumi_ucloud_images import testing
from pulumi_ucloud_images._emulator import fixtures

PLUGIN = "pulumi_ucloud_images._emulator.fixtures"


def test_the_distribution_registers_the_plugin() -> None:
    plugins = {entry.name: entry.value for entry in importlib.metadata.entry_points(group="pytest11")}
    assert plugins.get("ucloud_images") == PLUGIN


@pytest.mark.slow
def test_loading_the_plugin_imports_nothing_a_test_did_not_ask_for() -> None:
    """Every pytest run of a project with the package installed loads the plugin: it must cost that run nothing."""
    code = (f"import sys, {PLUGIN}; "
            "print([m for m in ('pydantic', 'requests', 'pulumi', 'pulumi_ucloud_images._emulator.service') "
            "if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_the_public_fixtures_are_the_plugins(ucloud_emulator_env: testing.Emulator) -> None:
    assert testing.ucloud_emulator is fixtures.ucloud_emulator
    assert testing.ucloud_emulator_env is fixtures.ucloud_emulator_env
    assert ucloud_emulator_env.base_url.startswith("http://127.0.0.1:")
