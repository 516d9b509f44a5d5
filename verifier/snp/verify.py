"""Verifying one SEV-SNP attestation report: the ordered authenticity steps.

Each step has a stable check id and is recorded with :meth:`Transcript.run`; the first failure
stops verification (house rule 5) and is recorded before the error is raised.

1. ``snp.report.format``    parse the 0x4A0 bytes strictly (versions 2, 3, 5).
2. ``snp.report.product``   the product: CPUID fields (v3+), else the caller's, else the
                            key certificate's productName; all that are known must agree.
3. ``snp.vcek.collateral``  the VCEK/VLEK (node-stapled, then cache, then KDS for
                            REPORTED_TCB — not CURRENT_TCB), per SIGNING_KEY.
4. ``snp.vcek.chain``       ARK -> ASK -> VCEK or ARK -> ASVK -> VLEK to a pinned ARK at ``at``.
5. ``snp.crl``              the ARK's CRL does not revoke the ASK/ASVK. With no CRL given and
                            none to be had from KDS (no KDS access, offline and not cached,
                            KDS failing) the check cannot run: :class:`CheckNotRun`, a
                            failure unless the transcript's ``waive`` set (the policy's
                            ``waive`` list) names ``snp.crl``; the waived step says that
                            revocation was NOT checked.
6. ``snp.report.signature`` ECDSA P-384/SHA-384 over 0x000..0x29F under that key.
7. ``snp.vcek.extensions``  hwID == CHIP_ID, SPLs == REPORTED_TCB, productName == product.

Verified chains and CRLs are kept in :class:`SnpCaches` (bounded, locked; shared across
verifiers and threads), so a warm verification costs little more than the ECDSA verify itself.
A :class:`SnpVerifier` is immutable: the per-call ``on_get`` hook (what KDS served, for the
transcript's collateral list) is an argument of :meth:`SnpVerifier.verify`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType

from cryptography import x509

from attest.certificates import (
    LOADER_ERRORS,
    PARSE_MEMO_SIZE,
    load_certificates,
)
from attest.collateral.kds_fetch import KdsClient, SourceHook
from attest.formats.snp_certtable import CertTable
from attest.formats.snp_kds_ext import KdsExtensions
from attest.formats.snp_report import (
    SIGNING_KEY_NAMES,
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
from verifier.checks import CheckNotRun
from verifier.snp.chain import (
    VerifiedKey,
    check_key_extensions,
    kds_extensions,
    load_amd_certificate,
    load_key_certificate,
    verify_key_chain,
)
from verifier.snp.crl import CHECK as CHECK_CRL
from verifier.snp.crl import load_crl, verify_crl
from verifier.snp.roots import AmdProductRoots, amd_roots
from verifier.snp.signature import verify_report_signature
from verifier.transcript import Transcript
from verifier.verified_cache import CACHE_SOURCE, VerifiedCache
from verifier.x509chain import fingerprint


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
            for cert in load_certificates(blob, check="snp.collateral.format", field="certs"):
                role = certificate_role(cert)
                if role in found:
                    raise FormatError("snp.collateral.format", "certificate given twice",
                                      field=role)
                found[role] = cert.public_bytes(Encoding.DER)
        return cls(vcek=found.get("VCEK"), vlek=found.get("VLEK"), ask=found.get("ASK"),
                   asvk=found.get("ASVK"), ark=found.get("ARK"), crl=crl)


def certificate_role(cert: x509.Certificate) -> str:
    """VCEK, VLEK, ASK, ASVK or ARK from an AMD certificate's subject common name."""
    try:
        cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    except LOADER_ERRORS as err:
        raise FormatError("snp.collateral.format", f"certificate does not parse: {err}",
                          field="subject") from None
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


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _parsed_report(raw: bytes) -> AttestationReport:
    """The report parsed once per exact bytes (immutable; a failed parse is not kept)."""
    return parse_report(raw)


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _reported_tcb(raw: int, product: str) -> TcbVersion:
    """REPORTED_TCB decoded once per value and product (immutable)."""
    return decode_tcb(raw, product)


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _hex(data: bytes) -> str:
    """SHA-256 (hex) of a report or key certificate for the transcript, once per exact bytes
    (a bytes object keeps its hash, so a lookup does not read the bytes again)."""
    return hashlib.sha256(data).hexdigest()


