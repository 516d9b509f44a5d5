"""RSA blind signatures, RFC 9474 (RSABSSA), the four named variants of §5.

The protocol (§4): the client runs Prepare (§4.1) and Blind (§4.2), the signer BlindSign
(§4.3), the client Finalize (§4.4); anyone verifies the result as an RSASSA-PSS signature
(§4.5, RFC 8017 §8.1.2). Comments quote the RFC's step numbers.

- Key material comes from ``cryptography``; the final PSS check (Finalize step 5, Verify)
  is ``cryptography``'s RSASSA-PSS verification (SHA-384, MGF1-SHA-384, the variant's salt
  length). EMSA-PSS-ENCODE (RFC 8017 §9.1.1) and the modular arithmetic are Python ints,
  because ``cryptography`` exposes neither raw RSA nor PSS encoding with a given salt.
- The signer blinds its own private-key operation (RSA blinding of the base, and a fresh
  multiple of λ added to each CRT exponent), as RFC 9474 §7.1 asks, and checks its result
  before returning it (BlindSign steps 3-4, the fault-attack safeguard). Python ints are
  not constant time: docs/formats.md ("Anonymous tokens", "Side channels") says what this
  protects and what it does not.
- Randomness is a parameter, ``rng(n) -> n bytes`` (a CSPRNG such as ``os.urandom`` in
  production; a scripted source only in tests, to reproduce the RFC's Appendix A vectors).
  No I/O, no clock.

Errors carry the RFC's error names and a check id: ``blindrsa.encode`` (FormatError: message
too long / encoding error), ``blindrsa.input`` (FormatError: a byte string of the wrong size,
an integer out of range), ``blindrsa.blind`` (TrustConfigError: the public key is unusable,
"invalid input" / "blinding error"), ``blindrsa.sign`` (SignatureError: "signing failure",
the signer's self-check), ``blindrsa.signature`` (SignatureError: "invalid signature").
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from math import gcd

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from transparency_log.common.errors import FormatError, SignatureError, TrustConfigError

Rng = Callable[[int], bytes]

CHECK_ENCODE = "blindrsa.encode"
CHECK_INPUT = "blindrsa.input"
CHECK_BLIND = "blindrsa.blind"
CHECK_SIGN = "blindrsa.sign"
CHECK_SIGNATURE = "blindrsa.signature"

H_LEN = 48  # SHA-384 output size (every RFC 9474 §5 variant hashes with SHA-384)
PREFIX_LEN = 32  # PrepareRandomize's msg_prefix (§4.1)
# Rejection sampling draws (random_integer_uniform): each draw succeeds with probability
# > 1/2, so 128 failures in a row mean a broken rng, not bad luck.
MAX_DRAWS = 128
# Bits of the random multiple of λ(n) added to each CRT exponent in BlindSign.
EXPONENT_BLIND_BITS = 64


@dataclass(frozen=True)
class Variant:
    """A named RSABSSA variant (RFC 9474 §5): PSS salt length and message preparation."""

    name: str
    salt_len: int
    randomized: bool


RSABSSA_SHA384_PSS_RANDOMIZED = Variant("RSABSSA-SHA384-PSS-Randomized", 48, True)
RSABSSA_SHA384_PSSZERO_RANDOMIZED = Variant("RSABSSA-SHA384-PSSZERO-Randomized", 0, True)
RSABSSA_SHA384_PSS_DETERMINISTIC = Variant("RSABSSA-SHA384-PSS-Deterministic", 48, False)
RSABSSA_SHA384_PSSZERO_DETERMINISTIC = Variant(
    "RSABSSA-SHA384-PSSZERO-Deterministic", 0, False)
VARIANTS = (RSABSSA_SHA384_PSS_RANDOMIZED, RSABSSA_SHA384_PSSZERO_RANDOMIZED,
            RSABSSA_SHA384_PSS_DETERMINISTIC, RSABSSA_SHA384_PSSZERO_DETERMINISTIC)


# --------------------------------------------------------------------------------------------
# Keys


@dataclass(frozen=True)
class PublicKey:
    """The signer's public key ``pk = (n, e)``."""

    n: int
    e: int

    @property
    def modulus_len(self) -> int:
        """``modulus_len``: the length in bytes of n (RFC 9474 §4.2 parameters)."""
        return (self.n.bit_length() + 7) // 8

    @classmethod
    def from_cryptography(cls, key: rsa.RSAPublicKey) -> PublicKey:
        numbers = key.public_numbers()
        return cls(n=numbers.n, e=numbers.e)

    def to_cryptography(self) -> rsa.RSAPublicKey:
        return rsa.RSAPublicNumbers(self.e, self.n).public_key()


