"""One call that stands up a whole simulated world in-process, for verifier tests and the demo.

:func:`make_node_fixture` builds, under a directory, with keys derived from fixed seeds:

- a release log (SQLite, :class:`transparency_log.log.lifecycle.Log`) signed by the log key, its
  checkpoint cosigned by two witnesses through the library (no HTTP), and the C2SP
  tlog-tiles tree published to ``<dir>/tiles`` (a
  :func:`transparency_log.client.log_client.directory_source`
  for clients that mirror the log);
- a release entry (DSSE, signed by the release key) whose measurements are those of a
  :class:`~attest.simulate.platform.SimulatedPlatform`, logged;
- an evidence bundle from that platform for a nonce, stapling the entry and its tlog-proof;
- the client policy (TOML text) naming the log key, the witnesses (2 of 2), the release key
  and ``unsafe_allow_simulated_hardware = true``, and the simulated roots (``trust``).

``case`` selects a refusal a client must make (the check id it should name in brackets):

==================== ===========================================================================
``ok``               everything verifies
``unlogged``         the node's release was never logged; the bundle staples another
                     release's proof (``log.inclusion``)
``revoked``          the release is logged and then revoked; the checkpoint covers both
                     (``release.revoked``, with a mirror of ``tiles``)
``no_quorum``        only one of the two witnesses cosigned (``log.witness.quorum``)
``stale_checkpoint`` the cosignatures are three days old, the policy allows one
                     (``log.checkpoint.age``)
``forked_log``       the bundle's checkpoint is from a fork of the same size signed by the
                     same key; ``previous_checkpoint`` is the honest one to seed the client's
                     last-seen store with (``log.consistency``)
==================== ===========================================================================

Platform knobs (``debug``, ``tcb_below_minimum``, ``claim_cc_mode``, ``missing_gpu``,
``forge`` ...) pass through ``platform_options`` for the evidence refusals.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from attest.bundle_builder import build_bundle
from attest.formats.bundle import EvidenceBundle
from attest.private.hpke import PrivateKey
from attest.private.ohttp import GatewayKey
from attest.release.dsse import entry_digest, entry_statement_digest, sign_statement
from attest.release.keys import ReleaseSigningKey
from attest.release.measurements import GpuAllowList, Measurements, SnpMeasurement, TdxMeasurement
from attest.release.statement import Artifact, Release, Revocation, Subject
from attest.simulate.platform import SIM_NOW, SimulatedPlatform, SimulatedTrust
from transparency_log.core.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.core.cosignature import CosignatureSigner, cosignature, generate_cosigner_keys
from transparency_log.core.note import Signer, append_signatures, generate_keys
from transparency_log.log.lifecycle import Log
from transparency_log.log.publish import publish_tiles
from transparency_log.log.storage.sqlite import SqliteStorage

__all__ = [
    "CASES",
    "LOG_ORIGIN",
    "NodeFixture",
    "make_node_fixture",
    "policy_toml",
    "release_key",
    "simulated_release",
]

CASES = ("ok", "unlogged", "revoked", "no_quorum", "stale_checkpoint", "forked_log")
LOG_ORIGIN = "log.attestlog.test/releases"
WITNESS_NAMES = ("witness0.attestlog.test", "witness1.attestlog.test")
SIM_VCPUS = 4
SIM_VCPU_TYPE = "EPYC-v4"
MAX_CHECKPOINT_AGE = 86400


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"attestlog/node-fixture/" + label.encode()).digest()


def release_key(label: str = "release") -> ReleaseSigningKey:
    """The fixture's deterministic Ed25519 release key."""
    return ReleaseSigningKey(ed25519.Ed25519PrivateKey.from_private_bytes(_seed(label)))


def simulated_release(platform: SimulatedPlatform, *, commit_seed: str = "build-1",
                      name: str = "attestlog-sim-node.img",
                      extra_artifacts: tuple[Artifact, ...] = ()) -> Release:
    """A release statement listing ``platform``'s launch measurements (SNP and TDX) and its
    GPU driver/VBIOS versions, for a made-up image and commit, with ``extra_artifacts`` after
    the image (e.g. a real artifact by its SHA-256, for a real Sigstore bundle over it)."""
    m = platform.measurements
    assert m is not None
    image = hashlib.sha256(b"image/" + commit_seed.encode()).digest()
    return Release(
        subjects=(Subject(name, image),),
        repository="https://github.com/attestlog/sim-node",
        commit=hashlib.sha1(commit_seed.encode()).hexdigest(),  # noqa: S324 (a made-up commit id)
        builder="https://attestlog.dev/builders/simulated",
        artifacts=(Artifact("disk", name, image), *extra_artifacts),
        measurements=Measurements(
            snp=(SnpMeasurement(SIM_VCPUS, SIM_VCPU_TYPE, "qemu", m["measurement"]),),
            tdx=TdxMeasurement(m["mrtd"], m["rtmr0"], m["rtmr1"], m["rtmr2"]),
            gpu=GpuAllowList((platform.gpu_driver,), (platform.gpu_vbios,))))


