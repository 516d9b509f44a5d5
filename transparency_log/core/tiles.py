"""C2SP tlog-tiles: tile paths, hash tiles, entry bundles, and proofs built from tiles.

Spec: https://c2sp.org/tlog-tiles. A log's read API is a tree of static files:

- ``checkpoint``: the latest signed checkpoint (C2SP tlog-checkpoint in signed-note form);
- ``tile/<L>/<N>[.p/<W>]``: hash tile ``N`` of level ``L``. A tile of level ``L`` holds up to
  256 consecutive hashes of tree level ``8·L`` (leaf hashes for ``L = 0``), 32 bytes each, so a
  full tile is 8192 bytes. A *partial* tile (``.p/<W>``, ``1 <= W <= 255``) holds the first
  ``W`` hashes of a tile the tree has not filled yet;
- ``tile/entries/<N>[.p/<W>]``: entry bundle ``N``, the entries ``256·N .. 256·N + W - 1``,
  each as a big-endian uint16 length followed by that many bytes (so an entry is at most
  65535 bytes).

``N`` is written in 3-digit decimal groups, every group but the last prefixed with ``x``:
1234067 is ``x001/x234/067``. The golang.org/x/mod sumdb tiles use a different path,
``tile/<H>/<L>/<N>[.p/<W>]`` with an explicit tile height ``H`` (and ``data`` for record
tiles); C2SP drops ``H`` and fixes it at 8. Only the C2SP form is produced or accepted here.

Proofs read from a tile tree (:class:`~transparency_log.core.tile_reader.TileReader`) are in
:mod:`transparency_log.core.tile_reader`.
"""

from __future__ import annotations

import functools
import hashlib
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from transparency_log.common.errors import FormatError
from transparency_log.core import merkle

TILE_HEIGHT = 8
"""Tree levels per tile (C2SP tlog-tiles fixes it at 8)."""
TILE_WIDTH = 1 << TILE_HEIGHT
"""Hashes (or entries) in a full tile: 256."""
HASH_SIZE = merkle.HASH_SIZE
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE
MAX_ENTRY_SIZE = 0xFFFF
"""An entry bundle stores each length as a uint16, so no entry may exceed 65535 bytes."""
MAX_TILE_LEVEL = 63
ENTRIES = "entries"
MAX_TREE_SIZE = (1 << 64) - 1
"""A checkpoint's tree size is a uint64 (C2SP tlog-checkpoint), so no tile lies beyond it."""
MAX_TILE_INDEX = MAX_TREE_SIZE >> TILE_HEIGHT
"""The largest tile index of any level: an entry bundle or level-0 tile of a full uint64 tree
(72057594037927935, 17 digits); higher levels have smaller ones."""
MAX_INDEX_GROUPS = 6
"""Groups in the spelling of :data:`MAX_TILE_INDEX`. Longer paths are refused before any
conversion, so parsing stays linear in the path's length (and a bigger index never reaches
storage, whose integers are 64-bit)."""

Fetch = Callable[[str], bytes]
"""``(path) -> bytes`` relative to the log's prefix. It MUST raise FileNotFoundError for a file
that does not exist (an HTTP 404); other failures (FetchError) propagate."""


# --- path encoding ---------------------------------------------------------------------------

def encode_index(n: int) -> str:
    """Tile index N as 3-digit groups, all but the last prefixed with ``x`` (C2SP tlog-tiles)."""
    if n < 0:
        raise ValueError(f"tile index must be non-negative, got {n}")
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join([*("x" + g for g in groups[:-1]), groups[-1]])


_GROUP = re.compile(r"[0-9]{3}")


def decode_index(text: str) -> int:
    """Strict inverse of :func:`encode_index`: the canonical spelling only, at most
    :data:`MAX_INDEX_GROUPS` groups."""
    parts = text.split("/", MAX_INDEX_GROUPS)
    if len(parts) > MAX_INDEX_GROUPS:
        raise FormatError("tiles.path", "tile index too long", field="N", got=text[:40],
                          want=f"at most {MAX_INDEX_GROUPS} groups")
    value = 0
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        digits = part if last else part[1:]
        if (not last and not part.startswith("x")) or not _GROUP.fullmatch(digits):
            raise FormatError("tiles.path", "malformed tile index", field="N", got=text,
                              want="3-digit groups, x-prefixed but the last")
        value = value * 1000 + int(digits)
    if encode_index(value) != text:  # a leading x000 group is not canonical
        raise FormatError("tiles.path", "non-canonical tile index", field="N", got=text,
                          want=encode_index(value))
    return value


