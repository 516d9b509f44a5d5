"""One import style for test helpers (issue 11), enforced by reading every module's imports
(ast): a module under tests/ or bench/ never imports a test module (``tests.test_*``,
``test_*``, ``from tests import test_*``, relative ``.test_*``) nor ``conftest``. What
several test modules share lives in tests/support/ and is imported as
``from tests.support.<module> import ...``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("tests", "bench")
MODULES = sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py")
                 if "vectors" not in p.relative_to(ROOT).parts)


def _is_test_module(dotted: str) -> bool:
    return any(part.startswith("test_") or part == "conftest" for part in dotted.split("."))


def imports_of_test_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, imported name) of each import of a test module or conftest in ``tree``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _is_test_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if _is_test_module(node.module or ""):
                found.append((node.lineno, module))
            elif node.level or node.module == "tests":  # `from tests import test_x`
                found += [(node.lineno, f"{module}.{a.name}".replace("..", "."))
                          for a in node.names if _is_test_module(a.name)]
    return found


def test_there_are_modules() -> None:
    assert len(MODULES) >= 50
    assert ROOT / "tests" / "support" / "node_agents.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_module_imports_a_test_module(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = imports_of_test_modules(tree)
    assert not bad, (f"{path.relative_to(ROOT)} imports test modules {bad}: move what is "
                     "shared into tests/support/ and import it from there")


@pytest.mark.parametrize("src", [
    "from tests.test_node_agent import run_agent\n",
    "import tests.test_node_platform\n",
    "import test_node_platform as p\n",
    "from test_collateral_staple import routed\n",
    "from tests import test_measure_tdx_mrtd\n",
    "from .test_snp_stage import WAIVING_CRL\n",
    "from . import test_snp_stage\n",
    "from conftest import policy_file\n",
    "def f():\n    from tests.test_node_agent import write_config\n",
])
def test_the_check_catches_an_added_test_module_import(src: str) -> None:
    """The checker itself can fail: each way of importing a test module is caught, also
    inside a function."""
    clean = "from tests.support.node_agents import run_agent\nimport pytest\n"
    assert imports_of_test_modules(ast.parse(clean)) == []
    assert imports_of_test_modules(ast.parse(clean + src)) != []
