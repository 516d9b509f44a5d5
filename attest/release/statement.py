"""Release and revocation statements: in-toto Statement v1 with attestlog predicates.

in-toto Attestation Framework, Statement layer v1
(https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md)::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": NAME, "digest": {"sha256": HEX}}],
     "predicateType": URI,
     "predicate": {...}}

attestlog defines two predicate types (docs/formats.md, "Release entries"):

- :data:`RELEASE_PREDICATE_TYPE`: the build's source, builder, artifacts (sha256) and the
  expected measurements (SNP launch MEASUREMENT per vCPU configuration, TDX MRTD/RTMR0-2,
  allowed GPU driver and VBIOS versions). The subject is the image (name + sha256).
- :data:`REVOCATION_PREDICATE_TYPE`: the one subject names what is revoked, and the
  predicate gives the reason (docs/formats.md, "Revocation predicate"):

  - a release **statement** (name :data:`REVOKED_STATEMENT_NAME`, digest ``sha256`` = the
    SHA-256 of the release's DSSE payload, :func:`attest.release.dsse.statement_digest`):
    every log entry carrying that statement is revoked, whatever signatures surround it;
  - a build **measurement** (name :data:`REVOKED_MEASUREMENT_NAME`, digest ``sha384`` = a
    48-byte launch measurement): every release that lists it
    (:meth:`attest.release.measurements.Measurements.listed`) is revoked, including releases
    logged later.

Statements are written and read as RFC 8785 canonical JSON with only integers and strings
(:mod:`attest.release.canonical_json`). Parsing is strict: unknown or missing fields, wrong
types, hex of the wrong size or case, duplicates and over-cap lists are FormatErrors
(check ``release.statement``) naming the field by its dotted path. Hex is lowercase.

A log entry is at most :data:`MAX_ENTRY_SIZE` bytes; a statement whose canonical JSON is
larger is refused (large material, e.g. a full event log, is referenced by digest as an
artifact). The DSSE envelope around it is checked against the same cap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from attest.release import canonical_json
from attest.release.json_fields import as_object
from attest.release.measurements import CHECK, MEASUREMENT_SIZE, SHA256_SIZE, Measurements
from attest.release.measurements import statement_error as _fail
from transparency_log.common.errors import FormatError
from transparency_log.common.parse_cache import parse_once

__all__ = [
    "ARTIFACT_KINDS",
    "MAX_ENTRY_SIZE",
    "RELEASE_PREDICATE_TYPE",
    "REVOCATION_PREDICATE_TYPE",
    "REVOKED_MEASUREMENT_NAME",
    "REVOKED_STATEMENT_NAME",
    "REVOKES_MEASUREMENT",
    "REVOKES_STATEMENT",
    "STATEMENT_TYPE",
    "Artifact",
    "Release",
    "Revocation",
    "Subject",
    "parse_statement",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
RELEASE_PREDICATE_TYPE = "https://attestlog.dev/release/v1"
REVOCATION_PREDICATE_TYPE = "https://attestlog.dev/revocation/v2"
REVOKED_STATEMENT_NAME = "attestlog-release-statement"
REVOKED_MEASUREMENT_NAME = "attestlog-measurement"

#: A log entry (the DSSE envelope's canonical JSON) is at most this many bytes.
MAX_ENTRY_SIZE = 65535

ARTIFACT_KINDS = ("firmware", "kernel", "initrd", "cmdline", "disk", "other")


MAX_SUBJECTS = 16
MAX_ARTIFACTS = 64
MAX_REASON = 1024

_NAME = re.compile(r"[\x21-\x7e][\x20-\x7e]*")  # printable ASCII, no leading space
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_URI = re.compile(r"[a-z][a-z0-9+.-]*:[\x21-\x7e]+")


@dataclass(frozen=True)
class Subject:
    """An in-toto ResourceDescriptor restricted to ``{name, digest: {sha256}}``."""

    name: str
    sha256: bytes

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "digest": {"sha256": self.sha256.hex()}}

    @classmethod
    def from_json(cls, value: Any, path: str) -> Subject:
        f = as_object(value, path, CHECK)
        name = f.string("name", max_len=256, pattern=_NAME)
        digest = f.object("digest")
        sha256 = digest.hex("sha256", size=SHA256_SIZE)
        digest.finish()
        f.finish()
        return cls(name, sha256)


@dataclass(frozen=True)
class Artifact:
    """One build artifact: what it is (``kind``), its file name and its SHA-256."""

    kind: str
    name: str
    sha256: bytes

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "sha256": self.sha256.hex()}

    @classmethod
    def from_json(cls, value: Any, path: str) -> Artifact:
        f = as_object(value, path, CHECK)
        out = cls(f.string("kind", choices=ARTIFACT_KINDS),
                  f.string("name", max_len=256, pattern=_NAME),
                  f.hex("sha256", size=SHA256_SIZE))
        f.finish()
        return out


def _statement(subjects: tuple[Subject, ...], predicate_type: str,
               predicate: dict[str, Any]) -> dict[str, Any]:
    return {"_type": STATEMENT_TYPE, "subject": [s.to_json() for s in subjects],
            "predicateType": predicate_type, "predicate": predicate}


def _encode_checked(value: dict[str, Any]) -> bytes:
    """Canonical JSON, refused over MAX_ENTRY_SIZE, and re-parsed with the strict parser so
    that nothing is ever signed that a reader would refuse (e.g. a Subject built in code with
    a bad name)."""
    data = canonical_json.encode(value)
    if len(data) > MAX_ENTRY_SIZE:
        raise FormatError("release.entry.size", "statement larger than a log entry",
                          got=len(data), want=f"<= {MAX_ENTRY_SIZE}")
    parse_statement(data)
    return data


@dataclass(frozen=True)
class Release:
    """A release statement (predicate type :data:`RELEASE_PREDICATE_TYPE`)."""

    subjects: tuple[Subject, ...]
    repository: str
    commit: str
    builder: str
    artifacts: tuple[Artifact, ...]
    measurements: Measurements

    predicate_type = RELEASE_PREDICATE_TYPE

    def __post_init__(self) -> None:
        if not 1 <= len(self.subjects) <= MAX_SUBJECTS:
            raise _fail("wrong number of subjects", "subject", got=len(self.subjects),
                        want=f"1..{MAX_SUBJECTS}")
        if len(self.artifacts) > MAX_ARTIFACTS:
            raise _fail("too many artifacts", "predicate.artifacts", got=len(self.artifacts),
                        want=f"<= {MAX_ARTIFACTS}")
        if len({a.name for a in self.artifacts}) != len(self.artifacts):
            raise _fail("duplicate artifact name", "predicate.artifacts")
        self.measurements.validate("predicate.measurements")

    def predicate(self) -> dict[str, Any]:
        return {"source": {"repository": self.repository, "commit": self.commit},
                "builder": {"id": self.builder},
                "artifacts": [a.to_json() for a in self.artifacts],
                "measurements": self.measurements.to_json()}

    def to_json(self) -> dict[str, Any]:
        return _statement(self.subjects, RELEASE_PREDICATE_TYPE, self.predicate())

    def encode(self) -> bytes:
        """Canonical JSON (RFC 8785) of the statement; FormatError over MAX_ENTRY_SIZE."""
        return _encode_checked(self.to_json())

    @classmethod
    def from_predicate(cls, subjects: tuple[Subject, ...], value: Any) -> Release:
        f = as_object(value, "predicate", CHECK)
        src = f.object("source")
        repository = src.string("repository", max_len=512, pattern=_URI)
        commit = src.string("commit", pattern=_COMMIT)
        src.finish()
        bld = f.object("builder")
        builder = bld.string("id", max_len=512, pattern=_URI)
        bld.finish()
        items = f.list("artifacts", max_items=MAX_ARTIFACTS)
        artifacts = tuple(Artifact.from_json(v, f"predicate.artifacts[{i}]")
                          for i, v in enumerate(items))
        measurements = Measurements.from_json(f.raw("measurements"), "predicate.measurements")
        f.finish()
        return cls(subjects, repository, commit, builder, artifacts, measurements)


REVOKES_STATEMENT = "statement"
REVOKES_MEASUREMENT = "measurement"
_REVOKED = {  # what a revocation names -> (subject name, digest algorithm, size)
    REVOKES_STATEMENT: (REVOKED_STATEMENT_NAME, "sha256", SHA256_SIZE),
    REVOKES_MEASUREMENT: (REVOKED_MEASUREMENT_NAME, "sha384", MEASUREMENT_SIZE),
}


@dataclass(frozen=True)
class Revocation:
    """A revocation statement: what it revokes (``target`` is :data:`REVOKES_STATEMENT` or
    :data:`REVOKES_MEASUREMENT`), the revoked digest or measurement, and a reason.

    Build one with :meth:`of_statement` or :meth:`of_measurement`.
    """

    target: str
    value: bytes
    reason: str

    predicate_type = REVOCATION_PREDICATE_TYPE

    def __post_init__(self) -> None:
        if self.target not in _REVOKED:
            raise _fail("unknown revocation target", "subject[0].name", got=self.target,
                        want=sorted(_REVOKED))
        _, alg, size = _REVOKED[self.target]
        if len(self.value) != size:
            raise _fail("wrong digest size", f"subject[0].digest.{alg}", got=len(self.value),
                        want=size)
        if not 0 < len(self.reason) <= MAX_REASON:
            raise _fail("reason length out of range", "predicate.reason", got=len(self.reason),
                        want=f"1..{MAX_REASON}")

    @classmethod
    def of_statement(cls, statement_digest: bytes, reason: str) -> Revocation:
        """Revoke a release statement (SHA-256 of its DSSE payload), in whatever entry."""
        return cls(REVOKES_STATEMENT, statement_digest, reason)

    @classmethod
    def of_measurement(cls, measurement: bytes, reason: str) -> Revocation:
        """Revoke a build: every release listing this 48-byte measurement, now or later."""
        return cls(REVOKES_MEASUREMENT, measurement, reason)

    def revokes(self, statement_digest: bytes, release: Release) -> bool:
        """Whether this revokes ``release``, whose DSSE payload has ``statement_digest``."""
        if self.target == REVOKES_STATEMENT:
            return self.value == statement_digest
        return self.value in release.measurements.listed()

    def describe(self) -> str:
        """``statement sha256:HEX`` or ``measurement sha384:HEX``."""
        return f"{self.target} {_REVOKED[self.target][1]}:{self.value.hex()}"

    def to_json(self) -> dict[str, Any]:
        name, alg, _ = _REVOKED[self.target]
        return {"_type": STATEMENT_TYPE,
                "subject": [{"name": name, "digest": {alg: self.value.hex()}}],
                "predicateType": REVOCATION_PREDICATE_TYPE,
                "predicate": {"reason": self.reason}}

    def encode(self) -> bytes:
        return _encode_checked(self.to_json())

    @classmethod
    def from_json(cls, subjects: list[Any], value: Any) -> Revocation:
        if len(subjects) != 1:
            raise _fail("a revocation has exactly one subject", "subject", got=len(subjects),
                        want=1)
        s = as_object(subjects[0], "subject[0]", CHECK)
        name = s.string("name", max_len=64)
        by_name = {v[0]: k for k, v in _REVOKED.items()}
        if name not in by_name:
            raise _fail("unknown revoked subject", "subject[0].name", got=name,
                        want=sorted(by_name))
        target = by_name[name]
        _, alg, size = _REVOKED[target]
        digest = s.object("digest")
        revoked = digest.hex(alg, size=size)
        digest.finish()
        s.finish()
        f = as_object(value, "predicate", CHECK)
        reason = f.string("reason", max_len=MAX_REASON)
        f.finish()
        return cls(target, revoked, reason)


@parse_once(max_entries=1024, max_input=MAX_ENTRY_SIZE)
def parse_statement(data: bytes) -> Release | Revocation:
    """Parse a statement's canonical JSON bytes strictly (FormatError on anything else).
    A statement parsed before is not parsed again (:mod:`transparency_log.common.parse_cache`)."""
    if len(data) > MAX_ENTRY_SIZE:
        raise FormatError("release.entry.size", "statement larger than a log entry",
                          got=len(data), want=f"<= {MAX_ENTRY_SIZE}")
    f = as_object(canonical_json.decode(data), "", CHECK)
    f.string("_type", choices=(STATEMENT_TYPE,))
    items = f.list("subject", max_items=MAX_SUBJECTS, min_items=1)
    kind = f.string("predicateType", choices=(RELEASE_PREDICATE_TYPE, REVOCATION_PREDICATE_TYPE))
    predicate = f.raw("predicate")
    f.finish()
    if kind == REVOCATION_PREDICATE_TYPE:
        return Revocation.from_json(items, predicate)
    subjects = tuple(Subject.from_json(v, f"subject[{i}]") for i, v in enumerate(items))
    return Release.from_predicate(subjects, predicate)
