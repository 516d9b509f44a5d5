"""Intel TDX quotes, versions 4 and 5: a strict parser and a byte-exact serializer.

Spec: Intel TDX DCAP Quoting Library API (rev. 0.9, 2023), appendix A "Quote Format":
A.3 Version 4 (and A.4 Version 5) Quote Format. Offsets below are the spec's, in hex.

Layout of a quote::

    0x000  Quote Header                          48 bytes (A.3.1)
    v4:
    0x030  TD Quote Body (TDX 1.0)              584 bytes (A.3.2)
    0x278  Quote Signature Data Len               4 bytes
    0x27C  Quote Signature Data                 var      (A.3.8)
    v5:
    0x030  Quote Body Descriptor: type (u16), size (u32)  (A.4.1)
    0x036  TD Quote Body, TDX 1.0 (type 2, 584 B) or TDX 1.5 (type 3, 648 B)
    ...    Quote Signature Data Len, Quote Signature Data

The signed span (the attestation key's ECDSA signature) is everything before the Quote
Signature Data Len. Quote Signature Data is the ECDSA 256-bit signature (r||s), the raw
attestation public key (X||Y), then Certification Data of type 6 (QE Report Certification
Data, A.3.11): the QE's 384-byte SGX report, its signature by the PCK key, the QE
authentication data, and inner Certification Data of type 5 (PCK certificate chain, PEM).

Real quotes come in fixed-size buffers: bytes after the declared signature data are kept
in :attr:`TdxQuote.trailing` (and written back by the serializer), never interpreted.
Judgements (versions accepted, signatures, policy) are left to the verifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

from attest.formats.binary import Reader, mbz, require_min_size, require_size, u16le, u32le
from transparency_log.common.errors import FormatError

CHECK = "tdx.quote.format"

HEADER_SIZE = 0x30
TD_BODY_10_SIZE = 0x248  # 584: TD Quote Body for TDX 1.0 (A.3.2)
TD_BODY_15_SIZE = 0x288  # 648: TDX 1.5 adds TEE_TCB_SVN2 and MRSERVICETD (A.4.2)
ENCLAVE_REPORT_SIZE = 0x180  # 384: SGX REPORTBODY of the QE (A.3.10)
ECDSA_SIG_SIZE = 64
ECDSA_KEY_SIZE = 64
MEASUREMENT_SIZE = 48

QUOTE_VERSION_4 = 4
QUOTE_VERSION_5 = 5
ATT_KEY_TYPE_ECDSA_P256 = 2
TEE_TYPE_TDX = 0x00000081
INTEL_QE_VENDOR_ID = bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")

BODY_TYPE_SGX = 1
BODY_TYPE_TDX10 = 2
BODY_TYPE_TDX15 = 3
BODY_SIZES = {BODY_TYPE_TDX10: TD_BODY_10_SIZE, BODY_TYPE_TDX15: TD_BODY_15_SIZE}

CERT_DATA_PCK_CHAIN = 5  # concatenated PCK cert chain, PEM
CERT_DATA_QE_REPORT = 6  # QE Report Certification Data

MAX_SIGNATURE_DATA = 64 * 1024  # hard cap; real ones are ~4.5 KiB
MAX_QE_AUTH_DATA = 4096

# TDATTRIBUTES bits (Intel TDX Module ABI spec, table "TD Attributes Definition").
TD_ATTRIBUTE_BITS = {
    "DEBUG": 0,
    "LASS": 27,
    "SEPT_VE_DISABLE": 28,
    "MIGRATABLE": 29,
    "PKS": 30,
    "KL": 31,
    "PERFMON": 63,
}


@dataclass(frozen=True)
class QuoteHeader:
    """Quote Header (A.3.1): 48 bytes; 0x08..0x0C is reserved and must be zero."""

    version: int  # 0x00 u16
    attestation_key_type: int  # 0x02 u16
    tee_type: int  # 0x04 u32
    qe_vendor_id: bytes  # 0x0C 16
    user_data: bytes  # 0x1C 20

    @classmethod
    def parse(cls, data: bytes) -> QuoteHeader:
        require_size(data, HEADER_SIZE, check=CHECK, field="Quote Header")
        mbz(data, 0x08, 0x0C, check=CHECK, field="Quote Header.Reserved")
        return cls(u16le(data, 0x00), u16le(data, 0x02), u32le(data, 0x04),
                   data[0x0C:0x1C], data[0x1C:0x30])

    def to_bytes(self) -> bytes:
        return (self.version.to_bytes(2, "little") + self.attestation_key_type.to_bytes(2, "little")
                + self.tee_type.to_bytes(4, "little") + bytes(4)
                + _fixed(self.qe_vendor_id, 16, "QE_VENDOR_ID")
                + _fixed(self.user_data, 20, "USER_DATA"))


# (attribute, spec name, offset, size) of the TD Quote Body fields (A.3.2, A.4.2).
_TD_BODY_FIELDS = (
    ("tee_tcb_svn", "TEE_TCB_SVN", 0x000, 16),
    ("mrseam", "MRSEAM", 0x010, 48),
    ("mrsignerseam", "MRSIGNERSEAM", 0x040, 48),
    ("seam_attributes", "SEAMATTRIBUTES", 0x070, 8),
    ("td_attributes", "TDATTRIBUTES", 0x078, 8),
    ("xfam", "XFAM", 0x080, 8),
    ("mrtd", "MRTD", 0x088, 48),
    ("mrconfigid", "MRCONFIGID", 0x0B8, 48),
    ("mrowner", "MROWNER", 0x0E8, 48),
    ("mrownerconfig", "MROWNERCONFIG", 0x118, 48),
    ("rtmr0", "RTMR0", 0x148, 48),
    ("rtmr1", "RTMR1", 0x178, 48),
    ("rtmr2", "RTMR2", 0x1A8, 48),
    ("rtmr3", "RTMR3", 0x1D8, 48),
    ("report_data", "REPORTDATA", 0x208, 64),
)
_TD_BODY_15_FIELDS = (
    ("tee_tcb_svn2", "TEE_TCB_SVN2", 0x248, 16),
    ("mrservicetd", "MRSERVICETD", 0x258, 48),
)
SPEC_NAMES = {attr: name for attr, name, _, _ in _TD_BODY_FIELDS + _TD_BODY_15_FIELDS}


@dataclass(frozen=True)
class TdReportBody:
    """TD Quote Body: TDX 1.0 (584 bytes) or TDX 1.5 (648 bytes, the last two fields set)."""

    tee_tcb_svn: bytes
    mrseam: bytes
    mrsignerseam: bytes
    seam_attributes: bytes
    td_attributes: bytes
    xfam: bytes
    mrtd: bytes
    mrconfigid: bytes
    mrowner: bytes
    mrownerconfig: bytes
    rtmr0: bytes
    rtmr1: bytes
    rtmr2: bytes
    rtmr3: bytes
    report_data: bytes
    tee_tcb_svn2: bytes | None = None  # TDX 1.5 only
    mrservicetd: bytes | None = None  # TDX 1.5 only

    @classmethod
    def parse(cls, data: bytes) -> TdReportBody:
        if len(data) not in (TD_BODY_10_SIZE, TD_BODY_15_SIZE):
            raise FormatError(CHECK, "TD Quote Body has the wrong size", field="TD Quote Body",
                              got=len(data), want=f"{TD_BODY_10_SIZE} or {TD_BODY_15_SIZE}")
        fields = _TD_BODY_FIELDS + (_TD_BODY_15_FIELDS if len(data) == TD_BODY_15_SIZE else ())
        return cls(**{attr: data[off:off + size] for attr, _, off, size in fields})

    @property
    def is_tdx15(self) -> bool:
        return self.tee_tcb_svn2 is not None

    @property
    def rtmrs(self) -> tuple[bytes, bytes, bytes, bytes]:
        return (self.rtmr0, self.rtmr1, self.rtmr2, self.rtmr3)

    @property
    def td_attribute_flags(self) -> tuple[str, ...]:
        """Names of the TDATTRIBUTES bits that are set (unknown bits as ``BIT<n>``)."""
        value = int.from_bytes(self.td_attributes, "little")
        names = {bit: name for name, bit in TD_ATTRIBUTE_BITS.items()}
        return tuple(names.get(b, f"BIT{b}") for b in range(64) if value >> b & 1)

    def td_attribute(self, name: str) -> bool:
        """Whether the named TDATTRIBUTES bit (see TD_ATTRIBUTE_BITS) is set."""
        return bool(int.from_bytes(self.td_attributes, "little") >> TD_ATTRIBUTE_BITS[name] & 1)

    def to_bytes(self) -> bytes:
        fields = _TD_BODY_FIELDS + (_TD_BODY_15_FIELDS if self.is_tdx15 else ())
        if not self.is_tdx15 and self.mrservicetd is not None:
            raise FormatError(CHECK, "MRSERVICETD without TEE_TCB_SVN2", field="MRSERVICETD")
        return b"".join(_fixed(getattr(self, attr), size, name) for attr, name, _, size in fields)


@dataclass(frozen=True)
class EnclaveReportBody:
    """The QE's SGX REPORTBODY (A.3.10, 384 bytes); reserved ranges must be zero."""

    cpu_svn: bytes  # 0x000 16
    misc_select: int  # 0x010 u32
    isv_ext_prod_id: bytes  # 0x020 16
    attributes: bytes  # 0x030 16
    mr_enclave: bytes  # 0x040 32
    mr_signer: bytes  # 0x080 32
    config_id: bytes  # 0x0C0 64
    isv_prod_id: int  # 0x100 u16
    isv_svn: int  # 0x102 u16
    config_svn: int  # 0x104 u16
    isv_family_id: bytes  # 0x130 16
    report_data: bytes  # 0x140 64

    @classmethod
    def parse(cls, data: bytes) -> EnclaveReportBody:
        require_size(data, ENCLAVE_REPORT_SIZE, check=CHECK, field="QE Report")
        for lo, hi in ((0x014, 0x020), (0x060, 0x080), (0x0A0, 0x0C0), (0x106, 0x130)):
            mbz(data, lo, hi, check=CHECK, field="QE Report.Reserved")
        return cls(data[0x00:0x10], u32le(data, 0x10), data[0x20:0x30], data[0x30:0x40],
                   data[0x40:0x60], data[0x80:0xA0], data[0xC0:0x100], u16le(data, 0x100),
                   u16le(data, 0x102), u16le(data, 0x104), data[0x130:0x140],
                   data[0x140:0x180])

    def to_bytes(self) -> bytes:
        return (_fixed(self.cpu_svn, 16, "CPUSVN") + self.misc_select.to_bytes(4, "little")
                + bytes(12) + _fixed(self.isv_ext_prod_id, 16, "ISVEXTPRODID")
                + _fixed(self.attributes, 16, "ATTRIBUTES")
                + _fixed(self.mr_enclave, 32, "MRENCLAVE")
                + bytes(32) + _fixed(self.mr_signer, 32, "MRSIGNER") + bytes(32)
                + _fixed(self.config_id, 64, "CONFIGID") + self.isv_prod_id.to_bytes(2, "little")
                + self.isv_svn.to_bytes(2, "little") + self.config_svn.to_bytes(2, "little")
                + bytes(42) + _fixed(self.isv_family_id, 16, "ISVFAMILYID")
                + _fixed(self.report_data, 64, "REPORTDATA"))


