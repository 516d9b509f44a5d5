"""Verify one TDX quote with its collateral, in a numbered, documented order: authenticity
only. No policy here: the result carries every fact the ``[tdx]`` policy judges
(:meth:`verifier.tdx.policy.TdxPolicy.check`), and the pipeline adapter is
verifier/tdx/stage.py.

Steps (each records its check id in the transcript; the first failure stops):

1. ``tdx.quote.format``            parse (attest.formats.tdx_quote)
2. ``tdx.quote.header`` ... ``tdx.quote.signature``   quote_verify.verify_quote
3. ``tdx.root_crl.*``              Root CA CRL: signature by the root, window (past its
                                   nextUpdate: ``waived`` iff the transcript's waive set
                                   names ``tdx.root_crl.validity``); the PCK CA and the TCB
                                   signing certificate are not revoked
4. ``tdx.pck_crl.*``               PCK CRL: chain, signature by the PCK CA that issued the
                                   leaf, window (waivable as step 3); the PCK leaf is not
                                   revoked
5. ``tdx.tcb_info.*``              TCB Info: chain, signature, window
6. ``tdx.qe.identity.*``           QE Identity: chain, signature, window
7. ``tdx.tcb.*``, ``tdx.qe.identity``   TCB level matching and convergence (tcb_status)
8. ``tdx.rtmr.replay``             (with an event log) the CCEL replay equals RTMR0-2

Missing collateral is a failure (a check that cannot run never passes silently).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from attest.certificates import LOADER_ERRORS, load_pem_bundle
from attest.formats.ccel import parse_event_log
from attest.formats.intel_pcs import QeIdentity, TcbInfo
from attest.formats.tdx_quote import TdReportBody, TdxQuote, parse_quote
from transparency_log.common.errors import AttestlogError, FormatError, VerificationError
from verifier.tdx.collateral import (
    TdxCollateral,
    VerificationTimes,
    require_not_revoked,
    sha256_hex,
    verify_crl,
    verify_qe_identity,
    verify_tcb_info,
)
from verifier.tdx.quote_verify import (
    QuoteAuthenticity,
    cached_inputs,
    instant_text,
    subject_text,
    verify_quote,
)
from verifier.tdx.rtmr import RtmrReplay, check_rtmrs
from verifier.tdx.tcb_status import TcbStatus, tcb_status
from verifier.tdx.verified_collateral import verified_collateral
from verifier.transcript import Transcript
from verifier.verified_cache import VendorCaches
from verifier.x509chain import PinnedRoot, fingerprint, issuer_named, verify_chain


@dataclass(frozen=True)
class TdxResult:
    quote: TdxQuote
    authenticity: QuoteAuthenticity
    tcb: TcbStatus
    transcript: Transcript
    rtmr_replay: RtmrReplay | None = None

    @property
    def body(self) -> TdReportBody:
        """The TD report body the policy judges (TDATTRIBUTES, MRTD, RTMRs, ...)."""
        return self.quote.body


def _missing(item: str) -> VerificationError:
    check = "tdx.qe.identity" if item == "qe_identity" else f"tdx.{item}"
    return VerificationError(check, "collateral missing: the check cannot run", field=item)


def verify_revocation(auth: QuoteAuthenticity, collateral: TdxCollateral, *,
                      roots: Sequence[PinnedRoot], times: VerificationTimes,
                      transcript: Transcript,
                      cache: VendorCaches | None = None) -> None:
    """Steps 3 and 4: the Root CA CRL and the PCK CRL."""
    if collateral.root_crl is None:
        raise _missing("root_crl")
    root_crl = verify_crl(collateral.root_crl, auth.root.certificate, item="root_crl",
                          at=times.root_crl, transcript=transcript,
                          cache=cache)
    require_not_revoked(root_crl, auth.pck_ca, check="tdx.root_crl.revocation", role="PCK CA")
    # The same TCB signer counts once; certificates are told apart by their SHA-256.
    signers: dict[bytes, tuple[x509.Certificate, str, str]] = {}
    for chain, check, name in (
            (collateral.tcb_info_issuer_chain, "tdx.tcb_info.chain", "tcb_info_issuer_chain"),
            (collateral.qe_identity_issuer_chain, "tdx.qe.identity.chain",
             "qe_identity_issuer_chain")):
        if chain is not None:
            for cert in load_pem_bundle(chain, check=check, field=name):
                signers.setdefault(fingerprint(cert), (cert, check, name))
    for fp, (cert, check, name) in signers.items():
        if fp == auth.root.fingerprint:
            continue
        try:  # cryptography decodes the name lazily
            issued_by_root = issuer_named(cert, auth.root.certificate)
        except LOADER_ERRORS as err:
            raise FormatError(check, f"undecodable issuer name ({err})", field=name) from None
        if issued_by_root:
            require_not_revoked(root_crl, cert, check="tdx.root_crl.revocation",
                                role="TCB Signing")
    transcript.passed("tdx.root_crl.revocation", "PCK CA and TCB signing not revoked")

    if collateral.pck_crl is None:
        raise _missing("pck_crl")
    if collateral.pck_crl_issuer_chain is not None:
        check = "tdx.pck_crl.chain"
        chain = load_pem_bundle(collateral.pck_crl_issuer_chain, check=check,
                                field="PCK CRL issuer chain")
        path, _, hit = verify_chain(chain, roots, at=times.pck_crl, check=check,
                                      roles=("PCK CA", "Intel SGX Root CA"), cache=cache)
        if (fingerprint(path[0]) != fingerprint(auth.pck_ca)
                and path[0].public_key() != auth.pck_ca.public_key()):
            raise VerificationError("tdx.pck_crl.chain",
                                    "PCK CRL issuer is not the CA that issued the PCK",
                                    field="PCK CRL issuer chain",
                                    got=subject_text(path[0], check=check, role="PCK CA"),
                                    want=subject_text(auth.pck_ca, check=check, role="PCK CA"))
        transcript.passed(check, subject_text(path[0], check=check, role="PCK CA"),
                          **cached_inputs(hit, at=instant_text(times.pck_crl)))
    crl = verify_crl(collateral.pck_crl, auth.pck_ca, item="pck_crl", at=times.pck_crl,
                     transcript=transcript, cache=cache)
    require_not_revoked(crl, auth.pck_leaf, check="tdx.pck_crl.revocation", role="PCK")
    transcript.passed("tdx.pck_crl.revocation", f"PCK serial {auth.pck_leaf.serial_number:x}")


def _verify_collateral(auth: QuoteAuthenticity, collateral: TdxCollateral, *,
                       roots: Sequence[PinnedRoot], times: VerificationTimes,
                       transcript: Transcript,
                       cache: VendorCaches) -> tuple[TcbInfo, QeIdentity]:
    """Steps 3-6 (the composite cache's ``verify``, verifier/tdx/verified_collateral.py)."""
    verify_revocation(auth, collateral, roots=roots, times=times, transcript=transcript,
                      cache=cache)
    if collateral.tcb_info is None:
        raise _missing("tcb_info")
    info = verify_tcb_info(collateral.tcb_info, collateral.tcb_info_issuer_chain,
                           roots=roots, times=times, transcript=transcript, cache=cache)
    if collateral.qe_identity is None:
        raise _missing("qe_identity")
    return info, verify_qe_identity(collateral.qe_identity, collateral.qe_identity_issuer_chain,
                                    roots=roots, times=times, transcript=transcript,
                                    cache=cache)


def verify_tdx_evidence(
    quote_bytes: bytes,
    collateral: TdxCollateral,
    *,
    roots: Sequence[PinnedRoot],
    times: VerificationTimes,
    transcript: Transcript | None = None,
    event_log: bytes | None = None,
    cache: VendorCaches | None = None,
) -> TdxResult:
    """Steps 1-8: an authentic :class:`TdxResult`, or the first error (recorded as failed).

    ``roots`` are the trusted Intel roots (production: verifier.tdx.roots.production_roots());
    ``times`` the instant per collateral item. The transcript (passed in or fresh) records
    every step and the times used; its ``waive`` set (the policy's ``waive`` list) is the
    only way a stale CRL passes, recorded ``waived``. No policy is applied: judge the
    result with :meth:`verifier.tdx.policy.TdxPolicy.check`.
    ``event_log`` (the CCEL log area) is replayed and must reproduce RTMR0-2; its events are
    returned in the result so a caller can check the ones it expects.
    ``cache``: verified chains and collateral signatures reused across calls (each entry
    re-checked against its time; steps it satisfied say ``source=cache``). None: a fresh one
    for this call, so a chain or signature met twice in one quote is verified once.
    """
    cache = cache if cache is not None else VendorCaches()
    t = transcript if transcript is not None else Transcript()
    try:
        quote = parse_quote(quote_bytes)
        t.passed("tdx.quote.format", f"TDX quote v{quote.version}",
                 sha256=sha256_hex(quote_bytes))
        auth = verify_quote(quote, roots=roots, at=times.pck_chain, transcript=t, cache=cache)
        info, qe_ident = verified_collateral(
            auth, collateral, roots=roots, times=times, transcript=t, cache=cache,
            verify=lambda: _verify_collateral(auth, collateral, roots=roots, times=times,
                                              transcript=t, cache=cache))
        tcb = tcb_status(info, qe_ident, auth.pck_extensions, quote.body, auth.qe_report,
                         transcript=t)
        replayed = None
        if event_log is not None:
            replayed = check_rtmrs(parse_event_log(event_log), quote.body)
            t.passed("tdx.rtmr.replay", "RTMR0-2 reproduced by "
                     f"{sum(len(e) for e in replayed.events_per_rtmr)} events")
    except AttestlogError as err:
        t.error = err
        t.failed(err.check, str(err))
        raise
    return TdxResult(quote, auth, tcb, t, replayed)


__all__ = ["TdxResult", "verify_revocation", "verify_tdx_evidence"]
