"""``ucloud-images.lock.json``, the lockfile: golden-image pins that change only through a reviewed commit.

One file format, whose models, format-1 migration, offline reads and error wording are read
and changed together.

``ucloud-images lock`` resolves the selections of ``ucloud-images.toml``
(:mod:`~pulumi_ucloud_images._lockfile.selections`) and
writes one :class:`Pin` per selection here; programs read a pin without calling the API. The file is a
pydantic model (:class:`Lockfile`) whose first problem becomes one sentence naming the file, the selection
and the field. The building blocks both files share are here too. Writing it (atomically, under a file
lock) is :mod:`~pulumi_ucloud_images._lockfile.writer`.
"""

from __future__ import annotations

import json
import os
import re
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from .._api.image import Image
from .._display import json_for_people
from .._display import shown as server_text
from .._errors import LockfileError
from .._files import FileProblem, read_small_file
from .._query import ImageQuery, invalid_query_error
from .._select import LookupResult
from .defaults import DEFAULT_LOCKFILE, DEFAULT_SELECTION_FILE, LATEST, LOCKFILE_VERSION

__all__ = [
    "DEFAULT_LOCKFILE",
    "DEFAULT_SELECTION_FILE",
    "FILE_LIMIT",
    "IN_FILE",
    "LATEST",
    "LOCKFILE_VERSION",
    "NAME_RULE",
    "Action",
    "Deprecation",
    "FileModel",
    "HistoryEntry",
    "Holder",
    "LockedImage",
    "LockedSelection",
    "Lockfile",
    "LockfileV1",
    "NonEmptyText",
    "Pin",
    "PinVerdict",
    "Revocation",
    "Selection",
    "SelectionName",
    "find_lockfile",
    "lockfile_text",
    "now_iso",
    "parse_lock_ref",
    "read_lockfile",
    "read_text",
    "time_of",
    "utc_iso",
    "value_text",
]

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

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", defer_build=True)
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


class LockedImage(FileModel):
    """One image a pin holds in one region, with what enforcement needs without an API call.

    Read from the lockfile (``context=IN_FILE``) the times are checked as the file writes them, ISO-8601 with
    a zone (``create_time`` ``null`` when the API gave none); built in code, ``create_time`` is Unix seconds
    (0: unknown). ``image_type`` (Base, Business, Custom), ``maintain_eol`` (the API's ``YYYY/MM/DD``) and
    ``architecture`` (x86_64, aarch64) are ``None`` in a pin of format 1, which did not record them.
    """

    create_time: int = Field(description="a UTC ISO-8601 time or null")
    locked_at: str = Field(description="a UTC ISO-8601 time")
    image_id: NonEmptyText = Field(description="a non-empty image ID")
    image_name: str = Field(description="the image name")
    image_type: str | None = Field(default=None, description="the image type (Base, Business or Custom) or null")
    maintain_eol: str | None = Field(default=None, description="the end of maintenance as YYYY/MM/DD, or null")
    architecture: str | None = Field(default=None, description="x86_64, aarch64 or null")

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

    @classmethod
    def of_image(cls, image: Image, locked_at: str) -> LockedImage:
        return cls(
            image_id=image.image_id,
            image_name=image.image_name,
            image_type=image.image_type or None,
            maintain_eol=image.maintain_eol or None,
            architecture=image.architecture,
            create_time=image.create_time,
            locked_at=locked_at,
        )

    def image(self) -> Image:
        """The image as far as the lockfile knows it (no API call)."""
        record: dict[str, Any] = {
            "ImageId": self.image_id, "ImageName": self.image_name, "CreateTime": self.create_time
        }
        if self.image_type:
            record["ImageType"] = self.image_type
        if self.maintain_eol:
            record["MaintainEol"] = self.maintain_eol
        if self.architecture == "aarch64":
            record["Features"] = ["Aarch64_Type"]
        return Image.model_validate(record)

    def held(self) -> LockedImage:
        """Just the image record (a :class:`Pin` without its query and region)."""
        return LockedImage.model_validate({name: getattr(self, name) for name in LockedImage.model_fields})

    def describe(self) -> str:
        created = utc_iso(self.create_time) if self.create_time else "an unknown time"
        return f"{server_text(self.image_id, 80)} {server_text(self.image_name.strip(), 80)!r} created {created}"


