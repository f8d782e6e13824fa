"""The Python faces' keyword parameters for the query and the settings, generated from the models.

``get_images``, ``get_images_output`` and ``PinnedImage`` take every :class:`ImageQuery` field (and the
functions every lookup setting) as a real keyword parameter, so editors, ``help()`` and type checkers see
them. Writing them by hand three times is how a new filter gets forgotten in one face, so the parameter
lines between the markers below are written by this module from the models, and checked for drift::

    python -m pulumi_ucloud_images._signatures --write   # after adding a filter or a setting
    python -m pulumi_ucloud_images._signatures --check   # CI, and a test

A marker names the style of its block: ``plain`` (``str | None``), ``input`` (``pulumi.Input[str | None]``, as
``get_images_output`` takes them) or ``resource`` (``pulumi.Input[str] | None``, as resource arguments are
written), and whether the settings follow the query fields (``+ settings``).
"""

from __future__ import annotations

import argparse
import re
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from ._query import ImageQuery, field_extra
from ._settings import LOOKUP_ARGUMENTS, SETTINGS

__all__ = ["main", "render"]

PACKAGE = Path(__file__).resolve().parent
FILES = ("_functions.py", "_pinned.py")
_BEGIN = re.compile(
    r"^(?P<indent>[ ]*)# -- generated: query parameters \((?P<style>plain|input|resource)(?P<settings> \+ settings)?\)"
    r", by python -m pulumi_ucloud_images\._signatures --write\n",
    re.M,
)
_END = "# -- end of generated parameters\n"


def _base(annotation: Any) -> tuple[str, bool]:
    """A field's annotation -> the Python type a caller passes for one value, and whether it is a list."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) is tuple:
        return _base(get_args(annotation)[0])[0], True
    return annotation.__name__, False


def _parameters() -> list[tuple[str, str, bool]]:
    """(name, the type of one value, is a list) of every query field, in the model's order."""
    found = []
    for name, field in ImageQuery.model_fields.items():
        kind, is_list = _base(field.annotation)
        found.append((name, str(field_extra(field).get("accepts", kind)), is_list))
    return found


def _settings() -> list[tuple[str, str, bool]]:
    return [(name, SETTINGS[name].python_type, False) for name in LOOKUP_ARGUMENTS]


def _line(name: str, kind: str, is_list: bool, style: str) -> str:
    if style == "plain":
        return f"{name}: {f'Sequence[{kind}]' if is_list else kind} | None = None,"
    value = f"Sequence[pulumi.Input[{kind}]]" if is_list else kind
    if style == "input":
        return f"{name}: pulumi.Input[{value} | None] = None,"
    return f"{name}: pulumi.Input[{value}] | None = None,"


def _block(indent: str, style: str, with_settings: bool) -> str:
    rows = _parameters() + (_settings() if with_settings else [])
    return "".join(f"{indent}{_line(name, kind, is_list, style)}\n" for name, kind, is_list in rows)


def render(text: str) -> str:
    """``text`` with every generated block rewritten from the models."""
    out, at = [], 0
    for begin in _BEGIN.finditer(text):
        end = text.index(begin["indent"] + _END, begin.end())
        out += [text[at:begin.end()], _block(begin["indent"], begin["style"], bool(begin["settings"]))]
        at = end
    return "".join(out) + text[at:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pulumi_ucloud_images._signatures", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite the generated parameters")
    action.add_argument("--check", action="store_true", help="exit 1 if any generated parameters are out of date")
    args = parser.parse_args(argv)
    stale = []
    for name in FILES:
        path = PACKAGE / name
        text = path.read_text(encoding="utf-8")
        wanted = render(text)
        if wanted != text:
            stale.append(path.name)
            if args.write:
                path.write_text(wanted, encoding="utf-8")
    if args.check and stale:
        print(f"{', '.join(stale)}: generated parameters are out of date with the models; run: "
              "python -m pulumi_ucloud_images._signatures --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
