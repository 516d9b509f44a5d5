"""Issue 15: the SNP fast paths decide exactly as the strict readers, and a verification leaves
nothing for the garbage collector.

- The report parser unpacks the whole ATTESTATION_REPORT at once (attest/formats/snp_report.py):
  every reserved byte of each version is still refused under its range's name, and every field
  is still read from the spec's offset (ranges written here from the ABI spec 56860 table,
  independently of the parser's own table).
- A one-byte KDS INTEGER is read inline (attest/formats/snp_kds_ext.py): every encoding agrees
  with the strict DER reader, and non-minimal or negative ones are still refused.
- A verification whose CRL cannot be had (waived by the policy) keeps no exception in a frame its
  own traceback holds: no reference cycle per call (the old code made one per verification).
"""

from __future__ import annotations

import gc

import pytest

from attest.formats import der
from attest.formats.snp_kds_ext import CHECK as KDS_CHECK
from attest.formats.snp_kds_ext import decode_der_uint
from attest.formats.snp_report import MILAN, parse_report
from tests.support.snp_fixtures import AT, REAL, sim, vec
from transparency_log.common.errors import FormatError
from verifier.snp.verify import SnpCollateral, SnpVerifier
from verifier.transcript import Transcript

# (first, end, field) of each "must be zero" range, per report version (ABI spec 56860,
# "ATTESTATION_REPORT Structure"): CPUID_* are reserved in v2, the mitigation vectors before v5.
_COMMON = [(0x4C, 0x50, "RESERVED(0x4C)"), (0x1EB, 0x1EC, "RESERVED(0x1EB)"),
           (0x1EF, 0x1F0, "RESERVED(0x1EF)"), (0x330, 0x4A0, "SIGNATURE.RESERVED")]
RESERVED = {
    2: [*_COMMON, (0x188, 0x1A0, "RESERVED(0x188)"), (0x1F8, 0x2A0, "RESERVED(0x1F8)")],
    3: [*_COMMON, (0x18B, 0x1A0, "RESERVED(0x18B)"), (0x1F8, 0x2A0, "RESERVED(0x1F8)")],
    5: [*_COMMON, (0x18B, 0x1A0, "RESERVED(0x18B)"), (0x208, 0x2A0, "RESERVED(0x208)")],
}


@pytest.mark.parametrize("version", sorted(RESERVED))
def test_every_reserved_byte_is_refused_under_its_range(version: int) -> None:
    raw = sim(MILAN).report(version=version)
    parse_report(raw)
    for lo, hi, field in RESERVED[version]:
        for off in range(lo, hi):
            bad = bytearray(raw)
            bad[off] = 0x01
            with pytest.raises(FormatError) as e:
                parse_report(bytes(bad))
            assert (e.value.check, e.value.field) == ("snp.report.format", field), hex(off)


@pytest.mark.parametrize("name", sorted(REAL))
def test_every_field_is_read_from_the_spec_offset(name: str) -> None:
    raw = vec(name)
    r = parse_report(raw)

    def le(lo: int, hi: int) -> int:
        return int.from_bytes(raw[lo:hi], "little")

    key_info = le(0x48, 0x4C)
    assert (r.version, r.guest_svn, r.policy) == (le(0, 4), le(4, 8), le(8, 0x10))
    assert (r.family_id, r.image_id) == (raw[0x10:0x20], raw[0x20:0x30])
    assert (r.vmpl, r.signature_algo, r.current_tcb, r.platform_info) == (
        le(0x30, 0x34), le(0x34, 0x38), le(0x38, 0x40), le(0x40, 0x48))
    assert (r.author_key_en, r.mask_chip_key, r.signing_key) == (
        bool(key_info & 1), bool(key_info & 2), key_info >> 2 & 7)
    assert (r.report_data, r.measurement, r.host_data) == (
        raw[0x50:0x90], raw[0x90:0xC0], raw[0xC0:0xE0])
    assert (r.id_key_digest, r.author_key_digest) == (raw[0xE0:0x110], raw[0x110:0x140])
    assert (r.report_id, r.report_id_ma) == (raw[0x140:0x160], raw[0x160:0x180])
    assert (r.reported_tcb, r.chip_id, r.committed_tcb) == (
        le(0x180, 0x188), raw[0x1A0:0x1E0], le(0x1E0, 0x1E8))
    assert (r.cpuid_fam_id, r.cpuid_mod_id, r.cpuid_step) == tuple(raw[0x188:0x18B])
    assert (r.current_build, r.current_minor, r.current_major) == tuple(raw[0x1E8:0x1EB])
    assert (r.committed_build, r.committed_minor, r.committed_major) == tuple(
        raw[0x1EC:0x1EF])
    assert (r.launch_tcb, r.launch_mit_vector, r.current_mit_vector) == (
        le(0x1F0, 0x1F8), le(0x1F8, 0x200), le(0x200, 0x208))
    assert (r.signature_r, r.signature_s) == (le(0x2A0, 0x2E8), le(0x2E8, 0x330))


def _strict(data: bytes) -> int:
    tag, contents = der.read_single(data, check=KDS_CHECK, field="x")
    if tag != der.TAG_INTEGER:
        raise FormatError(KDS_CHECK, "not a DER INTEGER", field="x")
    return der.decode_uint(contents, check=KDS_CHECK, field="x")


def _outcome(read, data: bytes) -> object:  # type: ignore[no-untyped-def]
    try:
        return read(data)
    except FormatError as err:
        return ("refused", err.check)


def test_one_byte_integers_read_inline_agree_with_the_strict_reader() -> None:
    encodings = [bytes([tag, length, *body]) for tag in (0x02, 0x04, 0x16)
                 for length in (0, 1, 2) for body in
                 ([b] for b in range(256))] + [
        bytes([0x02, 0x02, 0x00, b]) for b in range(256)] + [
        bytes([0x02, 0x01]), bytes([0x02, 0x81, 0x01, 0x05]), bytes([0x02, 0x01, 0x05, 0x00])]
    for data in encodings:
        assert _outcome(lambda d: decode_der_uint(d, "x"), data) == _outcome(_strict, data), data
    assert decode_der_uint(b"\x02\x01\x7f", "x") == 0x7F
    for refused in (b"\x02\x01\x80", b"\x02\x02\x00\x05", b"\x04\x01\x05"):
        with pytest.raises(FormatError):
            decode_der_uint(refused, "x")


def test_a_waived_crl_leaves_no_reference_cycle() -> None:
    verifier = SnpVerifier.production()
    col = SnpCollateral(vcek=vec(REAL["trustee/test-report.bin"]))

    def run() -> None:
        t = Transcript(waive=frozenset({"snp.crl"}))  # no AMD CRL among the vectors
        verifier.verify(vec("trustee/test-report.bin"), at=AT, collateral=col, transcript=t)
        assert [s.result for s in t.steps if s.check == "snp.crl"] == ["waived"]

    run()  # cold: caches and memos filled
    was = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        for _ in range(5):
            run()
        assert gc.collect() == 0  # nothing was left for the collector
    finally:
        if was:
            gc.enable()
