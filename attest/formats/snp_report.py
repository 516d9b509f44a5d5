"""AMD SEV-SNP ATTESTATION_REPORT: strict parser and serializer (no crypto, no judgement).

Spec: AMD "SEV Secure Nested Paging Firmware ABI Specification" (pub. 56860), section
"MSG_REPORT_RSP", table "ATTESTATION_REPORT Structure". The report is 0x4A0 (1184) bytes,
little endian. Report versions 2, 3 and 5 are understood:

- v3 adds CPUID_FAM_ID / CPUID_MOD_ID / CPUID_STEP at 0x188..0x18A (reserved in v2);
- v5 adds LAUNCH_MIT_VECTOR (0x1F8) and CURRENT_MIT_VECTOR (0x200) (reserved before).

Every reserved range must be zero; GUEST POLICY bit 17 must be one; SIGNING_KEY values 2..6
are reserved. The signature (0x2A0) is an ECDSA P-384 (r, s) pair, each a 72-byte little-endian
integer, over bytes 0x000..0x29F (:data:`SIGNED_SIZE`). Whether the version, the signature
algorithm or any value is *acceptable* is left to the verifier and the policy.

TCB_VERSION (a 64-bit value) is laid out per product (spec "TCB_VERSION Structure"):
Milan and Genoa: byte 0 BOOT_LOADER, 1 TEE, 6 SNP, 7 MICROCODE; Turin: byte 0 FMC,
1 BOOT_LOADER, 2 TEE, 3 SNP, 7 MICROCODE. See :func:`decode_tcb`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields

from attest.formats.binary import mbz, require_size
from transparency_log.common.errors import FormatError

CHECK = "snp.report.format"

REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0  # the signature covers bytes 0x000..0x29F
SIGNATURE_OFFSET = 0x2A0
ECDSA_COMPONENT_SIZE = 72  # r and s, little endian (spec "ECDSA P-384 with SHA-384 Signature")
SUPPORTED_VERSIONS = (2, 3, 5)
SIGNATURE_ALGO_ECDSA_P384_SHA384 = 1

FAMILY_ID_SIZE = IMAGE_ID_SIZE = 16
REPORT_DATA_SIZE = 64
MEASUREMENT_SIZE = 48
HOST_DATA_SIZE = 32
DIGEST_SIZE = 48  # ID_KEY_DIGEST, AUTHOR_KEY_DIGEST (SHA-384)
REPORT_ID_SIZE = 32
CHIP_ID_SIZE = 64

# SIGNING_KEY (bits 4:2 of the word at 0x48)
SIGNING_KEY_VCEK = 0
SIGNING_KEY_VLEK = 1
SIGNING_KEY_NONE = 7
SIGNING_KEY_NAMES = {SIGNING_KEY_VCEK: "VCEK", SIGNING_KEY_VLEK: "VLEK", SIGNING_KEY_NONE: "NONE"}

MILAN, GENOA, TURIN = "Milan", "Genoa", "Turin"
PRODUCTS = (MILAN, GENOA, TURIN)

# Spec "GUEST_POLICY Structure": bit positions.
POLICY_SMT = 16
POLICY_RESERVED_ONE = 17
POLICY_MIGRATE_MA = 18
POLICY_DEBUG = 19
POLICY_SINGLE_SOCKET = 20
POLICY_CXL_ALLOW = 21
POLICY_MEM_AES_256_XTS = 22
POLICY_RAPL_DIS = 23
POLICY_CIPHERTEXT_HIDING = 24
POLICY_PAGE_SWAP_DISABLE = 25
POLICY_MAX_BIT = 25

# Spec "PLATFORM_INFO Field": bit positions (bit 6 IOMMU_WRITE_SAFE is Turin's).
PLATFORM_INFO_BITS = {
    "SMT_EN": 0,
    "TSME_EN": 1,
    "ECC_EN": 2,
    "RAPL_DIS": 3,
    "CIPHERTEXT_HIDING_EN": 4,
    "ALIAS_CHECK_COMPLETE": 5,
    "IOMMU_WRITE_SAFE": 6,
    "TIO_EN": 7,
}
_PLATFORM_INFO_KNOWN = sum(1 << b for b in PLATFORM_INFO_BITS.values())


def _bit(value: int, n: int) -> bool:
    return bool((value >> n) & 1)


@dataclass(frozen=True)
class GuestPolicy:
    """The GUEST POLICY bits (spec "GUEST_POLICY Structure") as named booleans."""

    raw: int
    ABI_MINOR: int
    ABI_MAJOR: int
    SMT: bool
    MIGRATE_MA: bool
    DEBUG: bool
    SINGLE_SOCKET: bool
    CXL_ALLOW: bool
    MEM_AES_256_XTS: bool
    RAPL_DIS: bool
    CIPHERTEXT_HIDING: bool
    PAGE_SWAP_DISABLE: bool

    @classmethod
    def decode(cls, raw: int) -> GuestPolicy:
        return cls(
            raw=raw, ABI_MINOR=raw & 0xFF, ABI_MAJOR=(raw >> 8) & 0xFF,
            SMT=_bit(raw, POLICY_SMT), MIGRATE_MA=_bit(raw, POLICY_MIGRATE_MA),
            DEBUG=_bit(raw, POLICY_DEBUG), SINGLE_SOCKET=_bit(raw, POLICY_SINGLE_SOCKET),
            CXL_ALLOW=_bit(raw, POLICY_CXL_ALLOW),
            MEM_AES_256_XTS=_bit(raw, POLICY_MEM_AES_256_XTS),
            RAPL_DIS=_bit(raw, POLICY_RAPL_DIS),
            CIPHERTEXT_HIDING=_bit(raw, POLICY_CIPHERTEXT_HIDING),
            PAGE_SWAP_DISABLE=_bit(raw, POLICY_PAGE_SWAP_DISABLE),
        )


@dataclass(frozen=True)
class PlatformInfo:
    """The PLATFORM_INFO bits (spec "PLATFORM_INFO Field") as named booleans."""

    raw: int
    SMT_EN: bool
    TSME_EN: bool
    ECC_EN: bool
    RAPL_DIS: bool
    CIPHERTEXT_HIDING_EN: bool
    ALIAS_CHECK_COMPLETE: bool
    IOMMU_WRITE_SAFE: bool
    TIO_EN: bool

    @classmethod
    def decode(cls, raw: int) -> PlatformInfo:
        return cls(raw, **{name: _bit(raw, b) for name, b in PLATFORM_INFO_BITS.items()})


@dataclass(frozen=True)
class TcbVersion:
    """A TCB_VERSION decoded for one product. ``FMC`` is None on Milan and Genoa."""

    raw: int
    product: str
    BOOT_LOADER: int
    TEE: int
    SNP: int
    MICROCODE: int
    FMC: int | None = None

    def components(self) -> dict[str, int]:
        """The security patch levels by spec name (FMC first on Turin)."""
        out = {} if self.FMC is None else {"FMC": self.FMC}
        out.update(BOOT_LOADER=self.BOOT_LOADER, TEE=self.TEE, SNP=self.SNP,
                   MICROCODE=self.MICROCODE)
        return out


def decode_tcb(raw: int, product: str) -> TcbVersion:
    """Decode a 64-bit TCB_VERSION for ``product`` (Milan, Genoa or Turin)."""
    b = raw.to_bytes(8, "little")
    if product in (MILAN, GENOA):
        return TcbVersion(raw, product, BOOT_LOADER=b[0], TEE=b[1], SNP=b[6], MICROCODE=b[7])
    if product == TURIN:
        return TcbVersion(raw, product, FMC=b[0], BOOT_LOADER=b[1], TEE=b[2], SNP=b[3],
                          MICROCODE=b[7])
    raise FormatError(CHECK, "unknown product for TCB_VERSION", field="product",
                      got=product, want="|".join(PRODUCTS))


def encode_tcb(product: str, *, boot_loader: int, tee: int, snp: int, microcode: int,
               fmc: int = 0) -> int:
    """The 64-bit TCB_VERSION for ``product`` from its components (inverse of decode_tcb)."""
    b = bytearray(8)
    if product in (MILAN, GENOA):
        if fmc:
            raise FormatError(CHECK, "FMC exists only on Turin", field="FMC", got=fmc, want=0)
        b[0], b[1], b[6], b[7] = boot_loader, tee, snp, microcode
    elif product == TURIN:
        b[0], b[1], b[2], b[3], b[7] = fmc, boot_loader, tee, snp, microcode
    else:
        raise FormatError(CHECK, "unknown product for TCB_VERSION", field="product",
                          got=product, want="|".join(PRODUCTS))
    return int.from_bytes(b, "little")


def product_from_cpuid(family: int, model: int) -> str | None:
    """The KDS product name for a CPUID family/model (report v3+), or None if unknown.

    Family 19h: models 00h-0Fh Milan, 10h-1Fh and A0h-AFh Genoa (incl. Bergamo/Siena);
    family 1Ah: models 00h-1Fh Turin.
    """
    if family == 0x19:
        if model >> 4 == 0x0:
            return MILAN
        if model >> 4 in (0x1, 0xA):
            return GENOA
    if family == 0x1A and model >> 4 in (0x0, 0x1):
        return TURIN
    return None


@dataclass(frozen=True)
class AttestationReport:
    """One ATTESTATION_REPORT; attribute names are the spec's field names, lowercased."""

    version: int
    guest_svn: int
    policy: int
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb: int
    platform_info: int
    author_key_en: bool
    mask_chip_key: bool
    signing_key: int
    report_data: bytes
    measurement: bytes
    host_data: bytes
    id_key_digest: bytes
    author_key_digest: bytes
    report_id: bytes
    report_id_ma: bytes
    reported_tcb: int
    cpuid_fam_id: int
    cpuid_mod_id: int
    cpuid_step: int
    chip_id: bytes
    committed_tcb: int
    current_build: int
    current_minor: int
    current_major: int
    committed_build: int
    committed_minor: int
    committed_major: int
    launch_tcb: int
    launch_mit_vector: int
    current_mit_vector: int
    signature_r: int
    signature_s: int

    @property
    def guest_policy(self) -> GuestPolicy:
        return GuestPolicy.decode(self.policy)

    @property
    def platform(self) -> PlatformInfo:
        return PlatformInfo.decode(self.platform_info)

    @property
    def signing_key_name(self) -> str:
        return SIGNING_KEY_NAMES[self.signing_key]

    @property
    def cpuid_product(self) -> str | None:
        """The product named by the CPUID fields (v3+); None for v2 or unknown CPUs."""
        if self.version < 3:
            return None
        return product_from_cpuid(self.cpuid_fam_id, self.cpuid_mod_id)

    @property
    def hwid(self) -> bytes:
        """CHIP_ID as the KDS uses it: 8 bytes on Turin (v3+ CPUID says Turin), else 64."""
        return self.chip_id[:8] if self.cpuid_product == TURIN else self.chip_id

    def spec_fields(self) -> list[tuple[str, object]]:
        """(SPEC_NAME, value) in report order, for display."""
        return [(f.name.upper(), getattr(self, f.name)) for f in fields(self)]


