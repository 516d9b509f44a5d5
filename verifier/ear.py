"""EAT Attestation Results (EAR, draft-ietf-rats-ear; profile ``tag:github.com,2023:veraison/ear``)
from a verification :class:`~verifier.pipeline.Result`: the appraisals (docs/ear.md). The
claims set, signing it as a JWT and verifying one are in :mod:`verifier.ear_token`.

An EAR holds one *appraisal* per submodule (draft-ietf-rats-ear §2, ``submods``): the CPU TEE
(``sev-snp`` or ``tdx``), each GPU (``nvidia-gpu[i]``, the transcript's item names) and the
logged release (``release``). Each appraisal has an ``ear.status`` (a trust tier: none 0,
affirming 2, warning 32, contraindicated 96) and an AR4SI trustworthiness vector
(draft-ietf-rats-ar4si §2.3: ``instance-identity``, ``configuration``, ``executables``,
``file-system``, ``hardware``, ``runtime-opaque``, ``storage-opaque``, ``sourced-data``).

How the transcript becomes appraisals (fail closed; the table is :data:`RULES`):

- every step is attributed to submodules by its check id's prefix (``snp.``/``tdx.`` the CPU,
  ``gpu.`` the GPU its ``subject`` names or every GPU, ``log.``/``release.`` the release,
  ``bundle.``/``binding.nonce``/``policy.`` every submodule); a failure of ``release.measurement``
  or ``gpu.policy`` goes to the submodule its failure's field names (``MEASUREMENT``,
  ``GPU-1.DRIVER_VERSION``), or to all of them when the field names none;
- a check id no rule knows goes to every submodule and can give at most ``warning``;
- a submodule's status starts from its own steps (a failure: contraindicated; a waiver or an
  unknown check: warning; all passed: affirming; nothing: none) and is then raised to the
  highest tier in its vector, never lowered (as veraison/ear ``UpdateStatusFromTrustVector``);
- if the pipeline stopped early (an authenticity failure, so later checks never ran), no
  affirming claim is made and a submodule with no failure of its own is ``none``;
- unreachable collateral or a bad trust configuration (FetchError, TrustConfigError) is the
  verifier's own inability: the submodule it concerns gets ``verifier_malfunction`` (-1) on
  every claim and status none;
- a refused verdict with no contraindicated submodule (other than such an inability) marks
  every submodule contraindicated.

This module reads no clock, file or network: the issue time, the keys and the verifier's
identity are parameters.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from attest.release import canonical_json
from transparency_log.common.errors import (
    AttestlogError,
    FetchError,
    FormatError,
    PolicyError,
    TrustConfigError,
)
from verifier.policy_step import CHECK_POLICY_EVIDENCE
from verifier.result import ACCEPTED, Result
from verifier.transcript import FAIL, PASS, WAIVED, Step

__all__ = [
    "CHECK_CLAIMS",
    "CLAIMS",
    "DEVELOPER",
    "EXT_BUNDLE",
    "EXT_TRANSCRIPT",
    "EXT_VERDICT",
    "PROFILE",
    "RULES",
    "TIER_NAMES",
    "Appraisal",
    "appraise",
    "tier_of",
    "transcript_sha256",
]

PROFILE = "tag:github.com,2023:veraison/ear"
"""The EAT profile of EAR (draft-ietf-rats-ear §3; veraison/ear ``EatProfile``)."""

DEVELOPER = "attestlog"
"""``ear.verifier-id.developer`` (AR4SI §2.2.2: the organisational unit of the build)."""

# Extension claims, namespaced like veraison's "ear.veraison.*" (draft-ietf-rats-ear §4).
EXT_TRANSCRIPT = "ear.attestlog.transcript-sha256"
EXT_VERDICT = "ear.attestlog.verdict"
EXT_BUNDLE = "ear.attestlog.bundle-sha256"

# Trust tiers (draft-ietf-rats-ar4si §2.3.1; veraison/ear trusttier.go).
NONE, AFFIRMING, WARNING, CONTRAINDICATED = 0, 2, 32, 96
TIER_NAMES = {NONE: "none", AFFIRMING: "affirming", WARNING: "warning",
              CONTRAINDICATED: "contraindicated"}

CLAIMS = ("instance-identity", "configuration", "executables", "file-system", "hardware",
          "runtime-opaque", "storage-opaque", "sourced-data")
"""The AR4SI trustworthiness vector's claims (draft-ietf-rats-ar4si §2.3.4)."""

