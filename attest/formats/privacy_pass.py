"""Privacy Pass wire structures for token type 0x0002 (Blind RSA 2048), strict.

Pure: bytes in, frozen dataclass out, or FormatError (check ``privacypass.format``). The
crypto that fills them is attest/private/privacy_pass.py; docs/formats.md ("Anonymous tokens
(Privacy Pass)") lays every byte out. Integers are big-endian (TLS presentation language).

- TokenChallenge (RFC 9577 §2.1.1): token_type (2) ‖ issuer_name<1..2^16-1> ‖
  redemption_context<0..32> (length 0 or 32 only) ‖ origin_info<0..2^16-1>.
- TokenRequest (RFC 9578 §6.1): token_type (2) = 0x0002 ‖ truncated_token_key_id (1) ‖
  blinded_msg (Nk = 256).
- TokenResponse (RFC 9578 §6.2): blind_sig (Nk).
- Token (RFC 9577 §2.2.1, RFC 9578 §6.3): token_type (2) ‖ nonce (32) ‖ challenge_digest (32)
  ‖ token_key_id (Nid = 32) ‖ authenticator (Nk).
- Token key (RFC 9578 §6.5, §8.2.2): a DER SubjectPublicKeyInfo with the id-RSASSA-PSS
  algorithm and RSASSA-PSS-params naming SHA-384, MGF1 with SHA-384 and salt length 48
  (RFC 4055 §3.1, RFC 5756), around an RSAPublicKey with a 2048-bit modulus.

Unlike privacypass-ts (STYLE.md §11), every decoder takes an exact size and refuses
leftover bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from attest.formats.binary import Reader
from attest.formats.der import (
    TAG_INTEGER,
    TAG_SEQUENCE,
    decode_uint,
    encode_tlv,
    encode_uint,
    read_single,
    read_tlv,
)
from transparency_log.common.errors import FormatError

CHECK = "privacypass.format"

TOKEN_TYPE_BLIND_RSA = 0x0002  # RFC 9578 §8.2.2 "Blind RSA (2048-bit)"
NK = 256  # RFC 9578 §8.2.2: authenticator / blinded message / blind signature size
NID = 32  # RFC 9578 §8.2.2: token_key_id size
NONCE_LEN = 32  # RFC 9577 §2.2.1
DIGEST_LEN = 32  # SHA-256 (challenge_digest, RFC 9577 §2.2.1)
REDEMPTION_CONTEXT_LENS = (0, 32)  # RFC 9577 §2.1.1
MODULUS_BITS = 2048
TOKEN_LEN = 2 + NONCE_LEN + DIGEST_LEN + NID + NK  # 354
TOKEN_REQUEST_LEN = 2 + 1 + NK  # 259

# RFC 3986 §3.2.2/§3.2.3 authority without userinfo (RFC 9577 §2.1.1.1): reg-name or
# IP-literal, optional port. "@" (userinfo) and "," (the origin_info separator) never appear.
_SERVER_NAME = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+;=%]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")

# AlgorithmIdentifier { id-RSASSA-PSS, RSASSA-PSS-params { hashAlgorithm [0] sha384,
# maskGenAlgorithm [1] mgf1(sha384), saltLength [2] 48 } } in DER (RFC 4055 §3.1; the bytes
# RFC 9578 §6.5 shows with openssl asn1parse). trailerField is its DEFAULT and so absent.
PSS_SHA384_ALGORITHM = bytes.fromhex(
    "303d06092a864886f70d01010a3030a00d300b0609608648016503040202a11a301806092a864886f70d"
    "010108300b0609608648016503040202a203020130")


def _u16(r: Reader, field: str) -> int:
    return r.uint(2, field, order="big")


def _done(r: Reader, what: str) -> None:
    if r.remaining:
        raise FormatError(CHECK, f"{r.remaining} trailing byte(s) after the {what}",
                          field=what, got=r.remaining, want=0)


def _require(value: bytes, size: int, field: str) -> None:
    if len(value) != size:
        raise FormatError(CHECK, "wrong size", field=field, got=len(value), want=size)


def _ascii(raw: bytes, field: str) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise FormatError(CHECK, "not ASCII", field=field, got=raw[:32]) from None


def check_server_name(name: str, field: str) -> None:
    """A server name: hostname or IP literal, optional port, no userinfo (RFC 9577 §2.1.1.1)."""
    if not _SERVER_NAME.fullmatch(name):
        raise FormatError(CHECK, "not a server name (host[:port], no userinfo)", field=field,
                          got=name)


# --------------------------------------------------------------------------------------------
# TokenChallenge (RFC 9577 §2.1.1)


@dataclass(frozen=True)
class TokenChallenge:
    """The origin's challenge. ``origin_info`` is the raw comma-separated field ("" = any)."""

    token_type: int
    issuer_name: str
    redemption_context: bytes = b""
    origin_info: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.token_type <= 0xFFFF:
            raise FormatError(CHECK, "token_type out of range", field="token_type",
                              got=self.token_type)
        if not 1 <= len(self.issuer_name) <= 0xFFFF:
            raise FormatError(CHECK, "issuer_name must be 1..65535 bytes",
                              field="issuer_name", got=len(self.issuer_name))
        check_server_name(self.issuer_name, "issuer_name")
        if len(self.redemption_context) not in REDEMPTION_CONTEXT_LENS:
            raise FormatError(CHECK, "redemption_context must be 0 or 32 bytes",
                              field="redemption_context", got=len(self.redemption_context),
                              want="0 or 32")
        if len(self.origin_info) > 0xFFFF:
            raise FormatError(CHECK, "origin_info over 65535 bytes", field="origin_info",
                              got=len(self.origin_info))
        for name in self.origin_names:
            check_server_name(name, "origin_info")

    @property
    def origin_names(self) -> tuple[str, ...]:
        """The origin names of ``origin_info`` (none: a cross-origin challenge)."""
        return tuple(self.origin_info.split(",")) if self.origin_info else ()

    def encode(self) -> bytes:
        issuer = self.issuer_name.encode("ascii")
        origin = self.origin_info.encode("ascii")
        return (self.token_type.to_bytes(2, "big") + len(issuer).to_bytes(2, "big") + issuer
                + bytes([len(self.redemption_context)]) + self.redemption_context
                + len(origin).to_bytes(2, "big") + origin)

    @classmethod
    def decode(cls, data: bytes) -> TokenChallenge:
        r = Reader(data, check=CHECK)
        token_type = _u16(r, "token_type")
        issuer = r.take(_u16(r, "issuer_name length"), "issuer_name")
        context = r.take(r.uint(1, "redemption_context length"), "redemption_context")
        origin = r.take(_u16(r, "origin_info length"), "origin_info")
        _done(r, "TokenChallenge")
        return cls(token_type=token_type, issuer_name=_ascii(issuer, "issuer_name"),
                   redemption_context=context, origin_info=_ascii(origin, "origin_info"))


