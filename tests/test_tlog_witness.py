"""C2SP tlog-witness add-checkpoint: every status of the spec, atomic state, forks refused."""

from __future__ import annotations

import base64
import threading

import pytest
import requests

from tests.support.vectors import load_json_vector
from transparency_log.common.asgi_serving import serve_in_thread
from transparency_log.core import merkle
from transparency_log.core.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import Signer, generate_keys, parse_note
from transparency_log.witness.service import (
    SIZE_CONTENT_TYPE,
    AddCheckpointRequest,
    Witness,
    WitnessState,
    create_witness_app,
    parse_add_checkpoint,
)

ORIGIN = "example.com/witness-test-log"
SKEY, VKEY = generate_keys(ORIGIN, seed=bytes(32))
OTHER_SKEY, _ = generate_keys(ORIGIN, seed=bytes([1]) * 32)


def fake_cosign(text: bytes, ts: int) -> bytes:
    """A stand-in cosigner: records what it signed (real cosignatures: test_tlog_e2e)."""
    body = base64.b64encode(ts.to_bytes(8, "big") + text[:8].ljust(8, b"\0")).decode()
    return f"\u2014 witness.test/w1 {body}\n".encode()


class Log:
    """A test log: a MemoryTree and its signer (or a forger's)."""

    def __init__(self, entries: int = 0, tag: bytes = b"e") -> None:
        self.tree = merkle.MemoryTree(tag + b"%d" % i for i in range(entries))

    def grow(self, n: int, tag: bytes = b"e") -> None:
        start = self.tree.size
        for i in range(start, start + n):
            self.tree.append(tag + b"%d" % i)

    def note(self, size: int | None = None, skey: str = SKEY, root: bytes | None = None) -> bytes:
        size = self.tree.size if size is None else size
        cp = Checkpoint(ORIGIN, size, root if root is not None else self.tree.root(size))
        return sign_checkpoint(cp, Signer(skey))

    def request(self, old: int, size: int | None = None, **kw) -> bytes:
        size = self.tree.size if size is None else size
        proof = self.tree.consistency_proof(old, size) if 0 < old <= size else []
        return AddCheckpointRequest(old, tuple(proof), self.note(size, **kw)).to_bytes()


@pytest.fixture()
def witness(tmp_path) -> Witness:
    return Witness(WitnessState(tmp_path / "w.db"), {ORIGIN: [Verifier(VKEY)]},
                   cosign=fake_cosign, now=lambda: 1_700_000_000)


def test_first_checkpoint_old_zero_then_extension(witness) -> None:
    log = Log(5)
    r = witness.add_checkpoint(log.request(0))
    assert r.status == 200, r.body
    assert r.body.startswith("\u2014 witness.test/w1 ".encode())
    log.grow(7)
    r = witness.add_checkpoint(log.request(5))
    assert r.status == 200, r.body
    size, root, note = witness.state.latest(ORIGIN)
    assert (size, root) == (12, log.tree.root())
    _text, sigs = parse_note(note)  # stored note carries the witness's cosignature
    assert {s.name for s in sigs} == {ORIGIN, "witness.test/w1"}


def test_same_checkpoint_again_is_cosigned(witness) -> None:
    log = Log(3)
    assert witness.add_checkpoint(log.request(0)).status == 200
    assert witness.add_checkpoint(log.request(3)).status == 200


def test_empty_tree_checkpoint(witness) -> None:
    log = Log(0)
    assert witness.add_checkpoint(log.request(0)).status == 200


def test_409_returns_the_witness_size(witness) -> None:
    log = Log(4)
    assert witness.add_checkpoint(log.request(0)).status == 200
    log.grow(4)
    r = witness.add_checkpoint(log.request(2))
    assert (r.status, r.content_type, r.body) == (409, SIZE_CONTENT_TYPE, b"4\n")
    r = witness.add_checkpoint(log.request(0))  # a client with no state learns the size
    assert (r.status, r.body) == (409, b"4\n")


def test_same_size_different_root_is_409_and_evidence(witness) -> None:
    log = Log(4)
    assert witness.add_checkpoint(log.request(0)).status == 200
    fork = Log(4, tag=b"fork")
    r = witness.add_checkpoint(fork.request(4))
    assert (r.status, r.body) == (409, b"4\n")
    assert witness.state.latest(ORIGIN)[1] == log.tree.root()
    assert witness.state.evidence(ORIGIN)[0]["reason"] == "same size, different root"


def test_fork_is_422_and_kept_as_evidence(witness) -> None:
    """A log that signs a larger tree which does not extend the cosigned one: the proof
    cannot verify against the witness's stored root."""
    honest = Log(6)
    assert witness.add_checkpoint(honest.request(0)).status == 200
    fork = Log(6, tag=b"fork")
    fork.grow(4)
    r = witness.add_checkpoint(fork.request(6))
    assert r.status == 422, r.body
    assert witness.state.latest(ORIGIN)[0] == 6
    ev = witness.state.evidence(ORIGIN)
    assert ev and ev[0]["stored_size"] == 6 and ev[0]["request"] == fork.request(6)


def test_non_empty_proof_from_zero_is_422(witness) -> None:
    log = Log(4)
    req = AddCheckpointRequest(0, (bytes(32),), log.note()).to_bytes()
    assert witness.add_checkpoint(req).status == 422


def test_size_zero_with_wrong_root_is_422(witness) -> None:
    log = Log(0)
    assert witness.add_checkpoint(
        AddCheckpointRequest(0, (), log.note(root=bytes(32))).to_bytes()).status == 422