# Claim values used here (AR4SI §2.3.4; the value's band gives its tier).
VERIFIER_MALFUNCTION = -1
CRYPTO_FAILED = 99
UNSAFE = 32  # unsafe_config / unsafe_hw / unsafe_rt / untrusted_sources: the warning tier

CHECK_CLAIMS = "ear.claims"


def tier_of(value: int) -> int:
    """The trust tier of a claim value (AR4SI §2.3.1 bands; veraison/ear ``GetTier``)."""
    if not -128 <= value <= 127:
        raise FormatError(CHECK_CLAIMS, "trustworthiness claim out of range", got=value,
                          want="-128..127")
    if -1 <= value <= 1:
        return NONE
    if -32 <= value <= 31:
        return AFFIRMING
    if -96 <= value <= 95:
        return WARNING
    return CONTRAINDICATED


# --------------------------------------------------------------------------------------------
# From the transcript to appraisals


@dataclass(frozen=True)
class Rule:
    """What one family of check ids says: the submodules it concerns (``cpu``, ``gpu``,
    ``hardware`` = CPU and GPUs, ``release``, ``all``) and the vector claims it sets on pass,
    waiver and failure (None: no claim)."""

    prefix: str
    where: str
    claims: tuple[tuple[str, int | None, int | None, int | None], ...] = ()


def _c(name: str, passed: int | None, failed: int | None,
       waived: int | None = UNSAFE) -> tuple[str, int | None, int | None, int | None]:
    return (name, passed, waived, failed)


_IDENTITY = _c("instance-identity", 2, CRYPTO_FAILED)  # recognized_instance / crypto_failed
_HARDWARE = _c("hardware", 2, 96)                      # genuine_hw / contraindicated_hw
_CONFIG = _c("configuration", 2, 96)                   # approved_config / unsupportable
_OPAQUE = _c("runtime-opaque", 2, None)                # encrypted_rt (memory encryption)
_EXEC = _c("executables", 2, 96)                       # approved_rt / contraindicated_rt
_BOUND = _c("instance-identity", None, 96)             # untrustworthy_instance (not bound)
_SOURCES = _c("sourced-data", 2, 96)                   # trusted / contraindicated_sources

RULES: tuple[Rule, ...] = (
    # CPU TEE evidence: who signed it (instance), whether the platform is genuine and current.
    Rule("snp.report.signature", "cpu", (_IDENTITY,)),
    Rule("snp.vcek.", "cpu", (_IDENTITY,)),
    Rule("snp.crl", "cpu", (_HARDWARE,)),
    Rule("snp.report.product", "cpu", (_HARDWARE,)),
    Rule("snp.policy", "cpu", (_CONFIG, _OPAQUE)),
    Rule("snp.", "cpu"),
    Rule("tdx.quote.signature", "cpu", (_IDENTITY,)),
    Rule("tdx.pck.", "cpu", (_IDENTITY,)),
    Rule("tdx.qe.", "cpu", (_IDENTITY,)),
    Rule("tdx.root_crl.", "cpu", (_HARDWARE,)),
    Rule("tdx.pck_crl.", "cpu", (_HARDWARE,)),
    Rule("tdx.tcb_info.", "cpu", (_HARDWARE,)),
    Rule("tdx.tcb.", "cpu", (_HARDWARE,)),
    Rule("tdx.policy", "cpu", (_CONFIG, _OPAQUE)),
    Rule("tdx.", "cpu"),
    # GPU evidence: the device certificate and report signature, firmware, RIMs, CC mode.
    Rule("gpu.report.signature", "gpu", (_IDENTITY,)),
    Rule("gpu.chain", "gpu", (_IDENTITY,)),
    Rule("gpu.ocsp", "gpu", (_HARDWARE,)),
    Rule("gpu.report.fwid", "gpu", (_HARDWARE,)),
    Rule("gpu.rim.", "gpu", (_EXEC,)),
    Rule("gpu.policy", "gpu", (_CONFIG, _OPAQUE)),
    Rule("gpu.", "gpu"),
    # Binding: the evidence answers this nonce and this node key.
    Rule("binding.report_data", "cpu", (_BOUND,)),
    Rule("binding.gpu_nonce", "gpu", (_BOUND,)),
    Rule("binding.nonce", "all", (_BOUND,)),
    Rule("binding.", "all"),
    # The release and the log: where the reference values come from.
    Rule("release.measurement", "hardware", (_EXEC,)),
    Rule("release.revoked", "release", (_EXEC,)),
    Rule("release.", "release", (_SOURCES,)),
    Rule("log.", "release", (_SOURCES,)),
    # The bundle and the policy's own tables concern the node as a whole.
    Rule("policy.evidence", "all", (_CONFIG,)),
    Rule("policy.", "all"),
    Rule("bundle.", "all"),
    Rule("evidence.", "all"),
    Rule("collateral.", "all"),
    Rule("tls.", "all"),  # `verifier node`: the TLS server holds the attested node key
)


