"""``ucloud-images lock``: pin every selection of ``ucloud-images.toml`` in ``ucloud-images.lock.json``.

Plain ``lock`` and ``lock --update`` write (atomically, one writer at a time); ``--check`` and ``--verify``
only read, and exit 1 when the lockfile is out of date. The files are :mod:`.._lockfile` and
:mod:`.._selection_file`; resolving and comparing pins is :mod:`.._pins`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .. import _query
from .._display import shown as server_text
from .._errors import LockfileError
from .._lockfile.defaults import DEFAULT_LOCKFILE, DEFAULT_SELECTION_FILE, LATEST, LOCKFILE_VERSION
from .._settings.settings import CLI_FACE, ConfigSource, resolve_region, resolve_settings
from .common import EXIT_OK, OutputError, add_settings_flags, settings_args, warn

if TYPE_CHECKING:
    from .._api.client import Client
    from .._api.image import Image
    from .._lockfile.lockfile import Action, Lockfile, Pin
    from .._lockfile.resolver import Change, Place
    from .._lockfile.selections import SelectionFile

__all__ = ["EXIT_OUT_OF_DATE", "register", "run"]

# `lock --check` / `lock --verify` found a difference: distinct from 0 and from the error codes 2-5.
EXIT_OUT_OF_DATE = 1
_EOL_ADVICE = (
    "A pin past its end of life stays until its selection changes: add exclude_eol = true (or supported_until) "
    "to the selection, or choose a newer system, then run 'ucloud-images lock --update NAME'.\n"
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
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
    add_settings_flags(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from .._lockfile.lockfile import Lockfile
    from .._lockfile.resolver import changes, keep_unchanged, latest_pins, pinned_images, places_of, resolve_pins, stale
    from .._lockfile.selections import read_selections
    from .._lockfile.writer import exclusive, write_lockfile
    declared = read_selections(args.file)
    lock_path = lockfile_path(args, declared)
    for name in args.update or ():
        if name not in declared.queries:
            raise LockfileError(
                f"Selection {name!r} is not in {declared.path}; its selections are {', '.join(declared.queries)}."
            )
    if args.check or args.verify:
        return _check(args, declared, lock_path, out)
    # A write holds the lockfile's lock from reading the old pins to renaming the new file, so two `lock`
    # runs (say `--update a` and `--update b`) take turns and neither loses the other's pin.
    with exclusive(lock_path, notice=sys.stderr):
        before = Lockfile.load(lock_path) if lock_path.exists() else Lockfile.empty(lock_path)
        old = latest_pins(before)
        with _session(args, declared) as (client, regions):
            wanted = places_of(declared.queries, regions)
            if args.update:
                unpinned = stale(old, declared, regions)
                wanted = [place for place in wanted if place[0] in args.update or place in unpinned]
            resolved = resolve_pins(wanted, declared, client, _revoked_now(before))
            found = pinned_images(resolved, declared, client)  # listed by the lookups: no request
        _warn_past_eol(found, resolved, declared)
        every = places_of(declared.queries, regions)
        new = keep_unchanged(old, {place: resolved.get(place) or old[place] for place in every})
        moved = changes(old, new, declared)
        after = _with_latest(before, declared, new, "update" if args.update else "lock")
        if lock_path.exists() and not moved and after == before and before.version == LOCKFILE_VERSION:
            out.write(f"{lock_path} is up to date: {len(new)} pin(s).\n")
            return EXIT_OK
        lines = [f"Wrote {lock_path}: {len(moved)} of {len(new)} pin(s) changed.\n",
                 *(change.line(declared.path) + "\n" for change in moved)]

        def report() -> None:  # written before the new lockfile replaces the old: never a change unreported
            try:
                out.writelines(lines)
                out.flush()
            except OutputError as exc:
                raise OutputError(f"{exc}; {lock_path} was left unchanged") from None

        write_lockfile(lock_path, after, before, before_replace=report)
    return EXIT_OK


def lockfile_path(args: argparse.Namespace, declared: SelectionFile) -> Path:
    return Path(args.lockfile) if args.lockfile else declared.path.parent / DEFAULT_LOCKFILE


def _revoked_now(lockfile: Lockfile) -> frozenset[str]:
    """Images ``lock`` must not pin: revoked, from the revocation's date on."""
    return frozenset(image_id for image_id, revocation in lockfile.revocations.items() if revocation.in_force())


