"""Optional Sigstore bundles attached to a release, verified offline with sigstore-python.

A CI workflow may sign the release statement (its canonical JSON bytes, as a blob) with
Sigstore keyless signing; the resulting bundle (Sigstore bundle spec v0.1-v0.3) is attached to
the release. This module checks such a bundle **offline**: against a pinned trusted root
loaded from a file (``TrustedRoot.from_file``, no TUF refresh, no network) and an identity
policy on the Fulcio certificate:

- the SAN (for GitHub Actions: ``https://github.com/OWNER/REPO/WORKFLOW_PATH@REF``) and the
  OIDC issuer (Fulcio extension 1.3.6.1.4.1.57264.1.1);
- optionally the source repository (1.3.6.1.4.1.57264.1.12, ``https://github.com/OWNER/REPO``)
  and source ref (1.3.6.1.4.1.57264.1.14), the Fulcio v2 GitHub extensions
  (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md).

sigstore's exceptions are mapped onto the one attestlog hierarchy with check ids:

| check id                       | class             | cause                                  |
|--------------------------------|-------------------|----------------------------------------|
| ``release.sigstore.root``      | TrustConfigError  | trusted root file unreadable/invalid   |
| ``release.sigstore.bundle``    | FormatError       | sigstore ``InvalidBundle``             |
| ``release.sigstore.identity``  | VerificationError | the identity policy refused the cert   |
| ``release.sigstore.certificate`` | ChainError      | the cert does not chain to the root    |
| ``release.sigstore.artifact``  | SignatureError    | wrong artifact / signature invalid     |
| ``release.sigstore.verify``    | VerificationError | any other failure (tlog, SCT, time...) |

The trust root is always a parameter; nothing here reads the clock or the network itself
(sigstore evaluates certificate validity at the bundle's verified signing time).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from transparency_log.common.errors import (
    ChainError,
    FormatError,
    SignatureError,
    TrustConfigError,
    VerificationError,
)

if TYPE_CHECKING:  # sigstore is imported by the functions that use it (issue 12, start-up)
    from cryptography.x509 import Certificate
    from sigstore.models import Bundle, TrustedRoot
    from sigstore.verify import policy

__all__ = [
    "GITHUB_ACTIONS_ISSUER",
    "SigstoreIdentity",
    "load_trusted_root",
    "parse_bundle",
    "signed_digest",
    "verify_blob_bundle",
    "verify_dsse_bundle",
]

GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
MAX_BUNDLE_SIZE = 1 << 20


@dataclass(frozen=True)
class SigstoreIdentity:
    """Who must have signed: SAN and issuer, optionally GitHub repository and ref."""

    san: str
    issuer: str
    repository: str | None = None  # "OWNER/REPO"
    ref: str | None = None  # "refs/tags/v1.2.3"

    @classmethod
    def github_actions(cls, repository: str, workflow: str, ref: str) -> SigstoreIdentity:
        """A GitHub Actions workflow identity: ``workflow`` is its path in the repository
        (``.github/workflows/release.yml``) and ``ref`` the git ref it ran on."""
        san = f"https://github.com/{repository}/{workflow}@{ref}"
        return cls(san, GITHUB_ACTIONS_ISSUER, repository, ref)

    def policy(self) -> policy.VerificationPolicy:
        from sigstore.verify import policy

        parts: list[policy.VerificationPolicy] = [
            policy.Identity(identity=self.san, issuer=self.issuer)]
        if self.repository is not None:
            parts.append(policy.OIDCSourceRepositoryURI(f"https://github.com/{self.repository}"))
        if self.ref is not None:
            parts.append(policy.OIDCSourceRepositoryRef(self.ref))
        return policy.AllOf(parts)


class _Recording:
    """Wraps a policy to tell an identity refusal apart from sigstore's other failures."""

    def __init__(self, inner: policy.VerificationPolicy) -> None:
        self.inner = inner
        self.failure: Exception | None = None

    def verify(self, cert: Certificate) -> None:
        try:
            self.inner.verify(cert)
        except Exception as err:
            self.failure = err
            raise


