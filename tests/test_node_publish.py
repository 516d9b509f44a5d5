"""attest publish / attest revoke against an in-process `tlog serve` app (POST /add with a
bearer token or a submitter signature, ?wait=proof), and --no-submit."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from attest.cli import main
from attest.release.dsse import open_entry
from attest.release.keys import ReleasePublicKey, load_signing_key_file
from attest.release.statement import Release, Revocation
from transparency_log.common.asgi_serving import serve_in_thread
from transparency_log.core.note import Signer, generate_keys
from transparency_log.core.tlog_proof import parse_tlog_proof, verify_tlog_proof
from transparency_log.log.lifecycle import Log
from transparency_log.log.storage.sqlite import SqliteStorage
from transparency_log.serve.server import Submitters, create_app
from transparency_log.serve.service import LogService

ORIGIN = "publish.attestlog.test/log"
TOKEN = "ci-token-for-tests"
M48 = "ab" * 48


@pytest.fixture
def log_server(tmp_path: Path) -> Iterator[tuple[str, str, Ed25519PrivateKey]]:
    skey, vkey = generate_keys(ORIGIN, b"\x07" * 32)
    storage = SqliteStorage(tmp_path / "log.db")
    service = LogService(Log(storage, ORIGIN), Signer(skey), vkey,
                         now=lambda: datetime(2026, 11, 23, tzinfo=UTC))
    submitter = Ed25519PrivateKey.generate()
    raw = submitter.public_key().public_bytes(serialization.Encoding.Raw,
                                              serialization.PublicFormat.Raw)
    subs = Submitters.from_config({"ci-bot": base64.b64encode(raw).decode()},
                                  {"ci": hashlib.sha256(TOKEN.encode()).hexdigest()})
    stop = threading.Event()
    publisher = threading.Thread(target=service.run_publisher, args=(stop, 0.05), daemon=True)
    publisher.start()
    try:
        with serve_in_thread(create_app(service, submitters=subs)) as (host, port):
            yield f"http://{host}:{port}", vkey, submitter
    finally:
        stop.set()
        publisher.join(5)
        service.close()
        storage.close()


def _keys(tmp_path: Path, submitter: Ed25519PrivateKey) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["release", "keygen", "--out", str(tmp_path / "rel")]).exit_code == 0
    key_file = tmp_path / "submitter.key"
    key_file.write_bytes(submitter.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    key_file.chmod(0o600)
    (tmp_path / "token").write_text(TOKEN + "\n")


def _publish_args(tmp_path: Path) -> list[str]:
    image = tmp_path / "build" / "node.img"
    image.parent.mkdir(exist_ok=True)
    image.write_bytes(b"image bytes")
    (tmp_path / "build" / "vmlinuz").write_bytes(b"kernel")
    return ["publish", "--release-key", str(tmp_path / "rel.key"), "--name", "node.img",
            "--image", str(image), "--repository", "https://github.com/example/node",
            "--commit", "1" * 40, "--builder", "https://ci.example/b",
            "--artifact", f"kernel={tmp_path / 'build' / 'vmlinuz'}",
            "--snp", f"4:EPYC-v4:qemu:{M48}", "--tdx", ":".join([M48] * 4),
            "--gpu-driver", "550.90.07", "--gpu-vbios", "96.00.9F.00.01"]


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_publish_and_revoke(tmp_path: Path, log_server, auth: str) -> None:
    url, vkey, submitter = log_server
    _keys(tmp_path, submitter)
    creds = (["--token-file", str(tmp_path / "token")] if auth == "token" else
             ["--submitter", "ci-bot", "--submitter-key", str(tmp_path / "submitter.key")])
    runner = CliRunner()
    result = runner.invoke(main, [*_publish_args(tmp_path), "--log", url, "--log-vkey", vkey,
                                  *creds])
    assert result.exit_code == 0, result.output
    entry = (tmp_path / "build" / "node.img.release.json").read_bytes()
    proof = parse_tlog_proof((tmp_path / "build" / "node.img.tlog-proof").read_bytes())
    from transparency_log.core.key_types import Verifier

    assert verify_tlog_proof(entry, proof, Verifier(vkey)).size >= 1
    pub = ReleasePublicKey.from_text((tmp_path / "rel.pub").read_text())
    opened = open_entry(entry, [pub])
    assert isinstance(opened.statement, Release)
    m = opened.statement.measurements
    assert m.snp[0].measurement.hex() == M48 and m.gpu.drivers == ("550.90.07",)
    assert opened.statement.artifacts[0].kind == "kernel"

    result = runner.invoke(main, ["revoke", f"sha256:{opened.digest.hex()}", "--reason",
                                  "test", "--log", url, "--log-vkey", vkey, "--release-key",
                                  str(tmp_path / "rel.key"), *creds,
                                  "--out", str(tmp_path / "rev")])
    assert result.exit_code == 0, result.output
    rev_entry = next((tmp_path / "rev").glob("*.json")).read_bytes()
    revocation = open_entry(rev_entry, [pub]).statement
    assert isinstance(revocation, Revocation) and revocation.target == "statement"
    assert revocation.value == opened.statement_digest


def test_revoke_lists_sibling_releases_and_revokes_builds(tmp_path: Path, log_server) -> None:
    """`attest revoke RELEASE` names the other logged releases that list the same
    measurement and says they stay valid; `--measurement` revokes the build."""
    url, vkey, _ = log_server
    _keys(tmp_path, Ed25519PrivateKey.generate())
    log_args = ["--log", url, "--log-vkey", vkey, "--token-file", str(tmp_path / "token")]
    runner = CliRunner()
    first = [*_publish_args(tmp_path), *log_args, "--out", str(tmp_path / "v1")]
    assert runner.invoke(main, first).exit_code == 0
    second = [*_publish_args(tmp_path), *log_args, "--out", str(tmp_path / "v2")]
    second[second.index("--commit") + 1] = "2" * 40  # the same build, released again
    assert runner.invoke(main, second).exit_code == 0
    pub = ReleasePublicKey.from_text((tmp_path / "rel.pub").read_text())
    v2 = open_entry((tmp_path / "v2" / "node.img.release.json").read_bytes(), [pub])
    revoke = ["revoke", "--reason", "bad", "--release-key", str(tmp_path / "rel.key"),
              *log_args, "--out", str(tmp_path / "rev")]
    result = runner.invoke(main, [*revoke, str(tmp_path / "v1" / "node.img.release.json")])
    assert result.exit_code == 0, result.output
    assert "Other logged releases sharing its measurements (1) STAY VALID" in result.output
    assert f"entry 1: node.img commit 222222222222 statement sha256:" \
           f"{v2.statement_digest.hex()}: NOT revoked" in result.output
    result = runner.invoke(main, [*revoke, "--measurement", M48])
    assert result.exit_code == 0, result.output
    assert "logged now (2):" in result.output and "entry 0:" in result.output
    assert "revoked (statement sha256:" in result.output  # the first, revoked above
    rev = open_entry((tmp_path / "rev" / f"revocation-{M48[:16]}.json").read_bytes(),
                     [pub]).statement
    assert isinstance(rev, Revocation) and rev.value == bytes.fromhex(M48)


def test_publish_with_wrong_credentials_is_refused(tmp_path: Path, log_server) -> None:
    url, vkey, submitter = log_server
    _keys(tmp_path, submitter)
    (tmp_path / "token").write_text("wrong")
    result = CliRunner().invoke(main, [*_publish_args(tmp_path), "--log", url, "--log-vkey",
                                       vkey, "--token-file", str(tmp_path / "token")])
    assert result.exit_code == 4 and "publish.auth" in result.output


def test_publish_no_submit_only_signs(tmp_path: Path) -> None:
    _keys(tmp_path, Ed25519PrivateKey.generate())
    result = CliRunner().invoke(main, [*_publish_args(tmp_path), "--no-submit"])
    assert result.exit_code == 0 and "NOT published" in result.output
    assert (tmp_path / "build" / "node.img.release.json").exists()
    assert not (tmp_path / "build" / "node.img.tlog-proof").exists()
    key = load_signing_key_file(tmp_path / "rel.key")
    assert open_entry((tmp_path / "build" / "node.img.release.json").read_bytes(),
                      [key.public]).statement.commit == "1" * 40


@pytest.mark.parametrize(("args", "message"), [
    (["--snp", "4:EPYC:qemu:zz"], "VCPUS:VCPU_TYPE"),
    (["--tdx", "ab"], "MRTD:RTMR0"),
    (["--artifact", "bogus=x"], "KIND=FILE"),
])
def test_publish_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    _keys(tmp_path, Ed25519PrivateKey.generate())
    result = CliRunner().invoke(main, [*_publish_args(tmp_path), *args, "--no-submit"])
    assert result.exit_code == 64 and message in result.output


def _without_gpu_versions(args: list[str]) -> list[str]:
    out = list(args)
    for option in ("--gpu-driver", "--gpu-vbios"):
        i = out.index(option)
        del out[i:i + 2]
    return out


@pytest.mark.parametrize("drop", [("--gpu-driver", "--gpu-vbios"), ("--gpu-vbios",),
                                  ("--gpu-driver",)])
def test_publish_without_gpu_versions_is_refused(tmp_path: Path, drop: tuple[str, ...]) -> None:
    """Issue 12: a release without GPU versions was published, and every client then refused
    its nodes (their GPUs run versions the release does not list). The versions, or --no-gpu
    for CPU-only nodes, are now required: a one-line usage error, and nothing is signed."""
    _keys(tmp_path, Ed25519PrivateKey.generate())
    args = [*_publish_args(tmp_path), "--no-submit"]
    for option in drop:
        i = args.index(option)
        del args[i:i + 2]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 64, result.output
    assert "--gpu-driver and --gpu-vbios are required" in result.output
    assert "--no-gpu" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "build" / "node.img.release.json").exists()


def test_publish_no_gpu_is_a_release_for_cpu_only_nodes(tmp_path: Path) -> None:
    _keys(tmp_path, Ed25519PrivateKey.generate())
    args = [*_without_gpu_versions(_publish_args(tmp_path)), "--no-submit"]
    result = CliRunner().invoke(main, [*args, "--no-gpu"])
    assert result.exit_code == 0, result.output
    key = load_signing_key_file(tmp_path / "rel.key")
    statement = open_entry((tmp_path / "build" / "node.img.release.json").read_bytes(),
                           [key.public]).statement
    assert isinstance(statement, Release) and statement.measurements.gpu is None
    both = CliRunner().invoke(main, [*_publish_args(tmp_path), "--no-submit", "--no-gpu"])
    assert both.exit_code == 64 and "--no-gpu" in both.output


def test_revoke_needs_a_digest(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["revoke", "nothex", "--reason", "x", "--release-key",
                                       "k"])
    assert result.exit_code == 64


WHEEL_HEX = "c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201"


def test_publish_saves_a_sigstore_bundle_bound_to_the_release(tmp_path: Path) -> None:
    """--sigstore-bundle: the real wheel bundle (tests/vectors/sigstore) is saved next to the
    entry when the release lists the wheel (by digest: --artifact-sha256); a bundle over a
    file the release does not list is refused before anything is signed."""
    from tests.support.vectors import vector_path

    _keys(tmp_path, Ed25519PrivateKey.generate())
    wheel = vector_path("sigstore", "bundles", "bundle_v3_github.whl.sigstore")
    runner = CliRunner()
    result = runner.invoke(main, [*_publish_args(tmp_path), "--no-submit",
                                  "--artifact-sha256", f"other=bundle_v3_github.whl={WHEEL_HEX}",
                                  "--sigstore-bundle", str(wheel)])
    assert result.exit_code == 0, result.output
    assert "over the release's artifact other bundle_v3_github.whl" in result.output
    saved = tmp_path / "build" / "node.img.sigstore.json"
    assert saved.read_bytes() == wheel.read_bytes()
    key = load_signing_key_file(tmp_path / "rel.key")
    statement = open_entry((tmp_path / "build" / "node.img.release.json").read_bytes(),
                           [key.public]).statement
    assert isinstance(statement, Release)
    assert statement.artifacts[-1].sha256.hex() == WHEEL_HEX
    saved.unlink()
    (tmp_path / "build" / "node.img.release.json").unlink()
    result = runner.invoke(main, [*_publish_args(tmp_path), "--no-submit",
                                  "--sigstore-bundle", str(wheel)])
    assert result.exit_code == 2 and "release.sigstore.artifact" in result.output
    assert WHEEL_HEX in result.output
    assert not (tmp_path / "build" / "node.img.release.json").exists() and not saved.exists()
    text = vector_path("sigstore", "bundles", "bundle_v3.txt")
    result = runner.invoke(main, [*_publish_args(tmp_path), "--no-submit",
                                  "--artifact", f"other={text}", "--sigstore-bundle",
                                  str(text.with_name("bundle_v3.txt.sigstore"))])
    assert result.exit_code == 0 and "artifact other bundle_v3.txt" in result.output
    result = runner.invoke(main, [*_publish_args(tmp_path), "--no-submit",
                                  "--artifact-sha256", "other=x=ABC"])
    assert result.exit_code == 64 and "KIND=NAME=HEX" in result.output


@pytest.fixture
def slow_log() -> Iterator[str]:
    """A log whose witnesses never cosign: it holds POST /add?wait=proof 1.6 s, then 504."""
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server calls it by this name
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(1.6)
            body = b"timed out waiting for a cosigned checkpoint\n"
            self.send_response(504)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_publish_shows_progress_while_it_waits_for_witnesses(tmp_path: Path, slow_log: str,
                                                             monkeypatch) -> None:
    """Issue 12: `attest publish` waited 30 silent seconds, then printed a bare 504. It now
    says on stderr that it is waiting (stdout untouched), and the 504 names the witnesses."""
    import attest.release.cli_publish as cli_publish

    monkeypatch.setattr(cli_publish, "PROGRESS_EVERY", 0.4)
    _keys(tmp_path, Ed25519PrivateKey.generate())
    _, vkey = generate_keys(ORIGIN, b"\x07" * 32)
    result = CliRunner().invoke(main, [*_publish_args(tmp_path), "--log", slow_log,
                                       "--log-vkey", vkey, "--token-file",
                                       str(tmp_path / "token")])
    assert result.exit_code == 3, result.output
    waiting = [line for line in result.stderr.splitlines()
               if line.startswith("waiting for the witness quorum (")]
    assert len(waiting) >= 2, result.stderr
    assert "waiting" not in result.stdout
    assert "publish.fetch" in result.stderr and "witnesses" in result.stderr
    assert "HTTP 504" in result.stderr