# --------------------------------------------------------------------------------------------
# TokenRequest, TokenResponse (RFC 9578 §6.1, §6.2)


@dataclass(frozen=True)
class TokenRequest:
    """Client to issuer: the truncated key id and the blinded message."""

    truncated_token_key_id: int
    blinded_msg: bytes
    token_type: int = TOKEN_TYPE_BLIND_RSA

    def __post_init__(self) -> None:
        if self.token_type != TOKEN_TYPE_BLIND_RSA:
            raise FormatError(CHECK, "unsupported token_type", field="token_type",
                              got=self.token_type, want=TOKEN_TYPE_BLIND_RSA)
        if not 0 <= self.truncated_token_key_id <= 0xFF:
            raise FormatError(CHECK, "truncated_token_key_id is one byte",
                              field="truncated_token_key_id", got=self.truncated_token_key_id)
        _require(self.blinded_msg, NK, "blinded_msg")

    def encode(self) -> bytes:
        return (self.token_type.to_bytes(2, "big") + bytes([self.truncated_token_key_id])
                + self.blinded_msg)

    @classmethod
    def decode(cls, data: bytes) -> TokenRequest:
        _require(data, TOKEN_REQUEST_LEN, "TokenRequest")
        r = Reader(data, check=CHECK)
        token_type = _u16(r, "token_type")
        key_id = r.uint(1, "truncated_token_key_id")
        return cls(token_type=token_type, truncated_token_key_id=key_id,
                   blinded_msg=r.take(NK, "blinded_msg"))


@dataclass(frozen=True)
class TokenResponse:
    """Issuer to client: the blind signature, exactly Nk bytes."""

    blind_sig: bytes

    def __post_init__(self) -> None:
        _require(self.blind_sig, NK, "blind_sig")

    def encode(self) -> bytes:
        return self.blind_sig

    @classmethod
    def decode(cls, data: bytes) -> TokenResponse:
        _require(data, NK, "TokenResponse")
        return cls(blind_sig=bytes(data))


# --------------------------------------------------------------------------------------------
# Token (RFC 9577 §2.2.1)


