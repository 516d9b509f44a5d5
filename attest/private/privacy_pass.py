"""Privacy Pass publicly verifiable tokens (RFC 9578 §6, token type 0x0002): the three roles.

- :class:`Client`: ``begin`` makes the TokenRequest for a challenge and returns a single-use
  :class:`PendingToken`, whose ``finalize`` turns the issuer's TokenResponse into a Token
  (RFC 9578 §6.1, §6.3); a second ``finalize`` is refused.
- :class:`Issuer`: ``evaluate`` checks a TokenRequest and blind-signs it (§6.2), with the
  signer's blinding and self-check of attest/private/blind_rsa.py. Authenticating the
  account that asks is the caller's business (the issuer server).
- :func:`verify_token`: the origin's check (RFC 9577 §2.2.3, RFC 9578 §6.4) against the
  issuer key it pins and the challenge it sent. Spent-token bookkeeping (double spend) is
  the caller's: this module keeps no state.

The blind RSA variant is RSABSSA-SHA384-PSS-Deterministic (RFC 9474 §5): token type 0x0002
keys carry salt length 48 in their SPKI (RFC 9578 §6.5: the salt length MUST match the hash
size), so tokens verify with salt length 48. Wire structures: attest/formats/privacy_pass.py.
Randomness is a parameter (``rng(n) -> n bytes``); no I/O, no clock.

Check ids: ``privacypass.format`` (FormatError, malformed structures), ``privacypass.key_id``
(VerificationError: the request or token names another issuer key),
``privacypass.challenge`` (VerificationError: the token answers another challenge),
``privacypass.signature`` (SignatureError: the authenticator does not verify),
``privacypass.finalize`` (VerificationError: a pending token finalized twice),
``privacypass.key`` (TrustConfigError: an issuer key that is not a 2048-bit RSA key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from attest.formats.privacy_pass import (
    MODULUS_BITS,
    NONCE_LEN,
    TOKEN_TYPE_BLIND_RSA,
    Token,
    TokenChallenge,
    TokenRequest,
    TokenResponse,
    decode_token_key,
    encode_token_key,
)
from attest.formats.privacy_pass_http import IssuerDirectory
from attest.private import blind_rsa
from transparency_log.common.errors import (
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)

Rng = Callable[[int], bytes]

CHECK_KEY_ID = "privacypass.key_id"
CHECK_CHALLENGE = "privacypass.challenge"
CHECK_SIGNATURE = "privacypass.signature"
CHECK_FINALIZE = "privacypass.finalize"
CHECK_KEY = "privacypass.key"
CHECK_FORMAT = "privacypass.format"

VARIANT = blind_rsa.RSABSSA_SHA384_PSS_DETERMINISTIC


def challenge_digest(challenge: bytes) -> bytes:
    """SHA-256 of the encoded TokenChallenge (RFC 9577 §2.2.1)."""
    return hashlib.sha256(challenge).digest()


@dataclass(frozen=True)
class IssuerKey:
    """An issuer public key for token type 0x0002: its SPKI, numbers and key id."""

    spki: bytes
    public_key: blind_rsa.PublicKey

    @property
    def token_key_id(self) -> bytes:
        """SHA-256 of the RSASSA-PSS SPKI (RFC 9578 §6.5)."""
        return hashlib.sha256(self.spki).digest()

    @property
    def truncated_token_key_id(self) -> int:
        """The last byte of token_key_id (RFC 9578 §6.1)."""
        return self.token_key_id[-1]

    @classmethod
    def from_spki(cls, spki: bytes) -> IssuerKey:
        """Strictly decode a published token key (``token-key`` of the directory)."""
        n, e = decode_token_key(spki)
        return cls(spki=bytes(spki), public_key=blind_rsa.PublicKey(n=n, e=e))

    @classmethod
    def from_public_key(cls, key: blind_rsa.PublicKey) -> IssuerKey:
        if key.n.bit_length() != MODULUS_BITS:
            raise TrustConfigError(CHECK_KEY, "token type 0x0002 needs a 2048-bit RSA key",
                                   field="modulus", got=key.n.bit_length(), want=MODULUS_BITS)
        return cls(spki=encode_token_key(key.n, key.e), public_key=key)


def select_token_key(directory: IssuerDirectory, now: int) -> IssuerKey:
    """The key a client uses (RFC 9578 §4): the first type-0x0002 entry whose not-before is
    absent or not after ``now`` (UNIX seconds, a parameter)."""
    for entry in directory.token_keys:
        if entry.token_type != TOKEN_TYPE_BLIND_RSA:
            continue
        if entry.not_before is None or entry.not_before <= now:
            return IssuerKey.from_spki(entry.token_key)
    raise TrustConfigError(CHECK_KEY, "the issuer directory has no usable token type 0x0002 "
                           "key yet", field="token-keys", got=now)


# --------------------------------------------------------------------------------------------
# Client


class PendingToken:
    """What the client keeps between its TokenRequest and the TokenResponse. Single use."""

    __slots__ = ("_digest", "_inv", "_issuer", "_nonce", "_token_input", "_used")

    def __init__(self, issuer: IssuerKey, nonce: bytes, digest: bytes, token_input: bytes,
                 inv: int) -> None:
        self._issuer = issuer
        self._nonce = nonce
        self._digest = digest
        self._token_input = token_input
        self._inv = inv
        self._used = False

    def __repr__(self) -> str:
        return "PendingToken(<secret>)"

    def finalize(self, response: bytes | TokenResponse) -> Token:
        """RFC 9578 §6.3: unblind, check, and build the Token. Works once."""
        if self._used:
            raise VerificationError(CHECK_FINALIZE, "this pending token was already "
                                    "finalized; start a new request", field="PendingToken")
        self._used = True
        if not isinstance(response, TokenResponse):
            response = TokenResponse.decode(response)
        try:
            authenticator = blind_rsa.finalize(self._issuer.public_key, self._token_input,
                                               response.blind_sig, self._inv, VARIANT)
        except SignatureError as err:
            raise SignatureError(CHECK_SIGNATURE, "the issuer's blind signature does not "
                                 "finalize to a valid token", field="blind_sig",
                                 got=err.got) from None
        finally:
            self._inv = 0
        return Token(nonce=self._nonce, challenge_digest=self._digest,
                     token_key_id=self._issuer.token_key_id, authenticator=authenticator)


class Client:
    """The client's side of the issuance protocol for one issuer key."""

    def __init__(self, issuer: IssuerKey) -> None:
        self.issuer = issuer

    def begin(self, challenge: bytes, rng: Rng) -> tuple[TokenRequest, PendingToken]:
        """RFC 9578 §6.1 for an encoded TokenChallenge; the rng gives nonce, salt, blind."""
        parsed = TokenChallenge.decode(challenge)
        if parsed.token_type != TOKEN_TYPE_BLIND_RSA:
            raise FormatError(CHECK_FORMAT, "challenge is not for token type 0x0002",
                              field="token_type", got=parsed.token_type,
                              want=TOKEN_TYPE_BLIND_RSA)
        nonce = rng(NONCE_LEN)
        if len(nonce) != NONCE_LEN:
            raise FormatError(CHECK_FORMAT, "rng returned the wrong number of bytes",
                              field="nonce", got=len(nonce), want=NONCE_LEN)
        digest = challenge_digest(challenge)
        token_input = (TOKEN_TYPE_BLIND_RSA.to_bytes(2, "big") + nonce + digest
                       + self.issuer.token_key_id)
        blinded = blind_rsa.blind(self.issuer.public_key,
                                  blind_rsa.prepare(token_input, VARIANT, rng), VARIANT, rng)
        request = TokenRequest(truncated_token_key_id=self.issuer.truncated_token_key_id,
                               blinded_msg=blinded.blinded_msg)
        return request, PendingToken(self.issuer, nonce, digest, token_input, blinded.inv)


