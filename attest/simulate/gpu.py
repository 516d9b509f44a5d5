"""Simulated NVIDIA GPUs: a fake device PKI, byte-exact SPDM reports, signed RIMs and an OCSP
responder (DESIGN.md "Simulated hardware"); NRAS-style tokens are in
:mod:`attest.simulate.gpu_nras`.

Everything here is signed by test roots generated from a seed; the verifier trusts them only
when a caller passes them explicitly. Keys are derived from the seed (deterministic); ECDSA
signatures are randomized, so reports differ between runs but always verify.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from attest.formats.nvidia_opaque import (
    LATEST_OPAQUE_DATA_VERSION,
    FeatureFlag,
    OpaqueData,
    OpaqueField,
    OpaqueType,
    encode_string,
    encode_uint,
    encode_vbios_version,
)
from attest.formats.nvidia_rim import Rim, RimMeasurement, rim_to_xml
from attest.formats.spdm_measurements import (
    GetMeasurementsRequest,
    MeasurementBlock,
    MeasurementsResponse,
    SpdmReport,
)

NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2099, 12, 31, tzinfo=UTC)
DICE_TCBINFO = x509.ObjectIdentifier("2.23.133.5.4.1")
SHA384_OID_DER = bytes.fromhex("0609608648016503040202")
OCSP_URL = "http://ocsp.simulated.invalid"
DEVICE_ROLES = ("Fake GSP FMC LF", "Fake GSP BROM", "Fake GH100 Provisioner ICA",
                "Fake GH100 Identity", "Fake NVIDIA Device Identity CA")
RIM_ROLES = ("Fake RIM L4 Signer", "Fake Reference Value L3", "Fake Reference Value CA",
             "Fake CoRIM signing Root CA")
VBIOS_INDEXES = frozenset({0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12})
DRIVER_INDEXES = frozenset({7, *range(13, 41)})


def derive_key(seed: bytes, label: str) -> ec.EllipticCurvePrivateKey:
    """A P-384 key from ``seed`` and ``label`` (test keys only)."""
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973  # noqa: E501
    scalar = int.from_bytes(hashlib.sha512(seed + b"/" + label.encode()).digest(), "big")
    return ec.derive_private_key(scalar % (n - 1) + 1, ec.SECP384R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Simulated NVIDIA"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
          issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool, serial: int,
          extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
          not_before: datetime = NOT_BEFORE, not_after: datetime = NOT_AFTER,
          ) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(serial)
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.sign(issuer_key, hashes.SHA384())


def dice_tcbinfo(fwid: bytes) -> x509.UnrecognizedExtension:
    """TCG DICE TcbInfo with one SHA-384 FWID: SEQUENCE { [6] { SEQUENCE { oid, OCTET } } }."""
    fw = b"\x30" + bytes([len(SHA384_OID_DER) + 2 + len(fwid)]) + SHA384_OID_DER + b"\x04" \
        + bytes([len(fwid)]) + fwid
    fwids = b"\xa6" + bytes([len(fw)]) + fw
    return x509.UnrecognizedExtension(DICE_TCBINFO, b"\x30" + bytes([len(fwids)]) + fwids)


@dataclass
class Pki:
    """A certificate chain (leaf first) and the private keys, same order."""

    certificates: list[x509.Certificate]
    keys: list[ec.EllipticCurvePrivateKey]

    @property
    def root(self) -> x509.Certificate:
        return self.certificates[-1]

    @property
    def leaf_key(self) -> ec.EllipticCurvePrivateKey:
        return self.keys[0]

    def pem(self, *, with_root: bool = True) -> bytes:
        certs = self.certificates if with_root else self.certificates[:-1]
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)

    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)


def make_chain(seed: bytes, roles: tuple[str, ...], *,
               leaf_extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
               ocsp_url: str | None = None, leaf_not_after: datetime = NOT_AFTER) -> Pki:
    """A chain named by ``roles`` (leaf first, root last), keys derived from ``seed``."""
    keys = [derive_key(seed, role) for role in roles]
    certs: list[x509.Certificate] = []
    aia = ([(x509.AuthorityInformationAccess([x509.AccessDescription(
        x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]),
        False)] if ocsp_url else [])
    for i in range(len(roles) - 1, -1, -1):
        issuer = min(i + 1, len(roles) - 1)
        exts = list(leaf_extensions) if i == 0 else []
        certs.insert(0, _cert(roles[i], keys[i], roles[issuer], keys[issuer], ca=i > 0,
                              serial=_serial(seed, roles[i]), extensions=exts + aia,
                              not_after=leaf_not_after if i == 0 else NOT_AFTER))
    return Pki(certs, keys)


def _serial(seed: bytes, role: str) -> int:
    return int.from_bytes(hashlib.sha256(seed + b"/serial/" + role.encode()).digest()[:8],
                          "big") >> 1


def default_measurements(seed: bytes, count: int = 64) -> list[bytes]:
    return [hashlib.sha384(seed + f"/measurement/{i}".encode()).digest() for i in range(count)]


def sign_report(request: GetMeasurementsRequest, response_fields: dict[str, Any],
                key: ec.EllipticCurvePrivateKey, trailing: bytes = b"") -> SpdmReport:
    """Build a response whose signature covers request || response-without-signature."""
    unsigned = MeasurementsResponse(signature=b"", **response_fields)
    der = key.sign(request.to_bytes() + unsigned.unsigned_bytes(), ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der)
    sig = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    return SpdmReport(request, MeasurementsResponse(signature=sig, **response_fields), trailing)


@dataclass
class SimulatedGpu:
    """One fake Hopper GPU in CC mode."""

    seed: bytes = b"attestlog-sim-gpu"
    driver_version: str = "550.90.07"
    vbios_version: str = "96.00.9F.00.01"
    project: str = "1010"
    project_sku: str = "0200"
    chip_sku: str = "882"
    nvdec0_status: int = 0x55
    protected_pcie_status: int = 0x55
    # As current firmware (H100, driver 590): OPAQUE_DATA_VERSION and FEATURE_FLAG, 2 bytes
    # each; CHIP_INFO only where a chip sends it (Blackwell and later). None leaves one out.
    opaque_data_version: int | None = LATEST_OPAQUE_DATA_VERSION
    feature_flag: int | None = FeatureFlag.SPT
    chip_info: str | None = None
    measurements: list[bytes] = field(default_factory=list)
    pki: Pki | None = None

    def __post_init__(self) -> None:
        if not self.measurements:
            self.measurements = default_measurements(self.seed)
        if self.pki is None:
            self.pki = make_chain(self.seed, DEVICE_ROLES, ocsp_url=OCSP_URL,
                                  leaf_extensions=[(dice_tcbinfo(self.fwid), False)])

    @property
    def fwid(self) -> bytes:
        return hashlib.sha384(self.seed + b"/fwid").digest()

    @property
    def device_pki(self) -> Pki:
        assert self.pki is not None
        return self.pki

    def opaque(self) -> OpaqueData:
        fields = [
            OpaqueField(OpaqueType.DRIVER_VERSION, encode_string(self.driver_version)),
            OpaqueField(OpaqueType.VBIOS_VERSION, encode_vbios_version(self.vbios_version)),
            OpaqueField(OpaqueType.PROJECT, encode_string(self.project)),
            OpaqueField(OpaqueType.PROJECT_SKU, encode_string(self.project_sku)),
            OpaqueField(OpaqueType.CHIP_SKU, encode_string(self.chip_sku, 9)),
            OpaqueField(OpaqueType.NVDEC0_STATUS, bytes([self.nvdec0_status])),
            OpaqueField(OpaqueType.FWID, self.fwid),
            OpaqueField(OpaqueType.PROTECTED_PCIE_STATUS, bytes([self.protected_pcie_status])),
        ]
        if self.opaque_data_version is not None:
            fields.append(OpaqueField(OpaqueType.OPAQUE_DATA_VERSION,
                                      encode_uint(self.opaque_data_version)))
        if self.chip_info is not None:
            fields.append(OpaqueField(OpaqueType.CHIP_INFO, encode_string(self.chip_info)))
        if self.feature_flag is not None:
            fields.append(OpaqueField(OpaqueType.FEATURE_FLAG, encode_uint(self.feature_flag)))
        return OpaqueData(tuple(fields))

    def report(self, nonce: bytes, *, key: ec.EllipticCurvePrivateKey | None = None,
               opaque: OpaqueData | None = None, trailing: bytes = b"") -> bytes:
        """A signed report for ``nonce`` (overrides let tests forge one thing at a time)."""
        request = GetMeasurementsRequest(param1=0x01, param2=0xFF, nonce=nonce, slot_id=0)
        blocks = tuple(MeasurementBlock(index=i + 1, value_type=0x01, value=v)
                       for i, v in enumerate(self.measurements))
        fields = dict(param1=0, param2=0, blocks=blocks,
                      nonce=hashlib.sha256(self.seed + nonce).digest(),
                      opaque_data=(opaque or self.opaque()).to_bytes())
        return sign_report(request, fields, key or self.device_pki.leaf_key,
                           trailing).to_bytes()

    def chain_pem(self) -> bytes:
        return self.device_pki.pem()

    def rims(self) -> tuple[Rim, Rim]:
        """Matching (driver, vbios) RIMs: RIM index i = SPDM block i + 1."""

        def rim(kind: str, version: str, indexes: frozenset[int]) -> Rim:
            ms = tuple(RimMeasurement(index=i, active=i in indexes,
                                      alternatives=(self.measurements[i],), name=f"M{i}")
                       for i in range(len(self.measurements)))
            tag = hashlib.sha384(f"{kind}/{version}".encode()).hexdigest()
            return Rim(tag_id=tag, name="GH100", version=version, product="GH100",
                       manufacturer_id="5703", measurements=ms)

        return (rim("driver", self.driver_version, DRIVER_INDEXES),
                rim("vbios", self.vbios_version, VBIOS_INDEXES))


def make_rim_pki(seed: bytes = b"attestlog-sim-rim", *,
                 signer_not_after: datetime = NOT_AFTER) -> Pki:
    return make_chain(seed, RIM_ROLES, leaf_not_after=signer_not_after)


def sign_rim(rim: Rim, pki: Pki) -> bytes:
    """An enveloped XML-DSig (ecdsa-sha384, sha384, c14n 1.1) over ``rim``, chain in KeyInfo."""
    from lxml import etree
    from signxml import CanonicalizationMethod, XMLSigner
    from signxml.algorithms import DigestAlgorithm, SignatureMethod

    signer = XMLSigner(signature_algorithm=SignatureMethod.ECDSA_SHA384,
                       digest_algorithm=DigestAlgorithm.SHA384,
                       c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_1)
    root = etree.fromstring(rim_to_xml(rim))
    certs = [c.public_bytes(serialization.Encoding.PEM).decode() for c in pki.certificates]
    key_pem = pki.leaf_key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
    signed = signer.sign(root, key=key_pem, cert=certs)
    return etree.tostring(signed)


# --- OCSP ---------------------------------------------------------------------------------

@dataclass
class OcspResponder:
    """Answers RFC 6960 requests for certificates issued in ``pki`` (the issuer's key signs).

    ``revoked`` holds serial numbers to report as revoked; ``echo_nonce`` can be turned off
    to test the nonce check; ``now`` is the clock of the responses.
    """

    pki: Pki
    now: datetime
    revoked: set[int] = field(default_factory=set)
    echo_nonce: bool = True
    validity: timedelta = timedelta(days=7)
    calls: int = 0

    def respond(self, request_der: bytes) -> bytes:
        self.calls += 1
        req = ocsp.load_der_ocsp_request(request_der)
        index = next((i for i, c in enumerate(self.pki.certificates)
                      if c.serial_number == req.serial_number), None)
        if index is None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(
                ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
        cert = self.pki.certificates[index]
        issuer_i = min(index + 1, len(self.pki.certificates) - 1)
        issuer, issuer_key = self.pki.certificates[issuer_i], self.pki.keys[issuer_i]
        status = (ocsp.OCSPCertStatus.REVOKED if cert.serial_number in self.revoked
                  else ocsp.OCSPCertStatus.GOOD)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert, issuer=issuer, algorithm=hashes.SHA384(), cert_status=status,
            this_update=self.now, next_update=self.now + self.validity,
            revocation_time=self.now - timedelta(days=1) if status is ocsp.OCSPCertStatus.REVOKED
            else None,
            revocation_reason=None).responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
        if self.echo_nonce:
            for ext in req.extensions:
                if isinstance(ext.value, x509.OCSPNonce):
                    builder = builder.add_extension(ext.value, critical=False)
        return builder.sign(issuer_key, hashes.SHA384()).public_bytes(
            serialization.Encoding.DER)

    def handler(self, method: str, target: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """A :class:`attest.simulate.fake_service.FakeService` fallback: POST, or GET with the
        request base64 + URL-encoded in the path (RFC 6960 appendix A.1)."""
        from urllib.parse import unquote, urlsplit

        if method == "GET":
            body = base64.b64decode(unquote(urlsplit(target).path.rsplit("/", 1)[-1]))
        return 200, {"Content-Type": "application/ocsp-response"}, self.respond(body)


# --- a fake NVML module -------------------------------------------------------------------

class FakeNvmlError(Exception):
    def __init__(self, value: int) -> None:
        self.value = value
        super().__init__(f"NVML error {value}")


@dataclass
class FakeNvml:
    """Duck-types the parts of ``pynvml`` that attest/collect/nvml_gpu.py calls, backed by
    simulated GPUs. ``fail`` maps a function name to an NVML error value to raise."""

    gpus: list[SimulatedGpu] = field(default_factory=list)
    cc_feature: int = 1
    devtools: int = 0
    driver_version: str = "550.90.07"
    fail: dict[str, int] = field(default_factory=dict)
    initialised: bool = False

    NVMLError = FakeNvmlError
    NVML_ERROR_UNINITIALIZED = 1
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_DRIVER_NOT_LOADED = 9
    NVML_ERROR_LIBRARY_NOT_FOUND = 12

    def _maybe_fail(self, name: str) -> None:
        if name in self.fail:
            raise FakeNvmlError(self.fail[name])

    def nvmlInit(self) -> None:
        self._maybe_fail("nvmlInit")
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.initialised = False

    def nvmlDeviceGetCount(self) -> int:
        self._maybe_fail("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return self.driver_version.encode()

    def nvmlSystemGetConfComputeState(self) -> Any:
        from types import SimpleNamespace

        self._maybe_fail("nvmlSystemGetConfComputeState")
        return SimpleNamespace(environment=1, ccFeature=self.cc_feature,
                               devToolsMode=self.devtools)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return f"GPU-{hashlib.sha256(self.gpus[handle].seed).hexdigest()[:8]}"

    def nvmlDeviceGetConfComputeGpuAttestationReport(self, handle: int,
                                                     nonce: Any) -> Any:
        from types import SimpleNamespace

        self._maybe_fail("nvmlDeviceGetConfComputeGpuAttestationReport")
        if not isinstance(nonce, bytes | bytearray):  # a ctypes report struct (nvml.h)
            nonce = bytes(nonce.nonce)
        report = self.gpus[handle].report(bytes(nonce))
        buffer = report.ljust(0x2000, b"\x00")
        return SimpleNamespace(attestationReport=buffer, attestationReportSize=len(report),
                               isCecAttestationReportPresent=0)

    def nvmlDeviceGetConfComputeGpuCertificate(self, handle: int) -> Any:
        from types import SimpleNamespace

        self._maybe_fail("nvmlDeviceGetConfComputeGpuCertificate")
        chain = self.gpus[handle].chain_pem()
        return SimpleNamespace(attestationCertChain=chain.ljust(0x1400, b"\x00"),
                               attestationCertChainSize=len(chain))


# --- a fake NVIDIA RIM service + OCSP responder on one FakeService ---------------------------

def fake_nvidia_service(gpus: list[SimulatedGpu], rim_pki: Pki, now: datetime) -> Any:
    """A :class:`FakeService` serving ``/v1/rim/<id>`` (signed RIMs of every GPU, JSON as the
    RIM service answers) and OCSP for every GPU's chain at any other path (GET or POST).
    Run it with ``serve(...)`` and point the verifier at ``<base>/v1/rim/`` and ``<base>``."""
    from attest.simulate.fake_service import FakeService

    routes: dict[str, Any] = {}
    for gpu in gpus:
        o = gpu.opaque()
        driver, vbios = gpu.rims()
        names = {f"NV_GPU_DRIVER_GH100_{gpu.driver_version}": driver,
                 f"NV_GPU_VBIOS_{o.project}_{o.project_sku}_{o.chip_sku}_"
                 f"{gpu.vbios_version.replace('.', '').upper()}": vbios}
        for rim_id, rim in names.items():
            body = json.dumps({"id": rim_id, "rim_format": "SWID",
                               "rim": base64.b64encode(sign_rim(rim, rim_pki)).decode()})
            routes[f"/v1/rim/{rim_id}"] = (200, {"Content-Type": "application/json"},
                                           body.encode())
    responders = [OcspResponder(g.device_pki, now=now) for g in gpus]

    def ocsp_any(method: str, target: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        answer = (404, {}, b"")
        for responder in responders:
            answer = responder.handler(method, target, body)
            if len(answer[2]) > 8:  # this responder knows the certificate
                return answer
        return answer

    return FakeService(routes, fallback=ocsp_any)
