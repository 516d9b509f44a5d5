"""Running named checks: pass, fail, or (only when it could not run) waived by the policy.

DESIGN.md house rule 5: "Nothing is skipped silently: a check that cannot run is a failure
unless the policy explicitly waives it, and the transcript says so." A step function that
cannot run (no last-seen checkpoint store, no revocation mirror, no witness cosignature to
date a checkpoint by) raises :class:`CheckNotRun`. :meth:`verifier.transcript.Transcript.run`
records the step and turns a :class:`CheckNotRun` into ``waived`` iff the check id is in the
policy's ``waive`` list. A waiver never excuses a check that ran and failed: a forked log is
refused whether or not ``log.consistency`` is waived.
"""

from __future__ import annotations

from functools import cached_property

from transparency_log.common.errors import (
    AttestlogError,
    ConsistencyError,
    PolicyError,
    PolicyFailure,
    ProofError,
)

__all__ = ["NOT_RUN", "CheckNotRun", "with_check"]

NOT_RUN = "not run"
# PolicyError's message for one failure, in its own words (whatever the failure)
_ONE_FAILURE = PolicyError([PolicyFailure(*[NOT_RUN] * 4)]).message


class CheckNotRun(PolicyError):
    """A check that could not run (a missing input, not a false one); exit code 5.

    A PolicyError with one failure ``(check, field, got="not run", want=...)``, so a caller
    that does not know about waivers still refuses. ``unwaived``: the refusal to raise instead
    when the check is not waived, e.g. the FetchError of collateral that cannot be had
    (exit 3, "unreachable", rather than 5).
    """

    def __init__(self, check: str, reason: str, *, field: str = "input",
                 want: str = "available", unwaived: AttestlogError | None = None) -> None:
        # PolicyError's attributes for its one failure, set directly: a waived check raises
        # this on every verification (issue 15), and the failure and the message text are
        # made only when read. ``args`` are (check, reason).
        Exception.__init__(self, check, reason)
        self.reason = reason
        self.unwaived = unwaived
        self.check = check
        self.message = _ONE_FAILURE
        self.field = self.got = self.want = None
        self._not_run = (field, want)

    @cached_property
    def failures(self) -> list[PolicyFailure]:  # type: ignore[override]
        field, want = self._not_run
        return [PolicyFailure(self.check, field, NOT_RUN, want, self.reason)]


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
