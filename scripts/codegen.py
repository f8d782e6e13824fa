#!/usr/bin/env python3
"""Write, or check, what the source tree derives from the models: ``schema.json`` (at the root, and the copy
the plugin serves from the package) and the Python faces' parameters.

    python scripts/codegen.py --write   # after adding a filter or a setting
    python scripts/codegen.py --check   # CI: exit 1 when anything is out of date

It writes into this repository's source tree only (the files beside this script), never into an installed
package: the package it imports must be the one in this tree (an editable install, or run from the root).

The Python faces (``get_images``, ``get_images_output``, ``PinnedImage``) take every ``ImageQuery`` field (and
the functions every lookup setting) as a real keyword parameter, so editors, ``help()`` and type checkers see
them; writing them by hand three times is how a new filter gets forgotten in one face. Two kinds of block
are generated between markers:

- ``# -- generated: query parameters (STYLE[ + settings]), by scripts/codegen.py --write`` … ``# -- end of
  generated parameters``: the parameters, in the style ``plain`` (``str | None``), ``input``
  (``pulumi.Input[str | None]``, as ``get_images_output`` takes them) or ``resource`` (``pulumi.Input[str] |
  None``, as resource arguments are written);
- ``# -- generated: arguments by name (query[ + settings]), by scripts/codegen.py --write`` … ``# -- end of
  generated arguments``: a dict of those same parameters by name, so the body names each one plainly.
"""

from __future__ import annotations

import argparse
import re
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pulumi_ucloud_images import _query  # noqa: E402  (the tree's own package, first on the path)
from pulumi_ucloud_images._pulumi import schema as _schema  # noqa: E402
from pulumi_ucloud_images._settings.settings import LOOKUP_ARGUMENTS, SETTINGS  # noqa: E402

PACKAGE = ROOT / "pulumi_ucloud_images"
SCHEMA = ROOT / "schema.json"
FACES = ("_pulumi/functions.py", "_pulumi/pinned_image.py")
_PARAMETERS = re.compile(
    r"^(?P<indent>[ ]*)# -- generated: query parameters \((?P<style>plain|input|resource)(?P<settings> \+ settings)?\)"
    r", by scripts/codegen\.py --write\n",
    re.M,
)
_ARGUMENTS = re.compile(
    r"^(?P<indent>[ ]*)# -- generated: arguments by name \(query(?P<settings> \+ settings)?\)"
    r", by scripts/codegen\.py --write\n",
    re.M,
)
_PARAMETERS_END = "# -- end of generated parameters\n"
_ARGUMENTS_END = "# -- end of generated arguments\n"


def _base(annotation: Any) -> tuple[str, bool]:
    """A field's annotation -> the Python type a caller passes for one value, and whether it is a list."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) is tuple:
        return _base(get_args(annotation)[0])[0], True
    return str(annotation.__name__), False


def _rows(with_settings: bool) -> list[tuple[str, str, bool]]:
    """(name, the type of one value, is a list) of every query field in the model's order, then the settings."""
    rows = []
    for name, field in _query.ImageQuery.model_fields.items():
        kind, is_list = _base(field.annotation)
        rows.append((name, str(_query.field_extra(field).get("accepts", kind)), is_list))
    if with_settings:
        rows += [(name, SETTINGS[name].python_type, False) for name in LOOKUP_ARGUMENTS]
    return rows


def _parameter(name: str, kind: str, is_list: bool, style: str) -> str:
    if style == "plain":
        return f"{name}: {f'Sequence[{kind}]' if is_list else kind} | None = None,"
    value = f"Sequence[pulumi.Input[{kind}]]" if is_list else kind
    if style == "input":
        return f"{name}: pulumi.Input[{value} | None] = None,"
    return f"{name}: pulumi.Input[{value}] | None = None,"


def _rewrite(text: str, begin: re.Pattern[str], end: str, block: Any) -> str:
    out, at = [], 0
    for found in begin.finditer(text):
        stop = text.index(found["indent"] + end, found.end())
        out += [text[at:found.end()], block(found)]
        at = stop
    return "".join(out) + text[at:]


def render_faces(text: str) -> str:
    """``text`` with every generated block rewritten from the models."""

    def parameters(found: re.Match[str]) -> str:
        rows = _rows(bool(found["settings"]))
        return "".join(f"{found['indent']}{_parameter(name, kind, is_list, found['style'])}\n"
                       for name, kind, is_list in rows)

    def arguments(found: re.Match[str]) -> str:
        indent = found["indent"]
        rows = _rows(bool(found["settings"]))
        return "".join(f'{indent}"{name}": {name},\n' for name, _, _ in rows)

    text = _rewrite(text, _PARAMETERS, _PARAMETERS_END, parameters)
    return _rewrite(text, _ARGUMENTS, _ARGUMENTS_END, arguments)


def generated() -> dict[Path, str]:
    """Every generated file of the tree, as the models would write it."""
    schema = _schema.render()
    files = {SCHEMA: schema, PACKAGE / "_pulumi" / "schema.json": schema}
    for name in FACES:
        files[PACKAGE / name] = render_faces((PACKAGE / name).read_text(encoding="utf-8"))
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/codegen.py", description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite what is out of date")
    action.add_argument("--check", action="store_true", help="exit 1 if anything is out of date")
    args = parser.parse_args(argv)
    if Path(_schema.__file__).resolve().parents[1] != PACKAGE:
        print(f"scripts/codegen.py: the package imported is {Path(_schema.__file__).parent}, not this tree's; run it "
              "from the tree's own environment (pip install -e .)", file=sys.stderr)
        return 2
    stale = []
    for path, wanted in generated().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != wanted:
            stale.append(str(path.relative_to(ROOT)))
            if args.write:
                path.write_text(wanted, encoding="utf-8")
    if args.check and stale:
        print(f"{', '.join(stale)}: out of date with the models; run: python scripts/codegen.py --write",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