def _with_latest(before: Lockfile, declared: SelectionFile, new: Mapping[Place, Pin], action: Action) -> Lockfile:
    """``before`` with every selection's own pin as resolved (each move recorded in history), its declared
    channels present, and selections no longer in the file removed (their last pins recorded as gone)."""
    after = before
    for name in [name for name in before.selections if name not in declared.queries]:
        for channel in sorted(before.selections[name].channels):
            after = after.with_images(name, channel, {}, action, f"no longer in {declared.path}")
        after = after.without_selections([name])
    for name, query in declared.queries.items():
        images = {region: pin.held() for (selection, region), pin in new.items() if selection == name}
        after = after.with_selection(name, query, declared.channels(name))
        after = after.with_images(name, LATEST, images, action)
    return after


def _check(args: argparse.Namespace, declared: SelectionFile, lock_path: Path, out: TextIO) -> int:
    """``--check`` and ``--verify``: they only read, and a write never shows a half-written file, so no lock."""
    from .._lockfile.lockfile import Lockfile
    from .._lockfile.resolver import changes, latest_pins, pinned_images, places_of, resolve_pins
    lockfile = Lockfile.load(lock_path)
    old = latest_pins(lockfile)
    with _session(args, declared) as (client, regions):
        if args.verify:
            return _verify(declared, old, regions, client, lock_path, out)
        resolved = resolve_pins(places_of(declared.queries, regions), declared, client, _revoked_now(lockfile))
        found = pinned_images(old, declared, client)  # listed by the lookups: no request
    code = _report_check(changes(old, resolved, declared), declared, lock_path, out)
    code = max(code, _report_governance(lockfile, out))
    _report_eol(_past_eol(found, old, declared), out)
    return code


def _report_governance(lockfile: Lockfile, out: TextIO) -> int:
    """What ``--check`` finds in the lockfile itself: pins on revoked images, pins no history entry explains,
    and pins whose regions hold differently named images."""
    now = datetime.now(timezone.utc)
    revoked: list[str] = []
    scheduled: list[str] = []
    for holder in lockfile.holdings():
        revocation = lockfile.revocation(holder.pin.image_id)
        if revocation is None:
            continue
        since = "since" if revocation.in_force(now) else "from"
        reason = server_text(revocation.reason, 200)
        line = f"  ! {holder.ref} [{holder.region}]: {holder.pin.image_id} is revoked {since} {revocation.day} "
        line += f"({reason})"
        (revoked if revocation.in_force(now) else scheduled).append(line)
    unexplained = [
        f"  ? {holder.ref} [{holder.region}]: {holder.pin.image_id} (no history entry put it there; a hand edit?)"
        for holder in lockfile.unexplained()
    ]
    mixed = []
    for name, selection in sorted(lockfile.selections.items()):
        for channel, held in sorted(selection.channels.items()):
            names = {image.image_name for image in held.values()}
            if len(names) > 1:
                ref = name if channel == LATEST else f"{name}@{channel}"
                shown = ", ".join(f"{region}: {image.image_name!r}" for region, image in sorted(held.items()))
                mixed.append(f"  ≠ {ref}: its regions hold differently named images ({server_text(shown, 400)})")
    if revoked:
        out.write(f"{len(revoked)} pin(s) on revoked images:\n")
        out.writelines(line + "\n" for line in revoked)
        out.write(
            "Move them on with 'ucloud-images promote', 'ucloud-images rollback' or 'ucloud-images lock --update'.\n"
        )
    if scheduled:
        out.write(f"{len(scheduled)} pin(s) on images with a revocation scheduled:\n")
        out.writelines(line + "\n" for line in scheduled)
    if unexplained:
        out.write(f"{len(unexplained)} pin(s) that no history entry explains:\n")
        out.writelines(line + "\n" for line in unexplained)
        out.write("Set them with 'ucloud-images lock --update NAME' or 'ucloud-images promote'.\n")
    if mixed:
        out.write(f"{len(mixed)} pin(s) whose regions hold different builds:\n")
        out.writelines(line + "\n" for line in mixed)
    return EXIT_OUT_OF_DATE if revoked or unexplained or mixed else EXIT_OK


@contextlib.contextmanager
def _session(
    args: argparse.Namespace, declared: SelectionFile
) -> Iterator[tuple[Client, dict[str, tuple[str, ...]]]]:
    """The client selections resolve through, and each selection's regions (a missing one said before keys)."""
    from .._api.client import shared_client
    from .._lockfile.resolver import selection_regions
    with settings_args(args) as given:
        arguments = _settings_arguments(declared, given)
        regions = selection_regions(declared, _configured_region(arguments))
        settings = resolve_settings(**arguments, require_region=False)
        yield shared_client(settings), regions


