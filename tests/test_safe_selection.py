"""Safe by default: marketplace images only when asked, most_recent within one architecture, EOL-aware
selection, the GPU/scene/vendor/price filters, and the command's outputs for pipelines.

Most tests run against the bundled catalogue (see ``_catalog``'s fixed facts): in cn-bj2 the newest image
whose name starts with "Ubuntu 22.04" is the marketplace image ``uimage-ub22wp``, a newer arm64 twin
``uimage-ub22a6`` exists, and ``uimage-f1chxn`` (CentOS 7.2) ended its maintenance on 2024/06/30. A few use a
small catalogue written here, where blank and malformed EOL dates can be set.
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import unicodedata
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pulumi_ucloud_images import (
    AmbiguousImageError,
    Client,
    InvalidQueryError,
    NoImageFoundError,
    Settings,
    list_images,
    lookup_images,
)
from pulumi_ucloud_images._api.image import Image, parse_eol
from pulumi_ucloud_images._cli import main
from pulumi_ucloud_images._cli.common import exit_code_for
from pulumi_ucloud_images._cli.list import TABLE_WIDTH, TSV_COLUMNS, table_width
from pulumi_ucloud_images._emulator.catalog import build_catalog
from pulumi_ucloud_images._emulator.service import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, Emulator
from pulumi_ucloud_images._pulumi.schema import IMAGE_TOKEN, build_schema
from pulumi_ucloud_images._query import parse_query

UBUNTU: dict[str, Any] = {"os_type": "linux", "name_regex": r"^Ubuntu 22\.04"}
HEADLINE = ["find", "--region", "cn-bj2", "--os-type", "linux", "--name-regex", r"^Ubuntu 22\.04", "--most-recent"]
CATALOG = {record["ImageId"]: record for record in build_catalog()}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def newest(keep: Any) -> str:
    """The newest Available cn-bj2 image of the bundled catalogue that ``keep`` accepts (computed, not assumed)."""
    records = [r for r in CATALOG.values() if r["Zone"].startswith("cn-bj2-") and r["State"] == "Available" and keep(r)]
    return str(max(records, key=lambda r: (r["CreateTime"], r["ImageId"]))["ImageId"])


def ubuntu(record: dict[str, Any]) -> bool:
    return str(record["ImageName"]).startswith("Ubuntu 22.04") and record["OsType"] == "Linux"


# -- 1. marketplace images only when named ----------------------------------------------------------------


def test_the_headline_query_no_longer_returns_a_newer_marketplace_image(ucloud_emulator_env: Emulator) -> None:
    market = newest(ubuntu)
    assert CATALOG[market]["ImageType"] == "Business"  # the trap: the newest name-alike is a vendor's image
    ids = [image.image_id for image in list_images(**UBUNTU)]
    assert market not in ids and ids
    assert all(CATALOG[image_id]["ImageType"] == "Base" for image_id in ids)
    result = lookup_images(**UBUNTU, architecture="x86_64", most_recent=True)
    assert result.image_id == newest(lambda r: ubuntu(r) and r["ImageType"] == "Base"
                                     and "Aarch64_Type" not in r["Features"]) == "uimage-ub2205"


@pytest.mark.parametrize(
    "naming",
    [{"image_type": "Business"}, {"func_type": "uhost"}, {"func_type": "gpu"}, {"include_marketplace": True}],
)
def test_a_query_that_names_the_marketplace_gets_its_images(
    ucloud_emulator_env: Emulator, naming: dict[str, Any]
) -> None:
    found = {image.image_id: image for image in list_images(**UBUNTU, **naming)}
    business = {image_id for image_id, image in found.items() if image.image_type == "Business"}
    assert business  # some marketplace image of the catalogue answers every way of naming them
    if naming.get("func_type"):
        assert {found[image_id].func_type for image_id in business} == {naming["func_type"]}
    if naming.get("include_marketplace"):
        assert {"uimage-ub22wp", "uimage-ub22cu"} <= business and "uimage-ub2205" in found


def test_base_and_custom_images_are_unaffected(ucloud_emulator_env: Emulator) -> None:
    golden = lookup_images(project_id="org-platform", image_type="custom", name_regex="^golden-web-",
                           most_recent=True)
    assert golden.image_id == "uimage-gw0314"
    # include_marketplace could only do nothing beside a Base or Custom image type: it is refused there
    # (tests/cli/test_ignored_options.py), so these two types are never widened.
    with pytest.raises(InvalidQueryError, match="image type Base has none"):
        list_images(**UBUNTU, include_marketplace=True, image_type="base")


def test_zero_matches_count_the_marketplace_images_left_out_and_say_how_to_include_them(
    ucloud_emulator_env: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(NoImageFoundError) as caught:
        lookup_images(name_regex="^WordPress 6.4")
    message = str(caught.value)
    left_out = len(list_images(name_regex="^WordPress 6.4", include_marketplace=True))
    assert left_out > 1
    assert (f"{left_out} marketplace (Business) images were left out: set include_marketplace (or name "
            "image_type Business or a func_type) to include them") in message
    code, out, err = run(capsys, "find", "--emulator", "--name-regex", "^WordPress 6.4")
    assert (code, out) == (3, "")
    assert f"{left_out} marketplace (Business) images were left out: set --include-marketplace (or name " \
        "--image-type Business or a --func-type) to include them" in err
    assert run(capsys, "find", "--emulator", "--name-regex", "^WordPress 6.4", "--include-marketplace",
               "--most-recent")[0] == 0


# -- 2. most_recent within one architecture ---------------------------------------------------------------


def test_most_recent_over_both_architectures_is_ambiguous_and_says_how_to_choose(
    ucloud_emulator_env: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(AmbiguousImageError) as caught:
        lookup_images(**UBUNTU, most_recent=True)
    message = str(caught.value)
    assert "x86_64" in message and "aarch64" in message
    assert "the newest x86_64 one is uimage-ub2205" in message and "the newest aarch64 one is uimage-ub22a6" in message
    assert message.endswith("most_recent does not choose between architectures: set architecture to x86_64 or "
                            "aarch64.")
    assert exit_code_for(caught.value) == 4
    assert set(caught.value.image_ids) == {i.image_id for i in list_images(**UBUNTU)}

    code, out, err = run(capsys, *HEADLINE, "--emulator")
    assert (code, out) == (4, "")
    assert "x86_64" in err and "aarch64" in err and "set --architecture to x86_64 or aarch64." in err
    assert run(capsys, *HEADLINE, "--emulator", "--architecture", "aarch64") == (0, "uimage-ub22a6\n", "")
    assert run(capsys, *HEADLINE, "--emulator", "--architecture", "x86_64") == (0, "uimage-ub2205\n", "")


def test_one_architecture_or_one_match_resolves_as_before(ucloud_emulator_env: Emulator) -> None:
    only_x86 = lookup_images(name_regex=r"^Rocky 9\.4", image_type="base", zone="cn-bj2-02", most_recent=True)
    assert {image.architecture for image in only_x86.images} == {"x86_64"}
    one = lookup_images(ids=["uimage-ub22a6"], name_regex="^Ubuntu", most_recent=True)
    assert one.image_id == "uimage-ub22a6" and one.total_count == 1


# -- 3. end of life ---------------------------------------------------------------------------------------

T0 = 1_700_000_000


def record(image_id: str, eol: Any, *, created: int = T0, **fields: Any) -> dict[str, Any]:
    return {"ImageId": image_id, "ImageName": f"Debian {image_id}", "Zone": "cn-bj2-02", "OsType": "Linux",
            "OsName": "Debian", "ImageType": "Base", "State": "Available", "CreateTime": created, "Features": [],
            "MaintainEol": eol, **fields}


SMALL = [
    record("uimage-old", "2024/06/30", created=T0 + 3),
    record("uimage-edge", "2026/12/01", created=T0 + 2),  # the last day of support is "today" in these tests
    record("uimage-new", "2030/01/31", created=T0 + 1),
    record("uimage-blank", "", created=T0 + 4),
    record("uimage-bad", "31/01/2030", created=T0 + 5),
]


@pytest.fixture(scope="module")
def small() -> Iterator[Emulator]:
    with Emulator(SMALL) as server:
        yield server


@pytest.fixture
def client(small: Emulator) -> Iterator[Client]:
    small.reset_requests()
    settings = Settings(public_key=DEMO_PUBLIC_KEY, private_key=SecretStr(DEMO_PRIVATE_KEY), region="cn-bj2",
                        base_url=small.base_url, timeout=5)
    with Client(settings) as instance:
        yield instance


def ids(images: list[Image]) -> list[str]:
    return [image.image_id for image in images]


def test_maintain_eol_is_a_date_and_blank_or_malformed_is_unknown_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert parse_eol("2024/06/30") == date(2024, 6, 30)
    assert parse_eol(" 2027/4/30 ") == date(2027, 4, 30)
    with caplog.at_level(logging.DEBUG, logger="pulumi_ucloud_images"):
        assert parse_eol("", "uimage-blank") is None
        assert parse_eol("2024/02/30", "uimage-feb30") is None
        assert parse_eol("soon", "uimage-soon") is None
    logged = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert any(level == logging.DEBUG and "uimage-blank" in text for level, text in logged)
    assert any(level == logging.WARNING and "uimage-feb30" in text and "'2024/02/30'" in text for level, text in logged)
    image = Image.model_validate(record("uimage-x", "2030/01/31"))
    assert image.eol_date == date(2030, 1, 31) and image.to_json()["eolDate"] == "2030-01-31"
    assert Image.model_validate(record("uimage-y", "never")).to_json()["eolDate"] is None


def test_exclude_eol_drops_only_images_past_it_and_keeps_unknown_ones(client: Client) -> None:
    assert ids(list_images(client=client)) == ["uimage-bad", "uimage-blank", "uimage-old", "uimage-edge", "uimage-new"]
    assert ids(list_images(client=client, exclude_eol=True)) == ["uimage-bad", "uimage-blank", "uimage-edge",
                                                                 "uimage-new"]
    # the lookup's date is injectable: a day later the edge image is past its end of life too
    assert ids(list_images(client=client, exclude_eol=True, today=date(2026, 12, 2))) == [
        "uimage-bad", "uimage-blank", "uimage-new"]


def test_supported_until_keeps_images_maintained_then_and_drops_unknown_ones(client: Client) -> None:
    assert ids(list_images(client=client, supported_until="2026-12-01")) == ["uimage-edge", "uimage-new"]
    assert ids(list_images(client=client, supported_until=date(2026, 12, 2))) == ["uimage-new"]
    assert ids(list_images(client=client, supported_until="2030/01/31")) == ["uimage-new"]
    assert ids(list_images(client=client, supported_until="2030-02-01")) == []


def test_zero_matches_say_how_many_images_the_eol_filters_dropped(client: Client) -> None:
    with pytest.raises(NoImageFoundError) as caught:
        lookup_images(client=client, name_regex="old", exclude_eol=True)
    assert str(caught.value).endswith(
        "none passing every filter, though 1 image was dropped by the EOL filter exclude_eol (past or not known "
        "to reach the end-of-life date asked for); leave it out to include it."
    )
    with pytest.raises(NoImageFoundError) as caught:
        lookup_images(client=client, supported_until="2031-01-01", exclude_eol=True)
    assert "5 images were dropped by the EOL filters exclude_eol and supported_until" in str(caught.value)


def test_choosing_an_image_past_its_end_of_life_succeeds_with_a_warning(client: Client) -> None:
    old = lookup_images(client=client, ids=["uimage-old"])
    assert old.image_id == "uimage-old"
    (warning,) = old.warnings
    assert "uimage-old" in warning and "2024/06/30" in warning and "exclude_eol" in warning
    assert lookup_images(client=client, ids=["uimage-edge"]).warnings == ()  # maintained until today
    assert lookup_images(client=client, ids=["uimage-blank"]).warnings == ()  # unknown: nothing to warn about
    newest_kept = lookup_images(client=client, exclude_eol=True, most_recent=True)
    assert (newest_kept.image_id, newest_kept.warnings) == ("uimage-bad", ())


def test_the_command_warns_on_stderr_and_keeps_stdout_for_the_id(
    ucloud_emulator_env: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "find", "--emulator", "--name-regex", r"^CentOS 7\.2 64位$")
    assert (code, out) == (0, "uimage-f1chxn\n")
    assert err.startswith("warning: ") and err.count("\n") == 1
    assert "uimage-f1chxn" in err and "2024/06/30" in err
    code, out, err = run(capsys, "find", "--emulator", "--name-regex", r"^CentOS 7\.2 64位$", "--exclude-eol")
    assert code == 3 and out == ""
    assert "1 image was dropped by the EOL filter --exclude-eol" in err


def test_the_eol_filters_and_the_bundled_catalogue(ucloud_emulator_env: Emulator) -> None:
    today = date(2026, 12, 1)
    everything = list_images(include_marketplace=True, states=["Available", "Making", "Unavailable", "Copying"])
    past = [image for image in everything if image.past_eol(today)]
    assert past and len(past) < len(everything)
    kept = list_images(include_marketplace=True, states=["Available", "Making", "Unavailable", "Copying"],
                       exclude_eol=True)
    assert {i.image_id for i in kept} == {i.image_id for i in everything} - {i.image_id for i in past}


@pytest.mark.parametrize(
    ("value", "reason"),
    [("next year", "must be a date written YYYY-MM-DD"), ("2027-02-30", "must be a date written YYYY-MM-DD"),
     (20270101, "must be a date written YYYY-MM-DD")],
)
def test_a_bad_supported_until_is_one_sentence_before_any_request(
    client: Client, small: Emulator, value: Any, reason: str
) -> None:
    with pytest.raises(InvalidQueryError) as caught:
        lookup_images(client=client, supported_until=value)
    assert str(caught.value) == f"Invalid supported_until {value!r}: {reason}, e.g. 2027-01-01." or (
        str(caught.value) == f"Invalid supported_until '{value}': {reason}, e.g. 2027-01-01."
    )
    assert small.request_count == 0


# -- 4. GPU types, scene categories, vendor, prices -----------------------------------------------------------


def test_gpu_types_must_all_be_supported(ucloud_emulator_env: Emulator) -> None:
    both = list_images(gpu_types=["a100", "H100"], include_marketplace=True)
    assert ids(both) == ["uimage-ub22cu"]
    a100 = list_images(gpu_types=["A100"], include_marketplace=True)
    assert len(a100) > 1 and all("A100" in image.supported_gpu_types for image in a100)
    assert list_images(gpu_types=["A100", "AMD-V520"], include_marketplace=True) == []


def test_scene_categories_match_any(ucloud_emulator_env: Emulator) -> None:
    found = list_images(scene_categories=["aimodels", "HPC"], include_marketplace=True)
    assert found and all({"AIModels", "HPC"} & set(image.scene_categories) for image in found)
    assert {"AIModels", "HPC"} <= {scene for image in found for scene in image.scene_categories}
    with pytest.raises(InvalidQueryError) as caught:
        parse_query(scene_categories=["AIArt"])
    assert str(caught.value) == (
        "Invalid scene_categories entry 'AIArt': must be one of Featured, PreInstalledDrivers, AIPainting, "
        "AIModels, HPC."
    )


def test_vendor_regex_searches_the_vendor_with_the_same_safe_regexes(ucloud_emulator_env: Emulator) -> None:
    found = list_images(vendor_regex="^Deep", include_marketplace=True)
    assert ids(found) == ["uimage-ub22cu"]
    assert list_images(vendor_regex="^Deep") == []  # a vendor's image is still a marketplace image
    with pytest.raises(InvalidQueryError) as caught:
        parse_query(vendor_regex="(Deep")
    assert str(caught.value).startswith("Invalid vendor_regex '(Deep': not a valid regular expression: missing )")


def test_software_regex_searches_the_integrated_software_in_every_face(
    ucloud_emulator_env: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    found = list_images(software_regex=r"^WordPress 6\.5", include_marketplace=True)
    assert ids(found) == ["uimage-ub22wp"]
    assert all("WordPress" in image.integrated_software for image in list_images(
        software_regex="wordpress|WordPress", include_marketplace=True
    ))
    assert list_images(software_regex="WordPress") == []  # software comes with marketplace images only
    with pytest.raises(InvalidQueryError) as caught:
        parse_query(software_regex="(Word")
    assert str(caught.value).startswith("Invalid software_regex '(Word': not a valid regular expression: missing )")
    # The command's flag, the plugin's input and the schema come from the field alone.
    assert main(["find", "--software-regex", r"Nginx 1\.24", "--func-type", "uhost", "--name-regex", "WordPress"]) == 0
    assert capsys.readouterr().out == "uimage-ub22wp\n"
    from pulumi.provider.experimental.property_value import PropertyValue

    from pulumi_ucloud_images._pulumi.provider import parse_arguments

    query, failures = parse_arguments({"softwareRegex": PropertyValue("PyTorch"),
                                       "includeMarketplace": PropertyValue(True)})
    assert failures == [] and query is not None and query.software_regex == "PyTorch"
    schema = build_schema()
    assert "softwareRegex" in schema["functions"]["ucloud-images:index:getImages"]["inputs"]["properties"]


def test_prices_ask_for_price_set_and_show_in_the_result_json_and_table(
    ucloud_emulator_env: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = lookup_images(ids=["uimage-ub22wp"], include_marketplace=True)
    assert plain.image.price_set == () and "PriceSet" not in ucloud_emulator_env.requests[-1].params
    priced = lookup_images(ids=["uimage-ub22wp"], include_marketplace=True, prices=True)
    assert ucloud_emulator_env.requests[-1].params["PriceSet"] == "1"
    month = next(price for price in priced.image.price_set if price.charge_type == "Month")
    assert month.price is not None and month.price > 0

    code, out, _ = run(capsys, "find", "--emulator", "--id", "uimage-ub22wp", "--include-marketplace", "--prices",
                       "--output", "json")
    assert code == 0
    entries = json.loads(out)["image"]["priceSet"]
    assert {"chargeType": "Month", "price": month.price, "originalPrice": month.original_price} in entries
    code, out, _ = run(capsys, "list", "--emulator", "--id", "uimage-ub22wp", "--include-marketplace", "--prices")
    header, row = out.splitlines()
    assert header.split()[-1] == "MONTHLY" and row.split()[-1] == f"{month.price:.2f}"


# -- 6. output for pipelines -----------------------------------------------------------------------------------


def test_the_list_table_fits_80_columns_off_a_terminal_and_wide_shows_everything(
    ucloud_emulator_env: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "list", "--emulator", "--include-marketplace")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["IMAGE", "ID", "NAME"]
    assert max(width(line) for line in lines) <= TABLE_WIDTH
    assert any("\u2026" in line for line in lines)  # a long name, cut with an ellipsis
    code, wide, _ = run(capsys, "list", "--emulator", "--include-marketplace", "--wide")
    assert code == 0
    assert max(width(line) for line in wide.splitlines()) > TABLE_WIDTH
    assert "Stable Diffusion WebUI 1.7 (Ubuntu 22.04)" in wide and "EOL" in wide.splitlines()[0]
    # both list the same images, in the same order
    assert [line.split()[0] for line in lines] == [line.split()[0] for line in wide.splitlines()]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_table_width_is_the_terminals_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "132")
    assert table_width(_Terminal()) == 132
    assert table_width(io.StringIO()) == TABLE_WIDTH  # a file or a pipe: 80 whatever the terminal around it


def _list_on_a_terminal(columns: int) -> str:
    """``ucloud-images list`` with its stdout on a pseudo-terminal ``columns`` wide, COLUMNS unset."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
    script = Path(sys.executable).with_name("ucloud-images")
    with subprocess.Popen([str(script), "list", "--emulator", "--include-marketplace"], stdout=follower,
                          stderr=subprocess.PIPE, env=env) as process:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the command has ended
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=60) == 0
    os.close(leader)
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


