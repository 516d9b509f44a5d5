"""EAR attestation results (verifier/ear.py, ear_token.py, cli_ear.py; docs/ear.md): the appraisal
of a real pipeline Result per submodule, signing, a relying party decoding ours with pyjwt
alone, and the forgeries `verifier ear verify` refuses (each built here, at run time)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.support.pipeline_support import World, make_world, policy_text
from transparency_log.common.errors import (
    FetchError,
    FormatError,
    PolicyError,
    PolicyFailure,
    SignatureError,
    VerificationError,
)
from verifier.cli import main
from verifier.ear import PROFILE, appraise, tier_of
from verifier.ear_token import EarSigner, build_claims, load_verification_key, verify_ear
from verifier.policy import parse_policy
from verifier.result import Result
from verifier.transcript import Transcript

AT = "2026-11-23T12:00:00Z"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("ear"), gpus=2)


@pytest.fixture(scope="module", params=["EdDSA", "ES256"])
def signer(request: pytest.FixtureRequest) -> EarSigner:
    key = (ed25519.Ed25519PrivateKey.generate() if request.param == "EdDSA"
           else ec.generate_private_key(ec.SECP256R1()))
    return EarSigner(key, "attestlog test")


def _statuses(result: Result) -> dict[str, str]:
    from verifier.ear import TIER_NAMES

    return {name: TIER_NAMES[a.status] for name, a in appraise(result).items()}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --------------------------------------------------------------------------------------------
# Appraisal


def test_tiers_are_the_ar4si_bands() -> None:
    assert [tier_of(v) for v in (-1, 0, 1, 2, 31, 32, 95, 96, 127, -2, -33, -97)] == \
        [0, 0, 0, 2, 2, 32, 32, 96, 96, 2, 32, 96]
    with pytest.raises(FormatError):
        tier_of(128)


def test_accepted_simulated_node(world: World) -> None:
    """Simulated hardware is accepted only under the unsafe switch: its CPU and GPUs are at
    most warning (hardware = 32), the release affirming."""
    result = world.verify()
    assert result.accepted
    subs = appraise(result)
    assert set(subs) == {"sev-snp", "nvidia-gpu[0]", "nvidia-gpu[1]", "release"}
    assert _statuses(result) == {"sev-snp": "warning", "nvidia-gpu[0]": "warning",
                                 "nvidia-gpu[1]": "warning", "release": "affirming"}
    assert subs["sev-snp"].vector == {"instance-identity": 2, "hardware": 32,
                                      "configuration": 2, "runtime-opaque": 2,
                                      "executables": 2}
    assert subs["release"].vector["sourced-data"] == 2


def _result(steps: list[tuple[str, str, str]], error=None, world: World | None = None,
            ) -> Result:
    t = Transcript()
    for check, res, subject in steps:
        {"pass": t.passed, "fail": t.failed, "waived": t.waived}[res](check)
        t.steps[-1].subject = subject
    t.error = error
    r = Result(t, datetime(2026, 11, 23, tzinfo=UTC), b"\x01" * 32, b"\x02" * 32)
    if world is not None:
        import dataclasses

        r.bundle = dataclasses.replace(world.fx.decoded, simulated=False)
    return r


ALL_PASS = [("bundle.format", "pass", ""), ("binding.nonce", "pass", ""),
            ("policy.simulated", "pass", ""),
            ("snp.report.signature", "pass", "sev-snp"), ("snp.crl", "pass", "sev-snp"),
            ("gpu.report.signature", "pass", "nvidia-gpu[0]"),
            ("gpu.ocsp", "pass", "nvidia-gpu[0]"),
            ("gpu.report.signature", "pass", "nvidia-gpu[1]"),
            ("gpu.ocsp", "pass", "nvidia-gpu[1]"),
            ("binding.report_data", "pass", ""), ("binding.gpu_nonce", "pass", ""),
            ("log.inclusion", "pass", ""), ("release.revoked", "pass", ""),
            ("release.measurement", "pass", ""), ("policy.evidence", "pass", ""),
            ("snp.policy", "pass", ""), ("gpu.policy", "pass", "")]


def test_real_hardware_all_pass_is_affirming(world: World) -> None:
    statuses = _statuses(_result(ALL_PASS, world=world))
    assert set(statuses.values()) == {"affirming"}


def test_a_waived_check_gives_at_most_warning(world: World) -> None:
    steps = [s if s[0] != "snp.crl" else ("snp.crl", "waived", "sev-snp") for s in ALL_PASS]
    statuses = _statuses(_result(steps, world=world))
    assert statuses["sev-snp"] == "warning"
    assert statuses["nvidia-gpu[0]"] == "affirming"


def test_unknown_check_id_is_never_affirming(world: World) -> None:
    statuses = _statuses(_result([*ALL_PASS, ("node.brand_new", "pass", "")], world=world))
    assert set(statuses.values()) == {"warning"}


def test_one_gpu_failing_policy_contraindicates_that_gpu_only(world: World) -> None:
    """A collected policy failure naming GPU-1 by field goes to nvidia-gpu[1]."""
    steps = [s if s[0] != "gpu.policy" else ("gpu.policy", "fail", "") for s in ALL_PASS]
    err = PolicyError([PolicyFailure("gpu.policy.devtools", "GPU-1.devtools", "on", "off")])
    statuses = _statuses(_result(steps, err, world))
    assert statuses["nvidia-gpu[1]"] == "contraindicated"
    assert statuses["nvidia-gpu[0]"] == "affirming"
    assert statuses["sev-snp"] == "affirming"


def test_measurement_mismatch_of_the_cpu(world: World) -> None:
    """The real pipeline: a release whose SNP measurement is not the node's."""
    result = world.verify(policy=world.policy)  # baseline accepted
    assert result.accepted
    steps = [s if s[0] != "release.measurement" else ("release.measurement", "fail", "")
             for s in ALL_PASS]
    err = PolicyError([PolicyFailure("release.measurement", "MEASUREMENT", b"\x00", b"\x01")])
    statuses = _statuses(_result(steps, err, world))
    assert statuses["sev-snp"] == "contraindicated"
    assert statuses["nvidia-gpu[0]"] == "affirming"