@dataclass(frozen=True)
class Token:
    """The redeemed token; ``authenticator_input`` is what the authenticator signs (§2.2.2)."""

    nonce: bytes
    challenge_digest: bytes
    token_key_id: bytes
    authenticator: bytes
    token_type: int = TOKEN_TYPE_BLIND_RSA

    def __post_init__(self) -> None:
        if self.token_type != TOKEN_TYPE_BLIND_RSA:
            raise FormatError(CHECK, "unsupported token_type", field="token_type",
                              got=self.token_type, want=TOKEN_TYPE_BLIND_RSA)
        _require(self.nonce, NONCE_LEN, "nonce")
        _require(self.challenge_digest, DIGEST_LEN, "challenge_digest")
        _require(self.token_key_id, NID, "token_key_id")
        _require(self.authenticator, NK, "authenticator")

    @property
    def authenticator_input(self) -> bytes:
        """AuthenticatorInput: token_type ‖ nonce ‖ challenge_digest ‖ token_key_id."""
        return (self.token_type.to_bytes(2, "big") + self.nonce + self.challenge_digest
                + self.token_key_id)

    def encode(self) -> bytes:
        return self.authenticator_input + self.authenticator

    @classmethod
    def decode(cls, data: bytes) -> Token:
        if len(data) >= 2 and int.from_bytes(data[:2], "big") != TOKEN_TYPE_BLIND_RSA:
            raise FormatError(CHECK, "unsupported token_type", field="token_type",
                              got=int.from_bytes(data[:2], "big"), want=TOKEN_TYPE_BLIND_RSA)
        _require(data, TOKEN_LEN, "Token")
        r = Reader(data, check=CHECK)
        token_type = _u16(r, "token_type")
        return cls(token_type=token_type, nonce=r.take(NONCE_LEN, "nonce"),
                   challenge_digest=r.take(DIGEST_LEN, "challenge_digest"),
                   token_key_id=r.take(NID, "token_key_id"),
                   authenticator=r.take(NK, "authenticator"))


# --------------------------------------------------------------------------------------------
# Token key: RSASSA-PSS SubjectPublicKeyInfo (RFC 9578 §6.5)


def encode_token_key(n: int, e: int) -> bytes:
    """The issuer's public key as RFC 9578 §6.5 wants it hashed and published."""
    rsa_public_key = encode_tlv(TAG_SEQUENCE, encode_tlv(TAG_INTEGER, encode_uint(n))
                                + encode_tlv(TAG_INTEGER, encode_uint(e)))
    bit_string = encode_tlv(0x03, b"\x00" + rsa_public_key)
    return encode_tlv(TAG_SEQUENCE, PSS_SHA384_ALGORITHM + bit_string)


def decode_token_key(spki: bytes) -> tuple[int, int]:
    """``(n, e)`` of an RSASSA-PSS SPKI for token type 0x0002; anything else is refused.

    Exactly the SHA-384 / MGF1-SHA-384 / salt 48 parameters (the salt length must match the
    hash, §6.5), minimal DER throughout, a 2048-bit modulus, an odd public exponent > 1.
    """
    tag, body = read_single(spki, check=CHECK, field="token-key")
    if tag != TAG_SEQUENCE:
        raise FormatError(CHECK, "SubjectPublicKeyInfo is not a SEQUENCE", field="token-key",
                          got=tag)
    alg_tag, _, pos = read_tlv(body, 0, check=CHECK, field="algorithm")
    if alg_tag != TAG_SEQUENCE or body[:pos] != PSS_SHA384_ALGORITHM:
        raise FormatError(CHECK, "algorithm is not id-RSASSA-PSS with SHA-384, MGF1-SHA-384 "
                          "and salt length 48", field="algorithm", got=body[:pos],
                          want=PSS_SHA384_ALGORITHM)
    bits_tag, bits, end = read_tlv(body, pos, check=CHECK, field="subjectPublicKey")
    if bits_tag != 0x03 or end != len(body):
        raise FormatError(CHECK, "subjectPublicKey is not the last element, a BIT STRING",
                          field="subjectPublicKey", got=bits_tag)
    if not bits or bits[0] != 0:
        raise FormatError(CHECK, "subjectPublicKey has unused bits", field="subjectPublicKey")
    seq_tag, seq = read_single(bits[1:], check=CHECK, field="RSAPublicKey")
    if seq_tag != TAG_SEQUENCE:
        raise FormatError(CHECK, "RSAPublicKey is not a SEQUENCE", field="RSAPublicKey")
    n_tag, n_raw, pos = read_tlv(seq, 0, check=CHECK, field="modulus")
    e_tag, e_raw, end = read_tlv(seq, pos, check=CHECK, field="publicExponent")
    if n_tag != TAG_INTEGER or e_tag != TAG_INTEGER or end != len(seq):
        raise FormatError(CHECK, "RSAPublicKey is not SEQUENCE { INTEGER, INTEGER }",
                          field="RSAPublicKey")
    n = decode_uint(n_raw, check=CHECK, field="modulus")
    e = decode_uint(e_raw, check=CHECK, field="publicExponent")
    if n.bit_length() != MODULUS_BITS or n % 2 == 0:
        raise FormatError(CHECK, "modulus is not an odd 2048-bit integer (token type 0x0002)",
                          field="modulus", got=n.bit_length(), want=MODULUS_BITS)
    if e < 3 or e % 2 == 0 or e >= n:
        raise FormatError(CHECK, "publicExponent must be odd, > 1 and < n",
                          field="publicExponent", got=e)
    return n, e
