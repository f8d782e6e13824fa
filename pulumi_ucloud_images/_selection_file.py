"""``ucloud-images.toml``, the selection file: the queries to pin, by name, and where settings come from.

Parsed with ``tomllib`` (``tomli`` on Python 3.10) and validated by the models below; the first problem is
one sentence naming the file, the table and the key. The pins it resolves to are :mod:`._lockfile`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pydantic import Field, PrivateAttr, ValidationError
from pydantic_core import ErrorDetails

from ._errors import LockfileError
from ._lockfile import (
    DEFAULT_SELECTION_FILE,
    NAME_RULE,
    FileModel,
    NonEmptyText,
    Selection,
    SelectionName,
    read_text,
    value_text,
)
from ._settings import SETTINGS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["FileSettings", "SelectionFile", "read_selections"]

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
    try:
        declared = SelectionFile.model_validate(data)
    except ValidationError as exc:
        problem = _selection_problem(path, exc.errors()[0])
    else:
        declared._path = path
        return declared
    # Raised here, outside the handler, so the error keeps no reference to the file's values (a key among them).
    raise LockfileError(problem)


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