def test_early_stop_asserts_nothing_positive(world: World) -> None:
    """A replayed bundle (another nonce) stops the real pipeline at binding.nonce: every
    submodule is contraindicated, and no affirming claim is made anywhere."""
    result = world.verify(nonce=b"\x07" * 32)
    assert result.error is not None and result.error.check == "binding.nonce"
    subs = appraise(result)
    assert {a.status for a in subs.values()} == {96}
    assert all(tier_of(v) != 2 for a in subs.values() for v in a.vector.values())


def test_authenticity_failure_of_one_gpu_leaves_others_none(world: World) -> None:
    steps = [*ALL_PASS[:5], ("gpu.report.signature", "fail", "nvidia-gpu[0]")]
    err = SignatureError("gpu.report.signature", "bad")
    statuses = _statuses(_result(steps, err, world))
    assert statuses["nvidia-gpu[0]"] == "contraindicated"
    assert statuses["sev-snp"] == "none"  # its binding and policy never ran
    assert statuses["release"] == "none"


def test_unmapped_refusal_contraindicates_everything(world: World) -> None:
    """A refusal whose check no step recorded (fail closed)."""
    statuses = _statuses(_result(ALL_PASS[:3], VerificationError("mystery.check", "no"),
                                 world))
    assert set(statuses.values()) == {"contraindicated"}


def test_unreachable_collateral_is_a_verifier_malfunction(world: World) -> None:
    steps = [*ALL_PASS[:3], ("snp.vcek.collateral", "fail", "sev-snp")]
    subs = appraise(_result(steps, FetchError("snp.vcek.collateral", "KDS down"), world))
    assert subs["sev-snp"].status == 0
    assert set(subs["sev-snp"].vector.values()) == {-1}
    assert all(a.status == 0 for a in subs.values())


def test_policy_refusal_of_the_real_pipeline(world: World, tmp_path: Path) -> None:
    """A policy requiring a TDX CPU refuses the SNP node: policy.evidence fails for all."""
    text = policy_text(world.fx, replace=('cpu = ["sev-snp", "tdx"]', 'cpu = ["tdx"]'))
    result = world.verify(policy=parse_policy(text.encode()))
    assert not result.accepted
    assert set(_statuses(result).values()) == {"contraindicated"}


# --------------------------------------------------------------------------------------------
# Signing, and what a relying party sees


