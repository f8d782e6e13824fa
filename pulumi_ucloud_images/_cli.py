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
import os
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn, TextIO

from pydantic import ValidationError

from ._errors import InvalidQueryError, UCloudImagesError
from ._image import Image
from ._lookup import fetch_listing, lookup_images
from ._query import ImageQuery, field_extra, invalid_query_error
from ._select import filter_images, no_match_error
from ._settings import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, Settings, resolve_settings
from ._version import __version__

__all__ = ["main"]

EXIT_OK, EXIT_USAGE, EXIT_NO_MATCH, EXIT_AMBIGUOUS, EXIT_API = 0, 2, 3, 4, 5
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141  # 128 + SIGINT / SIGPIPE, as a shell reports them
_SETTING_FLAGS = ("profile", "base_url", "public_key", "private_key", "timeout")
# With --emulator the endpoint and keys are the emulator's, so these flags would be silently ignored.
_NOT_WITH_EMULATOR = ("profile", "base_url", "public_key", "private_key")

Handler = Callable[[argparse.Namespace, TextIO], int]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one sentence on stderr first and exit code 2, and flags are spelled
    out in full (no abbreviations), so a script never depends on one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        unknown = "unrecognized arguments: "
        if message.startswith(unknown):
            # argparse repeats every token, values too: a mistyped --private_key would print the key.
            flags = [token for token in message[len(unknown) :].split() if token.startswith("-")]
            message = f"unrecognized flags: {' '.join(flags)} (their values are not shown)" if flags else (
                "unexpected arguments (not shown): every value belongs to a flag"
            )
        sys.stderr.write(f"ucloud-images: error: {message[0].upper()}{message[1:]}.\n")
        sys.stderr.write(f"Run '{self.prog} --help' for the flags.\n")
        raise SystemExit(EXIT_USAGE)


def _number(kind: type[float] | type[int], low: float, high: float | None = None) -> Callable[[str], Any]:
    """An argparse type for a number in [low, high], so a bad value is a usage error, not a traceback."""
    span = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number {span}") from None
        if not (low <= value and (high is None or value <= high)):
            raise argparse.ArgumentTypeError(f"{text!r} is not {span}")
        return value

    return parse


def _flag_names() -> dict[str, str]:
    return {name: str(field_extra(field)["cli"]) for name, field in ImageQuery.model_fields.items()}


def _add_query_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`ImageQuery` field, spelled and described by the model."""
    group = parser.add_argument_group("filters")
    for name, field in ImageQuery.model_fields.items():
        extra = field_extra(field)
        flag = str(extra["cli"])
        metavar = flag.lstrip("-").upper().replace("-", "_")
        if extra.get("flag"):
            group.add_argument(flag, dest=name, action="store_true", default=None, help=field.description)
        elif extra.get("repeatable"):
            group.add_argument(
                flag, dest=name, action="append", default=None, metavar=metavar, help=f"{field.description} Repeatable."
            )
        else:
            group.add_argument(flag, dest=name, default=None, metavar=metavar, help=field.description)


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """Where the keys, region and endpoint come from (also used by ``ucloud-images lock``)."""
    group = parser.add_argument_group("settings (default: UCLOUD_* environment, then ~/.ucloud profile files)")
    group.add_argument("--profile", help="Profile of the UCloud CLI's ~/.ucloud files.")
    group.add_argument("--base-url", metavar="URL", help=f"API endpoint (default {DEFAULT_BASE_URL}).")
    group.add_argument("--public-key", metavar="KEY", help="API public key.")
    group.add_argument("--private-key", metavar="KEY", help="API private key (prefer UCLOUD_PRIVATE_KEY).")
    group.add_argument(
        "--timeout", type=float, metavar="SECONDS", help=f"Per-request timeout (default {DEFAULT_TIMEOUT:g})."
    )
    group.add_argument(
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
    _add_settings_flags(find)
    find.add_argument("--output", choices=("id", "json"), default="id", help="id (default) or json.")
    find.set_defaults(handler=_cmd_find)

    listing = commands.add_parser("list", help="List every matching image, newest first (exit 3 if none).")
    _add_query_flags(listing)
    _add_settings_flags(listing)
    listing.add_argument("--output", choices=("table", "json"), default="table", help="table (default) or json.")
    listing.set_defaults(handler=_cmd_list)

    emulator = commands.add_parser("emulator", help="Serve the local DescribeImage emulator until interrupted.")
    emulator.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
    emulator.add_argument(
        "--port", type=_number(int, 0, 65535), default=8642, help="Port (default 8642; 0 picks a free one)."
    )
    emulator.add_argument("--catalog", metavar="PATH", help="JSON file of images (API spelling) to serve instead.")
    emulator.add_argument("--public-key", metavar="KEY", help="Accepted public key (default: the demo key).")
    emulator.add_argument("--private-key", metavar="KEY", help="Its private key (default: the demo key).")
    emulator.add_argument(
        "--latency-ms", type=_number(float, 0, 60_000), default=0.0, metavar="MS", help="Delay added to every answer."
    )
    emulator.add_argument(
        "--max-limit", type=_number(int, 1), default=1000, metavar="N", help="Cap applied to Limit (default 1000)."
    )
    emulator.add_argument(
        "--fault-rate", type=_number(float, 0, 1), default=0.0, metavar="RATE",
        help="Share of requests (0 to 1) answered with a transient fault (153, 150, HTTP 503, dropped connection).",
    )
    emulator.set_defaults(handler=_cmd_emulator)

    from ._lock import register_cli  # here, not at the top: _lock builds on this module's flag helpers

    register_cli(commands)
    return parser


def _query_from(args: argparse.Namespace) -> ImageQuery:
    values = {name: getattr(args, name) for name in ImageQuery.model_fields if getattr(args, name, None) is not None}
    try:
        return ImageQuery.model_validate(values)
    except ValidationError as exc:
        raise invalid_query_error(exc, naming=_flag_names()) from None


@contextlib.contextmanager
def _settings_args(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Keyword arguments for :func:`resolve_settings` from the flags.

    With ``--emulator``: an in-process emulator, its demo keys and region, and nothing from the user's
    environment or profile files (a real project or endpoint there must not leak into an offline run).
    """
    given = {name: getattr(args, name) for name in _SETTING_FLAGS if getattr(args, name, None) is not None}
    if not getattr(args, "emulator", False):
        yield given
        return
    clashing = [f"--{name.replace('_', '-')}" for name in _NOT_WITH_EMULATOR if name in given]
    if clashing:
        raise InvalidQueryError(
            f"The --emulator switch brings its own endpoint and keys, so {' and '.join(clashing)} cannot be used "
            "with it."
        )
    from ._catalog import DEMO_REGION
    from ._emulator import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator

    with Emulator() as emulator, tempfile.TemporaryDirectory(prefix="ucloud-images-") as empty_home:
        yield {
            **given,
            "public_key": DEMO_PUBLIC_KEY,
            "private_key": DEMO_PRIVATE_KEY,
            "base_url": emulator.base_url,
            "region": DEMO_REGION,
            "env": {},
            "config": lambda key: None,
            "home": Path(empty_home),
        }


