"""The command is a leaf: nothing in the package outside ``_cli/`` imports it, so the library never needs it."""

from __future__ import annotations

import ast
from pathlib import Path

import pulumi_ucloud_images

PACKAGE = Path(pulumi_ucloud_images.__file__).parent
CLI = "pulumi_ucloud_images._cli"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(source: str, module: str, *, is_package: bool) -> set[str]:
    """Every module an import statement of ``source`` (the module ``module``) names, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
            parent = ".".join([*(base if node.level else []), *([node.module] if node.module else [])])
            found.add(parent)
            found.update(f"{parent}.{alias.name}" for alias in node.names)  # `from . import _cli` names it too
    return found


def _imports_cli(names: set[str]) -> bool:
    return any(name == CLI or name.startswith(CLI + ".") for name in names)


def test_the_import_walk_sees_every_way_of_naming_the_command() -> None:
    module = "pulumi_ucloud_images._query"
    for source in ("from ._cli import main", "from . import _cli", "from ._cli.lock import run",
                   "import pulumi_ucloud_images._cli", "def f():\n    from ._cli import common\n"):
        assert _imports_cli(_imported(source, module, is_package=False)), source
    for source in ("from ._client import Client", "from . import _lockfile", "import pulumi_ucloud_images._clients"):
        assert not _imports_cli(_imported(source, module, is_package=False)), source
    assert _imports_cli(_imported("from .. import _cli", "pulumi_ucloud_images._sub", is_package=True))


def test_no_module_outside_the_command_imports_it() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    outside = [path for path in modules if (PACKAGE / "_cli") not in path.parents]
    assert len(outside) > 20 and len(modules) > len(outside)  # the walk saw the package, and the command apart
    importers = [
        _module_name(path)
        for path in outside
        if _imports_cli(_imported(path.read_text(encoding="utf-8"), _module_name(path),
                                  is_package=path.name == "__init__.py"))
    ]
    assert importers == []
