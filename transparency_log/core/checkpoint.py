"""C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint@v1.0.0): the signed tree head of a log.

Note text (tlog-checkpoint §"Note text"), at least three non-empty lines, each ending in
``\\n``::

    origin            non-empty; any UTF-8 without control characters (clients MUST NOT assume
                      it is a URL)
    tree size         ASCII decimal, no sign, no leading zero (``0`` for the empty tree)
    root hash         standard base64 (RFC 4648 §4) of the 32-byte RFC 6962 root, canonical
    extension lines   optional, opaque, each non-empty; kept and re-emitted verbatim

The checkpoint is carried in a signed note (c2sp.org/signed-note) whose log signature's key
name SHOULD match the origin (tlog-checkpoint §"Signatures"); :func:`open_checkpoint` requires
the origin to equal the expected origin (by default the log key's name).

Strictness beyond the spec, as in golang.org/x/mod/sumdb/tlog ``ParseTree``: the size must be
at most 2**63 - 1 and the text at most :data:`transparency_log.core.note.MAX_NOTE_SIZE` bytes.
Malformed text is a FormatError with check ``checkpoint.format``; a wrong origin is a
VerificationError with check ``checkpoint.origin``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from transparency_log.common.errors import FormatError, VerificationError
from transparency_log.common.parse_cache import frozen_value, parse_once
from transparency_log.core.note import (
    MAX_NOTE_SIZE,
    PARSE_CACHE_MAX_NOTE,
    Note,
    NoteSigner,
    NoteVerifier,
    b64decode_canonical,
    check_note_chars,
    open_note,
    sign_note,
)

__all__ = [
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "Checkpoint",
    "format_decimal",
    "open_checkpoint",
    "parse_checkpoint",
    "parse_decimal",
    "sign_checkpoint",
]

CHECK_FORMAT = "checkpoint.format"
CHECK_ORIGIN = "checkpoint.origin"
HASH_SIZE = 32
MAX_TREE_SIZE = 2**63 - 1


def parse_decimal(text: str, check: str, field_name: str, maximum: int = MAX_TREE_SIZE) -> int:
    """A canonical ASCII decimal: digits only, no sign, no leading zero, at most ``maximum``.

    (Python's ``int()`` would accept ``+5``, ``05``, ``5_0``, `` 5`` and non-ASCII digits.)
    """
    if not (text.isdigit() and text.isascii()) or (len(text) > 1 and text[0] == "0"):
        raise FormatError(check, "not a canonical decimal", field=field_name, got=text,
                          want="ASCII digits, no sign, no leading zero")
    if len(text) > len(str(maximum)) or int(text) > maximum:
        raise FormatError(check, "number too large", field=field_name, got=text,
                          want=f"<= {maximum}")
    return int(text)


def format_decimal(n: int) -> str:
    """The canonical decimal of ``n`` (the inverse of :func:`parse_decimal`)."""
    return str(int(n))


def _check_line(line: str, what: str) -> None:
    try:
        data = line.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError(CHECK_FORMAT, f"{what} is not valid Unicode text", field=what,
                          got=repr(line)) from None
    check_note_chars(data, CHECK_FORMAT, what)


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, 32-byte root hash, optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or "\n" in self.origin:
            raise FormatError(CHECK_FORMAT, "origin must be a non-empty line", field="origin",
                              got=self.origin)
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not (
            0 <= self.size <= MAX_TREE_SIZE
        ):
            raise FormatError(CHECK_FORMAT, "tree size out of range", field="tree size",
                              got=self.size, want=f"0..{MAX_TREE_SIZE}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise FormatError(CHECK_FORMAT, "root hash must be 32 bytes", field="root hash",
                              got=len(self.root) if isinstance(self.root, bytes) else None,
                              want=HASH_SIZE)
        if not isinstance(self.extensions, tuple):
            object.__setattr__(self, "extensions", tuple(self.extensions))
        for i, ext in enumerate(self.extensions):
            if not isinstance(ext, str) or not ext or "\n" in ext:
                raise FormatError(CHECK_FORMAT, "extension lines must be non-empty lines",
                                  field=f"extension line {i + 1}", got=ext)
            _check_line(ext, f"extension line {i + 1}")

    def to_text(self) -> bytes:
        """The note text: origin, size, base64 root, extensions, each ending in a newline."""
        lines = [self.origin, format_decimal(self.size),
                 base64.b64encode(self.root).decode("ascii"), *self.extensions]
        return "".join(line + "\n" for line in lines).encode()


def parse_checkpoint(text: bytes) -> Checkpoint:
    """Parse a checkpoint note text (without signatures) strictly; FormatError otherwise.
    A text seen before is not parsed again (:mod:`transparency_log.common.parse_cache`)."""
    if not isinstance(text, bytes | bytearray):
        raise FormatError(CHECK_FORMAT, "checkpoint must be bytes", got=type(text).__name__)
    if len(text) > MAX_NOTE_SIZE:
        raise FormatError(CHECK_FORMAT, "checkpoint too large", field="checkpoint",
                          got=len(text), want=f"<= {MAX_NOTE_SIZE} bytes")
    return _parse_checkpoint(bytes(text))


@parse_once(max_entries=256, max_input=PARSE_CACHE_MAX_NOTE)
def _parse_checkpoint(text: bytes) -> Checkpoint:
    decoded = check_note_chars(bytes(text), CHECK_FORMAT, "checkpoint")
    if not decoded.endswith("\n"):
        raise FormatError(CHECK_FORMAT, "checkpoint must end with a newline", field="checkpoint")
    lines = decoded[:-1].split("\n")
    if len(lines) < 3:
        raise FormatError(CHECK_FORMAT, "checkpoint needs origin, size and root lines",
                          field="checkpoint", got=len(lines), want=">= 3 lines")
    if "" in lines:
        raise FormatError(CHECK_FORMAT, "empty line in checkpoint",
                          field=f"line {lines.index('') + 1}")
    origin, size_text, root_text, *extensions = lines
    size = parse_decimal(size_text, CHECK_FORMAT, "tree size")
    root = b64decode_canonical(root_text, CHECK_FORMAT, "root hash")
    if len(root) != HASH_SIZE:
        raise FormatError(CHECK_FORMAT, "root hash must be 32 bytes", field="root hash",
                          got=len(root), want=HASH_SIZE)
    # every check of Checkpoint.__post_init__ is done: non-empty lines without a newline or a
    # control character (the whole text passed check_note_chars), size in range, 32-byte root
    return frozen_value(Checkpoint, {"origin": origin, "size": size, "root": root,
                                     "extensions": tuple(extensions)})


def sign_checkpoint(cp: Checkpoint, signer: NoteSigner) -> bytes:
    """The signed note of ``cp`` signed by the log key ``signer``."""
    return sign_note(cp.to_text(), [signer])


def open_checkpoint(msg: bytes, log_verifier: NoteVerifier,
                    origin: str | None = None) -> tuple[Checkpoint, Note]:
    """Verify a signed checkpoint note by the log key and parse it.

    Order: note format (FormatError ``note.format``), the log's signature (SignatureError
    ``note.signature`` / VerificationError ``note.unverified``), checkpoint format
    (FormatError ``checkpoint.format``), origin == ``origin`` or, when None, the log key's
    name (VerificationError ``checkpoint.origin``). Other signatures (witness cosignatures)
    are left in ``note.unverified_sigs`` for the witness policy.
    """
    note = open_note(msg, [log_verifier])
    cp = parse_checkpoint(note.text)
    want = origin if origin is not None else log_verifier.name
    if cp.origin != want:
        raise VerificationError(CHECK_ORIGIN, "checkpoint origin is not the expected log",
                                field="origin", got=cp.origin, want=want)
    return cp, note
