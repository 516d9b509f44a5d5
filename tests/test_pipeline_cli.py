"""`verifier bundle` and `verifier node` (verifier/cli_verify.py): the table, the JSON
transcript and the exit codes of DESIGN.md (0 accepted, 2 verification, 3 fetch, 4 trust
config, 5 policy), against simulated nodes; `verifier node` over HTTPS on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from pipeline_support import NodeApp, World, https_node, make_world, policy_text, spki

from verifier.cli import main

AT = "2026-11-23T12:00:00Z"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("cli"), gpus=1, sync_mirror=False)


def files(world: World, tmp: Path, policy: str | None = None) -> dict[str, str]:
    paths = world.fx.write()
    p = tmp / "policy.toml"
    p.write_text(policy if policy is not None else policy_text(world.fx))
    return {"bundle": str(paths["bundle"]), "policy": str(p), "trust": str(paths["trust"])}


def run_bundle(world: World, tmp: Path, *extra: str, policy: str | None = None,
               nonce: str | None = None):
    f = files(world, tmp, policy)
    args = ["bundle", f["bundle"], "--nonce", nonce or world.fx.nonce.hex(),
            "--policy", f["policy"], "--simulated-trust", f["trust"], "--at", AT, "--offline",
            "--state", str(tmp / "state"), "--log-url", str(world.fx.tiles_dir), *extra]
    return CliRunner().invoke(main, args)


def test_bundle_accepted_table(world: World, tmp_path: Path) -> None:
    out = run_bundle(world, tmp_path)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert any(line.split()[:2] == ["snp.report.signature", "pass"] for line in lines)
    assert any(line.split()[:2] == ["log.witness.quorum", "pass"] for line in lines)
    assert "SIMULATED HARDWARE" in out.output
    assert lines[-1].startswith("verdict: ACCEPTED")


def test_bundle_json_transcript(world: World, tmp_path: Path) -> None:
    out = run_bundle(world, tmp_path, "--json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["verdict"] == "accepted"
    assert doc["at"] == AT
    assert {"log.consistency", "release.revoked", "binding.gpu_nonce"} <= \
        {s["check"] for s in doc["steps"]}


def test_bundle_refused_verification_exit_2(world: World, tmp_path: Path) -> None:
    out = run_bundle(world, tmp_path, "--json", nonce="00" * 32)
    assert out.exit_code == 2
    doc = json.loads(out.stdout)
    assert doc["verdict"] == "refused"
    assert doc["error"]["check"] == "binding.nonce"
    assert doc["error"]["got"] == world.fx.nonce.hex()


def test_bundle_refused_policy_exit_5(world: World, tmp_path: Path) -> None:
    strict = policy_text(world.fx, replace=('driver_versions = ["550.90.07"]',
                                            'driver_versions = ["999.0"]'))
    out = run_bundle(world, tmp_path, policy=strict)
    assert out.exit_code == 5, out.output
    assert "verdict: REFUSED  by gpu.policy.driver" in out.stdout
    assert "gpu.policy.driver: GPU-0.DRIVER_VERSION is 550.90.07, want 999.0" in out.stderr


def test_unknown_policy_key_exit_4(world: World, tmp_path: Path) -> None:
    out = run_bundle(world, tmp_path, policy=policy_text(world.fx, extra="colour = 1\n"))
    assert out.exit_code == 4
    assert "policy.schema" in out.output and "colour" in out.output


def test_bundle_needs_a_nonce_and_a_policy(world: World, tmp_path: Path) -> None:
    f = files(world, tmp_path)
    assert CliRunner().invoke(main, ["bundle", f["bundle"], "--policy", f["policy"]]
                              ).exit_code == 64  # usage error: --nonce is required
    out = CliRunner().invoke(main, ["bundle", f["bundle"], "--nonce", "00" * 32])
    assert out.exit_code == 4 and "--policy" in out.output


def test_simulated_bundle_refused_without_the_unsafe_switch(world: World, tmp_path: Path) -> None:
    strict = policy_text(world.fx, replace=("unsafe_allow_simulated_hardware = true",
                                            "unsafe_allow_simulated_hardware = false"))
    out = run_bundle(world, tmp_path, policy=strict)
    assert out.exit_code == 5 and "policy.simulated" in out.output


def test_node_command_over_https(world: World, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    app = NodeApp(world.fx, spki(key))
    f = files(world, tmp_path)
    with https_node(app, key, tmp_path) as url:
        out = CliRunner().invoke(main, [
            "node", url, "--policy", f["policy"], "--simulated-trust", f["trust"], "--at", AT,
            "--offline", "--state", str(tmp_path / "state"), "--log-url",
            str(world.fx.tiles_dir), "--save", str(tmp_path / "saved.cbor")])
    assert out.exit_code == 0, out.output
    assert any(line.split()[:2] == ["tls.node_key", "pass"] for line in out.output.splitlines())
    assert (tmp_path / "saved.cbor").stat().st_size > 1000


def test_node_command_refuses_another_tls_key(world: World, tmp_path: Path) -> None:
    """A relay: it serves a genuine bundle bound to key A over a TLS key B."""
    key_a, key_b = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    f = files(world, tmp_path)
    with https_node(NodeApp(world.fx, spki(key_a)), key_b, tmp_path) as url:
        out = CliRunner().invoke(main, [
            "node", url, "--policy", f["policy"], "--simulated-trust", f["trust"], "--at", AT,
            "--offline", "--state", str(tmp_path / "state"), "--log-url",
            str(world.fx.tiles_dir), "--json"])
    assert out.exit_code == 2, out.output
    assert json.loads(out.stdout)["error"]["check"] == "tls.node_key"


def test_node_unreachable_exit_3(world: World, tmp_path: Path) -> None:
    from tlog_net import free_port

    f = files(world, tmp_path)
    out = CliRunner().invoke(main, ["node", f"https://127.0.0.1:{free_port()}", "--policy",
                                    f["policy"], "--timeout", "2"])
    assert out.exit_code == 3, out.output
    assert "node.fetch" in out.output


def test_node_url_must_be_https(world: World, tmp_path: Path) -> None:
    f = files(world, tmp_path)
    out = CliRunner().invoke(main, ["node", "http://127.0.0.1:1", "--policy", f["policy"]])
    assert out.exit_code == 4 and "tls.node_key" in out.output


def test_node_save_keeps_the_nonce_for_verifier_bundle(world: World, tmp_path: Path) -> None:
    """Issue 12: `verifier node --save FILE` writes FILE.nonce, and `verifier bundle FILE`
    re-checks the bundle against it without --nonce; a sidecar holding another request's nonce
    is a refusal by binding.nonce, a malformed one a one-line bundle.saved_nonce error."""
    key = ec.generate_private_key(ec.SECP256R1())
    f = files(world, tmp_path)
    saved = tmp_path / "saved.cbor"
    with https_node(NodeApp(world.fx, spki(key)), key, tmp_path) as url:
        out = CliRunner().invoke(main, [
            "node", url, "--nonce", world.fx.nonce.hex(), "--policy", f["policy"],
            "--simulated-trust", f["trust"], "--at", AT, "--offline", "--state",
            str(tmp_path / "state"), "--log-url", str(world.fx.tiles_dir), "--save", str(saved)])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "saved.cbor.nonce").read_text() == world.fx.nonce.hex() + "\n"
    common = ["--policy", f["policy"], "--simulated-trust", f["trust"], "--at", AT,
              "--offline", "--state", str(tmp_path / "state"), "--log-url",
              str(world.fx.tiles_dir)]
    again = CliRunner().invoke(main, ["bundle", str(saved), *common])
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1].startswith("verdict: ACCEPTED")
    # the attack: the bundle is kept beside the nonce of another request
    (tmp_path / "saved.cbor.nonce").write_text("11" * 32 + "\n")
    other = CliRunner().invoke(main, ["bundle", str(saved), *common])
    assert other.exit_code == 2 and "REFUSED  by binding.nonce" in other.stdout
    # --nonce still wins over the sidecar, for a bare bundle as before
    explicit = CliRunner().invoke(main, ["bundle", str(saved), "--nonce",
                                         world.fx.nonce.hex(), *common])
    assert explicit.exit_code == 0, explicit.output
    (tmp_path / "saved.cbor.nonce").write_text("not hex\n")
    bad = CliRunner().invoke(main, ["bundle", str(saved), *common])
    assert bad.exit_code == 2 and "bundle.saved_nonce" in bad.stderr
    assert "saved.cbor.nonce" in bad.stderr and "Traceback" not in bad.output
    (tmp_path / "saved.cbor.nonce").unlink()
    bare = CliRunner().invoke(main, ["bundle", str(saved), *common])
    assert bare.exit_code == 64 and "--nonce" in bare.output


def test_no_state_names_the_missing_mirror_not_a_revocation(world: World,
                                                            tmp_path: Path) -> None:
    """Issue 12: with a mirror policy and no --state/--log-url every node was "REFUSED by
    release.revoked". Still refused (fail closed), by release.revocations.unavailable, and the
    message says what to pass (the policy waives log.consistency, as the example does)."""
    f = files(world, tmp_path, policy_text(world.fx, drop_waiver=False))
    out = CliRunner().invoke(main, [
        "bundle", f["bundle"], "--nonce", world.fx.nonce.hex(), "--policy", f["policy"],
        "--simulated-trust", f["trust"], "--at", AT, "--offline"])
    assert out.exit_code == 5, out.output
    assert "verdict: REFUSED  by release.revocations.unavailable" in out.stdout
    assert "--state DIR and --log-url URL" in out.stderr
    assert "release.revoked" not in out.output
