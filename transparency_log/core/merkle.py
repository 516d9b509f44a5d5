"""RFC 6962 / RFC 9162 §2.1 Merkle trees over SHA-256.

Hashing (RFC 9162 §2.1.1): ``leaf = SHA-256(0x00 || entry)``, ``node = SHA-256(0x01 || l || r)``,
the empty tree's root is ``SHA-256("")``.

Proofs are split the transparency-dev way: deciding *which* subtrees a proof needs is pure
arithmetic (:func:`inclusion_ranges`, :func:`consistency_ranges`, following the recursive
PATH and SUBPROOF definitions of RFC 9162 §2.1.3.1 and §2.1.4.1); fetching their hashes is the
caller's (a ``NodeReader``: ``(level, index) -> 32-byte hash`` of the perfect subtree covering
leaves ``[index << level, (index + 1) << level)``). Storage never has to understand proofs.

Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 with input checks first: index < size,
32-byte hashes, the exact proof length. Malformed input is a FormatError; a proof that leads
elsewhere is a ProofError carrying the expected and the calculated root.

Size-0 consistency convention: a consistency *proof* from the empty tree is meaningless, and
:func:`verify_consistency` refuses ``size1 == 0`` with a FormatError, even for ``size2 == 0``
(as the transparency-dev vectors do). A C2SP tlog-witness accepts ``old 0`` with an empty
proof: that rule belongs to the witness (every tree extends the empty tree), not here.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Callable, Iterable, Sequence

from transparency_log.common.errors import FormatError, ProofError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
_BYTES_ONLY = frozenset({bytes})
_HASH_LEN_ONLY = frozenset({HASH_SIZE})

NodeReader = Callable[[int, int], bytes]
"""``(level, index) -> hash`` of the perfect subtree of 2**level leaves at ``index``."""

_sha256 = hashlib.sha256
try:  # CPython's own SHA-256 (3.11: _sha256, 3.12+: _sha2): the same function as OpenSSL's,
    # with less work per call (no EVP context to allocate and copy), which is what counts
    # for the 65-byte node inputs (issue 15: ~15-25% less per node hash than OpenSSL here)
    from _sha256 import sha256 as _node_sha256  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the interpreter
    try:
        from _sha2 import sha256 as _node_sha256  # type: ignore[import-not-found,no-redef]
    except ImportError:
        _node_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d}) = SHA-256(0x00 || d)."""
    return _sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x01 || left || right)."""
    return _node_sha256(NODE_PREFIX + left + right).digest()


def hash_level(hashes: Sequence[bytes]) -> list[bytes]:
    """Hash adjacent pairs of one level into the next (an odd last hash is dropped)."""
    it = iter(hashes)
    sha, prefix = _node_sha256, NODE_PREFIX
    return [sha(prefix + a + b).digest() for a, b in zip(it, it, strict=False)]


_node_digest = type(_node_sha256(b"")).digest
_PAIRS_IN_C_MIN = 8
"""From this many pairs on, a level is hashed with no Python bytecode per node."""
_PAIRS_PER_CHUNK = 128
"""Pairs split by one ``struct`` call (a full tile's first level): bounds the formats kept."""


@functools.lru_cache(maxsize=_PAIRS_PER_CHUNK)
def _pair_splitters(pairs: int) -> tuple[Callable[[bytes], tuple[bytes, ...]],
                                         Callable[[bytes], tuple[bytes, ...]]]:
    """``struct`` unpackers cutting ``pairs`` 64-byte pairs, and the same pairs each behind
    its 0x01 prefix (65-byte node inputs), in one C call each."""
    return (struct.Struct("64s" * pairs).unpack, struct.Struct("65s" * pairs).unpack)


def hash_level_bytes(level: bytes) -> bytes:
    """:func:`hash_level` over hashes stored back to back (32 bytes each, as in a hash tile):
    the next level, back to back (an odd last hash is dropped). The tile reader's and the
    audit's inner loop: from :data:`_PAIRS_IN_C_MIN` pairs on, the node inputs
    ``0x01 || l || r`` are cut by ``struct`` and hashed through ``map`` (the SHA-256 calls and
    nothing else per node), otherwise one slice per node."""
    pairs = len(level) >> 6
    sha = _node_sha256
    if pairs < _PAIRS_IN_C_MIN:
        prefix = NODE_PREFIX
        return b"".join([sha(prefix + level[i:i + 64]).digest()
                         for i in range(0, pairs << 6, 64)])
    if pairs <= _PAIRS_PER_CHUNK and len(level) == pairs << 6:  # a tile's level: no copy
        cut, cut_prefixed = _pair_splitters(pairs)
        return b"".join(map(_node_digest, map(sha, cut_prefixed(
            NODE_PREFIX + NODE_PREFIX.join(cut(level))))))
    out = []
    for first in range(0, pairs, _PAIRS_PER_CHUNK):
        n = min(_PAIRS_PER_CHUNK, pairs - first)
        cut, cut_prefixed = _pair_splitters(n)
        chunk = level[first << 6:(first + n) << 6]
        out.append(b"".join(map(_node_digest, map(sha, cut_prefixed(
            NODE_PREFIX + NODE_PREFIX.join(cut(chunk)))))))
    return out[0] if len(out) == 1 else b"".join(out)


def fold_bytes(level: bytes) -> bytes:
    """The root of 2**k hashes stored back to back (k >= 0): the perfect subtree they span."""
    while len(level) > HASH_SIZE:
        level = hash_level_bytes(level)
    return level


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162 §2.1.1: the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The tree head of leaves with these hashes (MTH of RFC 9162 §2.1.1)."""
    if not hashes:
        return EMPTY_ROOT
    ranges = CompactRange()
    for h in hashes:
        ranges.append(h)
    return ranges.root()


def subtree_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees, left to right, that cover the leaves ``[start, end)``.

    ``start`` must be aligned so that each piece is a perfect subtree; this holds for every
    range produced by the RFC 9162 recursion (a left part of size 2**k, then a right part).
    """
    out: list[tuple[int, int]] = []
    pos = start
    size = end - start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            if pos & ((1 << level) - 1):
                raise ValueError(f"range [{start}, {end}) is not aligned at level {level}")
            out.append((level, pos >> level))
            pos += 1 << level
    return out


def subtree_hash(start: int, end: int, read: NodeReader) -> bytes:
    """MTH(D[start:end]) from the perfect subtrees covering the range, folded right to left."""
    nodes = subtree_nodes(start, end)
    if not nodes:
        return EMPTY_ROOT
    h = read(*nodes[-1])
    for level, index in reversed(nodes[:-1]):
        h = node_hash(read(level, index), h)
    return h


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PATH(index, D[0:size]), leaf first (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size:
        raise FormatError("merkle.inclusion", "index out of range", field="index",
                          got=index, want=f"< {size}")
    out: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    out.reverse()
    return out


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PROOF(size1, D[0:size2]) (RFC 9162 §2.1.4.1)."""
    if not 0 < size1 <= size2:
        raise FormatError("merkle.consistency", "sizes out of range", field="size1",
                          got=size1, want=f"0 < size1 <= {size2}")
    out: list[tuple[int, int]] = []
    start, end, m, complete = 0, size2, size1, True
    while True:
        if m == end - start:
            if not complete:
                out.append((start, end))
            break
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
            m -= k
            complete = False
    out.reverse()
    return out


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    """The inclusion proof for leaf ``index`` in the tree of ``size`` leaves."""
    return [subtree_hash(a, b, read) for a, b in inclusion_ranges(index, size)]


def consistency_proof(size1: int, size2: int, read: NodeReader) -> list[bytes]:
    """The consistency proof from ``size1`` to ``size2`` (empty when the sizes are equal)."""
    if size1 == size2:
        return []
    return [subtree_hash(a, b, read) for a, b in consistency_ranges(size1, size2)]


def _check_hash(value: bytes, check: str, field: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        got = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise FormatError(check, "hash must be 32 bytes", field=field, got=got, want=HASH_SIZE)


def _check_proof(proof: Sequence[bytes], want_len: int, check: str) -> None:
    if len(proof) != want_len:
        raise FormatError(check, "wrong proof size", field="proof", got=len(proof),
                          want=want_len)
    if set(map(type, proof)) <= _BYTES_ONLY and set(map(len, proof)) <= _HASH_LEN_ONLY:
        return  # the common case, checked in C
    for i, p in enumerate(proof):
        if p.__class__ is not bytes or len(p) != HASH_SIZE:
            _check_hash(p, check, f"proof[{i}]")


def inclusion_proof_length(index: int, size: int) -> int:
    """``len(inclusion_ranges(index, size))`` without building the ranges: the levels below
    the split where ``index`` and the last leaf part (the bit length of
    ``index ^ (size - 1)``), plus one hash per set bit of ``index`` above them (the left
    subtrees on the right border). Requires ``0 <= index < size``."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def root_from_inclusion_proof(index: int, size: int, leaf: bytes,
                              proof: Sequence[bytes]) -> bytes:
    """Compute the root that ``proof`` leads to from ``leaf`` (RFC 9162 §2.1.3.2)."""
    check = "merkle.inclusion"
    if size <= 0 or not 0 <= index < size:
        raise FormatError(check, "index out of range", field="index", got=index,
                          want=f"0 <= index < size ({size})")
    _check_hash(leaf, check, "leaf_hash")
    # The first ``inner`` hashes are siblings below the split where the index and the last
    # leaf part: bit i of the index says on which side the i-th one is. The rest are the
    # left subtrees on the tree's right border (RFC 9162 §2.1.3.2's loop, with the levels
    # where fn is even and equal to sn skipped by counting them out of the length).
    inner = (index ^ (size - 1)).bit_length()
    _check_proof(proof, inner + (index >> inner).bit_count(), check)
    return _fold_path(index, inner, bytes(leaf), proof)


def _fold_path(index: int, inner: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root a checked path leads to (RFC 9162 §2.1.3.2; see the caller for ``inner``)."""
    sha, prefix, r, fn = _node_sha256, NODE_PREFIX, leaf, index
    for p in proof[:inner]:
        if fn & 1:
            r = sha(prefix + p + r).digest()
        else:
            r = sha(prefix + r + p).digest()
        fn >>= 1
    for p in proof[inner:]:
        r = sha(prefix + p + r).digest()
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Raise unless ``proof`` shows ``leaf`` at ``index`` in the tree ``(size, root)``.

    A proof that verified is remembered by its exact inputs (index, size, leaf hash, every
    proof hash, root; bounded, :data:`VERIFIED_INCLUSIONS_MAX`): the same proof seen again
    (every bundle of a node staples the same one) is not rehashed. Any other input is
    verified afresh, and a failure is never remembered."""
    if (type(leaf) is bytes and type(root) is bytes and type(index) is int
            and type(size) is int):
        key = tuple(proof)
        if set(map(type, key)) <= _BYTES_ONLY:
            _verified_inclusion(index, size, leaf, key, root)
            return
    _verify_inclusion(index, size, leaf, proof, root)


VERIFIED_INCLUSIONS_MAX = 1024


@functools.lru_cache(maxsize=VERIFIED_INCLUSIONS_MAX)
def _verified_inclusion(index: int, size: int, leaf: bytes, proof: tuple[bytes, ...],
                        root: bytes) -> bool:
    # types checked by the caller; all well formed: fold without re-checking, else checked
    if (len(root) == HASH_SIZE and len(leaf) == HASH_SIZE and 0 <= index < size
            and set(map(len, proof)) <= _HASH_LEN_ONLY
            and len(proof) - (inner := (index ^ (size - 1)).bit_length())
            == (index >> inner).bit_count() and _fold_path(index, inner, leaf, proof) == root):
        return True
    _verify_inclusion(index, size, leaf, proof, root)  # raises: nothing is cached
    return True


def _verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                      root: bytes) -> None:
    _check_hash(root, "merkle.inclusion", "root")
    calculated = root_from_inclusion_proof(index, size, leaf, proof)
    if calculated != root:
        raise ProofError("merkle.inclusion", "root mismatch", expected_root=bytes(root),
                         calculated_root=calculated)


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raise unless ``proof`` shows tree ``(size2, root2)`` extends ``(size1, root1)``.

    RFC 9162 §2.1.4.2. See the module docstring for the size-0 convention.
    """
    check = "merkle.consistency"
    if size1 < 0 or size2 < 0 or size1 > size2:
        raise FormatError(check, "size1 greater than size2", field="size1", got=size1,
                          want=f"<= {size2}")
    if size1 == 0:
        raise FormatError(check, "consistency proof from the empty tree is meaningless",
                          field="size1", got=0, want="> 0")
    if size1 == size2:
        # Same tree: the proof is empty and the roots are byte-identical (the vectors accept
        # equal roots of any length here, as the RFC's algorithm never hashes them).
        _check_proof(proof, 0, check)
        if root1 != root2:
            raise ProofError(check, "equal sizes with different roots",
                             expected_root=bytes(root1), calculated_root=bytes(root2))
        return
    _check_hash(root1, check, "root1")
    _check_hash(root2, check, "root2")
    _check_proof(proof, len(consistency_ranges(size1, size2)), check)
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is an exact power of two
        path.insert(0, bytes(root1))
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(check, "proof longer than the path")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(check, "proof shorter than the path")
    if fr != root1:
        raise ProofError(check, "old root mismatch", expected_root=bytes(root1),
                         calculated_root=fr, field="root1")
    if sr != root2:
        raise ProofError(check, "new root mismatch", expected_root=bytes(root2),
                         calculated_root=sr, field="root2")


class CompactRange:
    """The right border of a growing tree: one hash per set bit of the size.

    :meth:`append` returns the perfect-subtree nodes it completes, ``(level, index, hash)``,
    so a store can persist every node exactly once, in O(log n) memory.
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self.size = size
        self.hashes = list(hashes)  # highest level first, one per set bit of size
        if len(self.hashes) != bin(size).count("1"):
            raise ValueError("compact range: one hash per set bit of the size is required")

    @classmethod
    def from_reader(cls, size: int, read: NodeReader) -> CompactRange:
        """Rebuild the border of a stored tree of ``size`` leaves."""
        return cls(size, [read(level, index) for level, index in subtree_nodes(0, size)])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        index = self.size
        h = leaf
        made = [(0, index, h)]
        level = 0
        while index >> level & 1:
            h = node_hash(self.hashes.pop(), h)
            level += 1
            made.append((level, index >> level, h))
        self.hashes.append(h)
        self.size += 1
        return made

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        h = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            h = node_hash(left, h)
        return h


class MemoryTree:
    """A whole tree in memory: the reference used by tests and small tools."""

    def __init__(self, entries: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        self._range = CompactRange()
        for e in entries:
            self.append(e)

    @property
    def size(self) -> int:
        return self._range.size

    def append_hash(self, leaf: bytes) -> int:
        index = self._range.size
        for level, i, h in self._range.append(leaf):
            if level == len(self.levels):
                self.levels.append([])
            assert len(self.levels[level]) == i
            self.levels[level].append(h)
        return index

    def append(self, entry: bytes) -> int:
        return self.append_hash(leaf_hash(entry))

    def read(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        return subtree_hash(0, size, self.read)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self.read)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        return consistency_proof(size1, self.size if size2 is None else size2, self.read)