class Pin(LockedImage):
    """A locked image with the query it answers and the region it was resolved in: what a reader gets.

    Format 1 stored one per selection, as it is; format 2 stores the query once per selection and a
    :class:`LockedImage` per channel and region, and :meth:`LockedSelection.pin` rebuilds the Pin.
    """

    query: Selection = Field(description="an object of filters")
    region: NonEmptyText = Field(description="a non-empty region")

    @field_serializer("query")
    def _query_args(self, query: ImageQuery) -> dict[str, Any]:
        return query.to_args()

    @classmethod
    def of(cls, result: LookupResult, query: ImageQuery, locked_at: str) -> Pin:
        return cls.holding(LockedImage.of_image(result.image, locked_at), query, result.region)

    @classmethod
    def holding(cls, image: LockedImage, query: ImageQuery, region: str) -> Pin:
        return cls.model_validate({**{name: getattr(image, name) for name in LockedImage.model_fields},
                                   "query": query, "region": region})

    def to_json(self) -> dict[str, Any]:
        """The entry: the query as ``to_args()``, times as ISO-8601 text, keys sorted."""
        return dict(sorted(self.model_dump(mode="json").items()))

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


def _in_file(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("in_file"))


def _shown(query: ImageQuery) -> dict[str, Any]:
    """Every field, with lists as lists (as the selection file writes them), for comparing and showing."""
    return {name: list(value) if isinstance(value, tuple) else value for name, value in query.model_dump().items()}


# -- format 2: channels, regions, revocations, deprecations, history ---------------------------------------

ACTIONS = ("lock", "update", "promote", "rollback", "revoke", "restore", "deprecate", "migrate")
# What every action of `history` records: a pin or channel that moved, or an image revoked, restored, deprecated.
Action = Literal["lock", "update", "promote", "rollback", "revoke", "restore", "deprecate", "migrate"]


def _utc_time(text: str) -> str:
    if _seconds(text) is None:
        raise ValueError("not a UTC ISO-8601 time")
    return text


UtcTime = Annotated[str, AfterValidator(_utc_time)]
ChannelName = Annotated[str, AfterValidator(_selection_name)]


def parse_lock_ref(text: str) -> tuple[str, str]:
    """``web@prod`` -> ``("web", "prod")``; ``web`` -> ``("web", "latest")`` (the selection's own pin)."""
    name, at, channel = text.partition("@")
    if not _SELECTION_NAME.fullmatch(name) or (at and not _SELECTION_NAME.fullmatch(channel)):
        raise LockfileError(
            f"The lock reference {server_text(text, 80)!r} is not NAME or NAME@CHANNEL (each of {NAME_RULE})."
        )
    return name, channel or LATEST


def time_of(text: str) -> datetime:
    """A lockfile time (``...Z``) as an aware UTC datetime."""
    seconds = _seconds(text)
    if seconds is None:
        raise ValueError(f"not a UTC ISO-8601 time: {text!r}")
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def now_iso() -> str:
    return utc_iso(int(datetime.now(timezone.utc).timestamp()))


class LockedSelection(FileModel):
    """A selection in format 2: its query, once, and per channel the image it holds in each region.

    ``channels["latest"]`` is the selection's own pin (what ``lock`` writes); a declared channel (``prod``)
    moves only by ``promote`` and ``rollback``, and is ``{}`` (empty) until the first promote.
    """

    EXPECTED: ClassVar[str] = "an object with 'query' and 'channels'"

    query: Selection = Field(description="an object of filters")
    channels: dict[ChannelName, dict[NonEmptyText, LockedImage]] = Field(
        description="an object of channels, each an object of regions"
    )

    @field_serializer("query")
    def _query_args(self, query: ImageQuery) -> dict[str, Any]:
        return query.to_args()

    def regions(self, channel: str = LATEST) -> list[str]:
        """The regions ``channel`` holds an image in, sorted (empty for an empty or unknown channel)."""
        return sorted(self.channels.get(channel, {}))

    def pin(self, channel: str, region: str) -> Pin | None:
        held = self.channels.get(channel, {}).get(region)
        return None if held is None else Pin.holding(held, self.query, region)


