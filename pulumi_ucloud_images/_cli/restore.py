"""``ucloud-images restore IMAGE_ID``: lift a revocation."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

from .._errors import LockfileError
from .common import EXIT_OK
from .ledger import add_lockfile_flag, check_image_id, edit_lockfile, lockfile_at

if TYPE_CHECKING:
    from .._lockfile.lockfile import Lockfile

__all__ = ["register", "run"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "restore",
        help="Lift the revocation of an image.",
        description="Remove the revocation of IMAGE_ID from the lockfile (recorded in its history). No API call.",
    )
    parser.add_argument("image_id", metavar="IMAGE_ID", help="The revoked image.")
    parser.add_argument("--note", metavar="TEXT", help="Why, for the history.")
    add_lockfile_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    image_id = check_image_id(args.image_id, "IMAGE_ID")

    def restore(lockfile: Lockfile) -> Lockfile:
        if lockfile.revocation(image_id) is None:
            revoked = ", ".join(sorted(lockfile.revocations)) or "none"
            raise LockfileError(f"Image {image_id} is not revoked in {lockfile.path} (revoked: {revoked}).")
        return lockfile.without_revocation(image_id, args.note or "")

    path = lockfile_at(args)
    edit_lockfile(path, restore, lambda before, after: f"Restored {image_id} in {path}.\n", out)
    return EXIT_OK
