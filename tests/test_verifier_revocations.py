"""The client's incremental release-log mirror (verifier/revocations.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from attest.release.dsse import entry_statement_digest, open_entry, sign_statement
from attest.release.revocation_index import RevocationRecord
from attest.release.statement import Release, Revocation
from tests.support.log_fixtures import (
    ORIGIN,
    OTHER_RELEASE_KEY,
    RELEASE_KEY,
    FakeLog,
    Recording,
    policy_toml,
    release_entry,
    revocation_entry,
)
from transparency_log.common.errors import (
    ConsistencyError,
    FormatError,
    ProofError,
    SignatureError,
    VerificationError,
)
from transparency_log.core.checkpoint import Checkpoint
from verifier.policy import ReleasePolicy, parse_policy
from verifier.revocations import RevocationMirror, open_revocation

R = [release_entry(i) for i in range(4)]
DIGESTS = [hashlib.sha256(e).digest() for e in R]
STATEMENTS = [entry_statement_digest(e) for e in R]
RELEASE = parse_policy(policy_toml().encode()).release


def release_policy(keys: list, threshold: int = 1) -> ReleasePolicy:
    text = policy_toml(release={"keys": [k.public.to_text().strip() for k in keys],
                                "threshold": threshold})
    return parse_policy(text.encode()).release


def revoked(mirror: RevocationMirror, entry: bytes, as_of: int | None = None
            ) -> RevocationRecord | None:
    """The mirror's revocation of a release entry (by its statement and measurements)."""
    opened = open_entry(entry, [RELEASE_KEY.public])
    assert isinstance(opened.statement, Release)
    return mirror.revocation_of(opened.statement_digest, opened.statement, as_of)


@pytest.fixture
def log() -> FakeLog:
    return FakeLog([R[0], R[1], revocation_entry(R[0]), R[2],
                    revocation_entry(R[1], key=OTHER_RELEASE_KEY), b"not json"])


def test_sync_records_releases_and_valid_revocations(tmp_path: Path, log: FakeLog) -> None:
    mirror = RevocationMirror(tmp_path, ORIGIN, RELEASE)
    assert mirror.size == 0 and not revoked(mirror, R[0])
    assert mirror.sync(log.checkpoint(), Recording(log.entries_range)) == 6
    assert (mirror.size, mirror.root) == (6, log.checkpoint().root)
    assert mirror.known_releases == {DIGESTS[0]: 0, DIGESTS[1]: 1, DIGESTS[2]: 3}
    rec = revoked(mirror, R[0])
    assert rec is not None and rec.index == 2 and rec.signers == (RELEASE_KEY.keyid,)
    assert rec.entry_digest == hashlib.sha256(log.entries[2]).digest()
    # revoked by a key the policy does not accept: does not count
    assert not revoked(mirror, R[1])
    assert [(r.index, r.check) for r in mirror.rejected] == [
        (4, "release.dsse.signer"), (5, "release.json.syntax")]


def test_revoked_as_of_a_tree_size(tmp_path: Path, log: FakeLog) -> None:
    mirror = RevocationMirror(tmp_path, ORIGIN, RELEASE)
    mirror.sync(log.checkpoint(), Recording(log.entries_range))
    assert not revoked(mirror, R[0], as_of=2)
    assert revoked(mirror, R[0], as_of=3)


def test_incremental_and_persistent(tmp_path: Path, log: FakeLog) -> None:
    src = Recording(log.entries_range)
    mirror = RevocationMirror(tmp_path, ORIGIN, RELEASE)
    mirror.sync(log.checkpoint(3), src, batch=2)
    assert src.calls == [(0, 2), (2, 3)]
    reopened = RevocationMirror(tmp_path, ORIGIN, RELEASE)  # state read back from disk
    assert reopened.size == 3 and revoked(reopened, R[0])
    src.calls.clear()
    assert reopened.sync(log.checkpoint(), src) == 3
    assert src.calls == [(3, 6)]  # only the new entries
    assert reopened.sync(log.checkpoint(), src) == 0 and src.calls == [(3, 6)]
    assert reopened.sync(log.checkpoint(2), src) == 0  # older: nothing to do
    state = json.loads(next(tmp_path.glob("*/mirror.json")).read_text())
    assert state["size"] == 6 and state["origin"] == ORIGIN


