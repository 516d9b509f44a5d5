"""GPU device identity and ``gpu.device.distinct`` (verifier/gpu/device_identity.py; issue 16):
the real H100 chain is the test of record; simulated chains change one component at a time."""

from __future__ import annotations

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from attest.simulate.gpu import DEVICE_ROLES, _cert, derive_key, dice_tcbinfo, make_chain
from tests.support.vectors import vector_path
from transparency_log.common.errors import VerificationError
from verifier.gpu.device_identity import check_distinct_devices, device_identity
from verifier.gpu.report_verify import load_device_chain

SHARED = make_chain(b"shared-ca", DEVICE_ROLES)  # one Provisioner ICA, Identity and root
FIRMWARE = b"firmware-a"


def real_chain() -> list[x509.Certificate]:
    return load_device_chain(vector_path("nvidia", "nvtrust", "hopperCertChain.txt").read_bytes())


def sim_chain(device: bytes, firmware: bytes = FIRMWARE, *,
              leaf_serial: int | None = None) -> list[x509.Certificate]:
    """A device chain: ``device`` names the GPU (its BROM DeviceID key), ``firmware`` its GSP
    firmware (the FWID, and with the device the attestation key)."""
    brom_key = derive_key(device, "brom")
    leaf_key = derive_key(device + b"/" + firmware, "fmc")
    fwid = hashlib.sha384(firmware).digest()  # the same on every GPU running this firmware
    serial = leaf_serial if leaf_serial is not None else \
        int.from_bytes(hashlib.sha256(device + firmware).digest()[:19], "big")
    brom = _cert(DEVICE_ROLES[1], brom_key, DEVICE_ROLES[2], SHARED.keys[2], ca=True,
                 serial=int.from_bytes(hashlib.sha256(device).digest()[:9], "big"))
    leaf = _cert(DEVICE_ROLES[0], leaf_key, DEVICE_ROLES[1], brom_key, ca=False, serial=serial,
                 extensions=[(dice_tcbinfo(fwid), False)])
    return [leaf, brom, *SHARED.certificates[2:]]


def _spki_sha256(cert: x509.Certificate) -> bytes:
    return hashlib.sha256(cert.public_key().public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).digest()


def _refused(chains: list[tuple[int, list[x509.Certificate]]]) -> VerificationError:
    with pytest.raises(VerificationError) as info:
        check_distinct_devices(chains)
    assert info.value.check == "gpu.device.distinct"
    return info.value


def test_real_h100_identity() -> None:
    chain = real_chain()
    ident = device_identity(chain)
    assert chain[1].subject.rfc4514_string().startswith("CN=GH100 A01 GSP BROM")
    assert ident.device_key == _spki_sha256(chain[1])
    assert ident.attestation_key == _spki_sha256(chain[0])
    # NVIDIA's local verifier reports the attestation certificate's serial as the EAT ueid.
    assert ident.ueid == 0x53C22BA15E5D68088282DA074ED9FB37AA585771


def test_real_h100_chain_counted_twice_is_refused() -> None:
    chain = real_chain()
    err = _refused([(0, chain), (1, chain)])
    assert err.field == "GPU-1 GSP BROM subjectPublicKeyInfo (DeviceID key)"
    assert err.got == _spki_sha256(chain[1])
    assert "GPU 1 is the same device as GPU 0" in str(err)


def test_distinct_devices_pass() -> None:
    ids = check_distinct_devices([(0, real_chain()), (1, sim_chain(b"gpu-b")),
                                  (2, sim_chain(b"gpu-c"))])
    assert len({i.device_key for i in ids}) == 3


def test_the_same_firmware_on_distinct_devices_passes() -> None:
    """The FWID is the firmware's digest, not the device's: 8 GPUs with one firmware are 8."""
    a, b = sim_chain(b"gpu-a"), sim_chain(b"gpu-b")
    ext = x509.ObjectIdentifier("2.23.133.5.4.1")
    assert a[0].extensions.get_extension_for_oid(ext) == b[0].extensions.get_extension_for_oid(ext)
    assert len(check_distinct_devices([(0, a), (1, b)])) == 2


def test_one_device_under_two_firmwares_is_one_device() -> None:
    """Same DeviceID (BROM) key, another attestation key and FWID: still one GPU."""
    err = _refused([(0, sim_chain(b"gpu-a")), (1, sim_chain(b"gpu-a", b"firmware-b"))])
    assert err.field == "GPU-1 GSP BROM subjectPublicKeyInfo (DeviceID key)"


def test_a_repeated_ueid_is_refused() -> None:
    err = _refused([(0, sim_chain(b"gpu-a", leaf_serial=7)),
                    (1, sim_chain(b"gpu-b", leaf_serial=7))])
    assert err.field == "GPU-1 GSP FMC leaf serialNumber (UEID)"
    assert err.got == "7"


def test_the_first_repeat_names_both_indexes() -> None:
    a = sim_chain(b"gpu-a")
    err = _refused([(0, a), (3, sim_chain(b"gpu-b")), (5, a)])
    assert "GPU 5 is the same device as GPU 0" in str(err)


def test_a_chain_without_a_device_certificate_is_refused() -> None:
    err = _refused([(0, real_chain()[:1])])
    assert err.field == "chain length"
