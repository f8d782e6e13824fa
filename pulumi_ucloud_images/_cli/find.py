"""``ucloud-images find``: the one image ID that matches (exit 3 for none, 4 for several)."""

from __future__ import annotations

import argparse
from typing import TextIO

from .._display import json_for_people
from .._errors import InvalidQueryError
from .._settings.settings import CLI_FACE, LOOKUP_ARGUMENTS, resolve_region
from .common import (
    EXIT_OK,
    add_query_flags,
    add_settings_flags,
    flag_names,
    query_from,
    settings_args,
    settings_for,
    warn,
)

__all__ = ["register", "run"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    find = commands.add_parser("find", help="Print the one image ID that matches (exit 3 none, 4 several).")
    add_query_flags(find)
    add_settings_flags(find)
    find.add_argument("--output", choices=("id", "json"), default="id", help="id (default) or json.")
    pins = find.add_argument_group("from the lockfile (no API call)")
    pins.add_argument(
        "--lock", metavar="NAME[@CHANNEL]",
        help="Print the image a lockfile pin holds (with --region for a pin over several regions), no API call.",
    )
    pins.add_argument("--lockfile", metavar="PATH", help="Lockfile for --lock (default: the nearest one upwards).")
    find.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from .._lookup import lookup_images
    if args.lock is not None:
        return _locked(args, out)
    if args.lockfile is not None:
        raise InvalidQueryError("--lockfile works only with --lock NAME[@CHANNEL]; pass --lock, or leave it out.")
    query = query_from(args)
    with settings_args(args) as arguments:
        result = lookup_images(query, settings=settings_for(query, arguments), naming=flag_names())
    for warning in result.warnings:
        warn(warning)
    if args.output == "json":
        out.write(json_for_people(result.to_json()) + "\n")
    else:
        out.write(f"{result.image_id}\n")
    return EXIT_OK


def _locked(args: argparse.Namespace, out: TextIO) -> int:
    """``find --lock web@prod``: the pinned image, read from the lockfile; no API call, no keys."""
    from .._lockfile.pins import read_locked
    query = query_from(args)
    given = [flag for name, flag in flag_names().items() if name != "region" and name in query.model_fields_set]
    given += [f"--{name.replace('_', '-')}" for name in LOOKUP_ARGUMENTS if getattr(args, name, None) is not None]
    given += ["--emulator"] * bool(args.emulator) + ["--verbose"] * bool(args.verbose)
    if given:
        raise InvalidQueryError(
            f"--lock reads the pin from the lockfile without an API call, so {', '.join(given)} would do nothing; "
            "leave them out (only --region picks a region of the pin)."
        )
    read = read_locked(args.lock, args.lockfile, query.region, configured=lambda: resolve_region(face=CLI_FACE))
    for warning in read.warnings:
        warn(warning)
    if args.output == "json":
        out.write(json_for_people({"ref": read.ref, "lockfile": str(read.path), **read.pin.to_json()}) + "\n")
    else:
        out.write(f"{read.pin.image_id}\n")
    return EXIT_OK
