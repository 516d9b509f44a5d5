"""`attest release keygen` / `attest release verify`."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from attest.cli import main
from attest.release.dsse import entry_digest, sign_statement
from attest.release.keys import generate_signing_key, load_signing_key_file
from tests.support.release_samples import sample_release


def test_keygen_sign_verify(tmp_path: Path) -> None:
    prefix = str(tmp_path / "rel")
    result = CliRunner().invoke(main, ["release", "keygen", "--out", prefix])
    assert result.exit_code == 0, result.output
    assert os.stat(prefix + ".key").st_mode & 0o777 == 0o600
    key = load_signing_key_file(Path(prefix + ".key"))
    assert result.output.strip() == key.keyid
    entry = sign_statement(sample_release(), [key]).encode()
    (tmp_path / "entry.json").write_bytes(entry)
    ok = CliRunner().invoke(main, ["release", "verify", str(tmp_path / "entry.json"),
                                   "--key", prefix + ".pub"])
    assert ok.exit_code == 0, ok.output
    assert f"OK: release sha256:{entry_digest(entry).hex()} signed by {key.keyid}" in ok.output


def test_verify_refuses_other_signer(tmp_path: Path) -> None:
    prefix = str(tmp_path / "rel")
    CliRunner().invoke(main, ["release", "keygen", "--out", prefix,
                              "--algorithm", "ecdsa-p256-sha256"])
    entry = sign_statement(sample_release(), [generate_signing_key()]).encode()
    (tmp_path / "entry.json").write_bytes(entry)
    result = CliRunner().invoke(main, ["release", "verify", str(tmp_path / "entry.json"),
                                       "--key", prefix + ".pub"])
    assert result.exit_code == 2
    assert "release.dsse.signer" in result.output
    (tmp_path / "bad.pub").write_text("nope\n")
    result = CliRunner().invoke(main, ["release", "verify", str(tmp_path / "entry.json"),
                                       "--key", str(tmp_path / "bad.pub")])
    assert result.exit_code == 4
