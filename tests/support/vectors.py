"""Where the test vectors are: real vectors in tests/vectors (copied from ../shared/vectors with
their MANIFESTs); our own generated fixtures in tests/assets with the scripts that make them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent
VECTORS = TESTS / "vectors"
ASSETS = TESTS / "assets"


def vector_path(*parts: str) -> Path:
    path = VECTORS.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"test vector missing: {path}")
    return path


def load_json_vector(*parts: str) -> Any:
    return json.loads(vector_path(*parts).read_text())
