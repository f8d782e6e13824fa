"""Every test starts from a clean slate: no UCLOUD_* variables, an empty HOME, no shared clients or memo.

Emulators: ``emulator`` is one server for the whole run (the bundled catalogue, the demo keys) with an empty
request log and no faults for each test; ``start_emulator`` starts one of the test's own (its own catalogue,
keys, limits or random faults, or a catalogue the test changes), stopped after the test.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from pulumi_ucloud_images import _query
from pulumi_ucloud_images._api.client import reset_shared_clients
from pulumi_ucloud_images._emulator.service import Emulator

# The date lookups compare end-of-life dates with, in this process: fixed, so that no test changes its answer
# on the day an image of the catalogue reaches its end of life (Ubuntu 22.04: 2027/04/30). Subprocesses use
# the real date.
TODAY = date(2026, 12, 1)

# Locally, property tests explore new examples on every run; in CI they replay a fixed sequence, so a landing
# never depends on luck (a failure found locally is kept in .hypothesis/ and replayed first).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("UCLOUD_") or name.startswith("PULUMI_CONFIG"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(_query, "utc_today", lambda: TODAY)
    reset_shared_clients()
    yield home
    reset_shared_clients()


@pytest.fixture(autouse=True)
def _subprocesses_only_in_slow_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that starts a process must be marked ``slow`` (``-m "not slow"`` is then a fast, in-process run)."""
    if request.node.get_closest_marker("slow") is not None:
        return

    def refuse(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a subprocess; mark it @pytest.mark.slow")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[Emulator]:
    """The run's one default emulator; tests take it through ``emulator``, which resets it for them."""
    with Emulator() as server:
        yield server


@pytest.fixture
def emulator(shared_emulator: Emulator) -> Iterator[Emulator]:
    """The shared emulator with an empty request log, no injected faults and no latency (left so after the test).

    A test may inject faults and set ``latency_ms``; one that changes the catalogue (``publish``, ``remove``,
    ``set_state``, an injected ``publish``) uses ``start_emulator`` instead.
    """
    shared_emulator.reset_requests()
    shared_emulator.clear_faults()
    shared_emulator.latency_ms = 0
    yield shared_emulator
    shared_emulator.clear_faults()
    shared_emulator.latency_ms = 0


@pytest.fixture
def start_emulator() -> Iterator[Callable[[Emulator], Emulator]]:
    """Start the test's own emulator, as ``start_emulator(Emulator(catalog, max_limit=7))``; stopped after the test."""
    started: list[Emulator] = []

    def start(emulator: Emulator) -> Emulator:
        started.append(emulator.start())
        return emulator

    yield start
    for emulator in reversed(started):
        emulator.stop()
