"""The ``ucloud-images`` command, for pipelines and people.

Flags are derived from :class:`ImageQuery`, so the command and the library never disagree. Exit codes:
0 found, 2 bad usage or input, 3 no match, 4 ambiguous, 5 API, network or credential error. Errors go to
stderr as one sentence; stdout carries only the answer. This module must not import pulumi or grpc: the
command has to start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, NoReturn, TextIO

from pydantic import ValidationError

from ._version import __version__
from ._errors import InvalidQueryError, UCloudImagesError
from ._image import Image
from ._query import ImageQuery, invalid_query_error

__all__ = ["main"]

EXIT_OK, EXIT_USAGE, EXIT_NO_MATCH, EXIT_AMBIGUOUS, EXIT_API = 0, 2, 3, 4, 5
_SETTING_FLAGS = ("profile", "base_url", "public_key", "private_key", "timeout")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one sentence on stderr first and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"ucloud-images: error: {message[0].upper()}{message[1:]}.\n")
        sys.stderr.write(f"Run '{self.prog} --help' for the flags.\n")
        raise SystemExit(EXIT_USAGE)


def _flag_names() -> dict[str, str]:
    return {name: str((field.json_schema_extra or {})["cli"]) for name, field in ImageQuery.model_fields.items()}  # type: ignore[index]


def _add_query_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    for name, field in ImageQuery.model_fields.items():
        extra: dict[str, Any] = field.json_schema_extra or {}  # type: ignore[assignment]
        flag = str(extra["cli"])
        if extra.get("flag"):
            group.add_argument(flag, dest=name, action="store_true", default=None, help=field.description)
        elif extra.get("repeatable"):
            group.add_argument(
                flag, dest=name, action="append", default=None, metavar="VALUE", help=f"{field.description} Repeatable."
            )
        else:
            group.add_argument(flag, dest=name, default=None, metavar="VALUE", help=field.description)
    settings = parser.add_argument_group("settings (default: UCLOUD_* environment, then ~/.ucloud profile files)")
    settings.add_argument("--profile", help="Profile of the UCloud CLI's ~/.ucloud files.")
    settings.add_argument("--base-url", help="API endpoint (default https://api.ucloud.cn).")
    settings.add_argument("--public-key", help="API public key.")
    settings.add_argument("--private-key", help="API private key (prefer UCLOUD_PRIVATE_KEY).")
    settings.add_argument("--timeout", type=float, metavar="SECONDS", help="Per-request timeout (default 30).")
    settings.add_argument(
        "--emulator",
        action="store_true",
        help="Run against the bundled DescribeImage emulator, started in-process with its demo keys (offline).",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ucloud-images", description="Find UCloud image IDs from declared filters, strictly.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    find = commands.add_parser("find", help="Print the one image ID that matches (exit 3 none, 4 several).")
    _add_query_flags(find)
    find.add_argument("--output", choices=("id", "json"), default="id", help="id (default) or json.")

    listing = commands.add_parser("list", help="List every matching image, newest first.")
    _add_query_flags(listing)
    listing.add_argument("--output", choices=("table", "json"), default="table", help="table (default) or json.")

    emulator = commands.add_parser("emulator", help="Serve the local DescribeImage emulator until interrupted.")
    emulator.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
    emulator.add_argument("--port", type=int, default=8642, help="Port (default 8642; 0 picks a free one).")
    emulator.add_argument("--catalog", help="JSON file of images (API spelling) instead of the bundled catalogue.")
    emulator.add_argument("--public-key", help="Accepted public key (default: the documented demo key).")
    emulator.add_argument("--private-key", help="Its private key (default: the documented demo key).")
    emulator.add_argument("--latency-ms", type=float, default=0.0, help="Delay added to every answer.")
    emulator.add_argument("--max-limit", type=int, default=1000, help="Cap applied to Limit (default 1000).")
    emulator.add_argument("--fault-rate", type=float, default=0.0, help="Share of requests answered with a fault.")

    _register_extra_commands(commands)
    return parser


def _register_extra_commands(commands: Any) -> None:
    """Commands that live in their own modules register here (kept lazy: imported only when present)."""
    with contextlib.suppress(ImportError):
        from ._lock import register_cli

        register_cli(commands)


def _query_from(args: argparse.Namespace) -> ImageQuery:
    values = {name: getattr(args, name) for name in ImageQuery.model_fields if getattr(args, name, None) is not None}
    try:
        return ImageQuery.model_validate(values)
    except ValidationError as exc:
        raise invalid_query_error(exc, naming=_flag_names()) from None


@contextlib.contextmanager
def _settings_args(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Keyword settings for the lookup; with ``--emulator``, an in-process emulator and its demo keys."""
    given = {name: getattr(args, name) for name in _SETTING_FLAGS if getattr(args, name, None) is not None}
    if not args.emulator:
        yield given
        return
    from ._catalog import DEMO_REGION
    from ._emulator import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator

    with Emulator() as emulator:
        yield {
            "public_key": DEMO_PUBLIC_KEY,
            "private_key": DEMO_PRIVATE_KEY,
            "base_url": emulator.base_url,
            "region": DEMO_REGION,
            **{k: v for k, v in given.items() if k in ("timeout",)},
        }


