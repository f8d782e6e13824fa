"""``ucloud-images deprecate IMAGE_ID --replacement ID|NAME[@CHANNEL]``: reading a pin on it warns."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

from .._display import shown as server_text
from .._errors import LockfileError
from .common import EXIT_OK
from .ledger import IMAGE_ID_FORMS, add_lockfile_flag, check_image_id, edit_lockfile, is_image_id, lockfile_at

if TYPE_CHECKING:
    from .._lockfile.lockfile import Lockfile

__all__ = ["register", "run"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "deprecate",
        help="Deprecate an image: reading a pin on it warns, naming the replacement.",
        description="Record in the lockfile that IMAGE_ID is deprecated in favour of --replacement (an image ID, or "
        "a selection NAME or NAME@CHANNEL of the lockfile): reading a pin on it warns in every face. No API call.",
    )
    parser.add_argument("image_id", metavar="IMAGE_ID", help="The image to deprecate.")
    parser.add_argument("--replacement", required=True, metavar="ID|NAME[@CHANNEL]", help="What to use instead.")
    parser.add_argument("--reason", metavar="TEXT", help="Why.")
    add_lockfile_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from .._lockfile.lockfile import parse_lock_ref
    image_id = check_image_id(args.image_id, "IMAGE_ID")
    replacement = str(args.replacement)

    def deprecate(lockfile: Lockfile) -> Lockfile:
        if not is_image_id(replacement):
            try:
                name, channel = parse_lock_ref(replacement)
            except LockfileError:
                raise LockfileError(
                    f"--replacement {server_text(replacement, 80)!r} is neither an image ID ({IMAGE_ID_FORMS}) nor "
                    "a selection NAME or NAME@CHANNEL."
                ) from None
            held = lockfile.channel(name, channel)  # an unknown or empty selection or channel is its own sentence
            if any(image.image_id == image_id for image in held.values()):
                raise LockfileError(
                    f"{replacement} holds {image_id} itself, so it cannot replace it; name an image or a channel that "
                    "holds another image."
                )
        elif replacement == image_id:
            raise LockfileError(f"An image cannot be its own replacement: --replacement must differ from {image_id}.")
        return lockfile.with_deprecation(image_id, replacement, args.reason or None)

    path = lockfile_at(args)

    def report(before: Lockfile, after: Lockfile) -> str:
        text = f"Deprecated {image_id} in favour of {replacement} in {path}.\n"
        holders = after.holders(image_id)
        if holders:
            text += "Held by: " + ", ".join(f"{holder.ref} [{holder.region}]" for holder in holders) + "\n"
        return text

    edit_lockfile(path, deprecate, report, out)
    return EXIT_OK
