"""The log half of the verifier, steps 6-8 (verifier/log_view_checks.py): the client's own
view of the log, each step with one test where it fails."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import pytest

from attest.release.dsse import entry_statement_digest, open_entry, sign_statement
from attest.release.measurements import Measurements, SnpMeasurement
from tests.support.log_fixtures import (
    AT,
    AT_TS,
    LOG_SIGNER,
    MAX_AGE,
    ORIGIN,
    OTHER_RELEASE_KEY,
    RELEASE_KEY,
    FakeLog,
    measurement_revocation_entry,
    release_entry,
    relogged_variant,
    revocation_entry,
)
from tests.support.log_world import (
    ENTRIES,
    ENTRY,
    POLICY,
    World,
    failed_steps,
    policy,
)
from tests.support.release_samples import SNP_MEASUREMENT, sample_release
from transparency_log.common.errors import (
    ConsistencyError,
    PolicyError,
    TrustConfigError,
)
from verifier.checks import CheckNotRun
from verifier.log_checks import (
    LogEvidence,
    check_log_signature,
    check_release_signature,
    check_witness_quorum,
)
from verifier.log_view_checks import check_checkpoint_age, check_revoked, checkpoint_time
from verifier.transcript import Transcript


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)



# --- 6. log.consistency --------------------------------------------------------------------------


def test_validly_signed_fork_is_refused_with_evidence(world: World) -> None:
    world.verify()  # last-seen: the honest tree of size 3
    forked = FakeLog([ENTRIES[0], ENTRIES[1], release_entry(9), release_entry(10)])
    ev = LogEvidence.from_tlog_proof(ENTRY, forked.proof(1))
    t = Transcript()
    with pytest.raises(ConsistencyError) as err:
        world.verify(ev, fetch_consistency=forked.consistency, transcript=t)
    assert err.value.check == "log.consistency"
    assert failed_steps(t) == ["log.consistency"]
    assert err.value.new == ev.checkpoint_note
    assert err.value.old == world.store.last_seen(ORIGIN).note  # type: ignore[union-attr]
    assert world.store.last_seen(ORIGIN).checkpoint.size == 3  # type: ignore[union-attr]
    (evidence,) = world.store.evidence(ORIGIN)
    assert str(evidence) == err.value.got
    assert (evidence / "presented.checkpoint").read_bytes() == ev.checkpoint_note
    assert (evidence / "last-seen.checkpoint").read_bytes() == err.value.old


def test_waiving_consistency_does_not_excuse_a_fork(tmp_path: Path) -> None:
    world = World(tmp_path, pol=policy(top={"waive": ["log.consistency"]}))
    world.verify()
    forked = FakeLog([ENTRIES[0], ENTRIES[1], release_entry(9)])
    with pytest.raises(ConsistencyError):
        world.verify(LogEvidence.from_tlog_proof(ENTRY, forked.proof(1)))


def test_consistency_cannot_run_without_a_store(world: World) -> None:
    t = Transcript()
    with pytest.raises(CheckNotRun) as err:
        world.verify(store=None, transcript=t)
    assert err.value.check == "log.consistency"
    assert failed_steps(t) == ["log.consistency"]


def test_consistency_waived_without_a_store(tmp_path: Path) -> None:
    world = World(tmp_path, pol=policy(top={"waive": ["log.consistency"]}))
    t = Transcript()
    result = world.verify(store=None, transcript=t)
    assert result.consistency is None
    (step,) = [s for s in t.steps if s.check == "log.consistency"]
    assert step.result == "waived" and "no last-seen checkpoint store" in step.detail
    assert t.verdict == "accepted"


# --- 7. log.checkpoint.age -----------------------------------------------------------------------


def test_stale_checkpoint(world: World) -> None:
    old = AT_TS - MAX_AGE - 1
    t = Transcript()
    with pytest.raises(PolicyError) as err:
        world.verify(world.evidence(times={0: old, 1: old - 100}), transcript=t)
    assert [f.check for f in err.value.failures] == ["log.checkpoint.age"]
    assert err.value.failures[0].got == MAX_AGE + 1
    assert failed_steps(t) == ["log.checkpoint.age"]


def test_age_uses_the_newest_cosignature(world: World) -> None:
    ev = world.evidence(times={0: AT_TS - MAX_AGE * 5, 1: AT_TS - MAX_AGE})
    assert world.verify(ev).checkpoint_age == MAX_AGE


def test_age_cannot_run_without_cosignatures(tmp_path: Path) -> None:
    unwitnessed = {"witnesses": None, "quorum": None, "witness_policy": "quorum none"}
    world = World(tmp_path, pol=policy(log=unwitnessed))
    with pytest.raises(PolicyError) as err:
        world.verify(world.evidence(witnesses=()))
    assert [f.check for f in err.value.failures] == ["log.checkpoint.age"]
    assert err.value.failures[0].got == "not run"
    world = World(tmp_path / "w", pol=policy(log=unwitnessed,
                                            top={"waive": ["log.checkpoint.age"]}))
    t = Transcript()
    assert world.verify(world.evidence(witnesses=()), transcript=t).checkpoint_age is None
    assert [s.result for s in t.steps if s.check == "log.checkpoint.age"] == ["waived"]


def test_checkpoint_time_is_the_newest_policy_cosignature(world: World) -> None:
    cp, note = check_log_signature(world.log.note(times={0: 100, 1: 200}), POLICY.log)
    quorum = check_witness_quorum(note, cp, POLICY.log, AT)
    assert checkpoint_time(quorum) == 200
    with pytest.raises(PolicyError):
        check_checkpoint_age(quorum, POLICY.log, AT)


# --- 8. release.revoked --------------------------------------------------------------------------


def test_revoked_release(world: World) -> None:
    world.log.append(revocation_entry(ENTRY))
    world.mirror.sync(world.log.checkpoint(), world.log.entries_range)
    t = Transcript()
    with pytest.raises(PolicyError) as err:
        world.verify(transcript=t)
    (failure,) = err.value.failures
    assert failure.check == "release.revoked"
    assert failure.got == entry_statement_digest(ENTRY)
    assert "log index 3" in failure.message
    assert failed_steps(t) == ["release.revoked"]


def test_relogged_variant_of_a_revoked_release_is_refused(world: World) -> None:
    """Issue 16: after the release is revoked, anyone with a submit token re-logs the same
    signed statement with one extra signature under an unknown key id. The variant is a new
    entry with a new digest, but the same statement: refused, ``release.revoked``."""
    world.log.append(revocation_entry(ENTRY))  # index 3
    variant = relogged_variant(ENTRY)
    assert variant != ENTRY and open_entry(variant, [RELEASE_KEY.public]).statement \
        == open_entry(ENTRY, [RELEASE_KEY.public]).statement  # it opens, as the original
    world.log.append(variant)  # index 4, logged after the revocation
    world.mirror.sync(world.log.checkpoint(), world.log.entries_range)
    t = Transcript()
    with pytest.raises(PolicyError) as err:
        world.verify(world.evidence(4, variant), transcript=t)
    (failure,) = err.value.failures
    assert failure.check == "release.revoked" and "log index 3" in failure.message
    assert failed_steps(t) == ["release.revoked"]
    world.verify(world.evidence(0))  # another release is untouched


def test_measurement_revocation_refuses_older_and_later_releases(world: World) -> None:
    """Revoking a build (its measurement) refuses every release that lists it: the ones
    logged before the revocation and a re-release logged after it. A rebuild with another
    measurement is accepted."""
    world.log.append(measurement_revocation_entry(SNP_MEASUREMENT))  # index 3
    rereleased = release_entry(9)  # same build, new statement, logged after (index 4)
    base = sample_release()
    rebuilt = sign_statement(dataclasses.replace(base, measurements=Measurements(
        snp=(SnpMeasurement(1, "EPYC-v4", "qemu", b"\x77" * 48),))), [RELEASE_KEY]).encode()
    world.log.append(rereleased)
    world.log.append(rebuilt)  # index 5
    world.mirror.sync(world.log.checkpoint(), world.log.entries_range)
    for index, entry in [(1, ENTRY), (4, rereleased)]:
        t = Transcript()
        with pytest.raises(PolicyError) as err:
            world.verify(world.evidence(index, entry), transcript=t)
        (failure,) = err.value.failures
        assert failure.check == "release.revoked" and "measurement sha384:" in failure.message
        assert failed_steps(t) == ["release.revoked"]
    assert world.verify(world.evidence(5, rebuilt)).checkpoint.size == 6


def test_revocation_by_a_non_accepted_key_does_not_count(world: World) -> None:
    world.log.append(revocation_entry(ENTRY, key=OTHER_RELEASE_KEY))
    world.mirror.sync(world.log.checkpoint(), world.log.entries_range)
    assert world.verify().checkpoint.size == 4
    assert [r.index for r in world.mirror.rejected] == [3]


def test_stale_and_revoked_are_reported_together(world: World) -> None:
    world.log.append(revocation_entry(ENTRY))
    world.mirror.sync(world.log.checkpoint(), world.log.entries_range)
    old = AT_TS - MAX_AGE - 10
    with pytest.raises(PolicyError) as err:
        world.verify(world.evidence(times={0: old, 1: old}))
    assert [f.check for f in err.value.failures] == ["log.checkpoint.age", "release.revoked"]


def test_mirror_behind_the_checkpoint_cannot_decide(world: World) -> None:
    world.log.append(release_entry(8))  # the node's checkpoint is newer than the mirror
    with pytest.raises(PolicyError) as err:
        world.verify()
    (failure,) = err.value.failures
    assert (failure.check, failure.got) == ("release.revocations.unavailable", "not run")
    assert "--log-url" in failure.message
    with pytest.raises(CheckNotRun) as not_run:
        check_revoked(check_release_signature(ENTRY, POLICY.release),
                      world.log.checkpoint(), None, POLICY.log)
    assert not_run.value.check == "release.revocations.unavailable"


def test_no_mirror_names_the_configuration_not_a_revocation(world: World) -> None:
    """Issue 12: a client with no mirror was refused "by release.revoked", as if the release
    were revoked. It is refused still (fail closed), by release.revocations.unavailable, and the
    reason says what to pass; release.revoked itself is not run, so not claimed either way."""
    t = Transcript()
    with pytest.raises(PolicyError) as err:
        world.verify(revocations=None, transcript=t)
    (failure,) = err.value.failures
    assert (failure.check, failure.got) == ("release.revocations.unavailable", "not run")
    assert "--state" in failure.message and "--log-url" in failure.message
    assert 'revocations = "stapled"' in failure.message
    assert failed_steps(t) == ["release.revocations.unavailable"]
    assert "release.revoked" not in [s.check for s in t.steps]


def test_no_mirror_waived_still_honours_known_revocations(tmp_path: Path) -> None:
    world = World(tmp_path, pol=policy(top={"waive": ["release.revocations.unavailable"]}))
    t = Transcript()
    world.verify(revocations=None, transcript=t)
    steps = {s.check: s for s in t.steps}
    assert steps["release.revocations.unavailable"].result == "waived"
    assert steps["release.revoked"].result == "pass"
    assert "waived" in steps["release.revoked"].detail
    # a mirror that is behind, waived: the revocation it does know is still a refusal
    world.log.append(revocation_entry(ENTRY))
    world.mirror.sync(world.log.checkpoint(), world.log.entries_range)
    world.log.append(release_entry(8))
    with pytest.raises(PolicyError) as err:
        world.verify()
    assert [f.check for f in err.value.failures] == ["release.revoked"]


def test_old_waiver_id_is_refused() -> None:
    with pytest.raises(TrustConfigError) as err:
        policy(top={"waive": ["release.revoked"]})
    assert err.value.check == "policy.waive"


def test_stapled_only_mode(tmp_path: Path) -> None:
    world = World(tmp_path, pol=policy(log={"revocations": "stapled"}))
    t = Transcript()
    world.verify(revocations=None, transcript=t)
    (step,) = [s for s in t.steps if s.check == "release.revoked"]
    assert step.result == "pass" and "stapled-only" in step.detail


def test_naive_time_refused(world: World) -> None:
    with pytest.raises(ValueError):
        world.verify(at=datetime(2026, 11, 23, 12))


def test_log_signer_fixture_is_the_policy_log() -> None:
    assert POLICY.log.verifier.key_id == LOG_SIGNER.key_id


def test_offline_consistency_is_waivable_but_same_size_still_runs(tmp_path: Path) -> None:
    world = World(tmp_path, pol=policy(top={"waive": ["log.consistency"]}))
    world.verify(world.evidence(1, size=2))  # last-seen: size 2
    t = Transcript()
    result = world.verify(fetch_consistency=None, transcript=t)  # size 3, offline
    assert result.consistency is None
    (step,) = [s for s in t.steps if s.check == "log.consistency"]
    assert step.result == "waived" and "offline" in step.detail
    assert world.store.last_seen(ORIGIN).checkpoint.size == 2  # type: ignore[union-attr]
    world.verify(world.evidence(1, size=2), fetch_consistency=None)  # same tree: passes


def test_offline_consistency_without_waiver_fails(world: World) -> None:
    world.verify(world.evidence(1, size=2))
    with pytest.raises(CheckNotRun) as err:
        world.verify(fetch_consistency=None)
    assert err.value.check == "log.consistency"
