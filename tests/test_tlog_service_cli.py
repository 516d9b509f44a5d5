"""The commands as an operator runs them: `tlog witness keygen|serve` and `tlog serve
--witness-policy` as separate processes, an entry added with a submitter signature, and the
tlog-proof it returns verified against the policy (log signature + witness quorum)."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from pathlib import Path

import requests
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.support.tlog_net import CLI, free_port, tlog
from transparency_log.cli.main import main
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import generate_keys
from transparency_log.core.tlog_proof import parse_tlog_proof, verify_tlog_proof_detailed
from transparency_log.core.witness_policy import parse_witness_policy
from transparency_log.serve.server import sign_submission

ORIGIN = "example.com/cli-log"


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", CLI, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def wait_up(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode())  # type: ignore[union-attr]
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not come up")


def test_witness_keygen_writes_0600_key(tmp_path: Path) -> None:
    out = tmp_path / "w.key"
    r = CliRunner().invoke(main, ["witness", "keygen", "witness.example/w1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("witness.example/w1+")
    assert out.stat().st_mode & 0o777 == 0o600
    assert out.read_text().startswith("PRIVATE+KEY+witness.example/w1+")
    r = CliRunner().invoke(main, ["witness", "keygen", "again", "--out", str(out)])
    assert r.exit_code != 0  # never overwrites a key


def test_serve_with_a_witness_process(tmp_path: Path) -> None:
    skey, vkey = generate_keys(ORIGIN)
    (tmp_path / "log.key").write_text(skey + "\n")
    db = str(tmp_path / "log.db")
    assert tlog("init", "--db", db, "--origin", ORIGIN, "--key",
                str(tmp_path / "log.key")).returncode == 0
    r = tlog("witness", "keygen", "witness.example/w1", "--out", str(tmp_path / "w.key"))
    assert r.returncode == 0, r.stderr
    wvkey = r.stdout.strip()

    submitter = Ed25519PrivateKey.generate()
    pub = submitter.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    (tmp_path / "submitters.toml").write_text(
        f'[keys]\nrelease-ci = "{base64.b64encode(pub).decode()}"\n')

    wport, lport = free_port(), free_port()
    policy_text = (f"log {vkey}\nwitness w1 {wvkey} http://127.0.0.1:{wport}\n"
                   "quorum w1\n")
    (tmp_path / "policy").write_text(policy_text)
    procs = []
    try:
        procs.append(spawn("witness", "serve", "--db", str(tmp_path / "w.db"), "--key",
                           str(tmp_path / "w.key"), "--log", vkey,
                           "--listen", f"127.0.0.1:{wport}"))
        wait_up(procs[-1], f"http://127.0.0.1:{wport}/")
        procs.append(spawn("serve", "--db", db, "--listen", f"127.0.0.1:{lport}",
                           "--submitters", str(tmp_path / "submitters.toml"),
                           "--witness-policy", str(tmp_path / "policy"), "--interval", "0.05"))
        base = f"http://127.0.0.1:{lport}"
        wait_up(procs[-1], base + "/checkpoint")
        entry = b"release v1.2.3"
        r = requests.post(base + "/add?wait=proof", data=entry, timeout=30, headers={
            "Tlog-Signature": f"release-ci {sign_submission(submitter, entry)}"})
        assert r.status_code == 200, r.text
        _, quorum = verify_tlog_proof_detailed(entry, parse_tlog_proof(r.content),
                                               Verifier(vkey),
                                               parse_witness_policy(policy_text.encode()))
        assert set(quorum.cosigned) == {"w1"}
        r = requests.post(base + "/add", data=b"x", timeout=10,
                          headers={"Tlog-Signature": "release-ci AAAA"})
        assert r.status_code == 403
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
            p.stderr.close()  # type: ignore[union-attr]