def _rule(check: str) -> Rule | None:
    """The most specific rule for a check id (exact id or prefix), or None when none knows it."""
    best: Rule | None = None
    for rule in RULES:
        hit = check == rule.prefix.rstrip(".") or (
            rule.prefix.endswith(".") and check.startswith(rule.prefix))
        if hit and (best is None or len(rule.prefix) > len(best.prefix)):
            best = rule
    return best


@dataclass
class Appraisal:
    """One submodule's appraisal: ``ear.status`` and the trustworthiness vector."""

    status: int = NONE
    vector: dict[str, int] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)  # check id -> worst result seen

    def claim(self, name: str, value: int | None) -> None:
        """Set a vector claim, keeping the one of higher tier (then the higher value)."""
        if value is None:
            return
        old = self.vector.get(name)
        if old is None or (tier_of(value), value) > (tier_of(old), old):
            self.vector[name] = value

    def to_json(self, policy_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"ear.status": TIER_NAMES[self.status]}
        vector = {k: self.vector[k] for k in CLAIMS if self.vector.get(k, 0) != 0}
        if vector:
            out["ear.trustworthiness-vector"] = vector
        out["ear.appraisal-policy-id"] = policy_id
        return out


_RANK = {PASS: 0, "unknown": 1, WAIVED: 2, FAIL: 3}
_GPU_FIELD = re.compile(r"GPU-(\d+)\.")
_CPU_FIELDS = ("MEASUREMENT", "MRTD", "RTMR0", "RTMR1", "RTMR2", "RTMR3")