def _format_detail(rep: AttestationReport) -> str:
    return f"version {rep.version}, signed by {SIGNING_KEY_NAMES[rep.signing_key]}"


_SIGNATURE_DETAIL = {role: f"ECDSA P-384/SHA-384 under the {role}" for role in ("VCEK", "VLEK")}


@dataclass(frozen=True)
class SnpCaches:
    """Verified SNP facts, reusable by any verifier and thread (verifier/verified_cache.py):
    key chains (by the exact certificates, product, role and pinned ARK; inside the chain's
    window), a key certificate's productName, and CRL checks (by the CRL, the intermediate and
    the ARK; inside thisUpdate .. nextUpdate). Bounded and locked."""

    chains: VerifiedCache[tuple[object, ...], VerifiedKey] = field(
        default_factory=VerifiedCache)
    key_products: VerifiedCache[bytes, str] = field(default_factory=VerifiedCache)
    crls: VerifiedCache[tuple[bytes, bytes, bytes], bool] = field(default_factory=VerifiedCache)


@dataclass(frozen=True)
class _Crl:
    """The CRL for the ``snp.crl`` step: its bytes and source, or why it cannot be had:
    ``why`` it cannot run (the CheckNotRun is made where it is raised, so that no exception is
    kept in a frame its own traceback holds: no reference cycle per call for the garbage
    collector), or ``missing``, a refusal to raise as it is."""

    der: bytes | None
    source: str
    missing: AttestlogError | None = None
    why: str = ""


