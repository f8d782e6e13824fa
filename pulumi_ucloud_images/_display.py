"""Text the server controls, made safe to show to a person.

Image names, states, the API's ``Message`` and request ids come from the server. Shown as they came, an
escape sequence in one of them could repaint the terminal, a bidirectional override could make one name
read as another, and a 20 MB message would bury the error. :func:`shown` removes terminal escape sequences,
replaces every other control character, and cuts the text to a length that fits a message or a table cell.
:func:`json_for_people` keeps JSON exact (a program reading it gets every character back) while escaping
the characters a terminal would act on.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["json_for_people", "shown"]

ELLIPSIS = "\u2026"
REPLACEMENT = "\ufffd"
# ECMA-48 sequences: CSI (ESC [ or the 8-bit CSI), OSC/DCS/SOS/PM/APC strings up to their terminator, and the
# two-character escapes. Removed whole, so no half of one is left to act on.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?",
)
_WHITESPACE_CONTROLS = re.compile(r"[\t\n\v\f\r\x85\u2028\u2029]")
# C0, DEL, C1, and the invisible bidirectional controls (which make text read in another order than it is).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What JSON output escapes beyond what json.dumps(ensure_ascii=False) already does (C0 is always escaped).
_JSON_ESCAPED = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def shown(text: object, limit: int = 200) -> str:
    """``text`` without control characters or escape sequences, at most ``limit`` characters (``…`` marks a cut).

    Tabs and line breaks become spaces, so the text stays on one line; any other control character becomes
    U+FFFD, so it is visible that something was there.
    """
    value = str(text)
    if len(value) > 4 * limit + 64:  # bound the work on a huge text before the expressions run over it
        value = value[: 4 * limit + 64]
    value = _ESCAPE_SEQUENCE.sub("", value)
    value = _WHITESPACE_CONTROLS.sub(" ", value)
    value = _CONTROLS.sub(REPLACEMENT, value)
    if len(value) > limit:
        value = value[: max(limit - 1, 0)] + ELLIPSIS
    return value


def json_for_people(value: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """JSON that reads well (names stay readable, not ``\\u``-escaped) and that a terminal cannot act on.

    The decoded value is exactly ``value``: only characters a terminal or an editor would interpret (DEL,
    C1 controls, line separators, bidirectional controls) are written as ``\\uXXXX`` escapes.
    """
    text = json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=sort_keys)
    return _JSON_ESCAPED.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
