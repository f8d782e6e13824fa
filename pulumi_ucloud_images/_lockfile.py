"""``ucloud-images.lock.json``, the lockfile: golden-image pins that change only through a reviewed commit.

``ucloud-images lock`` resolves the selections of ``ucloud-images.toml`` (:mod:`._selection_file`) and
writes one :class:`Pin` per selection here; programs read a pin without calling the API. The file is a
pydantic model (:class:`Lockfile`) whose first problem becomes one sentence naming the file, the selection
and the field. The building blocks both files share are here too. Writing it (atomically, under a file
lock) is :mod:`._lockfile_write`.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from ._display import json_for_people
from ._display import shown as server_text
from ._errors import LockfileError
from ._files import FileProblem, read_small_file
from ._image import Image
from ._query import ImageQuery, invalid_query_error
from ._select import LookupResult

__all__ = [
    "DEFAULT_LOCKFILE",
    "DEFAULT_SELECTION_FILE",
    "FILE_LIMIT",
    "IN_FILE",
    "LOCKFILE_VERSION",
    "NAME_RULE",
    "FileModel",
    "Lockfile",
    "NonEmptyText",
    "Pin",
    "Selection",
    "SelectionName",
    "find_lockfile",
    "lockfile_text",
    "read_lockfile",
    "read_text",
    "utc_iso",
    "value_text",
]

DEFAULT_SELECTION_FILE = "ucloud-images.toml"
DEFAULT_LOCKFILE = "ucloud-images.lock.json"
LOCKFILE_VERSION = 1
# Far beyond any real file (a pin is a few hundred bytes), and small enough to read and parse at once.
FILE_LIMIT = 4 * 1024 * 1024
NAME_RULE = "letters, digits, '_', '.' and '-', starting with a letter or digit"
# Validation context for a pin read from the lockfile: its times are ISO-8601 text there, Unix seconds in code.
IN_FILE = {"in_file": True}

_SELECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_brief = reprlib.Repr()
_brief.maxlevel, _brief.maxstring, _brief.maxother, _brief.maxlist, _brief.maxdict = 3, 40, 40, 4, 4


def read_text(path: Path, what: str, missing: str) -> str:
    """The text of a selection file or lockfile: a regular file, at most FILE_LIMIT bytes, UTF-8.

    ``what`` names the file in messages (``The lockfile x.json``); ``missing`` is the sentence for no file.
    """
    try:
        data = read_small_file(path, FILE_LIMIT)
    except FileProblem as problem:
        if problem.missing:
            raise LockfileError(missing) from None
        raise LockfileError(f"{what} cannot be read: {problem.reason}.") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LockfileError(f"{what} is not UTF-8 text (byte {exc.start}).") from None


# -- what the models validate with ------------------------------------------------------------------------


def _selection_name(name: str) -> str:
    if not _SELECTION_NAME.fullmatch(name):
        raise ValueError(f"use {NAME_RULE}")
    return name


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def _clause(sentence: str) -> str:
    """``'Unknown filter x.'`` -> ``'unknown filter x'``, to embed one sentence in another."""
    sentence = sentence.rstrip(".")
    return sentence[:1].lower() + sentence[1:]


def _as_query(value: Any) -> Any:
    """A table of filters -> :class:`ImageQuery`; its first problem is kept as one clause (``invalid_query``)."""
    if isinstance(value, ImageQuery):
        return value
    if not isinstance(value, dict):
        raise ValueError("not a table")
    try:
        return ImageQuery.model_validate(value)
    except ValidationError as exc:
        reason = _clause(str(invalid_query_error(exc)))
    raise PydanticCustomError("invalid_query", "{reason}", {"reason": reason})


def utc_iso(seconds: int) -> str:
    """``2026-03-14T09:30:00Z``: a time as the lockfile writes it."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _seconds(text: Any) -> int | None:
    """Unix seconds of an ISO-8601 time with a zone (``...Z`` included); ``None`` for anything else."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return None if value.tzinfo is None else int(value.timestamp())


SelectionName = Annotated[str, AfterValidator(_selection_name)]
NonEmptyText = Annotated[str, AfterValidator(_non_empty)]
Selection = Annotated[ImageQuery, BeforeValidator(_as_query)]


def value_text(value: Any) -> str:
    """``str 'ubuntu'``: a value's type and the start of it, for "found ..." and "not ..."."""
    return f"{type(value).__name__} {_brief.repr(value)}"


