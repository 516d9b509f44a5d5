"""attest.certificates: a Name that is not plain is still decoded at load, and a malformed
one is refused there (FormatError naming the field), while a plain Name is left to be decoded
when first read (RFC 5280 §4.1.2.4, §4.1.2.6). Each certificate is built at run time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from attest.certificates import _plain_names, clear_parse_memos, load_certificate
from transparency_log.common.errors import FormatError

MARK = "ZZZZMARKZZZZ"


def _cert(subject_cn: str, issuer_cn: str = "issuer") -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cn = x509.NameAttribute(NameOID.COMMON_NAME, subject_cn, _validate=False)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([cn, x509.NameAttribute(NameOID.COUNTRY_NAME, "US")]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.DER)


def test_a_plain_name_loads_and_decodes_when_read() -> None:
    clear_parse_memos()
    data = _cert("plain subject")
    assert _plain_names(data) == {"subject", "issuer"}
    cert = load_certificate(data, check="test.format", field="leaf")
    assert cert.subject.rfc4514_string() == "C=US,CN=plain subject"


@pytest.mark.parametrize("which", ["subject", "issuer"])
def test_a_name_that_does_not_decode_is_refused_at_load_naming_the_field(which: str) -> None:
    clear_parse_memos()
    data = _cert(MARK if which == "subject" else "s", MARK if which == "issuer" else "i")
    bad = data.replace(MARK.encode(), b"\xff" * len(MARK))  # UTF8String, not UTF-8
    assert which not in _plain_names(bad)
    with pytest.raises(FormatError) as err:
        load_certificate(bad, check="test.format", field="leaf")
    assert err.value.check == "test.format"
    assert err.value.field == f"leaf.{which}"


def test_an_oversized_common_name_is_not_plain() -> None:
    """cryptography limits a commonName to 64 bytes: such a Name is decoded at load (where
    cryptography warns or refuses), never left for later."""
    clear_parse_memos()
    data = _cert("x" * 65)
    assert "subject" not in _plain_names(data)
    assert "issuer" in _plain_names(data)
