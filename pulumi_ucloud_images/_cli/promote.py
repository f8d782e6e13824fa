"""``ucloud-images promote NAME --to CHANNEL``: move a declared channel to what another channel holds."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

from .._errors import LockfileError
from .._lockfile.defaults import LATEST
from .common import EXIT_OK
from .ledger import add_lockfile_flag, check_movable, edit_lockfile, lockfile_at, ref_of

if TYPE_CHECKING:
    from .._lockfile.lockfile import Lockfile

__all__ = ["register", "run"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "promote",
        help="Move a channel of a selection to the images another channel holds (every region at once).",
        description="Move channel --to of selection NAME to the images channel --from holds (default: latest, the "
        "selection's own pin), in every region at once; recorded in the lockfile's history. No API call.",
    )
    parser.add_argument("name", metavar="NAME", help="The selection.")
    parser.add_argument("--to", required=True, metavar="CHANNEL", help="The channel to move (declared in channels).")
    parser.add_argument("--from", dest="source", default=LATEST, metavar="CHANNEL",
                        help=f"The channel whose images it takes (default {LATEST}).")
    parser.add_argument("--note", metavar="TEXT", help="Why, for the history.")
    add_lockfile_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from .._lockfile.lockfile import now_iso
    name, target, source = args.name, args.to, args.source

    def promote(lockfile: Lockfile) -> Lockfile:
        check_movable(lockfile, name, target, "promote to")
        images = lockfile.channel(name, source)
        for region, image in sorted(images.items()):
            revocation = lockfile.revocation(image.image_id)
            if revocation is not None and revocation.in_force():
                raise LockfileError(
                    f"{ref_of(name, source)} holds image {image.image_id} in {region}, revoked since "
                    f"{revocation.day} ({revocation.reason}); promote refuses it: run 'ucloud-images lock --update "
                    f"{name}' for a new image, or 'ucloud-images restore {image.image_id}' if the revocation was a "
                    "mistake."
                )
        at = now_iso()
        moved = {region: image.model_copy(update={"locked_at": at}) for region, image in images.items()}
        current = lockfile.selection(name).channels.get(target, {})
        if {r: i.image_id for r, i in current.items()} == {r: i.image_id for r, i in moved.items()}:
            return lockfile
        return lockfile.with_images(name, target, moved, "promote", args.note or "", time=at)

    path = lockfile_at(args)

    def report(before: Lockfile, after: Lockfile) -> str:
        if after == before:
            return f"{ref_of(name, target)} already holds what {ref_of(name, source)} holds; {path} is unchanged.\n"
        return f"Promoted {ref_of(name, source)} to {ref_of(name, target)} in {path}:\n" + "".join(
            f"  {entry.region}: {entry.old_image or '(empty)'} -> {entry.new_image}\n"
            for entry in after.history[len(before.history):]
        )

    edit_lockfile(path, promote, report, out)
    return EXIT_OK
