"""Property tests: every generated proof verifies; any single-bit flip fails."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transparency_log.common.errors import FormatError, ProofError
from transparency_log.core import merkle


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


# --- the verified-inclusion memo (issue 15) -------------------------------------------------------


def test_verified_inclusion_memo_never_accepts_other_inputs() -> None:
    """A proof that verified is remembered by its exact inputs; changing any one of them
    (index, size, leaf, one proof hash, root) is verified afresh and refused, and a refusal
    is not remembered."""
    tree = merkle.MemoryTree([b"e%d" % i for i in range(37)])
    index, size = 21, 37
    leaf, proof, root = merkle.leaf_hash(b"e21"), tree.inclusion_proof(21), tree.root()
    merkle.verify_inclusion(index, size, leaf, proof, root)
    hits = merkle._verified_inclusion.cache_info().hits
    merkle.verify_inclusion(index, size, leaf, list(proof), root)
    assert merkle._verified_inclusion.cache_info().hits == hits + 1
    flipped = bytes([proof[2][0] ^ 1]) + proof[2][1:]
    others = [
        (index + 1, size, leaf, proof, root),
        (index, 24, leaf, proof, root),  # (38 or 64 would verify: same path and root)
        (index, size, merkle.leaf_hash(b"e22"), proof, root),
        (index, size, leaf, [*proof[:2], flipped, *proof[3:]], root),
        (index, size, leaf, proof, tree.root(36)),
    ]
    for args in others:
        for _ in range(2):
            with pytest.raises((ProofError, FormatError)):
                merkle.verify_inclusion(*args)
    merkle.verify_inclusion(index, size, leaf, proof, root)  # still good
