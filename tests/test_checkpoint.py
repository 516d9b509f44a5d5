"""C2SP tlog-checkpoint: real sum.golang.org checkpoints, strict parsing, signed open."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.vectors import load_json_vector
from transparency_log.common.errors import (
    AttestlogError,
    FormatError,
    SignatureError,
    VerificationError,
)
from transparency_log.core.checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    open_checkpoint,
    parse_checkpoint,
    parse_decimal,
    sign_checkpoint,
)
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import Signer, generate_keys, sign_note

SUMDB = load_json_vector("tlog", "notes", "sumdb_checkpoint_6476701.json")
SUMDB2 = load_json_vector("tlog", "notes", "sumdb_checkpoint_31700353.json")
SUM_KEY = Verifier(SUMDB["vkeys"][0])
SKEY, VKEY = generate_keys("example.com/log", seed=bytes(range(32)))
SIGNER, VERIFIER = Signer(SKEY), Verifier(VKEY)
ROOT = bytes(range(32))
LINE_CHARS = st.characters(min_codepoint=0x20, exclude_categories=("Cs",))
ROOT_B64 = base64.b64encode(ROOT).decode()
CP = Checkpoint("example.com/log", 12345, ROOT)


def _text(size: str = "12345", root: str = ROOT_B64, origin: str = "example.com/log",
          extra: str = "") -> bytes:
    return f"{origin}\n{size}\n{root}\n{extra}".encode()


# --- vectors of record -----------------------------------------------------------------------


def test_sumdb_6476701() -> None:
    cp, note = open_checkpoint(SUMDB["note"].encode(), SUM_KEY, origin=SUMDB["origin"])
    assert cp.origin == SUMDB["expected"]["origin"]
    assert cp.size == SUMDB["expected"]["size"]
    assert base64.b64encode(cp.root).decode() == SUMDB["expected"]["root_hash_b64"]
    assert cp.extensions == ()
    assert cp.to_text() == note.text


def test_sumdb_6476701_multi_signature() -> None:
    cp, note = open_checkpoint(SUMDB["multi_signature_variant"]["note"].encode(), SUM_KEY,
                               origin=SUMDB["origin"])
    assert cp.size == 6476701
    assert len(note.unverified_sigs) == 3


def test_sumdb_wrong_origin_refused() -> None:
    with pytest.raises(VerificationError) as info:
        open_checkpoint(SUMDB["note"].encode(), SUM_KEY,
                        origin=SUMDB["negative"]["wrong_origin_expected"])
    assert info.value.check == "checkpoint.origin"


def test_sumdb_origin_defaults_to_key_name() -> None:
    """sum.golang.org's key name is not its origin: without origin= it is refused."""
    with pytest.raises(VerificationError, match="origin"):
        open_checkpoint(SUMDB["note"].encode(), SUM_KEY)


def test_sumdb_31700353() -> None:
    cp, _ = open_checkpoint(SUMDB2["note"].encode(), Verifier(SUMDB2["vkeys"][0]),
                            origin="go.sum database tree")
    assert cp.size == SUMDB2["expected"]["size"]
    assert base64.b64encode(cp.root).decode() == SUMDB2["expected"]["root_hash_b64"]


def test_sumdb_31700353_verbatim_without_final_newline_refused() -> None:
    with pytest.raises(FormatError) as info:
        open_checkpoint(SUMDB2["note_verbatim"].encode(), Verifier(SUMDB2["vkeys"][0]),
                        origin="go.sum database tree")
    assert info.value.check == "note.format"


def test_c2sp_checkpoint_example_parses() -> None:
    vec = load_json_vector("tlog", "witness", "c2sp_tlog_witness_examples.json")
    body = vec["cosignature_spec_example"]["checkpoint_body"].encode()
    cp = parse_checkpoint(body)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert cp.to_text() == body


# --- format and round trip --------------------------------------------------------------------


def test_round_trip_with_extensions() -> None:
    cp = Checkpoint("o", 0, ROOT, ("ext one", "— ext two"))
    assert parse_checkpoint(cp.to_text()) == cp
    assert cp.to_text() == f"o\n0\n{ROOT_B64}\next one\n— ext two\n".encode()
    assert parse_checkpoint(_text(extra="x\ny\n")).extensions == ("x", "y")


@given(origin=st.text(LINE_CHARS, min_size=1,
                      max_size=40),
       size=st.integers(0, MAX_TREE_SIZE), root=st.binary(min_size=32, max_size=32),
       exts=st.lists(st.text(LINE_CHARS, min_size=1, max_size=10),
                     max_size=3))
@settings(max_examples=100, deadline=None)
def test_round_trip_property(origin: str, size: int, root: bytes, exts: list[str]) -> None:
    cp = Checkpoint(origin, size, root, tuple(exts))
    assert parse_checkpoint(cp.to_text()) == cp


@pytest.mark.parametrize("size", ["+5", "05", "00", "-1", "5 ", " 5", "5_0", "٥", "１",
                                  "0x5", "5.0", str(MAX_TREE_SIZE + 1), "1" * 30])
def test_non_canonical_size_refused(size: str) -> None:
    with pytest.raises(FormatError) as info:
        parse_checkpoint(_text(size=size))
    assert info.value.check == "checkpoint.format"
    assert info.value.field == "tree size"


