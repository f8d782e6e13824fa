"""The ``ucloud-images`` command, for pipelines and people.

Flags are derived from :class:`ImageQuery`, so the command and the library never disagree. Exit codes:
0 found, 2 bad usage or input, 3 no match, 4 ambiguous, 5 API, network or credential error. Errors go to
stderr as one sentence; stdout carries only the answer. This module must not import pulumi or grpc: the
command has to start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import os
import re
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn, TextIO

from pydantic import SecretStr, ValidationError

from ._display import ELLIPSIS, json_for_people, shown
from ._errors import InvalidQueryError, UCloudImagesError
from ._image import Image, ImagePrice
from ._lookup import fetch_listing, lookup_images
from ._query import ImageQuery, field_extra, invalid_query_error
from ._select import filter_images, no_match_error
from ._settings import CLI_FACE, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, Settings, resolve_settings
from ._version import __version__

__all__ = ["main"]

EXIT_OK, EXIT_USAGE, EXIT_NO_MATCH, EXIT_AMBIGUOUS, EXIT_API = 0, 2, 3, 4, 5
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141  # 128 + SIGINT / SIGPIPE, as a shell reports them
_SETTING_FLAGS = ("profile", "base_url", "public_key", "private_key", "timeout")
# With --emulator the endpoint and keys are the emulator's, so these flags would be silently ignored.
_NOT_WITH_EMULATOR = ("profile", "base_url", "public_key", "private_key")

Handler = Callable[[argparse.Namespace, TextIO], int]


class _UsageProblem(Exception):
    """A usage error argparse reports as text (a missing command), raised instead of printed."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse, with flags spelled out in full (no abbreviations, so a script never depends on one) and
    errors raised rather than printed: :func:`_parse` words every usage error itself, naming the option and
    what it takes but never the value given (a key typed in the wrong place must not be printed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("exit_on_error", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise _UsageProblem(self, message)


def _number(
    kind: type[float] | type[int], low: float | None = None, high: float | None = None, *, unit: str = ""
) -> Callable[[str], Any]:
    """An argparse type for a number in [low, high]; ``accepts`` says what it takes, for usage errors."""
    noun = ("a whole number" if kind is int else "a number") + (f" of {unit}" if unit else "")
    if low is None:
        accepts = noun
    elif high is None:
        accepts = f"{noun} of at least {low:g}"
    else:
        accepts = f"{noun} between {low:g} and {high:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(accepts) from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(accepts)
        return value

    parse.accepts = accepts  # type: ignore[attr-defined]
    return parse


def _fail(parser: argparse.ArgumentParser, sentence: str) -> NoReturn:
    sys.stderr.write(f"ucloud-images: error: {sentence[0].upper()}{sentence[1:]}.\n")
    sys.stderr.write(f"Run '{parser.prog} --help' for the flags.\n")
    raise SystemExit(EXIT_USAGE)


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings}


def _flag_of(token: str) -> str:
    """The option a token names, without any ``=value``: what a usage error may show of it."""
    return token.split("=", 1)[0]


def _command_at(root: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[int, str | None]:
    """Where the command is on the command line, and which: the first token that names one."""
    commands = _commands(root)
    for index, token in enumerate(argv):
        if token in commands:
            return index, token
    return len(argv), None


def _closest(flag: str, parser: argparse.ArgumentParser) -> str | None:
    known = [option for option in _options(parser) if option.startswith("--")]
    normal = "--" + flag.lstrip("-").replace("_", "-").lower()
    close = [normal] if normal in known else difflib.get_close_matches(normal, known, n=1, cutoff=0.75)
    return close[0] if close else None


def _unrecognized(flags: list[str], parser: argparse.ArgumentParser) -> str:
    closest = _closest(flags[0], parser) if len(flags) == 1 else None
    hint = f"; the closest flag is {closest}" if closest else ""
    return f"unrecognized flags: {', '.join(flags)} (their values are not shown{hint})"


def _leftovers(root: argparse.ArgumentParser, command: str | None, extras: list[str], argv: Sequence[str]) -> str:
    """One sentence about the tokens nothing took: unknown flags, flags placed before the command, stray values."""
    at, _ = _command_at(root, argv)
    parser = _commands(root).get(command or "", root)
    known = _options(parser)
    positions = [index for index, token in enumerate(argv) if token in extras]
    unknown: list[str] = []
    misplaced: list[str] = []
    for index in positions:
        token = argv[index]
        if not token.startswith("-") or token == "-":
            continue
        flag = _flag_of(token)
        (misplaced if index < at and flag in known else unknown).append(flag)
    if unknown:
        return _unrecognized(list(dict.fromkeys(unknown)), parser)
    if misplaced:
        flags = list(dict.fromkeys(misplaced))
        verb = "comes" if len(flags) == 1 else "come"
        return (
            f"{', '.join(flags)} {verb} before the command; options go after it, as in "
            f"'ucloud-images {command} {flags[0]} ...' (the values given are not shown)"
        )
    return "unexpected arguments (not shown): every value belongs to a flag"


def _argument_problem(root: argparse.ArgumentParser, error: argparse.ArgumentError, argv: Sequence[str]) -> str:
    """The sentence for an option (or the command) that could not take what followed it, without the value."""
    name = error.argument_name or "COMMAND"
    text = str(error.message)
    at, command = _command_at(root, argv)
    parsers = [_commands(root)[command]] if command else []
    parsers += [root, *_commands(root).values()]
    action = next((option for parser in parsers for option in parser._actions if _action_name(option) == name), None)
    if isinstance(action, argparse._SubParsersAction):
        before = [_flag_of(token) for token in argv[:at] if token.startswith("-")]
        commands = ", ".join(action.choices)
        if before:
            owner = next((cmd for cmd, sub in action.choices.items() if before[0] in _options(sub)), "find")
            verb = "comes" if len(before) == 1 else "come"
            return (
                f"{', '.join(before)} {verb} before the command; options go after it, as in "
                f"'ucloud-images {owner} {before[0]} ...' (the commands are {commands}; the values given are not "
                "shown)"
            )
        return f"unknown command (not shown); the commands are {commands}"
    if text.startswith(("expected ", "not allowed with argument")):  # argparse's own words, which hold no value
        return f"argument {name}: {text}"
    if action is not None and action.nargs == 0:
        # "-host=x" reads as the short flag -h with "ost=x" after it: it is a misspelled --host, say so.
        shorts = [option for option in action.option_strings if not option.startswith("--")]
        typed = [token for token in argv if not token.startswith("--") and token[:2] in shorts and len(token) > 2]
        if typed:
            return _unrecognized([_flag_of(typed[0])], parsers[0])
        return f"argument {name} takes no value (the value given is not shown)"
    if action is not None and action.choices:
        return f"argument {name} must be one of {', '.join(map(str, action.choices))} (the value given is not shown)"
    accepts = getattr(action.type, "accepts", None) if action is not None else None
    if accepts:
        return f"argument {name} must be {accepts} (the value given is not shown)"
    return f"argument {name} cannot take the value given (not shown)"


def _action_name(action: argparse.Action) -> str | None:
    """The name argparse gives an action in its errors (``--timeout``, ``-h/--help``, ``COMMAND``)."""
    if action.option_strings:
        return "/".join(action.option_strings)
    if action.metavar not in (None, argparse.SUPPRESS):
        return str(action.metavar)
    return None if action.dest is argparse.SUPPRESS else str(action.dest)


def _values_in(argv: Sequence[str]) -> list[str]:
    """Every value on the command line (not an option name, not a command), longest first."""
    values: set[str] = set()
    for token in argv:
        if token.startswith("-"):
            if "=" in token:
                values.add(token.split("=", 1)[1])
            elif not token.startswith("--") and len(token) > 2:
                values.add(token[2:])
        else:
            values.add(token)
    return sorted((value for value in values if value), key=len, reverse=True)


def _without_values(root: argparse.ArgumentParser, message: str, argv: Sequence[str]) -> str:
    """A message argparse worded itself, if it quotes nothing from the command line; else a plain sentence."""
    commands = set(_commands(root))
    for value in _values_in(argv):
        if value not in commands and re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", message):
            return "the command line could not be read (the values given are not shown)"
    return message


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line; any usage error is one sentence on stderr and exit code 2 (SystemExit)."""
    root = _build_parser()
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        args, extras = root.parse_known_args(tokens)
    except argparse.ArgumentError as error:
        _fail(_commands(root).get(_command_at(root, tokens)[1] or "", root), _argument_problem(root, error, tokens))
    except _UsageProblem as problem:
        flags = [_flag_of(token) for token in tokens if token.startswith("-") and token != "-"]
        if problem.parser is root and flags and "required" in problem.message:
            _fail(root, f"{_unrecognized(list(dict.fromkeys(flags)), root)}, and no command was given")
        _fail(problem.parser, _without_values(root, problem.message, tokens))
    if extras:
        command = getattr(args, "command", None)
        _fail(_commands(root).get(command or "", root), _leftovers(root, command, extras, tokens))
    return args


def _flag_names() -> dict[str, str]:
    return {name: str(field_extra(field)["cli"]) for name, field in ImageQuery.model_fields.items()}


def _add_query_flags(parser: argparse.ArgumentParser, *, refused: Sequence[str] = ()) -> None:
    """One flag per :class:`ImageQuery` field, spelled and described by the model.

    ``refused`` fields do nothing for this command: their flags are accepted by the parser (and hidden from
    the help) only so that the command can refuse them with a sentence saying why.
    """
    group = parser.add_argument_group("filters")
    for name, field in ImageQuery.model_fields.items():
        extra = field_extra(field)
        flag = str(extra["cli"])
        metavar = flag.lstrip("-").upper().replace("-", "_")
        if extra.get("flag"):
            description = argparse.SUPPRESS if name in refused else field.description
            group.add_argument(flag, dest=name, action="store_true", default=None, help=description)
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
    # Held as a secret from the moment it is parsed: no namespace, dict or traceback shows it.
    group.add_argument(
        "--private-key", type=SecretStr, metavar="KEY", help="API private key (prefer UCLOUD_PRIVATE_KEY)."
    )
    group.add_argument(
        "--timeout", type=_number(float, unit="seconds"), metavar="SECONDS",
        help=f"Per-request timeout (default {DEFAULT_TIMEOUT:g}).",
    )
    group.add_argument(
        "--emulator",
        action="store_true",
        help="Run against the bundled DescribeImage emulator, started in-process with its demo keys (offline).",
    )
    group.add_argument(
        "--verbose",
        action="store_true",
        help="One line on stderr per API request: action, offset, RetCode, request id, milliseconds, retries.",
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
    _add_query_flags(listing, refused=("most_recent",))
    _add_settings_flags(listing)
    listing.add_argument(
        "--output", choices=("table", "json", "ids", "tsv"), default="table",
        help="table (default, for people: fits 80 columns), json, ids (one per line) or tsv (tab-separated, with "
        "a header row).",
    )
    listing.add_argument("--wide", action="store_true", help="With the table: every column, and whole names.")
    listing.add_argument("--no-header", action="store_true", help="With --output tsv: leave out the header row.")
    listing.set_defaults(handler=_cmd_list)

    emulator = commands.add_parser("emulator", help="Serve the local DescribeImage emulator until interrupted.")
    emulator.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
    emulator.add_argument(
        "--port", type=_number(int, 0, 65535), default=8642, help="Port (default 8642; 0 picks a free one)."
    )
    emulator.add_argument("--catalog", metavar="PATH", help="JSON file of images (API spelling) to serve instead.")
    emulator.add_argument("--public-key", metavar="KEY", help="Accepted public key (default: the demo key).")
    emulator.add_argument(
        "--private-key", type=SecretStr, metavar="KEY", help="Its private key (default: the demo key)."
    )
    emulator.add_argument(
        "--latency-ms", type=_number(float, 0, 60_000), default=0.0, metavar="MS", help="Delay added to every answer."
    )
    emulator.add_argument(
        "--max-limit", type=_number(int, 1), default=None, metavar="N",
        help="Cap applied to Limit (default 1000; 100 with --strict).",
    )
    emulator.add_argument(
        "--strict", action="store_true",
        help="Behave like a plain http.server: headers and body in separate sends, no TCP_NODELAY, backlog 5, "
        "Limit capped at 100, no encoding cache (for honest benchmarks).",
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
    return resolve_settings(**{**settings_args, "region": region, "project_id": query.project_id, "face": CLI_FACE})


def warn(text: str) -> None:
    """One line on stderr beginning ``warning:`` (the server's text in it already made safe to show)."""
    sys.stderr.write(f"warning: {text}\n")


def _cmd_find(args: argparse.Namespace, out: TextIO) -> int:
    query = _query_from(args)
    with _settings_args(args) as settings_args:
        result = lookup_images(query, settings=_resolve(query, settings_args), naming=_flag_names())
    for warning in result.warnings:
        warn(warning)
    if args.output == "json":
        out.write(json_for_people(result.to_json()) + "\n")
    else:
        out.write(f"{result.image_id}\n")
    return EXIT_OK


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


_NAME_CELL = 60  # the longest image name a wide table cell shows (the server's text; JSON keeps it whole)
_CELL = 40
TABLE_WIDTH = 80  # the table for people fits an 80-column terminal; --wide shows everything
_MIN_NAME = 12
# The columns of `list --output tsv`, named as the keys of the JSON records.
TSV_COLUMNS = (
    "imageId", "imageName", "imageType", "osType", "osName", "architecture", "state", "zone", "createTime",
    "eolDate", "vendor", "funcType", "features", "supportedGpuTypes", "sceneCategories", "priceSet",
)


def _cell(text: str, limit: int = _CELL) -> str:
    return shown(text, limit) or "-"


def _cut(text: str, width: int) -> str:
    """``text`` cut to ``width`` terminal columns, the cut marked with an ellipsis."""
    if _width(text) <= width:
        return text
    kept, used = [], 0
    for ch in text:
        step = _width(ch)
        if used + step > width - 1:
            break
        kept.append(ch)
        used += step
    return "".join(kept) + ELLIPSIS


def _created(image: Image, *, time_of_day: bool) -> str:
    if not image.create_time:
        return "-"
    shape = "%Y-%m-%d %H:%M" if time_of_day else "%Y-%m-%d"
    return datetime.fromtimestamp(image.create_time, tz=timezone.utc).strftime(shape)


def _price(prices: Sequence[ImagePrice], charge_type: str) -> str:
    price = next((p.price for p in prices if p.charge_type == charge_type and p.price is not None), None)
    return "-" if price is None else f"{price:.2f}"


def _prices(prices: Sequence[ImagePrice]) -> str:
    return ", ".join(
        f"{shown(p.charge_type, 20)} {p.price:.2f}" for p in prices if p.price is not None
    ) or "-"


def _table(images: Sequence[Image], query: ImageQuery, *, wide: bool = False) -> str:
    """Aligned columns (CJK characters count double); names with stray spaces are quoted to show them.

    Every cell is the server's text, so it is shown without control characters or escape sequences and cut
    to a cell's length. The default table fits ``TABLE_WIDTH`` columns: the name takes what the other
    columns leave, cut with an ellipsis; STATE appears when ``states`` admits more than Available, MONTHLY
    (the monthly price) with ``prices``. ``wide`` shows every column and whole names.
    """

    def name(image: Image) -> str:
        text = shown(image.image_name, _NAME_CELL)
        return repr(text) if text != text.strip() else text or "-"

    def eol(image: Image) -> str:
        return "-" if image.eol_date is None else image.eol_date.isoformat()

    if wide:
        columns: list[tuple[str, Callable[[Image], str]]] = [
            ("IMAGE ID", lambda image: _cell(image.image_id)),
            ("NAME", name),
            ("TYPE", lambda image: _cell(image.image_type)),
            ("OS", lambda image: _cell(image.os_type)),
            ("ARCH", lambda image: image.architecture),
            ("STATE", lambda image: _cell(image.state)),
            ("ZONE", lambda image: _cell(image.zone)),
            ("CREATED (UTC)", lambda image: _created(image, time_of_day=True)),
            ("EOL", eol),
            ("VENDOR", lambda image: _cell(image.vendor, 20)),
            ("FEATURES", lambda image: _cell(",".join(image.features), 2 * _NAME_CELL)),
        ]
        if query.prices:
            columns.append(("PRICES", lambda image: _prices(image.price_set)))
    else:
        columns = [
            ("IMAGE ID", lambda image: _cell(image.image_id)),
            ("NAME", name),
            ("TYPE", lambda image: _cell(image.image_type, 10)),
            ("ARCH", lambda image: image.architecture),
        ]
        if query.states != ("Available",):
            columns.append(("STATE", lambda image: _cell(image.state, 12)))
        columns += [
            ("ZONE", lambda image: _cell(image.zone, 16)),
            ("CREATED", lambda image: _created(image, time_of_day=False)),
        ]
        if query.prices:
            columns.append(("MONTHLY", lambda image: _price(image.price_set, "Month")))
    header = tuple(title for title, _ in columns)
    rows = [header] + [tuple(cell(image) for _, cell in columns) for image in images]
    widths = [max(_width(row[column]) for row in rows) for column in range(len(header))]
    if not wide:
        _fit(widths, header)
        rows = [tuple(_cut(cell, widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines = ["  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


# Never cut: the image ID (pipelines copy it from the table) and the creation date.
_UNCUT = frozenset({"IMAGE ID", "CREATED", "CREATED (UTC)"})


def _fit(widths: list[int], header: Sequence[str]) -> None:
    """Narrow the columns, in place, until a row fits ``TABLE_WIDTH``: the name first, down to ``_MIN_NAME``;
    then the widest of the others that may be cut, down to their titles; then the name, down to its title."""

    def total() -> int:
        return sum(widths) + 2 * (len(widths) - 1)

    name = header.index("NAME")
    widths[name] = min(widths[name], max(_MIN_NAME, widths[name] - (total() - TABLE_WIDTH)))
    for floor_of_name in (widths[name], _width(header[name])):
        while total() > TABLE_WIDTH:
            narrower = [i for i, title in enumerate(header) if title not in _UNCUT and widths[i] > _width(title)
                        and (i != name or widths[name] > floor_of_name)]
            if not narrower:
                break
            widest = max(narrower, key=lambda i: (widths[i], i != name))
            widths[widest] -= 1


def _tsv_cell(text: str) -> str:
    """A TSV field: the server's text on one line, without tabs or control characters, never cut."""
    return shown(text, 4096)


def _tsv(images: Sequence[Image], *, header: bool) -> str:
    """Tab-separated rows, one per image, in ``TSV_COLUMNS`` order; lists comma-separated, times in UTC."""

    def row(image: Image) -> list[str]:
        created = datetime.fromtimestamp(image.create_time, tz=timezone.utc) if image.create_time else None
        values = {
            "imageId": image.image_id,
            "imageName": image.image_name,
            "imageType": image.image_type,
            "osType": image.os_type,
            "osName": image.os_name,
            "architecture": image.architecture,
            "state": image.state,
            "zone": image.zone,
            "createTime": "" if created is None else created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eolDate": "" if image.eol_date is None else image.eol_date.isoformat(),
            "vendor": image.vendor,
            "funcType": image.func_type,
            "features": ",".join(image.features),
            "supportedGpuTypes": ",".join(image.supported_gpu_types),
            "sceneCategories": ",".join(image.scene_categories),
            "priceSet": ",".join(f"{p.charge_type}:{p.price:.2f}" for p in image.price_set if p.price is not None),
        }
        return [_tsv_cell(values[column]) for column in TSV_COLUMNS]

    lines = (["\t".join(TSV_COLUMNS)] if header else []) + ["\t".join(row(image)) for image in images]
    return "".join(line + "\n" for line in lines)


def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    if args.most_recent:
        raise InvalidQueryError(
            "--most-recent chooses one image, and list shows every match (newest first), so it would do nothing "
            "here; use 'ucloud-images find --most-recent' for the newest one.",
            field="most_recent",
        )
    if args.wide and args.output != "table":
        raise InvalidQueryError(
            f"--wide widens the table, so it would do nothing with --output {args.output}; leave it out.",
            field="wide",
        )
    if args.no_header and args.output != "tsv":
        raise InvalidQueryError(
            f"--no-header drops the header row of --output tsv, so it would do nothing with --output {args.output};"
            " leave it out.",
            field="no_header",
        )
    query = _query_from(args)
    with _settings_args(args) as settings_args:
        listing = fetch_listing(query, settings=_resolve(query, settings_args))
    images = filter_images(listing.images, listing.query, _flag_names())
    if args.output == "json":
        out.write(json_for_people([image.to_json() for image in images]) + "\n")
    elif not images:
        pass
    elif args.output == "ids":
        out.writelines(f"{image.image_id}\n" for image in images)
    elif args.output == "tsv":
        out.write(_tsv(images, header=not args.no_header))
    else:
        out.write(_table(images, listing.query, wide=args.wide))
    if not images:
        raise no_match_error(listing.images, listing.query, listing.region, _flag_names())
    return EXIT_OK


def _cmd_emulator(args: argparse.Namespace, out: TextIO) -> int:
    from ._emulator import serve_forever

    if (args.public_key is None) != (args.private_key is None):
        raise InvalidQueryError("Give --public-key and --private-key together, or neither for the demo pair.")
    if args.public_key == "" or (args.private_key is not None and not args.private_key.get_secret_value()):
        raise InvalidQueryError("--public-key and --private-key must not be empty.")
    keys = {args.public_key: args.private_key.get_secret_value()} if args.public_key else None
    try:
        serve_forever(
            host=args.host,
            port=args.port,
            catalog_path=args.catalog,
            keys=keys,
            latency_ms=args.latency_ms,
            max_limit=args.max_limit,
            fault_rate=args.fault_rate,
            strict=args.strict,
            out=out,
        )
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UCloudImagesError(f"The emulator cannot serve on {args.host}:{args.port}: {reason}.") from None
    return EXIT_OK


@contextlib.contextmanager
def _verbose(enabled: bool) -> Iterator[None]:
    """With ``--verbose``: every API request logs one line on stderr (see ``REQUEST_LOG`` in the client)."""
    if not enabled:
        yield
        return
    from ._transport import REQUEST_LOG

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ucloud-images: request: %(message)s"))
    level = REQUEST_LOG.level
    REQUEST_LOG.addHandler(handler)
    REQUEST_LOG.setLevel(logging.INFO)
    try:
        yield
    finally:
        REQUEST_LOG.removeHandler(handler)
        REQUEST_LOG.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ucloud-images``; returns the exit code (the console script exits with it)."""
    try:
        args = _parse(argv)
    except SystemExit as exit_:  # --help and --version (code 0 or None), usage errors (2)
        return EXIT_OK if exit_.code is None else exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    del argv  # the command line may hold a key; from here on only ``args`` does, as a SecretStr
    handler: Handler = args.handler
    try:
        with _verbose(getattr(args, "verbose", False)):
            return int(handler(args, sys.stdout))
    except UCloudImagesError as exc:
        sys.stderr.write(f"ucloud-images: error: {exc}\n")
        with contextlib.suppress(OSError, ValueError):  # the reader of stdout may be gone: keep the exit code
            sys.stdout.flush()
        return exc.exit_code
    except KeyboardInterrupt:
        from ._listing import reset_shared_clients

        reset_shared_clients()  # cut off the pages in flight, so the process exits now, not at their deadline
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`... | head -1`): stop quietly, as other command-line tools do.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
