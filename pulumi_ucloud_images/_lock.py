"""The image lockfile: golden-image pins that change only through a reviewed commit.

``ucloud-images.toml`` names selections (queries); ``ucloud-images lock`` resolves them and writes
``ucloud-images.lock.json``, which is committed next to it like a dependency lock. Programs read a pin with
``get_images(..., lock="NAME")`` (:func:`locked_lookup`) without calling the API, and CI runs
``ucloud-images lock --check`` to learn when a selection would now resolve to another image.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import reprlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO, TypeVar

from pydantic import ValidationError

from . import _query
from ._display import json_for_people
from ._display import shown as server_text
from ._errors import LockfileError, NoImageFoundError, UCloudImagesError
from ._files import FileProblem, read_small_file
from ._image import Image
from ._listing import Client, shared_client
from ._lookup import lookup_images
from ._query import ImageQuery, invalid_query_error, parse_query
from ._select import LookupResult, eol_warning
from ._settings import _SOURCES, CLI_FACE, resolve_region, resolve_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "DEFAULT_LOCKFILE",
    "DEFAULT_SELECTION_FILE",
    "EXIT_OUT_OF_DATE",
    "LOCKFILE_VERSION",
    "locked_lookup",
    "read_pin",
    "register_cli",
]

DEFAULT_SELECTION_FILE = "ucloud-images.toml"
DEFAULT_LOCKFILE = "ucloud-images.lock.json"
LOCKFILE_VERSION = 1
# `lock --check` / `lock --verify` found a difference: distinct from 0 and from the error codes 2-5.
EXIT_OUT_OF_DATE = 1

_SELECTION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_NAME_RULE = "letters, digits, '_', '.' and '-', starting with a letter or digit"
_FILE_SETTINGS = ("region", "profile", "base_url")
_SECRET_SETTINGS = ("public_key", "private_key")
_PIN_KEYS = ("create_time", "image_id", "image_name", "locked_at", "query", "region")
_MAX_RESOLVERS = 8
_MISSING: Any = object()
_T = TypeVar("_T")
# Far beyond any real file (a pin is a few hundred bytes), and small enough to read and parse at once.
FILE_LIMIT = 4 * 1024 * 1024
# How long `lock` waits for another `lock` of the same lockfile to finish before giving up.
LOCK_WAIT_SECONDS = 300.0
_brief = reprlib.Repr()
_brief.maxlevel, _brief.maxstring, _brief.maxother, _brief.maxlist, _brief.maxdict = 3, 40, 40, 4, 4


def _read_text(path: Path, what: str, missing: str) -> str:
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


# -- the selection file --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selections:
    """A parsed selection file: its ``[settings]`` and its queries, in file order."""

    path: Path
    settings: dict[str, str]
    queries: dict[str, ImageQuery]


def read_selections(path: str | os.PathLike[str]) -> Selections:
    """Parse and validate a selection file; every problem is one sentence naming the file and the key."""
    path = Path(path)
    where = f"the selection file {path}"
    text = _read_text(
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

    for key in data:
        if key not in ("settings", "selections"):
            raise LockfileError(
                f"In {where}, the top-level key {key!r} is unknown; expected [settings] and [selections.NAME] tables."
            )
    settings = _table(data.get("settings", {}), where, "[settings]")
    for key, value in settings.items():
        if key in _SECRET_SETTINGS:
            raise LockfileError(
                f"In {where}, [settings] must not hold {key}: keys never belong in a committed file, so use "
                f"UCLOUD_{key.upper()}, a ~/.ucloud profile or the --{key.replace('_', '-')} flag."
            )
        if key not in _FILE_SETTINGS:
            raise LockfileError(
                f"In {where}, [settings] has the unknown key {key!r}; the keys are {', '.join(_FILE_SETTINGS)}."
            )
        if not isinstance(value, str) or not value.strip():
            raise LockfileError(f"In {where}, [settings] {key} must be a non-empty string, not {value!r}.")

    if "selections" not in data:
        raise LockfileError(f"The selection file {path} has no [selections.NAME] table; add one per image.")
    selections = _table(data["selections"], where, "[selections]")
    if not selections:
        raise LockfileError(f"The selection file {path} declares no selections; add a [selections.NAME] table.")
    queries: dict[str, ImageQuery] = {}
    for name, filters in selections.items():
        _check_name(name, where)
        table = _table(filters, where, f"[selections.{name}]")
        try:
            queries[name] = ImageQuery.model_validate(table)
        except ValidationError as exc:
            reason = _clause(str(invalid_query_error(exc)))
            raise LockfileError(f"In {where}, [selections.{name}]: {reason}.") from None
    return Selections(path=path, settings={k: str(v) for k, v in settings.items()}, queries=queries)


def _table(value: Any, where: str, label: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LockfileError(f"In {where}, {label} must be a table, not {type(value).__name__} {_brief.repr(value)}.")
    return value


def _check_name(name: str, where: str) -> None:
    if not _SELECTION_NAME.fullmatch(name):
        raise LockfileError(f"In {where}, the selection name {name!r} is not allowed; use {_NAME_RULE}.")


def _clause(sentence: str) -> str:
    """``'Unknown filter x.'`` -> ``'unknown filter x'``, to embed one sentence in another."""
    sentence = sentence.rstrip(".")
    return sentence[:1].lower() + sentence[1:]


# -- the lockfile ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """One locked selection: the query it answers, where, and the image it resolved to."""

    query: ImageQuery
    region: str
    image_id: str
    image_name: str
    create_time: int
    locked_at: str

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
        return {
            "create_time": _iso(self.create_time) if self.create_time else None,
            "image_id": self.image_id,
            "image_name": self.image_name,
            "locked_at": self.locked_at,
            "query": self.query.to_args(),
            "region": self.region,
        }

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
        created = _iso(self.create_time) if self.create_time else "an unknown time"
        return f"{server_text(self.image_id, 80)} {server_text(self.image_name.strip(), 80)!r} created {created}"


def _shown(query: ImageQuery) -> dict[str, Any]:
    """Every field, with lists as lists (as the selection file writes them), for comparing and showing."""
    return {name: list(value) if isinstance(value, tuple) else value for name, value in query.model_dump().items()}


def _iso(seconds: int) -> str:
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


def read_lockfile(path: Path) -> dict[str, Pin]:
    """Parse and validate a lockfile; every problem is one sentence naming the file and the key or line."""
    text = _read_text(
        path, f"The lockfile {path}", f"The lockfile {path} does not exist; run 'ucloud-images lock' to create it."
    )

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
        data = json.loads(text, object_pairs_hook=unique_keys)
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

    def bad(key: str, expected: str, found: Any) -> LockfileError:
        what = "nothing" if found is _MISSING else f"{type(found).__name__} {_brief.repr(found)}"
        return LockfileError(f"The lockfile {path} is malformed at {key}: expected {expected}, found {what}.")

    def field(mapping: dict[str, Any], key: str, prefix: str, kind: type[_T], expected: str) -> _T:
        value = mapping.get(key, _MISSING)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise bad(f"{prefix}{key}", expected, value)
        return value

    if not isinstance(data, dict):
        raise bad("the top level", "an object with 'version' and 'selections'", data)
    _no_extra_keys(data, ("selections", "version"), path, "")
    version = field(data, "version", "", int, f"the format version {LOCKFILE_VERSION}")
    if version != LOCKFILE_VERSION:
        raise LockfileError(
            f"The lockfile {path} has format version {version}, which this ucloud-images does not read; "
            f"expected {LOCKFILE_VERSION}."
        )
    entries = field(data, "selections", "", dict, "an object of selections")
    pins: dict[str, Pin] = {}
    for name, entry in entries.items():
        prefix = f"selections.{name}."
        if not _SELECTION_NAME.fullmatch(name):
            raise bad(f"selections.{name}", f"a selection name of {_NAME_RULE}", name)
        if not isinstance(entry, dict):
            raise bad(f"selections.{name}", "an object", entry)
        _no_extra_keys(entry, _PIN_KEYS, path, prefix)
        raw_query = field(entry, "query", prefix, dict, "an object of filters")
        try:
            query = ImageQuery.model_validate(raw_query)
        except ValidationError as exc:
            raise LockfileError(
                f"The lockfile {path} is malformed at {prefix}query: {_clause(str(invalid_query_error(exc)))}."
            ) from None
        create_time = entry.get("create_time", _MISSING)
        seconds = 0 if create_time is None else _seconds(create_time)
        if seconds is None:
            raise bad(f"{prefix}create_time", "a UTC ISO-8601 time or null", create_time)
        locked_at = entry.get("locked_at", _MISSING)
        if _seconds(locked_at) is None:
            raise bad(f"{prefix}locked_at", "a UTC ISO-8601 time", locked_at)
        image_id = field(entry, "image_id", prefix, str, "a non-empty image ID")
        if not image_id.strip():
            raise bad(f"{prefix}image_id", "a non-empty image ID", image_id)
        region = field(entry, "region", prefix, str, "a non-empty region")
        if not region.strip():
            raise bad(f"{prefix}region", "a non-empty region", region)
        pins[name] = Pin(
            query=query,
            region=region,
            image_id=image_id,
            image_name=field(entry, "image_name", prefix, str, "the image name"),
            create_time=seconds,
            locked_at=locked_at,
        )
    return pins


def _no_extra_keys(mapping: Mapping[str, Any], allowed: Sequence[str], path: Path, prefix: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise LockfileError(
                f"The lockfile {path} is malformed at {prefix}{key}: expected only the keys {', '.join(allowed)}."
            )


def lockfile_text(pins: Mapping[str, Pin]) -> str:
    """The lockfile as written: indented, keys sorted, non-ASCII names kept readable, one final newline.

    Characters an editor or a diff would act on (control and bidirectional characters in an image name)
    are written as ``\\u`` escapes, so a reviewed diff shows what the file holds.
    """
    document = {"selections": {name: pin.to_json() for name, pin in pins.items()}, "version": LOCKFILE_VERSION}
    return json_for_people(document, indent=2, sort_keys=True) + "\n"


def _target(path: Path) -> Path:
    """The file a lockfile path stands for: a symbolic link is followed, so the link stays a link."""
    return Path(os.path.realpath(path))


def _temporary_name(target: Path) -> re.Pattern[str]:
    """Temporary files of a write to ``target``: ``.NAME.XXXXXXXX.tmp`` next to it (mkstemp's 8 characters)."""
    return re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")


def remove_stale_temporaries(path: Path) -> list[str]:
    """Delete the temporary files a killed write left next to the lockfile; the names of those removed.

    Called only while holding the lockfile's lock (:func:`exclusive`), so no write in progress owns them.
    """
    target = _target(path)
    pattern = _temporary_name(target)
    removed: list[str] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


@contextlib.contextmanager
def exclusive(path: Path, *, wait: float = LOCK_WAIT_SECONDS, notice: TextIO | None = None) -> Iterator[None]:
    """Hold the lock on the lockfile at ``path`` for a read-modify-write: one ``lock`` at a time updates it.

    ``fcntl.flock`` on a sidecar file ``.NAME.lock`` next to the lockfile's real target (two links to one
    lockfile share one lock). The sidecar is removed on release; a waiter that then holds a lock on the
    removed file notices (its inode is no longer the path's) and locks the new one. Waits up to ``wait``
    seconds, saying so once on ``notice``; without ``fcntl`` (Windows) there is no lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    target = _target(path)
    sidecar = target.with_name(f".{target.name}.lock")
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            descriptor = os.open(sidecar, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise LockfileError(
                f"The lockfile {path} cannot be locked for writing ({exc.strerror or exc}); it was left unchanged."
            ) from None
        try:
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockfileError(
                            f"Another 'ucloud-images lock' has been updating {path} for {wait:g} s; it was left "
                            "unchanged (try again when that one is done)."
                        ) from None
                    if not told and notice is not None:
                        notice.write(f"ucloud-images: waiting for another 'ucloud-images lock' updating {path}\n")
                        notice.flush()
                        told = True
                    time.sleep(0.05)
            try:
                same = os.path.samestat(os.fstat(descriptor), os.stat(sidecar))
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(descriptor)
            raise
        if same:
            break
        os.close(descriptor)  # the holder before us removed this sidecar: lock the one at the path now
    try:
        remove_stale_temporaries(path)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(sidecar)
        os.close(descriptor)


def write_lockfile(path: Path, pins: Mapping[str, Pin]) -> None:
    """Replace the lockfile atomically: readers see the old file or the new one, never a part of either.

    A symbolic link is written through (its target is replaced; the link stays). The new text goes to a
    temporary file ``.NAME.XXXXXXXX.tmp`` beside the target, is flushed to disk and renamed over it; a failed
    write removes it, and one a killed process left is removed by the next ``lock``.
    """
    text = lockfile_text(pins)
    target = _target(path)
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    except OSError as exc:
        raise LockfileError(f"The lockfile {path} cannot be written: {exc.strerror or exc}.") from None
    temp: str | None = None
    try:
        handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
        temp = None
    except OSError as exc:
        raise LockfileError(
            f"The lockfile {path} cannot be written ({exc.strerror or exc}); it was left unchanged."
        ) from None
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
    with contextlib.suppress(OSError):  # make the rename itself durable
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


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


# -- reading a pin from a program ---------------------------------------------------------------------------


def read_pin(name: str, path: str | os.PathLike[str] | None = None) -> tuple[Pin, Path]:
    """The pin of selection ``name`` and the lockfile it was read from (``path``, default: the nearest
    ``ucloud-images.lock.json`` upwards); a missing selection is a :class:`LockfileError` naming those it has."""
    lock_path = find_lockfile() if path is None else Path(path)
    pins = read_lockfile(lock_path)
    pin = pins.get(name)
    if pin is None:
        known = ", ".join(sorted(pins)) or "none"
        raise LockfileError(
            f"The lockfile {lock_path} has no selection {name!r} (it has: {known}); add it to "
            f"{DEFAULT_SELECTION_FILE} and run 'ucloud-images lock --update {name}'."
        )
    return pin, lock_path


def check_locked_query(name: str, pin: Pin, query: ImageQuery, lock_path: Path) -> None:
    """The query in code must equal the locked one (``region`` only when the code gives one), else a
    :class:`LockfileError` names the differing fields."""
    differences = pin.differences(query, query.region)
    if differences:
        shown = ", ".join(
            f"{field} is {code!r} in code but {locked!r} in the lockfile" for field, code, locked in differences
        )
        raise LockfileError(
            f"The query for selection {name!r} differs from the lockfile {lock_path}: {shown}; make "
            f"{DEFAULT_SELECTION_FILE} and the code agree, then run 'ucloud-images lock --update {name}'."
        )


def locked_lookup(
    name: str,
    query: ImageQuery | None,
    *,
    path: str | os.PathLike[str] | None = None,
    verify: bool = False,
    settings_args: Mapping[str, Any] | None = None,
) -> LookupResult:
    """The image pinned for selection ``name``, read from the lockfile without any API call.

    With ``query`` ``None`` the pin is taken by its name alone, with the query it was locked with; a query
    given in code must equal the locked one (``region`` only when the code gives one), else
    :class:`LockfileError` names the differing fields. ``verify`` costs one DescribeImage call (ImageId
    filter, with ``settings_args`` as for :func:`resolve_settings`) and fails if the image is gone or not in
    one of the query's states; the image it finds past its end of life is kept, with a warning.
    ``path`` defaults to the nearest ``ucloud-images.lock.json`` upwards.
    """
    pin, lock_path = read_pin(name, path)
    if query is None:
        query = pin.query
    else:
        check_locked_query(name, pin, query, lock_path)
    image = pin.image()
    warnings: tuple[str, ...] = ()
    if verify:
        settings = resolve_settings(**{**(settings_args or {}), "region": pin.region})
        image = _usable(fetch_pinned(pin.image_id, pin.region, query, shared_client(settings)), name, lock_path)
        warning = eol_warning(image, query, pin.region, _query.utc_today())
        warnings = () if warning is None else (f"selection {name!r} of {lock_path} pins {warning}",)
    return LookupResult(
        image_id=image.image_id, images=(image,), ids=(image.image_id,), total_count=1, region=pin.region,
        query=query, warnings=warnings,
    )


def fetch_pinned(image_id: str, region: str, query: ImageQuery, client: Client) -> Image | str:
    """The pinned image as the API sees it now, or why it can no longer serve ``query``.

    One DescribeImage call filtered by the image's ID (in the query's project). The reason, a clause to
    embed in a sentence, is that the image is gone or not in one of the query's states.
    """
    params = parse_query(image_id=image_id, project_id=query.project_id).server_params(
        region, client.settings.project_id
    )
    image = next((image for image in client.describe_images(params) if image.image_id == image_id), None)
    if image is None:
        return f"the pinned image {image_id} no longer exists in region {region}"
    if image.state not in query.states:
        state = server_text(image.state, 40) or "in no state"  # the server's text
        return f"the pinned image {image_id} is {state} in region {region}, not {' or '.join(query.states)}"
    return image


def _usable(found: Image | str, name: str, lock_path: Path) -> Image:
    if isinstance(found, str):
        raise NoImageFoundError(
            f"For selection {name!r} of {lock_path}, {found}; re-pin it with 'ucloud-images lock --update {name}'."
        )
    return found


# -- resolving selections -----------------------------------------------------------------------------------


def _settings_arguments(selections: Selections, settings_args: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`resolve_settings`: the command's flags, then ``[settings]`` (as the config
    source, named as such in messages), then the environment and the profile files.

    With ``--emulator`` the endpoint and keys are the emulator's, so of ``[settings]`` only the region counts,
    and the emulator's demo region is only a fallback behind it.
    """
    given = dict(settings_args)
    if "config" in given:  # --emulator: it brings its own (empty) config, environment and home
        region = selections.settings.get("region") or given.pop("region", None)
        return {**given, "region": region, "face": CLI_FACE}
    file_settings = dict(selections.settings)
    face = CLI_FACE.with_config({name: f"{name} in [settings] of {selections.path}" for name in file_settings})
    by_config_key = {_SOURCES[name][0]: value for name, value in file_settings.items()}
    return {**given, "config": by_config_key.get, "face": face}


