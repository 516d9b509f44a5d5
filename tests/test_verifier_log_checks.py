"""The log half of the verifier (verifier/log_checks.py), steps 1-5 and the whole run: each step,
one test where it fails (steps 6-8: tests/test_verifier_log_view_checks.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.support.log_fixtures import (
    AT,
    AT_TS,
    ORIGIN,
    OTHER_RELEASE_KEY,
    RELEASE_KEY,
    FakeLog,
    policy_toml,
    release_entry,
    revocation_entry,
)
from tests.support.log_world import (
    ENTRIES,
    ENTRY,
    ENTRY_DIGEST,
    POLICY,
    World,
    failed_steps,
    policy,
)
from tests.support.vectors import vector_path
from transparency_log.common.errors import (
    FormatError,
    PolicyError,
    ProofError,
    SignatureError,
    VerificationError,
)
from transparency_log.core.note import Signer, generate_keys
from verifier.log_checks import (
    LOG_CHECKS,
    LogEvidence,
    check_inclusion,
    check_log_signature,
    check_release_signature,
    check_release_sigstore,
    check_witness_quorum,
)
from verifier.policy import Policy, parse_policy
from verifier.transcript import Transcript


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


# --- all right ---------------------------------------------------------------------------------


def test_accepted_when_all_is_right(world: World) -> None:
    t = Transcript()
    result = world.verify(transcript=t)
    assert [s.check for s in t.steps] == [c for c in LOG_CHECKS if c != "release.sigstore"]
    assert {s.result for s in t.steps} == {"pass"}
    assert t.verdict == "accepted"
    assert result.checkpoint.size == 3
    assert result.release.entry == ENTRY and result.release.digest == ENTRY_DIGEST
    assert result.quorum.cosigned == {"witness0.example": AT_TS - 60,
                                      "witness1.example": AT_TS - 60}
    assert result.checkpoint_age == 60
    assert result.consistency is not None and result.consistency.outcome == "first"
    assert world.store.last_seen(ORIGIN).checkpoint == result.checkpoint  # type: ignore[union-attr]
    assert t.steps[0].inputs["entry_sha256"]
    # a second verification of a grown log advances last-seen through a consistency proof
    world.log.append(release_entry(7))
    world.mirror.sync(world.log.checkpoint(), world.log.entries_range)
    again = world.verify()
    assert again.consistency is not None and again.consistency.outcome == "advanced"


# --- 1. release.signature ------------------------------------------------------------------------


def test_release_signed_by_a_non_accepted_key(tmp_path: Path) -> None:
    foreign = release_entry(5, key=OTHER_RELEASE_KEY)
    world = World(tmp_path, [*ENTRIES, foreign])
    t = Transcript()
    with pytest.raises(VerificationError) as err:
        world.verify(world.evidence(3, entry=foreign), transcript=t)
    assert err.value.check == "release.signature"
    assert failed_steps(t) == ["release.signature"] and len(t.steps) == 1


def test_release_with_a_bad_accepted_signature() -> None:
    envelope = json.loads(ENTRY)
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 1
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    forged = json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()
    with pytest.raises(SignatureError) as err:
        check_release_signature(forged, POLICY.release)
    assert err.value.check == "release.signature"


def test_release_threshold() -> None:
    pol = policy(release={"keys": [k.public.to_text().strip() for k in
                                   (RELEASE_KEY, OTHER_RELEASE_KEY)], "threshold": 2})
    with pytest.raises(VerificationError) as err:
        check_release_signature(ENTRY, pol.release)
    assert err.value.check == "release.signature"


def test_a_revocation_is_not_a_release() -> None:
    with pytest.raises(VerificationError) as err:
        check_release_signature(revocation_entry(ENTRY), POLICY.release)
    assert (err.value.check, err.value.field) == ("release.signature", "predicateType")


# --- 2. release.sigstore -------------------------------------------------------------------------

WHEEL_SHA256 = bytes.fromhex("c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201")


def sigstore_policy(ref: str = "refs/tags/v0.1.2") -> Policy:
    root = vector_path("sigstore", "trusted_root", "production.trusted_root.json")
    extra = ("[release.sigstore]\nrepository = \"trailofbits/rfc8785.py\"\n"
             "workflow = \".github/workflows/release.yml\"\n"
             f"ref = \"{ref}\"\ntrusted_root = \"{root}\"\n")
    return parse_policy(policy_toml(extra=extra).encode())


def test_sigstore_bundle_by_the_policy_identity() -> None:
    bundle = vector_path("sigstore", "bundles", "bundle_v3_github.whl.sigstore").read_bytes()
    sig = sigstore_policy().release.sigstore
    assert sig is not None
    wheel = {WHEEL_SHA256: "artifact other rfc8785-0.1.2-py3-none-any.whl"}
    san = check_release_sigstore(wheel, bundle, sig)
    assert san.startswith("https://github.com/trailofbits/rfc8785.py/")
    assert san.endswith("release.yml@refs/tags/v0.1.2 over " + wheel[WHEEL_SHA256])
    with pytest.raises(SignatureError) as err:
        check_release_sigstore({bytes(32): "statement"}, bundle, sig)  # another release
    assert err.value.check == "release.sigstore"
    assert "release.sigstore.artifact" in err.value.message
    other = sigstore_policy("refs/tags/v0.1.3").release.sigstore
    assert other is not None
    with pytest.raises(VerificationError) as err2:
        check_release_sigstore(wheel, bundle, other)
    assert err2.value.check == "release.sigstore" and "identity" in err2.value.message


def test_sigstore_required_but_absent(tmp_path: Path) -> None:
    world = World(tmp_path, pol=sigstore_policy())
    t = Transcript()
    with pytest.raises(PolicyError) as err:
        world.verify(transcript=t)
    assert err.value.check == "release.sigstore"
    assert failed_steps(t) == ["release.sigstore"]


# --- 3. log.signature ----------------------------------------------------------------------------


def test_checkpoint_signed_by_another_key(world: World) -> None:
    impostor = Signer(generate_keys(ORIGIN, seed=bytes([0x66]) * 32)[0])
    fake = FakeLog(list(ENTRIES), signer=impostor)
    t = Transcript()
    with pytest.raises(VerificationError) as err:
        world.verify(LogEvidence.from_tlog_proof(ENTRY, fake.proof(1)), transcript=t)
    assert err.value.check == "log.signature"
    assert failed_steps(t) == ["log.signature"]


def test_checkpoint_of_another_origin(world: World) -> None:
    other = FakeLog(list(ENTRIES), origin="other.example/log")
    with pytest.raises(VerificationError) as err:
        check_log_signature(other.note(), POLICY.log)
    assert (err.value.check, err.value.field) == ("log.signature", "origin")


def test_checkpoint_with_a_flipped_log_signature(world: World) -> None:
    note = bytearray(world.log.note(witnesses=()))
    note[-10] = ord("A") if note[-10] != ord("A") else ord("B")
    with pytest.raises(SignatureError) as err:
        check_log_signature(bytes(note), POLICY.log)
    assert err.value.check == "log.signature"


# --- 4. log.witness.quorum -----------------------------------------------------------------------


def test_checkpoint_without_witness_quorum(world: World) -> None:
    t = Transcript()
    with pytest.raises(VerificationError) as err:
        world.verify(world.evidence(witnesses=(2,)), transcript=t)
    assert err.value.check == "log.witness.quorum"
    assert "witness2.example" in str(err.value.got)
    assert failed_steps(t) == ["log.witness.quorum"]
    assert world.store.last_seen(ORIGIN) is None  # nothing stored for a refused checkpoint


def test_future_dated_cosignature(world: World) -> None:
    t = Transcript()
    ev = world.evidence(witnesses=(0, 1, 2), times={2: AT_TS + 3600})
    with pytest.raises(VerificationError) as err:
        world.verify(ev, transcript=t)
    assert err.value.check == "log.witness.quorum"
    assert err.value.field == "timestamp of witness2.example"
    assert failed_steps(t) == ["log.witness.quorum"]


def test_cosignature_within_the_skew_is_fine(world: World) -> None:
    result = world.verify(world.evidence(times={0: AT_TS + 60, 1: AT_TS - 5}))
    assert result.checkpoint_age == 0


def test_bad_cosignature_from_a_policy_witness(world: World) -> None:
    good = world.log.note()
    other = FakeLog(list(ENTRIES))
    other.append(b"x")  # a cosignature of another checkpoint, moved onto this one
    moved = other.note(witnesses=(0,)).split(b"\n\n")[1].split(b"\n")[1] + b"\n"
    note = world.log.note(witnesses=(1, 2)) + moved
    assert good != note
    cp, opened = check_log_signature(note, POLICY.log)
    with pytest.raises(SignatureError) as err:
        check_witness_quorum(opened, cp, POLICY.log, AT)
    assert err.value.check == "log.witness.quorum"


# --- 5. log.inclusion ----------------------------------------------------------------------------


def test_entry_not_at_that_index(world: World) -> None:
    ev = world.evidence(1)
    t = Transcript()
    with pytest.raises(ProofError) as err:
        world.verify(LogEvidence(ENTRIES[2], 1, ev.hashes, ev.checkpoint_note), transcript=t)
    assert err.value.check == "log.inclusion"
    assert failed_steps(t) == ["log.inclusion"]


def test_proof_with_an_empty_hash(world: World) -> None:
    ev = world.evidence(1)
    cp, _ = check_log_signature(ev.checkpoint_note, POLICY.log)
    with pytest.raises(FormatError) as err:
        check_inclusion(ENTRY, 1, [b"", *ev.hashes[1:]], cp)
    assert (err.value.check, err.value.field) == ("log.inclusion", "proof[0]")


def test_tlog_proof_text_with_an_empty_hash_line(world: World) -> None:
    text = world.log.proof(1).to_text().replace(b"index 1\n", b"index 1\n=\n", 1)
    with pytest.raises(FormatError) as err:
        LogEvidence.from_tlog_proof(ENTRY, text)
    assert err.value.check == "log.inclusion"


def test_proof_with_a_flipped_bit(world: World) -> None:
    ev = world.evidence(1)
    bad = (bytes([ev.hashes[0][0] ^ 1]) + ev.hashes[0][1:], *ev.hashes[1:])
    with pytest.raises(ProofError) as err:
        world.verify(LogEvidence(ENTRY, 1, bad, ev.checkpoint_note))
    assert err.value.check == "log.inclusion"