class Revocation(FileModel):
    """An image revoked by ``ucloud-images revoke``: reading a pin on it fails from ``at`` on, warns before."""

    EXPECTED: ClassVar[str] = "an object with 'reason', 'at' and 'recorded_at'"

    image_id: str = Field(default="", exclude=True, description="the image ID (the key)")
    reason: NonEmptyText = Field(description="a non-empty reason")
    at: UtcTime = Field(description="a UTC ISO-8601 time")
    recorded_at: UtcTime = Field(description="a UTC ISO-8601 time")

    def in_force(self, now: datetime | None = None) -> bool:
        """Whether the revocation applies at ``now`` (default: now): from ``at`` on."""
        return (now or datetime.now(timezone.utc)) >= time_of(self.at)

    @property
    def day(self) -> str:
        """``2026-12-10``: the date it takes effect, as ``--at`` spells it."""
        return f"{time_of(self.at):%Y-%m-%d}"


class Deprecation(FileModel):
    """An image deprecated by ``ucloud-images deprecate``: reading a pin on it warns, naming the replacement."""

    EXPECTED: ClassVar[str] = "an object with 'replacement', 'reason' and 'recorded_at'"

    image_id: str = Field(default="", exclude=True, description="the image ID (the key)")
    replacement: NonEmptyText = Field(description="an image ID or NAME[@CHANNEL]")
    reason: str | None = Field(default=None, description="a reason or null")
    recorded_at: UtcTime = Field(description="a UTC ISO-8601 time")


class HistoryEntry(FileModel):
    """One change, appended by the command that made it; the list is only ever appended to.

    A pin or channel move names ``selection``, ``channel`` and ``region`` with the ``old_image`` (``None``:
    there was none) and the ``new_image``. ``revoke``, ``restore`` and ``deprecate`` act on an image: its ID is
    ``new_image``, ``selection``/``channel``/``region``/``old_image`` are ``None``, the reason is ``note``.
    ``migrate`` entries stand for the pins a format-1 lockfile held, at their ``locked_at``.
    """

    EXPECTED: ClassVar[str] = "an object with 'time', 'action', 'selection', 'channel', 'region', 'old_image', " \
        "'new_image' and 'note'"

    time: UtcTime = Field(description="a UTC ISO-8601 time")
    action: Action = Field(description=f"one of {', '.join(ACTIONS)}")
    selection: str | None = Field(default=None, description="a selection name or null")
    channel: str | None = Field(default=None, description="a channel name or null")
    region: str | None = Field(default=None, description="a region or null")
    old_image: str | None = Field(default=None, description="an image ID or null")
    new_image: str | None = Field(default=None, description="an image ID or null")
    note: str = Field(default="", description="a note")

    def explains(self, selection: str, channel: str, region: str, image_id: str) -> bool:
        return (self.selection, self.channel, self.region, self.new_image) == (selection, channel, region, image_id)


@dataclass(frozen=True)
class Holder:
    """A place a pin holds an image: selection, channel and region, and the pin itself."""

    selection: str
    channel: str
    region: str
    pin: Pin

    @property
    def ref(self) -> str:
        return self.selection if self.channel == LATEST else f"{self.selection}@{self.channel}"


@dataclass(frozen=True)
class PinVerdict:
    """What reading a pin meets: an error (a revocation in force) or warnings (scheduled, deprecated)."""

    error: str | None = None
    warnings: tuple[str, ...] = ()


def _keyed(entries: Any) -> Any:
    """Revocations and deprecations are keyed by image ID; each entry learns its key (not written back)."""
    if isinstance(entries, dict):
        return {key: {**value, "image_id": key} if isinstance(value, dict) else value for key, value in entries.items()}
    return entries


