"""``ucloud-images history [NAME]``: what moved which pin or channel, and what was revoked, newest first."""

from __future__ import annotations

import argparse
from typing import TextIO

from .._display import json_for_people
from .._display import shown as server_text
from .common import EXIT_OK
from .ledger import add_lockfile_flag, lockfile_at, ref_of

__all__ = ["register", "run"]

_COLUMNS = ("TIME", "ACTION", "PIN", "REGION", "OLD", "NEW", "NOTE")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "history",
        help="Print the lockfile's history, newest first (--output json for machines).",
        description="Print every change the lockfile records (lock, update, promote, rollback, revoke, restore, "
        "deprecate), newest first; with NAME, only that selection's and the images it has held. No API call.",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="Only this selection.")
    parser.add_argument("--output", choices=("table", "json"), default="table", help="table (default) or json.")
    add_lockfile_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from .._lockfile.lockfile import Lockfile
    lockfile = Lockfile.load(lockfile_at(args))
    entries = list(reversed(lockfile.history))
    if args.name is not None:
        lockfile.selection(args.name)  # an unknown name is its sentence
        held = {entry.new_image for entry in lockfile.history if entry.selection == args.name} | {
            entry.old_image for entry in lockfile.history if entry.selection == args.name
        }
        entries = [
            entry for entry in entries
            if entry.selection == args.name or (entry.selection is None and entry.new_image in held)
        ]
    if args.output == "json":
        out.write(json_for_people([entry.model_dump(mode="json") for entry in entries], indent=2) + "\n")
        return EXIT_OK
    rows = [
        (
            entry.time, entry.action,
            ref_of(entry.selection, entry.channel or "") if entry.selection else "",
            entry.region or "", entry.old_image or "", entry.new_image or "", server_text(entry.note, 60),
        )
        for entry in entries
    ]
    widths = [max(len(str(row[i])) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    for row in [_COLUMNS, *rows]:
        out.write("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n")
    return EXIT_OK
