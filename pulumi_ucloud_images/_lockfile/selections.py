"""``ucloud-images.toml``, the selection file: the queries to pin, by name, and where settings come from.

Parsed with ``tomllib`` (``tomli`` on Python 3.10) and validated by the models below; the first problem is
one sentence naming the file, the table and the key. The pins it resolves to are
:mod:`~pulumi_ucloud_images._lockfile.lockfile`.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError
from pydantic_core import ErrorDetails

from .._errors import LockfileError
from .._settings.settings import SETTINGS
from .lockfile import (
    DEFAULT_SELECTION_FILE,
    LATEST,
    NAME_RULE,
    FileModel,
    NonEmptyText,
    Selection,
    SelectionName,
    read_text,
    value_text,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["GOVERNANCE_KEYS", "FileSettings", "SelectionFile", "read_selections"]

# Keys of a [selections.NAME] table that are not filters: where the pin is kept, not what it matches.
GOVERNANCE_KEYS = ("channels", "regions")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SECRET_SETTINGS = tuple(name for name, setting in SETTINGS.items() if setting.credential)


class FileSettings(FileModel):
    """``[settings]`` of the selection file: where to look, never keys (a committed file must not hold them)."""

    region: NonEmptyText | None = None
    profile: NonEmptyText | None = None
    base_url: NonEmptyText | None = None

    def given(self) -> dict[str, str]:
        """The settings the file sets, by name."""
        return {name: value for name, value in self.model_dump().items() if value is not None}


class SelectionFile(FileModel):
    """``ucloud-images.toml``: its ``[settings]`` and its selections' queries, in file order."""

    settings: FileSettings = FileSettings()
    queries: dict[SelectionName, Selection] = Field(alias="selections", min_length=1)
    _path: Path = PrivateAttr(default=Path(DEFAULT_SELECTION_FILE))
    _channels: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)
    _regions: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)

    def channels(self, name: str) -> tuple[str, ...]:
        """The channels selection ``name`` declares (``channels = [...]``), besides its own pin ``latest``."""
        return self._channels.get(name, ())

    def regions(self, name: str) -> tuple[str, ...]:
        """The regions selection ``name`` declares (``regions = [...]``); empty: the one region of its query
        or the settings."""
        return self._regions.get(name, ())

    @property
    def path(self) -> Path:
        """The file it was read from (messages name it as given)."""
        return self._path


def read_selections(path: str | os.PathLike[str]) -> SelectionFile:
    """Parse and validate a selection file; every problem is one sentence naming the file and the key."""
    path = Path(path)
    text = read_text(
        path,
        f"The selection file {path}",
        f"The selection file {path} does not exist; create it with one [selections.NAME] table of filters per "
        "image.",
    )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        last_line = f"(at the end of the document, line {len(text.splitlines())})"
        reason = str(exc).replace("(at end of document)", last_line)
        raise LockfileError(f"The selection file {path} is not valid TOML: {reason}.") from None
    except RecursionError:
        raise LockfileError(
            f"The selection file {path} nests arrays or tables too deeply to be a selection file."
        ) from None
    governance = _governance(path, data)
    try:
        declared = SelectionFile.model_validate(data)
    except ValidationError as exc:
        problem = _selection_problem(path, exc.errors()[0])
    else:
        declared._path = path
        declared._channels = {name: found[0] for name, found in governance.items() if found[0]}
        declared._regions = {name: found[1] for name, found in governance.items() if found[1]}
        return declared
    # Raised here, outside the handler, so the error keeps no reference to the file's values (a key among them).
    raise LockfileError(problem)


def _names(path: Path, name: str, key: str, value: Any, rule: str, check: Any) -> tuple[str, ...]:
    where = f"In the selection file {path}, [selections.{name}] {key}"
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and check(item) for item in value):
        raise LockfileError(f"{where} must be a non-empty list of {rule}, not {value_text(value)}.")
    if len(set(value)) != len(value):
        raise LockfileError(f"{where} names one entry twice.")
    return tuple(value)


def _governance(path: Path, data: Any) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Take ``channels`` and ``regions`` out of each selection table (they are not filters) and check them."""
    found: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    selections = data.get("selections") if isinstance(data, dict) else None
    if not isinstance(selections, dict):
        return found
    for name, table in selections.items():
        if not isinstance(table, dict) or not any(key in table for key in GOVERNANCE_KEYS):
            continue
        channels: tuple[str, ...] = ()
        regions: tuple[str, ...] = ()
        if "channels" in table:
            channels = _names(path, name, "channels", table.pop("channels"), f"channel names of {NAME_RULE}",
                              _NAME.fullmatch)
            if LATEST in channels:
                raise LockfileError(
                    f"In the selection file {path}, [selections.{name}] channels must not name {LATEST!r}: it is "
                    "the selection's own pin, which 'ucloud-images lock' writes."
                )
        if "regions" in table:
            regions = _names(path, name, "regions", table.pop("regions"), "non-empty region names",
                             lambda item: bool(item.strip()))
            if "region" in table:
                raise LockfileError(
                    f"In the selection file {path}, [selections.{name}] sets both region and regions; keep one."
                )
        found[name] = (channels, regions)
    return found


def _selection_problem(path: Path, error: ErrorDetails) -> str:
    """The sentence for the first problem pydantic found in a selection file."""
    where = f"the selection file {path}"
    loc, kind, value = tuple(error["loc"]), error["type"], error.get("input")
    if kind == "unknown_key":
        key = str((error.get("ctx") or {})["key"])
        if not loc:
            return (
                f"In {where}, the top-level key {key!r} is unknown; expected [settings] and [selections.NAME] tables."
            )
        if key in _SECRET_SETTINGS:
            return (
                f"In {where}, [settings] must not hold {key}: keys never belong in a committed file, so use "
                f"UCLOUD_{key.upper()}, a ~/.ucloud profile or the --{key.replace('_', '-')} flag."
            )
        keys = ", ".join(FileSettings.model_fields)
        return f"In {where}, [settings] has the unknown key {key!r}; the keys are {keys}."
    if loc == ("selections",) and kind == "missing":
        return f"The selection file {path} has no [selections.NAME] table; add one per image."
    if loc == ("selections",) and kind == "too_short":
        return f"The selection file {path} declares no selections; add a [selections.NAME] table."
    if len(loc) == 1:
        return f"In {where}, [{loc[0]}] must be a table, not {value_text(value)}."
    if loc[0] == "settings":
        return f"In {where}, [settings] {loc[1]} must be a non-empty string, not {value!r}."
    name = str(loc[1])
    if loc[-1] == "[key]":
        return f"In {where}, the selection name {name!r} is not allowed; use {NAME_RULE}."
    if kind == "invalid_query":
        return f"In {where}, [selections.{name}]: {(error.get('ctx') or {})['reason']}."
    return f"In {where}, [selections.{name}] must be a table, not {value_text(value)}."