# The spec table "ATTESTATION_REPORT Structure", one row per field: (offset, struct code,
# name). Reserved ranges are byte strings that must be zero; KEY_INFO (0x48) holds
# AUTHOR_KEY_EN (bit 0), MASK_CHIP_KEY (bit 1) and SIGNING_KEY (bits 4:2).
_TABLE: tuple[tuple[int, str, str], ...] = (
    (0x000, "I", "version"), (0x004, "I", "guest_svn"), (0x008, "Q", "policy"),
    (0x010, "16s", "family_id"), (0x020, "16s", "image_id"), (0x030, "I", "vmpl"),
    (0x034, "I", "signature_algo"), (0x038, "Q", "current_tcb"),
    (0x040, "Q", "platform_info"), (0x048, "I", "key_info"), (0x04C, "4s", "reserved_04c"),
    (0x050, "64s", "report_data"), (0x090, "48s", "measurement"), (0x0C0, "32s", "host_data"),
    (0x0E0, "48s", "id_key_digest"), (0x110, "48s", "author_key_digest"),
    (0x140, "32s", "report_id"), (0x160, "32s", "report_id_ma"),
    (0x180, "Q", "reported_tcb"), (0x188, "B", "cpuid_fam_id"), (0x189, "B", "cpuid_mod_id"),
    (0x18A, "B", "cpuid_step"), (0x18B, "21s", "reserved_18b"), (0x1A0, "64s", "chip_id"),
    (0x1E0, "Q", "committed_tcb"), (0x1E8, "B", "current_build"),
    (0x1E9, "B", "current_minor"), (0x1EA, "B", "current_major"),
    (0x1EB, "1s", "reserved_1eb"), (0x1EC, "B", "committed_build"),
    (0x1ED, "B", "committed_minor"), (0x1EE, "B", "committed_major"),
    (0x1EF, "1s", "reserved_1ef"), (0x1F0, "Q", "launch_tcb"),
    (0x1F8, "Q", "launch_mit_vector"), (0x200, "Q", "current_mit_vector"),
    (0x208, "152s", "reserved_208"), (0x2A0, "72s", "signature_r"),
    (0x2E8, "72s", "signature_s"), (0x330, "368s", "reserved_330"),
)
_LAYOUT = struct.Struct("<" + "".join(code for _, code, _ in _TABLE))
_NAMES = tuple(name for _, _, name in _TABLE)
_ZERO = bytes(max(struct.calcsize(code) for _, code, _ in _TABLE))


