"""The package layout: each package imports only what its docstring's ``May import:`` allows.

Covers ``mitelacd/__init__.py`` and every package docstring; the import
graph of mitelacd's modules has no cycles.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import mitelacd

ROOT = Path(mitelacd.__file__).parent
PACKAGES = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").exists())
#: Modules at the top that import no other part of mitelacd but each other.
UTILITIES = {
    "mitelacd.logs",
    "mitelacd.cli",
    "mitelacd.clock",
    "mitelacd.pacing",
    "mitelacd.disk",
    "mitelacd.heap",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(ROOT.rglob("*.py")):
        yield module_name(path), path


def imports_of(path: Path) -> set[str]:
    """Every mitelacd module ``path`` imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mitelacd"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "mitelacd":
                # ``from mitelacd import logs``: the names are modules (or the version).
                found.update(f"mitelacd.{a.name}" for a in node.names if a.name != "__version__")
                found.add("mitelacd")
            elif node.module.startswith("mitelacd."):
                found.add(node.module)
    return found


def part_of(module: str) -> str:
    """The package a module belongs to, or the module itself at the top level."""
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in PACKAGES:
        return ".".join(parts[:2])
    return module


def allowed(package: str) -> set[str]:
    doc = importlib.import_module(package).__doc__ or ""
    lines = [line for line in doc.splitlines() if line.startswith("May import:")]
    assert len(lines) == 1, f"{package}'s docstring has no single 'May import:' line"
    return {name.strip() for name in lines[0].split(":", 1)[1].split(",") if name.strip()}


def test_every_package_says_what_it_may_import() -> None:
    assert set(PACKAGES) >= {"floor", "feed", "web", "reports", "sim", "testing"}
    for package in ["mitelacd", *(f"mitelacd.{p}" for p in PACKAGES)]:
        for name in allowed(package):
            importlib.import_module(name)  # every name on the line exists


@pytest.mark.parametrize("module, path", list(modules()), ids=[m for m, _ in modules()])
def test_a_module_imports_only_what_its_package_allows(module: str, path: Path) -> None:
    home = part_of(module)
    if module == "mitelacd" or home in UTILITIES:
        rule = UTILITIES | {"mitelacd"}
    elif home == module:  # the composition at the top level
        rule = {part_of(m) for m, _ in modules()}
    else:
        rule = allowed(home) | {home, "mitelacd"}
    wrong = sorted(m for m in imports_of(path) if part_of(m) not in rule)
    assert not wrong, f"{module} imports {wrong}; {home} may import {sorted(rule)}"


def test_no_private_name_is_imported_from_another_module() -> None:
    found = []
    for module, path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mitelacd"):
                found += [
                    f"{module}: {a.name} from {node.module}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert not found


def test_the_import_graph_has_no_cycles() -> None:
    graph = {m: {i for i in imports_of(p) if i != m} for m, p in modules()}
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if seen.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt, [*path, nxt])
        seen[node] = 2

    for module in sorted(graph):
        if module not in seen:
            visit(module, [module])


def test_the_rules_catch_a_wrong_import(tmp_path: Path) -> None:
    """The checker itself: a floor module importing the web is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("from mitelacd.web.push import EventPush\nimport mitelacd.reports.figures\n")
    found = {part_of(m) for m in imports_of(bad)}
    assert found == {"mitelacd.web", "mitelacd.reports"}
    assert not found <= allowed("mitelacd.floor")
