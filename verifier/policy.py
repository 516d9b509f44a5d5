"""The client's policy file (docs/policy.md): one TOML file, fail-closed, hashed for the transcript.

Layout (docs/policy.md has every key, its type, default and the check it governs)::

    version = 1                              # required; any other value is refused
    unsafe_allow_simulated_hardware = false  # trust attest.simulate roots (tests, demos)
    waive = ["log.consistency"]              # checks that may be skipped when they cannot run
    [log]       origin, vkey, witness policy, max_checkpoint_age, revocations, ...
    [release]   accepted release keys, threshold; optional [release.sigstore] identity
    [evidence]  which evidence is required (cpu = one of, gpu_required, all_gpus_cc)
    [snp] [tdx] [gpu] ...                    # parsed by the module registered for them

Fail-closed (DESIGN.md "Policy"): an unknown key, an unknown table, a value of the wrong type,
an unknown waiver, or a table no module registered for is a :class:`TrustConfigError` (CLI
exit 4) naming the key. Evidence modules plug in with :func:`register_section`; a table for
a section nobody registered is refused rather than ignored, so a typo or a verifier built
without SNP support can never silently accept evidence it does not check.

:attr:`Policy.digest` is SHA-256 over the file's bytes exactly as read: the transcript
records it so a verdict names the policy it was reached under.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from difflib import get_close_matches
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from attest.release.keys import ReleasePublicKey
from attest.release.sigstore_binding import SIGNS
from attest.release.sigstore_check import SigstoreIdentity, load_trusted_root
from transparency_log.common.errors import TrustConfigError
from transparency_log.core.cosignature import CosignatureVerifier
from transparency_log.core.key_types import Verifier
from transparency_log.core.witness_policy import (
    WitnessPolicy,
    parse_witness_policy,
    policy_lists_log,
)
from verifier.policy_base import FailureCollector, StrictTable, unsafe_settings

if TYPE_CHECKING:  # sigstore is imported only when a policy names a trusted root (start-up)
    from sigstore.models import TrustedRoot

__all__ = [
    "CPU_EVIDENCE",
    "LOG_WAIVABLE",
    "MAX_POLICY_SIZE",
    "POLICY_VERSION",
    "REGISTRY",
    "EvidencePolicy",
    "LogPolicy",
    "Policy",
    "PolicyRegistry",
    "ReleasePolicy",
    "SectionParser",
    "SigstorePolicy",
    "load_policy",
    "load_section",
    "parse_policy",
    "register_section",
    "register_waivable",
    "validate_waivers",
]

POLICY_VERSION = 1
MAX_POLICY_SIZE = 1 << 20
CHECK_SCHEMA = "policy.schema"
CHECK_SYNTAX = "policy.syntax"
CHECK_VERSION = "policy.version"
CHECK_WAIVE = "policy.waive"
CHECK_LOG = "policy.log"
CHECK_RELEASE = "policy.release"

#: Log-half checks that may be waived, and only when they cannot run (verifier/checks.py).
LOG_WAIVABLE = ("log.consistency", "log.checkpoint.age", "release.revocations.unavailable")
#: CPU evidence kinds, as named in evidence bundles.
CPU_EVIDENCE = ("sev-snp", "tdx")
REVOCATION_MODES = ("mirror", "stapled")
#: The cap on ``log.max_checkpoint_age`` (s): 7 days. With ``revocations = "stapled"`` it is
#: how long a revoked build can still be accepted, and with a mirror how long a node may serve
#: an old view of the log; a week covers a long weekend of witness or log outage plus slack.
#: Longer only as ``unsafe_max_checkpoint_age`` (up to UNSAFE_MAX_CHECKPOINT_AGE), which
#: ``verifier policy check`` warns about.
MAX_CHECKPOINT_AGE = 7 * 86400
UNSAFE_MAX_CHECKPOINT_AGE = 10 * 366 * 86400
MAX_SKEW = 3600
DEFAULT_SKEW = 60
QUORUM_GROUP = "policy-quorum"

_RESERVED = frozenset({"version", "unsafe_allow_simulated_hardware", "waive", "log", "release",
                       "evidence"})
_SECTION_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_CHECK_ID = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)+")
_GITHUB_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")

SectionParser = Callable[[StrictTable], object]
"""Parses one evidence table, e.g. ``SnpPolicy.from_table``; TrustConfigError on bad input."""


# --------------------------------------------------------------------------------------------
# The registry of evidence sections and waivable checks


class PolicyRegistry:
    """Which top-level tables exist besides the built-in ones, and which checks are waivable."""

    def __init__(self) -> None:
        self._sections: dict[str, SectionParser] = {}
        self._waivable: set[str] = set(LOG_WAIVABLE)

    def register_section(self, name: str, parser: SectionParser, *,
                         waivable: Iterable[str] = ()) -> None:
        """Make ``[name]`` a valid table, parsed by ``parser``; add its waivable check ids.

        Registering the same parser twice is harmless; another parser for a taken name, a
        built-in name, or a malformed name is a ValueError (a programming error).
        """
        if not _SECTION_NAME.fullmatch(name) or name in _RESERVED:
            raise ValueError(f"invalid or reserved policy section name: {name!r}")
        current = self._sections.get(name)
        if current is not None and current != parser:
            raise ValueError(f"policy section [{name}] is already registered")
        self._sections[name] = parser
        self.register_waivable(*waivable)

    def register_waivable(self, *checks: str) -> None:
        """Allow ``waive = [...]`` to name these check ids."""
        for check in checks:
            if not _CHECK_ID.fullmatch(check):
                raise ValueError(f"invalid check id: {check!r}")
            self._waivable.add(check)

    @property
    def sections(self) -> Mapping[str, SectionParser]:
        return MappingProxyType(self._sections)

    @property
    def waivable(self) -> frozenset[str]:
        return frozenset(self._waivable)


REGISTRY = PolicyRegistry()
"""The process-wide registry that :func:`parse_policy` uses by default."""


def register_section(name: str, parser: SectionParser, *, waivable: Iterable[str] = ()) -> None:
    """Register an evidence table with the default :data:`REGISTRY`.

    Example (what verifier/snp wires in)::

        register_section("snp", SnpPolicy.from_table, waivable=["snp.vcek.crl"])
    """
    REGISTRY.register_section(name, parser, waivable=waivable)


def register_waivable(*checks: str) -> None:
    """Allow the default :data:`REGISTRY`'s policies to waive these check ids."""
    REGISTRY.register_waivable(*checks)


