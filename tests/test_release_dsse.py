"""DSSE envelopes, release keys and the log entry (signature, signer, format, size checks)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attest.release import canonical_json
from attest.release.dsse import (
    PAYLOAD_TYPE,
    Envelope,
    Signature,
    entry_digest,
    entry_statement_digest,
    open_entry,
    pae,
    parse_entry,
    sign_statement,
)
from attest.release.keys import (
    ReleasePublicKey,
    ReleaseSigningKey,
    generate_signing_key,
    load_public_key_file,
    load_signing_key_file,
    write_signing_key_file,
)
from attest.release.statement import Revocation
from tests.support.release_samples import big_release, sample_release
from transparency_log.common.errors import (
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)

ED = generate_signing_key("ed25519")
P256 = generate_signing_key("ecdsa-p256-sha256")


def test_pae_matches_dsse_spec_example() -> None:
    """DSSE protocol.md test vector."""
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")


@pytest.mark.parametrize("key", [ED, P256], ids=["ed25519", "p256"])
def test_sign_and_open(key: ReleaseSigningKey) -> None:
    env = sign_statement(sample_release(), [key])
    entry = env.encode()
    assert parse_entry(entry) == env
    opened = open_entry(entry, [key.public])
    assert opened.statement == sample_release()
    assert opened.signers == (key.keyid,)
    assert opened.digest == entry_digest(entry)
    doc = json.loads(entry)
    assert list(doc) == ["payload", "payloadType", "signatures"]
    assert doc["payloadType"] == PAYLOAD_TYPE
    assert base64.b64decode(doc["payload"]) == sample_release().encode()


def test_keyid_is_sha256_of_spki() -> None:
    import hashlib
    assert ED.keyid == hashlib.sha256(ED.public.spki).hexdigest()
    assert ED.public.algorithm == "ed25519"
    assert P256.public.algorithm == "ecdsa-p256-sha256"


def test_every_payload_bit_flip_fails_signature() -> None:
    env = sign_statement(sample_release(), [ED])
    for pos in (0, len(env.payload) // 2, len(env.payload) - 1):
        bad = bytearray(env.payload)
        bad[pos] ^= 0x01
        forged = Envelope(bytes(bad), env.signatures).encode()
        with pytest.raises(SignatureError) as err:
            open_entry(forged, [ED.public])
        assert err.value.check == "release.dsse.signature"


def test_swapped_key_signature_fails() -> None:
    """A signature by another key under the accepted key's id is a SignatureError."""
    env = sign_statement(sample_release(), [P256])
    forged = Envelope(env.payload, (Signature(ED.keyid, env.signatures[0].sig),)).encode()
    with pytest.raises(SignatureError):
        open_entry(forged, [ED.public])


def test_unknown_signer_refused() -> None:
    entry = sign_statement(sample_release(), [ED]).encode()
    with pytest.raises(VerificationError) as err:
        open_entry(entry, [P256.public])
    assert not isinstance(err.value, SignatureError)
    assert err.value.check == "release.dsse.signer"


def test_unknown_extra_signatures_ignored_and_threshold() -> None:
    other = generate_signing_key()
    entry = sign_statement(sample_release(), [other, ED, P256]).encode()
    assert open_entry(entry, [ED.public]).signers == (ED.keyid,)
    assert open_entry(entry, [ED.public, P256.public], threshold=2).signers == (
        ED.keyid, P256.keyid)
    with pytest.raises(VerificationError):
        open_entry(entry, [ED.public], threshold=2)


def test_revocation_entry() -> None:
    release_entry = sign_statement(sample_release(), [ED]).encode()
    released = open_entry(release_entry, [ED.public])
    assert released.statement_digest == hashlib.sha256(parse_entry(release_entry).payload).digest()
    rev = Revocation.of_statement(released.statement_digest, "compromised build machine")
    opened = open_entry(sign_statement(rev, [ED]).encode(), [ED.public])
    assert isinstance(opened.statement, Revocation)
    assert opened.statement.value == entry_statement_digest(release_entry)


