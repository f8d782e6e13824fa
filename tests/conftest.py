"""Every test starts from a clean slate: no UCLOUD_* variables, an empty HOME, no shared clients or memo."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pulumi_ucloud_images._client import reset_shared_clients


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("UCLOUD_") or name.startswith("PULUMI_CONFIG"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    reset_shared_clients()
    yield home
    reset_shared_clients()
