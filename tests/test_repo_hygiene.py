"""Repository hygiene: no merge-conflict markers in any tracked text file."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKERS = ("<<<<<<< ", ">>>>>>> ")


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return [ROOT / line for line in out.splitlines() if line]


def test_no_conflict_markers() -> None:
    files = _tracked()
    assert files, "git ls-files listed nothing"
    bad = []
    for path in files:
        if path.suffix not in {".py", ".md", ".toml", ".txt", ".cfg", ".service", ""}:
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if line.startswith(MARKERS) or line == "=======":
                bad.append(f"{path.relative_to(ROOT)}:{n}")
    assert not bad, f"conflict markers: {bad[:10]}"
