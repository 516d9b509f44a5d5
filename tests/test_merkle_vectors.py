"""Tests of record: the transparency-dev/merkle vectors and reference tree (tests/vectors/tlog)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.support.vectors import VECTORS, load_json_vector
from transparency_log.common.errors import FormatError, ProofError
from transparency_log.core import merkle

MERKLE = VECTORS / "tlog" / "merkle"


def _b64(v: str | None) -> bytes:
    return base64.b64decode(v) if v else b""


def _proof(case: dict) -> list[bytes]:
    return [base64.b64decode(p) for p in (case.get("proof") or [])]


def _cases(kind: str) -> list[Path]:
    return sorted((MERKLE / kind).rglob("*.json"))


@pytest.mark.parametrize("path", _cases("inclusion"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_inclusion_vectors(path: Path) -> None:
    case = json.loads(path.read_text())
    args = (case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), _proof(case),
            _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises((FormatError, ProofError)):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("path", _cases("consistency"),
                         ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_consistency_vectors(path: Path) -> None:
    case = json.loads(path.read_text())
    args = (case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), _proof(case))
    if case["wantErr"]:
        with pytest.raises((FormatError, ProofError)):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_vector_counts() -> None:
    assert len(_cases("inclusion")) == 98
    assert len(_cases("consistency")) == 98


def test_reference_tree_roots_and_proofs() -> None:
    ref = load_json_vector("tlog", "merkle", "reference_tree.json")
    entries = [bytes.fromhex(h) for h in ref["leaf_inputs_hex"]]
    roots = [bytes.fromhex(h) for h in ref["root_hashes_hex_by_tree_size"]]
    assert len(roots) == 9
    tree = merkle.MemoryTree(entries)
    for level, hashes in enumerate(ref["node_hashes_hex_by_level"]):
        assert [h.hex() for h in tree.levels[level]] == hashes
    for size, want in enumerate(roots):
        assert merkle.root_from_leaf_hashes([merkle.leaf_hash(e) for e in entries[:size]]) == want
        assert tree.root(size) == want
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            merkle.verify_inclusion(index, size, merkle.leaf_hash(entries[index]), proof, want)
        for size1 in range(1, size + 1):
            proof = tree.consistency_proof(size1, size)
            merkle.verify_consistency(size1, size, roots[size1], want, proof)


def test_generated_proofs_match_vectors() -> None:
    """Our generator reproduces the happy-path proofs of the vectors byte for byte."""
    ref = load_json_vector("tlog", "merkle", "reference_tree.json")
    tree = merkle.MemoryTree(bytes.fromhex(h) for h in ref["leaf_inputs_hex"])
    checked = 0
    for path in _cases("inclusion"):
        case = json.loads(path.read_text())
        if case["desc"] == "happy path" and 0 < case["treeSize"] <= 8:
            assert tree.inclusion_proof(case["leafIdx"], case["treeSize"]) == _proof(case)
            checked += 1
    for path in _cases("consistency"):
        case = json.loads(path.read_text())
        if case["desc"] == "happy path" and 0 < case["size1"] <= case["size2"] <= 8:
            assert tree.consistency_proof(case["size1"], case["size2"]) == _proof(case)
            checked += 1
    assert checked >= 8


def test_proof_error_carries_roots() -> None:
    tree = merkle.MemoryTree([b"a", b"b", b"c"])
    proof = tree.inclusion_proof(1)
    bad_root = bytes(32)
    with pytest.raises(ProofError) as info:
        merkle.verify_inclusion(1, 3, merkle.leaf_hash(b"b"), proof, bad_root)
    assert info.value.expected_root == bad_root
    assert info.value.calculated_root == tree.root()
    assert "root mismatch" in str(info.value)


def test_malformed_inputs_are_format_errors() -> None:
    tree = merkle.MemoryTree([b"a", b"b", b"c"])
    leaf = merkle.leaf_hash(b"a")
    proof = tree.inclusion_proof(0)
    with pytest.raises(FormatError):
        merkle.verify_inclusion(3, 3, leaf, proof, tree.root())
    with pytest.raises(FormatError):
        merkle.verify_inclusion(0, 3, leaf[:31], proof, tree.root())
    with pytest.raises(FormatError):
        merkle.verify_inclusion(0, 3, leaf, [*proof, proof[0]], tree.root())
    with pytest.raises(FormatError):
        merkle.verify_inclusion(0, 3, leaf, [b"", proof[1]], tree.root())
    with pytest.raises(FormatError):
        merkle.verify_consistency(0, 3, merkle.EMPTY_ROOT, tree.root(), [])
