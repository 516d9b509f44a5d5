"""Shared helpers for the TDX tests: real vectors (tests/vectors/tdx) and the simulator."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from attest.simulate.tdx import IntelSimulator
from tests.support.vectors import vector_path
from verifier.tdx.collateral import TdxCollateral, VerificationTimes
from verifier.tdx.evidence import TdxResult, verify_tdx_evidence
from verifier.tdx.policy import TdxPolicy
from verifier.transcript import Transcript
from verifier.x509chain import PinnedRoot, fingerprint, pinned_root

GTG = "go-tdx-guest"
SPR_E4 = "tdx_prod_quote_SPR_E4.dat"
V5 = "quote_v5_sample.dat"
GCP = "ccel_cos-113-tdx-quote.dat"
REAL_QUOTES = (SPR_E4, V5, GCP)
SIM_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def read(name: str) -> bytes:
    return vector_path("tdx", GTG, name).read_bytes()


def real_collateral(tcb_info: str) -> TdxCollateral:
    """The go-tdx-guest collateral with the named TCB Info response."""
    return TdxCollateral(
        tcb_info=read(tcb_info), tcb_info_issuer_chain=read("tcb_info_issuer_chain.pem"),
        qe_identity=read("sample_qeIdentity_response"),
        qe_identity_issuer_chain=read("qe_identity_issuer_chain.pem"),
        pck_crl=read("pckcrl"), pck_crl_issuer_chain=read("pck_crl_issuer_chain.pem"),
        root_crl=read("rootcrl.der"))


# Every item of the SPR_E4 collateral is current on 2023-06-20 (MANIFEST "Time consistency").
SPR_E4_TIME = utc("2023-06-20")

# The v5 quote: its PCK leaf and TCB Info are current on 2026-02-03; the TCB signing
# certificate we hold expired 2025-05-21 (Intel re-issued it with the same key), and the
# QE identity and CRLs are from 2023: each item gets its own instant.
V5_TIMES = VerificationTimes.uniform(utc("2026-02-03")).override(
    tcb_signing_chain=utc("2025-05-01"), qe_identity=utc("2023-07-01"),
    pck_crl=utc("2023-07-01"), root_crl=utc("2024-01-01"))


def sim(**kwargs: object) -> IntelSimulator:
    return IntelSimulator(now=SIM_NOW, **kwargs)  # type: ignore[arg-type]


def sim_root(s: IntelSimulator) -> PinnedRoot:
    return pinned_root("simulated root", s.root_pem, fingerprint(s.root_cert).hex())


def sim_collateral(s: IntelSimulator, **replace: bytes) -> TdxCollateral:
    values = asdict(s.collateral())
    values.update(replace)
    return TdxCollateral(**values)


def verify_judged(quote: bytes, collateral: TdxCollateral, *, policy: TdxPolicy | None = None,
                  transcript: Transcript | None = None, **kwargs: object) -> TdxResult:
    """What ``verifier tdx`` does: verify (authenticity), then judge with ``policy``
    (default ``TdxPolicy()``), recording the policy step in the same transcript."""
    t = transcript if transcript is not None else Transcript()
    result = verify_tdx_evidence(quote, collateral, transcript=t, **kwargs)  # type: ignore[arg-type]
    (policy if policy is not None else TdxPolicy()).apply(result, t)
    return result
