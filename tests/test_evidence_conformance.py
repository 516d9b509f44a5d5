"""The evidence conformance suite (tests/support/evidence_conformance.py) for SEV-SNP, TDX and
NVIDIA GPU: one small adapter per vendor over its real vector of record (tests/vectors, the
MANIFESTs' pinned times). The adapters call the vendor entry points; the mutations and the
assertions are the shared suite's.

Vectors of record: SNP virtee-sev/report_milan.bin with its VCEK and the Milan ASK/ARK at
2026-11-23 (no AMD CRL is in the vectors: ``snp.crl`` is waived, as in test_snp_vectors.py);
TDX go-tdx-guest quote_v5_sample.dat with its collateral at the per-item times of
tdx_support.V5_TIMES; GPU nvtrust hopperAttestationReport.txt with its chain and the two
sample RIMs at 2025-01-01 (inside every RIM signer's validity; OCSP cannot be had offline for
a real chain and is not part of this suite; the RIMs' reference values do not match this
report (MANIFEST) and that comparison is policy, collected, not raised).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from attest.formats import snp_report, spdm_measurements, tdx_quote
from attest.formats.intel_pcs import parse_qe_identity, parse_tcb_info, split_signed_json
from attest.simulate.tdx import raw_signature
from tests.support.evidence_conformance import *  # noqa: F403
from tests.support.evidence_conformance import (
    EVIDENCE,
    Case,
    Expect,
    Region,
    Window,
    der_boundaries,
    der_regions,
    expect,
    inner_points,
    pem_inner_points,
)
from tests.support.look_alike import forge_look_alike
from tests.support.snp_fixtures import AT as SNP_AT
from tests.support.snp_fixtures import vec as snp_vec
from tests.support.tdx_support import V5, V5_TIMES, read, real_collateral
from tests.support.vectors import vector_path
from transparency_log.common.errors import (
    ChainError,
    FetchError,
    FormatError,
    SignatureError,
    StaleError,
    TrustConfigError,
    VerificationError,
)
from verifier.gpu.evidence import GpuCaches, GpuTrust, verify_gpu_evidence
from verifier.gpu.roots import rim_root
from verifier.snp.roots import AmdProductRoots
from verifier.snp.verify import SnpCollateral, SnpVerifier
from verifier.tdx.collateral import TdxCollateral, VerificationTimes, pcs_time
from verifier.tdx.evidence import verify_tdx_evidence
from verifier.tdx.quote_verify import load_pck_chain
from verifier.tdx.roots import production_roots
from verifier.transcript import Transcript
from verifier.x509chain import PinnedRoot


def _window(certs: Sequence[x509.Certificate]) -> tuple[datetime, datetime]:
    return (max(c.not_valid_before_utc for c in certs), min(c.not_valid_after_utc for c in certs))


def _pem_certs(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


# ---------------------------------------------------------------------------- SEV-SNP

class Snp:
    name = "sev-snp"
    truncation: ClassVar[Mapping[str, Expect]] = {
        EVIDENCE: expect((FormatError, "snp.report.format")),
        **{role: expect((FormatError, "snp.vcek.format"),
                        (FormatError, "snp.collateral.format"))
           for role in ("VCEK", "ASK", "ARK")}}
    wrong_root = expect((ChainError, "snp.vcek.chain"))

    @cached_property
    def verifier(self) -> SnpVerifier:  # one, warm: its caches are keyed on the exact bytes
        return SnpVerifier.production()

    def record(self) -> Case:
        ask, ark = (c.public_bytes(Encoding.DER) for c in _pem_certs(
            snp_vec("virtee-sev/cert_chain_milan")))
        return Case(snp_vec("virtee-sev/report_milan.bin"),
                    {"VCEK": snp_vec("virtee-sev/vcek_milan.der"), "ASK": ask, "ARK": ark},
                    {"at": SNP_AT})

    def _chain(self, case: Case) -> tuple[x509.Certificate, ...]:
        return tuple(x509.load_der_x509_certificate(case.collateral[r])
                     for r in ("VCEK", "ASK", "ARK"))

    def verify(self, case: Case, *, impostor_root: bool = False) -> object:
        c = case.collateral
        verifier = self.verifier
        if impostor_root:
            forged = forge_look_alike(self._chain(self.record())).certificates
            verifier = SnpVerifier({"Milan": AmdProductRoots(
                "Milan", PinnedRoot("ARK-Milan", forged[2]), forged[1], None)})
        # no AMD CRL in the vectors: the check cannot run, and is waived
        return verifier.verify(case.evidence, at=case.clock["at"], collateral=SnpCollateral(
            vcek=c["VCEK"], ask=c["ASK"], ark=c["ARK"]),
            transcript=Transcript(waive=frozenset({"snp.crl"})))

    def regions(self, case: Case) -> Sequence[Region]:
        signed = expect((SignatureError, "snp.report.signature"),
                        (FormatError, "snp.report.format"),
                        (VerificationError, "snp.report.product"),
                        (TrustConfigError, "snp.report.product"),
                        (FetchError, "snp.vcek.collateral"),
                        (VerificationError, "snp.vcek.extensions"))
        cert = expect((ChainError, "snp.vcek.chain"), (FormatError, "snp.vcek.format"),
                      (FormatError, "snp.collateral.format"))
        out = [Region("header", EVIDENCE, 0, 0x50, signed),
               Region("body", EVIDENCE, 0x50, snp_report.SIGNED_SIZE, signed),
               Region("signature", EVIDENCE, snp_report.SIGNED_SIZE, 0x330,
                      expect((SignatureError, "snp.report.signature"),
                             (FormatError, "snp.report.format")), exhaustive=True),
               Region("reserved", EVIDENCE, 0x330, snp_report.REPORT_SIZE,
                      expect((FormatError, "snp.report.format")))]
        for role in ("VCEK", "ASK", "ARK"):
            for part, (lo, hi) in der_regions(case.collateral[role]).items():
                out.append(Region(f"{role}.{part}", role, lo, hi, cert))
        return out

    def boundaries(self, case: Case) -> Mapping[str, Sequence[int]]:
        fields = [0x4, 0x8, 0x10, 0x20, 0x30, 0x38, 0x50, 0x90, 0xC0, 0xE0, 0x110, 0x140,
                  0x180, 0x1A0, 0x1E0, snp_report.SIGNED_SIZE, 0x2E8, 0x330]
        return {EVIDENCE: fields + inner_points(len(case.evidence)),
                **{r: der_boundaries(case.collateral[r])
                                     for r in ("VCEK", "ASK", "ARK")}}

    def windows(self, case: Case) -> Sequence[Window]:
        nb, na = _window(self._chain(case))
        return [Window("VCEK, ASK, ARK", "at", nb, na, expect((StaleError, "snp.vcek.chain")),
                       expect((StaleError, "snp.vcek.chain")))]

    def look_alike(self, case: Case) -> Case:
        forged = forge_look_alike(self._chain(case))
        rep = snp_report.parse_report(case.evidence)
        sig = forged.leaf_key.sign(case.evidence[:snp_report.SIGNED_SIZE],
                                   ec.ECDSA(hashes.SHA384()))
        r, s = decode_dss_signature(sig)
        report = snp_report.serialize_report(dataclasses.replace(rep, signature_r=r,
                                                                 signature_s=s))
        return Case(report, {"VCEK": forged.der(0), "ASK": forged.der(1),
                             "ARK": forged.der(2)}, case.clock)



# ---------------------------------------------------------------------------- TDX

_TDX_PEM = ("tcb_info_issuer_chain", "qe_identity_issuer_chain", "pck_crl_issuer_chain")


class Tdx:
    name = "tdx"
    truncation: ClassVar[Mapping[str, Expect]] = {
        EVIDENCE: expect((FormatError, "tdx.quote.format")),
        "tcb_info": expect((FormatError, "tdx.tcb_info.format")),
        "qe_identity": expect((FormatError, "tdx.qe.identity.format")),
        "pck_crl": expect((FormatError, "tdx.pck_crl.format")),
        "root_crl": expect((FormatError, "tdx.root_crl.format")),
        "tcb_info_issuer_chain": expect((FormatError, "tdx.tcb_info.chain")),
        "qe_identity_issuer_chain": expect((FormatError, "tdx.tcb_info.chain"),
                                           (FormatError, "tdx.qe.identity.chain")),
        "pck_crl_issuer_chain": expect((FormatError, "tdx.pck_crl.chain"))}
    wrong_root = expect((ChainError, "tdx.pck.chain"), (VerificationError, "tdx.pck.chain"))

    def record(self) -> Case:
        col = dataclasses.asdict(real_collateral("sample_tcbinfo_response_v5"))
        return Case(read(V5), col, V5_TIMES.__dict__)

    def verify(self, case: Case, *, impostor_root: bool = False) -> object:
        roots = production_roots()
        if impostor_root:
            forged = forge_look_alike(self._pck_chain(self.record().evidence))
            roots = (PinnedRoot("Intel SGX Root CA", forged.certificates[-1]),)
        return verify_tdx_evidence(case.evidence, TdxCollateral(**case.collateral),
                                   roots=roots, times=VerificationTimes(**case.clock))

    @staticmethod
    def _pck_chain(quote: bytes) -> tuple[x509.Certificate, ...]:
        return tuple(load_pck_chain(tdx_quote.parse_quote(quote)))

    @staticmethod
    def _layout(quote: bytes) -> dict[str, tuple[int, int]]:
        """Byte ranges of a v5 quote (Intel TDX DCAP Quoting Library API A.3)."""
        q = tdx_quote.parse_quote(quote)
        c = q.signature_data.certification
        pos = len(q.signed_bytes) + 4
        out = {}
        for name, size in (("quote signature", 64), ("attestation key", 64),
                           ("certification header", 6), ("QE report", 384),
                           ("QE report signature", 64), ("QE auth data", 2 + len(c.qe_auth_data)),
                           ("PCK chain header", 6), ("PCK chain", len(c.pck_cert_chain))):
            out[name] = (pos, pos + size)
            pos += size
        return out

    def regions(self, case: Case) -> Sequence[Region]:
        q = case.evidence
        quote = expect((FormatError, "tdx.quote.format"),
                       (VerificationError, "tdx.quote.header"),
                       (SignatureError, "tdx.quote.signature"))
        qe = expect((FormatError, "tdx.quote.format"),
                    (SignatureError, "tdx.qe.report.signature"),
                    (VerificationError, "tdx.qe.report_data"))
        chain = expect((FormatError, "tdx.pck.chain"), (ChainError, "tdx.pck.chain"),
                       (VerificationError, "tdx.pck.chain"),
                       (FormatError, "tdx.pck.extensions"), (FormatError, "tdx.quote.format"))
        lay = self._layout(q)
        out = [Region("header", EVIDENCE, 0, tdx_quote.HEADER_SIZE, quote),
               Region("body", EVIDENCE, tdx_quote.HEADER_SIZE, lay["quote signature"][0] - 4,
                      quote),
               Region("quote signature", EVIDENCE, *lay["quote signature"],
                      expect((SignatureError, "tdx.quote.signature")), exhaustive=True),
               Region("attestation key", EVIDENCE, *lay["attestation key"],
                      expect((VerificationError, "tdx.qe.report_data"))),
               Region("certification header", EVIDENCE, *lay["certification header"],
                      expect((FormatError, "tdx.quote.format"))),
               Region("QE report", EVIDENCE, *lay["QE report"], qe),
               Region("QE report signature", EVIDENCE, *lay["QE report signature"], qe),
               Region("QE auth data", EVIDENCE, *lay["QE auth data"], qe),
               Region("PCK chain", EVIDENCE, *lay["PCK chain"], chain)]
        for item, signed in (("tcb_info", "tdx.tcb_info"), ("qe_identity", "tdx.qe.identity")):
            out.append(Region(item, item, 0, len(case.collateral[item]), expect(
                (FormatError, f"{signed}.format"), (SignatureError, f"{signed}.signature"))))
        for item in ("pck_crl", "root_crl"):
            for part, (lo, hi) in der_regions(case.collateral[item]).items():
                out.append(Region(f"{item}.{part}", item, lo, hi, expect(
                    (FormatError, f"tdx.{item}.format"),
                    (VerificationError, f"tdx.{item}.signature"))))
        checks = {"tcb_info_issuer_chain": "tdx.tcb_info.chain",
                  "qe_identity_issuer_chain": "tdx.qe.identity.chain",
                  "pck_crl_issuer_chain": "tdx.pck_crl.chain"}
        for item, check in checks.items():
            out.append(Region(item, item, 0, len(case.collateral[item]), expect(
                (FormatError, check), (ChainError, check), (VerificationError, check))))
        return out

    def boundaries(self, case: Case) -> Mapping[str, Sequence[int]]:
        q, col = case.evidence, case.collateral
        lay = self._layout(q)
        quote = {tdx_quote.HEADER_SIZE, tdx_quote.HEADER_SIZE + 2, tdx_quote.HEADER_SIZE + 6,
                 lay["quote signature"][0] - 4, *(lo for lo, _ in lay.values())}
        return {EVIDENCE: sorted(quote | set(inner_points(len(q)))),
                "pck_crl": der_boundaries(case.collateral["pck_crl"]),
                "root_crl": der_boundaries(case.collateral["root_crl"]),
                # inside the signer's block; a cut inside the root's block: see
                # test_issuer_chain_cut_inside_its_last_block_is_refused below
                **{item: pem_inner_points(case.collateral[item])[:3] for item in _TDX_PEM},
                "tcb_info": inner_points(len(col["tcb_info"])),
                "qe_identity": inner_points(len(col["qe_identity"]))}

    def windows(self, case: Case) -> Sequence[Window]:
        col = case.collateral

        def stale(item: str) -> frozenset[tuple[str, str]]:
            return expect((StaleError, f"tdx.{item}.validity"))

        pck = expect((StaleError, "tdx.pck.chain"))
        signing = expect((StaleError, "tdx.tcb_info.chain"))
        _, info, _ = split_signed_json(col["tcb_info"], "tcbInfo", check="t")
        _, ident, _ = split_signed_json(col["qe_identity"], "enclaveIdentity", check="t")
        tcb, qe = parse_tcb_info(info), parse_qe_identity(ident)
        pck_crl = x509.load_der_x509_crl(col["pck_crl"])
        root_crl = x509.load_der_x509_crl(col["root_crl"])
        # The PCK CRL's issuer chain is judged at the PCK CRL's instant too.
        issuer = _window(_pem_certs(col["pck_crl_issuer_chain"]))
        return [
            Window("PCK chain", "pck_chain", *_window(self._pck_chain(case.evidence)), pck, pck),
            Window("TCB Info", "tcb_info", pcs_time(tcb.issue_date), pcs_time(tcb.next_update),
                   stale("tcb_info"), stale("tcb_info")),
            Window("QE Identity", "qe_identity", pcs_time(qe.issue_date),
                   pcs_time(qe.next_update),
                   stale("qe.identity"), stale("qe.identity")),
            Window("TCB signing chain", "tcb_signing_chain",
                   *_window(_pem_certs(col["tcb_info_issuer_chain"])), signing, signing),
            Window("PCK CRL", "pck_crl", max(pck_crl.last_update_utc, issuer[0]),
                   min(pck_crl.next_update_utc, issuer[1]), stale("pck_crl"), stale("pck_crl")),
            Window("Root CA CRL", "root_crl", root_crl.last_update_utc,
                   root_crl.next_update_utc, stale("root_crl"), stale("root_crl"))]

    def look_alike(self, case: Case) -> Case:
        q = tdx_quote.parse_quote(case.evidence)
        forged = forge_look_alike(self._pck_chain(case.evidence))
        c = q.signature_data.certification
        nul = b"\x00" if c.pck_cert_chain.endswith(b"\x00") else b""
        cert = dataclasses.replace(c, pck_cert_chain=forged.pem() + nul,
                                   qe_report_signature=raw_signature(forged.leaf_key,
                                                                     c.qe_report))
        sig = dataclasses.replace(q.signature_data, certification=cert)
        return dataclasses.replace(case, evidence=dataclasses.replace(
            q, signature_data=sig).to_bytes())


# ---------------------------------------------------------------------------- NVIDIA GPU

def _nvidia(name: str) -> bytes:
    return vector_path("nvidia", "nvtrust", name).read_bytes()


GPU_NONCE = bytes.fromhex("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
GPU_AT = datetime(2025, 1, 1, tzinfo=UTC)  # inside every bundled RIM signer's validity


class Gpu:
    name = "nvidia-gpu"
    truncation: ClassVar[Mapping[str, Expect]] = {
        EVIDENCE: expect((FormatError, "gpu.report.format")),
        "device_chain": expect((FormatError, "gpu.chain.format"),
                               (ChainError, "gpu.chain")),
        "driver_rim": expect((FormatError, "gpu.rim.format")),
        "vbios_rim": expect((FormatError, "gpu.rim.format"))}
    wrong_root = expect((ChainError, "gpu.chain"))

    @cached_property
    def caches(self) -> GpuCaches:  # warm: keyed on the exact bytes of chains and RIMs
        return GpuCaches()

    def record(self) -> Case:
        report = spdm_measurements.parse_report_text(_nvidia("hopperAttestationReport.txt"))
        return Case(report, {"device_chain": _nvidia("hopperCertChain.txt"),
                             "driver_rim": _nvidia("Driver_RIM_test_no_gpu.swidtag"),
                             "vbios_rim": _nvidia("1010_0200_882_96005E0001_test_no_gpu.swidtag")},
                    {"at": GPU_AT})

    def verify(self, case: Case, *, impostor_root: bool = False) -> object:
        trust = GpuTrust.production()
        if impostor_root:
            forged = forge_look_alike(tuple(_pem_certs(self.record().collateral["device_chain"])))
            trust = GpuTrust((PinnedRoot("NVIDIA Device Identity CA", forged.certificates[-1]),),
                             (rim_root(),))
        c = case.collateral
        return verify_gpu_evidence(
            case.evidence, c["device_chain"], nonce=GPU_NONCE, trust=trust, at=case.clock["at"],
            # offline, a real chain has no OCSP answer: the check cannot run, and is waived
            transcript=Transcript(waive=frozenset({"gpu.ocsp"})),
            rims=[c["driver_rim"], c["vbios_rim"]], caches=self.caches)

    def regions(self, case: Case) -> Sequence[Region]:
        rep = spdm_measurements.parse_report(case.evidence)
        req = spdm_measurements.REQUEST_SIZE
        signed = len(rep.wire_signed)
        opaque = signed - len(rep.response.opaque_data)
        fmt = (FormatError, "gpu.report.format")
        sig = (SignatureError, "gpu.report.signature")
        chain = expect(fmt, (FormatError, "gpu.chain.format"), (ChainError, "gpu.chain"),
                       (VerificationError, "gpu.chain"), (VerificationError, "gpu.report.fwid"))
        rim = expect((FormatError, "gpu.rim.format"), (SignatureError, "gpu.rim.signature"),
                     (ChainError, "gpu.rim.chain"), (FormatError, "gpu.rim.chain"))
        out = [Region("request", EVIDENCE, 0, req,
                      expect(fmt, sig, (VerificationError, "gpu.report.nonce"))),
               Region("measurement record", EVIDENCE, req, opaque - 2 - 32, expect(fmt, sig)),
               Region("opaque data", EVIDENCE, opaque - 2, signed,
                      expect(fmt, sig, (FormatError, "gpu.report.opaque"),
                             (VerificationError, "gpu.report.fwid"))),
               Region("signature", EVIDENCE, signed, len(case.evidence), expect(sig),
                      exhaustive=True),
               Region("device chain", "device_chain", 0, len(case.collateral["device_chain"]),
                      chain)]
        for item in ("driver_rim", "vbios_rim"):
            out.append(Region(item, item, 0, len(case.collateral[item]), rim))
        return out

    def boundaries(self, case: Case) -> Mapping[str, Sequence[int]]:
        rep = spdm_measurements.parse_report(case.evidence)
        req = spdm_measurements.REQUEST_SIZE
        pos, blocks = req + 8, []
        for b in rep.response.blocks[:4]:
            pos += len(b.to_bytes())
            blocks.append(pos)
        signed = len(rep.wire_signed)
        opaque = signed - len(rep.response.opaque_data)
        c = case.collateral
        return {EVIDENCE: [req, req + 4, req + 5, req + 8, *blocks, opaque - 34, opaque - 2,
                           opaque, signed, signed + 48, *inner_points(len(case.evidence))],
                "device_chain": pem_inner_points(c["device_chain"]),
                # whitespace after the root element is no part of the XML document
                **{rim: inner_points(len(c[rim].rstrip())) for rim in ("driver_rim", "vbios_rim")}}

    def windows(self, case: Case) -> Sequence[Window]:
        from verifier.gpu.rim_verify import embedded_chain

        c = case.collateral
        certs = (_pem_certs(c["device_chain"]) + embedded_chain(c["driver_rim"])
                 + embedded_chain(c["vbios_rim"]))
        rim_chain = expect((StaleError, "gpu.rim.chain"))
        return [Window("device chain and RIM signers", "at", *_window(certs), rim_chain,
                       rim_chain)]

    def look_alike(self, case: Case) -> Case:
        forged = forge_look_alike(tuple(_pem_certs(case.collateral["device_chain"])))
        rep = spdm_measurements.parse_report(case.evidence)
        r, s = decode_dss_signature(forged.leaf_key.sign(rep.wire_signed,
                                                         ec.ECDSA(hashes.SHA384())))
        report = rep.wire_signed + r.to_bytes(48, "big") + s.to_bytes(48, "big")
        return case.with_item(EVIDENCE, report).with_item("device_chain", forged.pem())


ADAPTERS = {a.name: a for a in (Snp(), Tdx(), Gpu())}

@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> object:
    return ADAPTERS[request.param]


# ---------------------------------------------------------------------------- findings

@pytest.mark.parametrize(("offset", "bit"), [(0x8B, 7), (0x413, 5)])
def test_snp_ask_with_a_malformed_field_is_refused_by_our_error(offset: int, bit: int) -> None:
    """A bit flip in the stapled ASK's issuer (0x8b) or CRL distribution point (0x413): the
    DER still loads, the field does not parse (it was a ValueError from cryptography)."""
    snp = ADAPTERS["sev-snp"]
    record = snp.record()
    ask = bytearray(record.collateral["ASK"])
    ask[offset] ^= 1 << bit
    with pytest.raises(FormatError):
        snp.verify(record.with_item("ASK", bytes(ask)))


@pytest.mark.parametrize("item", _TDX_PEM)
def test_issuer_chain_cut_inside_its_last_block_is_refused(item: str) -> None:
    """An issuer chain cut inside the Root CA's PEM block: the signer alone still chains to
    the pinned root: the damaged text must be refused as malformed, not read as a shorter
    bundle (cryptography skips text that is not a whole PEM block)."""
    tdx = ADAPTERS["tdx"]
    record = tdx.record()
    chain = record.collateral[item]
    with pytest.raises(FormatError):
        tdx.verify(record.with_item(item, chain[:pem_inner_points(chain)[-2]]))
