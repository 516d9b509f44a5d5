"""Privacy Pass wire formats (RFC 9577, RFC 9578 §4, §6): RFC vectors, round trips, strictness."""

from __future__ import annotations

import hashlib
import json

import pytest

from attest.formats import privacy_pass as ppf
from attest.formats import privacy_pass_http as http
from attest.formats.der import encode_tlv
from tests.support.privacy_pass_vectors import (
    rfc9577_header_vectors,
    rfc9577_structure_vectors,
    rfc9578_type2_vectors,
)
from transparency_log.common.errors import FormatError

PKS = rfc9578_type2_vectors()[0]["pkS"]
TOKEN = rfc9578_type2_vectors()[0]["token"]


def _refused(fn, *args, field: str | None = None) -> FormatError:  # type: ignore[no-untyped-def]
    with pytest.raises(FormatError) as err:
        fn(*args)
    assert err.value.check == "privacypass.format"
    if field is not None:
        assert err.value.field == field
    return err.value


# --------------------------------------------------------------------------------------------
# RFC 9577 Appendix A.1


@pytest.mark.parametrize("index", range(5), ids=lambda i: f"vector{i + 1}")
def test_rfc9577_a1_structures(index: int) -> None:
    v = rfc9577_structure_vectors()[index]
    challenge = ppf.TokenChallenge(
        token_type=int.from_bytes(v["token_type"], "big"),
        issuer_name=v["issuer_name"].decode(), redemption_context=v["redemption_context"],
        origin_info=v["origin_info"].decode())
    encoded = challenge.encode()
    assert ppf.TokenChallenge.decode(encoded) == challenge
    token = ppf.Token(nonce=v["nonce"], challenge_digest=hashlib.sha256(encoded).digest(),
                      token_key_id=v["token_key_id"], authenticator=bytes(ppf.NK))
    assert token.authenticator_input == v["token_authenticator_input"]
    assert v["token_key_id"] == hashlib.sha256(PKS).digest()


def test_rfc9577_a1_grease_vector_is_not_a_challenge_we_take() -> None:
    grease = rfc9577_structure_vectors()[5]["token_authenticator_input"]
    _refused(ppf.TokenChallenge.decode, grease)


# --------------------------------------------------------------------------------------------
# RFC 9577 Appendix A.2 (WWW-Authenticate)


@pytest.mark.parametrize("index", range(3), ids=lambda i: f"vector{i + 1}")
def test_rfc9577_a2_headers(index: int) -> None:
    params, header = rfc9577_header_vectors()[index]
    got = http.parse_www_authenticate(header)
    assert len(got) == sum(1 for k in params if k.startswith("token-type-"))
    for i, challenge in enumerate(got):
        assert challenge.challenge == bytes.fromhex(params[f"token-challenge-{i}"])
        assert challenge.token_key == bytes.fromhex(params[f"token-key-{i}"])
        max_age = params.get(f"max-age-{i}")
        assert challenge.max_age == (None if max_age is None else int(max_age))
        token_type = int(params[f"token-type-{i}"], 16)
        if token_type == 0:  # grease: random bytes, not a TokenChallenge
            _refused(ppf.TokenChallenge.decode, challenge.challenge)
        else:
            assert ppf.TokenChallenge.decode(challenge.challenge).token_type == token_type


def test_www_authenticate_round_trip() -> None:
    items = [http.PrivateTokenChallenge(challenge=b"\x00\x02abc", token_key=PKS, max_age=10),
             http.PrivateTokenChallenge(challenge=b"\xff\xfe")]
    assert http.parse_www_authenticate(http.www_authenticate(items)) == items