def _width_suffix(width: int) -> str:
    if width == TILE_WIDTH:
        return ""
    if not 1 <= width < TILE_WIDTH:
        raise ValueError(f"tile width must be 1..256, got {width}")
    return f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]`` for hash tile ``index`` of tile level ``level``."""
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise ValueError(f"tile level must be 0..63, got {level}")
    return f"tile/{level}/{encode_index(index)}{_width_suffix(width)}"


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]`` for entry bundle ``index``."""
    return f"tile/entries/{encode_index(index)}{_width_suffix(width)}"


@dataclass(frozen=True)
class TileId:
    """One tile: ``level`` is a tile level (0..63) or ``"entries"`` for an entry bundle."""

    level: int | str
    index: int
    width: int = TILE_WIDTH

    @property
    def path(self) -> str:
        if self.level == ENTRIES:
            return entries_path(self.index, self.width)
        assert isinstance(self.level, int)
        return tile_path(self.level, self.index, self.width)


_PATH = re.compile(r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/)"
                   rf"{{0,{MAX_INDEX_GROUPS - 1}}}[0-9]{{3}})(?:\.p/([1-9][0-9]{{0,2}}))?")


def parse_tile_path(path: str) -> TileId:
    """Parse a C2SP tile or entry-bundle path strictly (canonical spellings only)."""
    m = _PATH.fullmatch(path)
    if not m:
        raise FormatError("tiles.path", "not a C2SP tile path", field="path", got=path[:100],
                          want="tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]")
    level: int | str = m[1] if m[1] == ENTRIES else int(m[1])
    if isinstance(level, int) and level > MAX_TILE_LEVEL:
        raise FormatError("tiles.path", "tile level out of range", field="L", got=level,
                          want="0..63")
    width = TILE_WIDTH
    if m[3] is not None:
        width = int(m[3])
        if width >= TILE_WIDTH:
            raise FormatError("tiles.path", "partial tile width out of range", field="W",
                              got=width, want="1..255")
    index = decode_index(m[2])
    if index > MAX_TILE_INDEX:
        raise FormatError("tiles.path", "tile index beyond any uint64 tree size", field="N",
                          got=index, want=f"<= {MAX_TILE_INDEX}")
    return TileId(level, index, width)


# --- which tiles a tree has ------------------------------------------------------------------

def level_width(size: int, level: int) -> int:
    """How many complete hashes of tree level ``8·level`` a tree of ``size`` leaves has."""
    return size >> (TILE_HEIGHT * level)


def tile_width(size: int, level: int, index: int) -> int:
    """Width (0..256) of tile ``index`` of tile level ``level`` in a tree of ``size`` leaves."""
    return max(0, min(TILE_WIDTH, level_width(size, level) - index * TILE_WIDTH))


