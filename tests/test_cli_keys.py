"""`tlog keygen` and `tlog verify-proof` (in-process with click's CliRunner)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from transparency_log.cli.main import main
from transparency_log.core.checkpoint import Checkpoint, sign_checkpoint
from transparency_log.core.cosignature import CosignatureSigner, CosignatureVerifier, cosignature
from transparency_log.core.key_types import Verifier
from transparency_log.core.merkle import MemoryTree
from transparency_log.core.note import Signer, append_signatures
from transparency_log.core.tlog_proof import TlogProof

ENTRIES = [b"release %d" % i for i in range(6)]


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_keygen_writes_0600_and_prints_vkey(tmp_path: Path) -> None:
    out = tmp_path / "log.key"
    res = _run("keygen", "example.com/log", "--out", str(out))
    assert res.exit_code == 0, res.output
    vkey = res.output.strip()
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    skey = out.read_text().strip()
    assert skey.startswith("PRIVATE+KEY+example.com/log+")
    assert Signer(skey).verifier_key() == vkey == Verifier(vkey).vkey


def test_keygen_cosigner(tmp_path: Path) -> None:
    out = tmp_path / "w.key"
    res = _run("keygen", "w.example", "--cosigner", "--out", str(out))
    assert res.exit_code == 0
    assert CosignatureSigner(out.read_text().strip()).verifier_key() == res.output.strip()
    CosignatureVerifier(res.output.strip())


def test_keygen_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "log.key"
    out.write_text("precious\n")
    res = _run("keygen", "example.com/log", "--out", str(out))
    assert res.exit_code != 0 and out.read_text() == "precious\n"
    assert "Traceback" not in res.output


def test_keygen_bad_name(tmp_path: Path) -> None:
    res = _run("keygen", "bad name", "--out", str(tmp_path / "k"))
    assert res.exit_code == 4
    assert res.output.count("\n") == 1 and "note.key" in res.output
    assert not (tmp_path / "k").exists()


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    """A log key, a witness key, a cosigned checkpoint, a proof for entry 3, a policy."""
    assert _run("keygen", "example.com/log", "--out", str(tmp_path / "log.key")).exit_code == 0
    wres = _run("keygen", "w.example", "--cosigner", "--out", str(tmp_path / "w.key"))
    log = Signer((tmp_path / "log.key").read_text().strip())
    wit = CosignatureSigner((tmp_path / "w.key").read_text().strip())
    tree = MemoryTree(ENTRIES)
    cp = Checkpoint("example.com/log", tree.size, tree.root())
    note = append_signatures(sign_checkpoint(cp, log), [cosignature(cp.to_text(), wit, 99)])
    (tmp_path / "entry").write_bytes(ENTRIES[3])
    (tmp_path / "other").write_bytes(ENTRIES[4])
    (tmp_path / "proof").write_bytes(TlogProof(3, tree.inclusion_proof(3), note).to_text())
    (tmp_path / "vkey").write_text(log.verifier_key() + "\n")
    (tmp_path / "policy").write_text(f"log {log.verifier_key()}\n"
                                     f"witness W {wres.output.strip()}\nquorum W\n")
    return tmp_path


def test_verify_proof_ok(logdir: Path) -> None:
    vkey = (logdir / "vkey").read_text().strip()
    res = _run("verify-proof", "--vkey", vkey, str(logdir / "entry"), str(logdir / "proof"))
    assert res.exit_code == 0, res.output
    assert res.output == "OK: entry 3 of example.com/log (tree size 6)\n"
    res = _run("verify-proof", "--vkey", str(logdir / "vkey"), "--policy",
               str(logdir / "policy"), str(logdir / "entry"), str(logdir / "proof"))
    assert res.exit_code == 0, res.output
    assert res.output.endswith("; quorum W met by W\n")


@pytest.mark.parametrize(
    ("change", "code", "check"),
    [
        (lambda d: ["--vkey", str(d / "vkey"), str(d / "other"), str(d / "proof")], 2,
         "log.inclusion"),
        (lambda d: ["--vkey", "x+00000000+AAAA", str(d / "entry"), str(d / "proof")], 4,
         "note.key"),
        (lambda d: ["--vkey", str(d / "vkey"), "--policy", str(d / "entry"), str(d / "entry"),
                    str(d / "proof")], 4, "log.policy"),
        (lambda d: ["--vkey", str(d / "vkey"), str(d / "entry"), str(d / "entry")], 2,
         "tlog_proof.format"),
        (lambda d: ["--vkey", str(d / "vkey"), "--origin", "elsewhere", str(d / "entry"),
                    str(d / "proof")], 2, "checkpoint.origin"),
    ],
    ids=["wrong entry", "bad vkey", "bad policy", "not a proof", "wrong origin"],
)
def test_verify_proof_errors_are_one_line(logdir: Path, change, code: int, check: str) -> None:
    res = _run("verify-proof", *change(logdir))
    assert res.exit_code == code, res.output
    assert res.output.count("\n") == 1 and check in res.output
    assert res.output.startswith("error: ")


def test_verify_proof_quorum_not_met(logdir: Path) -> None:
    text = (logdir / "proof").read_bytes()
    (logdir / "proof").write_bytes(b"\n".join(
        line for line in text.split(b"\n") if not line.startswith("— w.example".encode())))
    res = _run("verify-proof", "--vkey", str(logdir / "vkey"), "--policy",
               str(logdir / "policy"), str(logdir / "entry"), str(logdir / "proof"))
    assert res.exit_code == 2 and "log.witness.quorum" in res.output


def test_verify_proof_missing_file(logdir: Path) -> None:
    res = _run("verify-proof", "--vkey", str(logdir / "vkey"), str(logdir / "nope"),
               str(logdir / "proof"))
    assert res.exit_code != 0 and "Traceback" not in res.output