@pytest.mark.parametrize("header", [
    'PrivateToken challenge="AAIA", token-key="AAAA" trailing',  # leftover text
    'PrivateToken challenge="AAIA",, Basic realm="x"',  # empty list element
    ', PrivateToken challenge="AAIA"',  # empty first element
    'PrivateToken challenge="AAIA", challenge="AAIA"',  # a parameter twice
    'PrivateToken challenge="AAIA", CHALLENGE="AAIA"',  # names are case-insensitive
    'PrivateToken challenge="AAI"',  # missing padding
    'PrivateToken challenge="AAI=="',  # extra padding
    'PrivateToken challenge="AAJ="',  # non-zero trailing bits
    'PrivateToken challenge="AA+/"',  # the standard alphabet, not base64url
    "PrivateToken token-key=\"AAAA\"",  # no challenge
    "PrivateToken AAIA",  # token68 where parameters are required
    'PrivateToken challenge="AAIA", max-age=010',  # non-canonical decimal
    'PrivateToken challenge="AAIA", max-age=-1',
    'PrivateToken challenge="AAIA',  # unterminated quoted-string
    "",
])
def test_www_authenticate_strictness(header: str) -> None:
    _refused(http.parse_www_authenticate, header)


def test_www_authenticate_skips_other_schemes_and_ignores_unknown_parameters() -> None:
    got = http.parse_www_authenticate(
        'Basic realm="x", Newauth abc==, PrivateToken challenge=AAIA, future="x\\"y", '
        'max-age=0')
    assert got == [http.PrivateTokenChallenge(challenge=b"\x00\x02\x00", max_age=0)]


def test_authorization_round_trip_and_strictness() -> None:
    value = http.authorization(TOKEN)
    assert http.parse_authorization(value) == TOKEN
    assert http.parse_authorization(
        "privatetoken token=" + http.b64url_encode(TOKEN) + ", other=1") == TOKEN
    _refused(http.parse_authorization, value + ", Basic abc")  # two credentials
    _refused(http.parse_authorization, "Bearer " + http.b64url_encode(TOKEN))
    _refused(http.parse_authorization, 'PrivateToken other="x"', field="token")
    _refused(http.parse_authorization, value + " x")
    _refused(http.parse_authorization, value[:-2] + '"', field="token")  # padding removed


# --------------------------------------------------------------------------------------------
# Structures


def test_token_round_trip_and_exact_size() -> None:
    token = ppf.Token.decode(TOKEN)
    assert token.encode() == TOKEN
    _refused(ppf.Token.decode, TOKEN + b"\x00", field="Token")
    _refused(ppf.Token.decode, TOKEN[:-1], field="Token")
    _refused(ppf.Token.decode, b"\x00\x01" + TOKEN[2:], field="token_type")


def test_token_request_and_response_exact_sizes() -> None:
    v = rfc9578_type2_vectors()[0]
    request = ppf.TokenRequest.decode(v["token_request"])
    assert request.encode() == v["token_request"]
    _refused(ppf.TokenRequest.decode, v["token_request"] + b"\x00", field="TokenRequest")
    _refused(ppf.TokenRequest.decode, b"\x00\x01" + v["token_request"][2:], field="token_type")
    response = ppf.TokenResponse.decode(v["token_response"])
    assert response.encode() == v["token_response"]
    # privacypass-ts keeps the first Nk bytes of a longer response; we refuse it.
    _refused(ppf.TokenResponse.decode, v["token_response"] + b"\x00", field="TokenResponse")


