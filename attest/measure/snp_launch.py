"""The AMD SEV-SNP launch MEASUREMENT of an OVMF guest, computed ahead of time.

The launch digest (SEV-SNP Firmware ABI spec #56860, §8.17 SNP_LAUNCH_UPDATE, Table 67
"PAGE_INFO"): starting from 48 zero bytes, every page the VMM adds to the guest before
SNP_LAUNCH_FINISH extends it as ``LD = SHA-384(PAGE_INFO)`` where PAGE_INFO (0x70 bytes) is

| offset | size | field                                                       |
|--------|------|-------------------------------------------------------------|
| 0x00   | 48   | DIGEST_CUR: the launch digest so far                        |
| 0x30   | 48   | CONTENTS: SHA-384 of the page (NORMAL, VMSA), else zero     |
| 0x60   | 2    | LENGTH = 0x70                                               |
| 0x62   | 1    | PAGE_TYPE (:class:`PageType`)                               |
| 0x63   | 1    | IMI_PAGE = 0                                                |
| 0x64   | 3    | VMPL3/VMPL2/VMPL1_PERMS = 0                                 |
| 0x67   | 1    | reserved, zero                                              |
| 0x68   | 8    | GPA (little endian); VMSA pages use 0x0000_FFFF_FFFF_F000   |

The order QEMU (and the EC2 / GCE hypervisors) add pages in, which virtee's
``sev-snp-measure`` documents and this module reproduces:

1. the OVMF image as NORMAL pages, ending at 4 GiB (or start from a given "OVMF hash", the
   launch digest after this step);
2. the OVMF SEV metadata sections in order: SNP_SEC_MEM as ZERO pages (UNMEASURED on GCE),
   SNP_SECRETS as a SECRETS page, CPUID as a CPUID page (on EC2 deferred to after all
   other sections), SVSM_CAA as ZERO pages, SNP_KERNEL_HASHES as a NORMAL page holding the
   kernel/initrd/cmdline hashes table (ZERO pages without ``-kernel``);
3. one VMSA page per vCPU: the BSP starts at the reset vector 0xFFFFFFF0, the APs at the
   OVMF SEV-ES reset block's EIP; the initial register state (AMD APM vol. 2, Table B-4
   "VMSA layout") depends on the VMM type.

The OVMF footer GUID table (:mod:`attest.measure.ovmf_footer`): the SEV metadata GUID's
entry gives the offset from the end of the image of the ``ASEV`` header: signature,
u32 size, u32 version (= 1), u32 item count, then ``{u32 gpa, u32 size, u32 type}`` items.
"""

from __future__ import annotations

import enum
import hashlib
import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from attest.measure.ovmf_footer import footer_table, metadata_header
from transparency_log.common.errors import FormatError

__all__ = [
    "MEASUREMENT_SIZE",
    "VCPU_SIGNATURES",
    "KernelHashes",
    "LaunchDigest",
    "OvmfImage",
    "PageType",
    "SectionType",
    "VmmType",
    "cpuid_signature",
    "ovmf_hash",
    "snp_launch_measurement",
    "vmsa_page",
]

PAGE_SIZE = 0x1000
FOUR_GIB = 0x1_0000_0000
MEASUREMENT_SIZE = 48
VMSA_GPA = 0x0000_FFFF_FFFF_F000
BSP_EIP = 0xFFFF_FFF0
MAX_VCPUS = 4096
CHECK = "measure.snp"

