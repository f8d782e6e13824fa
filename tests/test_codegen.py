"""``scripts/codegen.py``: schema.json and the Python faces' parameters come from the models and never drift."""

from __future__ import annotations

import importlib.util
import inspect
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pulumi_ucloud_images._pulumi.schema import GET_IMAGES_TOKEN, build_schema, render
from pulumi_ucloud_images._query import ImageQuery
from pulumi_ucloud_images._settings.settings import LOOKUP_ARGUMENTS

ROOT = Path(__file__).resolve().parent.parent


def _codegen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("codegen", ROOT / "scripts" / "codegen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


codegen = _codegen()


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the generated files, which the script is pointed at instead of the repository's."""
    (tmp_path / "pulumi_ucloud_images" / "_pulumi").mkdir(parents=True)
    for name in codegen.FACES:
        shutil.copy(codegen.PACKAGE / name, tmp_path / "pulumi_ucloud_images" / name)
    shutil.copy(codegen.SCHEMA, tmp_path / "schema.json")
    shutil.copy(codegen.SCHEMA, tmp_path / "pulumi_ucloud_images" / "_pulumi" / "schema.json")
    monkeypatch.setattr(codegen, "ROOT", tmp_path)
    monkeypatch.setattr(codegen, "PACKAGE", tmp_path / "pulumi_ucloud_images")
    monkeypatch.setattr(codegen, "SCHEMA", tmp_path / "schema.json")
    monkeypatch.setattr(codegen, "_schema", _PackageHere(codegen._schema, tmp_path / "pulumi_ucloud_images"))
    return tmp_path


class _PackageHere:
    """The schema module, as if imported from the copied tree (the script refuses another tree's package)."""

    def __init__(self, module: ModuleType, package: Path) -> None:
        self.render = module.render
        self.__file__ = str(package / "_pulumi" / "schema.py")


def test_the_repository_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert codegen.main(["--check"]) == 0, capsys.readouterr().err
    assert (ROOT / "schema.json").read_text(encoding="utf-8") == render()
    served = codegen.PACKAGE / "_pulumi" / "schema.json"
    assert served.read_text(encoding="utf-8") == render()  # what the plugin serves
    for name in codegen.FACES:
        text = (codegen.PACKAGE / name).read_text(encoding="utf-8")
        assert "# -- generated: query parameters" in text and "# -- generated: arguments by name" in text


def test_drift_fails_the_check_and_write_repairs_it(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    face = tree / "pulumi_ucloud_images" / "_pulumi" / "pinned_image.py"
    original = face.read_text(encoding="utf-8")
    face.write_text(original.replace("        vendor_regex: ", "        vendor_regexx: "), encoding="utf-8")
    drifted = build_schema()
    drifted["functions"][GET_IMAGES_TOKEN]["inputs"]["properties"].pop("nameRegex")
    (tree / "schema.json").write_text(str(drifted), encoding="utf-8")
    (tree / "pulumi_ucloud_images" / "_pulumi" / "schema.json").unlink()
    assert codegen.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "schema.json" in err and "_pulumi/schema.json" in err and "pinned_image.py" in err
    assert "out of date" in err
    assert codegen.main(["--write"]) == 0
    assert face.read_text(encoding="utf-8") == original
    assert (tree / "schema.json").read_text(encoding="utf-8") == render()
    assert (tree / "pulumi_ucloud_images" / "_pulumi" / "schema.json").read_text(encoding="utf-8") == render()
    assert codegen.main(["--check"]) == 0


def test_it_never_writes_into_a_package_other_than_its_trees(
    tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(codegen, "_schema", _PackageHere(codegen._schema, Path(sys.prefix) / "site-packages"))
    assert codegen.main(["--write"]) == 2
    assert "not this tree's" in capsys.readouterr().err


def test_each_block_is_written_from_the_models_in_its_style() -> None:
    marker = "    # -- generated: query parameters ({}), by scripts/codegen.py --write\n"
    end = "    # -- end of generated parameters\n"
    for style, region, states in [
        ("plain", "region: str | None = None,", "states: Sequence[str] | None = None,"),
        ("input", "region: pulumi.Input[str | None] = None,",
         "states: pulumi.Input[Sequence[pulumi.Input[str]] | None] = None,"),
        ("resource", "region: pulumi.Input[str] | None = None,",
         "states: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,"),
    ]:
        text = f"def f(\n    *,\n{marker.format(style)}    stale: int = 0,\n{end}    opts: object = None,\n):\n"
        written = codegen.render_faces(text)
        lines = written.splitlines()
        assert f"    {region}" in lines and f"    {states}" in lines
        assert "stale" not in written and "opts: object = None," in written  # only the block is rewritten
        names = [line.split(":")[0].strip() for line in lines if line.endswith(",") and ":" in line
                 and not line.startswith("    opts")]
        assert names == list(ImageQuery.model_fields)
        with_settings = codegen.render_faces(text.replace(f"({style})", f"({style} + settings)"))
        names = [line.split(":")[0].strip() for line in with_settings.splitlines() if line.endswith(",")]
        assert names[-len(LOOKUP_ARGUMENTS) - 1:-1] == list(LOOKUP_ARGUMENTS)
    arguments = ("    # -- generated: arguments by name (query + settings), by scripts/codegen.py --write\n"
                 "    # -- end of generated arguments\n")
    written = codegen.render_faces(arguments)
    assert [line.strip() for line in written.splitlines()[1:-1]] == [
        f'"{name}": {name},' for name in (*ImageQuery.model_fields, *LOOKUP_ARGUMENTS)
    ]


def test_the_faces_take_every_generated_parameter() -> None:
    from pulumi_ucloud_images import PinnedImage, get_images, get_images_output

    for face in (get_images, get_images_output):
        assert set(ImageQuery.model_fields) | set(LOOKUP_ARGUMENTS) <= set(inspect.signature(face).parameters)
    assert set(ImageQuery.model_fields) <= set(inspect.signature(PinnedImage.__init__).parameters)