# --------------------------------------------------------------------------------------------
# [log]


def _error(check: str, message: str, field: str, got: Any = None,
           want: Any = None) -> TrustConfigError:
    return TrustConfigError(check, message, field=field, got=got, want=want)


def _int_in(t: StrictTable, where: str, key: str, lo: int, hi: int,
            default: Any = ...) -> int:
    value = t.get(key, int) if default is ... else t.get(key, int, default)
    if not lo <= value <= hi:
        raise _error(CHECK_SCHEMA, "out of range", f"{where}.{key}", got=value,
                     want=f"{lo}..{hi}")
    return value


def _witness_policy_from_list(vkeys: Sequence[str], quorum: int, log_vkey: str) -> WitnessPolicy:
    """Build the C2SP tlog-policy for ``witnesses = [...]`` + ``quorum = k``."""
    if not vkeys:
        raise _error(CHECK_LOG, "witnesses is empty (for unwitnessed checkpoints write "
                     'witness_policy = "quorum none")', "log.witnesses")
    if not 1 <= quorum <= len(vkeys):
        raise _error(CHECK_SCHEMA, "quorum out of range", "log.quorum", got=quorum,
                     want=f"1..{len(vkeys)}")
    lines = [f"log {log_vkey}"]
    names: list[str] = []
    for i, vkey in enumerate(vkeys):
        try:
            name = CosignatureVerifier(vkey).name
        except TrustConfigError as err:
            raise _error(CHECK_LOG, f"bad witness vkey: {err.message}", f"log.witnesses[{i}]",
                         got=err.got, want=err.want) from None
        if name in names or name in ("none", QUORUM_GROUP):
            raise _error(CHECK_LOG, "witness key names must be distinct (and not 'none')",
                         f"log.witnesses[{i}]", got=name)
        names.append(name)
        lines.append(f"witness {name} {vkey.strip()}")
    lines.append(f"group {QUORUM_GROUP} {quorum} {' '.join(names)}")
    lines.append(f"quorum {QUORUM_GROUP}")
    return _parse_tlog_policy("\n".join(lines) + "\n", "log.witnesses")