def _resolve(query: ImageQuery, settings_args: dict[str, Any]) -> Settings:
    """The query's region and project win over the settings' own."""
    region = query.region or settings_args.pop("region", None)
    return resolve_settings(**{**settings_args, "region": region, "project_id": query.project_id})


def _cmd_find(args: argparse.Namespace, out: TextIO) -> int:
    query = _query_from(args)
    with _settings_args(args) as settings_args:
        result = lookup_images(query, settings=_resolve(query, settings_args), naming=_flag_names())
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
    """Aligned columns (CJK characters count double); names with stray spaces are quoted to show them."""
    header = ("IMAGE ID", "NAME", "TYPE", "OS", "ARCH", "STATE", "ZONE", "CREATED (UTC)", "FEATURES")

    def created(image: Image) -> str:
        if not image.create_time:
            return "-"
        return datetime.fromtimestamp(image.create_time, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")

    rows = [header] + [
        (
            image.image_id,
            repr(image.image_name) if image.image_name != image.image_name.strip() else image.image_name or "-",
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
    query = _query_from(args)
    with _settings_args(args) as settings_args:
        listing = fetch_listing(query, settings=_resolve(query, settings_args))
    images = filter_images(listing.images, listing.query)
    if args.output == "json":
        json.dump([image.to_api() for image in images], out, ensure_ascii=False, indent=2)
        out.write("\n")
    elif images:
        out.write(_table(images))
    if not images:
        raise no_match_error(listing.images, listing.query, listing.region, _flag_names())
    return EXIT_OK


def _cmd_emulator(args: argparse.Namespace, out: TextIO) -> int:
    from ._emulator import serve_forever

    if (args.public_key is None) != (args.private_key is None):
        raise InvalidQueryError("Give --public-key and --private-key together, or neither for the demo pair.")
    if args.public_key == "" or args.private_key == "":
        raise InvalidQueryError("--public-key and --private-key must not be empty.")
    keys = {args.public_key: args.private_key} if args.public_key else None
    try:
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
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UCloudImagesError(f"The emulator cannot serve on {args.host}:{args.port}: {reason}.") from None
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ucloud-images``; returns the exit code (the console script exits with it)."""
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as exit_:  # --help and --version (code 0 or None), usage errors (2)
        return EXIT_OK if exit_.code is None else exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    handler: Handler = args.handler
    try:
        return int(handler(args, sys.stdout))
    except UCloudImagesError as exc:
        sys.stderr.write(f"ucloud-images: error: {exc}\n")
        with contextlib.suppress(OSError, ValueError):  # the reader of stdout may be gone: keep the exit code
            sys.stdout.flush()
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`... | head -1`): stop quietly, as other command-line tools do.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