def test_size_bounds_accepted() -> None:
    assert parse_checkpoint(_text(size="0")).size == 0
    assert parse_checkpoint(_text(size=str(MAX_TREE_SIZE))).size == MAX_TREE_SIZE
    assert parse_decimal("10", "c", "f") == 10


@pytest.mark.parametrize(
    ("root", "why"),
    [
        (ROOT_B64.rstrip("="), "unpadded"),
        (ROOT_B64[:-2] + "9=", "non-canonical trailing bits"),
        (base64.b64encode(ROOT[:31]).decode(), "31 bytes"),
        (base64.b64encode(ROOT + b"\0").decode(), "33 bytes"),
        (base64.urlsafe_b64encode(b"\xff" * 32).decode(), "url-safe alphabet"),
        (ROOT_B64 + " ", "trailing space"),
    ],
)
def test_bad_root_refused(root: str, why: str) -> None:
    with pytest.raises(FormatError) as info:
        parse_checkpoint(_text(root=root))
    assert info.value.field == "root hash"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (b"example.com/log\n12345\n", "two lines"),
        (_text()[:-1], "no final newline"),
        (_text(origin=""), "empty origin"),
        (_text(extra="\n"), "empty extension line"),
        (_text(extra="a\n\n"), "empty line after extension"),
        (_text(origin="a\tb"), "control character"),
        (_text(origin="a") + b"\xff\n", "not UTF-8"),
        (b"x" * 1_000_001, "too large"),
    ],
)
def test_malformed_checkpoint(text: bytes, why: str) -> None:
    with pytest.raises(FormatError) as info:
        parse_checkpoint(text)
    assert info.value.check == "checkpoint.format"


@pytest.mark.parametrize(
    "kwargs",
    [dict(origin=""), dict(origin="a\nb"), dict(size=-1), dict(size=MAX_TREE_SIZE + 1),
     dict(size=True), dict(root=ROOT[:31]), dict(root="x" * 32), dict(extensions=("",)),
     dict(extensions=("a\nb",)), dict(origin="a\x00"), dict(origin="\ud800")],
)
def test_checkpoint_constructor_checks(kwargs: dict) -> None:
    fields = dict(origin="o", size=1, root=ROOT, extensions=())
    fields.update(kwargs)
    with pytest.raises(FormatError):
        Checkpoint(**fields)


# --- signed checkpoints -----------------------------------------------------------------------


def test_sign_and_open() -> None:
    msg = sign_checkpoint(CP, SIGNER)
    cp, note = open_checkpoint(msg, VERIFIER)
    assert cp == CP and [s.name for s in note.sigs] == ["example.com/log"]
    assert open_checkpoint(msg, VERIFIER, origin="example.com/log")[0] == CP


def test_open_wrong_key() -> None:
    _, other = generate_keys("example.com/log", seed=bytes(32))
    with pytest.raises(VerificationError) as info:
        open_checkpoint(sign_checkpoint(CP, SIGNER), Verifier(other))
    assert info.value.check == "note.unverified"


def test_open_signed_but_malformed_body() -> None:
    msg = sign_note(_text(size="012"), [SIGNER])
    with pytest.raises(FormatError) as info:
        open_checkpoint(msg, VERIFIER)
    assert info.value.check == "checkpoint.format"


def test_open_origin_differs_from_key_name() -> None:
    msg = sign_checkpoint(Checkpoint("example.com/other", 1, ROOT), SIGNER)
    with pytest.raises(VerificationError) as info:
        open_checkpoint(msg, VERIFIER)
    assert info.value.check == "checkpoint.origin"


def test_every_single_bit_flip_fails() -> None:
    """Exhaustive: flipping any one bit of a signed checkpoint never yields a valid one."""
    msg = sign_checkpoint(Checkpoint("example.com/log", 7, ROOT, ("ext",)), SIGNER)
    for i in range(len(msg) * 8):
        flipped = bytearray(msg)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises((FormatError, VerificationError)):
            open_checkpoint(bytes(flipped), VERIFIER)


@given(text=st.text(LINE_CHARS, max_size=60), bit=st.integers(0))
@settings(max_examples=200, deadline=None)
def test_bit_flip_property_on_notes(text: str, bit: int) -> None:
    from transparency_log.core.note import open_note

    msg = sign_note(text.encode() + b"\n", [SIGNER])
    flipped = bytearray(msg)
    bit %= len(msg) * 8
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(AttestlogError) as info:
        open_note(bytes(flipped), [VERIFIER])
    assert isinstance(info.value, FormatError | VerificationError)


def test_signature_error_is_distinct_from_unverified() -> None:
    msg = bytearray(sign_checkpoint(CP, SIGNER))
    msg[3] ^= 1  # in the origin line: signed text changes, signature line intact
    with pytest.raises(SignatureError):
        open_checkpoint(bytes(msg), VERIFIER)


def test_extensions_given_as_list_become_a_tuple() -> None:
    cp = Checkpoint("o", 1, ROOT, ["a", "b"])  # type: ignore[arg-type]
    assert cp.extensions == ("a", "b") and parse_checkpoint(cp.to_text()) == cp


def test_parse_refuses_str() -> None:
    with pytest.raises(FormatError):
        parse_checkpoint(_text().decode())  # type: ignore[arg-type]
