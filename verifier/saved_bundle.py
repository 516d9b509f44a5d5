"""A bundle saved by `verifier node --save FILE`, with the nonce it answered (docs/formats.md,
"Saved bundle and its nonce").

The bundle stays a bare evidence bundle in ``FILE`` (so `verifier bundle-inspect FILE` and any
CBOR tool read it); the nonce the client sent goes beside it, in ``FILE.nonce``: the nonce in
lowercase hex and one newline. `verifier bundle FILE` re-checks the bundle against that nonce
when ``--nonce`` is not given. The sidecar is the client's own record of what it asked: it
proves the bundle answered *that* request, not that the request was fresh today (``--at``
decides the time).
"""

from __future__ import annotations

import re
from pathlib import Path

from transparency_log.common.errors import FormatError
from transparency_log.common.state_files import atomic_write

CHECK_SAVED_NONCE = "bundle.saved_nonce"
NONCE_SUFFIX = ".nonce"
_HEX_LINE = re.compile(rb"([0-9a-f]{64,128})\n?")


def nonce_path(bundle_path: str | Path) -> Path:
    """``FILE.nonce`` beside ``FILE``."""
    return Path(str(bundle_path) + NONCE_SUFFIX)


def save_bundle(path: str | Path, bundle: bytes, nonce: bytes) -> None:
    """Write ``bundle`` to ``path`` and ``nonce`` to ``path.nonce`` (each atomically; the nonce
    first, so a bundle file never sits beside another request's nonce)."""
    atomic_write(nonce_path(path), nonce.hex().encode("ascii") + b"\n")
    atomic_write(Path(path), bundle)


def saved_nonce(bundle_path: str | Path) -> bytes | None:
    """The nonce saved beside ``bundle_path``, or None when there is no ``.nonce`` file.

    FormatError ``bundle.saved_nonce`` (naming the file) when it is not 32..64 bytes of
    lowercase hex on one line."""
    path = nonce_path(bundle_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    match = _HEX_LINE.fullmatch(data[:300])
    if match is None or len(data) > 300 or len(match.group(1)) % 2:
        raise FormatError(CHECK_SAVED_NONCE, "not a saved nonce (32..64 bytes, lowercase hex, "
                          "one line)", field=str(path))
    return bytes.fromhex(match.group(1).decode("ascii"))