class FileModel(BaseModel):
    """A table of a file: exact types, and an unknown key reported before any field (as people read it)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")
    # What a value in this place must be, for "expected ..., found ..." (the fields say it in ``description``).
    EXPECTED: ClassVar[str] = "an object"

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = {field.alias or name for name, field in cls.model_fields.items()}
            for key in data:
                if key not in known:
                    raise PydanticCustomError("unknown_key", "unknown key {key}", {"key": str(key)})
        return data


# -- the lockfile ------------------------------------------------------------------------------------------


class Pin(FileModel):
    """One locked selection: the query it answers, where, and the image it resolved to.

    Read from the lockfile (``context=IN_FILE``) the times are checked as the file writes them, ISO-8601 with
    a zone (``create_time`` ``null`` when the API gave none); built in code, ``create_time`` is Unix seconds
    (0: unknown). Fields are in the order their problems are reported.
    """

    query: Selection = Field(description="an object of filters")
    create_time: int = Field(description="a UTC ISO-8601 time or null")
    locked_at: str = Field(description="a UTC ISO-8601 time")
    image_id: NonEmptyText = Field(description="a non-empty image ID")
    region: NonEmptyText = Field(description="a non-empty region")
    image_name: str = Field(description="the image name")

    @field_validator("create_time", mode="before")
    @classmethod
    def _created(cls, value: Any, info: ValidationInfo) -> Any:
        if not _in_file(info):
            return value
        seconds = 0 if value is None else _seconds(value)
        if seconds is None:
            raise ValueError("not a UTC ISO-8601 time")
        return seconds

    @field_validator("locked_at")
    @classmethod
    def _locked(cls, value: str, info: ValidationInfo) -> str:
        if _in_file(info) and _seconds(value) is None:
            raise ValueError("not a UTC ISO-8601 time")
        return value

    @field_serializer("create_time")
    def _created_text(self, seconds: int) -> str | None:
        return utc_iso(seconds) if seconds else None

    @field_serializer("query")
    def _query_args(self, query: ImageQuery) -> dict[str, Any]:
        return query.to_args()

    @classmethod
    def of(cls, result: LookupResult, query: ImageQuery, locked_at: str) -> Pin:
        image = result.image
        return cls(
            query=query,
            region=result.region,
            image_id=image.image_id,
            image_name=image.image_name,
            create_time=image.create_time,
            locked_at=locked_at,
        )

    def to_json(self) -> dict[str, Any]:
        """The lockfile entry: the query as ``to_args()``, times as ISO-8601 text, keys sorted."""
        return dict(sorted(self.model_dump(mode="json").items()))

    def image(self) -> Image:
        return Image.model_validate(
            {"ImageId": self.image_id, "ImageName": self.image_name, "CreateTime": self.create_time}
        )

    def answers(self, query: ImageQuery, region: str | None) -> bool:
        return self.query == query and region == self.region

    def same_as(self, other: Pin) -> bool:
        """The same image for the same query and region (``locked_at`` aside)."""
        return self.image_id == other.image_id and self.answers(other.query, other.region)

    def differences(self, query: ImageQuery, region: str | None) -> list[tuple[str, Any, Any]]:
        """``(field, value in code, value in the lock)`` for each field that differs.

        ``region`` is compared with the region the pin was resolved in, and only when one is given: a
        selection's region may come from ``[settings]`` or the environment rather than from the query.
        """
        code, locked = _shown(query), _shown(self.query)
        found = [(name, code[name], locked[name]) for name in code if name != "region" and code[name] != locked[name]]
        if region is not None and region != self.region:
            found.insert(0, ("region", region, self.region))
        return found

    def describe(self) -> str:
        created = utc_iso(self.create_time) if self.create_time else "an unknown time"
        return f"{server_text(self.image_id, 80)} {server_text(self.image_name.strip(), 80)!r} created {created}"


def _in_file(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("in_file"))


def _shown(query: ImageQuery) -> dict[str, Any]:
    """Every field, with lists as lists (as the selection file writes them), for comparing and showing."""
    return {name: list(value) if isinstance(value, tuple) else value for name, value in query.model_dump().items()}


class Lockfile(FileModel):
    """``ucloud-images.lock.json``: the format version and one pin per selection."""

    EXPECTED: ClassVar[str] = "an object with 'version' and 'selections'"

    version: int = Field(description=f"the format version {LOCKFILE_VERSION}")
    selections: dict[SelectionName, Pin] = Field(description="an object of selections")

    @field_validator("version")
    @classmethod
    def _readable(cls, version: int) -> int:
        if version != LOCKFILE_VERSION:
            raise PydanticCustomError("lockfile_version", "format version {version}", {"version": version})
        return version


def read_lockfile(path: Path) -> dict[str, Pin]:
    """Parse and validate a lockfile; every problem is one sentence naming the file and the key or line."""
    text = read_text(
        path, f"The lockfile {path}", f"The lockfile {path} does not exist; run 'ucloud-images lock' to create it."
    )
    data = _json_document(text, path)
    try:
        return dict(Lockfile.model_validate(data, context=IN_FILE).selections)
    except ValidationError as exc:
        problem = _lockfile_problem(path, exc.errors()[0])
    raise LockfileError(problem)


def _json_document(text: str, path: Path) -> Any:
    """The JSON of a lockfile, refusing a key twice in one object (JSON parsers would keep the last)."""

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise LockfileError(
                    f"The lockfile {path} has the key {key!r} twice in one object (a merge left both sides?); "
                    "keep one and run 'ucloud-images lock --verify'."
                )
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as exc:
        raise LockfileError(
            f"The lockfile {path} is not valid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); fix it, "
            "or delete it and run 'ucloud-images lock'."
        ) from None
    except RecursionError:
        raise LockfileError(
            f"The lockfile {path} nests arrays or objects too deeply to be a lockfile; fix it, or delete it and run "
            "'ucloud-images lock'."
        ) from None


def _lockfile_problem(path: Path, error: ErrorDetails) -> str:
    """The sentence for the first problem pydantic found in a lockfile: where, what was expected, what was there."""
    loc, kind, ctx = tuple(str(part) for part in error["loc"]), error["type"], error.get("ctx") or {}
    if kind == "lockfile_version":
        return (
            f"The lockfile {path} has format version {ctx['version']}, which this ucloud-images does not read; "
            f"expected {LOCKFILE_VERSION}."
        )
    model: type[FileModel] = Lockfile if len(loc) < 2 else Pin
    if kind == "unknown_key":
        at = ".".join((*loc, str(ctx["key"])))
        keys = ", ".join(sorted(model.model_fields))
        return f"The lockfile {path} is malformed at {at}: expected only the keys {keys}."
    at = ".".join(part for part in loc if part != "[key]") or "the top level"
    if kind == "invalid_query":
        return f"The lockfile {path} is malformed at {at}: {ctx['reason']}."
    if loc and loc[-1] == "[key]":
        expected = f"a selection name of {NAME_RULE}"
    elif len(loc) in (1, 3):
        expected = str(model.model_fields[loc[-1]].description)
    else:
        expected = model.EXPECTED
    found = "nothing" if kind == "missing" else value_text(error.get("input"))
    return f"The lockfile {path} is malformed at {at}: expected {expected}, found {found}."


def lockfile_text(pins: Mapping[str, Pin]) -> str:
    """The lockfile as written: indented, keys sorted, non-ASCII names kept readable, one final newline.

    Characters an editor or a diff would act on (control and bidirectional characters in an image name)
    are written as ``\\u`` escapes, so a reviewed diff shows what the file holds.
    """
    document = {"selections": {name: pin.to_json() for name, pin in pins.items()}, "version": LOCKFILE_VERSION}
    return json_for_people(document, indent=2, sort_keys=True) + "\n"


def find_lockfile(start: Path | None = None) -> Path:
    """The nearest ``ucloud-images.lock.json`` in ``start`` (default: the working directory) or a parent."""
    start = (start or Path.cwd()).resolve()
    for directory in (start, *start.parents):
        candidate = directory / DEFAULT_LOCKFILE
        if candidate.is_file():
            return candidate
    raise LockfileError(
        f"No {DEFAULT_LOCKFILE} was found in the working directory or any parent; run 'ucloud-images lock' "
        f"next to {DEFAULT_SELECTION_FILE}, or pass its path."
    )