SEV_HASH_TABLE_RV_GUID = uuid.UUID("7255371f-3a3b-4b04-927b-1da6efa8d454")
SEV_ES_RESET_BLOCK_GUID = uuid.UUID("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
OVMF_SEV_METADATA_GUID = uuid.UUID("dc886566-984a-4798-a75e-5585a7bf67cc")

# QEMU's SEV hashes table (target/i386/sev.c, "SevHashTable"): header and entry GUIDs.
SEV_HASH_TABLE_HEADER_GUID = uuid.UUID("9438d606-4f22-4cc9-b479-a793d411fd21")
SEV_KERNEL_ENTRY_GUID = uuid.UUID("4de79437-abd2-427f-b835-d5b172d2045b")
SEV_INITRD_ENTRY_GUID = uuid.UUID("44baf731-3a2f-4bd7-9af1-41e29169781d")
SEV_CMDLINE_ENTRY_GUID = uuid.UUID("97d02dd8-bd20-4c94-aa78-e7714d36ab2a")

_METADATA_ITEM = 12
MAX_METADATA_ITEMS = 64


class PageType(enum.IntEnum):
    """SNP_LAUNCH_UPDATE PAGE_TYPE (spec #56860, Table 66)."""

    NORMAL = 1
    VMSA = 2
    ZERO = 3
    UNMEASURED = 4
    SECRETS = 5
    CPUID = 6


class SectionType(enum.IntEnum):
    """OVMF SEV metadata section types (OvmfPkg/ResetVector, "OVMF_SECTION_TYPE_*")."""

    SNP_SEC_MEM = 1
    SNP_SECRETS = 2
    CPUID = 3
    SVSM_CAA = 4
    SNP_KERNEL_HASHES = 0x10


class VmmType(enum.StrEnum):
    QEMU = "qemu"
    EC2 = "ec2"
    GCE = "gce"


def cpuid_signature(family: int, model: int, stepping: int) -> int:
    """CPUID Fn0000_0001_EAX for a family/model/stepping (AMD CPUID spec #25481)."""
    base_family, ext_family = (0xF, family - 0xF) if family > 0xF else (family, 0)
    return ((ext_family & 0xFF) << 20 | ((model >> 4) & 0xF) << 16 | base_family << 8
            | (model & 0xF) << 4 | (stepping & 0xF))


_NAPLES = cpuid_signature(23, 1, 2)
_ROME = cpuid_signature(23, 49, 0)
_MILAN = cpuid_signature(25, 1, 1)
_GENOA = cpuid_signature(25, 17, 0)

#: QEMU CPU model names and the CPUID signature QEMU reports for them (EDX at reset).
VCPU_SIGNATURES: Mapping[str, int] = {
    **dict.fromkeys(("EPYC", "EPYC-v1", "EPYC-v2", "EPYC-IBPB", "EPYC-v3", "EPYC-v4"), _NAPLES),
    **dict.fromkeys(("EPYC-Rome", "EPYC-Rome-v1", "EPYC-Rome-v2", "EPYC-Rome-v3"), _ROME),
    **dict.fromkeys(("EPYC-Milan", "EPYC-Milan-v1", "EPYC-Milan-v2"), _MILAN),
    **dict.fromkeys(("EPYC-Genoa", "EPYC-Genoa-v1"), _GENOA),
    "EPYC-Turin": cpuid_signature(26, 0, 0),
}


class LaunchDigest:
    """The running SNP launch digest (PAGE_INFO chain)."""

    def __init__(self, seed: bytes = bytes(MEASUREMENT_SIZE)) -> None:
        if len(seed) != MEASUREMENT_SIZE:
            raise FormatError(CHECK, "wrong size", field="OVMF hash", got=len(seed),
                              want=MEASUREMENT_SIZE)
        self.digest = bytes(seed)

    def update(self, page_type: PageType, gpa: int, contents: bytes) -> None:
        page_info = (self.digest + contents
                     + struct.pack("<HBB4xQ", 0x70, page_type, 0, gpa))
        self.digest = hashlib.sha384(page_info).digest()

    def normal_pages(self, gpa: int, data: bytes) -> None:
        for off in range(0, len(data), PAGE_SIZE):
            page = data[off:off + PAGE_SIZE]
            self.update(PageType.NORMAL, gpa + off, hashlib.sha384(page).digest())

    def empty_pages(self, page_type: PageType, gpa: int, size: int) -> None:
        for off in range(0, size, PAGE_SIZE):
            self.update(page_type, gpa + off, bytes(MEASUREMENT_SIZE))

    def vmsa(self, page: bytes) -> None:
        self.update(PageType.VMSA, VMSA_GPA, hashlib.sha384(page).digest())


@dataclass(frozen=True)
class MetadataSection:
    gpa: int
    size: int
    type: SectionType


@dataclass(frozen=True)
class OvmfImage:
    """An OVMF image (or its last pages: its "suffix"), placed to end at 4 GiB."""

    data: bytes
    table: Mapping[uuid.UUID, bytes]
    sections: tuple[MetadataSection, ...]

    @property
    def gpa(self) -> int:
        return FOUR_GIB - len(self.data)

    def _table_u32(self, guid: uuid.UUID, name: str) -> int:
        entry = self.table.get(guid)
        if entry is None or len(entry) < 4:
            raise FormatError(CHECK, "OVMF footer table entry missing", field=name,
                              want=str(guid))
        return int.from_bytes(entry[:4], "little")

    @property
    def sev_es_reset_eip(self) -> int:
        return self._table_u32(SEV_ES_RESET_BLOCK_GUID, "SEV_ES_RESET_BLOCK")

    @property
    def sev_hashes_table_gpa(self) -> int:
        return self._table_u32(SEV_HASH_TABLE_RV_GUID, "SEV_HASH_TABLE_RV")

    @classmethod
    def parse(cls, data: bytes) -> OvmfImage:
        """Read the footer GUID table and the SEV metadata; FormatError if malformed."""
        data = bytes(data)
        if not data or len(data) % PAGE_SIZE or len(data) > FOUR_GIB // 2:
            raise FormatError(CHECK, "OVMF image size is not a positive multiple of 4 KiB",
                              field="OVMF", got=len(data))
        table = footer_table(data, check=CHECK)
        sections: tuple[MetadataSection, ...] = ()
        if OVMF_SEV_METADATA_GUID in table:
            entry = table[OVMF_SEV_METADATA_GUID]
            if len(entry) < 4:
                raise FormatError(CHECK, "short metadata entry", field="SEV_METADATA")
            sections = _metadata(data, int.from_bytes(entry[:4], "little"))
        return cls(data, table, sections)


def _metadata(data: bytes, offset_from_end: int) -> tuple[MetadataSection, ...]:
    first, count = metadata_header(data, offset_from_end, signature=b"ASEV",
                                   item_size=_METADATA_ITEM, max_items=MAX_METADATA_ITEMS,
                                   check=CHECK, field="SEV_METADATA")
    sections = []
    for i in range(count):
        gpa, length, kind = struct.unpack_from("<III", data,
                                               first + i * _METADATA_ITEM)
        try:
            section_type = SectionType(kind)
        except ValueError:
            raise FormatError(CHECK, "unknown metadata section type",
                              field=f"SEV_METADATA.items[{i}].type", got=kind) from None
        if gpa % PAGE_SIZE or length % PAGE_SIZE or not length:
            raise FormatError(CHECK, "metadata section not page aligned",
                              field=f"SEV_METADATA.items[{i}]", got=f"{gpa:#x}+{length:#x}")
        sections.append(MetadataSection(gpa, length, section_type))
    return tuple(sections)


@dataclass(frozen=True)
class KernelHashes:
    """The SHA-256 digests QEMU puts in the SEV hashes table for ``-kernel`` boots."""

    kernel: bytes
    initrd: bytes
    cmdline: bytes

    @classmethod
    def of(cls, kernel: bytes, initrd: bytes | None = None,
           cmdline: str | None = None) -> KernelHashes:
        """Hash the inputs the way QEMU does: no initrd hashes as empty, and the command line
        is hashed with its terminating NUL (an empty command line is just the NUL)."""
        return cls(hashlib.sha256(kernel).digest(), hashlib.sha256(initrd or b"").digest(),
                   hashlib.sha256((cmdline or "").encode("utf-8") + b"\0").digest())

    def table(self) -> bytes:
        """QEMU's SevHashTable: header GUID, u16 length, then cmdline/initrd/kernel entries
        (GUID, u16 length = 50, SHA-256), zero-padded to a multiple of 16 bytes."""
        entries = b"".join(guid.bytes_le + struct.pack("<H", 50) + digest
                           for guid, digest in ((SEV_CMDLINE_ENTRY_GUID, self.cmdline),
                                                (SEV_INITRD_ENTRY_GUID, self.initrd),
                                                (SEV_KERNEL_ENTRY_GUID, self.kernel)))
        table = SEV_HASH_TABLE_HEADER_GUID.bytes_le + struct.pack("<H", 18 + len(entries))
        table += entries
        return table + bytes(-len(table) % 16)

    def page(self, offset: int) -> bytes:
        table = self.table()
        if not 0 <= offset <= PAGE_SIZE - len(table):
            raise FormatError(CHECK, "hashes table does not fit its page",
                              field="SEV_HASH_TABLE_RV", got=offset)
        return bytes(offset) + table + bytes(PAGE_SIZE - offset - len(table))


# VMSA (SEV-ES save area) offsets, AMD APM vol. 2 Table B-4.
_SEGMENTS = {"es": 0x000, "cs": 0x010, "ss": 0x020, "ds": 0x030, "fs": 0x040, "gs": 0x050,
             "gdtr": 0x060, "ldtr": 0x070, "idtr": 0x080, "tr": 0x090}
_U64 = {"efer": 0x0D0, "cr4": 0x148, "cr0": 0x158, "dr7": 0x160, "dr6": 0x168,
        "rflags": 0x170, "rip": 0x178, "g_pat": 0x268, "rdx": 0x310, "sev_features": 0x3B0,
        "xcr0": 0x3E8}
_MXCSR = 0x408  # u32
_X87_FCW = 0x410  # u16


def vmsa_page(eip: int, sev_features: int, vcpu_signature: int, vmm_type: VmmType) -> bytes:
    """The 4 KiB VMSA of a vCPU at reset, as the VMM of ``vmm_type`` initialises it."""
    cs_attr, ss_attr, tr_attr = 0x9B, 0x93, 0x8B
    g_pat = 0x0007_0406_0007_0406  # PAT MSR reset value (APM vol. 2 §A.3)
    rdx, mxcsr, fcw = vcpu_signature, 0x1F80, 0x037F
    if vmm_type is VmmType.EC2:
        cs_attr = 0x9A if eip == BSP_EIP else 0x9B
        ss_attr, tr_attr = 0x92, 0x83
        rdx, mxcsr, fcw = 0x600, 0, 0
    elif vmm_type is VmmType.GCE:
        g_pat = 0x0007_0106
        rdx, mxcsr, fcw = 0x600, 0, 0
    segments = {"es": (0, 0x93, 0xFFFF, 0), "cs": (0xF000, cs_attr, 0xFFFF, eip & 0xFFFF0000),
                "ss": (0, ss_attr, 0xFFFF, 0), "ds": (0, 0x93, 0xFFFF, 0),
                "fs": (0, 0x93, 0xFFFF, 0), "gs": (0, 0x93, 0xFFFF, 0),
                "gdtr": (0, 0, 0xFFFF, 0), "ldtr": (0, 0x82, 0xFFFF, 0),
                "idtr": (0, 0, 0xFFFF, 0), "tr": (0, tr_attr, 0xFFFF, 0)}
    regs = {"efer": 0x1000, "cr4": 0x40, "cr0": 0x10, "dr7": 0x400, "dr6": 0xFFFF0FF0,
            "rflags": 0x2, "rip": eip & 0xFFFF, "g_pat": g_pat, "rdx": rdx,
            "sev_features": sev_features, "xcr0": 0x1}
    page = bytearray(PAGE_SIZE)
    for name, (selector, attrib, limit, base) in segments.items():
        struct.pack_into("<HHIQ", page, _SEGMENTS[name], selector, attrib, limit, base)
    for name, value in regs.items():
        struct.pack_into("<Q", page, _U64[name], value)
    struct.pack_into("<I", page, _MXCSR, mxcsr)
    struct.pack_into("<H", page, _X87_FCW, fcw)
    return bytes(page)


def ovmf_hash(ovmf: OvmfImage) -> bytes:
    """The launch digest after the OVMF pages alone (sev-snp-measure's "OVMF hash")."""
    ld = LaunchDigest()
    ld.normal_pages(ovmf.gpa, ovmf.data)
    return ld.digest


def _section(ld: LaunchDigest, s: MetadataSection, ovmf: OvmfImage,
             hashes: KernelHashes | None, vmm_type: VmmType) -> None:
    if s.type is SectionType.SNP_SEC_MEM:
        kind = PageType.UNMEASURED if vmm_type is VmmType.GCE else PageType.ZERO
        ld.empty_pages(kind, s.gpa, s.size)
    elif s.type is SectionType.SNP_SECRETS:
        ld.empty_pages(PageType.SECRETS, s.gpa, PAGE_SIZE)
    elif s.type is SectionType.CPUID:
        if vmm_type is not VmmType.EC2:
            ld.empty_pages(PageType.CPUID, s.gpa, PAGE_SIZE)
    elif s.type is SectionType.SNP_KERNEL_HASHES and hashes is not None:
        page = hashes.page(ovmf.sev_hashes_table_gpa & (PAGE_SIZE - 1))
        if s.size != PAGE_SIZE:
            raise FormatError(CHECK, "kernel hashes section is not one page",
                              field="SNP_KERNEL_HASHES", got=s.size, want=PAGE_SIZE)
        ld.normal_pages(s.gpa, page)
    else:  # SVSM_CAA, or SNP_KERNEL_HASHES without -kernel
        ld.empty_pages(PageType.ZERO, s.gpa, s.size)


def snp_launch_measurement(ovmf: OvmfImage, *, vcpus: int, vcpu_signature: int = 0,
                           vmm_type: VmmType = VmmType.QEMU, guest_features: int = 0x1,
                           kernel_hashes: KernelHashes | None = None,
                           ovmf_digest: bytes | None = None) -> bytes:
    """The 48-byte SNP launch MEASUREMENT.

    ``guest_features`` is the VMSA SEV_FEATURES value (bit 0 SNPActive; QEMU's default 0x1).
    ``ovmf_digest`` replaces step 1 (hashing the OVMF pages) with a precomputed OVMF hash, so
    only the image's metadata (its last pages) is needed.
    """
    if not 1 <= vcpus <= MAX_VCPUS:
        raise FormatError(CHECK, "vCPU count out of range", field="vcpus", got=vcpus,
                          want=f"1..{MAX_VCPUS}")
    if kernel_hashes is not None and not any(
            s.type is SectionType.SNP_KERNEL_HASHES for s in ovmf.sections):
        raise FormatError(CHECK, "kernel hashes given but OVMF has no SNP_KERNEL_HASHES section",
                          field="SEV_METADATA")
    if ovmf_digest is None:
        ld = LaunchDigest()
        ld.normal_pages(ovmf.gpa, ovmf.data)
    else:
        ld = LaunchDigest(ovmf_digest)
    for section in ovmf.sections:
        _section(ld, section, ovmf, kernel_hashes, vmm_type)
    if vmm_type is VmmType.EC2:
        for section in ovmf.sections:
            if section.type is SectionType.CPUID:
                ld.empty_pages(PageType.CPUID, section.gpa, PAGE_SIZE)
    bsp = vmsa_page(BSP_EIP, guest_features, vcpu_signature, vmm_type)
    ld.vmsa(bsp)
    if vcpus > 1:
        ap = vmsa_page(ovmf.sev_es_reset_eip, guest_features, vcpu_signature, vmm_type)
        for _ in range(vcpus - 1):
            ld.vmsa(ap)
    return ld.digest