def _configured_region(arguments: Mapping[str, Any]) -> str | None:
    """The region the settings name, found without the keys (so a missing region is said first)."""
    names = ("region", "profile", "env", "config", "home", "face")
    return resolve_region(**{name: arguments[name] for name in names if name in arguments})


def _regions(selections: Selections, configured: str | None) -> dict[str, str]:
    regions: dict[str, str] = {}
    for name, query in selections.queries.items():
        region = query.region or configured
        if region is None:
            raise LockfileError(
                f"Selection {name!r} of {selections.path} has no region; set region in it or in [settings], "
                "or set UCLOUD_REGION."
            )
        regions[name] = region
    return regions


def _in_parallel(names: Iterable[str], work: Callable[[str], _T], selections: Selections) -> dict[str, _T]:
    """Run ``work(name)`` for every name on a small pool; the first failure (in file order) is raised."""
    names = list(names)
    if not names:
        return {}
    with ThreadPoolExecutor(min(len(names), _MAX_RESOLVERS), thread_name_prefix="ucloud-images-lock") as pool:
        futures = {name: pool.submit(work, name) for name in names}
    results: dict[str, _T] = {}
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except UCloudImagesError as exc:
            exc.args = (f"Selection {name!r} of {selections.path}: {exc}",)
            raise
    return results