@pytest.mark.slow
def test_the_list_table_uses_the_width_of_the_terminal_it_writes_to() -> None:
    wide = _list_on_a_terminal(160).splitlines()
    assert 80 < max(width(line) for line in wide) <= 160
    narrow = _list_on_a_terminal(60).splitlines()
    assert max(width(line) for line in narrow) <= 60
    assert [line.split()[0] for line in wide] == [line.split()[0] for line in narrow]


def test_output_ids_and_tsv_for_scripts(ucloud_emulator_env: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--emulator", *["--os-type", "linux", "--name-regex", r"^Ubuntu 22\.04"],
                       "--output", "json")
    expected = [record["imageId"] for record in json.loads(out)]
    code, out, err = run(capsys, "list", "--emulator", "--os-type", "linux", "--name-regex", r"^Ubuntu 22\.04",
                         "--output", "ids")
    assert (code, err) == (0, "") and out.splitlines() == expected
    code, out, _ = run(capsys, "list", "--emulator", "--os-type", "linux", "--name-regex", r"^Ubuntu 22\.04",
                       "--output", "tsv")
    rows = [line.split("\t") for line in out.splitlines()]
    assert rows[0] == list(TSV_COLUMNS)
    assert [row[0] for row in rows[1:]] == expected and all(len(row) == len(TSV_COLUMNS) for row in rows)
    by_column = dict(zip(TSV_COLUMNS, rows[1], strict=True))
    assert by_column["eolDate"] == "2027-04-30" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
                                                                  by_column["createTime"])
    code, no_header, _ = run(capsys, "list", "--emulator", "--os-type", "linux", "--name-regex", r"^Ubuntu 22\.04",
                             "--output", "tsv", "--no-header")
    assert no_header.splitlines() == out.splitlines()[1:]