@dataclass(frozen=True)
class QeReportCertificationData:
    """Certification Data type 6 (A.3.11) wrapping type 5 (the PCK chain, PEM)."""

    qe_report: bytes  # the raw 384 bytes, as signed by the PCK key
    qe_report_signature: bytes  # ECDSA P-256 r||s
    qe_auth_data: bytes
    pck_cert_chain: bytes  # type 5 data: PEM certificates, leaf first (may end in NUL)
    inner_type: int = CERT_DATA_PCK_CHAIN

    @cached_property
    def qe_report_body(self) -> EnclaveReportBody:
        """The decoded QE report (decoded once per object: ``qe_report`` is immutable)."""
        return EnclaveReportBody.parse(self.qe_report)

    @classmethod
    def parse(cls, data: bytes) -> QeReportCertificationData:
        r = Reader(data, check=CHECK)
        qe_report = r.take(ENCLAVE_REPORT_SIZE, "QE Report")
        EnclaveReportBody.parse(qe_report)  # strict: reserved ranges
        sig = r.take(ECDSA_SIG_SIZE, "QE Report Signature")
        auth_size = r.uint(2, "QE Authentication Data.Size")
        if auth_size > MAX_QE_AUTH_DATA:
            raise FormatError(CHECK, "QE authentication data too large",
                              field="QE Authentication Data.Size", got=auth_size,
                              want=f"<= {MAX_QE_AUTH_DATA}")
        auth = r.take(auth_size, "QE Authentication Data")
        inner_type, chain = _certification_data(r, "QE Certification Data", CERT_DATA_PCK_CHAIN,
                                                "its container")
        if not chain:
            raise FormatError(CHECK, "empty PCK certificate chain", field="PCK Cert Chain")
        return cls(qe_report, sig, auth, chain, inner_type)

    def to_bytes(self) -> bytes:
        return (_fixed(self.qe_report, ENCLAVE_REPORT_SIZE, "QE Report")
                + _fixed(self.qe_report_signature, ECDSA_SIG_SIZE, "QE Report Signature")
                + len(self.qe_auth_data).to_bytes(2, "little") + self.qe_auth_data
                + self.inner_type.to_bytes(2, "little")
                + len(self.pck_cert_chain).to_bytes(4, "little") + self.pck_cert_chain)