def _resolve(names: Iterable[str], selections: Selections, client: Client) -> dict[str, Pin]:
    """Resolve selections concurrently through one client, so selections that list the same pages share them."""

    locked_at = _iso(int(datetime.now(timezone.utc).timestamp()))

    def pin(name: str) -> Pin:
        query = selections.queries[name]
        return Pin.of(lookup_images(query, client=client), query, locked_at)

    return _in_parallel(names, pin, selections)


def _pinned_image(name: str, pin: Pin, query: ImageQuery, client: Client) -> Image | str:
    """The image a pin names as the API describes it now: from the selection's listing, which the lookup has
    just read (memoised, so no request), else by its ID (one request); or why it is gone."""
    params = query.server_params(pin.region, client.settings.project_id)
    found = next((image for image in client.describe_images(params) if image.image_id == pin.image_id), None)
    return found if found is not None else fetch_pinned(pin.image_id, pin.region, query, client)


def _pinned_images(pins: Mapping[str, Pin], selections: Selections, client: Client) -> dict[str, Image | str]:
    """The image of every pin of a selection of the file, as :func:`_pinned_image` finds it."""
    names = [name for name in selections.queries if name in pins]
    return _in_parallel(
        names, lambda name: _pinned_image(name, pins[name], selections.queries[name], client), selections
    )