def test_entries_that_do_not_hash_to_the_root(tmp_path: Path, log: FakeLog) -> None:
    mirror = RevocationMirror(tmp_path, ORIGIN, RELEASE)
    mirror.sync(log.checkpoint(2), Recording(log.entries_range))

    def lying(start: int, end: int) -> list[bytes]:
        entries = log.entries_range(start, end)
        return [e for e in entries if e != log.entries[2]] + [R[3]]  # revocation hidden

    with pytest.raises(ProofError) as err:
        mirror.sync(log.checkpoint(), lying)
    assert err.value.check == "log.entries"
    assert mirror.size == 2 and not revoked(mirror, R[0])
    assert RevocationMirror(tmp_path, ORIGIN, RELEASE).size == 2


def test_a_fork_under_the_mirror(tmp_path: Path, log: FakeLog) -> None:
    mirror = RevocationMirror(tmp_path, ORIGIN, RELEASE)
    mirror.sync(log.checkpoint(3), Recording(log.entries_range))
    forked = FakeLog([R[0], R[1], R[2], R[3]])  # same prefix of 2, then differs
    with pytest.raises(ProofError):
        mirror.sync(forked.checkpoint(4), Recording(forked.entries_range))
    with pytest.raises(ConsistencyError):
        mirror.sync(forked.checkpoint(3), Recording(forked.entries_range))


def test_wrong_number_of_entries(tmp_path: Path, log: FakeLog) -> None:
    mirror = RevocationMirror(tmp_path, ORIGIN, RELEASE)
    with pytest.raises(FormatError) as err:
        mirror.sync(log.checkpoint(), lambda s, e: log.entries_range(s, e)[:-1])
    assert err.value.check == "log.entries"


def test_other_origin_refused(tmp_path: Path) -> None:
    mirror = RevocationMirror(tmp_path, ORIGIN, RELEASE)
    with pytest.raises(VerificationError):
        mirror.sync(Checkpoint("other.example/log", 1, bytes(32)), lambda s, e: [b"x"])


def test_new_keys_rebuild_the_mirror(tmp_path: Path, log: FakeLog) -> None:
    RevocationMirror(tmp_path, ORIGIN, RELEASE).sync(log.checkpoint(), Recording(log.entries_range))
    both = release_policy([RELEASE_KEY, OTHER_RELEASE_KEY])
    mirror = RevocationMirror(tmp_path, ORIGIN, both)
    assert mirror.size == 0
    mirror.sync(log.checkpoint(), Recording(log.entries_range))
    assert revoked(mirror, R[1])  # now signed by an accepted key


def test_threshold_applies_to_revocations(tmp_path: Path) -> None:
    both = release_policy([RELEASE_KEY, OTHER_RELEASE_KEY], threshold=2)
    one_signer = revocation_entry(R[0])
    two_signers = sign_statement(Revocation.of_statement(STATEMENTS[1], "bad build"),
                                 [RELEASE_KEY, OTHER_RELEASE_KEY]).encode()
    log = FakeLog([one_signer, two_signers])
    mirror = RevocationMirror(tmp_path, ORIGIN, both)
    mirror.sync(log.checkpoint(), Recording(log.entries_range))
    assert not revoked(mirror, R[0]) and revoked(mirror, R[1])


def test_corrupt_state(tmp_path: Path, log: FakeLog) -> None:
    RevocationMirror(tmp_path, ORIGIN, RELEASE).sync(log.checkpoint(), Recording(log.entries_range))
    path = next(tmp_path.glob("*/mirror.json"))
    state = json.loads(path.read_text())
    state["compact"] = state["compact"][1:]
    path.write_text(json.dumps(state))
    with pytest.raises(FormatError):
        RevocationMirror(tmp_path, ORIGIN, RELEASE)


def test_open_revocation() -> None:
    rec = open_revocation(revocation_entry(R[0]), 7, RELEASE)
    assert (rec.revocation.value, rec.index) == (STATEMENTS[0], 7)
    with pytest.raises(VerificationError) as err:
        open_revocation(revocation_entry(R[0], key=OTHER_RELEASE_KEY), 7, RELEASE)
    assert err.value.check == "release.revoked"
    with pytest.raises(VerificationError) as err:
        open_revocation(R[0], 7, RELEASE)
    assert err.value.field == "predicateType"
    forged = revocation_entry(R[0]).replace(b'"sig":"', b'"sig":"A', 1)
    with pytest.raises((SignatureError, FormatError)):
        open_revocation(forged, 7, RELEASE)
