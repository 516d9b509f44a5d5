"""The command-line surface of `tlog`, `attest` and `verifier` (issue 12): one exit-status
table, usage errors apart from forged evidence, --json for every outcome, one waiver rule,
one output style, -h/--version/help on every command and option, keys and configuration."""

from __future__ import annotations

import io
import json
import re
import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from attest.cli import main as attest_main
from tests.support.log_fixtures import policy_toml
from transparency_log.cli.main import main as tlog_main
from transparency_log.common.clitools import ErrorHandlingGroup
from transparency_log.common.errors import (
    AttestlogError,
    FetchError,
    FormatError,
    PolicyError,
    PolicyFailure,
    SignatureError,
    StaleError,
    StartupError,
    TrustConfigError,
)
from transparency_log.common.exit_status import ExitStatus
from verifier.cli import main as verifier_main
from verifier.render import use_color

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_POLICY = ROOT / "examples" / "policy.example.toml"
MAINS = {"tlog": tlog_main, "attest": attest_main, "verifier": verifier_main}


def _walk(cmd: click.Command, path: list[str]):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _walk(sub, [*path, name])


ALL_COMMANDS = [(root, path[1:]) for root, main in MAINS.items()
                for path, _ in _walk(main, [root])]


# --- exit statuses -------------------------------------------------------------------------

def _raiser(exc: BaseException) -> ErrorHandlingGroup:
    @click.group(cls=ErrorHandlingGroup)
    def group() -> None:
        pass

    @group.command("go")
    def go() -> None:
        raise exc

    return group


@pytest.mark.parametrize(("exc", "status"), [
    (ValueError("internal"), ExitStatus.UNEXPECTED),
    (SignatureError("x.signature", "forged"), ExitStatus.FORGED),
    (FormatError("x.format", "malformed"), ExitStatus.FORGED),
    (FetchError("x.fetch", "down"), ExitStatus.UNREACHABLE),
    (TrustConfigError("x.key", "bad key"), ExitStatus.TRUST_CONFIG),
    (PolicyError([PolicyFailure("x.policy", "F", 1, 2)]), ExitStatus.POLICY),
    (StartupError("x.listen", "taken"), ExitStatus.STARTUP),
    (StaleError("x.crl", "CRL is stale"), ExitStatus.STALE),
    (FileNotFoundError(2, "No such file or directory", "in.bin"), ExitStatus.NO_INPUT),
    (OSError(28, "No space left on device", "out.bin"), ExitStatus.IO_ERROR),
])
def test_each_error_class_has_its_status_and_one_line(exc: BaseException, status: int) -> None:
    result = CliRunner().invoke(_raiser(exc), ["go"])
    assert result.exit_code == status, result.output
    lines = result.output.strip().splitlines()
    assert "Traceback" not in result.output and lines[0].startswith("error: ")
    assert len(lines) == (2 if status == ExitStatus.POLICY else 1)  # + one line per failure
    assert "FileNotFoundError" not in result.output


def test_stale_collateral_is_not_forged() -> None:
    assert StaleError.exit_code != SignatureError.exit_code
    assert issubclass(StaleError, AttestlogError)


def test_every_status_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    for status in ExitStatus:
        assert re.search(rf"^\| {status.value} \| `{status.name}` \|", readme, re.M), status


@pytest.mark.parametrize(("main", "args"), [
    (verifier_main, ["node"]),                                    # missing argument
    (verifier_main, ["node", "https://x", "--bogus"]),            # unknown option
    (verifier_main, ["bundle", "b.cbor", "--nonce", "zz"]),       # BadParameter
    (verifier_main, ["snp", "r.bin", "--unsafe-skip-crl"]),       # the removed switch
    (tlog_main, ["init", "--db", "x.db"]),                        # missing option
    (attest_main, ["no-such-command"]),
])
def test_usage_errors_exit_64_not_2(main: click.Group, args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == ExitStatus.USAGE, result.output


def test_an_unreadable_input_is_one_line_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.bin"
    result = CliRunner().invoke(verifier_main, ["bundle-inspect", str(missing)])
    assert result.exit_code in (ExitStatus.USAGE, ExitStatus.NO_INPUT)
    result = CliRunner().invoke(verifier_main, ["tdx", str(missing), "--offline"])
    assert result.exit_code == ExitStatus.NO_INPUT, result.output
    assert result.output == f"error: cannot read {missing}: no such file or directory\n"


# --- --json for every outcome --------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_json_unreachable_node_is_a_json_object_without_urllib3_internals() -> None:
    url = f"https://127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(verifier_main, ["node", url, "--policy", str(EXAMPLE_POLICY),
                                                "--json"])
    assert result.exit_code == ExitStatus.UNREACHABLE, result.output
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "error" and doc["exit_status"] == 3
    assert doc["error"]["check"] == "node.fetch"
    assert doc["error"]["message"] == "node unreachable: connection refused"
    assert "HTTPSConnectionPool" not in result.output and "urllib3" not in result.output


