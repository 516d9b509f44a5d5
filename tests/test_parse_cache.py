"""Parse-once caches (issue 15) never turn a refusal into an acceptance.

For each cache (signed notes, checkpoint texts, release entries, statements): the good input
is verified first, so its parse is cached (the hit counter shows it is used); then another
input built at run time (one byte changed, a forged signature, other keys) must be refused
with the same check id as with a cold cache, and refusals are never cached.
"""

from __future__ import annotations

import base64
import json

import pytest

from attest.release.dsse import open_entry, parse_entry
from attest.release.statement import parse_statement
from tests.support.log_fixtures import (
    AT,
    LOG_SIGNER,
    OTHER_RELEASE_KEY,
    RELEASE_KEY,
    WITNESS_VKEYS,
    FakeLog,
    policy_toml,
    release_entry,
)
from transparency_log.common.errors import (
    FormatError,
    SignatureError,
    VerificationError,
)
from transparency_log.common.parse_cache import clear_parse_caches, parse_once
from transparency_log.core.checkpoint import Checkpoint, parse_checkpoint
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import _parse_note, parse_note
from transparency_log.core.tlog_proof import TlogProof, verify_tlog_proof
from transparency_log.core.witness_policy import WitnessPolicy, parse_witness_policy
from verifier.log_checks import LogEvidence, verify_log
from verifier.policy import parse_policy
from verifier.transcript import Transcript

ENTRIES = [release_entry(i) for i in range(4)]
POLICY = parse_policy(policy_toml(top={"waive": ["log.consistency"]},
                                  log={"revocations": "stapled"}).encode())


def _flip_note_byte(note: bytes, marker: bytes) -> bytes:
    """The note with the first byte after ``marker`` changed (a valid base64 character)."""
    at = note.index(marker) + len(marker)
    swapped = b"B" if note[at:at + 1] != b"B" else b"C"
    return note[:at] + swapped + note[at + 1:]


def _witness_policy() -> WitnessPolicy:
    return parse_witness_policy(
        (f"log {LOG_SIGNER.verifier_key()}\n"
         + "".join(f"witness W{i} {v}\n" for i, v in enumerate(WITNESS_VKEYS[:2]))
         + "group both all W0 W1\nquorum both\n").encode())


@pytest.fixture(autouse=True)
def _cold() -> None:
    clear_parse_caches()


