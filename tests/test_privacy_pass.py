"""Privacy Pass token type 0x0002 (RFC 9578 §6): the RFC vectors, and the attacks refused."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from functools import cache

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from attest.formats.privacy_pass import Token, TokenChallenge, TokenRequest
from attest.formats.privacy_pass_http import IssuerDirectory, TokenKeyEntry
from attest.private import blind_rsa
from attest.private import privacy_pass as pp
from tests.support.privacy_pass_vectors import rfc9578_type2_vectors, scripted
from transparency_log.common.errors import (
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)

VECTORS = rfc9578_type2_vectors()
CHALLENGE = TokenChallenge(token_type=2, issuer_name="issuer.example",
                           redemption_context=bytes(range(32)),
                           origin_info="router.example").encode()


def _issuer(v: dict[str, bytes]) -> pp.Issuer:
    return pp.Issuer(blind_rsa.PrivateKey.from_cryptography(
        load_pem_private_key(v["skS"], None)))  # type: ignore[arg-type]


@cache
def _attacker_issuer() -> pp.Issuer:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return pp.Issuer(blind_rsa.PrivateKey.from_cryptography(key))


def _token(issuer: pp.Issuer, challenge: bytes = CHALLENGE) -> Token:
    request, pending = pp.Client(issuer.key).begin(challenge, os.urandom)
    return pending.finalize(issuer.evaluate(request.encode(), os.urandom).encode())


@pytest.mark.parametrize("index", range(len(VECTORS)), ids=lambda i: f"vector{i + 1}")
def test_rfc9578_appendix_a2_vectors(index: int) -> None:
    v = VECTORS[index]
    issuer = _issuer(v)
    assert issuer.key.spki == v["pkS"]
    key = pp.IssuerKey.from_spki(v["pkS"])
    assert key == issuer.key
    # The rng gives the client's nonce, then Blind's salt, then r (the vector's "blind").
    rng = scripted(v["nonce"], v["salt"], v["blind"])
    request, pending = pp.Client(key).begin(v["token_challenge"], rng)
    assert request.encode() == v["token_request"]
    response = issuer.evaluate(v["token_request"], os.urandom)
    assert response.encode() == v["token_response"]
    token = pending.finalize(v["token_response"])
    assert token.encode() == v["token"]
    assert pp.verify_token(v["token"], key, challenge=v["token_challenge"]) == token


def test_issuance_round_trip_with_fresh_randomness() -> None:
    issuer = _issuer(VECTORS[0])
    token = _token(issuer)
    assert pp.verify_token(token.encode(), issuer.key, challenge=CHALLENGE) == token
    assert token.challenge_digest == hashlib.sha256(CHALLENGE).digest()


def test_token_for_another_challenge_is_refused() -> None:
    issuer = _issuer(VECTORS[0])
    token = _token(issuer)
    other = TokenChallenge(token_type=2, issuer_name="issuer.example",
                           redemption_context=bytes(32), origin_info="router.example").encode()
    with pytest.raises(VerificationError) as err:
        pp.verify_token(token, issuer.key, challenge=other)
    assert err.value.check == "privacypass.challenge"


def test_a_new_nonce_on_a_spent_token_does_not_verify() -> None:
    """Minting a 'fresh' token from a spent one (new nonce, same authenticator) fails."""
    issuer = _issuer(VECTORS[0])
    token = _token(issuer)
    forged = dataclasses.replace(token, nonce=os.urandom(32))
    with pytest.raises(SignatureError) as err:
        pp.verify_token(forged.encode(), issuer.key, challenge=CHALLENGE)
    assert err.value.check == "privacypass.signature"


def test_flipped_authenticator_bit_is_refused() -> None:
    issuer = _issuer(VECTORS[0])
    token = _token(issuer)
    bad = bytearray(token.encode())
    bad[-1] ^= 0x01
    with pytest.raises(SignatureError) as err:
        pp.verify_token(bytes(bad), issuer.key, challenge=CHALLENGE)
    assert err.value.check == "privacypass.signature"


def test_token_from_another_issuer_is_refused() -> None:
    pinned = _issuer(VECTORS[0])
    attacker = _attacker_issuer()
    token = _token(attacker)
    pp.verify_token(token, attacker.key, challenge=CHALLENGE)  # valid under its own key
    with pytest.raises(VerificationError) as err:
        pp.verify_token(token, pinned.key, challenge=CHALLENGE)
    assert err.value.check == "privacypass.key_id"
    # Relabelled with the pinned key's id, its authenticator does not verify.
    relabelled = dataclasses.replace(token, token_key_id=pinned.key.token_key_id)
    with pytest.raises(SignatureError) as err:
        pp.verify_token(relabelled, pinned.key, challenge=CHALLENGE)
    assert err.value.check == "privacypass.signature"


def test_pending_token_is_single_use() -> None:
    issuer = _issuer(VECTORS[0])
    request, pending = pp.Client(issuer.key).begin(CHALLENGE, os.urandom)
    response = issuer.evaluate(request, os.urandom)
    pending.finalize(response)
    with pytest.raises(VerificationError) as err:
        pending.finalize(response)
    assert err.value.check == "privacypass.finalize"


def test_client_refuses_an_answer_to_another_request() -> None:
    """A hostile issuer answering with a signature for another request cannot hand the
    client a token that fails later: finalize checks it (RFC 9474 §4.4 step 5)."""
    issuer = _issuer(VECTORS[0])
    client = pp.Client(issuer.key)
    _first, pending = client.begin(CHALLENGE, os.urandom)
    second, _ = client.begin(CHALLENGE, os.urandom)
    with pytest.raises(SignatureError) as err:
        pending.finalize(issuer.evaluate(second, os.urandom))
    assert err.value.check == "privacypass.signature"


def test_issuer_refuses_a_request_for_another_key() -> None:
    issuer = _issuer(VECTORS[0])
    request = TokenRequest.decode(VECTORS[0]["token_request"])
    other = dataclasses.replace(
        request, truncated_token_key_id=request.truncated_token_key_id ^ 0xFF)
    with pytest.raises(VerificationError) as err:
        issuer.evaluate(other.encode(), os.urandom)
    assert err.value.check == "privacypass.key_id"
    with pytest.raises(FormatError) as ferr:
        issuer.evaluate(VECTORS[0]["token_request"] + b"\x00", os.urandom)
    assert ferr.value.check == "privacypass.format"


def test_client_refuses_a_challenge_of_another_token_type() -> None:
    issuer = _issuer(VECTORS[0])
    challenge = TokenChallenge(token_type=1, issuer_name="issuer.example").encode()
    with pytest.raises(FormatError) as err:
        pp.Client(issuer.key).begin(challenge, os.urandom)
    assert err.value.check == "privacypass.format" and err.value.field == "token_type"


def test_issuer_key_must_be_2048_bits() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(TrustConfigError) as err:
        pp.Issuer(blind_rsa.PrivateKey.from_cryptography(small))
    assert err.value.check == "privacypass.key"


def test_select_token_key_honours_not_before() -> None:
    new = _attacker_issuer().key
    old = _issuer(VECTORS[0]).key
    directory = IssuerDirectory(
        issuer_request_uri="/request",
        token_keys=(TokenKeyEntry(token_type=1, token_key=b"\x01" * 49),
                    TokenKeyEntry(token_type=2, token_key=new.spki, not_before=2000),
                    TokenKeyEntry(token_type=2, token_key=old.spki)))
    assert pp.select_token_key(directory, now=1999) == old
    assert pp.select_token_key(directory, now=2000) == new
    only_future = dataclasses.replace(directory, token_keys=directory.token_keys[:2])
    with pytest.raises(TrustConfigError) as err:
        pp.select_token_key(only_future, now=1999)
    assert err.value.check == "privacypass.key"
