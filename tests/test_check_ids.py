"""The check-id catalogue (verifier/check_ids.py) is the code's, and docs/verification.md shows it.

Check ids are stable API. The code is read (tests/support/check_id_scan.py): an id the code
reports that the catalogue lacks, a catalogued id the code no longer has, an error class the
code raises for an id that the catalogue does not list, or a table in docs/verification.md
that is not the catalogue's (``python -m verifier.check_ids --update docs/verification.md``)
each fail here.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.check_id_scan import ID_SHAPE, PACKAGES, ROOT, Use, scan
from verifier import check_ids

CATALOGUE = check_ids.by_id()
#: How the scan names a constructor -> how the catalogue names what it raises.
RAISES_AS = {"PolicyFailure": "PolicyError"}


@pytest.fixture(scope="module")
def uses() -> list[Use]:
    return scan()


def _matcher(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$")


def unknown_ids(uses: list[Use]) -> list[str]:
    """The uses whose id (or pattern) is not in the catalogue."""
    out = []
    for use in uses:
        if use.pattern:
            if not any(_matcher(use.check).match(i) for i in CATALOGUE):
                out.append(f"{use.where}: pattern {use.check!r} matches no catalogued id")
        elif use.check not in CATALOGUE:
            out.append(f"{use.where}: {use.check!r} is not in verifier/check_ids.py")
    return out


def _string_literals() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.add(node.value)
    return found


def test_every_reported_id_is_catalogued(uses: list[Use]) -> None:
    assert len(uses) > 500  # the scan reads the code (a broken scan finds nothing)
    problems = unknown_ids(uses)
    assert not problems, "\n".join(problems)


def test_every_catalogued_id_is_in_the_code(uses: list[Use]) -> None:
    """No stale entry: each id is reported, is a literal in the code (a table of ids), or is
    what an f-string the scan found can make."""
    reported = {u.check for u in uses if not u.pattern}
    patterns = [_matcher(u.check) for u in uses if u.pattern]
    literals = _string_literals()
    stale = [i for i in CATALOGUE if i not in reported and i not in literals
             and not any(p.match(i) for p in patterns)]
    assert not stale, f"catalogued but not in the code: {stale}"


def test_catalogue_is_well_formed() -> None:
    ids = [c.id for c in check_ids.CHECKS]
    assert len(ids) == len(set(ids)), "an id is catalogued twice"
    from transparency_log.common import errors

    known = {"-", "CheckNotRun", "NodeKeyMismatch", "DecryptError", "StorageConflictError",
             *errors.__all__}
    for c in check_ids.CHECKS:
        assert ID_SHAPE.match(c.id) or c.id == "pipeline", c.id
        assert c.raises and set(c.raises) <= known, (c.id, c.raises)
        assert c.meaning and "\n" not in c.meaning and "|" not in c.meaning, c.id


def test_error_classes_are_catalogued(uses: list[Use]) -> None:
    """Where the code constructs an error for an id, the catalogue lists that class."""
    problems = []
    for use in uses:
        if use.error is None or use.pattern or use.check not in CATALOGUE:
            continue
        raised = RAISES_AS.get(use.error, use.error)
        if raised not in CATALOGUE[use.check].raises:
            problems.append(f"{use.where}: {use.check} raises {raised}, catalogue says "
                            f"{', '.join(CATALOGUE[use.check].raises)}")
    assert not problems, "\n".join(problems)


def test_docs_table_is_the_catalogue() -> None:
    doc = (ROOT / "docs" / "verification.md").read_text(encoding="utf-8")
    assert check_ids.BEGIN in doc and check_ids.END in doc, "docs/verification.md lost its markers"
    assert check_ids.update(doc) == doc, (
        "docs/verification.md's check-id table differs from verifier/check_ids.py: run "
        "`python -m verifier.check_ids --update docs/verification.md`")


def test_update_replaces_only_the_table() -> None:
    text = f"intro\n{check_ids.BEGIN}\n| old |\n{check_ids.END}\nafter\n"
    new = check_ids.update(text)
    assert new.startswith(f"intro\n{check_ids.BEGIN}\n| check id |")
    assert new.endswith(f"{check_ids.END}\nafter\n") and "| old |" not in new
    with pytest.raises(ValueError):
        check_ids.update("no markers")


def test_markdown_command() -> None:
    out = subprocess.run([sys.executable, "-m", "verifier.check_ids", "--markdown"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out == check_ids.markdown()
    assert "| `snp.vcek.chain` | ChainError, StaleError |" in out


def test_catalogue_imports_nothing_heavy() -> None:
    code = ("import sys, verifier.check_ids; heavy = [m for m in ('cryptography', 'click', "
            "'cbor2', 'requests', 'transparency_log', 'attest') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------ the scan can fail

def test_scan_finds_an_uncatalogued_id(tmp_path: Path) -> None:
    """A new id in any of the forms the scan reads is reported, and is unknown."""
    pkg = tmp_path / "verifier"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text(textwrap.dedent("""
        class AttestlogError(Exception):
            def __init__(self, check, message): ...
        class FormatError(AttestlogError): ...
        class Transcript:
            def run(self, check, fn): ...
            def passed(self, check, detail=""): ...
        class FailureCollector:
            def fail(self, check, field, got, want): ...
    """))
    (pkg / "new.py").write_text(textwrap.dedent("""
        from verifier.errors import FormatError
        CHECK_NEW = "snp.brand_new"
        BASE = "gpu.novel"

        def step(t, fn):
            t.run("log.made_up", fn)
            t.passed(f"{BASE}.thing")
            collector.fail("tdx.policy.invented", "FIELD", 1, 2)
            raise FormatError("bundle.unheard_of", "message")

        def helper(x, check): ...
        helper(1, "release.fresh")
        helper(1, check="snp.policy.debug")
    """))
    found = scan(tmp_path)
    ids = {u.check for u in found}
    assert {"snp.brand_new", "log.made_up", "gpu.novel.thing", "tdx.policy.invented",
            "bundle.unheard_of", "release.fresh", "snp.policy.debug"} <= ids
    unknown = " ".join(unknown_ids(found))
    for new in ("snp.brand_new", "log.made_up", "gpu.novel.thing", "tdx.policy.invented",
                "bundle.unheard_of", "release.fresh"):
        assert repr(new) in unknown
    assert "'snp.policy.debug'" not in unknown
    assert [u.error for u in found if u.check == "bundle.unheard_of"] == ["FormatError"]
