"""What the commands that keep the lockfile's registry share: finding the lockfile, editing it under its lock,
and the image IDs and dates they take (``promote``, ``rollback``, ``revoke``, ``restore``, ``deprecate``,
``history``). None of them calls the API.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .._display import shown as server_text
from .._errors import LockfileError
from .._lockfile.defaults import DEFAULT_LOCKFILE, LATEST
from .common import OutputError

if TYPE_CHECKING:
    from .._lockfile.lockfile import Lockfile

__all__ = [
    "IMAGE_ID_FORMS",
    "add_lockfile_flag",
    "check_image_id",
    "check_movable",
    "edit_lockfile",
    "is_image_id",
    "lockfile_at",
    "midnight",
    "ref_of",
    "revocation_day",
]

# The forms of image ID the API uses (ucloud-api-facts.md, section 4): uimage- and lower-case letters or digits,
# and in older regions 32 hex digits or a UUID.
_IMAGE_ID = re.compile(r"uimage-[a-z0-9]{4,40}|[0-9a-f]{32}|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}")
IMAGE_ID_FORMS = "uimage- followed by lower-case letters or digits, 32 hex digits, or a UUID"


def add_lockfile_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lockfile", metavar="PATH", help=f"Lockfile (default: the nearest {DEFAULT_LOCKFILE} upwards)."
    )


def lockfile_at(args: argparse.Namespace) -> Path:
    from .._lockfile.lockfile import find_lockfile
    return Path(args.lockfile) if args.lockfile else find_lockfile()


def is_image_id(text: str) -> bool:
    return _IMAGE_ID.fullmatch(text) is not None


def check_image_id(text: str, what: str) -> str:
    """``text`` if it is an image ID, else the one sentence saying what an image ID looks like."""
    if not is_image_id(text):
        raise LockfileError(f"{what} {server_text(text, 80)!r} is not an image ID ({IMAGE_ID_FORMS}).")
    return text


def _day(text: str) -> date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a date as YYYY-MM-DD") from None


_day.accepts = "a date as YYYY-MM-DD"  # type: ignore[attr-defined]
revocation_day = _day


def ref_of(name: str, channel: str) -> str:
    return name if channel == LATEST else f"{name}@{channel}"


def midnight(day: date) -> str:
    """``--at 2026-12-10``: from 00:00 UTC that day."""
    moment = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def check_movable(lockfile: Lockfile, name: str, channel: str, verb: str) -> None:
    """A channel ``promote`` or ``rollback`` may move: a declared one (``latest`` moves only with ``lock``)."""
    if channel == LATEST:
        raise LockfileError(
            f"Channel {LATEST!r} is the selection's own pin and moves only with 'ucloud-images lock --update "
            f"{name}'; {verb} a declared channel."
        )
    if channel not in lockfile.selection(name).channels:
        lockfile.channel(name, channel)  # raises the sentence naming the declared channels


def edit_lockfile(
    path: Path, change: Callable[[Lockfile], Lockfile], report: Callable[[Lockfile, Lockfile], str], out: TextIO
) -> None:
    """Read the lockfile, derive the new one with ``change`` and write it if it differs, all under the lock
    (two edits take turns; a refused change raises before anything is written).

    ``report(before, after)`` is the text the command prints. It is written before the new file replaces the
    old one, so a report that cannot be written (a full disk) leaves the lockfile as it was.
    """
    from .._lockfile.lockfile import Lockfile
    from .._lockfile.writer import exclusive, write_lockfile
    with exclusive(path, notice=sys.stderr):
        before = Lockfile.load(path)
        after = change(before)
        text = report(before, after)

        def say() -> None:
            try:
                out.write(text)
                out.flush()
            except OutputError as exc:
                raise OutputError(f"{exc}; {path} was left unchanged") from None

        if after == before:
            say()
        else:
            write_lockfile(path, after, before, before_replace=say)
