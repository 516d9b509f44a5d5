"""Simulated Intel TDX hardware and Intel PCS: a fake Intel root, PCK chain with SGX
extensions, signed TCB Info and QE Identity, CRLs, and byte-exact v4/v5 quotes.

Keys are derived from a seed, so a simulator built twice has the same certificates'
keys (ECDSA signatures still differ: they are randomized). Nothing here is trusted by
the verifier unless the caller passes :attr:`IntelSimulator.root_pem` as a root explicitly.
Layouts follow attest.formats.tdx_quote (Intel TDX DCAP Quoting Library API, appendix A)
and the PCS v4 JSON schemas (TCB Info v3, Enclave Identity v2).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote as urlquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from attest.formats.sgx_pck_extensions import SGX_EXTENSIONS_OID, SgxExtensions
from attest.formats.tdx_quote import (
    ATT_KEY_TYPE_ECDSA_P256,
    BODY_TYPE_TDX10,
    BODY_TYPE_TDX15,
    INTEL_QE_VENDOR_ID,
    TEE_TYPE_TDX,
    EnclaveReportBody,
    QeReportCertificationData,
    QuoteHeader,
    QuoteSignatureData,
    TdReportBody,
    TdxQuote,
)

SIM_ORG = "attestlog simulated Intel"
TD_QE_MRSIGNER = bytes.fromhex("dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5")
TD_QE_ATTRIBUTES = bytes.fromhex("11000000000000000000000000000000")
SIM_FMSPC = bytes.fromhex("00a06f000000")
SIM_SGX_SVNS = (4, 4, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0)
SIM_PCESVN = 13
# TEE_TCB_SVN of the simulated platform: module ISVSVN 6, module TDX_01, TDX late ucode 3.
SIM_TEE_TCB_SVN = bytes([6, 1, 3] + [0] * 13)
SIM_TD_ATTRIBUTES = (1 << 28).to_bytes(8, "little")  # SEPT_VE_DISABLE
SIM_XFAM = bytes.fromhex("e702060000000000")


def _key(seed: bytes, label: str) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha512(seed + b"/" + label.encode()).digest(), "big")
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    return ec.derive_private_key(scalar % (n - 1) + 1, ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIM_ORG),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
          issuer_key: ec.EllipticCurvePrivateKey, *, serial: int, not_before: datetime,
          not_after: datetime, ca: bool,
          extra: x509.UnrecognizedExtension | None = None) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(key.public_key()).serial_number(serial)
         .not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                        critical=True))
    if extra is not None:
        b = b.add_extension(extra, critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def raw_signature(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA P-256/SHA-256 as the quote carries it: r||s, 32 bytes each."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def raw_public_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    """X||Y of the public point (64 bytes)."""
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)[1:]


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


@dataclass(frozen=True)
class SimulatedCollateral:
    """Same field names as verifier.tdx.collateral.TdxCollateral (attest never imports it)."""

    tcb_info: bytes
    tcb_info_issuer_chain: bytes
    qe_identity: bytes
    qe_identity_issuer_chain: bytes
    pck_crl: bytes
    pck_crl_issuer_chain: bytes
    root_crl: bytes


def _svn_components(svns: tuple[int, ...] | list[int]) -> list[dict[str, int]]:
    return [{"svn": s} for s in svns]


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class IntelSimulator:
    """A fake Intel: root CA, PCK Platform CA, TCB Signing, one PCK leaf and a TD QE."""

    def __init__(self, *, now: datetime, seed: bytes = b"attestlog/tdx-sim",
                 fmspc: bytes = SIM_FMSPC, sgx_svns: tuple[int, ...] = SIM_SGX_SVNS,
                 pcesvn: int = SIM_PCESVN, root_name: str = "Simulated SGX Root CA",
                 sgx_extension: bool = True) -> None:
        self.now = now
        self.seed = seed
        self.root_name = root_name
        self.root_key = _key(seed, "root")
        self.pck_ca_key = _key(seed, "pck-ca")
        self.tcb_signing_key = _key(seed, "tcb-signing")
        self.pck_key = _key(seed, "pck")
        self.attestation_key = _key(seed, "attestation")
        start, end = now - timedelta(days=365), now + timedelta(days=3650)
        self.extensions = SgxExtensions(
            ppid=hashlib.sha256(seed + b"/ppid").digest()[:16], tcb_comp_svns=sgx_svns,
            pcesvn=pcesvn, cpusvn=bytes(sgx_svns), pceid=b"\x00\x00", fmspc=fmspc, sgx_type=1)
        self.root_cert = _cert(root_name, self.root_key, root_name, self.root_key, serial=1,
                               not_before=start, not_after=end, ca=True)
        self.pck_ca_cert = _cert("Simulated SGX PCK Platform CA", self.pck_ca_key, root_name,
                                 self.root_key, serial=2, not_before=start, not_after=end, ca=True)
        self.tcb_signing_cert = _cert("Simulated SGX TCB Signing", self.tcb_signing_key,
                                      root_name, self.root_key, serial=3, not_before=start,
                                      not_after=end, ca=False)
        ext = (x509.UnrecognizedExtension(x509.ObjectIdentifier(SGX_EXTENSIONS_OID),
                                          self.extensions.to_der()) if sgx_extension else None)
        self.pck_cert = _cert("Simulated SGX PCK Certificate", self.pck_key,
                              "Simulated SGX PCK Platform CA", self.pck_ca_key, serial=0x1234,
                              not_before=start, not_after=end, ca=False, extra=ext)

    # ---------------------------------------------------------------- certificates
    @property
    def root_pem(self) -> bytes:
        return _pem(self.root_cert)

    @property
    def pck_chain_pem(self) -> bytes:
        return _pem(self.pck_cert, self.pck_ca_cert, self.root_cert)

    @property
    def tcb_signing_chain_pem(self) -> bytes:
        return _pem(self.tcb_signing_cert, self.root_cert)

    @property
    def pck_crl_chain_pem(self) -> bytes:
        return _pem(self.pck_ca_cert, self.root_cert)

    # ---------------------------------------------------------------- quotes
    def body(self, **overrides: Any) -> TdReportBody:
        """A TD Quote Body 1.0 with plausible values; keyword arguments replace fields."""
        fields: dict[str, Any] = {
            "tee_tcb_svn": SIM_TEE_TCB_SVN, "mrseam": hashlib.sha384(b"sim mrseam").digest(),
            "mrsignerseam": bytes(48), "seam_attributes": bytes(8),
            "td_attributes": SIM_TD_ATTRIBUTES, "xfam": SIM_XFAM,
            "mrtd": hashlib.sha384(b"sim mrtd").digest(), "mrconfigid": bytes(48),
            "mrowner": bytes(48), "mrownerconfig": bytes(48),
            "rtmr0": hashlib.sha384(b"sim rtmr0").digest(),
            "rtmr1": hashlib.sha384(b"sim rtmr1").digest(),
            "rtmr2": hashlib.sha384(b"sim rtmr2").digest(), "rtmr3": bytes(48),
            "report_data": bytes(64),
        }
        fields.update(overrides)
        return TdReportBody(**fields)

    def qe_report(self, auth_data: bytes, attestation_public: bytes,
                  **overrides: Any) -> EnclaveReportBody:
        fields: dict[str, Any] = {
            "cpu_svn": self.extensions.cpusvn, "misc_select": 0, "isv_ext_prod_id": bytes(16),
            "attributes": TD_QE_ATTRIBUTES, "mr_enclave": hashlib.sha256(b"sim td qe").digest(),
            "mr_signer": TD_QE_MRSIGNER, "config_id": bytes(64), "isv_prod_id": 2,
            "isv_svn": 4, "config_svn": 0, "isv_family_id": bytes(16),
            "report_data": hashlib.sha256(attestation_public + auth_data).digest() + bytes(32),
        }
        fields.update(overrides)
        return EnclaveReportBody(**fields)

    def quote(self, *, version: int = 4, body: TdReportBody | None = None,
              report_data: bytes | None = None, qe_overrides: dict[str, Any] | None = None,
              qe_auth_data: bytes = bytes(range(32)), trailing: bytes = b"",
              pck_chain_pem: bytes | None = None) -> TdxQuote:
        """A signed quote; v5 carries a TDX 1.5 body (type 3) unless ``body`` is 1.0."""
        if body is None:
            body = self.body()
            if version == 5:
                body = replace(body, tee_tcb_svn2=body.tee_tcb_svn, mrservicetd=bytes(48))
        if report_data is not None:
            body = replace(body, report_data=report_data)
        att_pub = raw_public_key(self.attestation_key)
        qe = self.qe_report(qe_auth_data, att_pub, **(qe_overrides or {})).to_bytes()
        cert = QeReportCertificationData(qe, raw_signature(self.pck_key, qe), qe_auth_data,
                                         pck_chain_pem or self.pck_chain_pem)
        header = QuoteHeader(version, ATT_KEY_TYPE_ECDSA_P256, TEE_TYPE_TDX, INTEL_QE_VENDOR_ID,
                             bytes(20))
        body_type = BODY_TYPE_TDX15 if body.is_tdx15 else BODY_TYPE_TDX10
        unsigned = TdxQuote(header, body, QuoteSignatureData(bytes(64), att_pub, cert),
                            body_type, trailing)
        return self.sign(unsigned, self.attestation_key)

    @staticmethod
    def sign(quote: TdxQuote, key: ec.EllipticCurvePrivateKey) -> TdxQuote:
        """(Re-)sign ``quote`` with ``key``, also setting the quote's attestation key to it.
        The QE report is left alone: a different key breaks the QE report data binding."""
        sig = replace(quote.signature_data, attestation_key=raw_public_key(key))
        half = replace(quote, signature_data=sig)
        return replace(half, signature_data=replace(
            sig, signature=raw_signature(key, half.signed_bytes)))

    # ---------------------------------------------------------------- collateral
    def _signed_json(self, member: str, value: dict[str, Any]) -> bytes:
        text = json.dumps(value, separators=(",", ":"))
        sig = raw_signature(self.tcb_signing_key, text.encode())
        return f'{{"{member}":{text},"signature":"{sig.hex()}"}}'.encode()

    def tcb_info_value(self, *, issue: datetime | None = None, next_update: datetime | None = None,
                       fmspc: bytes | None = None, levels: list[dict[str, Any]] | None = None,
                       module_levels: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The ``tcbInfo`` member: by default one UpToDate level matching this platform."""
        issue = issue or self.now - timedelta(days=1)
        if levels is None:
            levels = [self.tcb_level("UpToDate")]
        if module_levels is None:
            module_levels = [{"tcb": {"isvsvn": SIM_TEE_TCB_SVN[0]}, "tcbDate": _ts(issue),
                              "tcbStatus": "UpToDate"}]
        module = {"mrsigner": "00" * 48, "attributes": "00" * 8, "attributesMask": "FF" * 8}
        return {
            "id": "TDX", "version": 3, "issueDate": _ts(issue),
            "nextUpdate": _ts(next_update or issue + timedelta(days=30)),
            "fmspc": (fmspc or self.extensions.fmspc).hex(), "pceId": "0000", "tcbType": 0,
            "tcbEvaluationDataNumber": 17, "tdxModule": module,
            "tdxModuleIdentities": [dict(module, id="TDX_01", tcbLevels=module_levels)],
            "tcbLevels": levels,
        }

    def tcb_level(self, status: str, *, sgx: tuple[int, ...] | None = None,
                  pcesvn: int | None = None, tdx: tuple[int, ...] | None = None,
                  advisories: tuple[str, ...] = ()) -> dict[str, Any]:
        level: dict[str, Any] = {
            "tcb": {"sgxtcbcomponents": _svn_components(sgx or self.extensions.tcb_comp_svns),
                    "pcesvn": self.extensions.pcesvn if pcesvn is None else pcesvn,
                    "tdxtcbcomponents": _svn_components(tdx or SIM_TEE_TCB_SVN)},
            "tcbDate": _ts(self.now - timedelta(days=30)), "tcbStatus": status,
        }
        if advisories:
            level["advisoryIDs"] = list(advisories)
        return level

    def tcb_info(self, **kwargs: Any) -> bytes:
        """A signed TCB Info response body (see :meth:`tcb_info_value` for the options)."""
        return self._signed_json("tcbInfo", self.tcb_info_value(**kwargs))

    def qe_identity_value(self, *, issue: datetime | None = None,
                          next_update: datetime | None = None,
                          levels: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        issue = issue or self.now - timedelta(days=1)
        return {
            "id": "TD_QE", "version": 2, "issueDate": _ts(issue),
            "nextUpdate": _ts(next_update or issue + timedelta(days=30)),
            "tcbEvaluationDataNumber": 17, "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
            "attributes": TD_QE_ATTRIBUTES.hex().upper(),
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": TD_QE_MRSIGNER.hex().upper(), "isvprodid": 2,
            "tcbLevels": levels or [{"tcb": {"isvsvn": 4}, "tcbDate": _ts(issue),
                                     "tcbStatus": "UpToDate"}],
        }

    def qe_identity(self, **kwargs: Any) -> bytes:
        return self._signed_json("enclaveIdentity", self.qe_identity_value(**kwargs))

    def _crl(self, issuer: str, key: ec.EllipticCurvePrivateKey, revoked: tuple[int, ...],
             this_update: datetime | None, next_update: datetime | None) -> bytes:
        this_update = this_update or self.now - timedelta(days=1)
        b = (x509.CertificateRevocationListBuilder().issuer_name(_name(issuer))
             .last_update(this_update)
             .next_update(next_update or this_update + timedelta(days=30)))
        for serial in revoked:
            b = b.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial)
                .revocation_date(this_update).build())
        b = (b.add_extension(x509.CRLNumber(1), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()),
                            critical=False))
        return b.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)

    def root_crl(self, *, revoked: tuple[int, ...] = (), this_update: datetime | None = None,
                 next_update: datetime | None = None) -> bytes:
        return self._crl(self.root_name, self.root_key, revoked, this_update, next_update)

    def pck_crl(self, *, revoked: tuple[int, ...] = (), this_update: datetime | None = None,
                next_update: datetime | None = None) -> bytes:
        return self._crl("Simulated SGX PCK Platform CA", self.pck_ca_key, revoked, this_update,
                         next_update)

    def collateral(self) -> SimulatedCollateral:
        """Current collateral for this platform (all of it valid at ``now``)."""
        return SimulatedCollateral(self.tcb_info(), self.tcb_signing_chain_pem,
                                   self.qe_identity(), self.tcb_signing_chain_pem,
                                   self.pck_crl(), self.pck_crl_chain_pem, self.root_crl())

    def pcs_routes(self) -> dict[str, tuple[int, dict[str, str], bytes]]:
        """Routes for attest.simulate.fake_service.FakeService mimicking Intel PCS v4."""
        c = self.collateral()
        fmspc = self.extensions.fmspc.hex()
        return {
            f"/tdx/certification/v4/tcb?fmspc={fmspc}": (
                200, {"TCB-Info-Issuer-Chain": urlquote(c.tcb_info_issuer_chain.decode()),
                      "Content-Type": "application/json"}, c.tcb_info),
            "/tdx/certification/v4/qe/identity": (
                200, {"SGX-Enclave-Identity-Issuer-Chain":
                      urlquote(c.qe_identity_issuer_chain.decode()),
                      "Content-Type": "application/json"}, c.qe_identity),
            "/sgx/certification/v4/pckcrl?ca=platform&encoding=der": (
                200, {"SGX-PCK-CRL-Issuer-Chain": urlquote(c.pck_crl_issuer_chain.decode()),
                      "Content-Type": "application/pkix-crl"}, c.pck_crl),
            "/IntelSGXRootCA.der": (200, {"Content-Type": "application/pkix-crl"}, c.root_crl),
        }
