"""The node agent's collateral stapler: fetch the vendor collateral a node's evidence needs
and staple it into the bundle, so clients verify with no network at all (DESIGN.md "Evidence
bundle": "any collateral the node staples so the client can verify with no network at all").

What each evidence item gets (names as in docs/formats.md, "Evidence bundle: collateral
names"):

- ``sev-snp``: the VCEK for CHIP_ID at REPORTED_TCB when the certificate table has none (KDS
  ``/vcek/v1/...``), the ASK (or ASVK) and ARK (KDS ``cert_chain``), and the ARK-signed CRL
  (``amd/<product>/crl``); the product comes from the report's CPUID (v3+) or the config;
- ``tdx``: TCB info for the PCK certificate's FMSPC, the TD QE identity, the PCK CRL of the
  PCK's issuing CA and the Intel root CA CRL, each with the issuer chain PCS sends in its
  headers (``intel/<role>``);
- ``nvidia-gpu``: the driver and VBIOS RIMs by the ids derived from the report's opaque data
  (``nvidia/rim/driver/<version>``, ``nvidia/rim/vbios/<version>``) and one OCSP answer per
  non-root certificate of the device chain (``nvidia/ocsp/<sha256 of its DER>``).

Fetching prefers the network (collateral ages: CRLs, TCB info, OCSP) and falls back to the
disk cache; an item found nowhere is a FetchError ``agent.collateral.<item>`` naming it (the
agent then refuses to start). Bundles reuse what was obtained; :meth:`refresh` (the agent's
refresh timer) fetches every item anew, keeping the last value of one that fails. Nothing
here judges the collateral: the client verifies it exactly like collateral it fetched itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from attest.certificates import load_pem_bundle
from attest.collateral.kds_fetch import KDS_BASE, KdsClient
from attest.collateral.ocsp_fetch import NVIDIA_OCSP_URL, cert_fingerprint, fetch_response
from attest.collateral.pcs_fetch import PCS_BASE, ROOT_CRL_URL, PcsClient, pck_ca_kind
from attest.collateral.rim_fetch import NVIDIA_RIM_SERVICE, RimSource, driver_rim_id, vbios_rim_id
from attest.collect.nvml_gpu import NonceFor
from attest.formats.bundle import GpuEvidence, SnpEvidence, TdxEvidence
from attest.formats.nvidia_opaque import parse_opaque
from attest.formats.sgx_pck_extensions import parse_sgx_extensions
from attest.formats.snp_report import decode_tcb, parse_report
from attest.formats.spdm_measurements import parse_report as parse_spdm_report
from attest.formats.tdx_quote import parse_quote
from attest.platform import CpuCollection, GpuCollection, Platform
from transparency_log.common.errors import AttestlogError, FetchError, FormatError
from transparency_log.common.http_fetch import DiskCache, Fetch

__all__ = ["CHECK", "CollateralServices", "CollateralStapler", "StaplingPlatform"]

CHECK = "agent.collateral"
SGX_EXTENSIONS_OID = "1.2.840.113741.1.13.1"


@dataclass(frozen=True)
class CollateralServices:
    """The vendor services' base URLs (the agent config's ``[collateral]`` table)."""

    amd_kds: str = KDS_BASE
    intel_pcs: str = PCS_BASE
    intel_root_crl: str = ROOT_CRL_URL
    nvidia_rim: str = NVIDIA_RIM_SERVICE
    nvidia_ocsp: str = NVIDIA_OCSP_URL


class CollateralStapler:
    """Fetches and remembers collateral by bundle name (module docstring)."""

    def __init__(self, fetch: Fetch, *, services: CollateralServices | None = None,
                 cache: DiskCache | None = None, snp_product: str | None = None) -> None:
        self.fetch = fetch
        self.services = services or CollateralServices()
        self.cache = cache
        self.snp_product = snp_product
        self._lock = threading.Lock()
        self._got: dict[str, bytes] = {}
        self._plan: dict[str, Callable[[], bytes]] = {}

    def refresh(self) -> list[str]:
        """Fetch every item used so far anew (the agent's refresh timer). An item that cannot
        be fetched keeps its last value; returns the failures, one line each."""
        with self._lock:
            plan = dict(self._plan)
        failed = []
        for name, get in plan.items():
            try:
                data = get()
            except AttestlogError as err:
                failed.append(f"{name}: {err}")
                continue
            self._store(name, data)
        return failed

    def _store(self, name: str, data: bytes) -> None:
        if self.cache is not None:
            self.cache.put(f"staple/{name}", data)
        with self._lock:
            self._got[name] = data

    def _obtain(self, name: str, item: str, get: Callable[[], bytes], *,
                key: str | None = None) -> bytes:
        """What was obtained before; else the network, then the disk cache; else FetchError
        ``agent.collateral.<item>`` naming the bundle ``name``. ``key`` (default ``name``)
        identifies the document when one name can stand for several (RIMs by id)."""
        key = key or name
        with self._lock:
            if key in self._got:
                return self._got[key]
            self._plan[key] = get
        try:
            data = get()
        except AttestlogError as err:
            cached = self.cache.get(f"staple/{key}") if self.cache is not None else None
            if cached is None:
                raise FetchError(f"{CHECK}.{item}", f"cannot obtain {name}: {err}",
                                 field=name) from None
            data = cached
        self._store(key, data)
        return data

    # ------------------------------------------------------------------ SEV-SNP
    def staple_snp(self, item: SnpEvidence) -> tuple[SnpEvidence, dict[str, bytes]]:
        rep = parse_report(item.report)
        product = rep.cpuid_product or self.snp_product
        if product is None:
            raise FetchError(f"{CHECK}.snp.product", "cannot tell the SNP product (v2 report); "
                             "set collateral.snp_product", field="collateral.snp_product")
        kds = KdsClient(self.fetch, base=self.services.amd_kds)
        kind = "vlek" if "vlek" in item.certs else "vcek"
        certs = dict(item.certs)
        p = product.lower()
        if kind == "vcek" and "vcek" not in certs:
            tcb = decode_tcb(rep.reported_tcb, product)
            hwid = rep.chip_id[:8] if product == "Turin" else rep.chip_id
            certs["vcek"] = self._obtain(
                f"amd/{p}/vcek/{hwid.hex()}/{tcb.raw:016x}", "snp.vcek",
                lambda: kds.vcek(product, rep.chip_id, tcb))
        intermediate = "asvk" if kind == "vlek" else "ask"
        if intermediate not in certs or "ark" not in certs:
            pem = self._obtain(f"amd/{p}/{kind}/cert_chain", "snp.cert_chain",
                               lambda: kds.cert_chain(product, kind))
            chain = _pem_ders(pem, f"{CHECK}.snp.cert_chain")
            if len(chain) != 2:
                raise FetchError(f"{CHECK}.snp.cert_chain", "KDS cert_chain is not two "
                                 "certificates", field="cert_chain", got=len(chain), want=2)
            certs.setdefault(intermediate, chain[0])
            certs.setdefault("ark", chain[1])
        if "crl" in item.collateral:  # the platform stapled one already
            return SnpEvidence(item.report, certs, item.collateral), {}
        crl_name = f"amd/{p}/crl" if kind == "vcek" else f"amd/{p}/vlek/crl"
        crl = self._obtain(crl_name, "snp.crl", lambda: kds.crl(product, kind))
        return (SnpEvidence(item.report, certs, {**item.collateral, "crl": crl_name}),
                {crl_name: crl})

    # ------------------------------------------------------------------ TDX
    def staple_tdx(self, item: TdxEvidence) -> tuple[TdxEvidence, dict[str, bytes]]:
        quote = parse_quote(item.quote)
        pem = quote.signature_data.certification.pck_cert_chain.rstrip(b"\x00")
        try:
            leaf = load_pem_bundle(pem, check=f"{CHECK}.tdx.fmspc", field="pck_cert_chain")[0]
            ext = leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier(SGX_EXTENSIONS_OID))
            fmspc = parse_sgx_extensions(ext.value.value).fmspc  # type: ignore[attr-defined]
            ca = pck_ca_kind(leaf.issuer.rfc4514_string())
        except (FormatError, ValueError, IndexError, AttributeError,
                x509.ExtensionNotFound) as err:
            raise FetchError(f"{CHECK}.tdx.fmspc", f"cannot read the FMSPC from the quote's PCK "
                             f"certificate: {err}", field="PCK Cert Chain") from None
        pcs = PcsClient(self.fetch, base=self.services.intel_pcs,
                        root_crl_url=self.services.intel_root_crl)
        blobs: dict[str, bytes] = {}
        getters: dict[str, Callable[[], bytes | None]] = {
            "tcb_info": lambda: pcs.tcb_info(fmspc)[0],
            "tcb_info_issuer_chain": lambda: pcs.tcb_info(fmspc)[1],
            "qe_identity": lambda: pcs.qe_identity()[0],
            "qe_identity_issuer_chain": lambda: pcs.qe_identity()[1],
            "pck_crl": lambda: pcs.pck_crl(ca)[0],
            "pck_crl_issuer_chain": lambda: pcs.pck_crl(ca)[1],
            "root_crl": pcs.root_crl,
        }
        names = {}
        for role, get in getters.items():
            if role in item.collateral:
                continue
            name = f"intel/{role}"
            blobs[name] = self._obtain(name, f"tdx.{role}",
                                       lambda g=get: g() or b"")  # type: ignore[misc]
            names[role] = name
        return TdxEvidence(item.quote, {**item.collateral, **names}), blobs

    # ------------------------------------------------------------------ NVIDIA GPUs
    def staple_gpu(self, item: GpuEvidence) -> tuple[GpuEvidence, dict[str, bytes]]:
        report = parse_spdm_report(item.report)
        o = parse_opaque(report.response.opaque_data)
        rims = dict(item.rims)
        blobs: dict[str, bytes] = {}
        source = RimSource(fetch=self.fetch, base_url=self.services.nvidia_rim)
        wanted = {"driver": (o.driver_version, driver_rim_id(o.driver_version or "")),
                  "vbios": (o.vbios_version, vbios_rim_id(o.project or "", o.project_sku or "",
                                                           o.chip_sku or "",
                                                           o.vbios_version or ""))}
        for kind, (version, rim_id) in wanted.items():
            if kind in rims:
                continue
            if not version:
                raise FetchError(f"{CHECK}.gpu.rim.{kind}", "the GPU report has no version to "
                                 "name the RIM by", field=f"GPU-{item.index}.{kind}")
            name = f"nvidia/rim/{kind}/{version.lower()}"
            blobs[name] = self._obtain(name, f"gpu.rim.{kind}",
                                       lambda i=rim_id: source.get(i),  # type: ignore[misc]
                                       key=f"nvidia/rim/{rim_id}")
            rims[kind] = name
        ocsp_names = list(item.ocsp)
        if not ocsp_names:
            try:
                chain = load_pem_bundle(item.cert_chain, check=f"{CHECK}.gpu.ocsp",
                                        field=f"GPU-{item.index}.cert_chain")
            except FormatError as err:
                raise FetchError(f"{CHECK}.gpu.ocsp", f"cannot read the GPU certificate chain: "
                                 f"{err}", field=f"GPU-{item.index}.cert_chain") from None
            for i in range(len(chain) - 1):
                cert, issuer = chain[i], chain[i + 1]
                name = f"nvidia/ocsp/{cert_fingerprint(cert).hex()}"
                blobs[name] = self._obtain(
                    name, "gpu.ocsp", lambda c=cert, s=issuer: fetch_response(  # type: ignore[misc]
                        self.fetch, c, s, url=self.services.nvidia_ocsp))
                ocsp_names.append(name)
        return replace(item, rims=rims, ocsp=tuple(ocsp_names)), blobs


def _pem_ders(pem: bytes, check: str) -> list[bytes]:
    try:
        return [c.public_bytes(Encoding.DER)
                for c in load_pem_bundle(pem, check=check, field="cert_chain")]
    except FormatError as err:
        raise FetchError(check, f"not a PEM certificate bundle: {err}", field="cert_chain") \
            from None


@dataclass
class StaplingPlatform:
    """A :class:`~attest.platform.Platform` whose items carry the collateral ``stapler``
    fetched. GPU collateral names are added before REPORT_DATA is computed over the GPU
    items, so the binding covers them."""

    inner: Platform
    stapler: CollateralStapler

    @property
    def cpu(self) -> str:
        return self.inner.cpu

    @property
    def simulated(self) -> bool:
        return self.inner.simulated

    def describe(self) -> str:
        return f"{self.inner.describe()}; collateral stapled"

    def refresh_collateral(self) -> list[str]:
        return self.stapler.refresh()

    def trust(self) -> object:
        return self.inner.trust()  # type: ignore[attr-defined]

    def collect_gpus(self, nonce_for: NonceFor) -> GpuCollection:
        got = self.inner.collect_gpus(nonce_for)
        collateral = dict(got.collateral)
        items = []
        for item in got.items:
            stapled, blobs = self.stapler.staple_gpu(item)
            items.append(stapled)
            collateral.update(blobs)
        return GpuCollection(got.state, tuple(items), collateral)

    def collect_cpu(self, report_data: bytes) -> CpuCollection:
        got = self.inner.collect_cpu(report_data)
        item: SnpEvidence | TdxEvidence
        if isinstance(got.item, SnpEvidence):
            item, blobs = self.stapler.staple_snp(got.item)
        else:
            item, blobs = self.stapler.staple_tdx(got.item)
        return CpuCollection(item, {**got.collateral, **blobs})
