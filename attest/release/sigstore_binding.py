"""Which digests of a release a Sigstore bundle may sign (docs/formats.md, "Optional Sigstore
bundle"; docs/policy.md ``[release.sigstore] signs``).

A Sigstore bundle proves that a CI identity signed one SHA-256 digest. It is provenance for a
release only if that digest is the release's: the statement itself (SHA-256 of the DSSE
payload, the bytes the release keys sign) or a digest the statement lists (its subjects, the
images, or its predicate's artifacts). The statement binding is the strongest: it covers the
measurements. A subject or artifact binding says "the CI identity built an artifact this
release names"; the release keys vouch for the rest.

:func:`sigstore_targets` lists them in that order of strength, up to the weakest binding a
policy accepts (``signs``): ``"statement"`` only the statement; ``"subject"`` also each
subject; ``"artifact"`` also each predicate artifact. The node agent staples the strongest
bundle it has; the verifier refuses a bundle whose digest is not among the targets.
"""

from __future__ import annotations

import hashlib

from attest.release.statement import Release

__all__ = ["SIGNS", "sigstore_targets"]

SIGNS = ("statement", "subject", "artifact")


def sigstore_targets(payload: bytes, release: Release, signs: str = "artifact",
                     ) -> dict[bytes, str]:
    """Digest -> what it is (``statement``, ``subject NAME``, ``artifact KIND NAME``), in order
    of strength, for a release whose DSSE payload is ``payload``; see the module docstring."""
    if signs not in SIGNS:
        raise ValueError(f"signs must be one of {SIGNS}, got {signs!r}")
    targets = {hashlib.sha256(payload).digest(): "statement"}
    if signs in ("subject", "artifact"):
        for s in release.subjects:
            targets.setdefault(s.sha256, f"subject {s.name}")
    if signs == "artifact":
        for a in release.artifacts:
            targets.setdefault(a.sha256, f"artifact {a.kind} {a.name}")
    return targets
