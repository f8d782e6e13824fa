"""Text the server controls reaches people without control characters, cut to a sane length.

Image names, states, the API's Message and request ids are the server's: shown raw, an escape sequence could
repaint the terminal and a bidirectional override could make one name read as another. Errors and the
``list`` table show them cleaned and cut; ``--output json`` and the lockfile keep them exact, with the
characters a terminal or an editor would act on written as ``\\u`` escapes.
"""

from __future__ import annotations

import json
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pulumi_ucloud_images import APIError, ResponseFormatError
from pulumi_ucloud_images._api.image import parse_page
from pulumi_ucloud_images._cli import main
from pulumi_ucloud_images._cli.list import _width
from pulumi_ucloud_images._display import json_for_people, shown
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator
from pulumi_ucloud_images._lockfile.lockfile import LATEST, Lockfile, Pin, lockfile_text
from pulumi_ucloud_images._query import parse_query

ESC = "\x1b"
# What a hostile name can hold: a screen clear, colours, a window-title OSC, the 8-bit CSI, a bell, a carriage
# return that would overwrite the line, and a right-to-left override that makes the name read backwards.
HOSTILE = f"evil{ESC}[2J{ESC}[31mRED{ESC}[0m{ESC}]0;owned\x07\x9b1mX\x07\rover\u202egnp.exe"


BIDI = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def controls(text: str) -> list[str]:
    """Every character a terminal acts on, other than the line breaks that end lines."""
    return [ch for ch in text if ch != "\n" and (unicodedata.category(ch) == "Cc" or ch in BIDI)]


# -- the helpers ----------------------------------------------------------------------------------------------


def test_shown_removes_escape_sequences_and_replaces_other_controls() -> None:
    assert shown(f"a{ESC}[1;31mb{ESC}[0mc") == "abc"
    assert shown(f"a{ESC}]0;title\x07b") == "ab"  # an OSC string, up to its terminator
    assert shown(f"a{ESC}]8;;http://x{ESC}\\b") == "ab"
    assert shown("a\x9b2Jb") == "ab"  # the 8-bit CSI
    assert shown("a\tb\nc\r\nd") == "a b c  d"  # line breaks and tabs: one line
    assert shown("a\x07b\x00c\x7fd") == "a\ufffdb\ufffdc\ufffdd"  # visible: something was there
    assert shown("abc\u202edef") == "abc\ufffddef"
    cleaned = shown(HOSTILE, 200)
    assert controls(cleaned) == []
    assert cleaned.startswith("evilRED")


def test_shown_keeps_ordinary_text_and_cuts_long_text() -> None:
    assert shown(" CentOS 7.6 64位 ") == " CentOS 7.6 64位 "  # stray spaces and CJK are ordinary text
    assert shown("x" * 500, 300) == "x" * 299 + "\u2026"
    assert len(shown("x" * 500, 300)) == 300
    started = time.monotonic()
    assert len(shown(f"{ESC}[31m" * 2_000_000 + "y" * 20_000_000, 300)) <= 300  # 28 MB: bounded work
    assert time.monotonic() - started < 2


def test_json_for_people_is_exact_and_inert() -> None:
    value = {"ImageName": HOSTILE, "n": "\u2028line\u0085next\u009b", "plain": "Ubuntu 22.04 64位"}
    text = json_for_people(value)
    assert json.loads(text) == value  # a program gets every character back
    assert controls(text) == [] and "\u2028" not in text and "\x85" not in text
    assert "Ubuntu 22.04 64位" in text  # readable, not \u-escaped


# -- the command ---------------------------------------------------------------------------------------------


def _record(image_id: str, name: str, created: int, **extra: Any) -> dict[str, Any]:
    return {"ImageId": image_id, "ImageName": name, "OsType": "Linux", "OsName": "Evil 1", "ImageType": "Base",
            "State": "Available", "CreateTime": created, "Zone": "cn-bj2-02", "Features": ["CloudInit"], **extra}


HOSTILE_CATALOG = [
    _record("uimage-evil01", HOSTILE, 1_700_000_000),
    _record("uimage-evil02", "evil-" + "x" * 5000, 1_700_000_100),
    _record("uimage-evil03", "evil three", 1_700_000_200, State=f"Mak{ESC}[5ming"),
]


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch, start_emulator: Callable[[Emulator], Emulator]) -> Emulator:
    server = start_emulator(Emulator(HOSTILE_CATALOG))
    monkeypatch.setenv("UCLOUD_API_BASE_URL", server.base_url)
    monkeypatch.setenv("UCLOUD_PUBLIC_KEY", DEMO_PUBLIC_KEY)
    monkeypatch.setenv("UCLOUD_PRIVATE_KEY", DEMO_PRIVATE_KEY)
    monkeypatch.setenv("UCLOUD_REGION", "cn-bj2")
    return server


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_list_table_shows_names_cleaned_and_cut(hostile: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "list", "--name-regex", "^evil", "--wide")
    assert (code, err) == (0, "")
    assert controls(out) == []
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == {"uimage-evil01", "uimage-evil02"}  # evil03's state is no known state
    assert "evilRED" in rows["uimage-evil01"]
    assert "evil-" + "x" * 54 + "\u2026" in rows["uimage-evil02"] and "x" * 55 not in rows["uimage-evil02"]
    assert max(len(line) for line in out.splitlines()) < 250  # not a 5000-character line
    # The default table cuts names further, to fit 80 columns, and still shows no control character.
    code, out, err = run(capsys, "list", "--name-regex", "^evil")
    assert (code, err) == (0, "") and controls(out) == []
    assert max(_width(line) for line in out.splitlines()) <= 80  # terminal columns: CJK characters count two
    assert "\u2026" in out