class Lockfile(FileModel):
    """``ucloud-images.lock.json`` in format 2: the registry of pins, channels, revocations and history.

    Load it with :meth:`load` (format 1 is read too, and becomes format 2 in memory, so the next write
    migrates it). It is immutable: the commands derive a new one (:meth:`with_image`, :meth:`revoked`, ...)
    that appends to ``history``, and write it with :func:`~pulumi_ucloud_images._lockfile.writer.write_lockfile`. Every
    read here is
    offline: what a policy pack needs is :meth:`holders`, :meth:`revocation`, :meth:`deprecation`,
    :meth:`pinned_ids` and :meth:`verdict`.
    """

    EXPECTED: ClassVar[str] = "an object with 'version' and 'selections'"

    version: int = Field(description=f"the format version {LOCKFILE_VERSION}")
    selections: dict[SelectionName, LockedSelection] = Field(description="an object of selections")
    revocations: dict[str, Revocation] = Field(default_factory=dict, description="an object of revocations")
    deprecations: dict[str, Deprecation] = Field(default_factory=dict, description="an object of deprecations")
    history: tuple[HistoryEntry, ...] = Field(default=(), strict=False, description="an array of history entries")
    # Every image a pin or channel has held, by ID: what `rollback` puts back when nothing holds it any more.
    images: dict[str, LockedImage] = Field(default_factory=dict, description="an object of images by ID")
    _path: Path = PrivateAttr(default=Path(DEFAULT_LOCKFILE))

    @field_validator("version")
    @classmethod
    def _readable(cls, version: int) -> int:
        if version != LOCKFILE_VERSION:
            raise PydanticCustomError("lockfile_version", "format version {version}", {"version": version})
        return version

    @field_validator("revocations", "deprecations", mode="before")
    @classmethod
    def _with_keys(cls, value: Any) -> Any:
        return _keyed(value)

    # -- reading ---------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Lockfile:
        """Read, validate and (format 1) migrate a lockfile; every problem is one :class:`LockfileError` sentence."""
        path = Path(path)
        text = read_text(
            path, f"The lockfile {path}",
            f"The lockfile {path} does not exist; run 'ucloud-images lock' to create it.",
        )
        data = _json_document(text, path)
        version = data.get("version") if isinstance(data, dict) else None
        try:
            if version == 1 and type(version) is int:
                lockfile = _migrated(LockfileV1.model_validate(data, context=IN_FILE))
            else:
                lockfile = cls.model_validate(data, context=IN_FILE)
        except ValidationError as exc:
            problem = _lockfile_problem(path, exc.errors()[0], version == 1)
        else:
            lockfile._path = path
            return lockfile
        raise LockfileError(problem)

    @classmethod
    def empty(cls, path: str | os.PathLike[str] = DEFAULT_LOCKFILE) -> Lockfile:
        lockfile = cls(version=LOCKFILE_VERSION, selections={})
        lockfile._path = Path(path)
        return lockfile

    @property
    def path(self) -> Path:
        """The file it was read from (messages name it as given)."""
        return self._path

    def pins(self, channel: str = LATEST) -> dict[str, Pin]:
        """The pin of each selection in ``channel`` that holds exactly one region (format 1's view)."""
        found: dict[str, Pin] = {}
        for name, selection in self.selections.items():
            regions = selection.regions(channel)
            if len(regions) == 1:
                pin = selection.pin(channel, regions[0])
                assert pin is not None
                found[name] = pin
        return found

    def holdings(self) -> list[Holder]:
        """Every (selection, channel, region) and its pin, in sorted order."""
        return [
            Holder(name, channel, region, Pin.holding(held, selection.query, region))
            for name, selection in sorted(self.selections.items())
            for channel, regions in sorted(selection.channels.items())
            for region, held in sorted(regions.items())
        ]

    def holders(self, image_id: str) -> list[Holder]:
        """Every pin or channel that holds ``image_id`` (selection, channel, region)."""
        return [holder for holder in self.holdings() if holder.pin.image_id == image_id]

    def pinned_ids(self) -> frozenset[str]:
        """Every image ID any pin or channel holds: what the lockfile tracks."""
        return frozenset(holder.pin.image_id for holder in self.holdings())

    def revocation(self, image_id: str) -> Revocation | None:
        return self.revocations.get(image_id)

    def deprecation(self, image_id: str) -> Deprecation | None:
        return self.deprecations.get(image_id)

    def selection(self, name: str) -> LockedSelection:
        """The selection ``name``, or the sentence naming those there are."""
        found = self.selections.get(name)
        if found is None:
            known = ", ".join(sorted(self.selections)) or "none"
            raise LockfileError(
                f"The lockfile {self.path} has no selection {name!r} (it has: {known}); add it to "
                f"{DEFAULT_SELECTION_FILE} and run 'ucloud-images lock --update {name}'."
            )
        return found

    def channel(self, name: str, channel: str = LATEST) -> dict[str, LockedImage]:
        """The images of ``name@channel`` by region; an unknown or empty channel is a sentence saying what to run."""
        selection = self.selection(name)
        if channel not in selection.channels:
            declared = ", ".join(sorted(ch for ch in selection.channels if ch != LATEST)) or "none"
            raise LockfileError(
                f"Selection {name!r} of {self.path} has no channel {channel!r} (its declared channels: {declared}); "
                f"declare it with channels = [...] in [selections.{name}] of {DEFAULT_SELECTION_FILE} and run "
                "'ucloud-images lock'."
            )
        held = selection.channels[channel]
        if not held:
            fill = (
                f"'ucloud-images lock --update {name}'" if channel == LATEST
                else f"'ucloud-images promote {name} --to {channel}'"
            )
            raise LockfileError(f"Channel {name}@{channel} of {self.path} is empty; fill it with {fill}.")
        return held

    def pin(self, name: str, channel: str = LATEST, region: str | None = None) -> Pin:
        """The pin of ``name@channel`` in ``region`` (``None``: the one region it holds; several are an error)."""
        held = self.channel(name, channel)
        ref = name if channel == LATEST else f"{name}@{channel}"
        if region is None:
            if len(held) == 1:
                region = next(iter(held))
            else:
                raise LockfileError(
                    f"The pin {ref} of {self.path} covers the regions {', '.join(sorted(held))}; name one "
                    "(region=..., or --region)."
                )
        elif region not in held:
            raise LockfileError(
                f"The pin {ref} of {self.path} does not cover region {region!r}; it covers "
                f"{', '.join(sorted(held))} (add the region to regions = [...] in [selections.{name}] and run "
                f"'ucloud-images lock --update {name}')."
            )
        pin = self.selection(name).pin(channel, region)
        assert pin is not None
        return pin

    def verdict(self, image_id: str, ref: str, now: datetime | None = None) -> PinVerdict:
        """What reading the pin ``ref`` (``web@prod``) on ``image_id`` meets at ``now``: a revocation in force is
        the error; a scheduled revocation and a deprecation are warnings."""
        name = ref.partition("@")[0]
        warnings: list[str] = []
        revocation = self.revocation(image_id)
        if revocation is not None:
            recorded = f"recorded in {self.path} on {time_of(revocation.recorded_at):%Y-%m-%d}"
            if revocation.in_force(now):
                move_on = (
                    f"'ucloud-images rollback {name} --channel {ref.partition('@')[2]}' or 'ucloud-images promote "
                    f"{name} --to {ref.partition('@')[2]}'" if "@" in ref
                    else f"'ucloud-images lock --update {name}'"
                )
                return PinVerdict(error=(
                    f"The pin {ref} holds image {image_id}, revoked since {revocation.day} "
                    f"({server_text(revocation.reason, 200)}; {recorded}); move on with {move_on}."
                ))
            warnings.append(
                f"the pin {ref} holds image {image_id}, which will be revoked on {revocation.day} "
                f"({server_text(revocation.reason, 200)}; {recorded})"
            )
        deprecation = self.deprecation(image_id)
        if deprecation is not None:
            why = f": {server_text(deprecation.reason, 200)}" if deprecation.reason else ""
            warnings.append(
                f"the pin {ref} holds image {image_id}, deprecated in favour of "
                f"{server_text(deprecation.replacement, 80)}{why}"
            )
        return PinVerdict(warnings=tuple(warnings))

    def unexplained(self) -> list[Holder]:
        """Pins no history entry explains: the last entry for their place does not name their image (a hand edit)."""
        last: dict[tuple[str | None, str | None, str | None], str | None] = {}
        for entry in self.history:
            if entry.selection is not None:
                last[(entry.selection, entry.channel, entry.region)] = entry.new_image
        return [
            holder for holder in self.holdings()
            if last.get((holder.selection, holder.channel, holder.region)) != holder.pin.image_id
        ]

    # -- deriving a new lockfile (each change appends to history) ----------------------------------------

    def _with(self, **update: Any) -> Lockfile:
        lockfile = self.model_copy(update=update)
        lockfile._path = self._path
        return lockfile

    def with_selection(self, name: str, query: ImageQuery, channels: Iterable[str]) -> Lockfile:
        """``name`` with ``query`` and every declared channel present (a new one empty); nothing else moves."""
        old = self.selections.get(name)
        held = dict(old.channels) if old is not None else {}
        for channel in (LATEST, *channels):
            held.setdefault(channel, {})
        selection = LockedSelection(query=query, channels=held)
        return self._with(selections={**self.selections, name: selection})

    def without_selections(self, names: Iterable[str]) -> Lockfile:
        gone = set(names)
        return self._with(selections={n: s for n, s in self.selections.items() if n not in gone})

    def with_images(
        self, name: str, channel: str, images: Mapping[str, LockedImage], action: Action, note: str = "",
        *, time: str | None = None, replace: bool = True,
    ) -> Lockfile:
        """``name@channel`` holding ``images`` by region (``replace``: only those regions); one history entry per
        region whose image changed."""
        time = time or now_iso()
        # Each move of a channel is one step of its history, told apart by its time (rollback goes back a step):
        # a move within the second of the channel's last one is written a second after it.
        last = max((_seconds(entry.time) or 0 for entry in self.history
                    if (entry.selection, entry.channel) == (name, channel)), default=None)
        if last is not None and (_seconds(time) or 0) <= last:
            time = utc_iso(last + 1)
        selection = self.selection(name)
        before = selection.channels.get(channel, {})
        after = dict(images) if replace else {**before, **images}
        entries = [
            HistoryEntry(time=time, action=action, selection=name, channel=channel, region=region,
                         old_image=before[region].image_id if region in before else None,
                         new_image=after[region].image_id if region in after else None, note=note)
            for region in sorted({*before, *after})
            if (before.get(region) and before[region].image_id) != (after.get(region) and after[region].image_id)
        ]
        channels = {**selection.channels, channel: after}
        selections = {**self.selections, name: selection.model_copy(update={"channels": channels})}
        images = {**self.images, **{image.image_id: image for image in after.values()}}
        return self._with(selections=selections, history=(*self.history, *entries), images=images)

    def record(self, image_id: str) -> LockedImage | None:
        """What the lockfile knows of an image it has held (``None``: never held)."""
        known = self.images.get(image_id)
        if known is None:
            known = next((holder.pin.held() for holder in self.holders(image_id)), None)
        return known

    def with_revocation(self, image_id: str, reason: str, at: str, note: str = "") -> Lockfile:
        time = now_iso()
        revocation = Revocation(image_id=image_id, reason=reason, at=at, recorded_at=time)
        entry = HistoryEntry(time=time, action="revoke", new_image=image_id, note=note or f"{reason} (from {at})")
        return self._with(revocations={**self.revocations, image_id: revocation}, history=(*self.history, entry))

    def without_revocation(self, image_id: str, note: str = "") -> Lockfile:
        entry = HistoryEntry(time=now_iso(), action="restore", new_image=image_id, note=note)
        revocations = {key: value for key, value in self.revocations.items() if key != image_id}
        return self._with(revocations=revocations, history=(*self.history, entry))

    def with_deprecation(self, image_id: str, replacement: str, reason: str | None) -> Lockfile:
        time = now_iso()
        deprecation = Deprecation(image_id=image_id, replacement=replacement, reason=reason, recorded_at=time)
        note = f"replacement {replacement}" + (f": {reason}" if reason else "")
        entry = HistoryEntry(time=time, action="deprecate", new_image=image_id, note=note)
        return self._with(deprecations={**self.deprecations, image_id: deprecation}, history=(*self.history, entry))

    def previous(self, name: str, channel: str) -> dict[str, str] | None:
        """The image IDs by region ``name@channel`` held before its current ones: what ``rollback`` goes back to.

        Read from history as a stack of the channel's states (one per command that moved it): a move pushes a
        state, a rollback pops one, so two rollbacks go back two steps. ``None`` when there is no earlier one.
        """
        stack: list[dict[str, str]] = [{}]
        step: tuple[str, str] | None = None
        seen: set[str] = set()  # one command moves each region once: a region seen again starts the next step
        for entry in self.history:
            if entry.selection != name or entry.channel != channel or entry.region is None:
                continue
            if (entry.time, entry.action) != step or entry.region in seen:
                step, seen = (entry.time, entry.action), set()
                if entry.action == "rollback":
                    if len(stack) > 1:
                        stack.pop()
                    continue
                stack.append(dict(stack[-1]))
            seen.add(entry.region)
            if entry.action == "rollback":
                continue
            if entry.new_image is None:
                stack[-1].pop(entry.region, None)
            else:
                stack[-1][entry.region] = entry.new_image
        return stack[-2] if len(stack) > 1 and stack[-2] else None


