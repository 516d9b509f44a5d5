"""End to end on 127.0.0.1: a log with two witnesses, entries added over HTTP, proofs
verified against the witness policy (checkpoint + 2 cosignatures + inclusion)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests

from tests.support.tlog_net import FIXED_NOW, ORIGIN, log_network
from transparency_log.client.log_client import CheckpointStore, LogClient, http_source, monitor
from transparency_log.common.asgi_serving import serve_in_thread
from transparency_log.common.errors import ConsistencyError, VerificationError
from transparency_log.core.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import Signer
from transparency_log.core.tlog_proof import parse_tlog_proof, verify_tlog_proof_detailed
from transparency_log.core.witness_policy import parse_witness_policy
from transparency_log.log.lifecycle import Log
from transparency_log.log.storage.sqlite import SqliteStorage
from transparency_log.serve.server import Submitters, create_app
from transparency_log.serve.service import LogService
from transparency_log.witness.client import WitnessClient


def test_log_with_two_witnesses_end_to_end(tmp_path) -> None:
    with log_network(tmp_path, n_witnesses=2) as net:
        policy = parse_witness_policy(net.policy_text)
        entries = [b"release %d" % i for i in range(20)]

        def add(e: bytes) -> tuple[bytes, requests.Response]:
            return e, requests.post(net.base + "/add?wait=proof", data=e,
                                    headers=net.auth(), timeout=30)

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(add, entries))
        indexes = set()
        for entry, r in results:
            assert r.status_code == 200, r.text
            proof = parse_tlog_proof(r.content)
            _cp, quorum = verify_tlog_proof_detailed(entry, proof, Verifier(net.log_vkey),
                                                    policy)
            assert set(quorum.cosigned) == {"w1", "w2"}
            indexes.add(proof.index)
        assert indexes == set(range(20))
        cp_note = requests.get(net.base + "/checkpoint", timeout=10).content
        assert cp_note.count("\u2014".encode()) == 3  # log + two witnesses
        for w in net.witnesses:
            latest = w.witness.state.latest("example.com/attestlog-test")
            assert latest is not None and latest[0] >= 1


def _add_all(base: str, auth: dict[str, str], entries: list[bytes]) -> list[int]:
    out = []
    for e in entries:
        r = requests.post(base + "/add?wait=proof", data=e, headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        out.append(parse_tlog_proof(r.content).index)
    return out


def test_client_verifies_cosigned_checkpoint_and_proofs_from_tiles(tmp_path) -> None:
    with log_network(tmp_path, n_witnesses=2) as net:
        policy = parse_witness_policy(net.policy_text)
        entries = [b"artifact %d" % i for i in range(300)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda e: requests.post(net.base + "/add", data=e,
                                                  headers=net.auth(), timeout=30), entries))
        _add_all(net.base, net.auth(), [b"last"])
        client = LogClient(http_source(net.base), Verifier(net.log_vkey), policy=policy,
                           store=CheckpointStore(tmp_path / "state"))
        _, vc = client.update()
        assert vc.checkpoint.size == 301
        assert set(vc.quorum.cosigned) == {"w1", "w2"}
        indexes = {e: i for i, e in client.entries(0, 301, 301)}
        for e in entries[::13]:
            client.prove(e, indexes[e], vc)
        r = monitor(client)
        assert r.current.size == 301


def test_split_view_caught_by_witness_and_client(tmp_path) -> None:
    """The log's key signs a fork. The witnesses refuse it (422, kept as evidence), so it
    never gets a quorum; a client that saw the honest tree refuses the fork too."""
    with log_network(tmp_path, n_witnesses=2) as net:
        policy = parse_witness_policy(net.policy_text)
        _add_all(net.base, net.auth(), [b"honest %d" % i for i in range(5)])
        state = CheckpointStore(tmp_path / "state")
        honest = LogClient(http_source(net.base), Verifier(net.log_vkey), policy=policy,
                           store=state)
        _, seen = honest.update()

        fork_storage = SqliteStorage(tmp_path / "fork.db")
        fork_log = Log(fork_storage, ORIGIN)
        fork_log.add([b"evil %d" % i for i in range(seen.checkpoint.size + 3)])
        clients = [WitnessClient(w.name, w.url, v) for w, v in
                   zip(policy.witnesses, policy.witness_verifiers, strict=True)]
        for c in clients:
            c.known_size = seen.checkpoint.size
        fork = LogService(fork_log, Signer(net.log_skey), net.log_vkey, witnesses=clients,
                          policy=policy, now=lambda: FIXED_NOW)
        assert fork.publish_once() is False  # no quorum: not published
        assert "quorum" in (fork.last_error or "")
        for w in net.witnesses:
            assert w.witness.state.latest(ORIGIN)[0] == seen.checkpoint.size
            assert any(ev["reason"].startswith("inconsistent")
                       for ev in w.witness.state.evidence(ORIGIN))
        fork_note = _sign(fork_log, net.log_skey)
        clients[0].known_size = seen.checkpoint.size
        with pytest.raises(ConsistencyError):  # the witness's 422, as the log sees it
            clients[0].cosign(fork_note, fork_log.tree_state().size,
                              fork_log.consistency_proof)

        # The forked log publishes unwitnessed anyway and serves it.
        fork_storage.write_checkpoint(fork_log.tree_state().size, fork_note)
        app = create_app(fork, submitters=Submitters())
        with serve_in_thread(app) as (host, port):
            url = f"http://{host}:{port}"
            with pytest.raises(VerificationError):  # the policy wants two cosignatures
                LogClient(http_source(url), Verifier(net.log_vkey), policy=policy).checkpoint()
            with pytest.raises(ConsistencyError):  # and without a policy: the stored view
                LogClient(http_source(url), Verifier(net.log_vkey), store=state).update()
        assert state.evidence(ORIGIN)
        fork.close()
        fork_storage.close()


def _sign(the_log: Log, skey: str) -> bytes:
    state = the_log.integrate()
    return sign_checkpoint(Checkpoint(ORIGIN, state.size, state.root), Signer(skey))


def test_idle_log_is_recosigned_after_refresh(tmp_path) -> None:
    """Nothing new: no checkpoint until refresh_after has passed, then a fresh one."""
    clock = [FIXED_NOW]
    with log_network(tmp_path, n_witnesses=1, interval=3600) as net:
        service = net.service
        service.now = lambda: clock[0]
        service.refresh_after = 60
        service.publish_once()  # whatever the background round did, we are published now
        assert service.publish_once() is False
        clock[0] = FIXED_NOW + timedelta(seconds=61)
        assert service.publish_once() is True
        assert service.published_size() == 0


def test_read_cache_is_bounded_and_keeps_only_full_tiles(tmp_path) -> None:
    from transparency_log.serve.service import _ByteLRU

    lru = _ByteLRU(100)
    for i in range(5):
        lru.put(f"k{i}", bytes(40))
    assert lru.used <= 100 and lru.get("k0") is None and lru.get("k4") == bytes(40)
    lru.put("huge", bytes(101))
    assert lru.get("huge") is None
    with log_network(tmp_path, n_witnesses=0) as net:
        _add_all(net.base, net.auth(), [b"e%d" % i for i in range(257)])
        assert net.service.read("tile/0/000") is not None
        assert net.service.read("tile/0/001.p/1") is not None
        assert "tile/0/000" in net.service._cache._items
        assert "tile/0/001.p/1" not in net.service._cache._items
