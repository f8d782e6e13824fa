"""``ucloud-images list``: every matching image, newest first, as a table for people, JSON, IDs or TSV.

Every cell is the server's text, shown without control characters or escape sequences; the table fits the
terminal (80 columns when the output is not one) unless ``--wide``.
"""

from __future__ import annotations

import argparse
import shutil
import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TextIO

from .._display import ELLIPSIS, json_for_people, shown
from .._errors import InvalidQueryError
from .._query import ImageQuery
from .common import EXIT_OK, add_query_flags, add_settings_flags, flag_names, query_from, settings_args, settings_for

if TYPE_CHECKING:
    from .._api.image import Image, ImagePrice

__all__ = ["TABLE_WIDTH", "TSV_COLUMNS", "register", "run"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listing = commands.add_parser("list", help="List every matching image, newest first (exit 3 if none).")
    add_query_flags(listing, refused=("most_recent",))
    add_settings_flags(listing)
    listing.add_argument(
        "--output", choices=("table", "json", "ids", "tsv"), default="table",
        help="table (default, for people: fits the terminal, else 80 columns), json, ids (one per line) or tsv "
        "(tab-separated, with a header row).",
    )
    listing.add_argument("--wide", action="store_true", help="With the table: every column, and whole names.")
    listing.add_argument("--no-header", action="store_true", help="With --output tsv: leave out the header row.")
    listing.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from .._lookup import fetch_listing
    from .._select import filter_images, no_match_error
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
    query = query_from(args)
    with settings_args(args) as arguments:
        listing = fetch_listing(query, settings=settings_for(query, arguments))
    images = filter_images(listing.images, listing.query, flag_names())
    if args.output == "json":
        out.write(json_for_people([image.to_json() for image in images]) + "\n")
    elif not images:
        pass
    elif args.output == "ids":
        out.writelines(f"{image.image_id}\n" for image in images)
    elif args.output == "tsv":
        out.write(_tsv(images, header=not args.no_header))
    else:
        out.write(_table(images, listing.query, wide=args.wide, width=table_width(out)))
    if not images:
        raise no_match_error(listing.images, listing.query, listing.region, flag_names())
    return EXIT_OK



def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


_NAME_CELL = 60  # the longest image name a wide table cell shows (the server's text; JSON keeps it whole)
_CELL = 40
TABLE_WIDTH = 80  # the table's width when the output is not a terminal (a file, a pipe); --wide shows everything
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


def table_width(out: TextIO) -> int:
    """The terminal's width when ``out`` is one (``COLUMNS`` first, as :func:`shutil.get_terminal_size` reads it),
    else ``TABLE_WIDTH``: what goes to a file or a pipe does not depend on the terminal it was run from."""
    isatty = getattr(out, "isatty", None)
    if isatty is None or not isatty():
        return TABLE_WIDTH
    return shutil.get_terminal_size((TABLE_WIDTH, 24)).columns


def _table(images: Sequence[Image], query: ImageQuery, *, wide: bool = False, width: int = TABLE_WIDTH) -> str:
    """Aligned columns (CJK characters count double); names with stray spaces are quoted to show them.

    Every cell is the server's text, so it is shown without control characters or escape sequences and cut
    to a cell's length. The default table fits ``width`` columns: the name takes what the other
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
        _fit(widths, header, width)
        rows = [tuple(_cut(cell, widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines = ["  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


# Never cut: the image ID (pipelines copy it from the table) and the creation date.
_UNCUT = frozenset({"IMAGE ID", "CREATED", "CREATED (UTC)"})


def _fit(widths: list[int], header: Sequence[str], width: int) -> None:
    """Narrow the columns, in place, until a row fits ``width``: the name first, down to ``_MIN_NAME``;
    then the widest of the others that may be cut, down to their titles; then the name, down to its title."""

    def total() -> int:
        return sum(widths) + 2 * (len(widths) - 1)

    name = header.index("NAME")
    widths[name] = min(widths[name], max(_MIN_NAME, widths[name] - (total() - width)))
    for floor_of_name in (widths[name], _width(header[name])):
        while total() > width:
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
