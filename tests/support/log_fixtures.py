"""Fixtures for the verifier's log half, built with the real library code (no stored files).

Everything is deterministic: keys come from fixed seeds, the clock is pinned at :data:`AT`.
A :class:`FakeLog` is a MemoryTree of release-log entries that signs checkpoints with the log
key and has them cosigned by chosen witnesses at chosen times; :func:`policy_toml` writes a
policy file trusting that log, those witnesses and the release key, with overrides.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from attest.release.dsse import Signature, entry_statement_digest, parse_entry, sign_statement
from attest.release.keys import ReleaseSigningKey
from attest.release.statement import Revocation
from tests.support.release_samples import sample_release
from transparency_log.core.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.core.cosignature import CosignatureSigner, cosignature, generate_cosigner_keys
from transparency_log.core.merkle import MemoryTree
from transparency_log.core.note import Signer, append_signatures, generate_keys
from transparency_log.core.tlog_proof import TlogProof

ORIGIN = "log.attestlog.example/releases"
LOG_SKEY, LOG_VKEY = generate_keys(ORIGIN, seed=bytes([0x01]) * 32)
LOG_SIGNER = Signer(LOG_SKEY)
WITNESS_KEYS = [generate_cosigner_keys(f"witness{i}.example", seed=bytes([0x10 + i]) * 32)
                for i in range(3)]
WITNESS_SIGNERS = [CosignatureSigner(skey) for skey, _ in WITNESS_KEYS]
WITNESS_VKEYS = [vkey for _, vkey in WITNESS_KEYS]
RELEASE_KEY = ReleaseSigningKey(Ed25519PrivateKey.from_private_bytes(bytes([0x21]) * 32))
OTHER_RELEASE_KEY = ReleaseSigningKey(Ed25519PrivateKey.from_private_bytes(bytes([0x22]) * 32))

AT = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
AT_TS = int(AT.timestamp())
MAX_AGE = 3600


def release_entry(n: int = 0, key: ReleaseSigningKey = RELEASE_KEY) -> bytes:
    """A signed release entry; ``n`` varies the commit so entries differ."""
    release = dataclasses.replace(sample_release(), commit=f"{n + 1:040x}")
    return sign_statement(release, [key]).encode()


def revocation_entry(release: bytes, key: ReleaseSigningKey = RELEASE_KEY,
                     reason: str = "CVE-2026-0001 in the guest kernel") -> bytes:
    return sign_statement(Revocation.of_statement(entry_statement_digest(release), reason),
                          [key]).encode()


def measurement_revocation_entry(measurement: bytes, key: ReleaseSigningKey = RELEASE_KEY,
                                 reason: str = "the build itself is bad") -> bytes:
    """A revocation of a build: every release listing ``measurement`` (48 bytes)."""
    return sign_statement(Revocation.of_measurement(measurement, reason), [key]).encode()


def relogged_variant(entry: bytes, keyid: str = "ee" * 32) -> bytes:
    """The attack of issue 16: the same signed statement in a new envelope, with one extra
    signature under a key id nobody knows (``open_entry`` ignores it). No release key is
    needed to make it, and its entry digest differs from the original's."""
    envelope = parse_entry(entry)
    extra = Signature(keyid, b"\x00" * 64)
    return dataclasses.replace(envelope, signatures=(*envelope.signatures, extra)).encode()


class FakeLog:
    """A release log in memory that signs and cosigns its checkpoints on demand."""

    def __init__(self, entries: list[bytes] | None = None, origin: str = ORIGIN,
                 signer: Signer = LOG_SIGNER) -> None:
        self.origin = origin
        self.signer = signer
        self.entries: list[bytes] = []
        self.tree = MemoryTree()
        for e in entries or []:
            self.append(e)

    def append(self, entry: bytes) -> int:
        self.entries.append(entry)
        return self.tree.append(entry)

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        size = self.tree.size if size is None else size
        return Checkpoint(self.origin, size, self.tree.root(size))

    def note(self, size: int | None = None, witnesses: tuple[int, ...] = (0, 1),
             times: dict[int, int] | None = None, cp: Checkpoint | None = None) -> bytes:
        """The signed checkpoint note, cosigned by ``witnesses`` (default 60 s before AT)."""
        cp = cp if cp is not None else self.checkpoint(size)
        times = times or {}
        note = sign_checkpoint(cp, self.signer)
        sigs = [cosignature(cp.to_text(), WITNESS_SIGNERS[i], times.get(i, AT_TS - 60))
                for i in witnesses]
        return append_signatures(note, sigs) if sigs else note

    def proof(self, index: int, size: int | None = None, **note_args: Any) -> TlogProof:
        size = self.tree.size if size is None else size
        return TlogProof(index, tuple(self.tree.inclusion_proof(index, size)),
                         self.note(size, **note_args))

    def consistency(self, old: int, new: int) -> list[bytes]:
        return self.tree.consistency_proof(old, new)

    def entries_range(self, start: int, end: int) -> list[bytes]:
        return self.entries[start:end]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(value)


def policy_toml(*, top: dict[str, Any] | None = None, log: dict[str, Any] | None = None,
                release: dict[str, Any] | None = None, evidence: dict[str, Any] | None = None,
                extra: str = "") -> str:
    """A policy file for :class:`FakeLog`; a value of None removes that key."""
    tables: dict[str, dict[str, Any]] = {
        "": {"version": 1, **(top or {})},
        "log": {"origin": ORIGIN, "vkey": LOG_VKEY, "witnesses": WITNESS_VKEYS, "quorum": 2,
                "max_checkpoint_age": MAX_AGE, **(log or {})},
        "release": {"keys": [RELEASE_KEY.public.to_text().strip()], **(release or {})},
        "evidence": {"cpu": ["sev-snp", "tdx"], **(evidence or {})},
    }
    out: list[str] = []
    for name, values in tables.items():
        if name:
            out.append(f"\n[{name}]")
        out.extend(f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None)
    return "\n".join(out) + "\n" + extra


class Recording:
    """Wraps an injected callable ``(a, b) -> value`` and records every call's arguments."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.calls: list[tuple[int, int]] = []

    def __call__(self, a: int, b: int) -> Any:
        self.calls.append((a, b))
        return self.fn(a, b)
