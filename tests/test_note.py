"""C2SP signed-note: vectors of record (tests/vectors/tlog/notes) and one test per check."""

from __future__ import annotations

import base64

import pytest

from tests.support.vectors import load_json_vector
from transparency_log.common.errors import (
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    Note,
    NoteSignature,
    Signer,
    append_signatures,
    generate_keys,
    key_id_for,
    open_note,
    parse_note,
    sign_note,
)

XMOD = load_json_vector("tlog", "notes", "xmod_note_tests.json")
PETER = Verifier(XMOD["vkeys"]["PeterNeumann"])
ENOCH = Verifier(XMOD["vkeys"]["EnochRoot"])
PETER_SIGNER = Signer(XMOD["test_only_signing_key"]["skey"])
TEXT = XMOD["text"].encode()
GOOD = XMOD["cases"][0]["note"].encode()  # signed by Peter and Enoch
SEED = bytes(range(32))
SKEY, VKEY = generate_keys("example.com/test", seed=SEED)
SIGNER, VERIFIER = Signer(SKEY), Verifier(VKEY)


def _by_name(names: list[str]) -> list[Verifier]:
    return [Verifier(XMOD["vkeys"][n]) for n in names]


# --- vectors of record -----------------------------------------------------------------------


@pytest.mark.parametrize("case", XMOD["cases"], ids=lambda c: c["desc"][:40])
def test_xmod_open_cases(case: dict) -> None:
    msg = case["note"].encode()
    verifiers = _by_name(case["trusted"])
    expect = case["expect"]
    if expect == "ok":
        note = open_note(msg, verifiers)
        assert note.text == TEXT
        assert [f"{s.name}+{s.key_id.hex()}" for s in note.sigs] == case["verified"]
        assert [f"{s.name}+{s.key_id.hex()}" for s in note.unverified_sigs] == case.get(
            "unverified", [])
        return
    error = {"error:unverified": VerificationError, "error:malformed": FormatError,
             "error:invalid-signature": SignatureError}[expect]
    with pytest.raises(error) as info:
        open_note(msg, verifiers)
    if expect == "error:unverified":
        assert type(info.value) is VerificationError
        assert info.value.check == "note.unverified"


def test_xmod_golden_signature_reproduced() -> None:
    assert PETER_SIGNER.name == "PeterNeumann"
    assert PETER_SIGNER.key_id.hex() == "c74f20a3"
    assert PETER_SIGNER.verifier_key() == XMOD["vkeys"]["PeterNeumann"]
    signed = sign_note(TEXT, [PETER_SIGNER])
    golden_line = GOOD.split(b"\n\n")[1].split(b"\n")[0] + b"\n"
    assert signed == TEXT + b"\n" + golden_line


@pytest.mark.parametrize("vkey", XMOD["bad_vkeys"])
def test_xmod_bad_vkeys_refused(vkey: str) -> None:
    with pytest.raises(TrustConfigError):
        Verifier(vkey)


def test_xmod_mangled_vkey_bytes_refused() -> None:
    """Like x/mod TestNewVerifier: every single-character change of the vkey is refused."""
    good = XMOD["vkeys"]["PeterNeumann"]
    for i in range(len(good)):
        for repl in ("", "X", "+", " "):
            mangled = good[:i] + repl + good[i + 1:]
            if mangled == good:
                continue
            with pytest.raises(TrustConfigError):
                Verifier(mangled)


def test_c2sp_example_verifies() -> None:
    vec = load_json_vector("tlog", "notes", "c2sp_signed_note_example.json")
    note = open_note(vec["note"].encode(), [Verifier(k) for k in vec["vkeys"]])
    assert note.text == vec["expected"]["text"].encode()
    assert [f"{s.name}+{s.key_id.hex()}" for s in note.sigs] == vec["expected"][
        "verified_signers"]