def policy_toml(*, log_vkey: str, witness_vkeys: list[str], quorum: int, release_key_text: str,
                gpus: int, gpu_driver: str, gpu_vbios: str,
                max_checkpoint_age: int = MAX_CHECKPOINT_AGE,
                revocations: str = "mirror") -> str:
    """The client policy for a simulated world (docs/policy.md)."""
    witnesses = ", ".join(f'"{v}"' for v in witness_vkeys)
    return f"""\
# Client policy for a SIMULATED node (attest.simulate.node_fixture): never use in production.
version = 1
unsafe_allow_simulated_hardware = true
waive = ["log.consistency"]

[log]
origin = "{LOG_ORIGIN}"
vkey = "{log_vkey}"
witnesses = [{witnesses}]
quorum = {quorum}
max_checkpoint_age = {max_checkpoint_age}
revocations = "{revocations}"

[release]
keys = ["{release_key_text.strip()}"]
threshold = 1

[evidence]
cpu = ["sev-snp", "tdx"]
gpu_required = {"true" if gpus else "false"}
all_gpus_cc = true

[snp]
allow_debug = false
[snp.min_tcb]
boot_loader = 3
tee = 0
snp = 8
microcode = 115

[tdx]
accepted_tcb_statuses = ["UpToDate"]
allow_debug = false

[gpu]
require_cc_mode = true
require_all_attached = true
driver_versions = ["{gpu_driver}"]
vbios_versions = ["{gpu_vbios}"]
"""


@dataclass
class NodeFixture:
    """Everything a verifier test needs (see :func:`make_node_fixture`)."""

    case: str
    bundle: bytes
    decoded: EvidenceBundle
    policy_toml: str
    trust: SimulatedTrust
    platform: SimulatedPlatform
    nonce: bytes
    node_key: bytes
    now: datetime
    release_entry: bytes
    release_digest: bytes
    tlog_proof: bytes
    log_vkey: str
    witness_vkeys: list[str]
    release_public_key: str
    entries: list[bytes]
    tiles_dir: Path
    directory: Path
    previous_checkpoint: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    ohttp_key: GatewayKey | None = None  # the HPKE request key the bundle binds

    def append_entries(self, entries: list[bytes], *, timestamp: int | None = None) -> bytes:
        """Log more entries (e.g. a revocation made after the node booted): sequence them,
        sign and cosign (both witnesses) a new checkpoint, republish ``tiles_dir``. Returns
        the new checkpoint note."""
        storage = SqliteStorage(self.directory / "log.db")
        try:
            log = Log(storage, LOG_ORIGIN)
            log.add(entries)
            self.entries.extend(entries)
            ts = int(self.now.timestamp()) - 30 if timestamp is None else timestamp
            note = _cosigned(log, _log_signer(), _witness_signers(), ts)
            storage.write_checkpoint(log.tree_state().size, note)
            publish_tiles(log, self.tiles_dir)
        finally:
            storage.close()
        return note

    def revoke(self, reason: str = "simulated: revoked after boot") -> bytes:
        """Log a revocation of this fixture's release; returns the new checkpoint note."""
        revocation = sign_statement(
            Revocation.of_statement(entry_statement_digest(self.release_entry), reason),
            [release_key()])
        return self.append_entries([revocation.encode()])

    def write(self) -> dict[str, Path]:
        """Write bundle, policy and trust into the directory; returns their paths."""
        paths = {"bundle": self.directory / "bundle.cbor",
                 "policy": self.directory / "policy.toml",
                 "trust": self.directory / "simulated-trust.json"}
        paths["bundle"].write_bytes(self.bundle)
        paths["policy"].write_text(self.policy_toml, encoding="utf-8")
        paths["trust"].write_bytes(self.trust.to_json())
        return paths


def _log_signer() -> Signer:
    return Signer(generate_keys(LOG_ORIGIN, _seed("log"))[0])


def _witness_signers() -> list[CosignatureSigner]:
    return [CosignatureSigner(generate_cosigner_keys(name, _seed(name))[0])
            for name in WITNESS_NAMES]