def test_token_challenge_strictness() -> None:
    good = ppf.TokenChallenge(token_type=2, issuer_name="issuer.example:8443",
                              origin_info="a.example,b.example")
    assert ppf.TokenChallenge.decode(good.encode()) == good
    assert good.origin_names == ("a.example", "b.example")
    encoded = good.encode()
    _refused(ppf.TokenChallenge.decode, encoded + b"\x00", field="TokenChallenge")
    _refused(ppf.TokenChallenge.decode, encoded[:-1])
    bad_context = (b"\x00\x02\x00\x0eissuer.example" + bytes([16]) + bytes(16) + b"\x00\x00")
    _refused(ppf.TokenChallenge.decode, bad_context, field="redemption_context")
    _refused(ppf.TokenChallenge.decode, b"\x00\x02\x00\x00\x00\x00\x00", field="issuer_name")
    userinfo = b"\x00\x02\x00\x13user@issuer.example\x00\x00\x00"
    _refused(ppf.TokenChallenge.decode, userinfo, field="issuer_name")
    non_ascii = b"\x00\x02\x00\x02\xc3\xa9\x00\x00\x00"
    _refused(ppf.TokenChallenge.decode, non_ascii, field="issuer_name")
    _refused(ppf.TokenChallenge, 2, "issuer.example", b"", "a.example,,b.example")


# --------------------------------------------------------------------------------------------
# Token key SPKI (RFC 9578 §6.5)


def test_token_key_spki_round_trip() -> None:
    n, e = ppf.decode_token_key(PKS)
    assert e == 65537 and n.bit_length() == 2048
    assert ppf.encode_token_key(n, e) == PKS


def test_token_key_spki_strictness() -> None:
    n, e = ppf.decode_token_key(PKS)
    algorithm = ppf.PSS_SHA384_ALGORITHM
    body = PKS[4 + len(algorithm):]
    # rsaEncryption instead of id-RSASSA-PSS (RFC 9474 §6.2: MUST NOT).
    rsa_encryption = bytes.fromhex("300d06092a864886f70d0101010500")
    _refused(ppf.decode_token_key, encode_tlv(0x30, rsa_encryption + body), field="algorithm")
    # Salt length 32 does not match SHA-384.
    salt32 = algorithm[:-1] + b"\x20"
    _refused(ppf.decode_token_key, encode_tlv(0x30, salt32 + body), field="algorithm")
    _refused(ppf.decode_token_key, PKS + b"\x00", field="token-key")
    # A 1024-bit modulus.
    small = ppf.encode_token_key(n >> 1024 | 1, e)
    _refused(ppf.decode_token_key, small, field="modulus")
    _refused(ppf.decode_token_key, ppf.encode_token_key(n, 2), field="publicExponent")


# --------------------------------------------------------------------------------------------
# Issuer directory (RFC 9578 §4)


def _directory(**extra: object) -> bytes:
    doc = {"issuer-request-uri": "https://issuer.example/request",
           "token-keys": [{"token-type": 2, "token-key": http.b64url_encode(PKS),
                           "not-before": 1686913811},
                          {"token-type": 2, "token-key": http.b64url_encode(PKS)}]}
    doc.update(extra)
    return json.dumps(doc).encode()


def test_issuer_directory_round_trip() -> None:
    directory = http.IssuerDirectory.decode(_directory(future="ignored"))
    assert directory.token_keys[0] == http.TokenKeyEntry(2, PKS, 1686913811)
    assert directory.token_keys[1].not_before is None
    assert http.IssuerDirectory.decode(directory.encode()) == directory


@pytest.mark.parametrize("raw", [
    b'{"issuer-request-uri": "a", "issuer-request-uri": "b", "token-keys": []}',
    _directory(**{"token-keys": []}),
    _directory(**{"token-keys": [{"token-type": True, "token-key": "AAAA"}]}),
    _directory(**{"token-keys": [{"token-type": 2, "token-key": "AAA"}]}),
    _directory(**{"token-keys": [{"token-type": 2, "token-key": "AAAA", "not-before": -1}]}),
    _directory(**{"token-keys": [{"token-type": 2, "token-key": "AAAA", "not-before": 1.5}]}),
    _directory(**{"token-keys": [{"token-type": 2}]}),
    _directory(**{"issuer-request-uri": 7}),
    b"[]",
    b'{"token-keys": NaN}',
    b"\xff",
])
def test_issuer_directory_strictness(raw: bytes) -> None:
    _refused(http.IssuerDirectory.decode, raw)
