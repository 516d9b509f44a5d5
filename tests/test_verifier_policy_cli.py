"""The policy file on the command line: `verifier policy check` (its warnings and refusals) and
the one loader of every command (the one-item commands `verifier snp|tdx|gpu` read the whole
file and refuse what the full loader refuses). Split from test_verifier_policy.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.log_fixtures import policy_toml
from verifier.cli import main
from verifier.policy import load_policy, parse_policy

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "policy.example.toml"
DAY = 86400


# --- verifier policy check -----------------------------------------------------------------------


def test_cli_policy_check_ok() -> None:
    result = CliRunner().invoke(main, ["policy", "check", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert result.stdout == f"OK {EXAMPLE} sha256:{digest}\n"
    # the example waives log.consistency: said on stderr, every time
    assert result.stderr == (f"warning: {EXAMPLE}: waiver: log.consistency is skipped when it "
                             "cannot run (recorded as waived)\n")


def test_cli_policy_check_warns_on_every_unsafe_key_and_waiver(tmp_path: Path) -> None:
    text = policy_toml(
        top={"unsafe_allow_simulated_hardware": True,
             "waive": ["log.consistency", "release.revocations.unavailable", "gpu.ocsp"]},
        log={"max_checkpoint_age": None, "unsafe_max_checkpoint_age": 30 * DAY},
        extra="[gpu]\nunsafe_allow_devtools = true\nrequire_cc_mode = true\n")
    path = tmp_path / "risky.toml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["policy", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"OK {path} sha256:")
    warned = [line.removeprefix(f"warning: {path}: ") for line in result.stderr.splitlines()]
    assert warned == [
        "unsafe setting unsafe_allow_simulated_hardware = true",
        f"unsafe setting log.unsafe_max_checkpoint_age = {30 * DAY}",
        "unsafe setting gpu.unsafe_allow_devtools = true",
        "waiver: gpu.ocsp is skipped when it cannot run (recorded as waived)",
        "waiver: log.consistency is skipped when it cannot run (recorded as waived)",
        "waiver: release.revocations.unavailable is skipped when it cannot run (recorded as "
        "waived)",
    ]


def test_cli_policy_check_warns_on_unwitnessed_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "unwitnessed.toml"
    path.write_text(policy_toml(top={"waive": ["log.checkpoint.age"]},
                                log={"witnesses": None, "quorum": None,
                                     "witness_policy": "quorum none"}))
    result = CliRunner().invoke(main, ["policy", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "waiver: log.checkpoint.age" in result.stderr
    assert "quorum none accepts unwitnessed checkpoints" in result.stderr


def test_a_safe_policy_has_no_warnings() -> None:
    safe = policy_toml(top={"unsafe_allow_simulated_hardware": False})
    assert parse_policy(safe.encode()).warnings == ()


def test_cli_policy_check_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(policy_toml(log={"max_age": 5}))
    result = CliRunner().invoke(main, ["policy", "check", str(bad)])
    assert result.exit_code == 4
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "log.max_age" in lines[0] and lines[0].startswith("error:")


# --- the one loader: the one-item commands read the whole file ---------------------------------


def _vendor_attacks() -> dict[str, tuple[str, str, str]]:
    """Policy files the full loader refuses, each with a valid vendor table: (text, check,
    what the refusal names). The old per-vendor loader read only its own table."""
    own = "[snp]\nallow_debug = false\n[tdx]\n[gpu]\nrequire_cc_mode = false\n"
    return {
        "unknown-section": (policy_toml(extra=own + "[sgx]\nx = 1\n"), "policy.schema", "sgx"),
        "version": (policy_toml(top={"version": 2}, extra=own), "policy.version", "version"),
        "no-log": ("version = 1\n" + own, "policy.schema", "log"),
        "size-cap": (policy_toml(extra=own) + "#" * (1 << 20) + "\n", "policy.syntax",
                     "too large"),
        "unknown-key": (policy_toml(top={"colour": "blue"}, extra=own), "policy.schema",
                        "colour"),
    }


@pytest.mark.parametrize("attack", sorted(_vendor_attacks()))
@pytest.mark.parametrize("command", ["snp", "tdx", "gpu"])
def test_one_item_commands_refuse_what_the_full_loader_refuses(tmp_path: Path, command: str,
                                                               attack: str) -> None:
    text, check, named = _vendor_attacks()[attack]
    policy = tmp_path / "policy.toml"
    policy.write_text(text)
    (tmp_path / "input.bin").write_bytes(b"\x00" * 64)
    args = [command, str(tmp_path / "input.bin"), "--offline", "--policy", str(policy)]
    if command == "gpu":
        args += ["--chain", str(tmp_path / "input.bin")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 4, result.output  # TrustConfigError, before the input is read
    assert f"{check}:" in result.output and named in result.output


def test_one_item_command_applies_its_table_of_the_whole_file(tmp_path: Path) -> None:
    """The file `verifier verify` takes works unchanged for `verifier tdx`: its [tdx] table and
    waive list apply (the loader is load_policy, so they are the verify command's values)."""
    from verifier.tdx.cli import load_policy as tdx_policy

    path = tmp_path / "policy.toml"
    path.write_text(policy_toml(top={"waive": ["tdx.root_crl.validity"]},
                                extra="[tdx]\nallow_debug = true\n"))
    whole = load_policy(path)
    assert tdx_policy(str(path)) == (whole.tdx, whole.waive)
    assert whole.tdx.allow_debug and "tdx.root_crl.validity" in whole.waive
