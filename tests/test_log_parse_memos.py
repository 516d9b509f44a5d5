"""Issue 15, log side: the memos of the checkpoint path never vouch for other keys or bytes,
and RFC 8785 canonical JSON has no per-character Python loop.

- a note parsed once (and cached) is still refused under another log key or a witness policy
  whose quorum it does not meet (the signatures are checked against the keys given each call);
- the Ed25519 key memo (keyed by the key bytes) gives other bytes another key, refuses a
  signature of one key under the other, never remembers an invalid key, and is emptied by
  ``clear_parse_caches`` (so cold bench rows stay cold);
- encoding and refusing a 1 MB string full of escapes executes a bounded number of Python
  lines (counted with a line tracer), so its cost is linear and spent in C.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from attest.release import canonical_json
from tests.support.log_fixtures import LOG_SIGNER, WITNESS_VKEYS, FakeLog, release_entry
from transparency_log.common.errors import FormatError, TrustConfigError, VerificationError
from transparency_log.common.parse_cache import clear_parse_caches
from transparency_log.core.cosignature import generate_cosigner_keys
from transparency_log.core.key_types import Verifier, ed25519_public_key, ed25519_verify
from transparency_log.core.note import _parse_note, generate_keys
from transparency_log.core.tlog_proof import verify_tlog_proof
from transparency_log.core.witness_policy import parse_witness_policy

ENTRIES = [release_entry(i) for i in range(4)]


@pytest.fixture(autouse=True)
def _cold() -> None:
    clear_parse_caches()


def _policy(witness_vkeys: list[str]) -> Any:
    return parse_witness_policy(
        (f"log {LOG_SIGNER.verifier_key()}\n"
         + "".join(f"witness W{i} {v}\n" for i, v in enumerate(witness_vkeys))
         + f"group all-of all {' '.join(f'W{i}' for i in range(len(witness_vkeys)))}\n"
         + "quorum all-of\n").encode())


def test_cached_note_refused_under_another_log_key() -> None:
    log = FakeLog(ENTRIES)
    proof = log.proof(2)
    verify_tlog_proof(ENTRIES[2], proof, Verifier(LOG_SIGNER.verifier_key()))
    hits = _parse_note.cache_info().hits  # type: ignore[attr-defined]
    # same name, other key material: another key ID, so no signature of a known key
    _, same_name = generate_keys(LOG_SIGNER.name, seed=bytes([9]) * 32)
    for vkey in (same_name, generate_keys("other.example/log", seed=bytes([8]) * 32)[1]):
        with pytest.raises(VerificationError) as err:
            verify_tlog_proof(ENTRIES[2], proof, Verifier(vkey))
        assert err.value.check == "note.unverified"
    assert _parse_note.cache_info().hits > hits  # type: ignore[attr-defined]  # it was cached


def test_cached_note_refused_under_another_witness_set() -> None:
    """Cosigned by witnesses 0 and 1: accepted under them (now cached), refused under a
    policy that also needs a witness that did not cosign, and under one whose witness has
    the name of witness 1 but another key."""
    log = FakeLog(ENTRIES)
    proof = log.proof(1)
    verifier = Verifier(LOG_SIGNER.verifier_key())
    verify_tlog_proof(ENTRIES[1], proof, verifier, _policy(list(WITNESS_VKEYS[:2])))
    _, absent = generate_cosigner_keys("absent.example", seed=bytes([7]) * 32)
    with pytest.raises(VerificationError) as err:
        verify_tlog_proof(ENTRIES[1], proof, verifier,
                          _policy([*WITNESS_VKEYS[:2], absent]))
    assert err.value.check == "log.witness.quorum"
    name = WITNESS_VKEYS[1].split("+", 1)[0]
    _, impostor = generate_cosigner_keys(name, seed=bytes([6]) * 32)
    with pytest.raises(VerificationError) as err:
        verify_tlog_proof(ENTRIES[1], proof, verifier, _policy([WITNESS_VKEYS[0], impostor]))
    assert err.value.check == "log.witness.quorum"
    verify_tlog_proof(ENTRIES[1], proof, verifier, _policy(list(WITNESS_VKEYS[:2])))


def test_ed25519_key_memo_is_keyed_by_the_bytes() -> None:
    a, b = (Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32) for i in (1, 2))
    raw_a, raw_b = (k.public_key().public_bytes_raw() for k in (a, b))
    key_a = ed25519_public_key(raw_a, "k")
    assert ed25519_public_key(raw_a, "k") is key_a  # loaded once
    key_b = ed25519_public_key(raw_b, "k")
    sig = a.sign(b"msg")
    assert ed25519_verify(key_a, b"msg", sig)
    assert not ed25519_verify(key_b, b"msg", sig)  # other bytes, other key
    flipped = bytes([raw_a[0] ^ 1]) + raw_a[1:]
    try:
        other = ed25519_public_key(flipped, "k")
    except TrustConfigError:
        pass  # not a curve point: refused (and tried again each time, below)
    else:
        assert not ed25519_verify(other, b"msg", sig)
    for _ in range(2):
        with pytest.raises(TrustConfigError) as err:
            ed25519_public_key(raw_a[:31], "k")
        assert err.value.check == "note.key"
    clear_parse_caches()
    assert ed25519_public_key(raw_a, "k") is not key_a  # cold means cold


def _python_lines(fn: Callable[[], object]) -> int:
    """How many Python lines ``fn`` executes (C code executes none)."""
    count = 0

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn()
    finally:
        sys.settrace(old)
    return count


MEGABYTE_OF_ESCAPES = ('"\\\n\t\x01\x1f é\u2028' * (1 << 17))[:1 << 20]


def test_canonical_json_string_without_a_loop_per_character() -> None:
    value = {"s": MEGABYTE_OF_ESCAPES}
    encoded = canonical_json.encode(value)
    assert len(encoded) > 1 << 20
    assert _python_lines(lambda: canonical_json.encode(value)) < 200
    assert _python_lines(lambda: canonical_json.decode(encoded)) < 400
    assert canonical_json.decode(encoded) == value


def test_canonical_json_refusal_of_a_megabyte_without_a_loop_per_byte() -> None:
    """A non-canonical spelling deep inside (``\\u0041`` for ``A``) is refused at its offset,
    found by bisection in C."""
    encoded = canonical_json.encode({"s": MEGABYTE_OF_ESCAPES + "Atail"})
    at = encoded.index(b"Atail")
    bad = encoded[:at] + b"\\u0041" + encoded[at + 1:]

    def refuse() -> None:
        with pytest.raises(FormatError) as err:
            canonical_json.decode(bad)
        assert err.value.check == "release.json.canonical"
        assert err.value.got == f"first difference at byte {at}"

    refuse()
    assert _python_lines(refuse) < 800


def test_back_to_back_node_hashing_matches_rfc6962_with_hashlib() -> None:
    """fold_bytes / hash_level_bytes (CPython's SHA-256 where present) against RFC 9162
    §2.1.1 written with hashlib, for every power-of-two width of a tile and odd levels."""
    import hashlib

    from transparency_log.core import merkle
    from transparency_log.core.tile_reader import expand_tile

    leaves = [hashlib.sha256(b"\x00" + bytes([i])).digest() for i in range(256)]
    for width in (1, 2, 4, 8, 16, 32, 64, 128, 256):
        level = leaves[:width]
        while len(level) > 1:
            level = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
                     for i in range(0, len(level), 2)]
        assert merkle.fold_bytes(b"".join(leaves[:width])) == level[0]
    for width in (3, 5, 255):
        want = [hashlib.sha256(b"\x01" + leaves[i] + leaves[i + 1]).digest()
                for i in range(0, width - 1, 2)]
        assert merkle.hash_level_bytes(b"".join(leaves[:width])) == b"".join(want)
        assert expand_tile(b"".join(leaves[:width])) == expand_tile(leaves[:width])


def test_level_hashing_in_c_matches_rfc6962_at_every_width() -> None:
    """hash_level_bytes cuts node inputs with struct from 8 pairs on, in chunks of 128
    pairs: every width around those edges (and a trailing half hash, which is dropped) gives
    the pairs of RFC 9162 §2.1.1 written with hashlib, in order."""
    import hashlib

    from transparency_log.core import merkle

    hashes = [hashlib.sha256(i.to_bytes(2, "big")).digest() for i in range(600)]
    for width in (14, 15, 16, 17, 255, 256, 257, 258, 511, 513, 600):
        want = b"".join(hashlib.sha256(b"\x01" + hashes[i] + hashes[i + 1]).digest()
                        for i in range(0, width - 1, 2))
        level = b"".join(hashes[:width])
        assert merkle.hash_level_bytes(level) == want
        assert merkle.hash_level_bytes(level + b"\x07" * 5) == want
