"""docs/migrating.md maps the Terraform data source's and the bridged function's names to names that exist here."""

from __future__ import annotations

import re
from pathlib import Path

from pulumi_ucloud_images import Image, ImageQuery, LookupResult
from pulumi_ucloud_images._naming import camel

DOC = Path(__file__).resolve().parent.parent / "docs" / "migrating.md"


def _table(title: str) -> list[list[str]]:
    section = DOC.read_text(encoding="utf-8").split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return rows[2:] if rows and rows[1][0].startswith("---") else rows[1:]


def _ours(cell: str) -> set[str]:
    return {name for name in re.findall(r"`([a-z][a-z_]*)`", cell)}


def test_every_argument_mapped_is_a_query_filter() -> None:
    filters = set(ImageQuery.model_fields)
    named = set().union(*(_ours(row[1]) for row in _table("Arguments")))
    assert named and named <= filters | {camel(name) for name in filters}, named - filters
    assert "most_recent" in named and "zone" in named


def test_every_result_mapped_is_a_result_or_image_field() -> None:
    fields = set(LookupResult.model_fields) | set(Image.model_fields) | set(Image.model_computed_fields)
    named = set().union(*(_ours(row[1]) for row in _table("Results")))
    assert named and named <= fields | {camel(name) for name in fields}, named - fields
    assert {"image_id", "total_count", "create_time", "state"} <= named


def test_the_sources_are_cited() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "ucloud/data_source_ucloud_images.go" in text and "sdk/python/pulumi_ucloud/uhost/get_image.py" in text
