"""The outcome of one verification (verifier/pipeline.py): the verdict, the transcript and
everything the verdict rested on; its JSON form is docs/verification.md "Transcript JSON"."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from attest.formats.bundle import EvidenceBundle, GpuEvidence, SnpEvidence, TdxEvidence
from attest.formats.ohttp import KeyConfig
from attest.release.dsse import VerifiedEntry
from attest.release.statement import Release
from transparency_log.common.errors import AttestlogError
from verifier.collateral_window import CollateralUse
from verifier.gpu.evidence import GpuEvidenceResult
from verifier.gpu.policy import GpuFacts
from verifier.log_checks import LogResult
from verifier.ohttp_keys import attested_key_config
from verifier.snp.verify import SnpVerification
from verifier.tdx.evidence import TdxResult
from verifier.transcript import Transcript

__all__ = ["ACCEPTED", "REFUSED", "MatchedMeasurement", "Result", "item_name"]

ACCEPTED = "accepted"
REFUSED = "refused"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class MatchedMeasurement:
    """A node measurement that matched the logged release: which, its value, and the
    release's entry it matched (e.g. the SNP vCPU configuration)."""

    kind: str  # "sev-snp" | "tdx" | "nvidia-gpu"
    field: str  # spec name: MEASUREMENT, MRTD, RTMR0..2, GPU-<i>.DRIVER_VERSION ...
    value: str  # hex, or a version string
    release_entry: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "field": self.field, "value": self.value,
                "release_entry": self.release_entry}


@dataclass
class Result:
    """The outcome of one verification (accepted or refused) and everything it rested on."""

    transcript: Transcript
    at: datetime
    policy_digest: bytes
    bundle_sha256: bytes
    bundle: EvidenceBundle | None = None
    release_entry: VerifiedEntry | None = None
    log: LogResult | None = None
    measurements: list[MatchedMeasurement] = field(default_factory=list)
    collateral: list[CollateralUse] = field(default_factory=list)
    snp: SnpVerification | None = None
    tdx: TdxResult | None = None
    gpus: list[GpuEvidenceResult] = field(default_factory=list)
    gpu_facts: list[GpuFacts] = field(default_factory=list)  # what [gpu] judged, per GPU

    @property
    def error(self) -> AttestlogError | None:
        return self.transcript.error

    @property
    def verdict(self) -> str:
        return self.transcript.verdict

    @property
    def accepted(self) -> bool:
        return self.verdict == ACCEPTED

    @property
    def release(self) -> Release | None:
        stmt = self.release_entry.statement if self.release_entry is not None else None
        return stmt if isinstance(stmt, Release) else None

    @property
    def node_key(self) -> bytes | None:
        """The node's key (DER SPKI) — pin the TLS connection to it only when accepted."""
        return self.bundle.node_key if self.bundle is not None else None

    @property
    def ohttp_key_config(self) -> KeyConfig:
        """The node's attested HPKE key configuration to encapsulate private requests to
        (:func:`verifier.ohttp_keys.attested_key_config`: refused with ``binding.ohttp_keys``
        unless this Result is accepted and its evidence binds one)."""
        return attested_key_config(self)

    def to_json(self) -> dict[str, Any]:
        """The transcript (docs/verification.md, "Transcript JSON")."""
        out: dict[str, Any] = {
            "verdict": self.verdict,
            "at": self.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "policy_sha256": self.policy_digest.hex(),
            "bundle_sha256": self.bundle_sha256.hex(),
        }
        b = self.bundle
        if b is not None:
            out["bundle"] = {"nonce": b.nonce.hex(), "node_key_sha256": _sha(b.node_key),
                             "simulated": b.simulated,
                             "evidence": [item_name(e) for e in b.evidence],
                             "gpu_state": {"cc_mode": b.gpu_state.cc_mode,
                                           "attached": b.gpu_state.attached}}
        out["steps"] = self.transcript.to_dict()["steps"]
        out["collateral"] = [c.to_dict() for c in self.collateral]
        if self.release_entry is not None:
            rel: dict[str, Any] = {"entry_digest": self.release_entry.digest.hex(),
                                   "signers": list(self.release_entry.signers)}
            if self.release is not None:
                rel.update(repository=self.release.repository, commit=self.release.commit,
                           subjects=[s.to_json() for s in self.release.subjects])
            out["release"] = rel
        if self.log is not None:
            cp = self.log.checkpoint
            out["log"] = {"origin": cp.origin, "size": cp.size, "root": cp.root.hex(),
                          "cosigned": dict(sorted(self.log.quorum.cosigned.items())),
                          "checkpoint_age_s": self.log.checkpoint_age}
        out["measurements"] = [m.to_dict() for m in self.measurements]
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out


def item_name(item: SnpEvidence | TdxEvidence | GpuEvidence) -> str:
    return f"{item.TYPE}[{item.index}]" if isinstance(item, GpuEvidence) else item.TYPE