def _entry_doc() -> dict:
    return json.loads(sign_statement(sample_release(), [ED]).encode())


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(payloadType="application/json"), "payloadType"),
        (lambda d: d.update(extra="x"), "extra"),
        (lambda d: d["signatures"][0].update(extra="x"), "signatures[0].extra"),
        (lambda d: d.update(signatures=[]), "signatures"),
        (lambda d: d["signatures"].append(dict(d["signatures"][0])), "signatures"),
        (lambda d: d["signatures"][0].update(keyid="AB" * 32), "signatures[0].keyid"),
        (lambda d: d["signatures"][0].update(sig="!!!!"), "signatures[0].sig"),
        (lambda d: d.update(payload=d["payload"].rstrip("=")), "payload"),
        (lambda d: d.update(payload=base64.urlsafe_b64encode(b"\xfb\xff").decode()), "payload"),
        (lambda d: d.update(payload=5), "payload"),
    ],
)
def test_parse_entry_refuses(edit, field: str) -> None:
    doc = _entry_doc()
    edit(doc)
    with pytest.raises(FormatError) as err:
        parse_entry(canonical_json.encode(doc))
    assert err.value.field == field


def test_non_canonical_base64_padding_bits() -> None:
    doc = _entry_doc()
    sig = doc["signatures"][0]["sig"]  # 64 bytes: 86 chars + "==", last char has 4 spare bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    doc["signatures"][0]["sig"] = sig[:-3] + alphabet[alphabet.index(sig[-3]) ^ 1] + "=="
    with pytest.raises(FormatError) as err:
        parse_entry(canonical_json.encode(doc))
    assert err.value.message == "non-canonical base64"


def test_entry_size_cap() -> None:
    big = big_release()
    assert 50000 < len(big.encode()) < 65535  # the statement fits, the base64 envelope does not
    with pytest.raises(FormatError) as err:
        sign_statement(big, [ED])
    assert err.value.check == "release.entry.size"
    with pytest.raises(FormatError):
        parse_entry(b" " * 65536)


def test_public_key_file_roundtrip(tmp_path: Path) -> None:
    text = P256.public.to_text()
    assert text.startswith("attestlog-release-key:v1 ") and text.endswith("\n")
    path = tmp_path / "release.pub"
    path.write_text(text)
    assert load_public_key_file(path) == P256.public
    for bad in ["", text.strip(), "attestlog-release-key:v2 " + text.split()[1] + "\n",
                text.replace("=", "") if "=" in text else text[:-2] + "\n",
                "attestlog-release-key:v1 AAAA\n"]:
        with pytest.raises(TrustConfigError):
            ReleasePublicKey.from_text(bad)


def test_other_algorithms_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(TrustConfigError):
        ReleaseSigningKey(p384)
    with pytest.raises(TrustConfigError):
        ReleasePublicKey(b"\x30\x00")
    with pytest.raises(TrustConfigError):
        ReleasePublicKey(ReleaseSigningKey.from_pem(
            ReleaseSigningKey(ED.private_key).to_pem()).public.spki[:-1])
    with pytest.raises(TrustConfigError):
        generate_signing_key("rsa")


def test_private_key_file(tmp_path: Path) -> None:
    path = tmp_path / "release.key"
    write_signing_key_file(path, P256)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_signing_key_file(path).keyid == P256.keyid
    with pytest.raises(FileExistsError):
        write_signing_key_file(path, ED)
    os.chmod(path, 0o644)
    with pytest.raises(TrustConfigError) as err:
        load_signing_key_file(path)
    assert err.value.check == "release.key.permissions"
    bad = tmp_path / "bad.key"
    bad.write_bytes(b"not pem")
    os.chmod(bad, 0o600)
    with pytest.raises(TrustConfigError):
        load_signing_key_file(bad)
