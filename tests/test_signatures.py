"""The Python faces' query and settings parameters are generated from the models and never drift."""

from __future__ import annotations

import inspect

import pytest

from pulumi_ucloud_images import _signatures
from pulumi_ucloud_images._query import ImageQuery
from pulumi_ucloud_images._settings import LOOKUP_ARGUMENTS


def test_the_generated_parameters_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert _signatures.main(["--check"]) == 0, capsys.readouterr().err
    for name in _signatures.FILES:
        text = (_signatures.PACKAGE / name).read_text(encoding="utf-8")
        assert _signatures.render(text) == text
        assert "# -- generated: query parameters" in text


def test_a_block_is_written_from_the_models_in_each_style() -> None:
    marker = "    # -- generated: query parameters ({}), by python -m pulumi_ucloud_images._signatures --write\n"
    end = "    # -- end of generated parameters\n"
    for style, region, states in [
        ("plain", "region: str | None = None,", "states: Sequence[str] | None = None,"),
        ("input", "region: pulumi.Input[str | None] = None,",
         "states: pulumi.Input[Sequence[pulumi.Input[str]] | None] = None,"),
        ("resource", "region: pulumi.Input[str] | None = None,",
         "states: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,"),
    ]:
        text = f"def f(\n    *,\n{marker.format(style)}    stale: int = 0,\n{end}    opts: object = None,\n):\n"
        written = _signatures.render(text)
        lines = written.splitlines()
        assert f"    {region}" in lines and f"    {states}" in lines
        assert "stale" not in written and "opts: object = None," in written  # only the block is rewritten
        generated = [line.split(":")[0].strip() for line in lines
                     if line.endswith(",") and not line.startswith(("    *", "    opts"))]
        assert generated == list(ImageQuery.model_fields)
        settings = _signatures.render(text.replace(f"({style})", f"({style} + settings)"))
        names = [line.split(":")[0].strip() for line in settings.splitlines() if line.endswith(",")]
        assert names[-len(LOOKUP_ARGUMENTS) - 1:-1] == list(LOOKUP_ARGUMENTS)


def test_a_stale_file_fails_the_check(tmp_path: object, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    original = (_signatures.PACKAGE / "_pinned.py").read_text(encoding="utf-8")
    (folder / "_pinned.py").write_text(original.replace("        vendor_regex: ", "        vendor_regexx: "))
    (folder / "_functions.py").write_text((_signatures.PACKAGE / "_functions.py").read_text(encoding="utf-8"))
    monkeypatch.setattr(_signatures, "PACKAGE", folder)
    assert _signatures.main(["--check"]) == 1
    assert "_pinned.py: generated parameters are out of date" in capsys.readouterr().err
    assert _signatures.main(["--write"]) == 0
    assert (folder / "_pinned.py").read_text(encoding="utf-8") == original


def test_the_faces_signatures_carry_the_generated_parameters() -> None:
    from pulumi_ucloud_images import PinnedImage, get_images, get_images_output

    for face in (get_images, get_images_output):
        assert set(ImageQuery.model_fields) | set(LOOKUP_ARGUMENTS) <= set(inspect.signature(face).parameters)
    assert set(ImageQuery.model_fields) <= set(inspect.signature(PinnedImage.__init__).parameters)