def _certification_data(r: Reader, name: str, want_type: int, container: str
                        ) -> tuple[int, bytes]:
    """A Certification Data header (u16 type, u32 size; A.3.9) of the one supported type
    ``want_type``, whose data fills the rest of ``container``: (type, data)."""
    ctype = r.uint(2, f"{name} Type")
    if ctype != want_type:
        raise FormatError(CHECK, f"unsupported {name} type", field=f"{name} Type",
                          got=ctype, want=want_type)
    size = r.uint(4, f"{name}.Size")
    if size != r.remaining:
        raise FormatError(CHECK, f"{name} size disagrees with {container}",
                          field=f"{name}.Size", got=size, want=r.remaining)
    return ctype, r.rest()


@dataclass(frozen=True)
class QuoteSignatureData:
    """ECDSA 256-bit Quote Signature Data (A.3.8): signature, attestation key, cert data."""

    signature: bytes  # r||s over the signed span
    attestation_key: bytes  # raw P-256 public key X||Y
    certification: QeReportCertificationData
    certification_type: int = CERT_DATA_QE_REPORT

    @classmethod
    def parse(cls, data: bytes) -> QuoteSignatureData:
        r = Reader(data, check=CHECK)
        sig = r.take(ECDSA_SIG_SIZE, "Quote Signature")
        key = r.take(ECDSA_KEY_SIZE, "ECDSA Attestation Key")
        ctype, cert = _certification_data(r, "Certification Data", CERT_DATA_QE_REPORT,
                                          "the signature data")
        return cls(sig, key, QeReportCertificationData.parse(cert), ctype)

    def to_bytes(self) -> bytes:
        cert = self.certification.to_bytes()
        return (_fixed(self.signature, ECDSA_SIG_SIZE, "Quote Signature")
                + _fixed(self.attestation_key, ECDSA_KEY_SIZE, "ECDSA Attestation Key")
                + self.certification_type.to_bytes(2, "little")
                + len(cert).to_bytes(4, "little") + cert)


