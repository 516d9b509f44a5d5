"""`tlog init|add|checkpoint|publish-tiles` through click's CliRunner: round trip and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from transparency_log.cli.main import main
from transparency_log.common.errors import ProofError
from transparency_log.core import merkle, tiles
from transparency_log.core.checkpoint import open_checkpoint
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import generate_keys
from transparency_log.core.tlog_proof import parse_tlog_proof, verify_tlog_proof

ORIGIN = "example.com/cli-log"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    skey, vkey = generate_keys(ORIGIN, seed=b"\x07" * 32)
    Path("log.key").write_text(skey + "\n")
    for i in range(5):
        Path(f"e{i}").write_bytes(f"release {i}".encode())
    return vkey


def tlog(*args: str):
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result, code: int, text: str) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], lines


def test_round_trip(env: str) -> None:
    r = tlog("init", "--db", "log.db", "--origin", ORIGIN, "--key", "log.key")
    assert r.exit_code == 0, r.output
    assert r.output.strip() == env
    r = tlog("add", "--db", "log.db", "e0", "e1", "e2")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == ["0 e0", "1 e1", "2 e2"]
    r = tlog("add", "--db", "log.db", "e1", "e3")  # a duplicate keeps its index
    assert r.output.splitlines() == ["1 e1", "3 e3"]
    r = tlog("checkpoint", "--db", "log.db")
    assert r.exit_code == 0, r.output
    cp, _ = open_checkpoint(r.output.encode(), Verifier(env))
    want = merkle.MemoryTree([f"release {i}".encode() for i in range(4)])
    assert (cp.origin, cp.size, cp.root) == (ORIGIN, 4, want.root())
    r = tlog("prove", "--db", "log.db", "3")
    assert r.exit_code == 0, r.output
    proof = parse_tlog_proof(r.output.encode())
    assert verify_tlog_proof(b"release 3", proof, Verifier(env)) == cp
    with pytest.raises(ProofError):
        verify_tlog_proof(b"release 2", proof, Verifier(env))
    r = tlog("publish-tiles", "--db", "log.db", "public")
    assert r.exit_code == 0, r.output
    assert "tree size 4" in r.output
    assert open_checkpoint(Path("public/checkpoint").read_bytes(), Verifier(env))[0] == cp
    bundle = Path("public/tile/entries/000.p/4").read_bytes()
    assert tiles.decode_entry_bundle(bundle, 4)[3] == b"release 3"
    assert Path("public/tile/0/000.p/4").read_bytes() == b"".join(want.levels[0])


def test_commands_need_an_initialised_log(env: str) -> None:
    assert_one_line_error(tlog("add", "--db", "none.db", "e0"), 4, "tlog init")
    Path("empty.db").write_bytes(b"")
    assert_one_line_error(tlog("checkpoint", "--db", "empty.db"), 4, "not an initialised log")


def test_init_refusals(env: str) -> None:
    assert_one_line_error(tlog("init", "--db", "log.db", "--origin", ORIGIN, "--key", "nokey"),
                          4, "cannot read the signer key file")
    Path("bad.key").write_text("example.com+00000000+AAAA\n")
    assert_one_line_error(tlog("init", "--db", "log.db", "--origin", ORIGIN, "--key", "bad.key"),
                          4, "PRIVATE+KEY+")
    assert tlog("init", "--db", "log.db", "--origin", ORIGIN, "--key", "log.key").exit_code == 0
    assert_one_line_error(tlog("init", "--db", "log.db", "--origin", ORIGIN, "--key", "log.key"),
                          4, "existing file")


def test_add_and_checkpoint_refusals(env: str) -> None:
    assert tlog("init", "--db", "log.db", "--origin", ORIGIN, "--key", "log.key").exit_code == 0
    Path("big").write_bytes(b"x" * 65536)
    assert_one_line_error(tlog("add", "--db", "log.db", "e0", "big"), 2, "too large")
    assert_one_line_error(tlog("add", "--db", "log.db", "missing-file"), 66, "missing-file")
    assert tlog("add", "--db", "log.db", "e0").output == "0 e0\n"  # nothing of the refused call
    assert_one_line_error(tlog("publish-tiles", "--db", "log.db", "out"), 2,
                          "no signed checkpoint")
    assert_one_line_error(tlog("prove", "--db", "log.db", "0"), 2, "no signed checkpoint")
    r = tlog("prove", "--db", "log.db", "-1")
    assert r.exit_code == 64 and "Traceback" not in r.output  # usage error (ExitStatus.USAGE)
    other, _ = generate_keys(ORIGIN, seed=b"\x08" * 32)
    Path("log.key").write_text(other)  # the key file was swapped after init
    assert_one_line_error(tlog("checkpoint", "--db", "log.db"), 4, "does not match")
    Path("log.key").write_text(generate_keys(ORIGIN, seed=b"\x07" * 32)[0])
    assert tlog("checkpoint", "--db", "log.db").exit_code == 0
    assert_one_line_error(tlog("prove", "--db", "log.db", "1"), 2, "not covered")


def test_full_cli_story_with_keygen_and_verify_proof(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = tlog("keygen", ORIGIN, "--out", "k")
    assert r.exit_code == 0, r.output
    vkey = r.output.strip()
    assert tlog("init", "--db", "l.db", "--origin", ORIGIN, "--key", "k").output.strip() == vkey
    Path("a").write_bytes(b"artifact a")
    Path("b").write_bytes(b"artifact b")
    assert tlog("add", "--db", "l.db", "a", "b").output == "0 a\n1 b\n"
    assert tlog("checkpoint", "--db", "l.db").exit_code == 0
    Path("b.proof").write_text(tlog("prove", "--db", "l.db", "1").output)
    r = tlog("verify-proof", "--vkey", vkey, "b", "b.proof")
    assert r.exit_code == 0, r.output
    r = tlog("verify-proof", "--vkey", vkey, "a", "b.proof")
    assert_one_line_error(r, 2, "log.inclusion")
