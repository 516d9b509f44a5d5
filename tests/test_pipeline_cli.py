"""`verifier bundle` and `verifier node` (verifier/cli_verify.py): the table, the JSON
transcript and the exit codes of DESIGN.md (0 accepted, 2 verification, 3 fetch, 4 trust
config, 5 policy), against simulated nodes; `verifier node` over HTTPS on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.pipeline_support import NodeApp, World, https_node, make_world, policy_text, spki
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
    assert lines[-2].startswith("verdict: ACCEPTED")
    assert lines[-1] == f"OK: {world.fx.write()['bundle']}"


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
    from tests.support.tlog_net import free_port

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
    assert again.stdout.splitlines()[-2].startswith("verdict: ACCEPTED")
    assert again.stdout.splitlines()[-1] == f"OK: {saved}"
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
    assert bare.exit_code == 64 and "--nonce" in bare.output  # a usage error


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


def test_several_bundles_one_line_each_and_the_worst_status(world: World,
                                                           tmp_path: Path) -> None:
    """Issue 12, one output style: `verifier bundle FILE...` checks each saved bundle against
    the nonce saved beside it and prints one sigstore-style line per input, `OK: FILE` or
    `FAIL: FILE: CHECK: REASON`; the exit status is the worst (forged outranks a missing
    file). The attack: one bundle kept beside another request's nonce."""
    from verifier.saved_bundle import save_bundle

    f = files(world, tmp_path)
    good, relayed = tmp_path / "good.cbor", tmp_path / "relayed.cbor"
    save_bundle(good, world.fx.bundle, world.fx.nonce)
    save_bundle(relayed, world.fx.bundle, b"\x11" * 32)
    missing = tmp_path / "missing.cbor"
    common = ["--policy", f["policy"], "--simulated-trust", f["trust"], "--at", AT,
              "--offline", "--state", str(tmp_path / "state"), "--log-url",
              str(world.fx.tiles_dir)]

    def run(*args: str):
        return CliRunner().invoke(main, ["bundle", *args, *common])

    out = run(str(good), str(relayed), str(missing))
    assert out.exit_code == 2, out.output
    lines = out.stdout.splitlines()
    assert lines[0] == f"OK: {good}"
    assert lines[1].startswith(f"FAIL: {relayed}: binding.nonce: ")
    assert lines[2].startswith(f"FAIL: {missing}: input: ") and "missing.cbor" in lines[2]
    assert len(lines) == 3  # no tables without --verbose
    assert run(str(good), str(good)).exit_code == 0
    assert run(str(good), str(missing)).exit_code == 66  # an unreadable input, nothing forged
    quiet = run(str(good), str(relayed), "-q")
    assert quiet.exit_code == 2 and quiet.output == ""
    verbose = run(str(good), str(relayed), "--verbose")
    assert verbose.stdout.count("verdict: ") == 2 and "binding.nonce" in verbose.stdout
    assert verbose.stdout.splitlines()[-1].startswith(f"FAIL: {relayed}: binding.nonce: ")
    doc = json.loads(run(str(good), str(relayed), "--json").stdout)
    assert doc["verdict"] == "refused" and doc["exit_status"] == 2
    assert [(i["input"], i["verdict"], i["exit_status"]) for i in doc["inputs"]] == [
        (str(good), "accepted", 0), (str(relayed), "refused", 2)]
    both = run(str(good), str(relayed), "--nonce", world.fx.nonce.hex())
    assert both.exit_code == 64 and "one FILE" in both.output


def test_one_bundle_ends_with_its_fail_line(world: World, tmp_path: Path) -> None:
    out = run_bundle(world, tmp_path, nonce="22" * 32)
    assert out.exit_code == 2
    last = out.stdout.splitlines()[-1]
    assert last.startswith(f"FAIL: {world.fx.write()['bundle']}: binding.nonce: ")
    assert run_bundle(world, tmp_path, "-q", nonce="22" * 32).output == ""
    doc = json.loads(run_bundle(world, tmp_path, "--json", nonce="22" * 32).stdout)
    assert doc["verdict"] == "refused" and "FAIL:" not in json.dumps(doc)