def test_json_output_keeps_the_names_exactly(hostile: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--name-regex", "^evil", "--output", "json")
    assert code == 0
    assert controls(out) == []
    names = {record["imageId"]: record["imageName"] for record in json.loads(out)}
    assert names["uimage-evil01"] == HOSTILE and names["uimage-evil02"] == "evil-" + "x" * 5000
    code, out, _ = run(capsys, "find", "--image-id", "uimage-evil01", "--output", "json")
    assert code == 0 and controls(out) == [] and json.loads(out)["image"]["imageName"] == HOSTILE


def test_errors_show_names_and_states_cleaned_and_cut(hostile: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "find", "--name-regex", "^evil")
    assert (code, out) == (4, "")
    assert controls(err.rstrip("\n")) == []
    assert "'evilRED" in err and "'evil-" + "x" * 74 + "\u2026'" in err and "x" * 75 not in err
    code, _, err = run(capsys, "find", "--name-regex", "^evil three")
    assert code == 3  # its state is no known state: the error counts it under that state, cleaned
    assert controls(err.rstrip("\n")) == [] and "1 Making image would pass" in err


class _HostileAPI(BaseHTTPRequestHandler):
    """Answers every request with an error whose Message and request id are hostile."""

    message: ClassVar[str] = f"{ESC}[31mAccess denied{ESC}[0m\x07 " + "y" * 1_000_000

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"RetCode": 230, "Action": "DescribeImageResponse", "Message": self.message}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-UCLOUD-REQUEST-UUID", f"req{ESC}[2J-1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hostile_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_api_message_is_cleaned_and_cut(hostile_api: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "find", "--region", "cn-bj2", "--public-key", "pk", "--private-key", "sk",
                         "--base-url", hostile_api)
    assert (code, out) == (5, "")
    assert err.startswith("ucloud-images: error: UCloud API DescribeImage failed with RetCode 230: Access denied")
    assert controls(err.rstrip("\n")) == []
    assert "req-1" in err  # the request id, cleaned
    assert len(err) < 1000  # not a megabyte of message


def test_the_error_object_holds_the_cleaned_message() -> None:
    error = APIError(230, f"{ESC}[31mbad{ESC}[0m " + "z" * 10_000, action="DescribeImage", request_id=f"r{ESC}[Kq")
    assert error.api_message.startswith("bad z") and len(error.api_message) <= 300
    assert error.request_id == "rq"
    assert controls(str(error)) == [] and len(str(error)) < 600


def test_an_image_id_that_is_not_an_id_is_refused() -> None:
    body = {"TotalCount": 1, "ImageSet": [{"ImageId": f"uimage-x{ESC}]0;owned\x07"}]}
    with pytest.raises(ResponseFormatError) as caught:
        parse_page(body)
    assert "whose ImageId is not an ID" in str(caught.value) and controls(str(caught.value)) == []


# -- the lockfile ------------------------------------------------------------------------------------------


def test_pins_are_described_cleaned_and_written_exactly(tmp_path: Path) -> None:
    pin = Pin(query=parse_query(name_regex="^evil"), region="cn-bj2", image_id="uimage-evil01",
              image_name=HOSTILE, create_time=1_700_000_000, locked_at="2026-01-01T00:00:00Z")
    assert controls(pin.describe()) == [] and "evilRED" in pin.describe()
    locked = Lockfile.empty().with_selection("web", pin.query, ())
    locked = locked.with_images("web", LATEST, {"cn-bj2": pin.held()}, "lock")
    text = lockfile_text(locked)
    assert controls(text) == []  # a reviewed diff shows what the file holds
    assert json.loads(text)["selections"]["web"]["channels"]["latest"]["cn-bj2"]["image_name"] == HOSTILE


@pytest.mark.parametrize("region", ["cn-bj2", "cn-sh2", "hk", "us-ca"])
@pytest.mark.parametrize("extra", [(), ("--prices",), ("--state", "Available", "--state", "Making"),
                                   ("--include-marketplace", "--prices", "--state", "Available", "--state", "Making")])
def test_every_list_table_fits_80_terminal_columns(
    region: str, extra: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """Whichever optional columns appear (STATE, MONTHLY, marketplace types) and whatever the names' scripts."""
    assert main(["list", "--emulator", "--region", region, *extra]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1
    assert max(_width(line) for line in lines) <= 80
    ids = [line.split()[0] for line in lines[1:]]
    assert all(image_id.startswith("uimage-") and "\u2026" not in image_id for image_id in ids)  # IDs never cut

