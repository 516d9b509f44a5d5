"""Issue 15, checkpoint path: the values the parsers build without re-running the
constructors (``frozen_value``) are the values the constructors give, still frozen; and the
tightened paths (bytes-level signature lines, the checked inclusion fold) refuse, at run
time, exactly what the checked paths refuse, with the same check id and field.
"""

from __future__ import annotations

import base64
import dataclasses

import pytest

from transparency_log.common.errors import FormatError, ProofError, SignatureError
from transparency_log.common.parse_cache import clear_parse_caches
from transparency_log.core import merkle
from transparency_log.core.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from transparency_log.core.cosignature import (
    CosignatureSigner,
    CosignatureVerifier,
    cosignature,
    generate_cosigner_keys,
)
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import (
    Note,
    NoteSignature,
    Signer,
    append_signatures,
    generate_keys,
    open_note,
    parse_note,
)

ROOT = bytes(range(32))


@pytest.fixture(autouse=True)
def _cold() -> None:
    clear_parse_caches()
    merkle._verified_inclusion.cache_clear()


def _signed() -> tuple[bytes, Checkpoint, Verifier, CosignatureSigner]:
    skey, vkey = generate_keys("example.com/log", seed=bytes(32))
    wskey, _ = generate_cosigner_keys("w.example", seed=b"\x07" * 32)
    cp = Checkpoint("example.com/log", 12345, ROOT, ("ext one",))
    return sign_checkpoint(cp, Signer(skey)), cp, Verifier(vkey), CosignatureSigner(wskey)


def test_parsed_values_equal_constructed_and_stay_frozen() -> None:
    note, cp, verifier, witness = _signed()
    note = append_signatures(note, [cosignature(cp.to_text(), witness, 1700000000)])
    clear_parse_caches()
    parsed = parse_checkpoint(cp.to_text())
    assert parsed == cp and hash(parsed) == hash(cp) and type(parsed) is Checkpoint
    text, sigs = parse_note(note)
    rebuilt = [NoteSignature(s.name, s.key_id, s.signature) for s in sigs]
    assert sigs == rebuilt and [hash(s) for s in sigs] == [hash(s) for s in rebuilt]
    opened = open_note(note, [verifier])
    assert opened == Note(text, opened.sigs, opened.unverified_sigs)
    for value in (parsed, sigs[0], opened):
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.text = b"x"  # type: ignore[misc,union-attr]


def test_signature_line_base64_refusals_unchanged() -> None:
    note, _, _, _ = _signed()
    text, sigs = parse_note(note)
    good = base64.b64encode(sigs[0].key_id + sigs[0].signature).decode()
    # a non-canonical spelling built now: the last base64 character's unused bits set
    last = good.rstrip("=")[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    bent = good.rstrip("=")[:-1] + alphabet[alphabet.index(last) | 1] + "=" * good.count("=")
    assert base64.b64decode(bent) == base64.b64decode(good) and bent != good
    for b64, message in ((bent, "non-canonical base64"), ("@@@@", "invalid base64"),
                         ("AAAA", "signature too short")):
        bad = text + b"\n" + f"\u2014 example.com/log {b64}\n".encode()
        with pytest.raises(FormatError) as err:
            parse_note(bad)
        assert err.value.check == "note.format"
        assert err.value.field == "signature line 1"
        assert message in err.value.message


def test_inclusion_fold_refuses_like_the_checked_path() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(13)]
    root = merkle.root_from_leaf_hashes(leaves)
    path = [merkle.root_from_leaf_hashes(leaves[a:b]) for a, b in merkle.inclusion_ranges(6, 13)]
    merkle.verify_inclusion(6, 13, leaves[6], path, root)
    tampered = [*path[:-1], bytes(32)]
    with pytest.raises(ProofError) as err:
        merkle.verify_inclusion(6, 13, leaves[6], tampered, root)
    assert err.value.check == "merkle.inclusion"
    with pytest.raises(FormatError) as ferr:
        merkle.verify_inclusion(6, 13, leaves[6], path[:-1], root)
    assert (ferr.value.check, ferr.value.field) == ("merkle.inclusion", "proof")
    with pytest.raises(FormatError) as herr:
        merkle.verify_inclusion(6, 13, leaves[6], [*path[:-1], b"short"], root)
    assert (herr.value.check, herr.value.field) == ("merkle.inclusion", f"proof[{len(path) - 1}]")
    with pytest.raises(FormatError) as rerr:
        merkle.verify_inclusion(6, 13, leaves[6], path, root[:31])
    assert (rerr.value.check, rerr.value.field) == ("merkle.inclusion", "root")


def test_cosignature_verifies_with_the_one_join_message() -> None:
    _, cp, _, witness = _signed()
    line = cosignature(cp.to_text(), witness, 1700000000)
    verifier = CosignatureVerifier(witness.verifier_key())
    assert verifier.verify_timestamp(cp.to_text(), line.signature) == 1700000000
    other = Checkpoint(cp.origin, cp.size + 1, cp.root, cp.extensions).to_text()
    with pytest.raises(SignatureError) as err:
        verifier.verify_timestamp(other, line.signature)
    assert err.value.check == "cosignature.signature"
