"""Verifying one SEV-SNP attestation report: the ordered authenticity steps.

Each step has a stable check id and is recorded in a :class:`Transcript`; the first failure
stops verification (house rule 5) and is recorded before the error is raised.

1. ``snp.report.format``    parse the 0x4A0 bytes strictly (versions 2, 3, 5).
2. ``snp.report.product``   the product: CPUID fields (v3+), else the caller's, else the
                            key certificate's productName; all that are known must agree.
3. ``snp.vcek.collateral``  the VCEK/VLEK (node-stapled, then cache, then KDS for
                            REPORTED_TCB — not CURRENT_TCB), per SIGNING_KEY.
4. ``snp.vcek.chain``       ARK -> ASK -> VCEK or ARK -> ASVK -> VLEK to a pinned ARK at ``at``.
5. ``snp.crl``              the ARK's CRL does not revoke the ASK/ASVK (waived only with
                            ``unsafe_skip_crl``, and the transcript says so).
6. ``snp.report.signature`` ECDSA P-384/SHA-384 over 0x000..0x29F under that key.
7. ``snp.vcek.extensions``  hwID == CHIP_ID, SPLs == REPORTED_TCB, productName == product.

Chains (and CRL results) are cached per certificate bytes inside a :class:`SnpVerifier`, so a
warm verification costs little more than the ECDSA verify itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from cryptography import x509

from attest.collateral.kds_fetch import KdsClient
from attest.formats.snp_certtable import CertTable
from attest.formats.snp_report import (
    SIGNING_KEY_NONE,
    SIGNING_KEY_VCEK,
    AttestationReport,
    TcbVersion,
    decode_tcb,
    parse_report,
)
from transparency_log.common.errors import (
    AttestlogError,
    FetchError,
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)
from verifier.snp.chain import (
    VerifiedKey,
    check_key_extensions,
    kds_extensions,
    load_key_certificate,
    verify_key_chain,
)
from verifier.snp.crl import load_crl, verify_crl
from verifier.snp.roots import AmdProductRoots, amd_roots
from verifier.snp.signature import verify_report_signature
from verifier.transcript import Transcript
from verifier.verified_cache import CACHE_SOURCE, VerifiedCache
from verifier.x509chain import load_certificate, load_pem_bundle

T = TypeVar("T")


@dataclass(frozen=True)
class SnpCollateral:
    """Certificates and CRL that came with the report (node-stapled or given by the user).

    Anything absent is looked up in the cache or fetched from KDS (unless offline).
    """

    vcek: bytes | None = None
    vlek: bytes | None = None
    ask: bytes | None = None
    asvk: bytes | None = None
    ark: bytes | None = None
    crl: bytes | None = None

    @classmethod
    def from_cert_table(cls, table: CertTable, crl: bytes | None = None) -> SnpCollateral:
        """From the extended-report table (the ASK GUID carries the ASVK for VLEK tables)."""
        ask = table.get("ASK")
        vlek = table.get("VLEK")
        return cls(vcek=table.get("VCEK"), vlek=vlek, ask=None if vlek else ask,
                   asvk=ask if vlek else None, ark=table.get("ARK"), crl=crl)

    @classmethod
    def from_files(cls, blobs: Sequence[bytes], crl: bytes | None = None) -> SnpCollateral:
        """Sort PEM bundles / DER certificates into roles by their AMD subject CN
        (SEV-VCEK, SEV-VLEK, SEV-<product> = ASK, SEV-VLEK-<product> = ASVK, ARK-<product>)."""
        found: dict[str, bytes] = {}
        from cryptography.hazmat.primitives.serialization import Encoding

        for blob in blobs:
            if blob.lstrip().startswith(b"-----BEGIN"):
                certs = load_pem_bundle(blob, check="snp.collateral.format", field="certs")
            else:
                certs = [load_certificate(blob, check="snp.collateral.format", field="certs")]
            for cert in certs:
                role = certificate_role(cert)
                if role in found:
                    raise FormatError("snp.collateral.format", "certificate given twice",
                                      field=role)
                found[role] = cert.public_bytes(Encoding.DER)
        return cls(vcek=found.get("VCEK"), vlek=found.get("VLEK"), ask=found.get("ASK"),
                   asvk=found.get("ASVK"), ark=found.get("ARK"), crl=crl)


def certificate_role(cert: x509.Certificate) -> str:
    """VCEK, VLEK, ASK, ASVK or ARK from an AMD certificate's subject common name."""
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else ""
    if cn == "SEV-VCEK":
        return "VCEK"
    if cn == "SEV-VLEK":
        return "VLEK"
    if cn.startswith("SEV-VLEK-"):
        return "ASVK"
    if cn.startswith("ARK-"):
        return "ARK"
    if cn.startswith("SEV-"):
        return "ASK"
    raise FormatError("snp.collateral.format", "not an AMD SEV certificate",
                      field="subject.CN", got=cn, want="SEV-VCEK|SEV-VLEK|SEV-*|ARK-*")


