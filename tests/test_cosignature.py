"""C2SP tlog-cosignature (cosignature/v1): spec example, tessera test keys, one test per check."""

from __future__ import annotations

import base64
import json
import runpy
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.support.vectors import ASSETS, load_json_vector
from transparency_log.common.errors import FormatError, SignatureError, TrustConfigError
from transparency_log.core.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.core.cosignature import (
    COSIGNATURE_SIZE,
    MAX_TIMESTAMP,
    CosignatureSigner,
    CosignatureVerifier,
    cosign,
    cosignature,
    cosigned_message,
    generate_cosigner_keys,
    parse_cosignature,
    verify_cosignature,
)
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import (
    NoteSignature,
    Signer,
    append_signatures,
    generate_keys,
    key_id_for,
    open_note,
    parse_note,
)

WITNESS = load_json_vector("tlog", "witness", "c2sp_tlog_witness_examples.json")
TESSERA = load_json_vector("tlog", "notes", "tessera_test_witness_keys.json")
GENERATED = json.loads((ASSETS / "tlog" / "cosignature_vectors.json").read_text())
BODY = TESSERA["checkpoint_body"].encode()
W_SKEY, W_VKEY = generate_cosigner_keys("witness.example/w1", seed=bytes(range(32)))
W_SIGNER, W_VERIFIER = CosignatureSigner(W_SKEY), CosignatureVerifier(W_VKEY)


# --- vectors of record -----------------------------------------------------------------------


def test_c2sp_spec_example_decodes() -> None:
    ex = WITNESS["cosignature_spec_example"]
    body = ex["checkpoint_body"].encode()
    _, sigs = parse_note(body + b"\n" + ex["cosig_line"].encode() + b"\n")
    (sig,) = sigs
    assert sig.name == "witness.example.com/w1"
    assert sig.key_id.hex() == ex["expected_decode"]["key_id_hex"]
    timestamp, ed_sig = parse_cosignature(sig.signature)
    assert timestamp == ex["expected_decode"]["timestamp"]
    assert len(ed_sig) == ex["expected_decode"]["sig_len"]
    assert cosigned_message(body, timestamp) == ex["signed_message"].encode()


def test_c2sp_witness_response_lines_parse() -> None:
    body = WITNESS["cosignature_spec_example"]["checkpoint_body"].encode()
    _, sigs = parse_note(body + b"\n" + WITNESS["add_checkpoint_response_body"].encode())
    assert [s.name for s in sigs] == ["witness.example/w1", "witness.example/w1",
                                      "witness.example/w2"]
    # The spec's response mixes an Ed25519 cosignature (72 bytes) with longer ones.
    assert len(sigs[0].signature) == COSIGNATURE_SIZE


@pytest.mark.parametrize("wit", ["Wit1", "Wit2", "Wit3"])
def test_tessera_key_ids(wit: str) -> None:
    keys = TESSERA["witnesses"][wit]
    want = {"Wit1": "9b3fb2d5", "Wit2": "38153445", "Wit3": "233cf275"}[wit]
    assert CosignatureVerifier(keys["vkey"]).key_id.hex() == want  # 0x01 vkey, re-derived
    assert CosignatureSigner(keys["test_only_skey"]).key_id.hex() == want
    assert Verifier(keys["vkey"]).key_id.hex() == keys["vkey"].split("+")[1]  # plain note ID
    assert CosignatureVerifier(CosignatureSigner(keys["test_only_skey"]).verifier_key()
                               ).key_id.hex() == want


@pytest.mark.parametrize("case", GENERATED["cases"], ids=lambda c: c["witness"])
def test_generated_vectors_verify_independently(case: dict) -> None:
    """Check the generated lines with raw Ed25519, not with our own message builder."""
    _, (sig,) = parse_note(BODY + b"\n" + case["line"].encode())
    assert sig.key_id.hex() == case["cosignature_key_id"]
    ts = struct.unpack(">Q", sig.signature[:8])[0]
    assert ts == case["timestamp"]
    pub = base64.b64decode(case["vkey"].split("+", 2)[2])[1:]
    Ed25519PublicKey.from_public_bytes(pub).verify(sig.signature[8:],
                                                   case["signed_message"].encode())
    for vkey in (case["vkey"], case["vkey_type04"]):
        assert verify_cosignature(BODY, sig, CosignatureVerifier(vkey)) == case["timestamp"]