def _resolve(args: argparse.Namespace, query: ImageQuery, settings_args: dict[str, Any]) -> Any:
    from ._settings import resolve_settings

    region = query.region or settings_args.pop("region", None)
    return resolve_settings(region=region, project_id=query.project_id, **settings_args)


def _cmd_find(args: argparse.Namespace, out: TextIO) -> int:
    from ._lookup import lookup_images

    query = _query_from(args)
    with _settings_args(args) as settings_args:
        settings = _resolve(args, query, settings_args)
        result = lookup_images(query, settings=settings)
    if args.output == "json":
        json.dump(result.to_json(), out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        out.write(f"{result.image_id}\n")
    return EXIT_OK


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _table(images: Sequence[Image]) -> str:
    header = ("IMAGE ID", "NAME", "TYPE", "OS", "ARCH", "STATE", "ZONE", "CREATED (UTC)", "FEATURES")

    def created(image: Image) -> str:
        if not image.create_time:
            return "-"
        return datetime.fromtimestamp(image.create_time, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")

    rows = [header] + [
        (
            image.image_id,
            repr(image.image_name) if image.image_name != image.image_name.strip() else image.image_name,
            image.image_type or "-",
            image.os_type or "-",
            image.architecture,
            image.state or "-",
            image.zone or "-",
            created(image),
            ",".join(image.features) or "-",
        )
        for image in images
    ]
    widths = [max(_width(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    from ._lookup import find_images

    query = _query_from(args)
    with _settings_args(args) as settings_args:
        settings = _resolve(args, query, settings_args)
        images = find_images(query, settings=settings)
    if args.output == "json":
        json.dump([image.to_api() for image in images], out, ensure_ascii=False, indent=2)
        out.write("\n")
    elif images:
        out.write(_table(images))
    if not images:
        region = query.region or settings.region
        sys.stderr.write(f"No image in region {region} matches {query.criteria()}.\n")
        return EXIT_NO_MATCH
    return EXIT_OK


def _cmd_emulator(args: argparse.Namespace, out: TextIO) -> int:
    from ._emulator import serve_forever

    if (args.public_key is None) != (args.private_key is None):
        raise InvalidQueryError("Give --public-key and --private-key together, or neither for the demo pair.")
    keys = {args.public_key: args.private_key} if args.public_key else None
    serve_forever(
        host=args.host,
        port=args.port,
        catalog_path=args.catalog,
        keys=keys,
        latency_ms=args.latency_ms,
        max_limit=args.max_limit,
        fault_rate=args.fault_rate,
        out=out,
    )
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "find": _cmd_find,
    "list": _cmd_list,
    "emulator": _cmd_emulator,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ucloud-images``; returns the exit code (the console script exits with it)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None) or _COMMANDS[args.command]
    try:
        return int(handler(args, sys.stdout))
    except UCloudImagesError as exc:
        sys.stderr.write(f"ucloud-images: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
