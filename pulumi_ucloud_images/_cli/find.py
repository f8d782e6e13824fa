"""``ucloud-images find``: the one image ID that matches (exit 3 for none, 4 for several)."""

from __future__ import annotations

import argparse
from typing import TextIO

from .._display import json_for_people
from .._lookup import lookup_images
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
    find.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
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