@pytest.mark.parametrize(
    ("argv", "sentence"),
    [(["--no-header"], "--no-header drops the header row of --output tsv, so it would do nothing with --output "
                       "table; leave it out."),
     (["--wide", "--output", "json"], "--wide widens the table, so it would do nothing with --output json; leave it "
                                      "out.")],
)
def test_options_that_would_do_nothing_are_refused(
    capsys: pytest.CaptureFixture[str], argv: list[str], sentence: str
) -> None:
    code, out, err = run(capsys, "list", "--emulator", *argv)
    assert (code, out) == (2, "")
    assert err == f"ucloud-images: error: {sentence[0].upper()}{sentence[1:]}\n"


def test_find_and_list_json_spell_a_record_one_way_the_schemas(
    ucloud_emulator_env: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    _, found, _ = run(capsys, "find", "--emulator", "--id", "uimage-ub2205", "--output", "json")
    _, listed, _ = run(capsys, "list", "--emulator", "--id", "uimage-ub2205", "--output", "json")
    record = json.loads(found)["image"]
    assert json.loads(listed) == [record] == json.loads(found)["images"]
    assert list(record) == list(build_schema()["types"][IMAGE_TOKEN]["properties"])
    assert set(json.loads(found)) == {"imageId", "ids", "totalCount", "region", "image", "images", "warnings"}


def test_verbose_prints_one_line_per_request(capsys: pytest.CaptureFixture[str]) -> None:
    with Emulator(max_limit=100) as server:
        server.inject("ret_code", value=153)  # the first request is rate limited once, then answered
        settings = ["--base-url", server.base_url, "--public-key", DEMO_PUBLIC_KEY, "--private-key", DEMO_PRIVATE_KEY]
        code, out, err = run(capsys, "list", "--region", "cn-bj2", *settings, "--verbose", "--output", "ids")
        answered = [r for r in server.requests if r.ret_code == 0]
    assert code == 0 and out
    lines = err.splitlines()
    pattern = re.compile(
        r"ucloud-images: request: DescribeImage offset=(\d+) RetCode=(\d+) request-id=(\S+) (\d+) ms retries=(\d+)"
    )
    parsed = [pattern.fullmatch(line) for line in lines]
    assert all(parsed), lines
    assert len(lines) == len(answered) > 1  # one line per page, its retries included
    by_offset = {int(m.group(1)): m for m in parsed if m}
    assert set(by_offset) == {int(r.params["Offset"]) for r in answered}
    assert {m.group(3) for m in parsed if m} == {r.request_id for r in answered}
    assert by_offset[0].group(5) == "1" and all(m.group(2) == "0" for m in parsed if m)


def test_verbose_logs_a_page_refused_after_retcode_0_once_as_the_failure(capsys: pytest.CaptureFixture[str]) -> None:
    """A later page whose RetCode is 0 but whose ImageSet is not a list is refused by the model: that request
    is one line, the failure, not a line of success followed by one of failure."""
    with Emulator(max_limit=100) as server:
        server.inject("bad_shape", times=1, after=1)  # the first page is read; the next request is refused
        settings = ["--base-url", server.base_url, "--public-key", DEMO_PUBLIC_KEY, "--private-key", DEMO_PRIVATE_KEY]
        code, _, err = run(capsys, "list", "--region", "cn-bj2", *settings, "--verbose", "--output", "ids")
        refused = [r.request_id for r in server.requests if r.fault == "bad_shape"]
    lines = [line for line in err.splitlines() if line.startswith("ucloud-images: request: ")]
    assert code == 5 and len(refused) == 1
    about_refused = [line for line in lines if f"request-id={refused[0]} " in line]
    assert len(about_refused) == 1 and about_refused[0].endswith("failed: ResponseFormatError"), lines


def test_the_readme_counts_the_catalogue_images_past_their_end_of_life() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    found = re.search(r"(\d+) of its (\d+) images\s+past their end of life on (\d{4}-\d\d-\d\d)", readme)
    assert found, "the README states how many bundled images are past their end of life"
    past, total, day = int(found.group(1)), int(found.group(2)), date.fromisoformat(found.group(3))
    images = [Image.model_validate(record) for record in CATALOG.values()]
    assert (past, total) == (sum(image.past_eol(day) for image in images), len(images))