@dataclass(frozen=True)
class TdxQuote:
    """A TDX quote (v4 or v5). ``trailing`` holds bytes after the signature data, if any."""

    header: QuoteHeader
    body: TdReportBody
    signature_data: QuoteSignatureData
    body_type: int = BODY_TYPE_TDX10  # v5 descriptor; implied TDX 1.0 for v4
    trailing: bytes = b""

    @property
    def version(self) -> int:
        return self.header.version

    @property
    def signed_bytes(self) -> bytes:
        """The span the attestation key signs: header (+ v5 body descriptor) + body.

        For a quote from :func:`parse_quote` this is the exact slice of the parsed bytes
        (kept on the object, not a dataclass field, so ``dataclasses.replace`` never carries
        it to a quote with other fields); otherwise it is serialized from the fields, which
        gives the same bytes for a parsed quote (the parser is strict and round-trips)."""
        span = self.__dict__.get("_signed_span")
        if span is not None:
            return span
        body = self.body.to_bytes()
        if self.header.version == QUOTE_VERSION_4:
            return self.header.to_bytes() + body
        return (self.header.to_bytes() + self.body_type.to_bytes(2, "little")
                + len(body).to_bytes(4, "little") + body)

    def to_bytes(self) -> bytes:
        sig = self.signature_data.to_bytes()
        return self.signed_bytes + len(sig).to_bytes(4, "little") + sig + self.trailing


