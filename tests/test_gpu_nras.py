"""NRAS tokens: signed by a test key with the claim shapes of the nvtrust SDK vectors."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import jwt
import pytest

from attest.simulate.gpu import make_chain
from attest.simulate.gpu_nras import good_gpu_claims, jwks_for, nras_tokens
from tests.support.vectors import load_json_vector
from transparency_log.common.errors import (
    ChainError,
    FormatError,
    PolicyError,
    SignatureError,
    VerificationError,
)
from verifier.gpu.nras import NRAS_ISSUER, parse_nras_answer, verify_nras, verify_token
from verifier.x509chain import fingerprint, pinned_root

NONCE = bytes.fromhex("931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb")
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
PKI = make_chain(b"nras", ("Fake NRAS signer", "Fake NRAS CA"))
ROOT = pinned_root("fake nras root", PKI.root_pem(), fingerprint(PKI.root).hex())
JWKS = jwks_for(PKI, "kid-1")


def tokens(**kw):
    claims = kw.pop("gpu_claims", {"GPU-0": good_gpu_claims(NONCE)})
    return nras_tokens(PKI, "kid-1", nonce=NONCE, now=NOW, gpu_claims=claims, **kw)


def verify(answer, nonce=NONCE, at=NOW, jwks=JWKS, roots=None, issuers=(NRAS_ISSUER,)):
    overall, detached = parse_nras_answer(json.dumps(answer).encode())
    return verify_nras(overall, detached, jwks=jwks, roots=roots or [ROOT], at=at, nonce=nonce,
                       issuers=issuers)


def test_good_tokens_verify() -> None:
    result = verify(tokens())
    assert result.overall["x-nvidia-overall-att-result"] is True
    assert result.gpus["GPU-0"]["x-nvidia-gpu-driver-version"] == "550.90.07"


def sign(claims, key=None, kid="kid-1", alg="ES384"):
    return jwt.encode(claims, key or PKI.leaf_key, algorithm=alg, headers={"kid": kid})


@pytest.mark.parametrize("name", ["detached_claims_remote.json",
                                  "detached_granular_claims_remote.json",
                                  "detached_claims_local.json",
                                  "detached_granular_claims_local.json"])
def test_sdk_detached_claim_shapes_are_judged(name) -> None:
    claims = load_json_vector("nvidia", "nvtrust-sdk-claims", name)
    at = datetime.fromtimestamp(claims["iat"] + 10, UTC)
    token = sign(claims)
    got = verify_token(token, jwks=JWKS, roots=[ROOT], at=at, nonce=NONCE,
                       issuers=(claims["iss"],), what="GPU-0")
    assert got == claims
    from verifier.gpu.nras import check_gpu_claims
    from verifier.policy_base import FailureCollector
    collector = FailureCollector()
    check_gpu_claims("GPU-0", got, collector)
    assert collector.failures == []
    bad = {**claims, "measres": "fail", "x-nvidia-gpu-arch-check": False}
    collector = FailureCollector()
    check_gpu_claims("GPU-0", bad, collector)
    assert {f.field for f in collector.failures} == {"GPU-0.measres",
                                                     "GPU-0.x-nvidia-gpu-arch-check"}


@pytest.mark.parametrize("name", ["overall_claims_remote.json",
                                  "overall_granular_claims_remote.json"])
def test_sdk_overall_claim_shapes_verify_with_their_detached_token(name) -> None:
    overall = load_json_vector("nvidia", "nvtrust-sdk-claims", name)
    detached_claims = {**load_json_vector("nvidia", "nvtrust-sdk-claims",
                                          "detached_claims_remote.json"), "iss": NRAS_ISSUER}
    detached = sign(detached_claims)
    overall["submods"]["GPU-0"][1][1] = hashlib.sha256(detached.encode()).hexdigest()
    at = datetime.fromtimestamp(overall["iat"] + 10, UTC)
    result = verify_nras(sign(overall), {"GPU-0": detached}, jwks=JWKS, roots=[ROOT], at=at,
                         nonce=NONCE)
    assert result.gpus["GPU-0"]["x-nvidia-gpu-vbios-version"] == "96.00.9F.00.01"


def test_unsigned_token_is_never_accepted() -> None:
    overall, detached = tokens()[0][1], tokens()[1]
    unsigned = jwt.encode(jwt.decode(overall, options={"verify_signature": False}), None,
                          algorithm="none")
    with pytest.raises(FormatError):
        verify_nras(unsigned, detached, jwks=JWKS, roots=[ROOT], at=NOW, nonce=NONCE)


def test_token_signed_by_another_key_fails_the_signature() -> None:
    other = make_chain(b"other-nras", ("x", "y")).leaf_key
    claims = jwt.decode(tokens()[0][1], options={"verify_signature": False})
    with pytest.raises(SignatureError):
        verify_token(sign(claims, key=other), jwks=JWKS, roots=[ROOT], at=NOW, nonce=NONCE)


def test_jwks_chain_to_a_self_made_root_fails() -> None:
    fake = make_chain(b"nras-fake", ("Fake NRAS signer", "Fake NRAS CA"))
    answer = nras_tokens(fake, "kid-1", nonce=NONCE, now=NOW,
                         gpu_claims={"GPU-0": good_gpu_claims(NONCE)})
    with pytest.raises(ChainError) as err:
        verify(answer, jwks=jwks_for(fake, "kid-1"))
    assert err.value.check == "gpu.nras.chain"


def test_unknown_kid_fails() -> None:
    claims = jwt.decode(tokens()[0][1], options={"verify_signature": False})
    with pytest.raises(VerificationError) as err:
        verify_token(sign(claims, kid="other"), jwks=JWKS, roots=[ROOT], at=NOW, nonce=NONCE)
    assert err.value.check == "gpu.nras.key"


def test_jwk_not_matching_x5c_fails() -> None:
    other = make_chain(b"other-nras2", ("x", "y"))
    jwks = {"keys": [{**jwks_for(other, "kid-1")["keys"][0], "x5c": JWKS["keys"][0]["x5c"]}]}
    with pytest.raises(VerificationError, match="differs"):
        verify(tokens(), jwks=jwks)


def test_wrong_nonce_expired_and_future_tokens_fail_the_claims() -> None:
    with pytest.raises(VerificationError) as err:
        verify(tokens(), nonce=bytes(32))
    assert err.value.check == "gpu.nras.claims" and err.value.field == "overall.eat_nonce"
    with pytest.raises(VerificationError, match="expired"):
        verify(tokens(), at=datetime(2026, 11, 24, tzinfo=UTC))
    with pytest.raises(VerificationError, match="not yet"):
        verify(tokens(), at=datetime(2026, 11, 22, tzinfo=UTC))


def test_wrong_issuer_fails() -> None:
    with pytest.raises(VerificationError) as err:
        verify(tokens(), issuers=("https://elsewhere",))
    assert err.value.field == "overall.iss"


def test_swapped_detached_token_fails_the_submods_digest() -> None:
    answer = tokens(gpu_claims={"GPU-0": good_gpu_claims(NONCE),
                                "GPU-1": good_gpu_claims(NONCE)})
    answer[1]["GPU-0"], answer[1]["GPU-1"] = answer[1]["GPU-1"], answer[1]["GPU-0"]
    with pytest.raises(VerificationError) as err:
        verify(answer)
    assert err.value.check == "gpu.nras.submods"


def test_missing_detached_token_fails() -> None:
    answer = tokens()
    answer[1] = {}
    with pytest.raises(VerificationError, match="differ"):
        verify(answer)


def test_negative_verdicts_are_all_collected() -> None:
    bad = {**good_gpu_claims(NONCE), "measres": "fail", "secboot": False, "dbgstat": "enabled",
           "x-nvidia-gpu-driver-rim-version-match": False}
    with pytest.raises(PolicyError) as err:
        verify(tokens(gpu_claims={"GPU-0": bad}, overall=False))
    fields = [f.field for f in err.value.failures]
    assert fields == ["x-nvidia-overall-att-result", "GPU-0.measres", "GPU-0.secboot",
                      "GPU-0.dbgstat", "GPU-0.x-nvidia-gpu-driver-rim-version-match"]


def test_malformed_answers() -> None:
    for data in (b"{}", b"[1, 2]", b'[["JWS", "x"], {}]', b"not json"):
        with pytest.raises(FormatError):
            parse_nras_answer(data)