def _parse_tlog_policy(text: str, where: str) -> WitnessPolicy:
    try:
        return parse_witness_policy(text.encode("utf-8"))
    except TrustConfigError as err:
        inner = f" {err.field}" if err.field else ""
        raise _error(CHECK_LOG, f"bad witness policy: {err.message}", f"{where}{inner}",
                     got=err.got, want=err.want) from None


@dataclass(frozen=True)
class LogPolicy:
    """``[log]``: which log, whose cosignatures, how old a checkpoint may be."""

    origin: str
    vkey: str
    witness_policy: WitnessPolicy
    max_checkpoint_age: int  # seconds
    revocations: str = "mirror"  # or "stapled"
    max_cosignature_skew: int = DEFAULT_SKEW  # seconds a cosignature may lie in the future
    verifier: Verifier = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.verifier is None:
            object.__setattr__(self, "verifier", _log_verifier(self.vkey))

    @classmethod
    def from_table(cls, t: StrictTable) -> LogPolicy:
        origin = t.get("origin", str)
        if not origin or "\n" in origin or origin != origin.strip():
            raise _error(CHECK_SCHEMA, "origin must be one non-empty line", "log.origin",
                         got=origin)
        vkey = t.get("vkey", str)
        verifier = _log_verifier(vkey)
        inline = t.get("witness_policy", str, None)
        witnesses = t.get_list("witnesses", str, None)
        quorum = t.get("quorum", int, None)
        if inline is not None and (witnesses is not None or quorum is not None):
            raise _error(CHECK_LOG, "give either witness_policy or witnesses + quorum, not both",
                         "log.witness_policy")
        if inline is not None:
            text = inline if inline.endswith("\n") else inline + "\n"
            witness_policy = _parse_tlog_policy(text, "log.witness_policy")
            if witness_policy.logs and not policy_lists_log(witness_policy, verifier):
                raise _error(CHECK_LOG, "the witness policy lists logs but not log.vkey",
                             "log.witness_policy", want=vkey.strip())
        elif witnesses is not None and quorum is not None:
            witness_policy = _witness_policy_from_list(witnesses, quorum, vkey.strip())
        else:
            raise _error(CHECK_LOG, "no witness policy: give witness_policy (C2SP tlog-policy "
                         "text) or witnesses + quorum", "log.witness_policy")
        policy = cls(
            origin=origin,
            vkey=vkey.strip(),
            witness_policy=witness_policy,
            max_checkpoint_age=_checkpoint_age(t),
            revocations=_choice(t, "log", "revocations", REVOCATION_MODES, "mirror"),
            max_cosignature_skew=_int_in(t, "log", "max_cosignature_skew", 0, MAX_SKEW,
                                         DEFAULT_SKEW),
            verifier=verifier,
        )
        t.finish()
        return policy


def _checkpoint_age(t: StrictTable) -> int:
    """``max_checkpoint_age`` (1 s .. 7 days) or, beyond the cap, ``unsafe_max_checkpoint_age``
    (1 s .. 10 years): exactly one of them."""
    if t.get("unsafe_max_checkpoint_age", int, None) is None:
        age = t.get("max_checkpoint_age", int)
        if age > MAX_CHECKPOINT_AGE:
            raise _error(CHECK_SCHEMA, "above the 7-day cap on checkpoint age (a longer one "
                         "must be named unsafe_max_checkpoint_age)", "log.max_checkpoint_age",
                         got=age, want=f"1..{MAX_CHECKPOINT_AGE}")
        return _int_in(t, "log", "max_checkpoint_age", 1, MAX_CHECKPOINT_AGE)
    if t.get("max_checkpoint_age", int, None) is not None:
        raise _error(CHECK_SCHEMA, "give max_checkpoint_age or unsafe_max_checkpoint_age, "
                     "not both", "log.unsafe_max_checkpoint_age")
    return _int_in(t, "log", "unsafe_max_checkpoint_age", 1, UNSAFE_MAX_CHECKPOINT_AGE)


