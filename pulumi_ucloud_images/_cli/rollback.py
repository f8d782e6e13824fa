"""``ucloud-images rollback NAME --channel CHANNEL``: put a channel back to the images it held before."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

from .._errors import LockfileError
from .common import EXIT_OK
from .ledger import add_lockfile_flag, check_movable, edit_lockfile, lockfile_at, ref_of

if TYPE_CHECKING:
    from .._lockfile.lockfile import Lockfile

__all__ = ["register", "run"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "rollback",
        help="Put a channel of a selection back to the images it held before (every region at once).",
        description="Put channel --channel of selection NAME back to the images it held before its last move, read "
        "from the lockfile's history; each rollback goes one step further back. No API call.",
    )
    parser.add_argument("name", metavar="NAME", help="The selection.")
    parser.add_argument("--channel", required=True, metavar="CHANNEL", help="The channel to roll back.")
    parser.add_argument("--note", metavar="TEXT", help="Why, for the history.")
    add_lockfile_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from .._lockfile.lockfile import now_iso
    name, channel = args.name, args.channel
    ref = ref_of(name, channel)

    def rollback(lockfile: Lockfile) -> Lockfile:
        check_movable(lockfile, name, channel, "roll back")
        previous = lockfile.previous(name, channel)
        if previous is None:
            raise LockfileError(
                f"The history of {lockfile.path} holds no earlier images for {ref}, so there is nothing to roll back "
                f"to; move it with 'ucloud-images promote {name} --to {channel}'."
            )
        at = now_iso()
        images = {}
        for region, image_id in sorted(previous.items()):
            record = lockfile.record(image_id)
            if record is None:
                raise LockfileError(
                    f"{lockfile.path} no longer knows image {image_id}, which {ref} held in {region}; move it with "
                    f"'ucloud-images promote {name} --to {channel}'."
                )
            revocation = lockfile.revocation(image_id)
            if revocation is not None and revocation.in_force():
                raise LockfileError(
                    f"Rolling {ref} back would put it on image {image_id} in {region}, revoked since {revocation.day} "
                    f"({revocation.reason}); rollback refuses it: run 'ucloud-images promote {name} --to {channel}' "
                    f"for the image another channel holds, or 'ucloud-images restore {image_id}' if the revocation "
                    "was a mistake."
                )
            images[region] = record.model_copy(update={"locked_at": at})
        return lockfile.with_images(name, channel, images, "rollback", args.note or "", time=at)

    path = lockfile_at(args)

    def report(before: Lockfile, after: Lockfile) -> str:
        lines = [f"Rolled {ref} back in {path}:\n"]
        lines += [f"  {entry.region}: {entry.old_image or '(empty)'} -> {entry.new_image or '(empty)'}\n"
                  for entry in after.history[len(before.history):]]
        for region, image in sorted(after.selection(name).channels[channel].items()):
            verdict = after.verdict(image.image_id, ref)
            if verdict.error is not None:
                lines.append(f"  note: {region}: {verdict.error}\n")
        return "".join(lines)

    edit_lockfile(path, rollback, report, out)
    return EXIT_OK