def test_json_bad_policy_and_usage_error_are_json_objects(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text(EXAMPLE_POLICY.read_text().replace("\norigin = ", "\norgin = ", 1))
    result = CliRunner().invoke(verifier_main, ["bundle", "b", "--nonce", "00" * 32,
                                                "--policy", str(bad), "--json"])
    assert result.exit_code == ExitStatus.TRUST_CONFIG, result.output
    doc = json.loads(result.stdout)
    assert doc["error"]["check"] == "policy.schema" and doc["error"]["field"] == "log.orgin"
    assert "did you mean 'origin'" in doc["error"]["message"]
    result = CliRunner().invoke(verifier_main, ["bundle", "b", "--json", "--nonce", "zz"])
    assert result.exit_code == ExitStatus.USAGE
    assert json.loads(result.stdout)["error"]["kind"] == "usage"


# --- one waiver rule -----------------------------------------------------------------------

@pytest.mark.parametrize("command", ["node", "bundle", "snp", "tdx", "gpu"])
def test_waive_refuses_an_authenticity_check_on_every_verifier_command(command: str) -> None:
    result = CliRunner().invoke(verifier_main, [command, "x", "--waive",
                                                "snp.report.signature"])
    assert result.exit_code == ExitStatus.TRUST_CONFIG, result.output
    assert "policy.waive" in result.output and "snp.report.signature" in result.output


def test_old_tdx_waiver_key_names_its_replacement(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(policy_toml(extra='[tdx]\nunsafe_accept_stale_crls = ["root_crl"]\n'))
    result = CliRunner().invoke(verifier_main, ["tdx", str(policy), "--policy", str(policy)])
    assert result.exit_code == ExitStatus.TRUST_CONFIG, result.output
    assert 'waive = ["tdx.pck_crl.validity", "tdx.root_crl.validity"]' in result.output


def test_policy_check_warns_about_command_line_and_file_waivers(tmp_path: Path) -> None:
    text = EXAMPLE_POLICY.read_text().replace(
        'waive = ["log.consistency"]', 'waive = ["log.consistency", "tdx.root_crl.validity"]')
    path = tmp_path / "p.toml"
    path.write_text(text)
    result = CliRunner().invoke(verifier_main, ["policy", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert "waiver: tdx.root_crl.validity" in result.stderr


# --- one output style ----------------------------------------------------------------------

def test_quiet_prints_nothing_and_keeps_the_status(tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(verifier_main, ["node", url, "--policy", str(EXAMPLE_POLICY),
                                                "-q"])
    assert result.exit_code == ExitStatus.UNREACHABLE and result.output == ""


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert use_color(_Tty()) and not use_color(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "")
    assert not use_color(_Tty())


@pytest.mark.parametrize(("root", "path"), ALL_COMMANDS)
def test_every_command_has_h_and_version(root: str, path: list[str]) -> None:
    result = CliRunner().invoke(MAINS[root], [*path, "-h"])
    assert result.exit_code == 0 and "Usage:" in result.output, result.output
    result = CliRunner().invoke(MAINS[root], [*path, "--version"])
    assert result.exit_code == 0 and "(attestlog)" in result.output, result.output


def test_every_option_has_help_and_file_options_are_typed() -> None:
    missing, untyped = [], []
    for root, main in MAINS.items():
        for path, cmd in _walk(main, [root]):
            for p in cmd.params:
                if isinstance(p, click.Option) and not p.help:
                    missing.append(f"{' '.join(path)} {p.opts[0]}")
                if (isinstance(p, click.Option) and p.name and p.name.endswith(("_file",))
                        and not isinstance(p.type, click.Path | click.File)):
                    untyped.append(f"{' '.join(path)} {p.opts[0]}")
    assert missing == [] and untyped == []


# --- keys and configuration ----------------------------------------------------------------

def test_keygen_writes_the_vkey_the_readme_cats(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(tlog_main, ["keygen", "example.com/log", "--out", "log.key"])
    assert result.exit_code == 0, result.output
    assert Path("log.vkey").read_text() == result.output
    run = CliRunner()
    wrong = run.invoke(tlog_main, ["init", "--db", "log.db", "--origin", "other.example/log",
                                   "--key", "log.key"])
    assert wrong.exit_code == ExitStatus.TRUST_CONFIG and "log.config" in wrong.output
    assert not Path("log.db").exists()
    assert run.invoke(tlog_main, ["init", "--db", "log.db", "--origin", "example.com/log",
                                  "--key", "log.key"]).exit_code == 0
    assert run.invoke(tlog_main, ["checkpoint", "--db", "log.db"]).exit_code == 0
    assert run.invoke(tlog_main, ["publish-tiles", "--db", "log.db", "tiles"]).exit_code == 0
    for vkey in ("log.vkey", Path("log.vkey").read_text().strip()):  # a file or the key
        out = run.invoke(tlog_main, ["monitor", "tiles", "--vkey", vkey, "--state", "st"])
        assert out.exit_code == 0, out.output
        assert re.search(r" root [0-9a-f]{64} ", out.output), out.output  # hex, not base64


def test_a_witness_with_the_logs_own_key_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    CliRunner().invoke(tlog_main, ["keygen", "example.com/log", "--out", "log.key"])
    result = CliRunner().invoke(tlog_main, ["witness", "serve", "--db", "w.db", "--key",
                                            "log.key", "--log", "log.vkey",
                                            "--listen", f"127.0.0.1:{_closed_port()}"])
    assert result.exit_code == ExitStatus.TRUST_CONFIG and "witness.key" in result.output
    assert not Path("w.db").exists()


@pytest.mark.parametrize("command", ["snp", "tdx", "gpu"])
def test_one_item_commands_take_the_policy_from_env_and_config(tmp_path: Path, monkeypatch,
                                                               command: str) -> None:
    """The configured policy (its table and its waive list) applies to `verifier snp`, `tdx`
    and `gpu` too, with the same precedence: each policy file here waives an id of its own
    that is not waivable, so the refusal (exit 4) names the file that was used."""
    for name in ("config", "env", "flag"):
        (tmp_path / f"{name}.toml").write_text(policy_toml(top={"waive": [f"from-{name}"]}))
    (tmp_path / "attestlog").mkdir()
    (tmp_path / "attestlog" / "config.toml").write_text(
        f'policy = "{tmp_path}/config.toml"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("ATTESTLOG_POLICY", raising=False)
    (tmp_path / "input.bin").write_bytes(b"\x00" * 64)
    args = [command, str(tmp_path / "input.bin"), "--offline"]
    if command == "gpu":
        args += ["--chain", str(tmp_path / "input.bin")]

    def used(*extra: str) -> str:
        result = CliRunner().invoke(verifier_main, [*args, *extra])
        assert result.exit_code == ExitStatus.TRUST_CONFIG, result.output
        assert "policy.waive" in result.output
        return re.findall(r"from-(\w+)", result.output)[0]

    assert used() == "config"
    monkeypatch.setenv("ATTESTLOG_POLICY", str(tmp_path / "env.toml"))
    assert used() == "env"
    assert used("--policy", str(tmp_path / "flag.toml")) == "flag"


def test_flag_beats_env_beats_config_file(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "attestlog").mkdir()
    (tmp_path / "attestlog" / "config.toml").write_text(f'policy = "{tmp_path}/file.toml"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("ATTESTLOG_POLICY", raising=False)
    args = ["bundle", "b", "--nonce", "00" * 32]

    def used(*extra: str) -> str:
        result = CliRunner().invoke(verifier_main, [*args, *extra])
        assert result.exit_code == ExitStatus.TRUST_CONFIG, result.output
        return result.output

    assert "file.toml" in used()
    monkeypatch.setenv("ATTESTLOG_POLICY", str(tmp_path / "env.toml"))
    assert "env.toml" in used()
    assert "flag.toml" in used("--policy", str(tmp_path / "flag.toml"))
    (tmp_path / "attestlog" / "config.toml").write_text('polcy = "x"\n')
    out = used()
    assert "unknown key 'polcy' (did you mean 'policy'?)" in out
