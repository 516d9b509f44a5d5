"""Sigstore bundles verified offline (tests/vectors/sigstore, see its MANIFEST.md)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from attest.release.sigstore_binding import sigstore_targets
from attest.release.sigstore_check import (
    GITHUB_ACTIONS_ISSUER,
    SigstoreIdentity,
    load_trusted_root,
    parse_bundle,
    signed_digest,
    verify_blob_bundle,
    verify_dsse_bundle,
)
from tests.support.vectors import vector_path
from transparency_log.common.errors import (
    ChainError,
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)

GH_OAUTH = "https://github.com/login/oauth"
WHEEL_SHA256 = bytes.fromhex("c4e92e9ecc828bef2aa7dba1de8ac983511f7532a0df11c770d39099a25cf201")
WHEEL_IDENTITY = SigstoreIdentity.github_actions(
    "trailofbits/rfc8785.py", ".github/workflows/release.yml", "refs/tags/v0.1.2")
BEACON = SigstoreIdentity.github_actions(
    "sigstore-conformance/extremely-dangerous-public-oidc-beacon",
    ".github/workflows/extremely-dangerous-oidc-beacon.yml", "refs/heads/main")


pytestmark = pytest.mark.usefixtures("no_network")  # the check runs offline


def root(env: str):
    return load_trusted_root(vector_path("sigstore", "trusted_root", f"{env}.trusted_root.json"))


def read(*parts: str) -> bytes:
    return vector_path("sigstore", *parts).read_bytes()


@pytest.mark.parametrize(
    ("bundle", "artifact", "identity"),
    [
        ("bundle.txt.sigstore", "bundle.txt", SigstoreIdentity("a@tny.town", GH_OAUTH)),
        ("bundle_v3.txt.sigstore", "bundle_v3.txt",
         SigstoreIdentity("william@yossarian.net", GH_OAUTH)),
        ("bundle_v3_alt.txt.sigstore", "bundle_v3_alt.txt",
         SigstoreIdentity("william@yossarian.net", GH_OAUTH)),
        ("staging-rekor-v2.txt.sigstore.json", "staging-rekor-v2.txt",
         SigstoreIdentity("jku@goto.fi", GH_OAUTH)),
    ],
)
def test_staging_blob_bundles_verify(bundle: str, artifact: str,
                                     identity: SigstoreIdentity) -> None:
    san = verify_blob_bundle(read("bundles", bundle), root("staging"), identity,
                             artifact=read("bundles", artifact))
    assert san == identity.san


def test_staging_dsse_bundle_verifies() -> None:
    payload_type, payload = verify_dsse_bundle(
        read("bundles", "a.dsse.staging-rekor-v2.txt.sigstore.json"), root("staging"), BEACON)
    assert payload_type == "application/vnd.in-toto+json"
    assert b"https://in-toto.io/Statement/v1" in payload


def test_github_actions_bundle_verifies_by_digest() -> None:
    assert WHEEL_IDENTITY.san == ("https://github.com/trailofbits/rfc8785.py/.github/workflows/"
                                  "release.yml@refs/tags/v0.1.2")
    assert WHEEL_IDENTITY.issuer == GITHUB_ACTIONS_ISSUER
    verify_blob_bundle(read("bundles", "bundle_v3_github.whl.sigstore"), root("production"),
                       WHEEL_IDENTITY, artifact_sha256=WHEEL_SHA256)


@pytest.mark.parametrize(
    "identity",
    [
        SigstoreIdentity.github_actions("trailofbits/rfc8785.py",
                                        ".github/workflows/release.yml", "refs/tags/v0.1.3"),
        SigstoreIdentity.github_actions("trailofbits/other",
                                        ".github/workflows/release.yml", "refs/tags/v0.1.2"),
        SigstoreIdentity.github_actions("trailofbits/rfc8785.py",
                                        ".github/workflows/ci.yml", "refs/tags/v0.1.2"),
        SigstoreIdentity(WHEEL_IDENTITY.san, GH_OAUTH),
        SigstoreIdentity(WHEEL_IDENTITY.san, GITHUB_ACTIONS_ISSUER, "trailofbits/other"),
        SigstoreIdentity(WHEEL_IDENTITY.san, GITHUB_ACTIONS_ISSUER, None, "refs/heads/main"),
    ],
    ids=["ref", "repository", "workflow", "issuer", "repository-ext", "ref-ext"],
)
def test_wrong_identity_fails(identity: SigstoreIdentity) -> None:
    with pytest.raises(VerificationError) as err:
        verify_blob_bundle(read("bundles", "bundle_v3_github.whl.sigstore"), root("production"),
                           identity, artifact_sha256=WHEEL_SHA256)
    assert err.value.check == "release.sigstore.identity"


def test_wrong_artifact_fails() -> None:
    with pytest.raises(SignatureError) as err:
        verify_blob_bundle(read("bundles", "bundle_v3.txt.sigstore"), root("staging"),
                           SigstoreIdentity("william@yossarian.net", GH_OAUTH),
                           artifact=read("bundles", "bundle.txt"))
    assert err.value.check == "release.sigstore.artifact"
    with pytest.raises(SignatureError):
        verify_blob_bundle(read("bundles", "bundle_v3_github.whl.sigstore"), root("production"),
                           WHEEL_IDENTITY, artifact_sha256=bytes(32))


def test_wrong_root_fails() -> None:
    with pytest.raises(ChainError) as err:
        verify_blob_bundle(read("bundles", "bundle_v3.txt.sigstore"), root("production"),
                           SigstoreIdentity("william@yossarian.net", GH_OAUTH),
                           artifact=read("bundles", "bundle_v3.txt"))
    assert err.value.check == "release.sigstore.certificate"


@pytest.mark.parametrize(
    ("bundle", "env"),
    [
        ("bundle_invalid_version.txt.sigstore", "staging"),
        ("bundle_no_cert_v1.txt.sigstore", "staging"),
        ("bundle_no_checkpoint.txt.sigstore", "staging"),
        ("bundle_no_log_entry.txt.sigstore", "staging"),
        ("bundle_v3_no_signed_time.txt.sigstore.json", "production"),
        ("Python-3.12.5.tgz.sigstore", "production"),
    ],
)
def test_invalid_bundles_are_format_errors(bundle: str, env: str) -> None:
    with pytest.raises(FormatError) as err:
        verify_blob_bundle(read("negative", bundle), root(env),
                           SigstoreIdentity("x@example.com", GH_OAUTH), artifact=b"x")
    assert err.value.check == "release.sigstore.bundle"


def test_cve_2022_36056_bundle_fails_verification() -> None:
    with pytest.raises(VerificationError) as err:
        verify_blob_bundle(read("negative", "bundle_cve_2022_36056.txt.sigstore"),
                           root("staging"), SigstoreIdentity("william@yossarian.net", GH_OAUTH),
                           artifact=read("negative", "bundle_cve_2022_36056.txt"))
    assert err.value.check == "release.sigstore.verify"
    assert "inconsistent" in err.value.message


def test_parse_bundle_refuses_garbage() -> None:
    for data in [b"", b"{}", b"not json", b"[1]"]:
        with pytest.raises(FormatError):
            parse_bundle(data)


def test_bad_trusted_root(tmp_path) -> None:
    bad = tmp_path / "root.json"
    bad.write_text("{}")
    with pytest.raises(TrustConfigError):
        load_trusted_root(bad)
    with pytest.raises(TrustConfigError):
        load_trusted_root(tmp_path / "missing.json")


def test_dsse_bundle_wrong_identity() -> None:
    with pytest.raises(VerificationError) as err:
        verify_dsse_bundle(read("bundles", "a.dsse.staging-rekor-v2.txt.sigstore.json"),
                           root("staging"), WHEEL_IDENTITY)
    assert err.value.check == "release.sigstore.identity"


# --- which digest a bundle signs, and which digests of a release it may sign -------------------


@pytest.mark.parametrize(("bundle", "artifact"), [
    ("bundle.txt.sigstore", "bundle.txt"),
    ("bundle_v3.txt.sigstore", "bundle_v3.txt"),
    ("staging-rekor-v2.txt.sigstore.json", "staging-rekor-v2.txt"),
])
def test_signed_digest_is_the_artifacts_sha256(bundle: str, artifact: str) -> None:
    assert signed_digest(read("bundles", bundle)) == hashlib.sha256(
        read("bundles", artifact)).digest()
    assert signed_digest(read("bundles", "bundle_v3_github.whl.sigstore")) == WHEEL_SHA256


def test_signed_digest_refuses_a_dsse_bundle_and_a_bad_digest() -> None:
    with pytest.raises(FormatError) as err:
        signed_digest(read("bundles", "a.dsse.staging-rekor-v2.txt.sigstore.json"))
    assert err.value.check == "release.sigstore.bundle"
    assert err.value.field == "messageSignature.messageDigest"
    doc = json.loads(read("bundles", "bundle_v3.txt.sigstore"))
    doc["messageSignature"]["messageDigest"]["digest"] = base64.b64encode(bytes(31)).decode()
    with pytest.raises(FormatError) as err:
        signed_digest(json.dumps(doc).encode())
    assert err.value.field == "messageSignature.messageDigest.digest"


def test_sigstore_targets_by_strength() -> None:
    from tests.support.release_samples import sample_release

    release = sample_release()
    payload = release.encode()
    statement = hashlib.sha256(payload).digest()
    assert sigstore_targets(payload, release, "statement") == {statement: "statement"}
    subject = sigstore_targets(payload, release, "subject")
    assert list(subject.values()) == ["statement", "subject inference-node.qcow2"]
    every = sigstore_targets(payload, release, "artifact")
    assert list(every)[:2] == list(subject)  # strongest first; the disk image is the subject
    assert every[release.artifacts[0].sha256] == "artifact firmware OVMF.fd"
    assert len(every) == 2 + len(release.artifacts) - 1
    with pytest.raises(ValueError):
        sigstore_targets(payload, release, "anything")
