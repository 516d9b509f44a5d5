"""Issue 15: making the warm full-bundle path cheaper changed no step. The simulated node of
bench/verify_bench.py (SEV-SNP + 8 H100s, a release in a local log, the checkpoint cosigned by
2 witnesses, a synced revocation mirror, a checkpoint store) is verified cold (fresh caches,
parse memos cleared) and then warm (the same caches again); both transcripts must equal the
ones recorded before the change (tests/assets/transcripts/bundle_8gpu.json): steps (check id,
result, subject, detail, inputs) and the collateral listing, except ``source=cache`` markers.

The bundle's digest and its ECDSA signatures change with each build of the fixture, so the
comparison leaves out what depends on them: ``bundle_sha256`` and input digests are compared
between the cold and the warm run of one build, not with the recording.

Regenerate the asset only on purpose (a deliberate change of a step):
``.venv/bin/python -m tests.test_bundle_transcript_stable --write``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from attest.formats.bundle import EvidenceBundle, decode_bundle, encode_bundle
from attest.simulate.node_fixture import NodeFixture, make_node_fixture
from bench.vendor_ratio import clear_parse_memos
from tests.support.vectors import ASSETS
from transparency_log.client.checkpoint_store import CheckpointStore
from transparency_log.client.log_client import LogClient, directory_source
from transparency_log.common.errors import AttestlogError
from verifier.pipeline import verify_bundle
from verifier.pipeline_trust import VerifierCaches, VerifierTrust
from verifier.policy import Policy, parse_policy
from verifier.result import Result
from verifier.revocations import RevocationMirror

GOLDEN = ASSETS / "transcripts" / "bundle_8gpu.json"
GPUS = 8
OCSP_PREFIX = "nvidia/ocsp/"


class Node:
    """The bench's node and client state, in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.fx: NodeFixture = make_node_fixture(directory / "node", gpus=GPUS)
        self.policy: Policy = parse_policy(
            self.fx.policy_toml.replace('waive = ["log.consistency"]\n', "").encode())
        self.trust = VerifierTrust.production().with_simulated(self.fx.trust)
        self.mirror = RevocationMirror(directory / "mirror", self.policy.log.origin,
                                       self.policy.release)
        client = LogClient(directory_source(self.fx.tiles_dir), self.policy.log.verifier,
                           origin=self.policy.log.origin)
        cp = client.checkpoint().checkpoint
        self.mirror.sync(cp, lambda a, b: [e for _, e in client.entries(a, b, cp.size)])
        self.store = CheckpointStore(directory / "checkpoints")

    def verify(self, caches: VerifierCaches, bundle: bytes | None = None) -> Result:
        return verify_bundle(self.fx.bundle if bundle is None else bundle, self.policy,
                             at=self.fx.now, expected_nonce=self.fx.nonce, trust=self.trust,
                             caches=caches, checkpoint_store=self.store,
                             revocations=self.mirror)


def runs(node: Node) -> dict[str, dict[str, Any]]:
    """The cold and the warm transcript (Result.to_json) of one build of the node. A first
    run stores the checkpoint (client state, not a cache), so both then see the same store."""
    node.verify(VerifierCaches())
    caches = VerifierCaches()
    clear_parse_memos()
    cold = node.verify(caches).to_json()
    warm = node.verify(caches).to_json()
    return {"cold": cold, "warm": warm}


def _without_cache_marker(doc: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    for s in doc["steps"]:
        inputs = {k: v for k, v in s.pop("inputs", {}).items() if (k, v) != ("source", "cache")}
        if inputs:
            s["inputs"] = inputs
    for c in doc["collateral"]:
        c.pop("source")  # stapled | cache | fetched: where it came from, not what it is
    return doc


def _build_independent(doc: dict[str, Any]) -> dict[str, Any]:
    """What does not depend on the build's random ECDSA nonces: no digests of signed bytes."""
    doc = _without_cache_marker(doc)
    doc.pop("bundle_sha256")
    for s in doc["steps"]:
        s.pop("inputs", None)
    for c in doc["collateral"]:
        c.pop("sha256")
        if c["name"].startswith(OCSP_PREFIX):  # named by the digest of the signed answer
            c["name"] = OCSP_PREFIX + "<sha256>"
    doc["collateral"].sort(key=lambda c: json.dumps(c, sort_keys=True))
    return doc


def test_warm_transcript_equals_the_cold_one_but_for_cache_markers(tmp_path: Path) -> None:
    got = runs(Node(tmp_path))
    assert got["cold"]["verdict"] == "accepted"
    assert _without_cache_marker(got["warm"]) == _without_cache_marker(got["cold"])


def test_cold_and_warm_transcripts_equal_the_recorded_ones(tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text())
    got = runs(Node(tmp_path))
    for run in ("cold", "warm"):
        assert _build_independent(got[run]) == _build_independent(golden[run]), run


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


def _changed(bundle: EvidenceBundle, what: str) -> bytes:
    """The bundle with one thing changed that a warm cache has seen unchanged before."""
    if what == "gpu report":  # the last byte of GPU 3's report signature
        items = list(bundle.evidence)
        gpu = bundle.gpu_evidence[3]
        items[items.index(gpu)] = replace(gpu, report=_flip(gpu.report, len(gpu.report) - 1))
        return encode_bundle(replace(bundle, evidence=tuple(items)))
    if what == "release entry":  # one byte of the signed DSSE payload
        return encode_bundle(replace(bundle, release=_flip(bundle.release,
                                                           len(bundle.release) // 2)))
    if what == "checkpoint signature":  # one base64 letter of the note's first signature
        dash = bundle.tlog_proof.index("\n\u2014 ".encode())
        at = bundle.tlog_proof.index(b"\n", dash + 1) - 5
        letter = b"B" if bundle.tlog_proof[at:at + 1] == b"A" else b"A"
        proof = bundle.tlog_proof[:at] + letter + bundle.tlog_proof[at + 1:]
        return encode_bundle(replace(bundle, tlog_proof=proof))
    assert what == "checkpoint root"  # one byte of the checkpoint note's root hash text
    note_at = bundle.tlog_proof.index(b"\n", bundle.tlog_proof.index(b"\n") + 1) + 1
    return encode_bundle(replace(bundle, tlog_proof=_flip(bundle.tlog_proof, note_at + 3)))


@pytest.mark.parametrize(("what", "check"), [("gpu report", "gpu.report.signature"),
                                             ("release entry", "release.signature"),
                                             ("checkpoint root", "log.inclusion"),
                                             ("checkpoint signature", "log.signature")])
def test_a_bundle_changed_after_a_warm_run_is_refused(tmp_path: Path, what: str,
                                                      check: str) -> None:
    node = Node(tmp_path)
    caches = VerifierCaches()
    assert node.verify(caches).accepted
    assert node.verify(caches).accepted  # warm: every cache has seen this bundle
    with pytest.raises(AttestlogError) as refused:
        node.verify(caches, _changed(decode_bundle(node.fx.bundle), what))
    assert refused.value.check == check, str(refused.value)
    assert node.verify(caches).accepted  # the unchanged bundle still passes


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    with tempfile.TemporaryDirectory() as tmp:
        GOLDEN.write_text(json.dumps(runs(Node(Path(tmp))), indent=1, sort_keys=True) + "\n")