def tiles_for_size(size: int) -> Iterator[TileId]:
    """Every hash tile of a tree of ``size`` leaves: full tiles, then the one partial tile of
    each level (a level whose width is 0 has no tile: empty tiles MUST NOT be served)."""
    level = 0
    while level_width(size, level) > 0:
        n = level_width(size, level)
        for index in range(n // TILE_WIDTH):
            yield TileId(level, index)
        if n % TILE_WIDTH:
            yield TileId(level, n // TILE_WIDTH, n % TILE_WIDTH)
        level += 1


def bundles_for_size(size: int) -> Iterator[TileId]:
    """Every entry bundle of a log of ``size`` entries (the last one partial when needed)."""
    for index in range(size // TILE_WIDTH):
        yield TileId(ENTRIES, index)
    if size % TILE_WIDTH:
        yield TileId(ENTRIES, size // TILE_WIDTH, size % TILE_WIDTH)


def changed_tiles(old_size: int, new_size: int) -> Iterator[TileId]:
    """The hash tiles (at ``new_size``'s widths) that differ between two tree sizes."""
    level = 0
    while level_width(new_size, level) > 0:
        first = level_width(old_size, level) // TILE_WIDTH
        n = level_width(new_size, level)
        for index in range(first, (n + TILE_WIDTH - 1) // TILE_WIDTH):
            yield TileId(level, index, tile_width(new_size, level, index))
        level += 1


# --- hash tiles ------------------------------------------------------------------------------

def encode_hash_tile(hashes: Sequence[bytes]) -> bytes:
    """A hash tile: the hashes concatenated (1..256 of 32 bytes)."""
    if not 1 <= len(hashes) <= TILE_WIDTH:
        raise ValueError(f"a hash tile holds 1..256 hashes, got {len(hashes)}")
    for h in hashes:
        if len(h) != HASH_SIZE:
            raise ValueError("a tile hash must be 32 bytes")
    return b"".join(hashes)


def decode_hash_tile(data: bytes, width: int = TILE_WIDTH) -> list[bytes]:
    """The ``width`` hashes of a hash tile; its size must be exactly ``32·width``."""
    if len(data) != width * HASH_SIZE:
        raise FormatError("tiles.hash_tile", "wrong hash tile size", field="tile",
                          got=len(data), want=width * HASH_SIZE)
    return [data[i:i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


# --- entry bundles ---------------------------------------------------------------------------

def check_entry(entry: bytes) -> None:
    """Refuse an entry that an entry bundle cannot carry (over 65535 bytes)."""
    if not isinstance(entry, bytes | bytearray):
        raise FormatError("tiles.entry", "an entry must be bytes", field="entry",
                          got=type(entry).__name__, want="bytes")
    if len(entry) > MAX_ENTRY_SIZE:
        raise FormatError("tiles.entry", "entry too large for an entry bundle",
                          field="entry length", got=len(entry), want=f"<= {MAX_ENTRY_SIZE}")


def encode_entry_bundle(entries: Iterable[bytes]) -> bytes:
    """An entry bundle: each entry as uint16 big-endian length || bytes."""
    out = bytearray()
    count = 0
    for e in entries:
        check_entry(e)
        out += len(e).to_bytes(2, "big")
        out += e
        count += 1
    if not 1 <= count <= TILE_WIDTH:
        raise ValueError(f"an entry bundle holds 1..256 entries, got {count}")
    return bytes(out)


def decode_entry_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """The entries of a bundle, strictly: no trailing bytes, no truncated entry, 1..256 entries,
    and exactly ``width`` of them when given."""
    out: list[bytes] = []
    pos, n = 0, len(data)
    while pos < n:
        if pos + 2 > n:
            raise FormatError("tiles.entry_bundle", "truncated entry length",
                              field="entry length", got=n - pos, want=2)
        length = int.from_bytes(data[pos:pos + 2], "big")
        pos += 2
        if pos + length > n:
            raise FormatError("tiles.entry_bundle", "truncated entry", field="entry",
                              got=n - pos, want=length)
        out.append(bytes(data[pos:pos + length]))
        pos += length
        if len(out) > TILE_WIDTH:
            raise FormatError("tiles.entry_bundle", "too many entries", field="entries",
                              got=len(out), want=f"<= {TILE_WIDTH}")
    want = width if width is not None else f"1..{TILE_WIDTH}"
    if not out or (width is not None and len(out) != width):
        raise FormatError("tiles.entry_bundle", "wrong number of entries", field="entries",
                          got=len(out), want=want)
    return out


def bundle_leaf_hashes(data: bytes, width: int | None = None) -> list[bytes]:
    """The RFC 9162 leaf hashes of a bundle's entries, decoded as strictly as
    :func:`decode_entry_bundle`, without copying the entries: each entry's length prefix is
    followed by the entry, so overwriting the low length byte with the 0x00 leaf prefix
    leaves ``0x00 || entry`` in place, which is hashed through a memoryview.

    This is the replay's and the monitor's inner loop (``hashlib.sha256`` of ~1 KiB costs
    ~0.9 µs here, so every 0.1 µs of Python per entry is 10% of the rate). When every length
    prefix equals the first one (the entries all have one size, which is checked with two
    strided comparisons), the prefixes are rewritten by one strided assignment and the
    entries hashed in one comprehension; otherwise one loop parses and hashes each entry.
    Both paths accept and refuse exactly the same bundles.
    """
    n = len(data)
    buf = bytearray(data)
    view, sha = memoryview(buf), hashlib.sha256
    record = ((buf[0] << 8) | buf[1]) + 2 if n >= 2 else 0
    count = n // record if record else 0
    if (0 < count <= TILE_WIDTH and count * record == n
            and buf[0::record] == buf[0:1] * count and buf[1::record] == buf[1:2] * count):
        # every record is <length><entry> with the same length: the sequential parse below
        # would find exactly these records
        buf[1::record] = bytes(count)
        hashes = [sha(view[i:i + record - 1]).digest() for i in range(1, n, record)]
    else:
        hashes = []
        append, pos = hashes.append, 0
        for _ in range(TILE_WIDTH):  # at most 256 entries are parsed (and hashed)
            if pos == n:
                break
            if pos + 2 > n:
                raise FormatError("tiles.entry_bundle", "truncated entry length",
                                  field="entry length", got=n - pos, want=2)
            end = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
            if end > n:
                raise FormatError("tiles.entry_bundle", "truncated entry", field="entry",
                                  got=n - pos - 2, want=end - pos - 2)
            pos += 1
            buf[pos] = 0
            append(sha(view[pos:end]).digest())
            pos = end
        if pos < n:
            raise FormatError("tiles.entry_bundle", "too many entries", field="entries",
                              got=f"> {TILE_WIDTH}", want=f"<= {TILE_WIDTH}")
    if not 1 <= len(hashes) <= TILE_WIDTH or (width is not None and len(hashes) != width):
        raise FormatError("tiles.entry_bundle", "wrong number of entries", field="entries",
                          got=len(hashes), want=width if width is not None else f"1..{TILE_WIDTH}")
    return hashes


def bundle_entries_and_leaf_hashes(data: bytes, width: int | None = None
                                   ) -> tuple[list[bytes], list[bytes]]:
    """``(entries, leaf hashes)`` of a bundle, decoded as strictly as
    :func:`decode_entry_bundle` (same bundles accepted and refused): the audit keeps every
    entry. Same-size entries (checked with two strided comparisons, as in
    :func:`bundle_leaf_hashes`) are sliced out and hashed in two comprehensions; any other
    bundle is hashed by :func:`bundle_leaf_hashes` and its entries sliced from the layout
    that validated."""
    src = data if type(data) is bytes else bytes(data)
    n = len(src)
    record = ((src[0] << 8) | src[1]) + 2 if n >= 2 else 0
    count = n // record if record else 0
    if (0 < count <= TILE_WIDTH and count * record == n and width in (None, count)
            and src[0::record] == src[0:1] * count and src[1::record] == src[1:2] * count):
        entries = list(_same_size_records(record - 2, count).unpack(src))
        # SHA-256(0x00 || entry) from a copy of a context that has hashed the 0x00 prefix:
        # no concatenation, and copying OpenSSL's context costs less than a new one
        start, hashes = _LEAF_START.copy, []
        append = hashes.append
        for e in entries:
            h = start()
            h.update(e)
            append(h.digest())
        return entries, hashes
    hashes = bundle_leaf_hashes(src, width)
    entries = []
    pos = 0
    for _ in range(len(hashes)):
        end = pos + 2 + ((src[pos] << 8) | src[pos + 1])
        entries.append(src[pos + 2:end])
        pos = end
    return entries, hashes


_LEAF_START = hashlib.sha256(merkle.LEAF_PREFIX)


@functools.lru_cache(maxsize=16)
def _same_size_records(size: int, count: int) -> struct.Struct:
    """``count`` records of a 2-byte length (skipped: the caller checked every one) and
    ``size`` entry bytes: one :meth:`struct.Struct.unpack` cuts the whole bundle in C, about
    8x faster than slicing each entry in a comprehension (the audit keeps every entry)."""
    return struct.Struct(f"2x{size}s" * count)
