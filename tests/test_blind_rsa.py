"""RSA blind signatures (RFC 9474): Appendix A vectors byte for byte, and the refusals."""

from __future__ import annotations

import dataclasses
import os
from math import gcd

import pytest

from attest.private import blind_rsa as br
from tests.support.privacy_pass_vectors import rfc9474_vectors, scripted
from transparency_log.common.errors import FormatError, SignatureError

VECTORS = rfc9474_vectors()


def _key(v: dict[str, bytes]) -> br.PrivateKey:
    n, e, p, q, d = (int.from_bytes(v[k], "big") for k in ("n", "e", "p", "q", "d"))
    return br.PrivateKey(n=n, e=e, p=p, q=q, dp=d % (p - 1), dq=d % (q - 1),
                         qinv=pow(q, -1, p))


@pytest.mark.parametrize("variant", br.VARIANTS, ids=lambda v: v.name)
def test_rfc9474_appendix_a_vectors(variant: br.Variant) -> None:
    v = VECTORS[variant.name]
    sk = _key(v)
    pk = sk.public_key
    assert sk.p * sk.q == pk.n == int.from_bytes(v["n"], "big")
    inv = int.from_bytes(v["inv"], "big")
    r = pow(inv, -1, pk.n)  # the vector publishes inv = r^-1 mod n; Blind draws r
    prefix = [v["msg_prefix"]] if variant.randomized else []
    rng = scripted(*prefix, v["salt"], r.to_bytes(pk.modulus_len, "big"))

    prepared = br.prepare(v["msg"], variant, rng)
    assert prepared == v["prepared_msg"]
    assert br.emsa_pss_encode(prepared, pk.n.bit_length() - 1, v["salt"]) == v["encoded_msg"]
    blinded = br.blind(pk, prepared, variant, rng)
    assert blinded.blinded_msg == v["blinded_msg"]
    assert blinded.inv == inv
    blind_sig = br.blind_sign(sk, blinded.blinded_msg, os.urandom)
    assert blind_sig == v["blind_sig"]
    sig = br.finalize(pk, prepared, blind_sig, blinded.inv, variant)
    assert sig == v["sig"]
    br.verify(pk, prepared, sig, variant)
    assert br.application_message(prepared, variant) == v["msg"]


def test_blind_sign_result_does_not_depend_on_the_signers_blinding() -> None:
    v = VECTORS["RSABSSA-SHA384-PSS-Deterministic"]
    sk = _key(v)
    first = br.blind_sign(sk, v["blinded_msg"], os.urandom)
    second = br.blind_sign(sk, v["blinded_msg"], os.urandom)
    assert first == second == v["blind_sig"]


def test_blind_sign_refuses_a_faulty_result_that_would_leak_a_factor() -> None:
    """Bellcore: one faulty CRT half gives gcd(s^e - m, n) = a prime factor of n.

    The fault is built at run time (a flipped bit in dq); the attack works on the raw
    operation, and BlindSign's steps 3-4 refuse to return its result.
    """
    v = VECTORS["RSABSSA-SHA384-PSS-Deterministic"]
    sk = _key(v)
    faulty = dataclasses.replace(sk, dq=sk.dq ^ 1)
    m = int.from_bytes(v["blinded_msg"], "big")
    s = br._rsasp1_blinded(faulty, m, os.urandom)
    factor = gcd((pow(s, sk.e, sk.n) - m) % sk.n, sk.n)
    assert factor in (sk.p, sk.q)  # what a returned faulty signature would give away

    with pytest.raises(SignatureError) as err:
        br.blind_sign(faulty, v["blinded_msg"], os.urandom)
    assert err.value.check == "blindrsa.sign"
    assert "signing failure" in str(err.value)


def test_finalize_refuses_a_signature_on_another_message() -> None:
    v = VECTORS["RSABSSA-SHA384-PSS-Deterministic"]
    sk = _key(v)
    pk = sk.public_key
    variant = br.RSABSSA_SHA384_PSS_DETERMINISTIC
    other = br.blind(pk, b"another message", variant, os.urandom)
    # The signer answers the other request; the client unblinds it against its own message.
    wrong = br.blind_sign(sk, other.blinded_msg, os.urandom)
    with pytest.raises(SignatureError) as err:
        br.finalize(pk, v["prepared_msg"], wrong, int.from_bytes(v["inv"], "big"), variant)
    assert err.value.check == "blindrsa.signature"
    assert "invalid signature" in str(err.value)


def test_verify_refuses_a_flipped_bit_and_another_salt_length() -> None:
    v = VECTORS["RSABSSA-SHA384-PSS-Deterministic"]
    pk = _key(v).public_key
    bad = bytearray(v["sig"])
    bad[-1] ^= 1
    with pytest.raises(SignatureError) as err:
        br.verify(pk, v["prepared_msg"], bytes(bad), br.RSABSSA_SHA384_PSS_DETERMINISTIC)
    assert err.value.check == "blindrsa.signature"
    # The same signature does not pass as the PSSZERO variant (salt length 0).
    with pytest.raises(SignatureError):
        br.verify(pk, v["prepared_msg"], v["sig"], br.RSABSSA_SHA384_PSSZERO_DETERMINISTIC)


@pytest.mark.parametrize("size", [0, 511, 513])
def test_sizes_are_exact(size: int) -> None:
    v = VECTORS["RSABSSA-SHA384-PSS-Deterministic"]
    sk = _key(v)
    with pytest.raises(FormatError) as err:
        br.blind_sign(sk, bytes(size), os.urandom)
    assert err.value.check == "blindrsa.input" and err.value.field == "blinded_msg"
    with pytest.raises(FormatError) as err:
        br.finalize(sk.public_key, b"m", bytes(size), 1, br.RSABSSA_SHA384_PSS_DETERMINISTIC)
    assert err.value.check == "blindrsa.input" and err.value.field == "blind_sig"


def test_blind_sign_refuses_a_representative_not_below_n() -> None:
    v = VECTORS["RSABSSA-SHA384-PSS-Deterministic"]
    sk = _key(v)
    with pytest.raises(FormatError) as err:
        br.blind_sign(sk, sk.n.to_bytes(512, "big"), os.urandom)
    assert err.value.check == "blindrsa.input"
    assert "out of range" in str(err.value)


def test_rejection_sampling_redraws_out_of_range_values() -> None:
    n = 1000  # 10 bits: draws are 2 bytes masked to 10 bits
    rng = scripted((1023).to_bytes(2, "big"), (0).to_bytes(2, "big"), (7).to_bytes(2, "big"))
    assert br.random_integer_uniform(1, n, rng) == 7


def test_private_key_repr_hides_the_private_part() -> None:
    sk = _key(VECTORS["RSABSSA-SHA384-PSS-Deterministic"])
    assert f"{sk.p:x}" not in repr(sk) and f"{sk.dq:x}" not in repr(sk)
