"""The composite warm cache of the TDX collateral steps (issue 15): one lookup for "this exact
collateral, under this exact PCK chain and these roots, verified before", instead of the
chain, signature and issuer lookups each collateral step makes.

What it covers: steps 3-6 of verifier/tdx/evidence.py (Root CA CRL, PCK CRL, TCB Info, QE
Identity: chains, signatures, revocation, validity windows), whose outcome depends on

- the exact bytes of the seven collateral items, the PCK leaf and PCK CA (by SHA-256), the
  pinned root the PCK chain ended in and the configured roots: the key;
- and the time only through closed windows, one per instant of
  :class:`~verifier.tdx.collateral.VerificationTimes` that the steps use: a CRL's
  thisUpdate..nextUpdate (RFC 5280 §5.1.2.4-5), a document's issueDate..nextUpdate (Intel PCS
  API v4), an issuer chain's latest notBefore..earliest notAfter (RFC 5280 §4.1.2.5).

An entry is stored only after the steps ran and every one of them passed (a refusal or a
waiver is never stored, so a stale CRL is judged again on every call). A lookup hits only when
every instant is inside its window: then the steps are recorded again, as they were, with
each instant's text at this call's time; the validity steps were re-checked by the window
test and say nothing more, every other step says ``source=cache``. Outside a window, with a
changed CRL (other bytes, another key) or after an eviction, the steps run in full and refuse
by their own check ids. Bounded and thread-safe (:class:`~verifier.verified_cache.
VerifiedCache`); entries are immutable.

An entry is not stored (the steps just run each time) when the steps recorded are not the
known ones below, or an instant's text is not the one expected: a change of the steps then
costs speed, never a check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

from attest.certificates import load_crl, load_pem_bundle
from attest.collateral.pcs_fetch import TdxCollateral
from attest.formats.intel_pcs import QeIdentity, TcbInfo
from verifier.tdx.collateral import VerificationTimes, pcs_time
from verifier.tdx.quote_verify import QuoteAuthenticity, instant_text
from verifier.transcript import PASS, StepRecord, Transcript
from verifier.verified_cache import CACHE_SOURCE, VendorCaches
from verifier.x509chain import PinnedRoot, fingerprint, verify_chain

__all__ = ["AT_FIELD", "CACHED_CHECKS", "verified_collateral"]

#: The steps whose ``at`` input is an instant, and which instant of VerificationTimes it is.
AT_FIELD: dict[str, str] = {
    "tdx.root_crl.validity": "root_crl",
    "tdx.pck_crl.chain": "pck_crl",
    "tdx.pck_crl.validity": "pck_crl",
    "tdx.tcb_info.chain": "tcb_signing_chain",
    "tdx.tcb_info.validity": "tcb_info",
    "tdx.qe.identity.chain": "tcb_signing_chain",
    "tdx.qe.identity.validity": "qe_identity",
}
#: Every step the entry may hold: the time-independent ones come from the cache on a hit.
CACHED_CHECKS = frozenset(AT_FIELD) | {
    "tdx.root_crl.signature", "tdx.root_crl.revocation", "tdx.pck_crl.signature",
    "tdx.pck_crl.revocation", "tdx.tcb_info.signature", "tdx.qe.identity.signature"}
_items = attrgetter(*TdxCollateral.__dataclass_fields__)  # the seven items, as a tuple

Window = tuple[str, datetime, datetime]  # (VerificationTimes field, earliest, latest)
# (check, detail, inputs as pairs, the instant's field or "", whether the detail ends in it)
_Step = tuple[str, str, tuple[tuple[str, str], ...], str, bool]


@dataclass(frozen=True)
class _Verified:
    steps: tuple[_Step, ...]
    windows: tuple[Window, ...]
    info: TcbInfo
    qe_identity: QeIdentity

    def holds_at(self, times: VerificationTimes) -> bool:
        try:
            return all(lo <= getattr(times, name) <= hi for name, lo, hi in self.windows)
        except TypeError:  # an instant without a time zone: the steps judge it themselves
            return False

    def records(self, times: VerificationTimes) -> list[StepRecord]:
        out: list[StepRecord] = []
        for check, detail, inputs, name, suffix in self.steps:
            if not name:
                out.append((check, PASS, detail, dict(inputs), ""))
                continue
            at = instant_text(getattr(times, name))
            out.append((check, PASS, detail + at if suffix else detail,
                        {k: at if k == "at" else v for k, v in inputs}, ""))
        return out


def verified_collateral(auth: QuoteAuthenticity, collateral: TdxCollateral, *,
                        roots: Sequence[PinnedRoot], times: VerificationTimes,
                        transcript: Transcript, cache: VendorCaches,
                        verify: Callable[[], tuple[TcbInfo, QeIdentity]],
                        ) -> tuple[TcbInfo, QeIdentity]:
    """``verify()`` (steps 3-6, recorded in ``transcript``), or its recorded steps again when
    the same inputs verified before and every instant of ``times`` is inside its window."""
    key = _key(auth, collateral, roots)
    if key is None:
        return verify()
    hit = cache.collateral.get(key)
    if isinstance(hit, _Verified) and hit.holds_at(times):
        transcript.replay(hit.records(times))
        return hit.info, hit.qe_identity
    mark = transcript.mark()
    info, qe_identity = verify()
    entry = _entry(transcript.records_since(mark), collateral, roots, times, cache, info,
                   qe_identity)
    if entry is not None:
        cache.collateral.put(key, entry)
    return info, qe_identity


def _key(auth: QuoteAuthenticity, collateral: TdxCollateral,
         roots: Sequence[PinnedRoot]) -> tuple[object, ...] | None:
    items = _items(collateral)
    for item in items:
        if item is not None and type(item) is not bytes:
            return None  # only exact, immutable bytes key an entry
    return ("tdx.collateral", tuple(r.fingerprint for r in roots), auth.root.fingerprint,
            fingerprint(auth.pck_ca), fingerprint(auth.pck_leaf), *items)


def _entry(records: list[StepRecord], collateral: TdxCollateral,
           roots: Sequence[PinnedRoot], times: VerificationTimes, cache: VendorCaches,
           info: TcbInfo, qe_identity: QeIdentity) -> _Verified | None:
    """The entry for steps that all passed and are all known, with their windows; None
    otherwise (nothing is stored)."""
    steps: list[_Step] = []
    for check, result, detail, inputs, _ in records:
        if result != PASS or check not in CACHED_CHECKS:
            return None
        name, suffix = AT_FIELD.get(check, ""), False
        if name:
            at = instant_text(getattr(times, name))
            if inputs.get("at") != at:
                return None
            suffix = detail.endswith(" at " + at)
            detail = detail[:-len(at)] if suffix else detail
        pairs = dict(inputs)
        if not check.endswith(".validity"):  # re-checked by the windows; the rest is cached
            pairs["source"] = CACHE_SOURCE
        steps.append((check, detail, tuple(pairs.items()), name, suffix))
    if {s[0] for s in steps} != CACHED_CHECKS:
        return None
    return _Verified(tuple(steps), _windows(collateral, roots, times, cache, info,
                                            qe_identity), info, qe_identity)


def _windows(collateral: TdxCollateral, roots: Sequence[PinnedRoot], times: VerificationTimes,
             cache: VendorCaches, info: TcbInfo, qe_identity: QeIdentity) -> tuple[Window, ...]:
    """Where each instant may move without changing an outcome: the CRLs' and documents'
    validity, the issuer chains' common validity (their paths, from the chain cache)."""
    out: list[Window] = []
    for role in ("root_crl", "pck_crl"):
        crl = load_crl(getattr(collateral, role), check=f"tdx.{role}.format", field=role)
        out.append((role, crl.last_update_utc, crl.next_update_utc))  # type: ignore[arg-type]
    out.append(("tcb_info", pcs_time(info.issue_date), pcs_time(info.next_update)))
    out.append(("qe_identity", pcs_time(qe_identity.issue_date),
                pcs_time(qe_identity.next_update)))
    for role, name in (("pck_crl_issuer_chain", "pck_crl"),
                       ("tcb_info_issuer_chain", "tcb_signing_chain"),
                       ("qe_identity_issuer_chain", "tcb_signing_chain")):
        pem = getattr(collateral, role)
        if pem is None:
            continue
        path = verify_chain(load_pem_bundle(pem, check=f"tdx.{role}", field=role), roots,
                            at=getattr(times, name), check=f"tdx.{role}", cache=cache).path
        out.append((name, max(c.not_valid_before_utc for c in path),
                    min(c.not_valid_after_utc for c in path)))
    return tuple(out)