# --------------------------------------------------------------------------------------------
# Issuer


class Issuer:
    """The issuer's side for one key (RFC 9578 §6.2)."""

    def __init__(self, private_key: blind_rsa.PrivateKey) -> None:
        self._key = private_key
        self.key = IssuerKey.from_public_key(private_key.public_key)

    def __repr__(self) -> str:
        return f"Issuer(token_key_id={self.key.token_key_id.hex()})"

    def evaluate(self, request: bytes | TokenRequest, rng: Rng) -> TokenResponse:
        """Check the TokenRequest (type, key id, size) and blind-sign it."""
        if not isinstance(request, TokenRequest):
            request = TokenRequest.decode(request)
        if request.truncated_token_key_id != self.key.truncated_token_key_id:
            raise VerificationError(CHECK_KEY_ID, "the request names another issuer key",
                                    field="truncated_token_key_id",
                                    got=request.truncated_token_key_id,
                                    want=self.key.truncated_token_key_id)
        return TokenResponse(blind_sig=blind_rsa.blind_sign(self._key, request.blinded_msg,
                                                            rng))


# --------------------------------------------------------------------------------------------
# Origin


def verify_token(token: bytes | Token, issuer: IssuerKey, *, challenge: bytes) -> Token:
    """RFC 9577 §2.2.3 / RFC 9578 §6.4: the token answers ``challenge`` (the encoded
    TokenChallenge the origin sent) and its authenticator verifies under the pinned issuer
    key. Returns the parsed Token; raises otherwise. Does not track spending."""
    if not isinstance(token, Token):
        token = Token.decode(token)
    if token.token_key_id != issuer.token_key_id:
        raise VerificationError(CHECK_KEY_ID, "the token was issued under another key",
                                field="token_key_id", got=token.token_key_id,
                                want=issuer.token_key_id)
    want_digest = challenge_digest(challenge)
    if token.challenge_digest != want_digest:
        raise VerificationError(CHECK_CHALLENGE, "the token answers another challenge",
                                field="challenge_digest", got=token.challenge_digest,
                                want=want_digest)
    try:
        blind_rsa.verify(issuer.public_key, token.authenticator_input, token.authenticator,
                         VARIANT)
    except SignatureError:
        raise SignatureError(CHECK_SIGNATURE, "the token's authenticator does not verify",
                             field="authenticator", got=token.authenticator[:16]) from None
    return token
