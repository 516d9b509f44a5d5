"""A C2SP tlog-witness (c2sp.org/tlog-witness): ``POST /add-checkpoint``.

For every log it is configured with (origin -> log verifier keys) the witness keeps the
latest checkpoint it cosigned, in SQLite. It cosigns a new checkpoint only after checking,
in this order (tlog-witness §"add-checkpoint"):

1. the request body: ``old <size>`` line (canonical decimal), at most 63 base64 proof lines
   of 32 bytes, an empty line, a signed checkpoint note; else **400**;
2. the origin (the checkpoint's first line) is a configured log; else **404**;
3. a signature by a trusted key of that log verifies, and no signature by a trusted key
   fails (signed-note); else **403**; the checkpoint text is well formed; else **400**;
4. ``old <= size``; else **400**;
5. a checkpoint of size 0 has the empty tree's root (RFC 6962 §2.1); else **422**;
6. ``old`` equals the size of the latest cosigned checkpoint (0 if none); else **409** with
   that size as ``text/x.tlog.size``;
7. if ``old == size``, the roots are identical; else **409**;
8. the proof is empty if ``old`` is 0 (every tree extends the empty tree), else it is an
   RFC 6962 §2.1.2 consistency proof from the stored (old, root) to the new checkpoint;
   else **422** (this is where a log that signs a fork of what the witness cosigned is
   refused);

then persists the new state and answers **200** with its cosignature lines
(c2sp.org/tlog-cosignature, ``cosignature/v1``). Steps 6-8 and the update run in one
``BEGIN IMMEDIATE`` transaction: the read, the check and the write are atomic with respect
to every other request and process sharing the database (the race the spec describes can't
happen). A request whose log signature verifies but whose proof does not is kept in the
``evidence`` table: it proves log misbehaviour.

The witness takes the time and the cosigner as parameters (``now``, ``cosign``): the CLI
wires in the wall clock and the witness key.
"""

from __future__ import annotations

import base64
import binascii
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from transparency_log.common.asgi_serving import BodyError, read_body, text_response
from transparency_log.common.errors import (
    AttestlogError,
    FormatError,
    TrustConfigError,
    VerificationError,
)
from transparency_log.core import merkle
from transparency_log.core.checkpoint import Checkpoint, parse_checkpoint, parse_decimal
from transparency_log.core.note import NoteVerifier, open_note

log = logging.getLogger("transparency_log.witness.service")

MAX_PROOF_LINES = 63
"""tlog-witness: "The client MUST NOT send more than 63 consistency proof lines"."""

MAX_REQUEST_BYTES = 64 << 10
SIZE_CONTENT_TYPE = "text/x.tlog.size"
CHECK = "witness.add_checkpoint"

Cosign = Callable[[bytes, int], bytes]
"""``(checkpoint note text, unix time) -> cosignature line(s)``, each ``— name base64\\n``
(``transparency_log.core.cosignature.cosign`` bound to the witness key)."""


@dataclass(frozen=True)
class AddCheckpointRequest:
    """A parsed add-checkpoint body: old size, consistency proof, the signed checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint_note: bytes

    def to_bytes(self) -> bytes:
        lines = [f"old {self.old_size}\n"] + [
            base64.b64encode(h).decode() + "\n" for h in self.proof
        ]
        return ("".join(lines) + "\n").encode() + self.checkpoint_note


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Parse an add-checkpoint request body strictly; FormatError otherwise."""
    lines_end = body.find(b"\n\n")
    if lines_end < 0:
        raise FormatError(CHECK, "no empty line after the old size and proof", field="body")
    head = body[:lines_end].split(b"\n")
    note = body[lines_end + 2:]
    first = head[0]
    if not first.startswith(b"old "):
        raise FormatError(CHECK, "first line must be 'old <size>'", field="old size line",
                          got=first[:40].decode("utf-8", "replace"))
    try:
        old_text = first[4:].decode("ascii")
    except UnicodeDecodeError as err:
        raise FormatError(CHECK, "old size is not ASCII", field="old size") from err
    old = parse_decimal(old_text, CHECK, "old size")
    proof_lines = head[1:]
    if len(proof_lines) > MAX_PROOF_LINES:
        raise FormatError(CHECK, "too many consistency proof lines", field="proof",
                          got=len(proof_lines), want=f"<= {MAX_PROOF_LINES}")
    proof: list[bytes] = []
    for i, line in enumerate(proof_lines):
        try:
            h = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError) as err:
            raise FormatError(CHECK, "proof line is not base64", field=f"proof[{i}]") from err
        if len(h) != merkle.HASH_SIZE or base64.b64encode(h) != line:
            raise FormatError(CHECK, "proof line must be the canonical base64 of 32 bytes",
                              field=f"proof[{i}]", got=len(h), want=merkle.HASH_SIZE)
        proof.append(h)
    if not note:
        raise FormatError(CHECK, "no checkpoint after the empty line", field="checkpoint")
    return AddCheckpointRequest(old, tuple(proof), note)