def _past_eol(found: Mapping[str, Image | str], pins: Mapping[str, Pin]) -> list[str]:
    """One report line per pin whose image is past its end of life (today, UTC)."""
    today = _query.utc_today()
    lines = []
    for name, image in found.items():
        if isinstance(image, Image) and image.past_eol(today) and image.eol_date is not None:
            lines.append(f"  ! {name}: {pins[name].describe()} is past its end of life ({image.eol_date:%Y/%m/%d})")
    return lines


def _warn_past_eol(found: Mapping[str, Image | str], pins: Mapping[str, Pin], selections: Selections) -> None:
    """``lock``: a warning on stderr for each selection just pinned to an image past its end of life."""
    today = _query.utc_today()
    for name, image in found.items():
        query, region = selections.queries[name], pins[name].region
        warning = eol_warning(image, query, region, today) if isinstance(image, Image) else None
        if warning is not None:
            sys.stderr.write(f"warning: selection {name!r}: {warning}\n")


_EOL_ADVICE = (
    "A pin past its end of life stays until its selection changes: add exclude_eol = true (or supported_until) "
    "to the selection, or choose a newer system, then run 'ucloud-images lock --update NAME'.\n"
)


def _report_eol(lines: list[str], out: TextIO) -> None:
    if lines:
        out.write(f"{len(lines)} pin(s) past their end of life:\n")
        out.writelines(line + "\n" for line in lines)
        out.write(_EOL_ADVICE)


