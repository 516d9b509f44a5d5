"""``[release]`` of the policy file (docs/policy.md, "[release]"): the accepted release
signers, how many must sign, and optionally the CI identity (``[release.sigstore]``) that must
have signed each release statement."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from attest.release.keys import ReleasePublicKey
from attest.release.sigstore_binding import SIGNS
from attest.release.sigstore_check import SigstoreIdentity, load_trusted_root
from transparency_log.common.errors import TrustConfigError
from verifier.policy_base import CHECK_SCHEMA, StrictTable, choice, config_error, int_in

if TYPE_CHECKING:  # sigstore is imported only when a policy names a trusted root (start-up)
    from sigstore.models import TrustedRoot

__all__ = ["CHECK_RELEASE", "ReleasePolicy", "SigstorePolicy"]

CHECK_RELEASE = "policy.release"
_GITHUB_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_error = config_error


@dataclass(frozen=True)
class SigstorePolicy:
    """``[release.sigstore]``: the CI identity that must have signed each release statement
    (or, with ``signs``, a digest the statement lists: attest/release/sigstore_binding.py)."""

    repository: str  # OWNER/REPO
    workflow: str  # .github/workflows/release.yml
    ref: str  # refs/tags/...
    trusted_root_path: Path
    trusted_root: TrustedRoot = field(compare=False, repr=False)
    signs: str = "statement"  # the weakest binding accepted: statement | subject | artifact

    @property
    def identity(self) -> SigstoreIdentity:
        return SigstoreIdentity.github_actions(self.repository, self.workflow, self.ref)

    @classmethod
    def from_table(cls, t: StrictTable, base_dir: Path) -> SigstorePolicy:
        repository = t.get("repository", str)
        if not _GITHUB_REPO.fullmatch(repository):
            raise _error(CHECK_SCHEMA, "repository must be OWNER/REPO",
                         "release.sigstore.repository", got=repository)
        workflow = t.get("workflow", str)
        if not workflow.startswith(".github/workflows/") or any(c.isspace() for c in workflow):
            raise _error(CHECK_SCHEMA, "workflow must be a path under .github/workflows/",
                         "release.sigstore.workflow", got=workflow)
        ref = t.get("ref", str)
        if not ref.startswith("refs/") or any(c.isspace() for c in ref):
            raise _error(CHECK_SCHEMA, "ref must be a full git ref (refs/...)",
                         "release.sigstore.ref", got=ref)
        root_path = base_dir / t.get("trusted_root", str)
        signs = choice(t, "release.sigstore", "signs", SIGNS, "statement")
        t.finish()
        try:
            root = load_trusted_root(root_path)
        except TrustConfigError as err:
            raise _error(CHECK_RELEASE, err.message, "release.sigstore.trusted_root",
                         got=str(root_path)) from None
        return cls(repository, workflow, ref, root_path, root, signs)


@dataclass(frozen=True)
class ReleasePolicy:
    """``[release]``: accepted release signers, how many must sign, optional Sigstore."""

    keys: tuple[ReleasePublicKey, ...]
    threshold: int = 1
    sigstore: SigstorePolicy | None = None

    @classmethod
    def from_table(cls, t: StrictTable, base_dir: Path) -> ReleasePolicy:
        texts = t.get_list("keys", str)
        if not texts:
            raise _error(CHECK_RELEASE, "no accepted release key", "release.keys")
        keys: list[ReleasePublicKey] = []
        for i, text in enumerate(texts):
            try:
                key = ReleasePublicKey.from_text(text.strip() + "\n")
            except TrustConfigError as err:
                raise _error(CHECK_RELEASE, err.message, f"release.keys[{i}]", got=err.got,
                             want=err.want) from None
            if any(k.keyid == key.keyid for k in keys):
                raise _error(CHECK_RELEASE, "duplicate release key", f"release.keys[{i}]",
                             got=key.keyid)
            keys.append(key)
        threshold = int_in(t, "release", "threshold", 1, len(keys), 1)
        sub = t.table("sigstore")
        sigstore = SigstorePolicy.from_table(sub, base_dir) if sub is not None else None
        t.finish()
        return cls(tuple(keys), threshold, sigstore)

    @property
    def keyids(self) -> tuple[str, ...]:
        return tuple(k.keyid for k in self.keys)