@dataclass(frozen=True, repr=False)
class PrivateKey:
    """The signer's private key in CRT form (RFC 8017 §3.2, second representation).

    ``repr`` shows the public part only, so a private key never lands in a log by accident.
    """

    n: int
    e: int
    p: int
    q: int
    dp: int
    dq: int
    qinv: int

    def __repr__(self) -> str:
        return f"PrivateKey(n=0x{self.n:x}..., e={self.e})"

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(n=self.n, e=self.e)

    @classmethod
    def from_cryptography(cls, key: rsa.RSAPrivateKey) -> PrivateKey:
        numbers = key.private_numbers()
        return cls(n=numbers.public_numbers.n, e=numbers.public_numbers.e, p=numbers.p,
                   q=numbers.q, dp=numbers.dmp1, dq=numbers.dmq1, qinv=numbers.iqmp)


# --------------------------------------------------------------------------------------------
# RFC 8017 primitives (I2OSP/OS2IP, MGF1, EMSA-PSS-ENCODE) and random_integer_uniform


def int_to_bytes(x: int, length: int) -> bytes:
    """I2OSP (RFC 8017 §4.1); the caller guarantees ``0 <= x < 256**length``."""
    return x.to_bytes(length, "big")


def bytes_to_int(data: bytes) -> int:
    """OS2IP (RFC 8017 §4.2)."""
    return int.from_bytes(data, "big")


def mgf1_sha384(seed: bytes, length: int) -> bytes:
    """MGF1 with SHA-384 (RFC 8017 §B.2.1)."""
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha384(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[:length])


def emsa_pss_encode(msg: bytes, em_bits: int, salt: bytes) -> bytes:
    """EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with SHA-384 and MGF1-SHA-384, salt given."""
    em_len = (em_bits + 7) // 8
    s_len = len(salt)
    # 1 (message too long) cannot happen: SHA-384 takes up to 2^125 - 1 bytes.
    # 2
    m_hash = hashlib.sha384(msg).digest()
    # 3
    if em_len < H_LEN + s_len + 2:
        raise FormatError(CHECK_ENCODE, "encoding error: modulus too short for the salt",
                          field="emLen", got=em_len, want=f">= {H_LEN + s_len + 2}")
    # 4-6 (the salt is the caller's, drawn from its rng)
    h = hashlib.sha384(bytes(8) + m_hash + salt).digest()
    # 7-8
    db = bytes(em_len - s_len - H_LEN - 2) + b"\x01" + salt
    # 9-10
    masked = bytearray(a ^ b for a, b in zip(db, mgf1_sha384(h, em_len - H_LEN - 1),
                                             strict=True))
    # 11
    masked[0] &= 0xFF >> (8 * em_len - em_bits)
    # 12-13
    return bytes(masked) + h + b"\xbc"


def random_integer_uniform(lo: int, hi: int, rng: Rng) -> int:
    """A uniform integer in ``[lo, hi)`` by rejection sampling (RFC 9474 §3 notation)."""
    span_bits = (hi - 1).bit_length()
    size = (span_bits + 7) // 8
    for _ in range(MAX_DRAWS):
        raw = rng(size)
        if len(raw) != size:
            raise FormatError(CHECK_INPUT, "rng returned the wrong number of bytes",
                              field="rng", got=len(raw), want=size)
        x = bytes_to_int(raw) & ((1 << span_bits) - 1)
        if lo <= x < hi:
            return x
    raise TrustConfigError(CHECK_BLIND, f"rng gave no value in range in {MAX_DRAWS} draws",
                           field="rng")


def _rng_bytes(rng: Rng, n: int, field: str) -> bytes:
    out = rng(n)
    if len(out) != n:
        raise FormatError(CHECK_INPUT, "rng returned the wrong number of bytes", field=field,
                          got=len(out), want=n)
    return out


def _require_len(data: bytes, want: int, field: str) -> None:
    if len(data) != want:
        raise FormatError(CHECK_INPUT, "unexpected input size", field=field,
                          got=len(data), want=want)


# --------------------------------------------------------------------------------------------
# The protocol (RFC 9474 §4)


def prepare(msg: bytes, variant: Variant, rng: Rng) -> bytes:
    """Prepare (§4.1): PrepareIdentity, or PrepareRandomize for the randomized variants."""
    if not variant.randomized:
        return bytes(msg)
    # PrepareRandomize 1-3
    return _rng_bytes(rng, PREFIX_LEN, "msg_prefix") + msg


def application_message(input_msg: bytes, variant: Variant) -> bytes:
    """The message an application consumes from a prepared one (§4.5)."""
    if not variant.randomized:
        return input_msg
    if len(input_msg) < PREFIX_LEN:
        raise FormatError(CHECK_INPUT, "prepared message shorter than its prefix",
                          field="input_msg", got=len(input_msg), want=f">= {PREFIX_LEN}")
    return input_msg[PREFIX_LEN:]


@dataclass(frozen=True, repr=False)
class Blinded:
    """Blind's output: ``blinded_msg`` for the signer, ``inv`` kept by the client."""

    blinded_msg: bytes
    inv: int

    def __repr__(self) -> str:
        return f"Blinded(blinded_msg={self.blinded_msg[:8].hex()}..., inv=<secret>)"


