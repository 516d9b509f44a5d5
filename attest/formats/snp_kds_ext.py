"""The AMD KDS X.509 extensions of a VCEK/VLEK certificate (AMD "Versioned Chip Endorsement
Key (VCEK) Certificate and KDS Interface Specification", pub. 57230, "VCEK certificate
extensions"). Pure DER of the extension *values*; the certificate itself is read elsewhere.

| OID (1.3.6.1.4.1.3704.1.)  | name          | DER type                                     |
|----------------------------|---------------|----------------------------------------------|
| 1                          | structVersion | INTEGER                                      |
| 2                          | productName   | IA5String ("Milan-B0", "Genoa-B1", "Turin")  |
| 3.1 / 3.2 / 3.3 / 3.8      | blSPL / teeSPL / snpSPL / ucodeSPL | INTEGER                  |
| 3.4 .. 3.7                 | spl_4 .. spl_7 (reserved, 0; absent on Turin) | INTEGER       |
| 3.9                        | fmcSPL (Turin) | INTEGER                                     |
| 4                          | hwID (VCEK only) | 64 raw bytes (8 on Turin) or OCTET STRING |
| 5                          | csp_id (VLEK only) | IA5String                               |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from attest.formats import der
from transparency_log.common.errors import FormatError

CHECK = "snp.vcek.format"
OID_BASE = "1.3.6.1.4.1.3704.1"
OID_STRUCT_VERSION = f"{OID_BASE}.1"
OID_PRODUCT_NAME = f"{OID_BASE}.2"
OID_BL_SPL = f"{OID_BASE}.3.1"
OID_TEE_SPL = f"{OID_BASE}.3.2"
OID_SNP_SPL = f"{OID_BASE}.3.3"
OID_SPL_RESERVED = tuple(f"{OID_BASE}.3.{i}" for i in (4, 5, 6, 7))
OID_UCODE_SPL = f"{OID_BASE}.3.8"
OID_FMC_SPL = f"{OID_BASE}.3.9"
OID_HWID = f"{OID_BASE}.4"
OID_CSP_ID = f"{OID_BASE}.5"
HWID_SIZES = (8, 64)

_INTEGER, _OCTET_STRING, _UTF8, _IA5 = (der.TAG_INTEGER, der.TAG_OCTET_STRING,
                                         der.TAG_UTF8_STRING, der.TAG_IA5_STRING)


def _tlv(data: bytes, field: str) -> tuple[int, bytes]:
    """One DER TLV that must span ``data`` exactly: (tag, contents)."""
    return der.read_single(data, check=CHECK, field=field)


def decode_der_uint(data: bytes, field: str) -> int:
    """A non-negative, minimally encoded DER INTEGER."""
    if len(data) == 3 and data[0] == _INTEGER and data[1] == 1 and data[2] < 0x80:
        return data[2]  # one content byte below 0x80: minimal and non-negative (X.690 §8.3)
    tag, c = _tlv(data, field)
    if tag != _INTEGER:
        raise FormatError(CHECK, "not a DER INTEGER", field=field, got=data)
    return der.decode_uint(c, check=CHECK, field=field)


def encode_der_uint(value: int) -> bytes:
    if value < 0:
        raise FormatError(CHECK, "negative INTEGER", field="value", got=value)
    return der.encode_tlv(_INTEGER, der.encode_uint(value))


def _decode_string(data: bytes, field: str) -> str:
    tag, c = _tlv(data, field)
    if tag not in (_IA5, _UTF8):
        raise FormatError(CHECK, "not an IA5String/UTF8String", field=field, got=data)
    try:
        return c.decode("ascii" if tag == _IA5 else "utf-8")
    except UnicodeDecodeError:
        raise FormatError(CHECK, "string is not valid text", field=field, got=c) from None


def decode_hwid(data: bytes) -> tuple[bytes, str]:
    """hwID and its encoding: ``"raw"`` (the bytes themselves, as AMD's KDS issues) or
    ``"octet-string"`` (a DER OCTET STRING wrapping them). 64 bytes, or 8 on Turin."""
    if len(data) >= 2 and data[0] == _OCTET_STRING and data[1] == len(data) - 2 \
            and len(data) - 2 in HWID_SIZES:
        return data[2:], "octet-string"
    if len(data) in HWID_SIZES:
        return data, "raw"
    raise FormatError(CHECK, "hwID is neither 8/64 raw bytes nor an OCTET STRING of them",
                      field="hwID", got=data)


@dataclass(frozen=True)
class KdsExtensions:
    """The KDS extensions of one VCEK or VLEK. Absent extensions are None."""

    struct_version: int | None = None
    product_name: str | None = None
    bl_spl: int | None = None
    tee_spl: int | None = None
    snp_spl: int | None = None
    ucode_spl: int | None = None
    fmc_spl: int | None = None
    hwid: bytes | None = None
    hwid_encoding: str | None = None
    csp_id: str | None = None

    @property
    def product(self) -> str:
        """The product family without stepping: "Milan-B0" -> "Milan"."""
        return (self.product_name or "").split("-")[0]

    def spls(self) -> dict[str, int | None]:
        """The SPLs by the report's TCB component names."""
        out: dict[str, int | None] = {}
        if self.fmc_spl is not None:
            out["FMC"] = self.fmc_spl
        out.update(BOOT_LOADER=self.bl_spl, TEE=self.tee_spl, SNP=self.snp_spl,
                   MICROCODE=self.ucode_spl)
        return out


_INT_FIELDS = {OID_STRUCT_VERSION: "struct_version", OID_BL_SPL: "bl_spl",
               OID_TEE_SPL: "tee_spl", OID_SNP_SPL: "snp_spl", OID_UCODE_SPL: "ucode_spl",
               OID_FMC_SPL: "fmc_spl"}


KDS_OIDS = (*_INT_FIELDS, *OID_SPL_RESERVED, OID_PRODUCT_NAME, OID_HWID, OID_CSP_ID)
"""Every OID :func:`parse_kds_extensions` reads (the others are ignored)."""


def parse_kds_extensions(values: Mapping[str, bytes]) -> KdsExtensions:
    """Decode the KDS extensions from ``{dotted OID: extnValue contents}``; others ignored."""
    kw: dict[str, object] = {}
    for oid, attr in _INT_FIELDS.items():
        if oid in values:
            kw[attr] = decode_der_uint(values[oid], oid)
    for oid in OID_SPL_RESERVED:
        if oid in values:
            decode_der_uint(values[oid], oid)  # must at least be well formed
    if OID_PRODUCT_NAME in values:
        kw["product_name"] = _decode_string(values[OID_PRODUCT_NAME], "productName")
    if OID_HWID in values:
        kw["hwid"], kw["hwid_encoding"] = decode_hwid(values[OID_HWID])
    if OID_CSP_ID in values:
        kw["csp_id"] = _decode_string(values[OID_CSP_ID], "csp_id")
    return KdsExtensions(**kw)  # type: ignore[arg-type]


def encode_kds_extensions(ext: KdsExtensions) -> dict[str, bytes]:
    """``{dotted OID: extnValue contents}`` for ``ext`` (the simulator's certificates).

    Milan/Genoa style certificates (no FMC) also get the reserved SPLs 4..7 as zero.
    """
    out: dict[str, bytes] = {}
    if ext.struct_version is not None:
        out[OID_STRUCT_VERSION] = encode_der_uint(ext.struct_version)
    if ext.product_name is not None:
        out[OID_PRODUCT_NAME] = der.encode_tlv(_IA5, ext.product_name.encode("ascii"))
    for oid, attr in _INT_FIELDS.items():
        value = getattr(ext, attr)
        if value is not None and oid != OID_STRUCT_VERSION:
            out[oid] = encode_der_uint(value)
    if ext.fmc_spl is None and ext.bl_spl is not None:
        for oid in OID_SPL_RESERVED:
            out[oid] = encode_der_uint(0)
    if ext.hwid is not None:
        wrapped = ext.hwid_encoding == "octet-string"
        out[OID_HWID] = der.encode_tlv(_OCTET_STRING, ext.hwid) if wrapped else ext.hwid
    if ext.csp_id is not None:
        out[OID_CSP_ID] = der.encode_tlv(_IA5, ext.csp_id.encode("ascii"))
    return out