@dataclass(frozen=True)
class WitnessResponse:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def error(cls, status: int, message: str) -> WitnessResponse:
        return cls(status, (message.replace("\n", " ") + "\n").encode())


_SCHEMA = """
CREATE TABLE IF NOT EXISTS latest (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    reason TEXT NOT NULL,
    stored_size INTEGER NOT NULL,
    stored_root BLOB NOT NULL,
    stored_note BLOB,
    request BLOB NOT NULL
);
"""


class WitnessState:
    """The witness's per-origin record of the latest cosigned checkpoint (SQLite, WAL,
    ``synchronous=FULL``: a 200 is answered only after the new state is on disk)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        conn = self._conn()
        conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
        return conn

    def latest(self, origin: str) -> tuple[int, bytes, bytes] | None:
        """``(size, root, cosigned note)`` of the latest cosigned checkpoint, or None."""
        row = self._conn().execute("SELECT size, root, note FROM latest WHERE origin = ?",
                                   (origin,)).fetchone()
        return (row[0], bytes(row[1]), bytes(row[2])) if row else None

    def evidence(self, origin: str) -> list[dict[str, object]]:
        rows = self._conn().execute(
            "SELECT reason, stored_size, stored_root, stored_note, request FROM evidence "
            "WHERE origin = ? ORDER BY id", (origin,)).fetchall()
        return [{"reason": r[0], "stored_size": r[1], "stored_root": bytes(r[2]),
                 "stored_note": bytes(r[3]) if r[3] is not None else None,
                 "request": bytes(r[4])} for r in rows]

    def update(self, origin: str,
               decide: Callable[[tuple[int, bytes, bytes] | None],
                                tuple[WitnessResponse, tuple[int, bytes, bytes] | None,
                                      str | None]],
               request: bytes) -> WitnessResponse:
        """Run ``decide(stored) -> (response, new state or None, evidence reason or None)``
        and apply its result inside one immediate transaction (compare-and-swap)."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT size, root, note FROM latest WHERE origin = ?",
                               (origin,)).fetchone()
            stored = (row[0], bytes(row[1]), bytes(row[2])) if row else None
            response, new, reason = decide(stored)
            if new is not None:
                conn.execute("INSERT INTO latest (origin, size, root, note) VALUES (?, ?, ?, ?)"
                             " ON CONFLICT(origin) DO UPDATE SET size = excluded.size,"
                             " root = excluded.root, note = excluded.note",
                             (origin, new[0], new[1], new[2]))
            if reason is not None:
                size, root, note = stored if stored else (0, merkle.EMPTY_ROOT, None)
                conn.execute("INSERT INTO evidence (origin, reason, stored_size, stored_root,"
                             " stored_note, request) VALUES (?, ?, ?, ?, ?, ?)",
                             (origin, reason, size, root, note, request))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return response