# -- the `lock` command -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Change:
    name: str
    old: Pin | None
    new: Pin | None
    note: str = ""

    def line(self, selection_file: Path) -> str:
        if self.old is None and self.new is not None:
            return f"  + {self.name}: {self.new.describe()} (not in the lockfile yet)"
        if self.new is None and self.old is not None:
            return f"  - {self.name}: {self.old.describe()} (no longer in {selection_file})"
        assert self.old is not None and self.new is not None
        note = f" ({self.note})" if self.note else ""
        if self.old.image_id == self.new.image_id:
            return f"  ~ {self.name}: {self.old.image_id} unchanged{note}"
        return f"  ~ {self.name}: {self.old.describe()} -> {self.new.describe()}{note}"


def _query_note(old: Pin, query: ImageQuery, region: str) -> str:
    fields = [field for field, _, _ in old.differences(query, region)]
    if query.region != old.query.region and "region" not in fields:
        fields.insert(0, "region")
    return f"query changed in the selection file: {', '.join(fields)}" if fields else ""


def _changes(old: Mapping[str, Pin], new: Mapping[str, Pin]) -> list[_Change]:
    """Every selection whose pin differs between ``old`` and ``new``, in file order, then removed ones."""
    changes: list[_Change] = []
    for name, pin in new.items():
        before = old.get(name)
        if before is None:
            changes.append(_Change(name, None, pin))
        elif not before.same_as(pin):
            changes.append(_Change(name, before, pin, _query_note(before, pin.query, pin.region)))
    changes.extend(_Change(name, pin, None) for name, pin in old.items() if name not in new)
    return changes