def test_generated_vectors_are_reproducible(tmp_path, monkeypatch) -> None:
    script = ASSETS / "tlog" / "gen_cosignature_vectors.py"
    out = tmp_path / "cosignature_vectors.json"
    mod = runpy.run_path(str(script))
    monkeypatch.setitem(mod["main"].__globals__, "OUT", out)
    mod["main"]()
    assert json.loads(out.read_text()) == GENERATED


def test_generated_cosigned_note_opens() -> None:
    msg = GENERATED["cosigned_note"].encode()
    verifiers = [Verifier(GENERATED["log_vkey"])] + [
        CosignatureVerifier(c["vkey"]) for c in GENERATED["cases"]]
    note = open_note(msg, verifiers)
    assert [s.name for s in note.sigs] == ["example.com/log/testdata", "Wit1", "Wit2", "Wit3"]


# --- signing and verifying --------------------------------------------------------------------


def test_round_trip_and_line_format() -> None:
    line = cosign(BODY, W_SIGNER, 1234)
    assert line.startswith("— witness.example/w1 ".encode()) and line.endswith(b"\n")
    sig = cosignature(BODY, W_SIGNER, 1234)
    assert sig.line() == line
    assert len(sig.signature) == COSIGNATURE_SIZE
    assert verify_cosignature(BODY, sig, W_VERIFIER) == 1234
    assert W_VERIFIER.verify(BODY, sig.signature)


def test_key_strings() -> None:
    assert W_SKEY.startswith("PRIVATE+KEY+witness.example/w1+")
    assert base64.b64decode(W_VKEY.split("+", 2)[2])[0] == 0x04
    assert W_SIGNER.verifier_key() == W_VKEY
    assert W_VERIFIER.key_id == key_id_for("witness.example/w1", 4, W_VERIFIER.public_key)
    assert "seed" not in repr(W_SIGNER) and W_SIGNER.name in repr(W_SIGNER)


@pytest.mark.parametrize("ts", [0, 1, 2**32, MAX_TIMESTAMP])
def test_timestamp_range_accepted(ts: int) -> None:
    assert verify_cosignature(BODY, cosignature(BODY, W_SIGNER, ts), W_VERIFIER) == ts


@pytest.mark.parametrize("ts", [-1, MAX_TIMESTAMP + 1, True, 1.5])
def test_timestamp_out_of_range_refused_when_signing(ts) -> None:
    with pytest.raises(FormatError):
        cosignature(BODY, W_SIGNER, ts)


def test_timestamp_over_2_63_refused_when_verifying() -> None:
    sig = cosignature(BODY, W_SIGNER, 5).signature
    forged = struct.pack(">Q", 2**63) + sig[8:]
    with pytest.raises(FormatError) as info:
        W_VERIFIER.verify_timestamp(BODY, forged)
    assert info.value.field == "timestamp"
    assert not W_VERIFIER.verify(BODY, forged)


@pytest.mark.parametrize("cut", [-1, 1])
def test_wrong_length_refused(cut: int) -> None:
    sig = cosignature(BODY, W_SIGNER, 5).signature
    bad = sig[:cut] if cut < 0 else sig + b"\0"
    with pytest.raises(FormatError) as info:
        W_VERIFIER.verify_timestamp(BODY, bad)
    assert info.value.check == "cosignature.format"
    assert not W_VERIFIER.verify(BODY, bad)


def test_changed_timestamp_fails_signature() -> None:
    sig = cosignature(BODY, W_SIGNER, 5).signature
    with pytest.raises(SignatureError) as info:
        W_VERIFIER.verify_timestamp(BODY, struct.pack(">Q", 6) + sig[8:])
    assert info.value.check == "cosignature.signature"


