"""Signed notes of the foreign signature types we verify but never produce
(transparency_log/core/note_foreign.py, chosen by core/key_types.py): ECDSA (0x02, Rekor v1 and
the Pixel BT log) and RFC 6962 TreeHeadSignature (0x05, c2sp.org/static-ct-api), from the real
vectors of record, and each structural check of the RFC 6962 signature."""

from __future__ import annotations

import base64

import pytest

from tests.support.vectors import load_json_vector
from transparency_log.common.errors import (
    SignatureError,
    TrustConfigError,
    VerificationError,
)
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import (
    NoteSignature,
    Signer,
    generate_keys,
    open_note,
    parse_note,
)

SEED = bytes(range(32))
SIGNER = Signer(generate_keys("example.com/signer", seed=SEED)[0])


def _vkey(name: str, alg: int, material: bytes, key_id: bytes) -> str:
    return f"{name}+{key_id.hex()}+{base64.b64encode(bytes([alg]) + material).decode()}"


ECDSA = load_json_vector("tlog", "notes", "ecdsa_notes_rekor_pixel6.json")
CT = load_json_vector("tlog", "notes", "rfc6962_sth_notes_ct.json")


@pytest.mark.parametrize("case", ECDSA["cases"] + CT["cases"], ids=lambda c: c["desc"][:40])
def test_ecdsa_and_rfc6962_notes(case: dict) -> None:
    verifier = Verifier(case["vkey"])
    msg = case["note"].encode()
    if case["expect"] == "ok":
        assert open_note(msg, [verifier]).sigs
    else:
        with pytest.raises(VerificationError):
            open_note(msg, [verifier])


def test_ecdsa_signature_is_unknown_to_an_ed25519_key_of_the_same_name() -> None:
    """A type-0x02 signature line is just an unknown signature for our Ed25519 keys."""
    case = ECDSA["cases"][0]
    _, vkey = generate_keys("rekor.sigstore.dev", seed=SEED)
    with pytest.raises(VerificationError) as info:
        open_note(case["note"].encode(), [Verifier(vkey)])
    assert info.value.check == "note.unverified"


def test_rfc6962_signature_is_unknown_to_an_ed25519_key_of_the_same_name() -> None:
    case = CT["cases"][0]
    _, vkey = generate_keys("rome.ct.filippo.io/2024h1", seed=SEED)
    with pytest.raises(VerificationError) as info:
        open_note(case["note"].encode(), [Verifier(vkey)])
    assert info.value.check == "note.unverified"


@pytest.mark.parametrize("entry", CT["vkey_derivation"], ids=lambda e: e["log_url"])
def test_rfc6962_vkey_derivation(entry: dict) -> None:
    from transparency_log.core.note_foreign import rfc6962_vkey

    url = entry["log_url"].lower()
    name = url.removeprefix("https://").removeprefix("http://").rstrip("/")
    assert rfc6962_vkey(name, base64.b64decode(entry["spki_b64"])) == entry["want_vkey"]
    assert Verifier(entry["want_vkey"]).name == name


def test_rfc6962_signature_with_extension_lines_refused() -> None:
    """The TreeHeadSignature does not cover extension lines: such a note cannot verify."""
    case = CT["cases"][0]
    text, sigs = parse_note(case["note"].encode())
    msg = text + b"ext\n\n" + sigs[0].line()
    with pytest.raises(SignatureError):
        open_note(msg, [Verifier(case["vkey"])])


# --- foreign signature types: each structural check --------------------------------------------

ROME = CT["cases"][0]


def _rome_with_sig(transform) -> bytes:
    text, (sig,) = parse_note(ROME["note"].encode())
    return text + b"\n" + NoteSignature(sig.name, sig.key_id, transform(sig.signature)).line()


@pytest.mark.parametrize(
    "transform",
    [lambda s: s[:10], lambda s: s[:8] + b"\x05" + s[9:], lambda s: s[:9] + b"\x01" + s[10:],
     lambda s: s[:-1], lambda s: s + b"\0"],
    ids=["truncated header", "hash alg", "sig alg", "short DER", "long DER"],
)
def test_rfc6962_signature_structure(transform) -> None:
    with pytest.raises(SignatureError):
        open_note(_rome_with_sig(transform), [Verifier(ROME["vkey"])])


def test_rfc6962_note_that_is_not_a_checkpoint() -> None:
    text, (sig,) = parse_note(ROME["note"].encode())
    bad = text.replace(b"\n115474666\n", b"\n0115474666\n")
    with pytest.raises(SignatureError):
        open_note(bad + b"\n" + sig.line(), [Verifier(ROME["vkey"])])


def test_foreign_vkeys_on_wrong_key_types() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    ed_spki = SIGNER._private.public_key().public_bytes(Encoding.DER,
                                                        PublicFormat.SubjectPublicKeyInfo)
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    from transparency_log.core.note_foreign import ecdsa_key_id, rfc6962_key_id

    with pytest.raises(TrustConfigError, match="ECDSA"):
        Verifier(_vkey("n", 2, ed_spki, key_id=ecdsa_key_id(ed_spki)))
    assert Verifier(_vkey("n", 2, p384, key_id=ecdsa_key_id(p384))).sig_type == 2
    with pytest.raises(TrustConfigError, match="ECDSA"):
        Verifier(_vkey("n", 5, p384, key_id=rfc6962_key_id("n", p384)))