PARSE_MEMO_SIZE = 256
"""How many parsed quotes are kept by their exact bytes (parsing is a pure function of the
bytes and a TdxQuote is immutable; a refusal raises and is never kept)."""


def parse_quote(data: bytes) -> TdxQuote:
    """Parse a TDX quote v4 or v5. Raises FormatError naming the field on any defect.

    Checks that the structure is self-consistent (version, body type and sizes, certification
    data types and sizes, reserved bytes); attestation key type, TEE type and vendor are
    checked here too since no other layout is defined for them. Parsed once per exact bytes
    (a bounded, thread-safe memo: the same quote object is returned for the same bytes).
    """
    return _parse_quote(bytes(data))


@lru_cache(maxsize=PARSE_MEMO_SIZE)
def _parse_quote(data: bytes) -> TdxQuote:
    require_min_size(data, HEADER_SIZE, check=CHECK, field="Quote")
    header = QuoteHeader.parse(data[:HEADER_SIZE])
    if header.attestation_key_type != ATT_KEY_TYPE_ECDSA_P256:
        raise FormatError(CHECK, "unsupported attestation key type",
                          field="Attestation Key Type", got=header.attestation_key_type,
                          want=ATT_KEY_TYPE_ECDSA_P256)
    if header.tee_type != TEE_TYPE_TDX:
        raise FormatError(CHECK, "not a TDX quote", field="TEE Type",
                          got=f"0x{header.tee_type:x}", want=f"0x{TEE_TYPE_TDX:x}")
    r = Reader(data, check=CHECK)
    r.take(HEADER_SIZE, "Quote Header")
    if header.version == QUOTE_VERSION_4:
        body_type = BODY_TYPE_TDX10
        body_raw = r.take(TD_BODY_10_SIZE, "TD Quote Body")
    elif header.version == QUOTE_VERSION_5:
        body_type = r.uint(2, "Quote Body Type")
        body_size = r.uint(4, "Quote Body Size")
        if body_type not in BODY_SIZES:
            raise FormatError(CHECK, "unsupported quote body type", field="Quote Body Type",
                              got=body_type, want=f"{BODY_TYPE_TDX10} or {BODY_TYPE_TDX15}")
        if body_size != BODY_SIZES[body_type]:
            raise FormatError(CHECK, "quote body size does not match its type",
                              field="Quote Body Size", got=body_size, want=BODY_SIZES[body_type])
        body_raw = r.take(body_size, "TD Quote Body")
    else:
        raise FormatError(CHECK, "unsupported quote version", field="Version",
                          got=header.version, want="4 or 5")
    body = TdReportBody.parse(body_raw)
    sig_size = r.uint(4, "Quote Signature Data Len")
    if sig_size > MAX_SIGNATURE_DATA:
        raise FormatError(CHECK, "signature data too large", field="Quote Signature Data Len",
                          got=sig_size, want=f"<= {MAX_SIGNATURE_DATA}")
    signed_end = r.pos - 4
    sig = QuoteSignatureData.parse(r.take(sig_size, "Quote Signature Data"))
    quote = TdxQuote(header, body, sig, body_type, r.rest())
    # Not a field: the exact signed span (A.3: everything before the Signature Data Len).
    object.__setattr__(quote, "_signed_span", data[:signed_end])
    return quote


def _fixed(value: bytes, size: int, field: str) -> bytes:
    """Serializer guard: a fixed-size field must have exactly its size."""
    if len(value) != size:
        raise FormatError(CHECK, "field has the wrong size", field=field, got=len(value),
                          want=size)
    return bytes(value)