class LockfileV1(FileModel):
    """Format 1: one pin per selection, one region, no channels, revocations or history."""

    EXPECTED: ClassVar[str] = "an object with 'version' and 'selections'"

    version: int = Field(description="the format version 1")
    selections: dict[SelectionName, Pin] = Field(description="an object of selections")


def _migrated(old: LockfileV1) -> Lockfile:
    """Format 1 in format 2: each pin becomes its selection's ``latest`` in its region, explained by a
    ``migrate`` entry at the time it was locked (so ``lock --check`` accepts it)."""
    selections = {
        name: LockedSelection(query=pin.query, channels={LATEST: {pin.region: pin.held()}})
        for name, pin in old.selections.items()
    }
    history = tuple(sorted(
        (HistoryEntry(time=pin.locked_at, action="migrate", selection=name, channel=LATEST, region=pin.region,
                      new_image=pin.image_id, note="pinned in format 1")
         for name, pin in old.selections.items()),
        key=lambda entry: (entry.time, entry.selection or ""),
    ))
    images = {pin.image_id: pin.held() for pin in old.selections.values()}
    return Lockfile(version=LOCKFILE_VERSION, selections=selections, history=history, images=images)


def read_lockfile(path: Path) -> dict[str, Pin]:
    """Format 1's view of a lockfile: the ``latest`` pin of each single-region selection."""
    return Lockfile.load(path).pins()


