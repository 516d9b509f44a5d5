"""Find every check id the code reports, by reading it (ast), for tests/test_check_ids.py.

A check id is found where the code hands one over:

- the check argument of an error constructor (every class derived from ``AttestlogError``,
  ``CheckNotRun``, ``PolicyFailure``) and of any function or method with a parameter named
  ``check`` (``Transcript.run/passed/failed/waived``, ``FailureCollector.fail/require``, a
  module's own step helpers), positional or ``check=``;
- a module or class constant whose name is ``CHECK`` or contains ``CHECK_`` / ``_CHECK``.

Arguments are resolved through module constants (also imported ones), f-strings and
conditional expressions. A part that cannot be resolved (``f"{base}.format"``) becomes ``*``:
such a *pattern* must match at least one catalogued id. Arguments that are neither (a
variable handed down) are the caller's, and are found at the caller.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("transparency_log", "attest", "verifier")
#: What a check id looks like: lower-case dotted words (``snp.vcek.chain``).
ID_SHAPE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_*]+)+$")
CONSTANT_NAME = re.compile(r"(^|_)CHECK(_|$)")
ERROR_ROOTS = frozenset({"AttestlogError", "PolicyFailure"})


@dataclass(frozen=True)
class Use:
    """One place that reports ``check`` (a pattern when it contains ``*``)."""

    check: str
    where: str          # path:line
    error: str | None   # the error class constructed, when the call is a constructor

    @property
    def pattern(self) -> bool:
        return "*" in self.check


@dataclass
class _Module:
    name: str
    path: Path
    tree: ast.Module
    consts: dict[str, ast.expr]
    imports: dict[str, tuple[str, str]]


def _modules(root: Path) -> dict[str, _Module]:
    out: dict[str, _Module] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            name = ".".join(parts)
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            consts: dict[str, ast.expr] = {}
            imports: dict[str, tuple[str, str]] = {}
            top = [*tree.body, *(item for node in tree.body if isinstance(node, ast.ClassDef)
                                 for item in node.body)]
            for node in top:  # module and class constants, not a function's locals
                if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                        and isinstance(node.targets[0], ast.Name):
                    consts.setdefault(node.targets[0].id, node.value)
                elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                        and node.value is not None:
                    consts.setdefault(node.target.id, node.value)
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    for alias in node.names:
                        imports[alias.asname or alias.name] = (node.module, alias.name)
            out[name] = _Module(name, path, tree, consts, imports)
    return out


class _Resolver:
    def __init__(self, modules: dict[str, _Module]) -> None:
        self.modules = modules

    def values(self, module: _Module, expr: ast.expr, depth: int = 0) -> list[str]:
        """The strings ``expr`` can be (``*`` for an unknown part); [] when unknown."""
        if depth > 8:
            return []
        if isinstance(expr, ast.Constant):
            return [expr.value] if isinstance(expr.value, str) else []
        if isinstance(expr, ast.Name):
            return self.name(module, expr.id, depth)
        if isinstance(expr, ast.IfExp):
            return self.values(module, expr.body, depth + 1) + \
                self.values(module, expr.orelse, depth + 1)
        if isinstance(expr, ast.JoinedStr):
            texts = [""]
            for part in expr.values:
                if isinstance(part, ast.FormattedValue):
                    got = self.values(module, part.value, depth + 1) or ["*"]
                else:
                    got = self.values(module, part, depth + 1)
                texts = [t + g for t in texts for g in got]
            return [t for t in texts if t.strip("*.")]
        return []

    def name(self, module: _Module, name: str, depth: int) -> list[str]:
        if depth > 8:
            return []
        if name in module.consts:
            return self.values(module, module.consts[name], depth + 1)
        if name in module.imports:
            src, attr = module.imports[name]
            if src in self.modules:
                return self.name(self.modules[src], attr, depth + 1)
        return []


def _error_classes(modules: dict[str, _Module]) -> set[str]:
    bases: dict[str, set[str]] = {}
    for module in modules.values():
        for node in ast.walk(module.tree):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                                    for b in node.bases}
    found = set(ERROR_ROOTS)
    while True:
        more = {name for name, b in bases.items() if b & found} - found
        if not more:
            return found
        found |= more


def _check_params(modules: dict[str, _Module], errors: set[str]) -> dict[str, set[int]]:
    """Callee name -> positions of its ``check`` parameter (self/cls not counted)."""
    out: dict[str, set[int]] = {name: {0} for name in errors}
    for module in modules.values():
        for node in ast.walk(module.tree):
            if not isinstance(node, ast.ClassDef):
                continue
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    out[node.name] = _positions(item) or out.get(node.name, set())
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) \
                    and node.name != "__init__" and _positions(node):
                out.setdefault(node.name, set()).update(_positions(node))
    return {name: pos for name, pos in out.items() if pos}


def _positions(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[int]:
    args = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    if args and args[0] in ("self", "cls"):
        args = args[1:]
    return {i for i, a in enumerate(args) if a == "check"}


def scan(root: Path = ROOT) -> list[Use]:
    """Every check id handed over in the code of the three packages."""
    modules = _modules(root)
    resolver = _Resolver(modules)
    errors = _error_classes(modules)
    params = _check_params(modules, errors)
    uses: list[Use] = []
    for module in modules.values():
        rel = module.path.relative_to(root)
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Call):
                uses.extend(_call_uses(node, module, resolver, params, errors, str(rel)))
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and CONSTANT_NAME.search(target.id) \
                            and node.value is not None:
                        for value in resolver.values(module, node.value):
                            uses.append(Use(value, f"{rel}:{node.lineno}", None))
    return uses


def _call_uses(call: ast.Call, module: _Module, resolver: _Resolver,
               params: dict[str, set[int]], errors: set[str], rel: str) -> Iterator[Use]:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else (
        func.attr if isinstance(func, ast.Attribute) else None)
    args: list[ast.expr] = []
    if name in params:
        args += [call.args[i] for i in params[name] if i < len(call.args)]
    args += [k.value for k in call.keywords if k.arg == "check"]
    error = name if name in errors else None
    for arg in args:
        for value in resolver.values(module, arg):
            # A non-id string handed to an unrelated method that shares a name (a parser's
            # ``fail("expected ...")``) is not a check id; to an error class it is a bug.
            if ID_SHAPE.match(value) or error is not None:
                yield Use(value, f"{rel}:{call.lineno}", error)