def _node_key() -> bytes:
    key = ec.derive_private_key(int.from_bytes(_seed("node-key"), "big") % (2**255) + 1,
                                ec.SECP256R1())
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def _ohttp_key() -> GatewayKey:
    """The node's HPKE request key (RFC 9180 DeriveKeyPair from a fixed seed; Key Identifier
    1): a test can decapsulate what a client encapsulated to the bundle's key."""
    return GatewayKey(1, PrivateKey.derive(_seed("ohttp-key")))


def _cosigned(log: Log, signer: Signer, witnesses: list[CosignatureSigner],
              timestamp: int) -> bytes:
    state = log.integrate()
    cp = Checkpoint(log.origin, state.size, state.root)
    note = sign_checkpoint(cp, signer)
    return append_signatures(note, [cosignature(cp.to_text(), w, timestamp)
                                    for w in witnesses])


def make_node_fixture(directory: str | os.PathLike[str], *, case: str = "ok",
                      cpu: str = "sev-snp", gpus: int = 1, now: datetime = SIM_NOW,
                      nonce: bytes | None = None,
                      platform_options: dict[str, Any] | None = None,
                      extra_artifacts: tuple[Artifact, ...] = (),
                      sigstore_bundle: bytes | None = None) -> NodeFixture:
    """Build the log, the release, the bundle and the policy (module docstring).
    ``extra_artifacts`` are listed in the release; ``sigstore_bundle`` is stapled."""
    if case not in CASES:
        raise ValueError(f"case must be one of {CASES}, got {case!r}")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    platform = SimulatedPlatform(cpu=cpu, gpus=gpus, now=now, seed=b"attestlog-sim-node",
                                 **(platform_options or {}))
    signer = _log_signer()
    vkey = signer.verifier_key()
    witness_keys = [generate_cosigner_keys(name, _seed(name)) for name in WITNESS_NAMES]
    witnesses = _witness_signers()
    rkey = release_key()

    entry = sign_statement(simulated_release(platform, extra_artifacts=extra_artifacts),
                           [rkey]).encode()
    other = sign_statement(simulated_release(
        SimulatedPlatform(cpu=cpu, gpus=0, seed=b"another-build"), commit_seed="build-0"),
        [rkey]).encode()
    storage = SqliteStorage(root / "log.db")
    log = Log(storage, LOG_ORIGIN)
    entries = [other] if case == "unlogged" else [other, entry]
    if case == "revoked":
        entries.append(sign_statement(Revocation.of_statement(
            entry_statement_digest(entry), "simulated: key leak"), [rkey]).encode())
    log.add(entries)
    timestamp = int(now.timestamp()) - 60
    if case == "stale_checkpoint":
        timestamp -= 3 * 86400
    cosigners = witnesses[:1] if case == "no_quorum" else witnesses
    note = _cosigned(log, signer, cosigners, timestamp)
    storage.write_checkpoint(len(entries), note)
    index = 0 if case == "unlogged" else 1
    proof = log.prove(index).to_text()
    tiles_dir = root / "tiles"
    publish_tiles(log, tiles_dir)
    previous = None
    if case == "forked_log":
        previous = note
        fork_storage = SqliteStorage(root / "fork.db")
        fork = Log(fork_storage, LOG_ORIGIN)
        fork.add([other + b" ", entry])  # same size, another first entry: a split view
        fork_storage.write_checkpoint(2, _cosigned(fork, signer, witnesses, timestamp))
        proof = fork.prove(1).to_text()
        fork_storage.close()
    storage.close()

    nonce = nonce if nonce is not None else _seed("nonce")
    node_key = _node_key()
    ohttp_key = _ohttp_key()
    bundle = build_bundle(platform, nonce, node_key, entry, proof, simulated=True,
                          sigstore_bundle=sigstore_bundle, ohttp_keys=ohttp_key.ohttp_keys())
    policy = policy_toml(log_vkey=vkey, witness_vkeys=[v for _, v in witness_keys], quorum=2,
                         release_key_text=rkey.public.to_text(), gpus=gpus,
                         gpu_driver=platform.gpu_driver, gpu_vbios=platform.gpu_vbios)
    return NodeFixture(case=case, bundle=bundle.encode(), decoded=bundle, policy_toml=policy,
                       trust=platform.trust(), platform=platform, nonce=nonce,
                       node_key=node_key, now=now, release_entry=entry,
                       release_digest=entry_digest(entry), tlog_proof=proof, log_vkey=vkey,
                       witness_vkeys=[v for _, v in witness_keys],
                       release_public_key=rkey.public.to_text(), entries=entries,
                       tiles_dir=tiles_dir, directory=root, previous_checkpoint=previous,
                       ohttp_key=ohttp_key)