@dataclass(frozen=True)
class SnpVerification:
    """An authentic report: what was verified, with which key, at what time."""

    report: AttestationReport
    raw: bytes
    product: str
    key: VerifiedKey
    reported_tcb: TcbVersion
    at: datetime
    transcript: Transcript = field(compare=False)

    @property
    def key_tcb(self) -> dict[str, int | None]:
        """The signing key certificate's SPLs (its TCB), by component name."""
        return self.key.extensions.spls()


def _sha(data: bytes | None) -> bytes:
    return hashlib.sha256(data or b"").digest()


class SnpVerifier:
    """Verifies SEV-SNP reports against explicit trust roots, at an explicit time.

    ``roots`` maps product name to its anchors (production: :func:`amd_roots`); ``kds`` gives
    missing collateral (None: only what is stapled). ``unsafe_skip_crl`` waives the
    revocation check (recorded as waived in the transcript) — for old captures with no CRL.
    """

    def __init__(self, roots: Mapping[str, AmdProductRoots], *, kds: KdsClient | None = None,
                 unsafe_skip_crl: bool = False) -> None:
        if not roots:
            raise TrustConfigError("snp.roots", "no AMD roots configured", field="roots")
        self.roots = dict(roots)
        self.kds = kds
        self.unsafe_skip_crl = unsafe_skip_crl
        # Bounded, locked caches: one verifier may serve many threads (verified_cache.py).
        self._chains: VerifiedCache[tuple[bytes, ...], VerifiedKey] = VerifiedCache()
        self._key_products: VerifiedCache[bytes, str] = VerifiedCache()
        self._crls: VerifiedCache[tuple[bytes, bytes], bool] = VerifiedCache()

    @classmethod
    def production(cls, *, kds: KdsClient | None = None,
                   unsafe_skip_crl: bool = False) -> SnpVerifier:
        """The embedded, pinned AMD roots for Milan, Genoa and Turin."""
        return cls(amd_roots(), kds=kds, unsafe_skip_crl=unsafe_skip_crl)

    # -- the steps -------------------------------------------------------------------------

    def verify(self, report: bytes, *, at: datetime,
               collateral: SnpCollateral | None = None, product: str | None = None,
               transcript: Transcript | None = None) -> SnpVerification:
        """Run steps 1-7; return the verified result or raise the first failure."""
        t = transcript if transcript is not None else Transcript()
        col = collateral or SnpCollateral()
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        raw = bytes(report)
        rep = _step(t, "snp.report.format", lambda: parse_report(raw),
                    lambda r: f"version {r.version}, signed by {r.signing_key_name}",
                    report_sha256=raw)
        role = "VCEK" if rep.signing_key == SIGNING_KEY_VCEK else "VLEK"
        key_der = col.vcek if role == "VCEK" else col.vlek
        prod = _step(t, "snp.report.product",
                     lambda: self._product(rep, product, key_der, role), str)
        roots = self.roots[prod]
        tcb = decode_tcb(rep.reported_tcb, prod)
        key_der = _step(t, "snp.vcek.collateral",
                        lambda: self._key_cert(rep, role, key_der, prod, tcb),
                        lambda kd: f"{role} from {kd[1]}")[0]
        vk, hit = _step(t, "snp.vcek.chain",
                        lambda: self._chain(key_der, role, roots, col, at),
                        lambda v: f"{v[0].role} <- {'ASK' if v[0].role == 'VCEK' else 'ASVK'}"
                                  f" <- {roots.ark.name}", key_sha256=key_der)
        _mark_cached(t, hit)
        if self.unsafe_skip_crl:
            t.waived("snp.crl", "unsafe_skip_crl: revocation not checked")
        else:
            _, hit = _step(t, "snp.crl", lambda: self._crl(vk, col, prod, at),
                           lambda r: f"CRL from {r[0]}: intermediate not revoked",
                           crl_sha256=col.crl)
            _mark_cached(t, hit)
        _step(t, "snp.report.signature",
              lambda: verify_report_signature(raw, vk.public_key, signer=role),
              lambda _: f"ECDSA P-384/SHA-384 under the {role}")
        _step(t, "snp.vcek.extensions", lambda: check_key_extensions(vk, rep, prod), str)
        return SnpVerification(rep, raw, prod, vk, tcb, at, t)

    def _product(self, rep: AttestationReport, given: str | None, key_der: bytes | None,
                 role: str) -> str:
        if rep.signing_key == SIGNING_KEY_NONE:
            raise SignatureError("snp.report.signature", "report is not signed",
                                 field="SIGNING_KEY", got="NONE", want="VCEK|VLEK")
        known = {}
        if rep.cpuid_product:
            known["CPUID_FAM_ID/CPUID_MOD_ID"] = rep.cpuid_product
        if given:
            known["caller"] = given
        if key_der is not None and not known:
            digest = _sha(key_der)
            named = self._key_products.get(digest)
            if named is None:
                named = kds_extensions(load_key_certificate(key_der, role), role).product
                self._key_products.put(digest, named)
            if named:
                known[f"{role}.productName"] = named
        if not known:
            raise FormatError("snp.report.product",
                              "cannot tell the product (v2 report, no key certificate given)",
                              field="product", want="Milan|Genoa|Turin")
        values = set(known.values())
        if len(values) > 1:
            raise VerificationError("snp.report.product", "sources disagree on the product",
                                    field="product", got=known, want="one product")
        prod = values.pop()
        if prod not in self.roots:
            raise TrustConfigError("snp.report.product", "no trusted roots for this product",
                                   field="product", got=prod, want="|".join(self.roots))
        return prod

    def _key_cert(self, rep: AttestationReport, role: str, key_der: bytes | None, prod: str,
                  tcb: TcbVersion) -> tuple[bytes, str]:
        if key_der is not None:
            return key_der, "node"
        if role == "VLEK":
            raise FetchError("snp.vcek.collateral", "VLEK not supplied (KDS does not serve "
                             "VLEKs by chip)", field="VLEK")
        if self.kds is None:
            raise FetchError("snp.vcek.collateral", "VCEK not supplied and no KDS access",
                             field="VCEK")
        if rep.mask_chip_key or not any(rep.chip_id):
            raise FetchError("snp.vcek.collateral", "CHIP_ID is masked: the VCEK must be "
                             "supplied", field="MASK_CHIP_KEY", got=rep.mask_chip_key)
        der = self.kds.vcek(prod, rep.chip_id, tcb)
        return der, self.kds.last_source

    def _chain(self, key_der: bytes, role: str, roots: AmdProductRoots, col: SnpCollateral,
               at: datetime) -> tuple[VerifiedKey, bool]:
        """The verified key, and whether it came from the cache (inside its window)."""
        mid_der = col.ask if role == "VCEK" else col.asvk
        key = (_sha(key_der), _sha(mid_der), _sha(col.ark), roots.product.encode(),
               role.encode(), roots.ark.fingerprint)
        cached = self._chains.get(key, at)
        if cached is not None:
            return cached, True
        cert = load_key_certificate(key_der, role)
        mid = None if mid_der is None else load_certificate(
            mid_der, check="snp.vcek.format", field="ASK" if role == "VCEK" else "ASVK")
        ark = None if col.ark is None else load_certificate(
            col.ark, check="snp.vcek.format", field="ARK")
        vk = verify_key_chain(cert, roots, role=role, at=at, intermediate=mid, ark=ark)
        self._chains.put(key, vk, vk.not_before, vk.not_after)
        return vk, False

    def _crl(self, vk: VerifiedKey, col: SnpCollateral, prod: str,
             at: datetime) -> tuple[str, bool]:
        """Where the CRL came from, and whether its verification was reused: a hit needs the
        same CRL bytes, the same intermediate and ARK, and ``at`` inside thisUpdate ..
        nextUpdate (outside it the CRL is verified again, and refused as stale)."""
        source = "node"
        crl_der = col.crl
        kind = "vcek" if vk.role == "VCEK" else "vlek"
        if crl_der is None:
            if self.kds is None:
                raise FetchError("snp.crl", "no CRL supplied and no KDS access", field="CRL")
            crl_der = self.kds.crl(prod, kind)
            source = self.kds.last_source
        key = (_sha(crl_der), _sha(vk.intermediate.tbs_certificate_bytes),
               vk.roots.ark.fingerprint)
        if self._crls.get(key, at):
            return source, True
        crl = load_crl(crl_der)
        verify_crl(crl, vk.roots.ark.certificate, vk.intermediate, at=at,
                   role="ASK" if vk.role == "VCEK" else "ASVK")
        self._crls.put(key, True, crl.last_update_utc, crl.next_update_utc)
        return source, False


def _mark_cached(t: Transcript, hit: bool) -> None:
    """The step just recorded was satisfied from a cache: say so (``source=cache``)."""
    if hit:
        t.steps[-1].inputs["source"] = CACHE_SOURCE


def _step(t: Transcript, check: str, fn: Callable[[], T], detail: Callable[[T], str],
          **inputs: bytes | None) -> T:
    """Run one step, recording pass or fail (with its inputs' SHA-256) in the transcript."""
    digests = {k: hashlib.sha256(v).hexdigest() for k, v in inputs.items() if v is not None}
    try:
        out = fn()
    except AttestlogError as err:
        t.failed(check, str(err), **digests)
        t.error = err
        raise
    t.passed(check, detail(out), **digests)
    return out
