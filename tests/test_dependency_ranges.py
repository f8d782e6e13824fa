"""Every dependency's range is tested at its lower end: CI's lowest tier pins exactly those releases."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def _lower_bounds() -> dict[str, str]:
    """Each core dependency (the ones every Python installs) with the lowest release its range allows."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    bounds: dict[str, str] = {}
    for requirement in project["dependencies"]:
        if ";" in requirement:
            continue  # tomli: Python 3.10 only, where CI does not run
        found = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)(?:,<[0-9.]+)?", requirement)
        assert found, f"{requirement!r} has no lower bound CI could pin"
        bounds[found.group(1).lower()] = found.group(2)
    return bounds


def _ci_lowest() -> dict[str, str]:
    found = re.search(r"^LOWEST=\((.*)\)$", (ROOT / ".ci" / "run").read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert found, ".ci/run has no LOWEST=(...) line"
    return dict(pin.split("==") for pin in found.group(1).split())


def _release(version: str) -> tuple[int, ...]:
    """A version as numbers, padded to three (3.200 is 3.200.0)."""
    parts = tuple(int(part) for part in version.split("."))
    return parts + (0,) * (3 - len(parts))


def test_ci_pins_the_lowest_release_of_every_range() -> None:
    bounds, pins = _lower_bounds(), _ci_lowest()
    assert set(pins) == set(bounds)
    for name, bound in bounds.items():
        assert _release(pins[name]) == _release(bound), f"{name}: CI pins {pins[name]}, its range starts at {bound}"
