"""Running named checks: pass, fail, or (only when it could not run) waived by the policy.

DESIGN.md house rule 5: "Nothing is skipped silently: a check that cannot run is a failure
unless the policy explicitly waives it, and the transcript says so." A step function that
cannot run (no last-seen checkpoint store, no revocation mirror, no witness cosignature to
date a checkpoint by) raises :class:`CheckNotRun`. :func:`run_check` records the step in the
transcript and turns a :class:`CheckNotRun` into ``waived`` iff the check id is in the
policy's ``waive`` list. A waiver never excuses a check that ran and failed: a forked log is
refused whether or not ``log.consistency`` is waived.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeVar

from transparency_log.errors import (
    AttestlogError,
    ConsistencyError,
    PolicyError,
    PolicyFailure,
    ProofError,
)
from verifier.transcript import Transcript

__all__ = ["NOT_RUN", "CheckNotRun", "run_check", "with_check"]

T = TypeVar("T")
NOT_RUN = "not run"


class CheckNotRun(PolicyError):
    """A check that could not run (a missing input, not a false one); exit code 5.

    A PolicyError with one failure ``(check, field, got="not run", want=...)``, so a caller
    that does not know about waivers still refuses.
    """

    def __init__(self, check: str, reason: str, *, field: str = "input",
                 want: str = "available") -> None:
        self.reason = reason
        super().__init__([PolicyFailure(check, field, NOT_RUN, want, reason)])


def run_check(transcript: Transcript | None, waive: Collection[str], check: str,
              fn: Callable[[], T], *, detail: Callable[[T], str] | None = None,
              **inputs: str) -> T | None:
    """Run one step ``fn`` with id ``check`` and record it in ``transcript``.

    Returns ``fn()``'s result; ``None`` when the check could not run and ``waive`` names it.
    Any error is recorded as a failed step and re-raised unchanged.
    """
    try:
        result = fn()
    except CheckNotRun as err:
        if err.check == check and check in waive:
            if transcript is not None:
                transcript.waived(check, f"waived by policy: {err.reason}", **inputs)
            return None
        if transcript is not None:
            transcript.failed(check, str(err), **inputs)
        raise
    except AttestlogError as err:
        if transcript is not None:
            transcript.failed(check, str(err), **inputs)
        raise
    if transcript is not None:
        transcript.passed(check, detail(result) if detail is not None else "", **inputs)
    return result


def with_check(err: AttestlogError, check: str, prefix: str = "") -> AttestlogError:
    """The same error (class, field, got, want, evidence) under the step's check id ``check``.

    Lower layers name their own checks (``note.signature``, ``merkle.inclusion``); a step
    reports under its own stable id and keeps the lower one in the message.
    """
    if isinstance(err, PolicyError) or err.check == check:
        return err
    message = f"{prefix}{err.message} ({err.check})"
    if isinstance(err, ProofError):
        return ProofError(check, message, expected_root=err.expected_root,
                          calculated_root=err.calculated_root, field=err.field)
    if isinstance(err, ConsistencyError):
        return ConsistencyError(check, message, old=err.old, new=err.new, proof=err.proof,
                                field=err.field, got=err.got, want=err.want)
    return type(err)(check, message, field=err.field, got=err.got, want=err.want)