def test_other_checkpoint_fails_signature() -> None:
    sig = cosignature(BODY, W_SIGNER, 5).signature
    with pytest.raises(SignatureError):
        W_VERIFIER.verify_timestamp(BODY.replace(b"\n5\n", b"\n6\n"), sig)


def test_plain_note_signature_is_not_a_cosignature() -> None:
    """The same Ed25519 key signing the bare text (type 0x01) does not make a cosignature."""
    skey01, _ = generate_keys("witness.example/w1", seed=bytes(range(32)))
    plain = Signer(skey01).sign(BODY)
    assert not W_VERIFIER.verify(BODY, struct.pack(">Q", 0) + plain)
    assert Signer(skey01).key_id != W_VERIFIER.key_id  # 0x01 and 0x04 IDs differ


def test_line_of_another_witness_refused() -> None:
    _, other_vkey = generate_cosigner_keys("witness.example/w2", seed=bytes(32))
    sig = cosignature(BODY, W_SIGNER, 5)
    with pytest.raises(FormatError, match="not from this witness"):
        verify_cosignature(BODY, sig, CosignatureVerifier(other_vkey))


def test_cosign_refuses_non_checkpoint_text() -> None:
    with pytest.raises(FormatError):
        cosign(b"not a checkpoint\n", W_SIGNER, 1)


def test_cosignature_with_extension_lines_covers_them() -> None:
    body = Checkpoint("o", 1, bytes(32), ("ext",)).to_text()
    sig = cosignature(body, W_SIGNER, 9)
    assert verify_cosignature(body, sig, W_VERIFIER) == 9
    with pytest.raises(SignatureError):
        verify_cosignature(body.replace(b"ext", b"exu"), sig, W_VERIFIER)


def test_cosigned_checkpoint_opens_with_log_and_witness() -> None:
    log_skey, log_vkey = generate_keys("example.com/log", seed=bytes(32))
    msg = sign_checkpoint(Checkpoint("example.com/log", 1, bytes(32)), Signer(log_skey))
    text, _ = parse_note(msg)
    both = append_signatures(msg, [cosignature(text, W_SIGNER, 42)])
    note = open_note(both, [Verifier(log_vkey), W_VERIFIER])
    assert [s.name for s in note.sigs] == ["example.com/log", "witness.example/w1"]
    good = cosignature(text, W_SIGNER, 42)
    moved = NoteSignature(good.name, good.key_id, struct.pack(">Q", 43) + good.signature[8:])
    tampered = append_signatures(msg, [moved])
    with pytest.raises(SignatureError):
        open_note(tampered, [Verifier(log_vkey), W_VERIFIER])


@pytest.mark.parametrize(
    "make",
    [
        lambda: CosignatureVerifier(W_VKEY.replace("+B", "+A", 1)),  # type/ID mismatch
        lambda: CosignatureVerifier("n+00000000+" + base64.b64encode(b"\x02" + bytes(32)).decode()),
        lambda: CosignatureVerifier("n+" + key_id_for("n", 4, bytes(31)).hex() + "+"
                                    + base64.b64encode(b"\x04" + bytes(31)).decode()),
        lambda: CosignatureVerifier(123),  # type: ignore[arg-type]
        lambda: CosignatureSigner(W_VKEY),
        lambda: CosignatureSigner(W_SKEY.replace(W_SIGNER.key_id.hex(), "00000000")),
        lambda: generate_cosigner_keys("bad name"),
    ],
    ids=["type-id mismatch", "ecdsa type", "short key", "not a string", "vkey as skey",
         "skey id mismatch", "bad name"],
)
def test_bad_cosigner_keys(make) -> None:
    with pytest.raises(TrustConfigError):
        make()


def test_note_signature_dataclass_line() -> None:
    sig = NoteSignature("n", b"\x01\x02\x03\x04", b"\x05")
    assert sig.line() == "— n AQIDBAU=\n".encode()
