"""`verifier audit` and Sigstore (verifier/audit.py; docs/operations.md): release bundles
checked against the policy's CI identity, and a verifying bundle naming its signer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import verifier.cli_audit as cli_audit
from tests.support.audit_log import ReleaseLog, audit, sha
from tests.support.log_fixtures import (
    policy_toml,
    release_entry,
)
from verifier.audit import AuditOptions, audit_entries
from verifier.policy import load_policy


@pytest.fixture()
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(policy_toml())
    return path


SIGSTORE_ROOT = Path(__file__).parent / "vectors" / "sigstore" / "trusted_root"
WHEEL_BUNDLE = Path(__file__).parent / "vectors" / "sigstore" / "bundles" / \
    "bundle_v3_github.whl.sigstore"


def sigstore_policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "sigstore-policy.toml"
    path.write_text(policy_toml(extra=(
        "[release.sigstore]\nrepository = \"trailofbits/rfc8785.py\"\n"
        "workflow = \".github/workflows/release.yml\"\nref = \"refs/tags/v0.1.2\"\n"
        f"trusted_root = \"{SIGSTORE_ROOT / 'production.trusted_root.json'}\"\n")))
    return path


def payload_sha256(entry: bytes) -> str:
    from attest.release.dsse import parse_entry

    return sha(parse_entry(entry).payload).hex()


def test_sigstore_bundles_are_checked_against_the_policy_identity(tmp_path) -> None:
    entries = [release_entry(0), release_entry(1)]
    log = ReleaseLog(tmp_path)
    log.add(*entries)
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    # A real GitHub Actions bundle by the policy's identity, but over another artifact.
    (bundles / f"{payload_sha256(entries[0])}.sigstore.json").write_bytes(
        WHEEL_BUNDLE.read_bytes())
    policy = sigstore_policy_file(tmp_path)
    code, out, _ = audit(str(log.dir), "--policy", str(policy), "--json")
    assert code == 0 and json.loads(out)["checks"]["sigstore"] is False  # no bundle folder
    code, out, err = audit(str(log.dir), "--policy", str(policy), "--json",
                           "--sigstore-bundles", str(bundles))
    assert code == cli_audit.EXIT_FLAGGED, err
    report = json.loads(out)
    assert report["checks"]["sigstore"] is True
    flags = {f["index"]: f for f in report["flags"]}
    assert set(flags) == {0, 1} and {f["check"] for f in flags.values()} == {"release.sigstore"}
    assert "release.sigstore.artifact" in flags[0]["message"]  # signs something else
    assert "absent" in flags[1]["message"]


def test_a_verifying_sigstore_bundle_names_its_signer(tmp_path, monkeypatch) -> None:
    """The wiring: the bundle named by the statement's SHA-256 reaches the check, and the SAN
    it returns is listed (no real bundle signs our test statements)."""
    import verifier.audit as audit_module

    entry = release_entry(0)
    seen: list[tuple[dict[bytes, str], bytes | None]] = []

    def fake_check(targets: dict[bytes, str], bundle: bytes | None, _policy: object) -> str:
        seen.append((dict(targets), bundle))
        return "https://github.com/example/ci@refs/tags/v1"

    monkeypatch.setattr(audit_module, "check_release_sigstore", fake_check)
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    (bundles / f"{payload_sha256(entry)}.sigstore.json").write_bytes(b"bundle")
    policy = load_policy(sigstore_policy_file(tmp_path))
    releases, _, flags = audit_entries([entry], AuditOptions(release=policy.release,
                                                             sigstore_dir=bundles))
    assert flags == () and releases[0].sigstore_san.endswith("@refs/tags/v1")  # type: ignore[union-attr]
    # the policy's default signs = "statement": the statement digest is the only target
    assert seen == [({bytes.fromhex(payload_sha256(entry)): "statement"}, b"bundle")]