def _keep_unchanged(old: Mapping[str, Pin], new: Mapping[str, Pin]) -> dict[str, Pin]:
    """A re-resolved pin that matches the old one keeps the old entry, so its ``locked_at`` does not churn."""
    kept: dict[str, Pin] = {}
    for name, pin in new.items():
        before = old.get(name)
        kept[name] = before if before is not None and before.same_as(pin) else pin
    return kept


def _stale(old: Mapping[str, Pin], selections: Selections, regions: Mapping[str, str]) -> list[str]:
    """Selections whose pin cannot serve the file's query: missing from the lockfile, or for another query."""
    return [
        name
        for name, query in selections.queries.items()
        if name not in old or not old[name].answers(query, regions[name])
    ]


def _cmd_lock(args: argparse.Namespace, out: TextIO) -> int:
    from ._cli import _settings_args

    selections = read_selections(args.file)
    lock_path = Path(args.lockfile) if args.lockfile else selections.path.parent / DEFAULT_LOCKFILE
    checking = bool(args.check or args.verify)
    for name in args.update or ():
        if name not in selections.queries:
            raise LockfileError(
                f"Selection {name!r} is not in {selections.path}; its selections are {', '.join(selections.queries)}."
            )
    # A write holds the lockfile's lock from reading the old pins to renaming the new file, so two `lock`
    # runs (say `--update a` and `--update b`) take turns and neither loses the other's pin. --check and
    # --verify only read, and a write never shows a half-written file, so they take no lock.
    with contextlib.nullcontext() if checking else exclusive(lock_path, notice=sys.stderr):
        old = read_lockfile(lock_path) if checking or lock_path.exists() else {}
        with _settings_args(args) as settings_args:
            arguments = _settings_arguments(selections, settings_args)
            regions = _regions(selections, _configured_region(arguments))
            settings = resolve_settings(**arguments, require_region=False)
            client = shared_client(settings)
            if args.verify:
                return _verify(selections, old, regions, client, lock_path, out)
            wanted = list(selections.queries)
            if args.update:
                stale = _stale(old, selections, regions)
                wanted = [name for name in wanted if name in args.update or name in stale]
            resolved = _resolve(wanted, selections, client)
            found = _pinned_images(old if args.check else resolved, selections, client)  # listed: no request
        if args.check:
            code = _report_check(_changes(old, resolved), selections, lock_path, out)
            _report_eol(_past_eol(found, old), out)
            return code
        _warn_past_eol(found, resolved, selections)
        new = {name: resolved.get(name) or old[name] for name in selections.queries}
        new = _keep_unchanged(old, new)
        changes = _changes(old, new)
        if lock_path.exists() and not changes:
            out.write(f"{lock_path} is up to date: {len(new)} selection(s) pinned.\n")
            return 0
        write_lockfile(lock_path, new)
    out.write(f"Wrote {lock_path}: {len(changes)} of {len(new)} selection(s) changed.\n")
    out.writelines(change.line(selections.path) + "\n" for change in changes)
    return 0


