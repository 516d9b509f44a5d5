"""SNP launch MEASUREMENT: the five vectors of tests/vectors/snp/MANIFEST.md, bit for bit."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from attest.cli import main
from attest.measure.snp_launch import (
    BSP_EIP,
    OVMF_SEV_METADATA_GUID,
    VCPU_SIGNATURES,
    KernelHashes,
    OvmfImage,
    SectionType,
    VmmType,
    cpuid_signature,
    ovmf_hash,
    snp_launch_measurement,
    vmsa_page,
)
from tests.support.vectors import vector_path
from transparency_log.common.errors import FormatError

SUFFIX = vector_path("snp", "sev-snp-measure", "ovmf_AmdSev_suffix.bin")
OVMF_HASH = bytes.fromhex(
    "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa"
    "16aff8c374c2a55c467a50da6d466b74")
EPYC_V4 = VCPU_SIGNATURES["EPYC-v4"]


@pytest.fixture(scope="module")
def ovmf() -> OvmfImage:
    return OvmfImage.parse(SUFFIX.read_bytes())


def test_vector_1_ovmf_hash(ovmf: OvmfImage) -> None:
    assert ovmf_hash(ovmf) == OVMF_HASH


def test_vector_2_kernel_hashes(ovmf: OvmfImage) -> None:
    got = snp_launch_measurement(
        ovmf, vcpus=1, vcpu_signature=EPYC_V4, guest_features=0x21, ovmf_digest=OVMF_HASH,
        kernel_hashes=KernelHashes.of(b"", b"", "console=ttyS0 loglevel=7"))
    assert got.hex() == ("803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba"
                         "7e534442e7e1e17895dfe778d0228977")


def test_vector_3_no_kernel(ovmf: OvmfImage) -> None:
    got = snp_launch_measurement(ovmf, vcpus=1, vcpu_signature=EPYC_V4, guest_features=0x21)
    assert got.hex() == ("e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8a1674dbf"
                         "281a9278a4a2ebe0eed9f22adbcd0e2b")


def test_vector_4_gce(ovmf: OvmfImage) -> None:
    got = snp_launch_measurement(ovmf, vcpus=1, vmm_type=VmmType.GCE, guest_features=0x1,
                                 ovmf_digest=OVMF_HASH,
                                 kernel_hashes=KernelHashes.of(b"", b"", ""))
    assert got.hex() == ("5da7106cf14cf46b1725ebab123eb9e53bd46a1e9f400cd0c08e7827b04b688e"
                         "a8b4e403c8404efed4397ea5d5d0722e")


def test_vector_5_ec2(ovmf: OvmfImage) -> None:
    got = snp_launch_measurement(ovmf, vcpus=1, vcpu_signature=EPYC_V4, vmm_type=VmmType.EC2,
                                 guest_features=0x21, kernel_hashes=KernelHashes.of(b"", b"", ""))
    assert got.hex() == ("0ce9ccc06bab55eebe8abc234f3df6514883977a68a591b71052498ab52b2f1a"
                         "a415db338033946ef93aa8278c0d67fb")


# Multi-vCPU cases (the AP VMSA path). Expected values computed on 2026-11-23 with
# `sev-snp-measure` 0.0.13 from PyPI (--mode snp --ovmf ovmf_AmdSev_suffix.bin plus the
# arguments shown); kernel/initrd files held the bytes b"fake-kernel" / b"fake-initrd".
@pytest.mark.parametrize(
    ("kwargs", "want"),
    [
        ({"vcpus": 4, "vcpu_signature": VCPU_SIGNATURES["EPYC-Milan"]},  # --vcpu-type EPYC-Milan
         "05a898db12cf0549acbca41d5ee88ac9260e80f36ac98b8e2393ae7f8030fdb0"
         "0fce63530669216220b38d390868c834"),
        ({"vcpus": 2, "vcpu_signature": EPYC_V4, "vmm_type": VmmType.EC2},
         "45160b0bd6416da62b6cefb16afa8437d8d49d1d29428cf0f16373a4ef2911df"
         "1f7e01bf05a3d7ec3dd66090d24f59c7"),
        ({"vcpus": 3, "vmm_type": VmmType.GCE,
          "kernel_hashes": KernelHashes.of(b"fake-kernel", b"fake-initrd", "root=/dev/sda")},
         "b22ef818b3715396374fafc75e4147ca4021e6775c3cd236db9801414bb977da"
         "db0ea0a6926b14cd15be5dc84f096071"),
    ],
    ids=["qemu-4-milan", "ec2-2", "gce-3-kernel"],
)
def test_multi_vcpu(ovmf: OvmfImage, kwargs: dict, want: str) -> None:
    assert snp_launch_measurement(ovmf, **kwargs).hex() == want


def test_ovmf_metadata(ovmf: OvmfImage) -> None:
    assert ovmf.gpa == 0xFFFFF000
    assert [s.type for s in ovmf.sections] == [
        SectionType.SNP_SEC_MEM, SectionType.SNP_SEC_MEM, SectionType.SNP_SECRETS,
        SectionType.CPUID, SectionType.SVSM_CAA, SectionType.SNP_KERNEL_HASHES,
        SectionType.SNP_SEC_MEM]
    assert ovmf.sev_hashes_table_gpa == 0x810C00
    assert ovmf.sev_es_reset_eip == 0x80B004


def test_cpuid_signatures() -> None:
    assert cpuid_signature(23, 1, 2) == 0x00800F12  # Naples
    assert cpuid_signature(25, 1, 1) == 0x00A00F11  # Milan
    assert cpuid_signature(25, 17, 0) == 0x00A10F10  # Genoa


def test_kernel_hashes_table_layout() -> None:
    table = KernelHashes.of(b"k", None, None).table()
    assert len(table) == 176  # 18 + 3 * 50 = 168, padded to 16
    assert struct.unpack_from("<H", table, 16)[0] == 168
    assert table[168:] == bytes(8)


def test_vmsa_fields() -> None:
    page = vmsa_page(BSP_EIP, 0x21, EPYC_V4, VmmType.QEMU)
    assert len(page) == 4096
    assert struct.unpack_from("<HHIQ", page, 0x10) == (0xF000, 0x9B, 0xFFFF, 0xFFFF0000)
    assert struct.unpack_from("<Q", page, 0x178)[0] == 0xFFF0  # RIP
    assert struct.unpack_from("<Q", page, 0x310)[0] == EPYC_V4  # RDX
    assert struct.unpack_from("<Q", page, 0x3B0)[0] == 0x21  # SEV_FEATURES


def _ovmf_with(mutate) -> bytes:
    data = bytearray(SUFFIX.read_bytes())
    mutate(data)
    return bytes(data)


def test_parse_refuses_malformed() -> None:
    with pytest.raises(FormatError):
        OvmfImage.parse(b"\0" * 100)
    good = SUFFIX.read_bytes()
    meta_off = len(good) - int.from_bytes(
        OvmfImage.parse(good).table[OVMF_SEV_METADATA_GUID][:4], "little")

    def bad_sig(d: bytearray) -> None:
        d[meta_off] ^= 1

    def bad_type(d: bytearray) -> None:
        d[meta_off + 16 + 8] = 0x7F

    def bad_version(d: bytearray) -> None:
        d[meta_off + 8] = 2

    for mutate, field in [(bad_sig, "SEV_METADATA.Signature"),
                          (bad_type, "SEV_METADATA.items[0].type"),
                          (bad_version, "SEV_METADATA.Version")]:
        with pytest.raises(FormatError) as err:
            OvmfImage.parse(_ovmf_with(mutate))
        assert err.value.field == field


def test_no_footer_table_means_no_sections() -> None:
    image = OvmfImage.parse(bytes(4096))
    assert image.sections == ()
    with pytest.raises(FormatError):
        snp_launch_measurement(image, vcpus=1, kernel_hashes=KernelHashes.of(b""))
    with pytest.raises(FormatError):  # APs need the SEV-ES reset block
        snp_launch_measurement(image, vcpus=2)


def test_vcpu_range(ovmf: OvmfImage) -> None:
    with pytest.raises(FormatError):
        snp_launch_measurement(ovmf, vcpus=0)


def test_cli_vector_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    result = CliRunner().invoke(main, [
        "measure", "snp", "--ovmf", str(SUFFIX), "--kernel", str(empty), "--initrd", str(empty),
        "--append", "console=ttyS0 loglevel=7", "--vcpus", "1", "--vcpu-type", "EPYC-v4",
        "--guest-features", "0x21", "--ovmf-hash", OVMF_HASH.hex()])
    assert result.exit_code == 0, result.output
    assert result.output.strip().startswith("803f691094946e42")


def test_cli_json_and_errors() -> None:
    result = CliRunner().invoke(main, [
        "measure", "snp", "--ovmf", str(SUFFIX), "--vcpus", "1", "--vcpu-type", "EPYC-v4",
        "--guest-features", "21", "--json"])
    assert result.exit_code == 0, result.output
    entry = json.loads(result.output)
    assert entry == {"measurement": "e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8"
                                    "a1674dbf281a9278a4a2ebe0eed9f22adbcd0e2b",
                     "vcpu_type": "EPYC-v4", "vcpus": 1, "vmm_type": "qemu"}
    missing = CliRunner().invoke(main, ["measure", "snp", "--ovmf", str(SUFFIX), "--vcpus", "1"])
    assert missing.exit_code == 64 and "--vcpu-type" in missing.output
    bad = CliRunner().invoke(main, ["measure", "snp", "--ovmf", str(SUFFIX), "--vcpus", "1",
                                    "--vcpu-type", "EPYC", "--ovmf-hash", "00"])
    assert bad.exit_code == 64


def test_cli_malformed_ovmf_is_format_error(tmp_path: Path) -> None:
    bad = tmp_path / "ovmf.fd"
    bad.write_bytes(b"\0" * 100)
    result = CliRunner().invoke(main, ["measure", "snp", "--ovmf", str(bad), "--vcpus", "1",
                                       "--vcpu-type", "EPYC"])
    assert result.exit_code == 2
    assert "measure.snp" in result.output