class Witness:
    """The add-checkpoint logic, independent of HTTP (see the module docstring)."""

    def __init__(self, state: WitnessState, logs: Mapping[str, Sequence[NoteVerifier]],
                 cosign: Cosign, now: Callable[[], int]) -> None:
        if not logs:
            raise TrustConfigError("witness.config", "no log configured", field="logs")
        self.state = state
        self.logs = {origin: list(vs) for origin, vs in logs.items()}
        self.cosign = cosign
        self.now = now

    def add_checkpoint(self, body: bytes) -> WitnessResponse:
        """Answer one add-checkpoint request (status, body, content type)."""
        try:
            req = parse_add_checkpoint(body)
        except FormatError as err:
            return WitnessResponse.error(400, str(err))
        origin = req.checkpoint_note.split(b"\n", 1)[0].decode("utf-8", "replace")
        verifiers = self.logs.get(origin)
        if verifiers is None:
            return WitnessResponse.error(404, f"unknown log origin {origin!r}")
        try:
            note = open_note(req.checkpoint_note, verifiers)
        except FormatError as err:
            return WitnessResponse.error(400, str(err))
        except VerificationError as err:
            return WitnessResponse.error(403, str(err))
        try:
            cp = parse_checkpoint(note.text)
        except FormatError as err:
            return WitnessResponse.error(400, str(err))
        if cp.origin != origin:  # pragma: no cover - the first line is the origin
            return WitnessResponse.error(400, "origin line mismatch")
        if req.old_size > cp.size:
            return WitnessResponse.error(400, f"old size {req.old_size} is greater than the "
                                              f"checkpoint size {cp.size}")
        if cp.size == 0 and cp.root != merkle.EMPTY_ROOT:
            return WitnessResponse.error(422, "size-0 checkpoint without the empty tree's root")
        return self.state.update(origin, lambda stored: self._decide(req, cp, note.text, stored),
                                 body)

    def _decide(self, req: AddCheckpointRequest, cp: Checkpoint, text: bytes,
                stored: tuple[int, bytes, bytes] | None
                ) -> tuple[WitnessResponse, tuple[int, bytes, bytes] | None, str | None]:
        known_size, known_root = (stored[0], stored[1]) if stored else (0, merkle.EMPTY_ROOT)
        if req.old_size != known_size:
            return (WitnessResponse(409, f"{known_size}\n".encode(), SIZE_CONTENT_TYPE),
                    None, None)
        if req.old_size == cp.size and cp.root != known_root:
            return (WitnessResponse(409, f"{known_size}\n".encode(), SIZE_CONTENT_TYPE),
                    None, "same size, different root")
        try:
            check_consistency(req.old_size, known_root, cp, req.proof)
        except AttestlogError as err:
            return (WitnessResponse.error(422, str(err)), None, f"inconsistent: {err}")
        lines = self.cosign(text, self.now())
        cosigned = req.checkpoint_note + lines
        return WitnessResponse(200, lines), (cp.size, cp.root, cosigned), None


def check_consistency(old_size: int, old_root: bytes, cp: Checkpoint,
                      proof: Sequence[bytes]) -> None:
    """tlog-witness consistency rule: from size 0 the proof MUST be empty; from the same
    size the proof is empty (and the roots equal, checked by the caller); otherwise an
    RFC 6962 consistency proof. Raises FormatError/ProofError."""
    if old_size == 0:
        if proof:
            raise FormatError(CHECK, "proof must be empty when the old size is 0",
                              field="proof", got=len(proof), want=0)
        return
    merkle.verify_consistency(old_size, cp.size, old_root, cp.root, proof)


def create_witness_app(witness: Witness, *, max_body: int = MAX_REQUEST_BYTES,
                       body_timeout: float = 10.0) -> Starlette:
    """The witness's ASGI app: ``POST /add-checkpoint``; every other path is 404."""

    async def add_checkpoint(request: Request) -> Response:
        try:
            body = await read_body(request, max_body, body_timeout)
        except BodyError as err:
            return err.response()
        resp = await run_in_threadpool(witness.add_checkpoint, body)
        # Set the header as is: Starlette would append "; charset" to a text/* media type,
        # and the spec names the 409 type exactly.
        return Response(resp.body, status_code=resp.status,
                        headers={"Content-Type": resp.content_type})

    async def not_found(request: Request, exc: Exception) -> Response:
        return text_response(404, "not found")

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled %s: %s", type(exc).__name__, exc)
        return text_response(500, "internal error")

    return Starlette(routes=[Route("/add-checkpoint", add_checkpoint, methods=["POST"])],
                     exception_handlers={404: not_found, Exception: server_error})
