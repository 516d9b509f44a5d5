"""The Sigstore bundles a node staples with its release (docs/operations.md, "Node agent";
docs/formats.md, "Evidence bundle (CBOR)" ``sigstore_bundle``).

``[release] sigstore_bundles = "DIR"`` in the agent config names a folder of Sigstore bundles
(``*.sigstore.json``, as ``attest publish --sigstore-bundle`` writes them next to the release
entry). At boot each is read and the digest it signs is taken from it
(:func:`attest.release.sigstore_check.signed_digest`); a file that is not a message-signature
bundle stops the boot (TrustConfigError ``agent.sigstore``). For whichever release the agent
staples, :meth:`SigstoreStaple.for_entry` picks the bundle over the strongest of the release's
digests (the statement, then a subject, then an artifact:
:func:`attest.release.sigstore_binding.sigstore_targets`). The agent verifies nothing else:
the client's ``release.sigstore`` check judges the signature, the identity and the binding
under its own policy. A release with no matching bundle is served without one (logged): a
client that requires provenance then refuses the node with ``release.sigstore``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from attest.formats.bundle import MAX_SIGSTORE_BUNDLE
from attest.release.dsse import parse_entry
from attest.release.sigstore_binding import sigstore_targets
from attest.release.sigstore_check import signed_digest
from attest.release.statement import Release, parse_statement
from transparency_log.common.errors import AttestlogError, TrustConfigError

__all__ = ["CHECK", "MAX_FILES", "SUFFIX", "SigstoreStaple"]

log = logging.getLogger("attest.agent")
CHECK = "agent.sigstore"
SUFFIX = ".sigstore.json"
MAX_FILES = 256


@dataclass
class SigstoreStaple:
    """Sigstore bundles by the SHA-256 they sign; see the module docstring."""

    by_digest: dict[bytes, bytes]
    _chosen: dict[bytes, bytes | None] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, directory: Path) -> SigstoreStaple:
        """Read every ``*.sigstore.json`` in ``directory`` (TrustConfigError when unreadable,
        malformed, over :data:`MAX_SIGSTORE_BUNDLE` bytes, or more than :data:`MAX_FILES`)."""
        try:
            files = sorted(p for p in directory.iterdir() if p.name.endswith(SUFFIX))
        except OSError as err:
            raise TrustConfigError(CHECK, f"cannot read the folder: {err}",
                                   field="release.sigstore_bundles", got=str(directory)) from None
        if len(files) > MAX_FILES:
            raise TrustConfigError(CHECK, "too many Sigstore bundles",
                                   field="release.sigstore_bundles", got=len(files),
                                   want=f"<= {MAX_FILES}")
        by_digest: dict[bytes, bytes] = {}
        for path in files:
            try:
                data = path.read_bytes()
            except OSError as err:
                raise TrustConfigError(CHECK, f"cannot read: {err}", field=str(path)) from None
            if not 0 < len(data) <= MAX_SIGSTORE_BUNDLE:
                raise TrustConfigError(CHECK, "wrong size for a stapled Sigstore bundle",
                                       field=str(path), got=len(data),
                                       want=f"1..{MAX_SIGSTORE_BUNDLE}")
            try:
                digest = signed_digest(data)
            except AttestlogError as err:
                raise TrustConfigError(CHECK, f"not a Sigstore message-signature bundle: "
                                       f"{err}", field=str(path)) from None
            by_digest.setdefault(digest, data)
        return cls(by_digest)

    def for_entry(self, entry: bytes) -> bytes | None:
        """The bundle to staple with the release ``entry`` (None: none signs its digests;
        logged once per entry)."""
        with self._lock:
            if entry not in self._chosen:
                self._chosen[entry] = self._choose(entry)
            return self._chosen[entry]

    def _choose(self, entry: bytes) -> bytes | None:
        try:
            payload = parse_entry(entry).payload
            release = parse_statement(payload)
        except AttestlogError as err:
            log.warning("no Sigstore bundle stapled: the release entry does not parse: %s", err)
            return None
        if not isinstance(release, Release):
            return None
        for digest, what in sigstore_targets(payload, release, "artifact").items():
            if digest in self.by_digest:
                log.info("stapling the Sigstore bundle over the release's %s", what)
                return self.by_digest[digest]
        log.warning("NO SIGSTORE BUNDLE for this release (none of %d bundles signs its "
                    "statement, subjects or artifacts): clients that require provenance will "
                    "refuse this node (release.sigstore)", len(self.by_digest))
        return None
