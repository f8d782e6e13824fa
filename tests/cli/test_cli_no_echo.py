"""The command never prints the value given to an option in a usage error, whatever the mistake.

Every option of every command (``find``, ``list``, ``lock``, ``emulator``, the lockfile's registry commands,
``audit`` and the top level) is tried with a
distinctive value in each careless form: misspelled, misspelled with ``=``, with one dash, abbreviated, placed
before the command (with and without ``=``), and given a value it cannot take. The options are read from the
parser itself, so an option added later is walked too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pulumi_ucloud_images import _cli
from pulumi_ucloud_images._cli import (
    audit,
    deprecate,
    emulator,
    find,
    history,
    lock,
    promote,
    restore,
    revoke,
    rollback,
)
from pulumi_ucloud_images._cli import list as listing
from pulumi_ucloud_images._cli.usage import options_of, subparsers_of

MARK = "SeCrEt"  # every value carries it, so a partial echo is found too


@dataclass(frozen=True)
class Case:
    option: str  # the option as the parser knows it (``--private-key``)
    command: str  # "" for the top level
    form: str
    argv: tuple[str, ...]
    named: str  # what the error must name instead of the value

    def __str__(self) -> str:
        return f"{self.command or '(top)'} {self.option} {self.form}"


def _value(index: int) -> str:
    return f"zQ{index:04d}{MARK}x"


def _options(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    """One entry per option of a parser: its long spelling (``--help`` for ``-h/--help``) and its action."""
    found = []
    for action in parser._actions:
        if action.option_strings:
            found.append((max(action.option_strings, key=len), action))
    return found


def _misspelled(option: str, known: set[str]) -> str:
    body = option[2:]
    typo = "--" + (body.replace("-", "_", 1) if "-" in body else body + "s")
    assert typo not in known
    return typo


def _abbreviated(option: str, known: set[str]) -> str:
    short = option[: max(3, len(option) - 2)]
    assert short not in known
    return short


def _cases() -> list[Case]:
    root = _cli.build_parser()
    commands = subparsers_of(root)
    cases: list[Case] = []

    def add(option: str, command: str, form: str, argv: list[str], named: str) -> None:
        cases.append(Case(option, command, form, tuple(argv), named))

    parsers: list[tuple[str, argparse.ArgumentParser]] = [("", root), *commands.items()]
    top_level = set(options_of(root))
    for command, parser in parsers:
        known = set(options_of(parser))
        head = [command] if command else []
        for option, action in _options(parser):
            n = len(cases)
            typo = _misspelled(option, known)
            add(option, command, "misspelled", [*head, typo, _value(n)], typo)
            add(option, command, "misspelled=", [*head, f"{typo}={_value(n + 1)}"], typo)
            add(option, command, "one dash=", [*head, f"-{option[2:]}={_value(n + 2)}"], f"-{option[2:]}")
            short = _abbreviated(option, known)
            add(option, command, "abbreviated=", [*head, f"{short}={_value(n + 3)}"], short)
            if command and option not in top_level:  # (--help before a command is the top level's help)
                add(option, command, "before the command", [option, _value(n + 4), command], option)
            if command:
                add(option, command, "before the command=", [f"{option}={_value(n + 5)}", command], option)
            n = len(cases)
            if action.nargs == 0:
                add(option, command, "flag=value", [*head, f"{option}={_value(n)}"], option)
            elif action.choices or getattr(action.type, "accepts", None):
                add(option, command, "bad value", [*head, option, _value(n)], option)
                add(option, command, "bad value=", [*head, f"{option}={_value(n + 1)}"], option)
            else:  # any text is a value: the one that cannot be taken is one that looks like an option
                add(option, command, "value like an option", [*head, option, f"-{_value(n)}"], option)
    return cases


CASES = _cases()


@pytest.fixture
def no_handler_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every case is a usage error: a command that starts (an emulator serving forever) fails the test."""

    def refuse(args: argparse.Namespace, out: object) -> int:
        raise AssertionError("the command line parsed and a command ran")

    for command in (find, listing, emulator, lock, promote, rollback, revoke, restore, deprecate, history, audit):
        monkeypatch.setattr(command, "run", refuse)
    yield


FORMS = sorted({case.form for case in CASES})


def test_every_option_of_every_command_is_walked() -> None:
    root = _cli.build_parser()
    expected = {("", option) for option, _ in _options(root)}
    expected |= {(name, option) for name, sub in subparsers_of(root).items() for option, _ in _options(sub)}
    assert {(case.command, case.option) for case in CASES} == expected


@pytest.mark.parametrize("form", FORMS)
def test_no_usage_error_echoes_a_value(
    form: str, capsys: pytest.CaptureFixture[str], no_handler_runs: None
) -> None:
    """Every option in one careless form; a failure names each option and what went wrong."""
    failures = []
    for case in (case for case in CASES if case.form == form):
        code = _cli.main(list(case.argv))
        out, err = capsys.readouterr()
        first = err.splitlines()[0] if err else ""
        problems = [
            what for what, wrong in [
                (f"exit {code}, not 2", code != 2),
                ("wrote to stdout", out != ""),
                ("echoed the value", MARK.lower() in err.lower()),
                ("not one sentence", not (first.startswith("ucloud-images: error: ") and first.endswith("."))),
                ("a traceback", "Traceback" in err),
                (f"did not name {case.named}", case.named not in first),
            ] if wrong
        ]
        if problems:
            failures.append(f"{case}: {', '.join(problems)}: {first!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
def test_the_installed_command_does_not_echo_either(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("ucloud-images")
    for argv in (["find", f"--private_key={MARK}1"], ["--private-key", f"{MARK}2", "find"],
                 ["lock", "--timeout", f"{MARK}3"], ["emulator", f"-private-key={MARK}4"]):
        done = subprocess.run([str(script), *argv], capture_output=True, text=True, timeout=60,
                              env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 2
        assert MARK not in done.stdout + done.stderr
        assert done.stderr.startswith("ucloud-images: error: ")


@pytest.mark.parametrize("token", [f"-p{MARK}", f"-h{MARK}", f"-{MARK}", f"-x={MARK}"])
@pytest.mark.parametrize("command", ["find", "list", "lock"])
def test_a_value_glued_to_a_short_flag_is_not_echoed(
    token: str, command: str, capsys: pytest.CaptureFixture[str], no_handler_runs: None
) -> None:
    code = _cli.main([command, token])
    err = capsys.readouterr().err
    assert code == 2 and MARK not in err and MARK.lower() not in err.lower(), err
    named = token.split("=")[0] if "=" in token else f"{token[:2]}..."
    assert named in err.splitlines()[0]  # the flag it starts with is named instead