def test_sumdb_multi_signature_unknown_keys_ignored() -> None:
    vec = load_json_vector("tlog", "notes", "sumdb_checkpoint_6476701.json")
    multi = vec["multi_signature_variant"]
    msg = multi["note"].encode()
    only_log = open_note(msg, [Verifier(vec["vkeys"][0])])
    assert [s.name for s in only_log.sigs] == ["sum.golang.org"]
    assert [s.name for s in only_log.unverified_sigs] == ["monkeys", "bananas", "witness"]
    everyone = open_note(msg, [Verifier(k) for k in vec["vkeys"] + multi["extra_vkeys"]])
    assert [s.name for s in everyone.sigs] == ["sum.golang.org", "monkeys", "bananas",
                                               "witness"]
    assert everyone.unverified_sigs == []


# --- keys --------------------------------------------------------------------------------------


def test_generate_keys_round_trip_and_determinism() -> None:
    skey, vkey = generate_keys("example.com/test", seed=SEED)
    assert (skey, vkey) == (SKEY, VKEY)
    assert skey.startswith("PRIVATE+KEY+example.com/test+")
    assert Signer(skey).key_id == Verifier(vkey).key_id
    assert Verifier(vkey).key_id == key_id_for("example.com/test", 1, Signer(skey).public_key)
    s2, v2 = generate_keys("example.com/test")
    assert s2 != skey and Signer(s2).verifier_key() == v2


def test_generate_keys_invalid_name() -> None:
    for bad in ("", "a b", "a+b", "a\tb", "a\u00a0b"):
        with pytest.raises(TrustConfigError):
            generate_keys(bad)
    with pytest.raises(TrustConfigError):
        generate_keys("ok", seed=b"short")


def _vkey(name: str, alg: int, material: bytes, key_id: bytes | None = None) -> str:
    kid = key_id if key_id is not None else key_id_for(name, alg, material)
    return f"{name}+{kid.hex()}+{base64.b64encode(bytes([alg]) + material).decode()}"


PUB = VERIFIER.public_key


@pytest.mark.parametrize(
    ("vkey", "what"),
    [
        ("nameonly", "parts"),
        ("a b+" + VKEY.split("+", 1)[1], "name with space"),
        (VKEY.replace(VERIFIER.key_id.hex(), VERIFIER.key_id.hex().upper()), "uppercase id"),
        (VKEY.replace(VERIFIER.key_id.hex(), VERIFIER.key_id.hex()[:7]), "short id"),
        (VKEY.rstrip("=") + "A", "bad base64"),
        (f"n+{key_id_for('n', 1, b'').hex()}+", "empty material"),
        (_vkey("n", 1, PUB, key_id=b"\0\0\0\0"), "key id mismatch"),
        (_vkey("n", 1, PUB[:31]), "short key"),
        (_vkey("n", 9, PUB), "unknown type"),
        (_vkey("n", 4, PUB), "cosignature type"),
        (_vkey("n", 2, b"not a spki"), "ecdsa not spki"),
    ],
)
def test_bad_vkey(vkey: str, what: str) -> None:
    with pytest.raises(TrustConfigError) as info:
        Verifier(vkey)
    assert info.value.check == "note.key"


def test_non_canonical_vkey_base64() -> None:
    # 33 bytes encode to 44 chars with no padding; flipping the last char's low bits changes
    # nothing decodable in canonical form only if the encoder would differ -> use padding case.
    raw = bytes([1]) + PUB
    b64 = base64.b64encode(raw).decode()
    assert not b64.endswith("=")
    with pytest.raises(TrustConfigError):
        Verifier(f"n+{key_id_for('n', 1, PUB).hex()}+{b64}=")


@pytest.mark.parametrize(
    "skey",
    [
        SKEY.removeprefix("PRIVATE+KEY+"),
        "PRIVATE+KEY+n+00000000+" + base64.b64encode(bytes([2]) + SEED).decode(),
        "PRIVATE+KEY+n+00000000+" + base64.b64encode(bytes([1]) + SEED[:31]).decode(),
        SKEY.replace(SIGNER.key_id.hex(), "00000000"),
    ],
    ids=["no prefix", "wrong type", "short seed", "key id mismatch"],
)
def test_bad_skey(skey: str) -> None:
    with pytest.raises(TrustConfigError):
        Signer(skey)