def test_bit_flipped_proof_is_422(witness) -> None:
    log = Log(5)
    assert witness.add_checkpoint(log.request(0)).status == 200
    log.grow(9)
    proof = log.tree.consistency_proof(5)
    bad = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    req = AddCheckpointRequest(5, (bad, *proof[1:]), log.note()).to_bytes()
    assert witness.add_checkpoint(req).status == 422
    short = AddCheckpointRequest(5, tuple(proof[:-1]), log.note()).to_bytes()
    assert witness.add_checkpoint(short).status == 422
    assert witness.add_checkpoint(log.request(5)).status == 200


def test_old_greater_than_size_is_400(witness) -> None:
    log = Log(3)
    req = AddCheckpointRequest(4, (), log.note()).to_bytes()
    assert witness.add_checkpoint(req).status == 400


def test_unknown_origin_is_404(witness) -> None:
    skey, _ = generate_keys("example.com/other")
    cp = Checkpoint("example.com/other", 0, merkle.EMPTY_ROOT)
    req = AddCheckpointRequest(0, (), sign_checkpoint(cp, Signer(skey))).to_bytes()
    assert witness.add_checkpoint(req).status == 404


def test_untrusted_signature_is_403(witness) -> None:
    log = Log(2)
    assert witness.add_checkpoint(log.request(0, skey=OTHER_SKEY)).status == 403


def test_bad_signature_of_trusted_key_is_403(witness) -> None:
    log = Log(2)
    note = bytearray(log.note())
    note[-5] ^= 1
    req = AddCheckpointRequest(0, (), bytes(note)).to_bytes()
    assert witness.add_checkpoint(req).status in (400, 403)
    text, sigs = parse_note(log.note())
    bad = text + b"\n" + sigs[0].line().replace(sigs[0].line()[-10:-6], b"AAAA")
    req = AddCheckpointRequest(0, (), bad).to_bytes()
    assert witness.add_checkpoint(req).status == 403


@pytest.mark.parametrize("body", [
    b"",
    b"old 1\n",
    b"old 01\n\nx",
    b"old +1\n\nx",
    b"new 1\n\nx",
    b"old 0\nnot-base64!\n\nx",
    b"old 0\nAAAA\n\nx",
    b"old 0\n\n",
    b"old 0\n" + b"".join([base64.b64encode(bytes(32)) + b"\n"] * 64) + b"\n" + b"x",
])
def test_malformed_bodies_are_400(witness, body) -> None:
    assert witness.add_checkpoint(body).status == 400


def test_malformed_checkpoint_text_is_400(witness) -> None:
    signer = Signer(SKEY)
    from transparency_log.core.note import sign_note

    note = sign_note(f"{ORIGIN}\n01\nAAAA\n".encode(), [signer])
    assert witness.add_checkpoint(b"old 0\n\n" + note).status == 400


def test_spec_example_request_parses() -> None:
    v = load_json_vector("tlog", "witness", "c2sp_tlog_witness_examples.json")
    req = parse_add_checkpoint(v["add_checkpoint_request_body"].encode())
    want = v["expected_parse"]
    assert req.old_size == want["old_size"] and len(req.proof) == want["proof_len"]
    assert req.checkpoint_note.startswith(want["origin"].encode())
    assert req.to_bytes() == v["add_checkpoint_request_body"].encode()


def test_state_survives_restart(tmp_path) -> None:
    log = Log(3)
    w1 = Witness(WitnessState(tmp_path / "w.db"), {ORIGIN: [Verifier(VKEY)]}, fake_cosign,
                 lambda: 1)
    assert w1.add_checkpoint(log.request(0)).status == 200
    w2 = Witness(WitnessState(tmp_path / "w.db"), {ORIGIN: [Verifier(VKEY)]}, fake_cosign,
                 lambda: 2)
    assert w2.add_checkpoint(log.request(0)).body == b"3\n"


def test_concurrent_requests_never_roll_back(tmp_path) -> None:
    """The spec's race: requests for N and N+K from the same old size. Exactly one wins and
    the stored size never goes back."""
    log = Log(4)
    db = tmp_path / "w.db"
    w = Witness(WitnessState(db), {ORIGIN: [Verifier(VKEY)]}, fake_cosign, lambda: 1)
    assert w.add_checkpoint(log.request(0)).status == 200
    log.grow(60)
    reqs = [log.request(4, size) for size in range(5, 65)]
    statuses: list[int] = []

    def run(body: bytes) -> None:
        statuses.append(w.add_checkpoint(body).status)

    threads = [threading.Thread(target=run, args=(b,)) for b in reqs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(200) == 1 and statuses.count(409) == len(reqs) - 1
    assert w.state.latest(ORIGIN)[0] > 4


def test_http_statuses(witness) -> None:
    log = Log(3)
    with serve_in_thread(create_witness_app(witness, max_body=4096)) as (host, port):
        base = f"http://{host}:{port}"
        r = requests.post(base + "/add-checkpoint", data=log.request(0), timeout=10)
        assert r.status_code == 200 and r.content.startswith("\u2014".encode())
        r = requests.post(base + "/add-checkpoint", data=log.request(1), timeout=10)
        assert r.status_code == 409 and r.headers["content-type"] == SIZE_CONTENT_TYPE
        assert r.text == "3\n"
        r = requests.post(base + "/add-checkpoint", data=b"x" * 5000, timeout=10)
        assert r.status_code == 413
        assert requests.get(base + "/add-checkpoint", timeout=10).status_code == 405
        assert requests.get(base + "/../etc/passwd", timeout=10).status_code == 404
        r = requests.post(base + "/add-checkpoint", data=b"garbage", timeout=10)
        assert r.status_code == 400 and r.text.count("\n") == 1
