"""Usage errors of ``ucloud-images``: one sentence on stderr and exit code 2, never a value from the command line.

argparse's own messages quote what was typed, and a key typed in the wrong place must not be printed, so
:class:`Parser` raises instead of printing and :func:`parse` words every problem itself: it names the
option and what it takes, never the value given.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

__all__ = ["EXIT_USAGE", "Parser", "number", "options_of", "parse", "subparsers_of"]

EXIT_USAGE = 2


class _UsageProblem(Exception):
    """A usage error argparse reports as text (a missing command), raised instead of printed."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class Parser(argparse.ArgumentParser):
    """argparse, with flags spelled out in full (no abbreviations, so a script never depends on one) and
    errors raised rather than printed: :func:`parse` words every usage error itself, naming the option and
    what it takes but never the value given (a key typed in the wrong place must not be printed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("exit_on_error", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise _UsageProblem(self, message)


def number(
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


def subparsers_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The commands of ``parser`` by name (none for a command's own parser)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options_of(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every spelling of every option of ``parser`` (``-h`` and ``--help`` alike), with its action."""
    return {option: action for action in parser._actions for option in action.option_strings}


def _flag_of(token: str) -> str:
    """The option a token names, without any ``=value``: what a usage error may show of it. A single-dash
    token with no ``=`` that is longer than a flag (``-pVALUE``) may be a short flag with its value glued on:
    only the flag shows."""
    if "=" not in token and token.startswith("-") and not token.startswith("--") and len(token) > 2:
        return f"{token[:2]}..."
    return token.split("=", 1)[0]


def _command_at(root: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[int, str | None]:
    """Where the command is on the command line, and which: the first token that names one."""
    commands = subparsers_of(root)
    for index, token in enumerate(argv):
        if token in commands:
            return index, token
    return len(argv), None


def _closest(flag: str, parser: argparse.ArgumentParser) -> str | None:
    known = [option for option in options_of(parser) if option.startswith("--")]
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
    parser = subparsers_of(root).get(command or "", root)
    known = options_of(parser)
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
    parsers = [subparsers_of(root)[command]] if command else []
    parsers += [root, *subparsers_of(root).values()]
    action = next((option for parser in parsers for option in parser._actions if _action_name(option) == name), None)
    if isinstance(action, argparse._SubParsersAction):
        before = [_flag_of(token) for token in argv[:at] if token.startswith("-")]
        commands = ", ".join(action.choices)
        if before:
            owner = next((cmd for cmd, sub in action.choices.items() if before[0] in options_of(sub)), "find")
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
    commands = set(subparsers_of(root))
    for value in _values_in(argv):
        if value not in commands and re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", message):
            return "the command line could not be read (the values given are not shown)"
    return message


def parse(root: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line; any usage error is one sentence on stderr and exit code 2 (SystemExit)."""
    tokens = list(sys.argv[1:] if argv is None else argv)
    try:
        args, extras = root.parse_known_args(tokens)
    except argparse.ArgumentError as error:
        _fail(subparsers_of(root).get(_command_at(root, tokens)[1] or "", root), _argument_problem(root, error, tokens))
    except _UsageProblem as problem:
        flags = [_flag_of(token) for token in tokens if token.startswith("-") and token != "-"]
        if problem.parser is root and flags and "required" in problem.message:
            _fail(root, f"{_unrecognized(list(dict.fromkeys(flags)), root)}, and no command was given")
        if problem.parser is not root and "required" in problem.message:
            # A command's required flag is missing: a misspelled or misplaced flag is the likelier mistake.
            at, command = _command_at(root, tokens)
            known = options_of(problem.parser)
            stray = [token for index, token in enumerate(tokens) if token.startswith("-") and token != "-"
                     and (index < at or _flag_of(token) not in known)]
            if stray:
                _fail(problem.parser, _leftovers(root, command, stray, tokens))
        _fail(problem.parser, _without_values(root, problem.message, tokens))
    if extras:
        command = getattr(args, "command", None)
        _fail(subparsers_of(root).get(command or "", root), _leftovers(root, command, extras, tokens))
    return args