def _report_check(changes: list[_Change], selections: Selections, lock_path: Path, out: TextIO) -> int:
    if not changes:
        out.write(f"{lock_path} is up to date: every selection of {selections.path} resolves to its pin.\n")
        return 0
    out.write(f"{lock_path} is out of date: {len(changes)} selection(s) would change.\n")
    out.writelines(change.line(selections.path) + "\n" for change in changes)
    out.write("Run 'ucloud-images lock' to re-pin every selection, or 'ucloud-images lock --update NAME' for one.\n")
    return EXIT_OUT_OF_DATE


def _verify(
    selections: Selections,
    old: Mapping[str, Pin],
    regions: Mapping[str, str],
    client: Client,
    lock_path: Path,
    out: TextIO,
) -> int:
    """Without re-resolving: does the lockfile answer the file, and is every pinned image still usable?"""
    problems: list[str] = []
    for name, query in selections.queries.items():
        pin = old.get(name)
        if pin is None:
            problems.append(f"  + {name}: not in the lockfile yet")
        elif not pin.answers(query, regions[name]):
            note = _query_note(pin, query, regions[name])
            problems.append(f"  ~ {name}: pinned {pin.image_id} for another query ({note})")
    problems.extend(f"  - {name}: no longer in {selections.path}" for name in old if name not in selections.queries)
    present = [name for name in selections.queries if name in old]
    found = _in_parallel(
        present,
        lambda name: fetch_pinned(old[name].image_id, old[name].region, selections.queries[name], client),
        selections,
    )
    problems.extend(f"  ! {name}: {problem}" for name, problem in found.items() if isinstance(problem, str))
    if not problems:
        out.write(f"{lock_path} is consistent with {selections.path} and every pinned image is usable.\n")
        _report_eol(_past_eol(found, old), out)
        return 0
    out.write(f"{lock_path} needs attention: {len(problems)} problem(s).\n")
    out.writelines(problem + "\n" for problem in problems)
    out.write("Run 'ucloud-images lock --update NAME' to re-pin a selection.\n")
    _report_eol(_past_eol(found, old), out)
    return EXIT_OUT_OF_DATE


