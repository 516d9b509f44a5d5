"""SEV-SNP report, certificate table and KDS extension formats: parse, serialize, refuse."""

from __future__ import annotations

from dataclasses import replace

import pytest

from attest.formats.snp_certtable import (
    ARK_GUID,
    ASK_GUID,
    VCEK_GUID,
    CertTable,
    CertTableEntry,
    parse_cert_table,
    serialize_cert_table,
)
from attest.formats.snp_kds_ext import (
    decode_der_uint,
    decode_hwid,
    encode_der_uint,
    encode_kds_extensions,
    parse_kds_extensions,
)
from attest.formats.snp_report import (
    GENOA,
    MILAN,
    TURIN,
    decode_tcb,
    encode_tcb,
    parse_report,
    product_from_cpuid,
    serialize_report,
)
from tests.support.snp_fixtures import REAL, sim, vec
from transparency_log.common.errors import FormatError
from verifier.snp.chain import kds_extensions, load_key_certificate


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_reports_round_trip(name: str) -> None:
    raw = vec(name)
    assert serialize_report(parse_report(raw)) == raw


def test_manifest_fields_of_the_debug_guest() -> None:
    r = parse_report(vec("go-sev-guest/attestation.bin"))
    assert r.version == 2 and r.vmpl == 0 and r.signing_key_name == "VCEK"
    assert r.policy == 0x0B0000 and r.guest_policy.DEBUG and r.guest_policy.SMT
    assert r.report_data == bytes.fromhex("0102030405") + bytes(59)
    assert r.reported_tcb == 0x4405000000000002
    tcb = decode_tcb(r.reported_tcb, MILAN)
    assert (tcb.BOOT_LOADER, tcb.TEE, tcb.SNP, tcb.MICROCODE) == (2, 0, 5, 68)
    assert (r.current_major, r.current_minor, r.current_build) == (1, 49, 3)
    assert r.cpuid_product is None  # v2: no CPUID fields


@pytest.mark.parametrize("version", [2, 3, 5])
@pytest.mark.parametrize("product", [MILAN, GENOA, TURIN])
def test_simulated_reports_of_each_version_round_trip(product: str, version: int) -> None:
    raw = sim(product).report(version=version, measurement=b"\x11" * 48)
    r = parse_report(raw)
    assert r.version == version and serialize_report(r) == raw
    assert r.cpuid_product == (product if version >= 3 else None)
    if version >= 5:
        assert r.launch_mit_vector == 3 and r.current_mit_vector == 3


def _flip(raw: bytes, off: int, value: int = 1) -> bytes:
    b = bytearray(raw)
    b[off] ^= value
    return bytes(b)


@pytest.mark.parametrize("off", [0x4C, 0x188, 0x19F, 0x1EB, 0x1EF, 0x1F8, 0x29F, 0x330, 0x49F])
def test_reserved_bytes_must_be_zero_v2(off: int) -> None:
    with pytest.raises(FormatError) as e:
        parse_report(_flip(vec("virtee-sev/report_milan.bin"), off))
    assert e.value.check == "snp.report.format" and "RESERVED" in (e.value.field or "")


def test_v3_cpuid_and_v5_vectors_are_fields_not_reserved() -> None:
    v3 = sim(MILAN).report(version=3)
    assert parse_report(v3).cpuid_fam_id == 0x19
    with pytest.raises(FormatError):
        parse_report(_flip(v3, 0x18B))
    with pytest.raises(FormatError):
        parse_report(_flip(v3, 0x1F8))  # mitigation vector is reserved before v5
    v5 = sim(MILAN).report(version=5)
    assert parse_report(_flip(v5, 0x1F8)).launch_mit_vector == 2
    with pytest.raises(FormatError):
        parse_report(_flip(v5, 0x208))


@pytest.mark.parametrize(("off", "value", "field"), [
    (0x00, 0x06, "VERSION"),          # version 2 -> 4: unsupported
    (0x0A, 0x02, "POLICY"),           # bit 17 (must be one) cleared
    (0x0B, 0x04, "POLICY"),           # bit 26: reserved
    (0x41, 0x01, "PLATFORM_INFO"),    # bit 8: reserved
    (0x48, 0x08, "SIGNING_KEY"),      # SIGNING_KEY = 2: reserved
    (0x48, 0x20, "SIGNING_KEY"),      # bit 5 of 0x48: reserved
])
def test_reserved_values_refused(off: int, value: int, field: str) -> None:
    with pytest.raises(FormatError) as e:
        parse_report(_flip(vec("virtee-sev/report_milan.bin"), off, value))
    assert e.value.field == field


def test_wrong_size_refused() -> None:
    raw = vec("virtee-sev/report_milan.bin")
    for bad in (raw[:-1], raw + b"\0", b""):
        with pytest.raises(FormatError):
            parse_report(bad)


def test_serializer_refuses_fields_the_version_lacks() -> None:
    r = parse_report(vec("virtee-sev/report_milan.bin"))
    with pytest.raises(FormatError):
        serialize_report(replace(r, cpuid_fam_id=0x19))
    with pytest.raises(FormatError):
        serialize_report(replace(r, launch_mit_vector=1))
    with pytest.raises(FormatError):
        serialize_report(replace(r, measurement=b"short"))


