"""The import graph of attest, verifier and transparency_log: no circle, and the layers of
transparency_log's sub-packages (read from the source with ast; nothing is imported).

No import circle: an edge goes from a module to every module it imports, at module level or
inside a function (a deferred import that closes a circle is still a circle: the old
note -> note_foreign -> checkpoint -> note was one); only ``if TYPE_CHECKING:`` blocks, which
never run, are not edges. ``from pkg import name`` is an edge to ``pkg.name`` when that is a
module, else to ``pkg``; importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``,
so those are edges too (except the importer's own enclosing packages, which are already
initialised).

The layers of ``transparency_log`` (each sub-package may import itself and what is listed):

- ``common``: nothing of the others. Project-wide utilities that attest and verifier use too.
- ``core``: ``common``. Formats and math: pure, no storage, no network, no service.
- ``log``, ``client``, ``witness``: ``core`` and ``common``. The log with its storage, a
  verifying reader of any log, and a witness are independent of each other.
- ``serve``: ``log`` and ``witness`` (the service integrates the log and asks witnesses to
  cosign) besides ``core`` and ``common``; never ``client`` or ``cli``.
- ``cli``: any of them (it wires them to files, the clock and the network); nothing imports it
  but the console script.
- ``transparency_log/__init__.py``: nothing (importing any module must stay light).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("transparency_log", "attest", "verifier")

TLOG_LAYERS: dict[str, frozenset[str]] = {
    "common": frozenset(),
    "core": frozenset({"common"}),
    "log": frozenset({"core", "common"}),
    "client": frozenset({"core", "common"}),
    "witness": frozenset({"core", "common"}),
    "serve": frozenset({"log", "witness", "core", "common"}),
    "cli": frozenset({"serve", "log", "client", "witness", "core", "common"}),
    "": frozenset(),  # transparency_log/__init__.py
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    return {module_name(p, root): p
            for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports_that_run(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at module level or inside a function, except those under
    ``if TYPE_CHECKING:`` (which never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _imports_that_run(ast.Module(body=[child], type_ignores=[]))
        else:
            yield from _imports_that_run(node)


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imported_modules(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules that importing ``name`` executes directly."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    targets: set[str] = set()
    for node in _imports_that_run(tree):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
            continue
        pkg = _absolute(node, name, path.name == "__init__.py")
        targets.add(pkg)
        targets.update(f"{pkg}.{a.name}" for a in node.names if f"{pkg}.{a.name}" in known)
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    if path.name == "__init__.py":
        own.add(name)
    edges: set[str] = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            mod = ".".join(parts[:i])
            if mod in known and mod not in own:
                edges.add(mod)
    return edges


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    known = all_modules(root, packages)
    return {name: imported_modules(name, path, known) for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (as a path that ends where it starts), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return [*path[path.index(child):], child]
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(sorted(graph.get(child, ())))))
                path.append(child)
    return None


GRAPH = import_graph(ROOT, PACKAGES)


def test_the_graph_is_read() -> None:
    assert "transparency_log.core.checkpoint" in GRAPH["transparency_log.core.cosignature"]
    assert "transparency_log.core.note" in GRAPH["transparency_log.core.key_types"]


def test_no_import_circle() -> None:
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: " + " -> ".join(cycle or ())


def _sub(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if m.startswith("transparency_log")))
def test_transparency_log_layers(module: str) -> None:
    sub = _sub(module)
    assert sub in TLOG_LAYERS, f"{module}: sub-package {sub!r} has no layer rule"
    allowed = TLOG_LAYERS[sub] | {sub}
    bad = sorted(t for t in GRAPH[module]
                 if t.startswith("transparency_log.") and _sub(t) not in allowed)
    assert not bad, f"{module} ({sub or 'top'}) may import only {sorted(allowed)}: {bad}"


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_circle_through_from_import_is_found(tmp_path: Path) -> None:
    """The checker itself can fail: ``from pkg import mod`` closes a circle through a module,
    and so does a deferred import (the old note -> note_foreign -> checkpoint -> note shape);
    a TYPE_CHECKING import does not."""
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/note.py": "from pkg import foreign\n",
        "pkg/foreign.py": "from pkg.checkpoint import parse\n",
        "pkg/checkpoint.py": "from . import note\n\ndef parse():\n    pass\n",
        "pkg/late.py": "def f():\n    import pkg.note\n",
        "pkg/typing_only.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    import pkg.late\n",
    })
    graph = import_graph(tmp_path, ("pkg",))
    cycle = find_cycle(graph)
    assert cycle is not None and set(cycle) == {"pkg.note", "pkg.foreign", "pkg.checkpoint"}
    assert graph["pkg.late"] == {"pkg.note"} and graph["pkg.typing_only"] == set()
    (tmp_path / "pkg/checkpoint.py").write_text("def parse():\n    pass\n")
    assert find_cycle(import_graph(tmp_path, ("pkg",))) is None
    (tmp_path / "pkg/checkpoint.py").write_text("def parse():\n    from . import note\n")
    (tmp_path / "pkg/note.py").write_text("def f():\n    from pkg import foreign\n")
    cycle = find_cycle(import_graph(tmp_path, ("pkg",)))
    assert cycle is not None and set(cycle) == {"pkg.note", "pkg.foreign", "pkg.checkpoint"}


def test_a_layer_violation_is_found(tmp_path: Path) -> None:
    _write(tmp_path, {
        "transparency_log/__init__.py": "",
        "transparency_log/core/__init__.py": "",
        "transparency_log/core/note.py": "from transparency_log.log import lifecycle\n",
        "transparency_log/log/__init__.py": "",
        "transparency_log/log/lifecycle.py": "",
    })
    graph = import_graph(tmp_path, ("transparency_log",))
    assert "transparency_log.log.lifecycle" in graph["transparency_log.core.note"]
    assert "log" not in TLOG_LAYERS["core"]