def test_signer_repr_hides_seed() -> None:
    assert base64.b64encode(SEED).decode()[:10] not in repr(SIGNER)


# --- parse_note: one test per format check ----------------------------------------------------


def _sig_line(b64: str, name: str = "PeterNeumann") -> bytes:
    return f"— {name} {b64}\n".encode()


GOLDEN_B64 = GOOD.split(b"\n\n")[1].split(b"\n")[0].decode().split(" ")[2]


@pytest.mark.parametrize(
    ("msg", "what"),
    [
        ("not bytes", "type"),
        (TEXT + b"\n" + _sig_line(GOLDEN_B64) + b"\xff", "utf-8"),
        (b"\x01" + TEXT[1:] + b"\n" + _sig_line(GOLDEN_B64), "control"),
        (TEXT.replace(b"\n", b"\r\n") + b"\n" + _sig_line(GOLDEN_B64), "carriage return"),
        (TEXT + _sig_line(GOLDEN_B64), "no blank line"),
        (TEXT + b"\n", "no signatures"),
        (TEXT + b"\n" + _sig_line(GOLDEN_B64)[:-1], "final newline"),
        (TEXT + b"\n" + _sig_line(GOLDEN_B64).replace("—".encode(), b"-"), "dash"),
        (TEXT + b"\n" + _sig_line(GOLDEN_B64).replace("— ".encode(), "—".encode()), "space"),
        (TEXT + b"\n" + _sig_line(GOLDEN_B64, name="a+b"), "plus in name"),
        (TEXT + b"\n" + "— PeterNeumann\n".encode(), "no signature"),
        (TEXT + b"\n" + _sig_line(GOLDEN_B64.rstrip("=")), "unpadded"),
        (TEXT + b"\n" + _sig_line(GOLDEN_B64[:-2] + "N="), "non-canonical"),
        (TEXT + b"\n" + _sig_line(GOLDEN_B64 + " "), "trailing space"),
        (TEXT + b"\n" + _sig_line("AAAAAA=="), "too short"),
        (TEXT + b"\n" + _sig_line(GOLDEN_B64) + b"\n", "empty line after"),
    ],
)
def test_malformed_note(msg: bytes, what: str) -> None:
    with pytest.raises(FormatError) as info:
        parse_note(msg)  # type: ignore[arg-type]
    assert info.value.check == "note.format"
    with pytest.raises(FormatError):
        open_note(msg, [PETER])  # type: ignore[arg-type]


def test_signature_count_cap() -> None:
    lines = b"".join(NoteSignature(f"k{i}", b"\0\0\0\0", b"x").line()
                     for i in range(MAX_SIGNATURES))
    parse_note(TEXT + b"\n" + lines)  # exactly the cap: fine
    extra = NoteSignature("k", b"\0\0\0\0", b"x").line()
    with pytest.raises(FormatError, match="too many"):
        parse_note(TEXT + b"\n" + lines + extra)


def test_size_cap() -> None:
    sig = b"\n" + _sig_line(GOLDEN_B64)
    body = b"a" * (MAX_NOTE_SIZE - len(sig) - 1) + b"\n"
    parse_note(body + sig)
    with pytest.raises(FormatError, match="too large"):
        parse_note(b"a" + body + sig)


def test_text_may_contain_blank_lines() -> None:
    text = b"line 1\n\nline 3\n\n"
    note = open_note(sign_note(text, [SIGNER]), [VERIFIER])
    assert note.text == text


# --- open_note: verification rules ------------------------------------------------------------


def test_known_key_bad_signature_rejects() -> None:
    msg = sign_note(TEXT, [SIGNER])
    forged = sign_note(TEXT + b"x\n", [SIGNER]).split(b"\n\n")[-1]
    with pytest.raises(SignatureError) as info:
        open_note(TEXT + b"\n" + forged, [VERIFIER])
    assert info.value.check == "note.signature"
    assert open_note(msg, [VERIFIER]).sigs