def _check_table() -> None:
    """The table's offsets are the spec's, and it names every AttestationReport field."""
    for off, _, name in _TABLE:
        if struct.calcsize("<" + "".join(c for o, c, _ in _TABLE if o < off)) != off:
            raise RuntimeError(f"ATTESTATION_REPORT table: {name} is not at 0x{off:X}")
    decoded = {n for n in _NAMES if not n.startswith("reserved_")} - {"key_info"}
    decoded |= {"author_key_en", "mask_chip_key", "signing_key"}
    if _LAYOUT.size != REPORT_SIZE or decoded != {f.name for f in fields(AttestationReport)}:
        raise RuntimeError("ATTESTATION_REPORT table does not match AttestationReport")


_check_table()


def _reserved(data: bytes, chunk: bytes, lo: int, hi: int, field: str) -> None:
    """A "must be zero" range, already unpacked as ``chunk``: refused by :func:`mbz` (which
    names the range and its bytes) unless all zero."""
    if chunk != _ZERO[:len(chunk)]:
        mbz(data, lo, hi, check=CHECK, field=field)


def parse_report(data: bytes) -> AttestationReport:
    """Parse exactly 0x4A0 bytes into an AttestationReport, or raise FormatError.

    One ``struct`` unpack of the whole layout (:data:`_TABLE`); every field is then decoded by
    its type and every reserved range checked, in offset order."""
    data = bytes(data)
    require_size(data, REPORT_SIZE, check=CHECK, field="ATTESTATION_REPORT")
    v = dict(zip(_NAMES, _LAYOUT.unpack(data), strict=True))
    version, policy, platform_info = v["version"], v["policy"], v["platform_info"]
    if version not in SUPPORTED_VERSIONS:
        raise FormatError(CHECK, "unsupported report version", field="VERSION",
                          got=version, want="|".join(map(str, SUPPORTED_VERSIONS)))
    if not _bit(policy, POLICY_RESERVED_ONE):
        raise FormatError(CHECK, "POLICY bit 17 is reserved and must be one", field="POLICY",
                          got=hex(policy), want="bit 17 set")
    if policy >> (POLICY_MAX_BIT + 1):
        raise FormatError(CHECK, "POLICY reserved bits 63:26 must be zero", field="POLICY",
                          got=hex(policy), want=f"< {hex(1 << (POLICY_MAX_BIT + 1))}")
    if platform_info & ~_PLATFORM_INFO_KNOWN:
        raise FormatError(CHECK, "PLATFORM_INFO reserved bits must be zero",
                          field="PLATFORM_INFO", got=hex(platform_info),
                          want=f"bits within {hex(_PLATFORM_INFO_KNOWN)}")
    key_info = v.pop("key_info")
    if key_info >> 5:
        raise FormatError(CHECK, "reserved bits 31:5 of 0x48 must be zero",
                          field="SIGNING_KEY", got=hex(key_info), want="< 0x20")
    signing_key = (key_info >> 2) & 0x7
    if signing_key not in SIGNING_KEY_NAMES:
        raise FormatError(CHECK, "SIGNING_KEY value is reserved", field="SIGNING_KEY",
                          got=signing_key, want="0 (VCEK) | 1 (VLEK) | 7 (none)")
    _reserved(data, v.pop("reserved_04c"), 0x4C, 0x50, "RESERVED(0x4C)")
    if version >= 3:
        _reserved(data, v.pop("reserved_18b"), 0x18B, 0x1A0, "RESERVED(0x18B)")
    else:  # CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP are reserved too (so zero)
        del v["reserved_18b"]
        _reserved(data, data[0x188:0x1A0], 0x188, 0x1A0, "RESERVED(0x188)")
    _reserved(data, v.pop("reserved_1eb"), 0x1EB, 0x1EC, "RESERVED(0x1EB)")
    _reserved(data, v.pop("reserved_1ef"), 0x1EF, 0x1F0, "RESERVED(0x1EF)")
    if version >= 5:
        _reserved(data, v.pop("reserved_208"), 0x208, SIGNATURE_OFFSET, "RESERVED(0x208)")
    else:  # the mitigation vectors are reserved too (so zero)
        del v["reserved_208"]
        _reserved(data, data[0x1F8:SIGNATURE_OFFSET], 0x1F8, SIGNATURE_OFFSET,
                  "RESERVED(0x1F8)")
    _reserved(data, v.pop("reserved_330"), SIGNATURE_OFFSET + 2 * ECDSA_COMPONENT_SIZE,
              REPORT_SIZE, "SIGNATURE.RESERVED")
    v["author_key_en"] = bool(key_info & 1)
    v["mask_chip_key"] = bool(key_info & 2)
    v["signing_key"] = signing_key
    v["signature_r"] = int.from_bytes(v["signature_r"], "little")
    v["signature_s"] = int.from_bytes(v["signature_s"], "little")
    # Every field is set, decoded and checked above (_check_table): filled in directly rather
    # than through the frozen dataclass's __init__ (36 object.__setattr__ calls).
    report = object.__new__(AttestationReport)
    report.__dict__.update(v)
    return report