def test_relying_party_decodes_with_pyjwt_alone(world: World, signer: EarSigner) -> None:
    result = world.verify()
    token = signer.sign(result, world.fx.nonce)
    pub = serialization.load_pem_public_key(signer.public_pem())
    claims = jwt.decode(token, pub, algorithms=[signer.alg])
    assert claims["eat_profile"] == PROFILE
    assert claims["eat_nonce"] == _b64(world.fx.nonce)
    assert claims["iat"] == int(result.at.timestamp())
    assert claims["ear.verifier-id"] == {"build": "attestlog test", "developer": "attestlog"}
    assert claims["submods"]["release"]["ear.status"] == "affirming"
    assert claims["submods"]["sev-snp"]["ear.appraisal-policy-id"] == \
        "sha-256:" + result.policy_digest.hex()
    assert claims["ear.attestlog.verdict"] == "accepted"
    import hashlib

    from attest.release import canonical_json

    assert claims["ear.attestlog.transcript-sha256"] == \
        hashlib.sha256(canonical_json.encode(result.to_json())).hexdigest()
    ok = verify_ear(token, pub, expected_nonce=world.fx.nonce)
    assert ok.statuses["release"] == "affirming"


def _forge(header: dict, claims: dict, sig: bytes = b"") -> str:
    enc = [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode())]
    return ".".join([*enc, _b64(sig)])


@pytest.fixture(scope="module")
def token(world: World) -> tuple[str, ed25519.Ed25519PublicKey, dict]:
    s = EarSigner(ed25519.Ed25519PrivateKey.generate(), "attestlog test")
    result = world.verify()
    tok = s.sign(result, world.fx.nonce)
    return tok, s.key.public_key(), build_claims(result, nonce=world.fx.nonce, build=s.build)


def test_alg_none_refused(token) -> None:
    _, pub, claims = token
    unsigned = _forge({"alg": "none", "typ": "JWT"}, claims)  # "header.payload."
    with pytest.raises(FormatError):
        verify_ear(unsigned, pub)
    with pytest.raises(SignatureError) as e:
        verify_ear(unsigned + "AAAA", pub)
    assert e.value.check == "ear.alg"