def _log_verifier(vkey: str) -> Verifier:
    try:
        return Verifier(vkey)
    except TrustConfigError as err:
        raise _error(CHECK_LOG, f"bad log vkey: {err.message}", "log.vkey", got=err.got,
                     want=err.want) from None


def _choice(t: StrictTable, where: str, key: str, choices: Sequence[str], default: str) -> str:
    value = t.get(key, str, default)
    if value not in choices:
        raise _error(CHECK_SCHEMA, "unknown value", f"{where}.{key}", got=value,
                     want=" | ".join(choices))
    return value


# --------------------------------------------------------------------------------------------
# [release]


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
        signs = _choice(t, "release.sigstore", "signs", SIGNS, "statement")
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
        threshold = _int_in(t, "release", "threshold", 1, len(keys), 1)
        sub = t.table("sigstore")
        sigstore = SigstorePolicy.from_table(sub, base_dir) if sub is not None else None
        t.finish()
        return cls(tuple(keys), threshold, sigstore)

    @property
    def keyids(self) -> tuple[str, ...]:
        return tuple(k.keyid for k in self.keys)


# --------------------------------------------------------------------------------------------
# [evidence]


@dataclass(frozen=True)
class EvidencePolicy:
    """``[evidence]``: which evidence a node must present.

    ``cpu``: the node must present at least one of these CPU TEE kinds; ``gpu_required``: at
    least one GPU; ``all_gpus_cc``: every GPU it presents is in confidential-computing mode.
    """

    cpu: tuple[str, ...] = CPU_EVIDENCE
    gpu_required: bool = True
    all_gpus_cc: bool = True

    @classmethod
    def from_table(cls, t: StrictTable) -> EvidencePolicy:
        cpu = t.get_list("cpu", str, list(CPU_EVIDENCE))
        if not cpu:
            raise _error(CHECK_SCHEMA, "cpu must name at least one CPU TEE", "evidence.cpu",
                         want=" | ".join(CPU_EVIDENCE))
        for i, kind in enumerate(cpu):
            if kind not in CPU_EVIDENCE:
                raise _error(CHECK_SCHEMA, "unknown CPU evidence kind", f"evidence.cpu[{i}]",
                             got=kind, want=" | ".join(CPU_EVIDENCE))
        if len(set(cpu)) != len(cpu):
            raise _error(CHECK_SCHEMA, "duplicate CPU evidence kind", "evidence.cpu")
        policy = cls(tuple(cpu), t.get("gpu_required", bool, True),
                     t.get("all_gpus_cc", bool, True))
        t.finish()
        return policy

    def check(self, cpu_kinds: Collection[str], gpu_cc_modes: Sequence[bool],
              failures: FailureCollector) -> None:
        """Add a failure for each unmet requirement (checks ``policy.evidence.*``).

        ``cpu_kinds``: the authentic CPU evidence kinds the node presented;
        ``gpu_cc_modes``: one bool per authentic GPU report, True when CC mode is on.
        """
        present = sorted(set(cpu_kinds) & set(self.cpu))
        failures.require(bool(present), "policy.evidence.cpu", "evidence kinds",
                         ", ".join(sorted(cpu_kinds)) or "none", "one of " + ", ".join(self.cpu))
        if self.gpu_required:
            failures.require(len(gpu_cc_modes) > 0, "policy.evidence.gpu", "GPU evidence items",
                             len(gpu_cc_modes), ">= 1")
        if self.all_gpus_cc:
            off = [str(i) for i, on in enumerate(gpu_cc_modes) if not on]
            failures.require(not off, "policy.evidence.gpu_cc", "GPU CC mode",
                             "off for GPU " + ", ".join(off), "on for every GPU")


# --------------------------------------------------------------------------------------------
# The whole file


