"""Packaging (issue 12): pyproject.toml uses no form setuptools warns about at install time
(the license as a TOML table was a BuildBackendWarning on every `pip install`), and every
extra is documented in the README."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_license_is_an_spdx_string_with_a_setuptools_that_reads_it() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    (requirement,) = [r for r in PYPROJECT["build-system"]["requires"]
                      if r.startswith("setuptools")]
    got = re.fullmatch(r"setuptools>=(\d+)", requirement)
    assert got is not None and int(got.group(1)) >= 77  # PEP 639 license strings
    classifiers = PYPROJECT["project"].get("classifiers", [])
    assert not [c for c in classifiers if c.startswith("License ::")]  # deprecated with 639


def test_every_extra_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert extras
    for name in extras:
        assert f"attestlog[{name}]" in readme or f".[{name}]" in readme, name
        assert f"`{name}`" in readme, name