def _json_document(text: str, path: Path) -> Any:
    """The JSON of a lockfile, refusing a key twice in one object (JSON parsers would keep the last)."""

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise LockfileError(
                    f"The lockfile {path} has the key {key!r} twice in one object (a merge left both sides?); "
                    "keep one and run 'ucloud-images lock --check'."
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


def _place(loc: tuple[str, ...], v1: bool) -> tuple[type[FileModel], str | None]:
    """The model a problem is in and its field (``None``: the value as a whole), from where pydantic found it."""
    if v1:
        if len(loc) < 2:
            return LockfileV1, loc[0] if loc else None
        return Pin, loc[2] if len(loc) > 2 else None
    if len(loc) <= 1:
        return Lockfile, loc[0] if loc else None
    top = loc[0]
    if top == "selections":
        if len(loc) == 2:
            return LockedSelection, None
        if len(loc) == 3 or loc[2] != "channels" or len(loc) < 6:
            return LockedSelection, loc[2] if len(loc) == 3 else "channels"
        return LockedImage, loc[5] if len(loc) > 5 else None
    models: dict[str, type[FileModel]] = {
        "revocations": Revocation, "deprecations": Deprecation, "images": LockedImage
    }
    model = models.get(top, HistoryEntry)
    return model, loc[2] if len(loc) > 2 else None


def _lockfile_problem(path: Path, error: ErrorDetails, v1: bool = False) -> str:
    """The sentence for the first problem pydantic found in a lockfile: where, what was expected, what was there."""
    loc, kind, ctx = tuple(str(part) for part in error["loc"]), error["type"], error.get("ctx") or {}
    if kind == "lockfile_version":
        return (
            f"The lockfile {path} has format version {ctx['version']}, which this ucloud-images does not read; "
            f"expected 1 or {LOCKFILE_VERSION}."
        )
    if kind == "unknown_key":
        model, _ = _place((*loc, str(ctx["key"])), v1)
        at = ".".join((*loc, str(ctx["key"])))
        keys = ", ".join(sorted(name for name, field in model.model_fields.items() if not field.exclude))
        return f"The lockfile {path} is malformed at {at}: expected only the keys {keys}."
    at = ".".join(part for part in loc if part != "[key]") or "the top level"
    if kind == "invalid_query":
        return f"The lockfile {path} is malformed at {at}: {ctx['reason']}."
    model, field = _place(loc, v1)
    if loc and loc[-1] == "[key]":
        kind_of_name = "selection" if len(loc) == 3 else "channel" if len(loc) == 5 else "region"
        expected = f"a {kind_of_name} name of {NAME_RULE}" if kind_of_name != "region" else "a non-empty region"
    elif loc and loc[0] == "selections" and "channels" in loc[2:] and len(loc) in (4, 5):
        expected = "an object of regions" if len(loc) == 4 else LockedImage.EXPECTED
    elif field is not None and field in model.model_fields:
        expected = str(model.model_fields[field].description)
    else:
        expected = model.EXPECTED
    found = "nothing" if kind == "missing" else value_text(error.get("input"))
    return f"The lockfile {path} is malformed at {at}: expected {expected}, found {found}."


def lockfile_text(lockfile: Lockfile) -> str:
    """The lockfile as written: indented, keys sorted, history in the order it happened, one final newline.

    Characters an editor or a diff would act on (control and bidirectional characters in an image name)
    are written as ``\\u`` escapes, so a reviewed diff shows what the file holds.
    """
    document = lockfile.model_dump(mode="json")
    document["version"] = LOCKFILE_VERSION
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