def blind(pk: PublicKey, msg: bytes, variant: Variant, rng: Rng) -> Blinded:
    """Blind (§4.2). ``msg`` is the prepared message; the rng gives the salt, then r."""
    n = pk.n
    # 1-2
    salt = _rng_bytes(rng, variant.salt_len, "salt")
    encoded_msg = emsa_pss_encode(msg, n.bit_length() - 1, salt)
    # 3
    m = bytes_to_int(encoded_msg)
    # 4-5
    if gcd(m, n) != 1:
        raise TrustConfigError(CHECK_BLIND, "invalid input: message not co-prime with n",
                               field="n")
    # 6
    r = random_integer_uniform(1, n, rng)
    # 7-8
    try:
        inv = pow(r, -1, n)
    except ValueError:
        raise TrustConfigError(CHECK_BLIND, "blinding error: r has no inverse mod n",
                               field="n") from None
    # 9
    x = pow(r, pk.e, n)
    # 10
    z = (m * x) % n
    # 11-12
    return Blinded(blinded_msg=int_to_bytes(z, pk.modulus_len), inv=inv)


def _rsasp1_blinded(sk: PrivateKey, m: int, rng: Rng) -> int:
    """RSASP1 (RFC 8017 §5.2.1, CRT form) with base and exponent blinding (RFC 9474 §7.1).

    The base: s = (m · b^e)^d · b^-1 mod n for a fresh uniform b, so the value exponentiated
    is unknown to, and not chosen by, whoever sent m. The exponents: dp + kp·(p-1) and
    dq + kq·(q-1) for fresh 64-bit kp, kq (the same residues, a different bit pattern each
    call).
    """
    n = sk.n
    b = random_integer_uniform(1, n, rng)
    b_inv = pow(b, -1, n)
    mb = (m * pow(b, sk.e, n)) % n
    kp = bytes_to_int(_rng_bytes(rng, EXPONENT_BLIND_BITS // 8, "exponent blind"))
    kq = bytes_to_int(_rng_bytes(rng, EXPONENT_BLIND_BITS // 8, "exponent blind"))
    s1 = pow(mb % sk.p, sk.dp + kp * (sk.p - 1), sk.p)
    s2 = pow(mb % sk.q, sk.dq + kq * (sk.q - 1), sk.q)
    h = (sk.qinv * (s1 - s2)) % sk.p
    sb = s2 + sk.q * h
    return (sb * b_inv) % n


def blind_sign(sk: PrivateKey, blinded_msg: bytes, rng: Rng) -> bytes:
    """BlindSign (§4.3), blinded against timing, checked against faults before it returns.

    The rng is the signer's own (for its blinding); the result does not depend on it.
    """
    n = sk.n
    modulus_len = sk.public_key.modulus_len
    _require_len(blinded_msg, modulus_len, "blinded_msg")
    # 1
    m = bytes_to_int(blinded_msg)
    if m >= n:  # RSASP1 step 1: "message representative out of range"
        raise FormatError(CHECK_INPUT, "message representative out of range",
                          field="blinded_msg", want="< n")
    # 2
    s = _rsasp1_blinded(sk, m, rng)
    # 3-4
    if pow(s, sk.e, n) != m:
        raise SignatureError(CHECK_SIGN, "signing failure: the private-key operation gave a "
                             "result that does not verify (fault); nothing returned",
                             field="blind_sig")
    # 5-6
    return int_to_bytes(s, modulus_len)


def verify(pk: PublicKey, msg: bytes, sig: bytes, variant: Variant) -> None:
    """RSASSA-PSS-VERIFY (RFC 8017 §8.1.2) of ``sig`` over the prepared message (§4.5).

    Raises SignatureError (``blindrsa.signature``, "invalid signature"); returns nothing.
    """
    _require_len(sig, pk.modulus_len, "sig")
    try:
        pk.to_cryptography().verify(
            sig, msg,
            padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=variant.salt_len),
            hashes.SHA384())
    except InvalidSignature:
        raise SignatureError(CHECK_SIGNATURE, f"invalid signature ({variant.name})",
                             field="sig", got=sig[:16]) from None


def finalize(pk: PublicKey, msg: bytes, blind_sig: bytes, inv: int, variant: Variant) -> bytes:
    """Finalize (§4.4): unblind the signer's answer and check it before returning it."""
    n = pk.n
    modulus_len = pk.modulus_len
    # 1
    _require_len(blind_sig, modulus_len, "blind_sig")
    # 2
    z = bytes_to_int(blind_sig)
    if z >= n:
        raise FormatError(CHECK_INPUT, "blind_sig out of range", field="blind_sig",
                          want="< n")
    # 3-4
    sig = int_to_bytes((z * inv) % n, modulus_len)
    # 5-6
    verify(pk, msg, sig, variant)
    return sig