def test_note_cache_hit_then_changed_checkpoint_refused() -> None:
    """A cached checkpoint note does not vouch for another one: a changed root (another
    checkpoint, same signature lines) fails the log signature; a flipped cosignature fails
    the witness check; the good proof is still accepted in between."""
    log = FakeLog(ENTRIES)
    good = log.proof(1)
    verifier = Verifier(LOG_SIGNER.verifier_key())
    wpolicy = _witness_policy()
    verify_tlog_proof(ENTRIES[1], good, verifier, wpolicy)
    hits = _parse_note.cache_info().hits  # type: ignore[attr-defined]
    verify_tlog_proof(ENTRIES[1], good, verifier, wpolicy)
    assert _parse_note.cache_info().hits > hits  # type: ignore[attr-defined]

    root_line = base64.b64encode(log.checkpoint().root)
    other_root = _flip_note_byte(good.checkpoint_note, b"\n%d\n" % len(ENTRIES))
    assert root_line not in other_root
    with pytest.raises(SignatureError) as err:
        verify_tlog_proof(ENTRIES[1], TlogProof(1, good.hashes, other_root), verifier,
                          wpolicy)
    assert err.value.check == "note.signature"

    lines = good.checkpoint_note.split(b"\n")
    cosig_line = next(i for i, line in enumerate(lines) if b"witness1.example" in line)
    name, b64 = lines[cosig_line].rsplit(b" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    lines[cosig_line] = name + b" " + base64.b64encode(bytes(raw))
    forged = b"\n".join(lines)
    with pytest.raises(SignatureError) as err:
        verify_tlog_proof(ENTRIES[1], TlogProof(1, good.hashes, forged), verifier,
                          wpolicy)
    assert err.value.check == "log.witness.signature"
    # the cached good note is still good, and the forged one is still refused
    verify_tlog_proof(ENTRIES[1], good, verifier, wpolicy)
    with pytest.raises(SignatureError):
        verify_tlog_proof(ENTRIES[1], TlogProof(1, good.hashes, forged), verifier,
                          wpolicy)


def test_note_refusal_not_cached_and_result_not_shared() -> None:
    log = FakeLog(ENTRIES)
    bad = log.note().replace(b"\n\n", b"\n \n")  # no blank line before the signatures
    for _ in range(2):
        with pytest.raises(FormatError) as err:
            parse_note(bad)
        assert err.value.check == "note.format"
    _text, sigs = parse_note(log.note())
    sigs.clear()  # a caller's list is its own
    assert len(parse_note(log.note())[1]) == 3


def test_checkpoint_cache_other_text_parsed_afresh() -> None:
    log = FakeLog(ENTRIES)
    cp = log.checkpoint()
    assert parse_checkpoint(cp.to_text()) == cp
    assert parse_checkpoint(cp.to_text()) == cp
    other = Checkpoint(cp.origin, cp.size - 1, log.checkpoint(cp.size - 1).root)
    assert parse_checkpoint(other.to_text()) == other
    bad = cp.to_text().replace(b"\n4\n", b"\n04\n")
    for _ in range(2):
        with pytest.raises(FormatError) as err:
            parse_checkpoint(bad)
        assert err.value.check == "checkpoint.format"


def _forge_signature(entry: bytes) -> bytes:
    envelope = json.loads(entry)
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 1
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


def test_entry_cache_never_skips_the_signature() -> None:
    """The entry's parse is cached; its signature is checked on every open: other keys
    refuse the same (cached) bytes, a forged signature (other bytes) is refused."""
    entry = ENTRIES[2]
    keys = [RELEASE_KEY.public]
    open_entry(entry, keys)
    hits = parse_entry.cache_info().hits  # type: ignore[attr-defined]
    open_entry(entry, keys)
    assert parse_entry.cache_info().hits > hits  # type: ignore[attr-defined]
    with pytest.raises(VerificationError) as err:
        open_entry(entry, [OTHER_RELEASE_KEY.public])
    assert err.value.check == "release.dsse.signer"
    forged = _forge_signature(entry)
    for _ in range(2):
        with pytest.raises(SignatureError) as err:
            open_entry(forged, keys)
        assert err.value.check == "release.dsse.signature"
    assert open_entry(entry, keys).entry == entry


def test_statement_cache_other_payload_parsed_afresh() -> None:
    payload = parse_entry(ENTRIES[0]).payload
    first = parse_statement(payload)
    assert parse_statement(payload) is first
    other = parse_entry(ENTRIES[1]).payload
    assert parse_statement(other) != first
    bad = payload.replace(b'"_type"', b'"_tipe"')
    for _ in range(2):
        with pytest.raises(FormatError):
            parse_statement(bad)


def test_verify_log_after_cached_entry_refuses_forged_one() -> None:
    """The verifier's log checks, warm: the same transcript as cold for the good entry, and
    the forged entry refused at release.signature with only that step failing."""
    log = FakeLog(ENTRIES)
    ev = LogEvidence.from_tlog_proof(ENTRIES[1], log.proof(1))
    cold, warm = Transcript(), Transcript()
    verify_log(ev, POLICY, AT, transcript=cold)
    verify_log(ev, POLICY, AT, transcript=warm)
    assert [s.to_dict() for s in warm.steps] == [s.to_dict() for s in cold.steps]
    forged = LogEvidence.from_tlog_proof(_forge_signature(ENTRIES[1]), log.proof(1))
    t = Transcript()
    with pytest.raises(SignatureError) as err:
        verify_log(forged, POLICY, AT, transcript=t)
    assert err.value.check == "release.signature"
    assert [s.check for s in t.steps if s.result == "fail"] == ["release.signature"]


def test_parse_once_bounds() -> None:
    calls: list[bytes] = []

    @parse_once(max_entries=2, max_input=4)
    def parse(data: bytes) -> int:
        calls.append(data)
        return len(data)

    parse(b"ab")
    parse(b"ab")
    parse(bytearray(b"ab"))  # not bytes: never cached
    parse(b"abcde")  # too large: never cached
    parse(b"abcde")
    parse(b"x")
    parse(b"y")
    parse(b"ab")  # evicted by the two above
    assert calls == [b"ab", bytearray(b"ab"), b"abcde", b"abcde", b"x", b"y", b"ab"]
