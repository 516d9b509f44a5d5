"""The transparency_log parsers as fuzz targets (in :data:`tests.support.fuzz_targets.PARSERS`,
run by tests/test_fuzz_parsers.py): signed notes (c2sp.org/signed-note), checkpoints, cosignatures,
tlog-proofs, witness requests and policies, tile paths, hash tiles and entry bundles
(c2sp.org/tlog-tiles). Seeds come from the real vectors (tests/vectors/tlog) and a FakeLog.
"""

from __future__ import annotations

import base64
import json
from functools import cache
from typing import Any

from tests.support.fuzz_support import Target
from tests.support.log_fixtures import LOG_VKEY, WITNESS_VKEYS, FakeLog, release_entry
from tests.support.vectors import load_json_vector, vector_path
from transparency_log.client.checkpoint_store import StoredCheckpoint
from transparency_log.core.checkpoint import parse_checkpoint
from transparency_log.core.cosignature import parse_cosignature
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import open_note, parse_note
from transparency_log.core.tiles import (
    bundle_leaf_hashes,
    decode_entry_bundle,
    decode_hash_tile,
    encode_entry_bundle,
    parse_tile_path,
)
from transparency_log.core.tlog_proof import parse_tlog_proof
from transparency_log.core.witness_policy import parse_witness_policy
from transparency_log.witness.service import parse_add_checkpoint

__all__ = ["TLOG_PARSERS", "witness_bodies"]


@cache
def notes() -> tuple[bytes, ...]:
    out = []
    for p in sorted(vector_path("tlog", "notes").glob("*.json")):
        value = json.loads(p.read_text())
        # tessera_test_witness_keys.json holds keys; its "note" is prose about them
        if "keys" not in p.name and isinstance(value.get("note"), str):
            out.append(value["note"].encode())
    return (*out, *checkpoint_notes())


@cache
def checkpoint_notes() -> tuple[bytes, ...]:
    log = FakeLog([b"a", b"b", b"c"])
    return (load_json_vector("tlog", "notes", "sumdb_checkpoint_6476701.json")["note"].encode(),
            log.note(), log.note(2, witnesses=(0,)))


@cache
def note_verifiers() -> tuple[Verifier, ...]:
    keys = [LOG_VKEY, *WITNESS_VKEYS[:1]]
    for p in sorted(vector_path("tlog", "notes").glob("*.json")):
        value = json.loads(p.read_text())
        if isinstance(value, dict):
            keys.extend(k for k in value.get("vkeys", []) if isinstance(k, str))
    out = []
    for k in keys:
        try:
            out.append(Verifier(k))
        except Exception:
            continue
    return tuple(out)


def open_with_known_keys(data: bytes) -> Any:
    return open_note(data, note_verifiers())


def checkpoint_text(data: bytes) -> Any:
    return parse_checkpoint(parse_note(data)[0])


@cache
def checkpoint_texts() -> tuple[bytes, ...]:
    return tuple(parse_note(n)[0] for n in checkpoint_notes())


@cache
def cosignatures() -> tuple[bytes, ...]:
    _, sigs = parse_note(FakeLog([b"a"]).note())
    return tuple(s.signature for s in sigs[1:])  # the witnesses' (the first is the log's)


def cosignature_blob(data: bytes) -> Any:
    return parse_cosignature(data)


@cache
def tlog_proofs() -> tuple[bytes, ...]:
    log = FakeLog([b"a", b"b", b"c", b"d", b"e"])
    return (log.proof(3).to_text(), log.proof(0, 1).to_text())


@cache
def witness_bodies() -> tuple[bytes, ...]:
    ex = load_json_vector("tlog", "witness", "c2sp_tlog_witness_examples.json")
    body = ex["add_checkpoint_request_body"]
    log = FakeLog([b"a", b"b", b"c"])
    proof = "".join(base64.b64encode(h).decode() + "\n" for h in log.consistency(1, 3))
    return (body.encode(), f"old 1\n{proof}\n".encode() + log.note())


@cache
def witness_policies() -> tuple[bytes, ...]:
    lines = [f"log {LOG_VKEY}"] + [f"witness w{i} {v}" for i, v in enumerate(WITNESS_VKEYS)]
    return (("\n".join([*lines, "group g 2 w0 w1 w2", "quorum g"]) + "\n").encode(),
            ("\n".join([*lines[:2], "quorum w0"]) + "\n").encode())


def tile_path(data: bytes) -> Any:
    return parse_tile_path(data.decode("utf-8", "surrogateescape"))


@cache
def tile_paths() -> tuple[bytes, ...]:
    value = load_json_vector("tlog", "tiles", "tile_paths.json")
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str) and v.startswith("tile/"):
            found.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(value)
    indices = [c["path"] for c in value["c2sp_tlog_tiles"]["index_encoding"]]
    return (*(f"tile/0/{i}".encode() for i in indices), *(f"tile/entries/{i}.p/7".encode()
                                                          for i in indices))


def hash_tile(data: bytes) -> Any:
    """The first byte chooses the width (1-256), the rest is the tile."""
    return decode_hash_tile(data[1:], data[0] + 1) if data else None


@cache
def hash_tiles() -> tuple[bytes, ...]:
    return (b"\x02" + bytes(range(32)) * 3, b"\xff" + bytes(32 * 256))


@cache
def entry_bundles() -> tuple[bytes, ...]:
    return (encode_entry_bundle([b"a", b"bb", b""[:0] + b"c" * 300]),
            encode_entry_bundle([release_entry(0)]))


def stored_checkpoint(data: bytes) -> Any:
    return StoredCheckpoint.from_note(data)


TLOG_PARSERS: tuple[Target, ...] = (
    Target("note", parse_note, notes),
    Target("note_open", open_with_known_keys, notes),
    Target("checkpoint", checkpoint_text, checkpoint_notes),
    Target("checkpoint_body", parse_checkpoint, checkpoint_texts),
    Target("stored_checkpoint", stored_checkpoint, checkpoint_notes),
    Target("cosignature", cosignature_blob, cosignatures),
    Target("tlog_proof", parse_tlog_proof, tlog_proofs),
    Target("witness_policy", parse_witness_policy, witness_policies),
    Target("witness_add_checkpoint_body", parse_add_checkpoint, witness_bodies),
    Target("tile_path", tile_path, tile_paths),
    Target("hash_tile", hash_tile, hash_tiles),
    Target("entry_bundle", decode_entry_bundle, entry_bundles),
    Target("entry_bundle_leaves", bundle_leaf_hashes, entry_bundles),
)