class _Appraiser:
    def __init__(self, result: Result) -> None:
        self.result = result
        b = result.bundle
        self.cpu_name = (b.cpu_evidence.TYPE if b is not None and b.cpu_evidence is not None
                         else None)
        self.gpu_names = [f"nvidia-gpu[{g.index}]" for g in b.gpu_evidence] if b else []
        self.subs: dict[str, Appraisal] = {}
        for name in [self.cpu_name, *self.gpu_names, "release"]:
            if name is not None:
                self.subs[name] = Appraisal()

    def _sub(self, name: str) -> Appraisal:
        return self.subs.setdefault(name, Appraisal())  # fail closed: a new name is shown

    def _cpu(self, check: str) -> list[str]:
        if self.cpu_name is not None:
            return [self.cpu_name]
        return ["tdx" if check.startswith("tdx.") else "sev-snp"]

    def _gpus(self) -> list[str]:
        return self.gpu_names or ["nvidia-gpu"]

    def targets(self, where: str, check: str, subject: str) -> list[str]:
        if subject and where in ("cpu", "gpu"):
            return [subject]
        if where == "cpu":
            return self._cpu(check)
        if where == "gpu":
            return self._gpus()
        if where == "hardware":
            return [*self._cpu(check), *self.gpu_names]
        if where == "release":
            return ["release"]
        return list(self.subs) or ["release"]

    def attributed(self, step: Step) -> list[str] | None:
        """For a failed step without a subject: the submodules its policy failures name by
        field, or None when any failure names none (then the step's whole target set)."""
        err = self.result.error
        if not isinstance(err, PolicyError):
            return None
        names: list[str] = []
        for f in err.failures:
            if f.check != step.check and not f.check.startswith(step.check + "."):
                continue
            m = _GPU_FIELD.match(f.field)
            if m:
                names.append(f"nvidia-gpu[{m.group(1)}]")
            elif f.field in _CPU_FIELDS:
                names.extend(self._cpu(step.check))
            else:
                return None
        return names or None

    def record(self, step: Step, *, malfunction: bool = False) -> None:
        rule = _rule(step.check)
        result = step.result
        if rule is None:
            where, claims = "all", ()
            result = FAIL if result == FAIL else WAIVED if result == WAIVED else "unknown"
        else:
            where, claims = rule.where, rule.claims
        names = self.targets(where, step.check, step.subject)
        if result == FAIL and not step.subject:
            names = self.attributed(step) or names
        simulated = (step.check == "policy.simulated" and result == PASS
                     and self.result.bundle is not None and self.result.bundle.simulated)
        for name in names:
            sub = self._sub(name)
            old = sub.checks.get(step.check)
            if old is None or _RANK.get(result, 9) > _RANK.get(old, 9):
                sub.checks[step.check] = result
            if malfunction:
                sub.checks[step.check] = "malfunction"
                continue
            index = {PASS: 1, WAIVED: 2, FAIL: 3}.get(result)
            for claim in claims:
                sub.claim(claim[0], claim[index] if index is not None else None)
            if simulated and name != "release":
                # accepted only under unsafe_allow_simulated_hardware: not genuine hardware
                sub.claim("hardware", UNSAFE)
                sub.checks[step.check] = WAIVED

    def finish(self) -> dict[str, Appraisal]:
        result = self.result
        err = result.error
        accepted = result.verdict == ACCEPTED
        steps = list(result.transcript.steps)
        failed = {s.check for s in steps if s.result == FAIL}
        inability = isinstance(err, FetchError | TrustConfigError)
        for step in steps:
            self.record(step, malfunction=inability and step.result == FAIL
                        and err is not None and step.check == err.check)
        # An error with no failed step of its own still counts (fail closed).
        for check, subject in _unrecorded(err, failed):
            self.record(Step(check, FAIL, subject=subject), malfunction=inability)
        complete = accepted or (isinstance(err, PolicyError) and any(
            s.check == CHECK_POLICY_EVIDENCE for s in steps))
        for sub in self.subs.values():
            results = set(sub.checks.values())
            if "malfunction" in results:
                sub.vector = dict.fromkeys(CLAIMS, VERIFIER_MALFUNCTION)
                sub.status = NONE
                continue
            if FAIL in results:
                sub.status = CONTRAINDICATED
            elif not complete or not results:
                sub.status = NONE
            elif results & {WAIVED, "unknown"}:
                sub.status = WARNING
            else:
                sub.status = AFFIRMING
            if not complete:  # later checks never ran: assert nothing positive
                sub.vector = {k: v for k, v in sub.vector.items() if tier_of(v) != AFFIRMING}
            for value in sub.vector.values():  # raised to the vector's tiers, never lowered
                sub.status = max(sub.status, tier_of(value))
        if not accepted and not inability and not any(
                s.status == CONTRAINDICATED for s in self.subs.values()):
            for sub in self.subs.values():
                sub.status = CONTRAINDICATED
        return self.subs


def _unrecorded(err: AttestlogError | None, failed: set[str]) -> list[tuple[str, str]]:
    if err is None:
        return []
    checks = [f.check for f in err.failures] if isinstance(err, PolicyError) else [err.check]
    subject = err.field if err.field and re.fullmatch(
        r"sev-snp|tdx|nvidia-gpu\[\d+\]", err.field) else ""
    out = []
    for check in checks:
        if not any(check == c or check.startswith(c + ".") for c in failed):
            out.append((check, subject))
    return out


def appraise(result: Result) -> dict[str, Appraisal]:
    """One :class:`Appraisal` per submodule for a verification's Result (module docstring)."""
    return _Appraiser(result).finish()


def transcript_sha256(result: Result) -> bytes:
    """SHA-256 of the RFC 8785 canonical JSON of the transcript (``Result.to_json()``), so a
    relying party can recompute it from the transcript it was given."""
    return hashlib.sha256(canonical_json.encode(result.to_json())).digest()
