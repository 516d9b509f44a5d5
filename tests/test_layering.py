"""DESIGN.md's import rules, enforced by reading every module's imports (ast).

- transparency_log imports neither attest nor verifier; attest never imports verifier.
- attest/formats (pure parsers) never import cryptography, requests, the clock, randomness,
  the network or policy.
- requests is imported only by modules that fetch (name contains fetch, client or session,
  or is verifier/requests.py) and by cli modules.
- The wall clock (time.time, datetime.now/utcnow/today, date.today) is read only in cli modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("transparency_log", "attest", "verifier")
PURE_FORBIDDEN = {"cryptography", "requests", "time", "random", "secrets", "socket", "ssl",
                  "urllib", "http", "verifier", "sqlite3", "datetime"}
CLOCK_CALLS = {("time", "time"), ("time", "time_ns"), ("datetime", "now"),
               ("datetime", "utcnow"), ("datetime", "today"), ("date", "today")}


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _top(name: str) -> str:
    return name.split(".")[0]


def _is_cli(path: Path) -> bool:
    return path.name.startswith("cli") or "cli" in path.relative_to(ROOT).parts[:-1]


def _fetches(path: Path) -> bool:
    stem = path.stem
    return (any(w in stem for w in ("fetch", "client", "session")) or _is_cli(path)
            or path.relative_to(ROOT).as_posix() == "verifier/requests.py")


MODULES = _modules()


def test_there_are_modules() -> None:
    assert len(MODULES) >= 5


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_module_layering(path: Path) -> None:
    rel = path.relative_to(ROOT)
    tree = ast.parse(path.read_text(), filename=str(path))
    tops = {_top(n) for n in _imports(tree)}
    pkg = rel.parts[0]
    if pkg == "transparency_log":
        assert not tops & {"attest", "verifier"}, f"{rel}: transparency_log imports {tops}"
    if pkg == "attest":
        assert "verifier" not in tops, f"{rel}: attest must not import verifier"
    if rel.parts[:2] == ("attest", "formats"):
        bad = tops & PURE_FORBIDDEN
        assert not bad, f"{rel}: pure parser imports {sorted(bad)}"
        assert not any(n.startswith("attest.") and not n.startswith("attest.formats")
                       for n in _imports(tree)), f"{rel}: parser imports beyond formats"
    if "requests" in tops:
        assert _fetches(path), f"{rel}: only fetching modules may import requests"
    if not _is_cli(path):
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name)
                    and (node.func.value.id, node.func.attr) in CLOCK_CALLS):
                raise AssertionError(
                    f"{rel}:{node.lineno}: reads the wall clock; take `now` as a parameter")


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    """The checker itself can fail: a parser importing cryptography is caught."""
    src = "import cryptography\nfrom datetime import datetime\nx = datetime.now()\n"
    tree = ast.parse(src)
    assert {_top(n) for n in _imports(tree)} & PURE_FORBIDDEN == {"cryptography", "datetime"}
