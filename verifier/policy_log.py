"""``[log]`` of the policy file (docs/policy.md, "[log]"): which log, whose cosignatures
(a C2SP tlog-policy, inline or as ``witnesses`` + ``quorum``), how old a checkpoint may be."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from transparency_log.common.errors import TrustConfigError
from transparency_log.core.cosignature import CosignatureVerifier
from transparency_log.core.key_types import Verifier
from transparency_log.core.witness_policy import (
    WitnessPolicy,
    parse_witness_policy,
    policy_lists_log,
)
from verifier.policy_base import CHECK_SCHEMA, StrictTable, choice, config_error, int_in

__all__ = ["CHECK_LOG", "DEFAULT_SKEW", "LOG_WAIVABLE", "MAX_CHECKPOINT_AGE", "MAX_SKEW",
           "REVOCATION_MODES", "UNSAFE_MAX_CHECKPOINT_AGE", "LogPolicy"]

CHECK_LOG = "policy.log"
#: Log-half checks that may be waived, and only when they cannot run (verifier/log_checks.py).
LOG_WAIVABLE = ("log.consistency", "log.checkpoint.age", "release.revocations.unavailable")
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

_error = config_error


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
            revocations=choice(t, "log", "revocations", REVOCATION_MODES, "mirror"),
            max_cosignature_skew=int_in(t, "log", "max_cosignature_skew", 0, MAX_SKEW,
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
        return int_in(t, "log", "max_checkpoint_age", 1, MAX_CHECKPOINT_AGE)
    if t.get("max_checkpoint_age", int, None) is not None:
        raise _error(CHECK_SCHEMA, "give max_checkpoint_age or unsafe_max_checkpoint_age, "
                     "not both", "log.unsafe_max_checkpoint_age")
    return int_in(t, "log", "unsafe_max_checkpoint_age", 1, UNSAFE_MAX_CHECKPOINT_AGE)


def _log_verifier(vkey: str) -> Verifier:
    try:
        return Verifier(vkey)
    except TrustConfigError as err:
        raise _error(CHECK_LOG, f"bad log vkey: {err.message}", "log.vkey", got=err.got,
                     want=err.want) from None
