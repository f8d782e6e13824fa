"""What the commands of ``ucloud-images`` share: exit codes, the flags, settings from the flags, output.

The filter flags are derived from :class:`ImageQuery`, so the command and the library never disagree.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr, ValidationError

from .._errors import (
    AmbiguousImageError,
    InvalidQueryError,
    LockfileError,
    NoImageFoundError,
    PolicyConfigError,
    ProfileError,
    UCloudImagesError,
)
from .._naming import cli_flags
from .._query import ImageQuery, field_extra, invalid_query_error
from .._settings.scope import settings_for as lookup_settings
from .._settings.settings import CLI_FACE, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, LOOKUP_ARGUMENTS, Settings
from .usage import EXIT_USAGE, number

__all__ = [
    "EXIT_AMBIGUOUS",
    "EXIT_API",
    "EXIT_BROKEN_PIPE",
    "EXIT_INTERRUPTED",
    "EXIT_NO_MATCH",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_USAGE",
    "Handler",
    "OutputError",
    "Stdout",
    "add_query_flags",
    "add_settings_flags",
    "exit_code_for",
    "flag_names",
    "query_from",
    "settings_args",
    "settings_for",
    "warn",
]

EXIT_OK, EXIT_NO_MATCH, EXIT_AMBIGUOUS, EXIT_API = 0, 3, 4, 5
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 130, 141  # 128 + SIGINT / SIGPIPE, as a shell reports them
EXIT_OUTPUT = 74  # sysexits' EX_IOERR: the answer could not be written (a full disk)

# The command's exit code for each kind of library error, the first that matches; the library knows none.
_EXIT_CODES: tuple[tuple[type[UCloudImagesError], int], ...] = (
    (NoImageFoundError, EXIT_NO_MATCH),
    (AmbiguousImageError, EXIT_AMBIGUOUS),
    (InvalidQueryError, EXIT_USAGE),  # bad input, found before any request
    (ProfileError, EXIT_USAGE),  # a malformed profile file, or a named profile or file that is not there
    (LockfileError, EXIT_USAGE),  # a malformed lockfile or selection file
    (PolicyConfigError, EXIT_USAGE),  # malformed policy settings or state file
    (UCloudImagesError, EXIT_API),  # credentials, the network, the API
)


def exit_code_for(error: UCloudImagesError) -> int:
    """The exit code of ``ucloud-images`` for a library error."""
    return next(code for kind, code in _EXIT_CODES if isinstance(error, kind))
# With --emulator the endpoint and keys are the emulator's, so these flags would be silently ignored.
_NOT_WITH_EMULATOR = ("profile", "base_url", "public_key", "private_key")

# A command: its parsed flags and stdout in, its exit code out.
Handler = Callable[[argparse.Namespace, TextIO], int]


class OutputError(Exception):
    """stdout could not be written, for a reason other than its reader going away."""


class Stdout:
    """The command's stdout: a failed write (a full disk) is an :class:`OutputError`, a reader that went away
    stays a ``BrokenPipeError``. Text the stream's encoding cannot show is written as escapes (main sets it)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def _guarded(self, act: Callable[[], object]) -> None:
        try:
            act()
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as exc:  # ValueError: written after the stream was closed
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise OutputError(f"The output could not be written ({reason})") from None

    def write(self, text: str) -> int:
        self._guarded(lambda: self._stream.write(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._guarded(self._stream.flush)

    def isatty(self) -> bool:
        """Whether a person reads it (the ``list`` table then takes the terminal's width)."""
        try:
            return self._stream.isatty()
        except (OSError, ValueError):
            return False


def flag_names() -> dict[str, str]:
    """Field name -> flag (``name_regex`` -> ``--name-regex``), for messages in the command's spelling."""
    return cli_flags(ImageQuery)


def add_query_flags(parser: argparse.ArgumentParser, *, refused: Sequence[str] = ()) -> None:
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


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
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
        "--timeout", type=number(float, unit="seconds"), metavar="SECONDS",
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


def query_from(args: argparse.Namespace) -> ImageQuery:
    """The query the filter flags give; a bad value is one sentence naming the flag."""
    values = {name: getattr(args, name) for name in ImageQuery.model_fields if getattr(args, name, None) is not None}
    try:
        return ImageQuery.model_validate(values)
    except ValidationError as exc:
        raise invalid_query_error(exc, naming=flag_names()) from None


@contextlib.contextmanager
def settings_args(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Keyword arguments for :func:`resolve_settings` from the flags.

    With ``--emulator``: an in-process emulator, its demo keys and region, and nothing from the user's
    environment or profile files (a real project or endpoint there must not leak into an offline run).
    """
    given = {name: getattr(args, name) for name in LOOKUP_ARGUMENTS if getattr(args, name, None) is not None}
    if not getattr(args, "emulator", False):
        yield given
        return
    clashing = [f"--{name.replace('_', '-')}" for name in _NOT_WITH_EMULATOR if name in given]
    if clashing:
        raise InvalidQueryError(
            f"The --emulator switch brings its own endpoint and keys, so {' and '.join(clashing)} cannot be used "
            "with it."
        )
    from .._emulator.catalog import DEMO_REGION
    from .._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator

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


def settings_for(query: ImageQuery, arguments: dict[str, Any]) -> Settings:
    """The settings a lookup runs with, from :func:`settings_args`, in the command's words."""
    return lookup_settings(query, **arguments, face=CLI_FACE)


def warn(text: str) -> None:
    """One line on stderr beginning ``warning:`` (the server's text in it already made safe to show)."""
    sys.stderr.write(f"warning: {text}\n")
