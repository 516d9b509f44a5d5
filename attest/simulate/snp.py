"""Simulated AMD SEV-SNP hardware: fake ARK/ASK/ASVK roots, VCEKs/VLEKs with the KDS
extensions of each product, byte-exact reports of each version signed by them, and CRLs.

For flows, the demo and tests on machines without SNP — never instead of the real vectors.
Every certificate says "attestlog simulated" in its organisation, and the verifier trusts
these roots only when a caller passes them explicitly. Certificates are RSA-PSS (SHA-384,
salt 48) like AMD's; the ARK/ASK keys are 2048-bit to keep tests fast (AMD's are 4096).
Validity is fixed (2024-01-01 .. 2049-01-01) so nothing here reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from attest.formats.snp_kds_ext import KdsExtensions, encode_kds_extensions
from attest.formats.snp_report import (
    GENOA,
    MILAN,
    SIGNATURE_ALGO_ECDSA_P384_SHA384,
    SIGNED_SIZE,
    SIGNING_KEY_VCEK,
    SIGNING_KEY_VLEK,
    TURIN,
    AttestationReport,
    decode_tcb,
    encode_tcb,
    serialize_report,
)

NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
NOT_AFTER = datetime(2049, 1, 1, tzinfo=UTC)
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
ORG = "attestlog simulated Advanced Micro Devices"
PRODUCT_NAMES = {MILAN: "Milan-B0", GENOA: "Genoa-B1", TURIN: "Turin"}
CPUID = {MILAN: (0x19, 0x01, 0x01), GENOA: (0x19, 0x11, 0x01), TURIN: (0x1A, 0x02, 0x00)}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG)])


def _cert(subject: str, issuer: str, public_key: object, signing_key: rsa.RSAPrivateKey,
          serial: int, *, ca: bool, extensions: dict[str, bytes] | None = None,
          not_before: datetime = NOT_BEFORE, not_after: datetime = NOT_AFTER,
          ) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
         .public_key(public_key).serial_number(serial)  # type: ignore[arg-type]
         .not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    for oid, value in (extensions or {}).items():
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value),
                            critical=False)
    return b.sign(signing_key, hashes.SHA384(), rsa_padding=PSS)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@dataclass
class SimulatedAmd:
    """One simulated product: its roots, a chip, and VCEKs issued per TCB on demand."""

    product: str
    chip_id: bytes
    ark_key: rsa.RSAPrivateKey
    ark: x509.Certificate
    ask_key: rsa.RSAPrivateKey
    ask: x509.Certificate
    asvk_key: rsa.RSAPrivateKey
    asvk: x509.Certificate
    vlek_key: ec.EllipticCurvePrivateKey
    vcek_key: ec.EllipticCurvePrivateKey
    csp_id: str = "attestlog-sim-csp"
    hwid_encoding: str = "raw"  # or "octet-string" (both occur in the wild)
    _vceks: dict[int, x509.Certificate] = field(default_factory=dict)
    _vleks: dict[int, x509.Certificate] = field(default_factory=dict)

    @classmethod
    def create(cls, product: str, *, chip_id: bytes | None = None,
               rsa_bits: int = 2048) -> SimulatedAmd:
        """Fresh keys and roots for ``product`` (Milan, Genoa or Turin); ``rsa_bits=4096``
        gives AMD's real ARK/ASK key size (slower to generate)."""
        if product not in PRODUCT_NAMES:
            raise ValueError(f"unknown product {product!r}")
        ark_key = rsa.generate_private_key(65537, rsa_bits)
        ask_key = rsa.generate_private_key(65537, rsa_bits)
        asvk_key = rsa.generate_private_key(65537, rsa_bits)
        ark = _cert(f"ARK-{product}", f"ARK-{product}", ark_key.public_key(), ark_key, 1,
                    ca=True)
        ask = _cert(f"SEV-{product}", f"ARK-{product}", ask_key.public_key(), ark_key, 2,
                    ca=True)
        asvk = _cert(f"SEV-VLEK-{product}", f"ARK-{product}", asvk_key.public_key(),
                     ark_key, 3, ca=True)
        if chip_id is None:
            chip_id = bytes(range(0xA0, 0xE0)) if product != TURIN else \
                bytes(range(0xA0, 0xA8)) + bytes(56)
        return cls(product, chip_id, ark_key, ark, ask_key, ask, asvk_key, asvk,
                   ec.generate_private_key(ec.SECP384R1()),
                   ec.generate_private_key(ec.SECP384R1()))

    @property
    def hwid(self) -> bytes:
        return self.chip_id[:8] if self.product == TURIN else self.chip_id

    def default_tcb(self) -> int:
        return encode_tcb(self.product, boot_loader=3, tee=0, snp=8, microcode=115,
                          fmc=1 if self.product == TURIN else 0)

    def _extensions(self, tcb: int, *, vlek: bool) -> KdsExtensions:
        t = decode_tcb(tcb, self.product)
        return KdsExtensions(
            struct_version=1 if self.product == TURIN else 0,
            product_name=PRODUCT_NAMES[self.product], bl_spl=t.BOOT_LOADER, tee_spl=t.TEE,
            snp_spl=t.SNP, ucode_spl=t.MICROCODE, fmc_spl=t.FMC,
            hwid=None if vlek else self.hwid, hwid_encoding=None if vlek else self.hwid_encoding,
            csp_id=self.csp_id if vlek else None)

    def vcek(self, tcb: int | None = None) -> x509.Certificate:
        """The VCEK for this chip at ``tcb`` (the same key, one certificate per TCB)."""
        tcb = self.default_tcb() if tcb is None else tcb
        if tcb not in self._vceks:
            exts = encode_kds_extensions(self._extensions(tcb, vlek=False))
            self._vceks[tcb] = _cert("SEV-VCEK", f"SEV-{self.product}",
                                     self.vcek_key.public_key(), self.ask_key, 0x100 + len(
                                         self._vceks), ca=False, extensions=exts)
        return self._vceks[tcb]

    def vlek(self, tcb: int | None = None) -> x509.Certificate:
        tcb = self.default_tcb() if tcb is None else tcb
        if tcb not in self._vleks:
            exts = encode_kds_extensions(self._extensions(tcb, vlek=True))
            self._vleks[tcb] = _cert("SEV-VLEK", f"SEV-VLEK-{self.product}",
                                     self.vlek_key.public_key(), self.asvk_key,
                                     0x200 + len(self._vleks), ca=False, extensions=exts)
        return self._vleks[tcb]

    def cert_chain_pem(self, kind: str = "vcek") -> bytes:
        """What KDS serves at /{kind}/v1/{product}/cert_chain: intermediate, then ARK."""
        return pem(self.ask if kind == "vcek" else self.asvk, self.ark)

    def crl(self, revoked_serials: tuple[int, ...] = (), *,
            this_update: datetime = NOT_BEFORE, next_update: datetime = NOT_AFTER) -> bytes:
        """A DER CRL signed by the ARK (RSA-PSS), revoking ``revoked_serials``."""
        b = (x509.CertificateRevocationListBuilder().issuer_name(self.ark.subject)
             .last_update(this_update).next_update(next_update))
        for serial in revoked_serials:
            b = b.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial)
                .revocation_date(this_update).build())
        return b.sign(self.ark_key, hashes.SHA384(), rsa_padding=PSS).public_bytes(
            serialization.Encoding.DER)

    def report_template(self, *, version: int = 2) -> AttestationReport:
        """An unsigned report with plausible values (v2, 3 or 5)."""
        tcb = self.default_tcb()
        fam, mod, step = CPUID[self.product] if version >= 3 else (0, 0, 0)
        return AttestationReport(
            version=version, guest_svn=1, policy=0x30000, family_id=bytes(16),
            image_id=bytes(16), vmpl=0, signature_algo=SIGNATURE_ALGO_ECDSA_P384_SHA384,
            current_tcb=tcb, platform_info=0x1, author_key_en=False, mask_chip_key=False,
            signing_key=SIGNING_KEY_VCEK, report_data=bytes(64), measurement=bytes(48),
            host_data=bytes(32), id_key_digest=bytes(48), author_key_digest=bytes(48),
            report_id=bytes(range(32)), report_id_ma=b"\xff" * 32, reported_tcb=tcb,
            cpuid_fam_id=fam, cpuid_mod_id=mod, cpuid_step=step, chip_id=self.chip_id,
            committed_tcb=tcb, current_build=4, current_minor=52, current_major=1,
            committed_build=4, committed_minor=52, committed_major=1, launch_tcb=tcb,
            launch_mit_vector=0x3 if version >= 5 else 0,
            current_mit_vector=0x3 if version >= 5 else 0,
            signature_r=0, signature_s=0)

    def sign(self, report: AttestationReport,
             key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
        """Serialize ``report`` and sign 0x000..0x29F with the key SIGNING_KEY names (or
        ``key``, e.g. a wrong one for negative tests)."""
        if key is None:
            key = self.vlek_key if report.signing_key == SIGNING_KEY_VLEK else self.vcek_key
        if report.signing_key == SIGNING_KEY_VLEK:
            report = replace(report, chip_id=bytes(64))  # VLEK reports carry no CHIP_ID
        unsigned = serialize_report(replace(report, signature_r=1, signature_s=1))
        r, s = decode_dss_signature(key.sign(unsigned[:SIGNED_SIZE],
                                             ec.ECDSA(hashes.SHA384())))
        return serialize_report(replace(report, signature_r=r, signature_s=s))

    def report(self, *, version: int = 2, vlek: bool = False, **fields: object) -> bytes:
        """A signed report; ``fields`` override the template (spec names, lowercased)."""
        rep = replace(self.report_template(version=version), **fields)  # type: ignore[arg-type]
        if vlek:
            rep = replace(rep, signing_key=SIGNING_KEY_VLEK)
        return self.sign(rep)
