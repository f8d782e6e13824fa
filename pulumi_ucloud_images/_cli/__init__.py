"""The ``ucloud-images`` command, for pipelines and people: ``find``, ``list``, ``emulator``, ``lock``, the
lockfile's registry: ``promote``, ``rollback``, ``revoke``, ``restore``, ``deprecate`` and ``history``, and ``audit``.

Exit codes: 0 found, 1 ``lock --check``/``--verify`` out of date or an ``audit`` mandatory finding, 2 bad
usage or input, 3 no match, 4 ambiguous, 5 API, network or credential error. Errors go to stderr as one
sentence; stdout carries only the answer. One module per command; what they share is :mod:`.common` (flags,
settings, output) and :mod:`.usage` (usage errors that never echo a value). Nothing outside this package
imports it, and it must not import pulumi or grpc: the command has to start fast. For the same reason the
command modules import the client, the lockfile's models and the policy rules inside their handlers, never at
the top: building the parser (every command registers its flags) then loads neither them nor requests, which
takes about a third off ``--help`` and usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO, cast

from .._errors import UCloudImagesError
from .._version import __version__
from . import audit, deprecate, emulator, find, history, lock, promote, restore, revoke, rollback
from . import list as listing
from .common import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTPUT,
    EXIT_USAGE,
    Handler,
    OutputError,
    Stdout,
    exit_code_for,
)
from .usage import Parser, parse

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: the top level and one subparser per command, in the order ``--help`` lists them."""
    parser = Parser(prog="ucloud-images", description="Find UCloud image IDs from declared filters, strictly.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for command in (find, listing, emulator, lock, promote, rollback, revoke, restore, deprecate, history, audit):
        command.register(commands)
    return parser


@contextlib.contextmanager
def _verbose(enabled: bool) -> Iterator[None]:
    """With ``--verbose``: every API request logs one line on stderr (see ``REQUEST_LOG`` in the client)."""
    if not enabled:
        yield
        return
    from .._api.calls import REQUEST_LOG

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
        args = parse(build_parser(), argv)
    except SystemExit as exit_:  # --help and --version (code 0 or None), usage errors (2)
        return EXIT_OK if exit_.code is None else exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    del argv  # the command line may hold a key; from here on only ``args`` does, as a SecretStr
    handler: Handler = args.handler
    if sys.stdout is None:  # started with stdout closed (`>&-`): nobody reads the answer, so nothing is done
        return EXIT_BROKEN_PIPE
    with contextlib.suppress(AttributeError, ValueError):  # a name its encoding cannot show is written escaped
        sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    out = Stdout(sys.stdout)
    try:
        with _verbose(getattr(args, "verbose", False)):
            code = int(handler(args, cast(TextIO, out)))
        out.flush()  # a full disk is found here, not at exit
        return code
    except OutputError as exc:
        sys.stderr.write(f"ucloud-images: error: {exc}.\n")
        _quiet_stdout()
        return EXIT_OUTPUT
    except UCloudImagesError as exc:
        sys.stderr.write(f"ucloud-images: error: {exc}\n")
        with contextlib.suppress(OSError, ValueError):  # the reader of stdout may be gone: keep the exit code
            sys.stdout.flush()
        return exit_code_for(exc)
    except KeyboardInterrupt:
        from .._api.client import reset_shared_clients

        reset_shared_clients()  # cut off the pages in flight, so the process exits now, not at their deadline
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`... | head -1`): stop quietly, as other command-line tools do.
        _quiet_stdout()
        return EXIT_BROKEN_PIPE


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so what it still buffers is not flushed (and fails) again at exit."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