def test_second_different_signature_from_known_key_is_verified_too() -> None:
    good = NoteSignature(SIGNER.name, SIGNER.key_id, SIGNER.sign(TEXT))
    bad = NoteSignature(SIGNER.name, SIGNER.key_id, bytes(64))
    with pytest.raises(SignatureError):
        open_note(TEXT + b"\n" + good.line() + bad.line(), [VERIFIER])


def test_wrong_length_signature_from_known_key_is_a_signature_error() -> None:
    sig = NoteSignature(SIGNER.name, SIGNER.key_id, SIGNER.sign(TEXT) + b"\0")
    with pytest.raises(SignatureError):
        open_note(TEXT + b"\n" + sig.line(), [VERIFIER])


def test_no_known_signature() -> None:
    with pytest.raises(VerificationError) as info:
        open_note(sign_note(TEXT, [SIGNER]), [PETER])
    assert type(info.value) is VerificationError
    assert info.value.check == "note.unverified"


def test_same_name_other_key_id_is_unknown() -> None:
    """Signatures sharing a name (not the ID) with a known key are ignored (spec MUST)."""
    other_skey, _ = generate_keys(SIGNER.name, seed=bytes(32))
    msg = sign_note(TEXT, [Signer(other_skey), SIGNER])
    note = open_note(msg, [VERIFIER])
    assert [s.key_id for s in note.sigs] == [SIGNER.key_id]
    assert len(note.unverified_sigs) == 1


def test_same_id_other_name_is_unknown() -> None:
    sig = NoteSignature("someone.else", SIGNER.key_id, SIGNER.sign(TEXT))
    msg = sign_note(TEXT, [SIGNER])
    note = open_note(msg + sig.line(), [VERIFIER])
    assert note.unverified_sigs == [sig]


def test_duplicate_lines_ignored() -> None:
    msg = sign_note(TEXT, [SIGNER, PETER_SIGNER])
    _, lines = parse_note(msg)
    doubled = TEXT + b"\n" + b"".join(s.line() for s in lines * 3)
    note = open_note(doubled, [VERIFIER])
    assert len(note.sigs) == 1 and len(note.unverified_sigs) == 1


def test_ambiguous_verifiers_refused() -> None:
    fake = Verifier(VKEY)
    fake.public_key = b"other"  # same (name, key ID), different key
    with pytest.raises(TrustConfigError):
        open_note(sign_note(TEXT, [SIGNER]), [VERIFIER, fake])
    assert open_note(sign_note(TEXT, [SIGNER]), [VERIFIER, Verifier(VKEY)]).sigs


# --- signing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [b"no newline", b"", b"tab\there\n", b"\xff\n", "str\n"])
def test_sign_refuses_bad_text(text: bytes) -> None:
    with pytest.raises(FormatError):
        sign_note(text, [SIGNER])


def test_sign_needs_a_signer() -> None:
    with pytest.raises(FormatError):
        sign_note(TEXT, [])


def test_sign_open_round_trip_and_append() -> None:
    msg = sign_note(TEXT, [SIGNER])
    note = open_note(msg, [VERIFIER])
    assert note == Note(TEXT, [NoteSignature(SIGNER.name, SIGNER.key_id, SIGNER.sign(TEXT))], [])
    peter_sig = NoteSignature(PETER_SIGNER.name, PETER_SIGNER.key_id, PETER_SIGNER.sign(TEXT))
    both = append_signatures(msg, [peter_sig, peter_sig])
    assert both == sign_note(TEXT, [SIGNER, PETER_SIGNER])
    assert append_signatures(both, [peter_sig]) == both


def test_bad_skey_error_never_echoes_key_material() -> None:
    b64 = SKEY.rsplit("+", 1)[1]
    broken = SKEY[: -len(b64)] + b64[:-1]  # invalid base64 length
    with pytest.raises(TrustConfigError) as info:
        Signer(broken)
    assert b64[:-1] not in str(info.value) and b64[:10] not in str(info.value)


def test_keys_with_surrounding_whitespace() -> None:
    assert Signer(f"  {SKEY}\n").key_id == SIGNER.key_id
    assert Verifier(f"{VKEY}\n").key_id == VERIFIER.key_id