def register_cli(subparsers: Any) -> None:
    """Add ``ucloud-images lock`` to the command's subparsers."""
    from ._cli import _add_settings_flags

    parser = subparsers.add_parser(
        "lock",
        help=f"Pin every selection of {DEFAULT_SELECTION_FILE} in {DEFAULT_LOCKFILE} (--check for CI).",
        description=(
            f"Resolve every selection of {DEFAULT_SELECTION_FILE} and write the pins to {DEFAULT_LOCKFILE}. "
            f"--check and --verify write nothing and exit {EXIT_OUT_OF_DATE} when the lockfile is out of date."
        ),
    )
    parser.add_argument(
        "--file", default=DEFAULT_SELECTION_FILE, metavar="PATH",
        help=f"Selection file (default {DEFAULT_SELECTION_FILE}).",
    )
    parser.add_argument(
        "--lockfile", metavar="PATH", help=f"Lockfile (default {DEFAULT_LOCKFILE} next to the selection file)."
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true",
        help=f"Re-resolve every selection; print the differences and exit {EXIT_OUT_OF_DATE} if any pin would change.",
    )
    mode.add_argument(
        "--update", nargs="+", metavar="NAME",
        help="Re-pin only these selections (and any not yet locked or whose query changed); keep every other pin.",
    )
    mode.add_argument(
        "--verify", action="store_true",
        help="Without re-resolving, check the lockfile answers the selection file and every pinned image still "
        f"exists and is usable (one request per pin); exit {EXIT_OUT_OF_DATE} if not.",
    )
    _add_settings_flags(parser)
    parser.set_defaults(handler=_cmd_lock)