def _put(buf: bytearray, off: int, value: bytes, size: int, name: str) -> None:
    if len(value) != size:
        raise FormatError(CHECK, "field has the wrong size", field=name, got=len(value),
                          want=size)
    buf[off:off + size] = value


def _int(value: int, size: int, name: str) -> bytes:
    if not 0 <= value < (1 << (8 * size)):
        raise FormatError(CHECK, "integer out of range", field=name, got=value,
                          want=f"< 2^{8 * size}")
    return value.to_bytes(size, "little")


def serialize_report(r: AttestationReport) -> bytes:
    """The 0x4A0-byte ABI form; ``serialize_report(parse_report(b)) == b`` for valid ``b``.

    Fields the report's version has no room for (CPUID_* before v3, *_MIT_VECTOR before v5)
    must be zero. The result is re-parsed, so anything the parser refuses is refused here.
    """
    b = bytearray(REPORT_SIZE)
    b[0x00:0x04] = _int(r.version, 4, "VERSION")
    b[0x04:0x08] = _int(r.guest_svn, 4, "GUEST_SVN")
    b[0x08:0x10] = _int(r.policy, 8, "POLICY")
    _put(b, 0x10, r.family_id, FAMILY_ID_SIZE, "FAMILY_ID")
    _put(b, 0x20, r.image_id, IMAGE_ID_SIZE, "IMAGE_ID")
    b[0x30:0x34] = _int(r.vmpl, 4, "VMPL")
    b[0x34:0x38] = _int(r.signature_algo, 4, "SIGNATURE_ALGO")
    b[0x38:0x40] = _int(r.current_tcb, 8, "CURRENT_TCB")
    b[0x40:0x48] = _int(r.platform_info, 8, "PLATFORM_INFO")
    key_info = int(r.author_key_en) | int(r.mask_chip_key) << 1 | r.signing_key << 2
    b[0x48:0x4C] = _int(key_info, 4, "SIGNING_KEY")
    _put(b, 0x50, r.report_data, REPORT_DATA_SIZE, "REPORT_DATA")
    _put(b, 0x90, r.measurement, MEASUREMENT_SIZE, "MEASUREMENT")
    _put(b, 0xC0, r.host_data, HOST_DATA_SIZE, "HOST_DATA")
    _put(b, 0xE0, r.id_key_digest, DIGEST_SIZE, "ID_KEY_DIGEST")
    _put(b, 0x110, r.author_key_digest, DIGEST_SIZE, "AUTHOR_KEY_DIGEST")
    _put(b, 0x140, r.report_id, REPORT_ID_SIZE, "REPORT_ID")
    _put(b, 0x160, r.report_id_ma, REPORT_ID_SIZE, "REPORT_ID_MA")
    b[0x180:0x188] = _int(r.reported_tcb, 8, "REPORTED_TCB")
    cpuid = (r.cpuid_fam_id, r.cpuid_mod_id, r.cpuid_step)
    if r.version < 3 and any(cpuid):
        raise FormatError(CHECK, "CPUID fields need report version 3+", field="CPUID_FAM_ID",
                          got=r.version, want=">= 3")
    b[0x188] = _int(r.cpuid_fam_id, 1, "CPUID_FAM_ID")[0]
    b[0x189] = _int(r.cpuid_mod_id, 1, "CPUID_MOD_ID")[0]
    b[0x18A] = _int(r.cpuid_step, 1, "CPUID_STEP")[0]
    _put(b, 0x1A0, r.chip_id, CHIP_ID_SIZE, "CHIP_ID")
    b[0x1E0:0x1E8] = _int(r.committed_tcb, 8, "COMMITTED_TCB")
    b[0x1E8] = _int(r.current_build, 1, "CURRENT_BUILD")[0]
    b[0x1E9] = _int(r.current_minor, 1, "CURRENT_MINOR")[0]
    b[0x1EA] = _int(r.current_major, 1, "CURRENT_MAJOR")[0]
    b[0x1EC] = _int(r.committed_build, 1, "COMMITTED_BUILD")[0]
    b[0x1ED] = _int(r.committed_minor, 1, "COMMITTED_MINOR")[0]
    b[0x1EE] = _int(r.committed_major, 1, "COMMITTED_MAJOR")[0]
    b[0x1F0:0x1F8] = _int(r.launch_tcb, 8, "LAUNCH_TCB")
    if r.version < 5 and (r.launch_mit_vector or r.current_mit_vector):
        raise FormatError(CHECK, "mitigation vectors need report version 5",
                          field="LAUNCH_MIT_VECTOR", got=r.version, want=">= 5")
    b[0x1F8:0x200] = _int(r.launch_mit_vector, 8, "LAUNCH_MIT_VECTOR")
    b[0x200:0x208] = _int(r.current_mit_vector, 8, "CURRENT_MIT_VECTOR")
    b[0x2A0:0x2E8] = _int(r.signature_r, ECDSA_COMPONENT_SIZE, "SIGNATURE.R")
    b[0x2E8:0x330] = _int(r.signature_s, ECDSA_COMPONENT_SIZE, "SIGNATURE.S")
    out = bytes(b)
    parse_report(out)  # refuse what the parser would refuse (reserved values, versions)
    return out


def signed_part(data: bytes) -> bytes:
    """The bytes the signature covers: 0x000..0x29F of a raw report."""
    require_size(data, REPORT_SIZE, check=CHECK, field="ATTESTATION_REPORT")
    return bytes(data[:SIGNED_SIZE])
