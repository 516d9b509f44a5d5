"""c2sp.org/tlog-proof@v1: format, strict parsing, offline verification (one test per step)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transparency_log.common.errors import (
    FormatError,
    ProofError,
    SignatureError,
    VerificationError,
)
from transparency_log.core.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.core.cosignature import CosignatureSigner, cosignature, generate_cosigner_keys
from transparency_log.core.key_types import Verifier
from transparency_log.core.merkle import MemoryTree
from transparency_log.core.note import Signer, append_signatures, generate_keys
from transparency_log.core.tlog_proof import (
    HEADER,
    MAX_PROOF_HASHES,
    TlogProof,
    parse_tlog_proof,
    verify_tlog_proof,
    verify_tlog_proof_detailed,
)
from transparency_log.core.witness_policy import parse_witness_policy

ENTRIES = [b"entry %d" % i for i in range(13)]
TREE = MemoryTree(ENTRIES)
LOG_SKEY, LOG_VKEY = generate_keys("example.com/log", seed=bytes(32))
LOG_SIGNER, LOG_VERIFIER = Signer(LOG_SKEY), Verifier(LOG_VKEY)
W_SKEY, W_VKEY = generate_cosigner_keys("w.example", seed=bytes([7]) * 32)
CP = Checkpoint("example.com/log", TREE.size, TREE.root())
NOTE = append_signatures(sign_checkpoint(CP, LOG_SIGNER),
                         [cosignature(CP.to_text(), CosignatureSigner(W_SKEY), 1700000000)])
POLICY = parse_witness_policy(f"log {LOG_VKEY}\nwitness W {W_VKEY}\nquorum W\n".encode())


def _proof(index: int = 5, extra: bytes | None = None, note: bytes = NOTE) -> TlogProof:
    return TlogProof(index, tuple(TREE.inclusion_proof(index)), note, extra)


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


# --- format ----------------------------------------------------------------------------------


def test_text_layout() -> None:
    proof = _proof(5, extra=b"context")
    text = proof.to_text()
    lines = text.split(b"\n\n", 1)[0].decode().split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1] == "extra " + _b64(b"context")
    assert lines[2] == "index 5"
    assert lines[3:] == [_b64(h) for h in proof.hashes]
    assert text.endswith(NOTE)
    assert parse_tlog_proof(text) == proof


def test_round_trip_without_extra_and_empty_path() -> None:
    one = MemoryTree([b"only"])
    cp = Checkpoint("example.com/log", 1, one.root())
    proof = TlogProof(0, (), sign_checkpoint(cp, LOG_SIGNER))
    assert proof.to_text().startswith(f"{HEADER}\nindex 0\n\n".encode())
    assert parse_tlog_proof(proof.to_text()) == proof
    assert verify_tlog_proof(b"only", proof, LOG_VERIFIER) == cp


@given(index=st.integers(0, 12), extra=st.none() | st.binary(min_size=1, max_size=40))
@settings(max_examples=30, deadline=None)
def test_round_trip_property(index: int, extra: bytes | None) -> None:
    proof = _proof(index, extra)
    assert parse_tlog_proof(proof.to_text()) == proof


def _with_head(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n\n").encode() + NOTE


H = [_b64(h) for h in TREE.inclusion_proof(5)]
MALFORMED = {
    "not bytes": "text",
    "no blank line": _with_head(HEADER, "index 5", *H).replace(b"\n\n", b"\n", 1),
    "wrong header": _with_head("c2sp.org/tlog-proof@v2", "index 5", *H),
    "header case": _with_head(HEADER.upper(), "index 5", *H),
    "missing index": _with_head(HEADER, *H),
    "index leading zero": _with_head(HEADER, "index 05", *H),
    "index plus": _with_head(HEADER, "index +5", *H),
    "index two spaces": _with_head(HEADER, "index  5", *H),
    "index negative": _with_head(HEADER, "index -5", *H),
    "index too large": _with_head(HEADER, f"index {2**63}", *H),
    "extra after index": _with_head(HEADER, "index 5", "extra AA==", *H),
    "extra empty": _with_head(HEADER, "extra ", "index 5", *H),
    "extra non-canonical": _with_head(HEADER, "extra AB==", "index 5", *H),
    "hash unpadded": _with_head(HEADER, "index 5", H[0].rstrip("="), *H[1:]),
    "hash short": _with_head(HEADER, "index 5", _b64(bytes(31)), *H[1:]),
    "hash long": _with_head(HEADER, "index 5", _b64(bytes(33)), *H[1:]),
    "hash trailing space": _with_head(HEADER, "index 5", H[0] + " ", *H[1:]),
    "non-ascii head": _with_head(HEADER, "index ５", *H),
    "too many hashes": _with_head(HEADER, "index 5", *[H[0]] * (MAX_PROOF_HASHES + 1)),
    "too large": _with_head(HEADER, "index 5") + b"x" * 1_010_000,
    "bad checkpoint note": _with_head(HEADER, "index 5", *H).replace("— ".encode(), b"- "),
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed(data: bytes) -> None:
    with pytest.raises(FormatError):
        parse_tlog_proof(data)  # type: ignore[arg-type]


def test_max_hashes_accepted() -> None:
    assert len(parse_tlog_proof(_with_head(HEADER, "index 5", *[H[0]] * MAX_PROOF_HASHES)
                                ).hashes) == MAX_PROOF_HASHES


@pytest.mark.parametrize(
    "kwargs",
    [dict(index=-1), dict(index=True), dict(hashes=(bytes(31),)),
     dict(hashes=(bytes(32),) * 64), dict(extra=b""), dict(checkpoint_note=b"junk")],
)
def test_constructor_checks(kwargs: dict) -> None:
    fields = dict(index=0, hashes=(), checkpoint_note=NOTE, extra=None)
    fields.update(kwargs)
    with pytest.raises(FormatError):
        TlogProof(**fields)


# --- verification ---------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(13))
def test_every_entry_verifies_with_policy(index: int) -> None:
    proof = parse_tlog_proof(_proof(index).to_text())
    cp, quorum = verify_tlog_proof_detailed(ENTRIES[index], proof, LOG_VERIFIER, POLICY)
    assert cp == CP and quorum is not None and quorum.cosigned == {"W": 1700000000}
    assert verify_tlog_proof(ENTRIES[index], proof, LOG_VERIFIER) == CP


def test_step1_log_signature() -> None:
    _, other = generate_keys("example.com/log", seed=bytes([1]) * 32)
    with pytest.raises(VerificationError) as info:
        verify_tlog_proof(ENTRIES[5], _proof(), Verifier(other), POLICY)
    assert info.value.check == "note.unverified"


def test_step1_forged_checkpoint() -> None:
    forged = NOTE.replace(b"\n13\n", b"\n14\n")
    with pytest.raises(SignatureError):
        verify_tlog_proof(ENTRIES[5], _proof(note=forged), LOG_VERIFIER)


def test_step1_origin() -> None:
    with pytest.raises(VerificationError) as info:
        verify_tlog_proof(ENTRIES[5], _proof(), LOG_VERIFIER, origin="example.com/other")
    assert info.value.check == "checkpoint.origin"


def test_step2_quorum() -> None:
    bare = sign_checkpoint(CP, LOG_SIGNER)
    proof = _proof(note=bare)
    assert verify_tlog_proof(ENTRIES[5], proof, LOG_VERIFIER) == CP  # no policy: fine
    with pytest.raises(VerificationError) as info:
        verify_tlog_proof(ENTRIES[5], proof, LOG_VERIFIER, POLICY)
    assert info.value.check == "log.witness.quorum"


def test_step3_wrong_entry() -> None:
    with pytest.raises(ProofError) as info:
        verify_tlog_proof(ENTRIES[6], _proof(5), LOG_VERIFIER, POLICY)
    assert info.value.check == "log.inclusion"
    assert info.value.expected_root == CP.root


def test_step3_wrong_index() -> None:
    proof = TlogProof(4, _proof(5).hashes, NOTE)
    with pytest.raises(ProofError):
        verify_tlog_proof(ENTRIES[5], proof, LOG_VERIFIER)


def test_step3_index_beyond_tree() -> None:
    proof = TlogProof(13, _proof(12).hashes, NOTE)
    with pytest.raises(FormatError) as info:
        verify_tlog_proof(ENTRIES[12], proof, LOG_VERIFIER)
    assert info.value.check == "log.inclusion"


def test_step3_wrong_path_length() -> None:
    proof = TlogProof(5, _proof(5).hashes[:-1], NOTE)
    with pytest.raises(FormatError) as info:
        verify_tlog_proof(ENTRIES[5], proof, LOG_VERIFIER)
    assert info.value.field == "proof"


def test_every_single_bit_flip_of_the_proof_file_fails() -> None:
    """Exhaustive over the proof file: any one flipped bit never verifies (extra excluded)."""
    text = _proof(5).to_text()
    for i in range(len(text) * 8):
        flipped = bytearray(text)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises((FormatError, VerificationError)):
            verify_tlog_proof(ENTRIES[5], parse_tlog_proof(bytes(flipped)), LOG_VERIFIER,
                              POLICY)


def test_extra_is_not_authenticated() -> None:
    """Documented by the spec: extra data is not covered by anything."""
    proof = _proof(5, extra=b"one")
    other = TlogProof(proof.index, proof.hashes, proof.checkpoint_note, b"two")
    assert verify_tlog_proof(ENTRIES[5], other, LOG_VERIFIER, POLICY) == CP


def test_policy_without_logs_uses_the_callers_key() -> None:
    policy = parse_witness_policy(f"witness W {W_VKEY}\nquorum W\n".encode())
    assert verify_tlog_proof(ENTRIES[5], _proof(), LOG_VERIFIER, policy) == CP


def test_policy_listing_only_another_log_refuses() -> None:
    _, other = generate_keys("example.com/log", seed=bytes([3]) * 32)
    policy = parse_witness_policy(f"log {other}\nwitness W {W_VKEY}\nquorum W\n".encode())
    with pytest.raises(VerificationError) as info:
        verify_tlog_proof(ENTRIES[5], _proof(), LOG_VERIFIER, policy)
    assert info.value.check == "note.unverified"


def test_policy_listing_the_log_among_others() -> None:
    _, other = generate_keys("example.com/other", seed=bytes([3]) * 32)
    policy = parse_witness_policy(
        f"log {other}\nlog {LOG_VKEY}\nwitness W {W_VKEY}\nquorum W\n".encode())
    assert verify_tlog_proof(ENTRIES[5], _proof(), LOG_VERIFIER, policy) == CP