def load_trusted_root(path: Path | str) -> TrustedRoot:
    """Load a pinned Sigstore trusted root (``trusted_root.json``) from a file, offline."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import TrustedRoot

    try:
        return TrustedRoot.from_file(str(path))
    except (OSError, ValueError, SigstoreError) as err:
        raise TrustConfigError("release.sigstore.root", f"cannot load trusted root: {err}",
                               field=str(path)) from None


def parse_bundle(data: bytes) -> Bundle:
    """Parse a Sigstore bundle (JSON); FormatError ``release.sigstore.bundle`` if invalid."""
    from sigstore.models import Bundle, InvalidBundle

    if len(data) > MAX_BUNDLE_SIZE:
        raise FormatError("release.sigstore.bundle", "bundle too large", got=len(data),
                          want=f"<= {MAX_BUNDLE_SIZE}")
    try:
        return Bundle.from_json(data)
    except InvalidBundle as err:
        raise FormatError("release.sigstore.bundle", f"invalid bundle: {err}") from None
    except (ValueError, TypeError) as err:
        raise FormatError("release.sigstore.bundle", f"invalid bundle: {err}") from None


def signed_digest(bundle: bytes) -> bytes:
    """The SHA-256 a message-signature bundle says it signs (``messageSignature.messageDigest``,
    Sigstore bundle spec v0.1-v0.3), read without verifying anything: it tells which of a
    release's digests the bundle is meant for; :func:`verify_blob_bundle` then checks the
    signature over exactly that digest. FormatError ``release.sigstore.bundle`` for a malformed
    bundle, a DSSE bundle (it signs no artifact digest) or a digest other than SHA-256."""
    parse_bundle(bundle)
    doc = json.loads(bundle)
    message = doc.get("messageSignature") if isinstance(doc, dict) else None
    digest = message.get("messageDigest") if isinstance(message, dict) else None
    if not isinstance(digest, dict):
        raise FormatError("release.sigstore.bundle", "not a message-signature bundle (a DSSE "
                          "bundle signs no artifact digest)",
                          field="messageSignature.messageDigest", want="present")
    if digest.get("algorithm") != "SHA2_256":
        raise FormatError("release.sigstore.bundle", "unsupported digest algorithm",
                          field="messageSignature.messageDigest.algorithm",
                          got=str(digest.get("algorithm"))[:32], want="SHA2_256")
    try:
        raw = base64.b64decode(str(digest.get("digest")), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != hashlib.sha256().digest_size:
        raise FormatError("release.sigstore.bundle", "not a base64 SHA-256 digest",
                          field="messageSignature.messageDigest.digest", want="32 bytes")
    return raw


def _raise_mapped(err: Exception, recorder: _Recording, identity: SigstoreIdentity) -> None:
    from sigstore.errors import CertValidationError
    from sigstore.models import InvalidBundle

    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if recorder.failure is not None:
        raise VerificationError("release.sigstore.identity",
                                f"signer identity refused: {text}", field="certificate",
                                want=identity.san) from None
    if isinstance(err, InvalidBundle):
        raise FormatError("release.sigstore.bundle", f"invalid bundle: {text}") from None
    if isinstance(err, CertValidationError):
        raise ChainError("release.sigstore.certificate",
                         f"signing certificate does not chain to the trusted root: {text}"
                         ) from None
    if "digest mismatch" in text or "Signature is invalid" in text:
        raise SignatureError("release.sigstore.artifact",
                             f"bundle does not sign this artifact: {text}") from None
    raise VerificationError("release.sigstore.verify", f"bundle does not verify: {text}"
                            ) from None


def verify_blob_bundle(bundle: bytes, root: TrustedRoot, identity: SigstoreIdentity, *,
                       artifact: bytes | None = None,
                       artifact_sha256: bytes | None = None) -> str:
    """Verify a bundle that signs a blob (the artifact's bytes, or its SHA-256).

    Returns the verified certificate SAN. Raises per the module table.
    """
    from sigstore.errors import Error as SigstoreError
    from sigstore.errors import VerificationError as SigstoreVerificationError
    from sigstore.hashes import Hashed
    from sigstore.verify import Verifier
    from sigstore_models.common.v1 import HashAlgorithm

    if (artifact is None) == (artifact_sha256 is None):
        raise ValueError("give exactly one of artifact and artifact_sha256")
    digest = artifact_sha256 if artifact is None else hashlib.sha256(artifact).digest()
    hashed = Hashed(algorithm=HashAlgorithm.SHA2_256, digest=digest)
    parsed = parse_bundle(bundle)
    recorder = _Recording(identity.policy())
    try:
        Verifier(trusted_root=root).verify_artifact(hashed, parsed, recorder)
    except (SigstoreVerificationError, SigstoreError, ValueError) as err:
        _raise_mapped(err, recorder, identity)
    return identity.san


def verify_dsse_bundle(bundle: bytes, root: TrustedRoot,
                       identity: SigstoreIdentity) -> tuple[str, bytes]:
    """Verify a bundle holding a DSSE envelope; returns ``(payload_type, payload)``."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.errors import VerificationError as SigstoreVerificationError
    from sigstore.verify import Verifier

    parsed = parse_bundle(bundle)
    recorder = _Recording(identity.policy())
    try:
        return Verifier(trusted_root=root).verify_dsse(parsed, recorder)
    except (SigstoreVerificationError, SigstoreError, ValueError) as err:
        _raise_mapped(err, recorder, identity)
        raise  # unreachable: _raise_mapped always raises
