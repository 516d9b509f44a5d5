"""The client's policy file (docs/policy.md): one TOML file, fail-closed, hashed for the transcript.

Layout (docs/policy.md has every key, its type, default and the check it governs)::

    version = 1                              # required; any other value is refused
    unsafe_allow_simulated_hardware = false  # trust attest.simulate roots (tests, demos)
    waive = ["log.consistency"]              # checks that may be skipped when they cannot run
    [log]       origin, vkey, witness policy, max_checkpoint_age, revocations, ...
    [release]   accepted release keys, threshold; optional [release.sigstore] identity
    [evidence]  which evidence is required (cpu = one of, gpu_required, all_gpus_cc)
    [snp] [tdx] [gpu]                        # the vendors' rules; defaults when absent
    [private]   min_nodes: private requests (verifier request); defaults when absent

Fail-closed (DESIGN.md "Policy"): an unknown key, an unknown table, a value of the wrong type
or an unknown waiver is a :class:`TrustConfigError` (CLI exit 4) naming the key.

:class:`Policy` is typed: one field per table, each vendor table parsed by its vendor's
``from_table`` (verifier/snp/policy.py, verifier/tdx/policy.py, verifier/gpu/policy.py) and
its defaults when the file has none. :func:`load_policy` is the one loader every command uses
(``verifier verify``/``node``/``bundle``/``serve``/``audit``/``policy check`` and the one-item
commands ``verifier snp``/``tdx``/``gpu``). The tables live in policy_log.py,
policy_release.py and policy_evidence.py; this module composes and loads them.

:attr:`Policy.digest` is SHA-256 over the file's bytes exactly as read: the transcript
records it so a verdict names the policy it was reached under.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from verifier.gpu.policy import GpuPolicy
from verifier.policy_base import CHECK_SCHEMA, StrictTable, config_error, unsafe_settings
from verifier.policy_evidence import CPU_EVIDENCE, EvidencePolicy
from verifier.policy_log import LOG_WAIVABLE, MAX_CHECKPOINT_AGE, LogPolicy
from verifier.policy_private import PrivatePolicy
from verifier.policy_release import ReleasePolicy, SigstorePolicy
from verifier.snp.policy import SnpPolicy
from verifier.tdx.collateral import STALE_WAIVABLE
from verifier.tdx.policy import TdxPolicy

__all__ = [
    "CPU_EVIDENCE",
    "LOG_WAIVABLE",
    "MAX_CHECKPOINT_AGE",
    "MAX_POLICY_SIZE",
    "POLICY_VERSION",
    "VENDOR_TABLES",
    "WAIVABLE",
    "EvidencePolicy",
    "LogPolicy",
    "Policy",
    "PrivatePolicy",
    "ReleasePolicy",
    "SigstorePolicy",
    "load_policy",
    "parse_policy",
    "validate_waivers",
]

POLICY_VERSION = 1
MAX_POLICY_SIZE = 1 << 20
CHECK_SYNTAX = "policy.syntax"
CHECK_VERSION = "policy.version"
CHECK_WAIVE = "policy.waive"

#: The vendor tables, each optional (its vendor's defaults when absent).
VENDOR_TABLES = ("snp", "tdx", "gpu")
_TABLES = ("log", "release", "evidence", "private", *VENDOR_TABLES)
_TOP_KEYS = frozenset({"version", "unsafe_allow_simulated_hardware", "waive", *_TABLES})

#: The waivable check ids (docs/policy.md, "Waivers"): checks that cannot run or whose
#: collateral is stale, never authenticity. The log half's (LOG_WAIVABLE); snp.crl: only when
#: it cannot run (no CRL stapled, offline); tdx.*_crl.validity: a CRL past its nextUpdate
#: (signature and revocation still checked); gpu.ocsp: a device certificate with no OCSP
#: answer to be had (any answer had is verified); gpu.rim.fetch: a RIM that cannot be had (a
#: RIM at hand is still compared).
WAIVABLE = frozenset({*LOG_WAIVABLE, "snp.crl",
                      *(f"tdx.{item}.validity" for item in STALE_WAIVABLE),
                      "gpu.ocsp", "gpu.rim.fetch"})

_error = config_error


@dataclass(frozen=True)
class Policy:
    """A parsed policy file: one typed field per table (vendor defaults when absent)."""

    log: LogPolicy
    release: ReleasePolicy
    evidence: EvidencePolicy = field(default_factory=EvidencePolicy)
    snp: SnpPolicy = field(default_factory=SnpPolicy)
    tdx: TdxPolicy = field(default_factory=TdxPolicy)
    gpu: GpuPolicy = field(default_factory=GpuPolicy)
    private: PrivatePolicy = field(default_factory=PrivatePolicy)
    waive: frozenset[str] = frozenset()
    unsafe_allow_simulated_hardware: bool = False
    digest: bytes = b""  # SHA-256 of the file's bytes
    version: int = POLICY_VERSION
    source: str | None = None
    warnings: tuple[str, ...] = ()  # what `verifier policy check` warns about (_warnings)
    tables: frozenset[str] = frozenset()  # the vendor tables the file has (VENDOR_TABLES)

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


def validate_waivers(items: Sequence[str], *, field: str = "waive") -> frozenset[str]:
    """The one rule for every waiver, in a policy's ``waive`` list or a ``--waive`` option:
    only :data:`WAIVABLE` check ids (checks that may not run, or whose collateral may be stale;
    never authenticity), each once; anything else is a TrustConfigError naming it."""
    for i, check in enumerate(items):
        if check in _RENAMED_WAIVERS:
            raise _error(CHECK_WAIVE, _RENAMED_WAIVERS[check], f"{field}[{i}]", got=check)
        if check not in WAIVABLE:
            raise _error(CHECK_WAIVE, "this check cannot be waived (or does not exist)",
                         f"{field}[{i}]", got=check, want=" | ".join(sorted(WAIVABLE)))
    if len(set(items)) != len(items):
        raise _error(CHECK_WAIVE, "check waived twice", field)
    return frozenset(items)


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


def _refuse_unknown_keys(doc: Mapping[str, Any]) -> None:
    for key in sorted(doc):
        if key in _TOP_KEYS:
            continue
        if isinstance(doc[key], dict):
            raise _error(CHECK_SCHEMA, f"unknown section [{key}]", key,
                         want=" | ".join(_TABLES))
        near = get_close_matches(key, sorted(_TOP_KEYS), n=1, cutoff=0.75)
        raise _error(CHECK_SCHEMA, f"unknown key (did you mean {near[0]!r}?)" if near
                     else "unknown key", key)


def _required(top: StrictTable, name: str) -> StrictTable:
    table = top.table(name)
    if table is None:
        raise _error(CHECK_SCHEMA, "required table missing", name)
    return table


def parse_policy(data: bytes, *, base_dir: Path | str | None = None,
                 source: str | None = None) -> Policy:
    """Parse a policy file's bytes strictly; TrustConfigError naming the key on any problem.

    ``base_dir`` resolves relative paths in the file (``release.sigstore.trusted_root``);
    :func:`load_policy` passes the file's directory.
    """
    doc = _decode(data, source or "policy")
    top = StrictTable(doc, "")
    version = top.get("version", int)
    if version != POLICY_VERSION:
        raise _error(CHECK_VERSION, "unsupported policy version", "version", got=version,
                     want=POLICY_VERSION)
    _refuse_unknown_keys(doc)
    base = Path(base_dir) if base_dir is not None else Path()
    log_table, release_table = _required(top, "log"), _required(top, "release")
    log = LogPolicy.from_table(log_table)
    release = ReleasePolicy.from_table(release_table, base)
    evidence_table = top.table("evidence")
    evidence = (EvidencePolicy.from_table(evidence_table) if evidence_table is not None
                else EvidencePolicy())
    private_table = top.table("private")
    private = (PrivatePolicy.from_table(private_table) if private_table is not None
               else PrivatePolicy())
    vendor: dict[str, Any] = {}
    for name, parse, default in (("snp", SnpPolicy.from_table, SnpPolicy),
                                 ("tdx", TdxPolicy.from_table, TdxPolicy),
                                 ("gpu", GpuPolicy.from_table, GpuPolicy)):
        table = top.table(name)
        vendor[name] = parse(table) if table is not None else default()
        if table is not None:
            table.finish()  # even if the vendor's parser forgot to
    unsafe = top.get("unsafe_allow_simulated_hardware", bool, False)
    waive = validate_waivers(top.get_list("waive", str, []))
    top.finish()
    return Policy(log=log, release=release, evidence=evidence, snp=vendor["snp"],
                  tdx=vendor["tdx"], gpu=vendor["gpu"], private=private, waive=waive,
                  unsafe_allow_simulated_hardware=unsafe,
                  digest=hashlib.sha256(bytes(data)).digest(), version=version, source=source,
                  warnings=_warnings(doc, log, waive),
                  tables=frozenset(name for name in VENDOR_TABLES if name in doc))


def load_policy(path: Path | str) -> Policy:
    """Read and parse a policy file; relative paths in it are relative to its directory.

    The one loader of every command, the one-item ``verifier snp``/``tdx``/``gpu`` included
    (they apply their own table and ``waive``; the other tables are checked all the same)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise _error(CHECK_SYNTAX, f"cannot read policy file: {err.strerror}", str(path)) from None
    return parse_policy(data, base_dir=path.parent, source=str(path))