@dataclass(frozen=True, init=False)
class SnpVerifier:
    """Verifies SEV-SNP reports against explicit trust roots, at an explicit time.

    ``roots`` maps product name to its anchors (production: :func:`amd_roots`); ``kds`` gives
    missing collateral (None: only what is given); ``caches`` the warm verified facts (a fresh
    :class:`SnpCaches` when not given). Immutable, so one verifier may serve many threads.
    """

    roots: Mapping[str, AmdProductRoots]
    kds: KdsClient | None
    caches: SnpCaches

    def __init__(self, roots: Mapping[str, AmdProductRoots], *, kds: KdsClient | None = None,
                 caches: SnpCaches | None = None) -> None:
        if not roots:
            raise TrustConfigError("snp.roots", "no AMD roots configured", field="roots")
        object.__setattr__(self, "roots", MappingProxyType(dict(roots)))
        object.__setattr__(self, "kds", kds)
        object.__setattr__(self, "caches", caches if caches is not None else SnpCaches())

    @classmethod
    def production(cls, *, kds: KdsClient | None = None,
                   caches: SnpCaches | None = None) -> SnpVerifier:
        """The embedded, pinned AMD roots for Milan, Genoa and Turin."""
        return cls(amd_roots(), kds=kds, caches=caches)

    # -- the steps -------------------------------------------------------------------------

    def verify(self, report: bytes, *, at: datetime,
               collateral: SnpCollateral | None = None, product: str | None = None,
               transcript: Transcript | None = None,
               on_get: SourceHook | None = None) -> SnpVerification:
        """Run steps 1-7; return the verified result or raise the first failure (also set
        as ``transcript.error``). ``on_get`` hears each KDS read (url, source, body)."""
        t = transcript if transcript is not None else Transcript()
        try:
            return self._verify(bytes(report), at if at.tzinfo else at.replace(tzinfo=UTC),
                                collateral or SnpCollateral(), product, t, on_get)
        except AttestlogError as err:
            t.error = err
            raise

    def _verify(self, raw: bytes, at: datetime, col: SnpCollateral, product: str | None,
                t: Transcript, on_get: SourceHook | None) -> SnpVerification:
        rep: AttestationReport = t.run(
            "snp.report.format", lambda: _parsed_report(raw), detail=_format_detail,
            report_sha256=_hex(raw))
        role = "VCEK" if rep.signing_key == SIGNING_KEY_VCEK else "VLEK"
        given = col.vcek if role == "VCEK" else col.vlek
        named: list[KdsExtensions] = []  # the key's extensions, when read to name the product
        prod: str = t.run("snp.report.product",
                          lambda: self._product(rep, product, given, role, named), detail=str)
        roots = self.roots[prod]
        tcb = _reported_tcb(rep.reported_tcb, prod)
        key_der, _ = t.run("snp.vcek.collateral",
                           lambda: self._key_cert(rep, role, given, prod, tcb, on_get),
                           detail=lambda kd: f"{role} from {kd[1]}")
        mid_der = col.ask if role == "VCEK" else col.asvk
        embedded = roots.ask if role == "VCEK" else roots.asvk
        # Keyed by the exact bytes (their hash is kept by the bytes object; equal keys compare
        # byte for byte), the product, the role and the pinned ARK.
        chain_key = (key_der, mid_der if mid_der is not None else
                     b"embedded" + (fingerprint(embedded) if embedded is not None else b""),
                     col.ark, roots.product, role, roots.ark.fingerprint)
        cached = self.caches.chains.get(chain_key, at)
        vk: VerifiedKey = t.run(
            "snp.vcek.chain",
            lambda: cached or self._chain(chain_key, key_der, mid_der, role, roots, col, at,
                                          named[0] if named else None),
            detail=f"{role} <- {'ASK' if role == 'VCEK' else 'ASVK'} <- {roots.ark.name}",
            key_sha256=_hex(key_der), **_cache_input(cached is not None))
        crl = self._crl_source(col, vk, prod, on_get)
        if crl.der is None:  # cannot run: waived or refused inside the step
            t.run(CHECK_CRL, lambda: self._check_crl(crl, None, vk, at))
        else:
            crl_key = (crl.der, fingerprint(vk.intermediate), vk.roots.ark.fingerprint)
            hit = self.caches.crls.get(crl_key, at) is True
            t.run(CHECK_CRL, lambda: hit or self._check_crl(crl, crl_key, vk, at),
                  detail=f"CRL from {crl.source}: intermediate not revoked",
                  crl_sha256=_hex(crl.der), **_cache_input(hit))
        t.run("snp.report.signature",
              lambda: verify_report_signature(raw, vk.public_key, signer=role),
              detail=_SIGNATURE_DETAIL[role])
        t.run("snp.vcek.extensions", lambda: check_key_extensions(vk, rep, prod, tcb),
              detail=str)
        return SnpVerification(rep, raw, prod, vk, tcb, at, t)

    def _product(self, rep: AttestationReport, given: str | None, key_der: bytes | None,
                 role: str, named: list[KdsExtensions]) -> str:
        """The product (see the module doc); the key certificate's extensions, when read for
        its productName, are appended to ``named`` (decoded once per verification)."""
        if rep.signing_key == SIGNING_KEY_NONE:
            raise SignatureError("snp.report.signature", "report is not signed",
                                 field="SIGNING_KEY", got="NONE", want="VCEK|VLEK")
        known = {}
        if rep.cpuid_product:
            known["CPUID_FAM_ID/CPUID_MOD_ID"] = rep.cpuid_product
        if given:
            known["caller"] = given
        if key_der is not None and not known:
            name = self.caches.key_products.get(key_der)
            if name is None:
                named.append(kds_extensions(load_key_certificate(key_der, role), role))
                name = named[0].product
                self.caches.key_products.put(key_der, name)
            if name:
                known[f"{role}.productName"] = name
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
                  tcb: TcbVersion, on_get: SourceHook | None) -> tuple[bytes, str]:
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
        heard = _Heard(on_get)
        der = self.kds.vcek(prod, rep.chip_id, tcb, on_get=heard)
        return der, heard.source

    def _chain(self, key: tuple[object, ...], key_der: bytes, mid_der: bytes | None,
               role: str, roots: AmdProductRoots, col: SnpCollateral, at: datetime,
               ext: KdsExtensions | None) -> VerifiedKey:
        """Verify the key's chain and keep it in the cache (valid inside its window)."""
        cert = load_key_certificate(key_der, role)
        mid = None if mid_der is None else _given(roots, mid_der, "ASK" if role == "VCEK"
                                                  else "ASVK")
        ark = None if col.ark is None else _given(roots, col.ark, "ARK")
        vk = verify_key_chain(cert, roots, role=role, at=at, intermediate=mid, ark=ark,
                              extensions=ext)
        self.caches.chains.put(key, vk, vk.not_before, vk.not_after)
        return vk

    def _crl_source(self, col: SnpCollateral, vk: VerifiedKey, prod: str,
                    on_get: SourceHook | None) -> _Crl:
        """The CRL given with the report, else KDS's (cache, then network); when there is
        none to be had, why (raised inside the ``snp.crl`` step as CheckNotRun)."""
        if col.crl is not None:
            return _Crl(col.crl, "node")
        if self.kds is None:
            return _OFFLINE_CRL
        heard = _Heard(on_get)
        try:
            der = self.kds.crl(prod, "vcek" if vk.role == "VCEK" else "vlek", on_get=heard)
        except FetchError as err:
            return _Crl(None, "", why=f"no CRL stapled or given and none from KDS ({err})")
        except AttestlogError as err:  # not a missing CRL: refused in the step as it is
            return _Crl(None, "", err)
        return _Crl(der, heard.source)

    def _check_crl(self, crl: _Crl, key: tuple[bytes, bytes, bytes] | None, vk: VerifiedKey,
                   at: datetime) -> bool:
        """Verify the CRL (the ARK's, current at ``at``, not revoking the intermediate) and
        keep the outcome for thisUpdate .. nextUpdate; outside it the CRL is verified again,
        and refused as stale."""
        if crl.der is None or key is None:
            if crl.missing is not None:
                raise crl.missing
            raise CheckNotRun(CHECK_CRL, _not_checked(crl.why or "no CRL"), field="CRL")
        parsed = load_crl(crl.der)
        verify_crl(parsed, vk.roots.ark.certificate, vk.intermediate, at=at,
                   role="ASK" if vk.role == "VCEK" else "ASVK")
        self.caches.crls.put(key, True, parsed.last_update_utc, parsed.next_update_utc)
        return False


def _given(roots: AmdProductRoots, der: bytes, role: str) -> x509.Certificate:
    """A supplied ASK/ASVK/ARK: the embedded certificate when byte-identical to it, else the
    supplied bytes loaded (and verified in the chain like any other)."""
    return roots.embedded(role, der) or load_amd_certificate(der, role)


class _Heard:
    """A per-call ``on_get`` hook: remembers where the last read came from (``kds`` or
    ``cache``) and passes each read on to the caller's hook."""

    def __init__(self, outer: SourceHook | None) -> None:
        self.outer = outer
        self.source = ""

    def __call__(self, url: str, source: str, body: bytes) -> None:
        self.source = "kds" if source == "fetched" else source
        if self.outer is not None:
            self.outer(url, source, body)


def _not_checked(why: str) -> str:
    return f"cannot run: {why}; revocation of the ASK/ASVK NOT checked"


_OFFLINE_CRL = _Crl(None, "", why="no CRL stapled or given and no KDS access (offline)")


def _cache_input(hit: bool) -> dict[str, str]:
    """The step was satisfied from a cache: say so (``source=cache``)."""
    return {"source": CACHE_SOURCE} if hit else {}
