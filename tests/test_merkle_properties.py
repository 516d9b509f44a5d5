"""Property tests: every generated proof verifies; any single-bit flip fails."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transparency_log import merkle
from transparency_log.errors import FormatError, ProofError


def _flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@st.composite
def tree_and_index(draw: st.DrawFn) -> tuple[merkle.MemoryTree, int, int]:
    size = draw(st.integers(min_value=1, max_value=3000))
    tree = merkle.MemoryTree(i.to_bytes(4, "big") for i in range(size))
    index = draw(st.integers(min_value=0, max_value=size - 1))
    return tree, index, size


@settings(max_examples=60, deadline=None)
@given(tree_and_index(), st.data())
def test_inclusion_roundtrip_and_bitflips(args: tuple, data: st.DataObject) -> None:
    tree, index, size = args
    root = tree.root()
    leaf = merkle.leaf_hash(index.to_bytes(4, "big"))
    proof = tree.inclusion_proof(index)
    merkle.verify_inclusion(index, size, leaf, proof, root)
    assert merkle.root_from_leaf_hashes(tree.levels[0]) == root
    # Flip one bit of the root, the leaf, or one proof hash: must fail.
    target = data.draw(st.integers(min_value=0, max_value=len(proof) + 1))
    bit = data.draw(st.integers(min_value=0, max_value=255))
    if target == 0:
        root = _flip(root, bit)
    elif target == 1:
        leaf = _flip(leaf, bit)
    else:
        proof = list(proof)
        proof[target - 2] = _flip(proof[target - 2], bit)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaf, proof, root)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=3000), st.data())
def test_consistency_roundtrip_and_bitflips(size2: int, data: st.DataObject) -> None:
    size1 = data.draw(st.integers(min_value=1, max_value=size2))
    tree = merkle.MemoryTree(i.to_bytes(4, "big") for i in range(size2))
    root1, root2 = tree.root(size1), tree.root()
    proof = tree.consistency_proof(size1, size2)
    merkle.verify_consistency(size1, size2, root1, root2, proof)
    target = data.draw(st.integers(min_value=0, max_value=len(proof) + 1))
    bit = data.draw(st.integers(min_value=0, max_value=255))
    if target == 0:
        root1 = _flip(root1, bit)
    elif target == 1:
        root2 = _flip(root2, bit)
    else:
        proof = list(proof)
        proof[target - 2] = _flip(proof[target - 2], bit)
    with pytest.raises((ProofError, FormatError)):
        merkle.verify_consistency(size1, size2, root1, root2, proof)
