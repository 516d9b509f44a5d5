"""The worked example in docs/formats.md ("Release entries") stays true."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from attest.release.dsse import entry_digest, entry_statement_digest, open_entry, sign_statement
from attest.release.keys import ReleaseSigningKey
from attest.release.measurements import GpuAllowList, Measurements, SnpMeasurement
from attest.release.statement import Artifact, Release, Revocation, Subject

DOC = Path(__file__).resolve().parent.parent / "docs" / "formats.md"


def test_docs_example() -> None:
    key = ReleaseSigningKey(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
    release = Release(
        subjects=(Subject("node.qcow2", hashlib.sha256(b"image").digest()),),
        repository="https://github.com/example/node",
        commit="d8b4a6445f38c48b9137a8099706d9b8073146e4",
        builder="https://github.com/example/node/.github/workflows/release.yml",
        artifacts=(Artifact("firmware", "OVMF.fd", hashlib.sha256(b"ovmf").digest()),),
        measurements=Measurements(
            snp=(SnpMeasurement(1, "EPYC-v4", "qemu", bytes.fromhex(
                "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba"
                "7e534442e7e1e17895dfe778d0228977")),),
            gpu=GpuAllowList(("550.90.07",), ("96.00.9F.00.01",))))
    entry = sign_statement(release, [key]).encode()
    statement = entry_statement_digest(entry)
    assert statement == hashlib.sha256(release.encode()).digest()
    revocation = Revocation.of_statement(statement, "kernel CVE-2026-0001").encode()
    build = Revocation.of_measurement(release.measurements.snp[0].measurement,
                                      "kernel CVE-2026-0001").encode()
    doc = DOC.read_text()
    assert f"statement  {release.encode().decode()}\n" in doc
    assert f"public key {key.public.to_text()}" in doc
    assert f"keyid      {key.keyid}\n" in doc
    assert f"({len(entry)} bytes)" in doc
    assert f"entry digest     {entry_digest(entry).hex()}\n" in doc
    assert f"statement digest {statement.hex()}\n" in doc
    assert f"revocation {revocation.decode()}\n" in doc
    assert f"build revocation {build.decode()}\n" in doc
    sig = entry.decode().split('"sig":"')[1].split('"')[0]
    assert sig in doc
    assert open_entry(entry, [key.public]).statement == release
