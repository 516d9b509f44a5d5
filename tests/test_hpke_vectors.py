"""HPKE (RFC 9180) base mode on pyhpke, against RFC 9180 Appendix A.1.1 and A.2.1.

The vectors (tests/vectors/rfc/rfc9180-base-x25519.json, MANIFEST.md) give the recipient's
ikmR, the ephemeral skEm (injected through ``rng``), and every encryption and export of the
suites DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM and ChaCha20Poly1305.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attest.private.errors import DecryptError
from attest.private.hpke import PrivateKey, setup_base_r, setup_base_s, suite
from transparency_log.common.errors import FormatError

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "rfc" / "rfc9180-base-x25519.json").read_text())
IDS = ["A.1.1-aes128gcm", "A.2.1-chacha20poly1305"]
x = bytes.fromhex


def _contexts(v: dict):
    s = suite(v["kem_id"], v["kdf_id"], v["aead_id"])
    sk_r = PrivateKey.derive(x(v["ikmR"]))
    enc, sender = setup_base_s(s, x(v["pkRm"]), x(v["info"]), rng=lambda n: x(v["skEm"]))
    return s, sk_r, enc, sender, setup_base_r(s, enc, sk_r, x(v["info"]))


def test_vectors_cover_both_suites_in_base_mode() -> None:
    assert [(v["mode"], v["kem_id"], v["kdf_id"], v["aead_id"]) for v in VECTORS] == [
        (0, 0x20, 1, 1), (0, 0x20, 1, 3)]


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_key_derivation(v: dict) -> None:
    sk_r = PrivateKey.derive(x(v["ikmR"]))
    assert sk_r.private_bytes().hex() == v["skRm"]
    assert sk_r.public_bytes().hex() == v["pkRm"]
    sk_e = PrivateKey.derive(x(v["ikmE"]))
    assert sk_e.private_bytes().hex() == v["skEm"]
    assert sk_e.public_bytes().hex() == v["pkEm"]


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_encryptions_and_exports(v: dict) -> None:
    _, _, enc, sender, recipient = _contexts(v)
    assert enc.hex() == v["enc"]
    seq = 0
    for e in v["encryptions"]:
        while seq < e["sequence_number"]:  # advance both contexts to the listed sequence number
            recipient.open(sender.seal(b"", b""), b"")
            seq += 1
        ct = sender.seal(x(e["pt"]), x(e["aad"]))
        assert ct.hex() == e["ct"], e["sequence_number"]
        assert recipient.open(ct, x(e["aad"])) == x(e["pt"])
        seq += 1
    for e in v["exports"]:
        assert sender.export(x(e["exporter_context"]), e["L"]).hex() == e["exported_value"]
        assert recipient.export(x(e["exporter_context"]), e["L"]).hex() == e["exported_value"]


@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_tampering_gives_one_error_without_detail(v: dict) -> None:
    s, sk_r, enc, _, _ = _contexts(v)
    e = v["encryptions"][0]
    ct = x(e["ct"])
    attempts = {
        "flipped tag": (enc, x(v["info"]), ct[:-1] + bytes([ct[-1] ^ 1]), x(e["aad"])),
        "other aad": (enc, x(v["info"]), ct, b"Count-1"),
        "other info": (enc, b"other info", ct, x(e["aad"])),
        "other enc": (PrivateKey.derive(b"\x01" * 32).public_bytes(), x(v["info"]), ct,
                      x(e["aad"])),
        "low-order enc": (bytes(32), x(v["info"]), ct, x(e["aad"])),
    }
    messages = set()
    for name, (enc_, info, ct_, aad) in attempts.items():
        with pytest.raises(DecryptError) as exc:
            setup_base_r(s, enc_, sk_r, info).open(ct_, aad)
        assert exc.value.check == "ohttp.decrypt", name
        assert exc.value.field is None and exc.value.got is None
        messages.add(str(exc.value))
    assert messages == {"ohttp.decrypt: cannot decrypt"}


def test_low_order_public_key_is_refused_at_the_sender() -> None:
    s = suite(0x20, 1, 1)
    with pytest.raises(FormatError) as exc:
        setup_base_s(s, bytes(32), b"", rng=lambda n: b"\x07" * n)
    assert exc.value.check == "ohttp.format"
    assert exc.value.field == "HPKE Public Key"


@pytest.mark.parametrize(("ids", "field"), [((0x10, 1, 1), "HPKE KEM ID"),
                                            ((0x20, 2, 1), "HPKE KDF ID"),
                                            ((0x20, 1, 2), "HPKE AEAD ID")])
def test_only_the_implemented_suites(ids: tuple[int, int, int], field: str) -> None:
    with pytest.raises(FormatError) as exc:
        suite(*ids)
    assert exc.value.check == "ohttp.format" and exc.value.field == field
