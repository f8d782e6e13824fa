"""``ucloud-images revoke IMAGE_ID --reason TEXT [--at YYYY-MM-DD]``: record that an image must not be used."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TextIO

from .._errors import LockfileError
from .common import EXIT_OK
from .ledger import add_lockfile_flag, check_image_id, edit_lockfile, lockfile_at, midnight, revocation_day

if TYPE_CHECKING:
    from .._lockfile.lockfile import Lockfile

__all__ = ["register", "run"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "revoke",
        help="Revoke an image: reading a pin on it fails from --at on (a warning before).",
        description="Record in the lockfile that IMAGE_ID is revoked: from --at on (default now) reading any pin or "
        "channel that holds it is an error in every face, before it a warning; 'lock' never pins it and 'promote' "
        "refuses it. No API call.",
    )
    parser.add_argument("image_id", metavar="IMAGE_ID", help="The image to revoke.")
    parser.add_argument("--reason", required=True, metavar="TEXT", help="Why (shown to everyone who reads it).")
    parser.add_argument("--at", type=revocation_day, metavar="YYYY-MM-DD",
                        help="The day (UTC) it takes effect (default: now).")
    add_lockfile_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from .._lockfile.lockfile import now_iso
    image_id = check_image_id(args.image_id, "IMAGE_ID")
    reason = str(args.reason).strip()
    if not reason:
        raise LockfileError("--reason must not be empty: say why the image is revoked.")
    at = midnight(args.at) if args.at is not None else now_iso()
    path = lockfile_at(args)

    def report(before: Lockfile, after: Lockfile) -> str:
        revocation = after.revocation(image_id)
        assert revocation is not None
        when = "now" if revocation.in_force(datetime.now(timezone.utc)) else f"from {revocation.day}"
        return f"Revoked {image_id} {when} in {path}.\n" + _held_by(after, image_id)

    edit_lockfile(path, lambda lockfile: lockfile.with_revocation(image_id, reason, at), report, out)
    return EXIT_OK


def _held_by(lockfile: Lockfile, image_id: str) -> str:
    holders = lockfile.holders(image_id)
    if holders:
        return "Held by: " + ", ".join(f"{holder.ref} [{holder.region}]" for holder in holders) + "\n"
    return "No pin or channel holds it.\n"
