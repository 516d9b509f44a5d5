"""What a vendor's pipeline stage gets for one evidence item: the bundle, the policy, the
time, the trust roots, the caches, network access, the transcript, and one list of the
collateral the run used (verifier/pipeline.py, step 2; docs/verification.md "Collateral").

One StageContext per verification: it is not shared between threads. The hooks it hands to
fetchers (:meth:`StageContext.obtained`) are passed per call, never set on a shared client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from attest.formats.bundle import EvidenceBundle
from transparency_log.common.http_fetch import Fetch
from verifier.collateral_window import CollateralUse, describe_collateral
from verifier.policy_base import FailureCollector
from verifier.transcript import Transcript

if TYPE_CHECKING:
    from verifier.gpu.policy import GpuFacts
    from verifier.pipeline_trust import TrustRoots, VerifierCaches
    from verifier.policy import Policy

__all__ = ["StageContext"]


@dataclass
class StageContext:
    """The state of one run's evidence stages (the Result keeps ``uses`` and ``gpu_facts``)."""

    bundle: EvidenceBundle
    policy: Policy
    at: datetime
    roots: TrustRoots
    caches: VerifierCaches
    fetch: Fetch | None
    t: Transcript
    uses: list[CollateralUse] = field(default_factory=list)
    gpu_facts: list[GpuFacts] = field(default_factory=list)  # what [gpu] judges, per GPU
    failures: FailureCollector = field(default_factory=FailureCollector)
    described: set[str] = field(default_factory=set)

    def collateral(self, name: str, used_by: str) -> bytes:
        """A stapled blob by name, listed once in the transcript (the first user named)."""
        data = self.bundle.collateral[name]
        if name not in self.described:
            self.described.add(name)
            self.uses.append(describe_collateral(name, data, used_by))
        return data

    def current(self, name: str, used_by: str) -> bytes | None:
        """A stapled blob, or None when it is stale at ``at`` (past its nextUpdate / notAfter)
        and this run may fetch: the caller then obtains it like unstapled collateral. Offline
        a stale blob is returned and refused by its own check."""
        data = self.collateral(name, used_by)
        if self.fetch is None:
            return data
        until = describe_collateral(name, data).not_after
        try:
            stale = until is not None and datetime.fromisoformat(until) < self.at
        except ValueError:
            stale = False
        if stale:
            with self.t.about(used_by):
                self.t.passed("collateral.stale",
                              f"stapled {name} expired {until}; fetching a current one")
        return None if stale else data

    def obtained(self, used_by: str) -> Callable[[str, str, bytes], None]:
        """A fetcher's ``on_get`` hook: list what came from the cache or the network (by its
        URL or RIM id) in the transcript's collateral, with its source."""
        def record(name: str, source: str, data: bytes) -> None:
            self.uses.append(describe_collateral(name, data, used_by, source))
        return record

    def cert(self, role: str, der: bytes, used_by: str) -> bytes:
        self.uses.append(describe_collateral(f"{used_by}.certs.{role}", der,
                                                          used_by))
        return der