def test_hs256_with_the_public_key_as_secret_refused(token) -> None:
    _, pub, claims = token
    raw = pub.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    import hmac

    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(raw, f"{head}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(SignatureError) as e:
        verify_ear(f"{head}.{body}.{_b64(mac)}", pub)
    assert e.value.check == "ear.alg"


def test_es256_token_against_an_ed25519_key_refused(world: World, token) -> None:
    _, pub, _ = token
    other = EarSigner(ec.generate_private_key(ec.SECP256R1()), "x").sign(world.verify(),
                                                                         world.fx.nonce)
    with pytest.raises(SignatureError) as e:
        verify_ear(other, pub)
    assert e.value.check == "ear.alg"


def test_wrong_key_refused(token) -> None:
    tok, _, _ = token
    with pytest.raises(SignatureError) as e:
        verify_ear(tok, ed25519.Ed25519PrivateKey.generate().public_key())
    assert e.value.check == "ear.signature"


@pytest.mark.parametrize("tail", ["garbage", ".garbage", "\n", " ", "=="])
def test_trailing_garbage_refused(token, tail: str) -> None:
    tok, pub, _ = token
    verify_ear(tok, pub)
    with pytest.raises((FormatError, SignatureError)):
        verify_ear(tok + tail, pub)


def test_tampered_claim_refused(token) -> None:
    tok, pub, _ = token
    head, body, sig = tok.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["submods"]["sev-snp"]["ear.status"] = "affirming"
    with pytest.raises(SignatureError) as e:
        verify_ear(f"{head}.{_b64(json.dumps(claims).encode())}.{sig}", pub)
    assert e.value.check == "ear.signature"


@pytest.mark.parametrize(("change", "words"), [
    (lambda c: c.update(eat_profile="tag:example.com,2020:other"), "eat_profile"),
    (lambda c: c.pop("ear.verifier-id"), "verifier-id"),
    (lambda c: c.update(eat_nonce="short"), "eat_nonce"),
    (lambda c: c.update(eat_nonce="x" * 89), "eat_nonce"),
    (lambda c: c.update(submods={}), "submods"),
    (lambda c: c.pop("iat"), "iat"),
    (lambda c: c["submods"]["release"].update({"ear.status": "fine"}), "ear.status"),
    (lambda c: c["submods"]["release"].update({"ear.status": "none"}), "below"),
])
def test_bad_claims_signed_by_the_right_key_refused(token, change, words: str) -> None:
    """Validated after the signature, like veraison's Sign: a verifier's bug is caught too."""
    _, _, claims = token
    key = ed25519.Ed25519PrivateKey.generate()
    bad = json.loads(json.dumps(claims))
    change(bad)
    tok = jwt.encode(bad, key, algorithm="EdDSA")
    with pytest.raises(FormatError) as e:
        verify_ear(tok, key.public_key())
    assert e.value.check == "ear.claims" and words in str(e.value)


def test_nonce_mismatch_refused(token) -> None:
    tok, pub, _ = token
    with pytest.raises(VerificationError) as e:
        verify_ear(tok, pub, expected_nonce=b"\x00" * 32)
    assert e.value.check == "ear.nonce"


def test_unsupported_key_type_is_trust_config() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec as _ec

    pem = _ec.generate_private_key(_ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(Exception) as e:
        load_verification_key(pem)
    assert getattr(e.value, "check", "") == "ear.key"


# --------------------------------------------------------------------------------------------
# Command line: verifier bundle --ear, verifier ear verify


def _cli_files(world: World, tmp: Path) -> dict[str, str]:
    paths = world.fx.write()
    p = tmp / "policy.toml"
    p.write_text(policy_text(world.fx))
    runner = CliRunner()
    out = runner.invoke(main, ["ear", "keygen", "--out", str(tmp / "ear.pem")])
    assert out.exit_code == 0, out.output
    return {"bundle": str(paths["bundle"]), "policy": str(p), "trust": str(paths["trust"]),
            "key": str(tmp / "ear.pem"), "pub": str(tmp / "ear.pem.pub")}


def _bundle_cli(world: World, tmp: Path, f: dict[str, str], nonce: str) -> object:
    return CliRunner().invoke(main, [
        "bundle", f["bundle"], "--nonce", nonce, "--policy", f["policy"],
        "--simulated-trust", f["trust"], "--at", AT, "--offline",
        "--state", str(tmp / "state"), "--log-url", str(world.fx.tiles_dir),
        "--ear", str(tmp / "node.ear"), "--ear-key", f["key"]])


def test_cli_bundle_ear_then_ear_verify(world: World, tmp_path: Path) -> None:
    f = _cli_files(world, tmp_path)
    out = _bundle_cli(world, tmp_path, f, world.fx.nonce.hex())
    assert out.exit_code == 0, out.output
    ear_file = str(tmp_path / "node.ear")
    claims = jwt.decode(Path(ear_file).read_text().strip(),
                        serialization.load_pem_public_key(Path(f["pub"]).read_bytes()),
                        algorithms=["EdDSA"])
    assert claims["iat"] == int(datetime(2026, 11, 23, 12, tzinfo=UTC).timestamp())
    v = CliRunner().invoke(main, ["ear", "verify", ear_file, "--key", f["pub"],
                                  "--nonce", world.fx.nonce.hex()])
    # simulated hardware: authentic, but the CPU and GPUs are only "warning": exit 5
    assert v.exit_code == 5, v.output
    assert "release" in v.output and "affirming" in v.output and "warning" in v.output
    bad = CliRunner().invoke(main, ["ear", "verify", ear_file, "--key", f["pub"],
                                    "--nonce", "00" * 32])
    assert bad.exit_code == 2 and "ear.nonce" in bad.output


def test_cli_refused_node_still_gets_a_contraindicated_ear(world: World, tmp_path: Path) -> None:
    f = _cli_files(world, tmp_path)
    out = _bundle_cli(world, tmp_path, f, "00" * 32)
    assert out.exit_code == 2
    pub = serialization.load_pem_public_key(Path(f["pub"]).read_bytes())
    claims = jwt.decode((tmp_path / "node.ear").read_text().strip(), pub,
                        algorithms=["EdDSA"])
    assert {s["ear.status"] for s in claims["submods"].values()} == {"contraindicated"}


def test_cli_ear_needs_both_options_and_a_usable_key(world: World, tmp_path: Path) -> None:
    f = _cli_files(world, tmp_path)
    base = ["bundle", f["bundle"], "--nonce", world.fx.nonce.hex(), "--policy", f["policy"],
            "--offline"]
    assert CliRunner().invoke(main, [*base, "--ear", "x.ear"]).exit_code == 64  # usage
    (tmp_path / "junk.pem").write_text("not a key")
    out = CliRunner().invoke(main, [*base, "--ear", "x.ear", "--ear-key",
                                    str(tmp_path / "junk.pem")])
    assert out.exit_code == 4 and "ear.key" in out.output
    out = CliRunner().invoke(main, ["ear", "verify", f["bundle"], "--key", f["pub"]])
    assert out.exit_code == 2 and "ear.format" in out.output