def _settings_arguments(declared: SelectionFile, given: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of :func:`resolve_settings`: the command's flags, then ``[settings]`` (as the config
    source, named as such in messages), then the environment and the profile files.

    With ``--emulator`` the endpoint and keys are the emulator's, so of ``[settings]`` only the region counts,
    and the emulator's demo region is only a fallback behind it.
    """
    arguments = dict(given)
    file_settings = declared.settings.given()
    if "config" in arguments:  # --emulator: it brings its own (empty) config, environment and home
        region = file_settings.get("region") or arguments.pop("region", None)
        return {**arguments, "region": region, "face": CLI_FACE}
    face = CLI_FACE.with_config({name: f"{name} in [settings] of {declared.path}" for name in file_settings})
    return {**arguments, "config": ConfigSource(file_settings.get, namespace=None), "face": face}


def _configured_region(arguments: Mapping[str, Any]) -> str | None:
    """The region the settings name, found without the keys (so a missing region is said first)."""
    names = ("region", "profile", "env", "config", "home", "face")
    return resolve_region(**{name: arguments[name] for name in names if name in arguments})


def _report_check(changed: Sequence[Change], declared: SelectionFile, lock_path: Path, out: TextIO) -> int:
    if not changed:
        out.write(f"{lock_path} is up to date: every selection of {declared.path} resolves to its pin.\n")
        return EXIT_OK
    out.write(f"{lock_path} is out of date: {len(changed)} pin(s) would change.\n")
    out.writelines(change.line(declared.path) + "\n" for change in changed)
    out.write("Run 'ucloud-images lock' to re-pin every selection, or 'ucloud-images lock --update NAME' for one.\n")
    return EXIT_OUT_OF_DATE


def _verify(
    declared: SelectionFile,
    old: Mapping[Place, Pin],
    regions: Mapping[str, Sequence[str]],
    client: Client,
    lock_path: Path,
    out: TextIO,
) -> int:
    """Without re-resolving: does the lockfile answer the file, and is every pinned image still usable?"""
    from .._lockfile.resolver import label, query_note, verified_images
    problems: list[str] = []
    for name, query in declared.queries.items():
        for region in regions[name]:
            place = (name, region)
            pin = old.get(place)
            if pin is None:
                problems.append(f"  + {label(place, declared)}: not in the lockfile yet")
            elif not pin.answers(query, region):
                note = query_note(pin, query, region)
                problems.append(f"  ~ {label(place, declared)}: pinned {pin.image_id} for another query ({note})")
    problems.extend(
        f"  - {label(place, declared)}: no longer in {declared.path}"
        for place in old if place[0] not in declared.queries or place[1] not in regions[place[0]]
    )
    found = verified_images(old, declared, client)
    problems.extend(
        f"  ! {label(place, declared)}: {problem}" for place, problem in found.items() if isinstance(problem, str)
    )
    if not problems:
        out.write(f"{lock_path} is consistent with {declared.path} and every pinned image is usable.\n")
        _report_eol(_past_eol(found, old, declared), out)
        return EXIT_OK
    out.write(f"{lock_path} needs attention: {len(problems)} problem(s).\n")
    out.writelines(problem + "\n" for problem in problems)
    out.write("Run 'ucloud-images lock --update NAME' to re-pin a selection.\n")
    _report_eol(_past_eol(found, old, declared), out)
    return EXIT_OUT_OF_DATE


def _past_eol(
    found: Mapping[Place, Image | str], pins: Mapping[Place, Pin], declared: SelectionFile
) -> list[str]:
    """One report line per pin whose image is past its end of life (today, UTC)."""
    from .._api.image import Image
    from .._lockfile.resolver import label
    today = _query.utc_today()
    lines = []
    for place, image in found.items():
        if isinstance(image, Image) and image.past_eol(today) and image.eol_date is not None:
            lines.append(
                f"  ! {label(place, declared)}: {pins[place].describe()} is past its end of life "
                f"({image.eol_date:%Y/%m/%d})"
            )
    return lines


def _warn_past_eol(found: Mapping[Place, Image | str], pins: Mapping[Place, Pin], declared: SelectionFile) -> None:
    """``lock``: a warning on stderr for each pin just made on an image past its end of life."""
    from .._api.image import Image
    from .._lockfile.resolver import label
    from .._select import eol_warning
    today = _query.utc_today()
    for place, image in found.items():
        query, region = declared.queries[place[0]], pins[place].region
        warning = eol_warning(image, query, region, today) if isinstance(image, Image) else None
        if warning is not None:
            warn(f"selection {label(place, declared)!r}: {warning}")


def _report_eol(lines: list[str], out: TextIO) -> None:
    if lines:
        out.write(f"{len(lines)} pin(s) past their end of life:\n")
        out.writelines(line + "\n" for line in lines)
        out.write(_EOL_ADVICE)