@dataclass(frozen=True)
class Policy:
    """A parsed policy file. ``sections`` holds the registered evidence tables, parsed."""

    log: LogPolicy
    release: ReleasePolicy
    evidence: EvidencePolicy
    sections: Mapping[str, object]
    waive: frozenset[str]
    unsafe_allow_simulated_hardware: bool
    digest: bytes  # SHA-256 of the file's bytes
    version: int = POLICY_VERSION
    source: str | None = None
    warnings: tuple[str, ...] = ()  # what `verifier policy check` warns about (_warnings)

    def section(self, name: str) -> object | None:
        """The parsed ``[name]`` table (e.g. an SnpPolicy), or None when the file has none."""
        return self.sections.get(name)

    def waives(self, check: str) -> bool:
        return check in self.waive

    def with_waivers(self, extra: Iterable[str]) -> Policy:
        """This policy with more waivers (``--waive CHECK``, already validated), warned about
        like the file's own."""
        added = frozenset(extra) - self.waive
        if not added:
            return self
        waive = self.waive | added
        return replace(self, waive=waive,
                       sections=MappingProxyType(_apply_waivers(self.sections, waive)),
                       warnings=self.warnings + tuple(_waiver_warning(c) for c in sorted(added)))


def _decode(data: bytes, source: str) -> dict[str, Any]:
    if not isinstance(data, bytes | bytearray):
        raise _error(CHECK_SYNTAX, "policy must be bytes", source, got=type(data).__name__)
    if len(data) > MAX_POLICY_SIZE:
        raise _error(CHECK_SYNTAX, "policy file too large", source, got=len(data),
                     want=f"<= {MAX_POLICY_SIZE} bytes")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as err:
        raise _error(CHECK_SYNTAX, "policy file is not UTF-8", source,
                     got=f"byte offset {err.start}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _error(CHECK_SYNTAX, f"not valid TOML: {err}", source) from None


# Waivers that skipped a whole check, replaced by ones that cover only what cannot be had.
_RENAMED_WAIVERS = {
    "gpu.rim": "no longer waivable: waive gpu.rim.fetch (only a RIM that cannot be had is "
               "waived; a RIM at hand is still compared)",
}


def validate_waivers(items: Sequence[str], *, field: str = "waive",
                     registry: PolicyRegistry | None = None) -> frozenset[str]:
    """The one rule for every waiver, in a policy's ``waive`` list or a ``--waive`` option:
    only registered check ids (checks that may not run, or whose collateral may be stale;
    never authenticity), each once; anything else is a TrustConfigError naming it."""
    allowed = (registry if registry is not None else REGISTRY).waivable
    for i, check in enumerate(items):
        if check in _RENAMED_WAIVERS:
            raise _error(CHECK_WAIVE, _RENAMED_WAIVERS[check], f"{field}[{i}]", got=check)
        if check not in allowed:
            raise _error(CHECK_WAIVE, "this check cannot be waived (or does not exist)",
                         f"{field}[{i}]", got=check, want=" | ".join(sorted(allowed)))
    if len(set(items)) != len(items):
        raise _error(CHECK_WAIVE, "check waived twice", field)
    return frozenset(items)


def _waivers(t: StrictTable, registry: PolicyRegistry) -> frozenset[str]:
    return validate_waivers(t.get_list("waive", str, []), registry=registry)


def load_section(path: str, name: str, parse: Callable[[StrictTable], Any], *,
                 required: bool = True) -> tuple[Any, frozenset[str]]:
    """For the one-item commands (``verifier snp``/``tdx``/``gpu``), which read only their own
    table of a policy file: the parsed ``[name]`` table (None when absent and not
    ``required``) and the file's ``waive`` list."""
    try:
        doc = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as err:
        raise _error(CHECK_SYNTAX, f"not valid TOML: {err}", path) from None
    waive = validate_waivers(StrictTable(doc, "").get_list("waive", str, []))
    if name not in doc:
        if required:
            raise _error(CHECK_SCHEMA, f"policy has no [{name}] table", name)
        return None, waive
    return parse(StrictTable(doc[name], name)), waive




def _apply_waivers(sections: Mapping[str, object], waive: Collection[str]) -> dict[str, object]:
    out = dict(sections)
    return out


def _waiver_warning(check: str) -> str:
    return f"waiver: {check} is skipped when it cannot run (recorded as waived)"


def _warnings(doc: Mapping[str, Any], log: LogPolicy, waive: Iterable[str]) -> tuple[str, ...]:
    """Every setting that weakens verification: each ``unsafe_*`` key switched on, each
    waiver, and unwitnessed checkpoints (``quorum none``)."""
    out = [f"unsafe setting {s}" for s in unsafe_settings(doc)]
    out += [_waiver_warning(check) for check in sorted(waive)]
    if log.witness_policy.quorum == "none":
        out.append("log.witness_policy: quorum none accepts unwitnessed checkpoints "
                   "(nothing dates them: log.checkpoint.age cannot run)")
    return tuple(out)


def parse_policy(data: bytes, *, base_dir: Path | str | None = None,
                 registry: PolicyRegistry | None = None, source: str | None = None) -> Policy:
    """Parse a policy file's bytes strictly; TrustConfigError naming the key on any problem.

    ``base_dir`` resolves relative paths in the file (``release.sigstore.trusted_root``);
    :func:`load_policy` passes the file's directory.
    """
    registry = registry if registry is not None else REGISTRY
    where = source or "policy"
    doc = _decode(data, where)
    top = StrictTable(doc, "")
    version = top.get("version", int)
    if version != POLICY_VERSION:
        raise _error(CHECK_VERSION, "unsupported policy version", "version", got=version,
                     want=POLICY_VERSION)
    sections = registry.sections
    for key in sorted(doc):
        if key in _RESERVED or key in sections:
            continue
        if isinstance(doc[key], dict):
            raise _error(CHECK_SCHEMA, f"unknown section [{key}] (no verifier module is "
                         "registered for it)", key, want=" | ".join(
                             sorted({"log", "release", "evidence", *sections})))
        near = get_close_matches(key, sorted(_RESERVED | set(sections)), n=1, cutoff=0.75)
        raise _error(CHECK_SCHEMA, f"unknown key (did you mean {near[0]!r}?)" if near
                     else "unknown key", key)
    base = Path(base_dir) if base_dir is not None else Path()
    log_table = top.table("log")
    release_table = top.table("release")
    if log_table is None:
        raise _error(CHECK_SCHEMA, "required table missing", "log")
    if release_table is None:
        raise _error(CHECK_SCHEMA, "required table missing", "release")
    log = LogPolicy.from_table(log_table)
    release = ReleasePolicy.from_table(release_table, base)
    evidence_table = top.table("evidence")
    evidence = (EvidencePolicy.from_table(evidence_table) if evidence_table is not None
                else EvidencePolicy())
    parsed: dict[str, object] = {}
    for name, parser in sorted(sections.items()):
        table = top.table(name)
        if table is not None:
            parsed[name] = parser(table)
            table.finish()
    unsafe = top.get("unsafe_allow_simulated_hardware", bool, False)
    waive = _waivers(top, registry)
    top.finish()
    return Policy(log=log, release=release, evidence=evidence,
                  sections=MappingProxyType(_apply_waivers(parsed, waive)), waive=waive,
                  unsafe_allow_simulated_hardware=unsafe,
                  digest=hashlib.sha256(bytes(data)).digest(), version=version, source=source,
                  warnings=_warnings(doc, log, waive))


def load_policy(path: Path | str, *, registry: PolicyRegistry | None = None) -> Policy:
    """Read and parse a policy file; relative paths in it are relative to its directory."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise _error(CHECK_SYNTAX, f"cannot read policy file: {err.strerror}", str(path)) from None
    return parse_policy(data, base_dir=path.parent, registry=registry, source=str(path))


# The evidence sections register their own tables (DESIGN.md: one policy file, fail-closed).
from verifier.gpu.policy import GpuPolicy  # noqa: E402
from verifier.snp.policy import SnpPolicy  # noqa: E402
from verifier.tdx.collateral import STALE_WAIVABLE  # noqa: E402
from verifier.tdx.policy import TdxPolicy  # noqa: E402

# The waivable check ids (docs/policy.md, "Waivers"): checks that cannot run or whose
# collateral is stale, never authenticity. snp.crl: only when it cannot run (no CRL stapled,
# offline); tdx.*_crl.validity: a CRL past its nextUpdate (signature and revocation still
# checked); gpu.ocsp: a device certificate with no OCSP answer to be had (any answer had is
# verified); gpu.rim.fetch: a RIM that cannot be had (a RIM at hand is still compared).
register_section("snp", SnpPolicy.from_table, waivable=["snp.crl"])
register_section("tdx", TdxPolicy.from_table,
                 waivable=[f"tdx.{item}.validity" for item in STALE_WAIVABLE])
register_section("gpu", GpuPolicy.from_table, waivable=["gpu.ocsp", "gpu.rim.fetch"])