def test_tcb_layouts() -> None:
    t = decode_tcb(0x7308000000000003, MILAN)
    assert t.components() == {"BOOT_LOADER": 3, "TEE": 0, "SNP": 8, "MICROCODE": 115}
    raw = encode_tcb(TURIN, fmc=1, boot_loader=2, tee=3, snp=4, microcode=9)
    assert raw.to_bytes(8, "little") == bytes([1, 2, 3, 4, 0, 0, 0, 9])
    assert decode_tcb(raw, TURIN).components() == {
        "FMC": 1, "BOOT_LOADER": 2, "TEE": 3, "SNP": 4, "MICROCODE": 9}
    with pytest.raises(FormatError):
        decode_tcb(0, "Naples")


def test_product_from_cpuid() -> None:
    assert product_from_cpuid(0x19, 0x01) == MILAN
    assert product_from_cpuid(0x19, 0x11) == GENOA
    assert product_from_cpuid(0x19, 0xA0) == GENOA
    assert product_from_cpuid(0x1A, 0x02) == TURIN
    assert product_from_cpuid(0x17, 0x31) is None


# --- certificate table ---------------------------------------------------------------------

def test_cert_table_round_trip_and_lookup() -> None:
    t = CertTable((CertTableEntry(VCEK_GUID, b"vcek"), CertTableEntry(ASK_GUID, b"ask!"),
                   CertTableEntry(ARK_GUID, b"ark")))
    raw = serialize_cert_table(t)
    assert parse_cert_table(raw) == t
    assert parse_cert_table(raw + bytes(4096)).get("VCEK") == b"vcek"  # page padding
    assert parse_cert_table(raw).get("VLEK") is None
    assert parse_cert_table(b"") == CertTable()
    assert t.entries[0].name == "VCEK"


def test_cert_table_refusals() -> None:
    raw = serialize_cert_table(CertTable((CertTableEntry(VCEK_GUID, b"vcek"),)))
    with pytest.raises(FormatError, match="terminated"):
        parse_cert_table(raw[:24])
    bad = bytearray(raw)
    bad[16:20] = (10_000).to_bytes(4, "little")
    with pytest.raises(FormatError, match="outside"):
        parse_cert_table(bytes(bad))
    bad = bytearray(raw)
    bad[16:20] = (0).to_bytes(4, "little")  # points into the header
    with pytest.raises(FormatError):
        parse_cert_table(bytes(bad))
    dup = raw[:24] + raw[:24]
    with pytest.raises(FormatError, match="duplicate"):
        parse_cert_table(dup + bytes(24) + b"vcek")


# --- KDS extensions --------------------------------------------------------------------------

def test_real_vcek_extensions() -> None:
    ext = kds_extensions(load_key_certificate(vec("go-sev-guest/vcek.testcer"), "VCEK"))
    assert ext.product_name == "Milan-B0" and ext.product == MILAN
    assert (ext.bl_spl, ext.tee_spl, ext.snp_spl, ext.ucode_spl) == (2, 0, 5, 68)
    report = parse_report(vec("go-sev-guest/attestation.bin"))
    assert ext.hwid == report.chip_id and ext.hwid_encoding == "raw"
    turin = kds_extensions(load_key_certificate(vec("virtee-sev/vcek_turin.der"), "VCEK"))
    assert turin.struct_version == 1 and turin.product_name == "Turin"
    assert turin.hwid == bytes.fromhex("1e550a8ee5cf9f4d") and turin.fmc_spl == 0
    assert turin.ucode_spl == 9


def test_hwid_encodings_of_the_trustee_vectors() -> None:
    legacy = kds_extensions(load_key_certificate(
        vec("trustee/test-vcek-invalid-legacy.der"), "VCEK"))
    new = kds_extensions(load_key_certificate(vec("trustee/test-vcek-invalid-new.der"), "VCEK"))
    assert legacy.hwid == new.hwid == bytes(range(64))
    assert (legacy.hwid_encoding, new.hwid_encoding) == ("raw", "octet-string")
    assert legacy.ucode_spl == 0xA9  # encoded 02 02 00 a9


def test_der_strictness() -> None:
    assert decode_der_uint(b"\x02\x02\x00\xa9", "x") == 0xA9
    for bad in (b"\x02\x02\x00\x01", b"\x02\x01\x80", b"\x04\x01\x01", b"\x02\x02\x01",
                b"\x02\x00"):
        with pytest.raises(FormatError):
            decode_der_uint(bad, "x")
    assert encode_der_uint(0x80) == b"\x02\x02\x00\x80"
    with pytest.raises(FormatError):
        decode_hwid(b"\x01" * 10)
    assert decode_hwid(b"\x04\x08" + b"\x01" * 8) == (b"\x01" * 8, "octet-string")


def test_extension_encoding_round_trip() -> None:
    ext = kds_extensions(load_key_certificate(vec("virtee-sev/vcek_turin.der"), "VCEK"))
    assert parse_kds_extensions(encode_kds_extensions(ext)) == ext
