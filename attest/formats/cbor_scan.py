"""A bounded, head-only pass over CBOR bytes before any decoder builds objects from them.

RFC 8949 §3 (encoding of data items) and §4.2.1 (core deterministic encoding). The pass reads
only the initial bytes and arguments, never the contents, so hostile input costs at most one
linear walk and a bounded number of data items; a decoder then sees only bytes that are:

- exactly one well-formed data item with nothing after it;
- at most ``max_items`` data items, containers nested at most ``max_depth`` deep;
- in the deterministic subset's head form: the shortest argument (§4.2.1 "preferred
  serialization" for integers and lengths), definite lengths only;
- free of tags (major type 6), which no attestlog format uses.

Map key order and duplicates are left to the caller's re-encoding comparison. Floats and
simple values pass (a schema then names the field that has the wrong type).
"""

from __future__ import annotations

from transparency_log.common.errors import FormatError

__all__ = ["scan"]

_ARG_SIZES = {24: 1, 25: 2, 26: 4, 27: 8}
_SHORTEST_MIN = {24: 24, 25: 1 << 8, 26: 1 << 16, 27: 1 << 32}


def scan(data: bytes, *, check_cbor: str, check_canonical: str, field: str,
         max_items: int, max_depth: int) -> None:
    """Raise FormatError (``check_cbor`` malformed / ``check_canonical`` non-deterministic)."""

    def bad(check: str, message: str, at: int) -> FormatError:
        return FormatError(check, f"{message} at byte offset {at}", field=field,
                           got=data[at : at + 8])

    pos = 0
    items = 0
    todo = [1]  # data items still expected in each open container; the outermost is 1
    while todo:
        if todo[-1] == 0:
            todo.pop()
            continue
        todo[-1] -= 1
        if pos >= len(data):
            raise bad(check_cbor, "truncated: a data item is missing", pos)
        items += 1
        if items > max_items:
            raise bad(check_cbor, f"more than {max_items} data items", pos)
        start = pos
        major, info = data[pos] >> 5, data[pos] & 0x1F
        pos += 1
        if info < 24:
            arg = info
        elif info in _ARG_SIZES:
            size = _ARG_SIZES[info]
            if pos + size > len(data):
                raise bad(check_cbor, "truncated argument", start)
            arg = int.from_bytes(data[pos : pos + size], "big")
            pos += size
            if major != 7 and arg < _SHORTEST_MIN[info]:
                raise bad(check_canonical, "argument not in its shortest form", start)
        elif info == 31 and major in (2, 3, 4, 5):
            raise bad(check_canonical, "indefinite length", start)
        else:
            raise bad(check_cbor, f"reserved or invalid additional information {info}", start)
        if major in (2, 3):
            if arg > len(data) - pos:
                raise bad(check_cbor, "string runs past the end", start)
            pos += arg
        elif major in (4, 5):
            if len(todo) > max_depth:
                raise bad(check_cbor, f"containers nested deeper than {max_depth}", start)
            todo.append(arg * (2 if major == 5 else 1))
            if todo[-1] > len(data) - pos:
                raise bad(check_cbor, "container holds more items than bytes remain", start)
        elif major == 6:
            raise bad(check_cbor, f"tag {arg}: tags are not used", start)
        elif major == 7 and info == 24 and arg < 32:
            raise bad(check_cbor, "simple value in two bytes below 32", start)
    if pos != len(data):
        raise bad(check_canonical, "bytes after the data item", pos)
