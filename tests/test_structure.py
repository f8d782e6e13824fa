"""The package's shape: no import cycles, whether at import, inside functions or under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pulumi_ucloud_images"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, *, eager_only: bool) -> set[str]:
    """The package modules ``name`` imports; with ``eager_only``, those imported when it is imported (not
    inside functions, nor under ``TYPE_CHECKING``); without, every import anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
                if node.level == 0 and not target.startswith("pulumi_ucloud_images"):
                    continue
                for alias in node.names:  # `from . import _x` imports the module _x
                    found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("pulumi_ucloud_images"))
            elif isinstance(node, ast.If):
                if not (eager_only and _is_type_checking(node)):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, (ast.Try, ast.With)):
                visit(node.body)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
            elif not eager_only and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(node.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return {module for module in found if module in MODULES and module != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


@pytest.mark.parametrize("eager_only", [True, False], ids=["at import", "including lazy and TYPE_CHECKING imports"])
def test_the_package_has_no_import_cycles(eager_only: bool) -> None:
    # The package's __init__ re-exports everything, so it is left out as a target: every module may be
    # imported through it, and it imports them, but no module imports the package root.
    graph = {
        name: _imports(name, path, eager_only=eager_only) - {"pulumi_ucloud_images"}
        for name, path in MODULES.items()
    }
    assert not any("pulumi_ucloud_images" in targets for targets in graph.values())
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
