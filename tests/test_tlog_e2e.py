"""End to end on 127.0.0.1: a log with two witnesses, entries added over HTTP, proofs
verified against the witness policy (checkpoint + 2 cosignatures + inclusion)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from tests.tlog_net import log_network
from transparency_log.note import Verifier
from transparency_log.tlog_proof import parse_tlog_proof, verify_tlog_proof_detailed
from transparency_log.witness_policy import parse_witness_policy


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
