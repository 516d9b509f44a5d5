"""The verification transcript: every step with its check id, detail and inputs' digests,
and the one way to record a step (:meth:`Transcript.run`).

DESIGN.md: "The result is a transcript (JSON): every step, its inputs' digests, collateral
versions, the policy's hash, the verdict." Steps are appended in the order they run.
A step that could not run (:class:`verifier.checks.CheckNotRun`) is recorded as failed unless
the transcript's ``waive`` set (the policy's ``waive`` list) names it, and then it is recorded
as ``waived`` (house rule 5: nothing is skipped silently). A waiver never excuses a check that
ran and failed.

Recording is cheap (issue 15: a warm verification records some 25 steps around one signature
verify): a step is kept as a plain tuple ``(check, result, detail, inputs, subject)`` and
becomes a :class:`Step` (its detail prefixed with the subject) only when :attr:`Transcript.
steps` is read. What is recorded is the same either way.

A transcript is one verification's: it is not shared between threads.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from transparency_log.common.errors import AttestlogError
from verifier.checks import CheckNotRun

T = TypeVar("T")

PASS = "pass"  # noqa: S105 (a step result, not a password)
FAIL = "fail"
WAIVED = "waived"

#: One recorded step before it is read: (check, result, detail without the subject prefix,
#: inputs, subject).
StepRecord = tuple[str, str, str, dict[str, str], str]


@dataclass(slots=True)
class Step:
    check: str
    result: str
    detail: str = ""
    inputs: dict[str, str] = field(default_factory=dict)
    # The evidence item the step is about ("sev-snp", "tdx", "nvidia-gpu[0]"); empty for the
    # bundle, binding, log and policy steps. Lets a reader (verifier/ear.py) attribute a step
    # to one GPU without parsing the detail text.
    subject: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check, "result": self.result, "detail": self.detail}
        if self.subject:
            out["subject"] = self.subject
        if self.inputs:
            out["inputs"] = dict(self.inputs)
        return out


def _step(record: StepRecord) -> Step:
    check, result, detail, inputs, subject = record
    if subject:
        detail = f"{subject}: {detail}" if detail else subject
    return Step(check, result, detail, inputs, subject)


class Transcript:
    """The steps of one verification. ``waive``: the check ids the policy waives when they
    cannot run. Inside :meth:`about`, every step is about one evidence item: it carries the
    item as ``subject`` and its detail starts with the item's name."""

    __slots__ = ("_done", "_read", "_records", "_subject", "error", "waive")

    def __init__(self, steps: Iterable[Step] | None = None,
                 error: AttestlogError | None = None,
                 waive: Collection[str] = frozenset()) -> None:
        self._done: list[Step] = list(steps) if steps is not None else []
        self._records: list[StepRecord] = []  # every step recorded here, in order
        self._read = 0  # how many of ``_records`` are in ``_done`` already
        self._subject = ""
        self.error = error
        self.waive = waive

    @property
    def steps(self) -> list[Step]:
        """The steps, in the order they ran (the same list on every read)."""
        if self._read < len(self._records):
            self._done.extend(map(_step, self._records[self._read:]))
            self._read = len(self._records)
        return self._done

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Transcript):
            return NotImplemented
        return (self.steps, self.error, self.waive) == (other.steps, other.error, other.waive)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return f"Transcript(steps={self.steps!r}, error={self.error!r}, waive={self.waive!r})"

    def passed(self, check: str, detail: str = "", **inputs: str) -> None:
        self._records.append((check, PASS, detail, inputs, self._subject))

    def failed(self, check: str, detail: str = "", **inputs: str) -> None:
        self._records.append((check, FAIL, detail, inputs, self._subject))

    def waived(self, check: str, detail: str = "", **inputs: str) -> None:
        self._records.append((check, WAIVED, detail, inputs, self._subject))

    # -- replaying recorded steps (a composite cache, verifier/verified_cache.py) -----------

    def mark(self) -> int:
        """A position: the steps recorded after it are :meth:`records_since` it."""
        return len(self._records)

    def records_since(self, mark: int) -> list[StepRecord]:
        """The steps recorded since ``mark``, as records (detail without the subject)."""
        return self._records[mark:]

    def replay(self, records: Iterable[StepRecord]) -> None:
        """Record steps again, about the current subject. The records' inputs become the
        steps' own: give fresh dicts."""
        subject = self._subject
        self._records.extend((check, result, detail, inputs, subject)
                             for check, result, detail, inputs, _ in records)

    @contextmanager
    def about(self, subject: str) -> Iterator[None]:
        """Record the steps run inside the block as steps about ``subject`` (e.g.
        ``"sev-snp"``, ``"nvidia-gpu[1]"``)."""
        outer, self._subject = self._subject, subject
        try:
            yield
        finally:
            self._subject = outer

    def run(self, check: str, fn: Callable[[], T], *,
            detail: Callable[[T], str] | str | None = None,
            waive: Collection[str] | None = None, **inputs: str) -> T | None:
        """Run one step ``fn`` under the check id ``check`` and record it.

        Returns ``fn()``'s result, or ``None`` when ``fn`` raised
        :class:`~verifier.checks.CheckNotRun` for this check and ``waive`` names it (recorded
        ``waived``); not waived, its ``unwaived`` error (when it has one) is recorded and
        raised in its place. Any other :class:`AttestlogError` is recorded as failed and re-raised
        unchanged. ``detail``: the pass text, or a function of the result; ``waive``: the
        waived check ids, when not the transcript's own (a stage judged by its own policy).
        """
        try:
            result = fn()
        except CheckNotRun as err:
            waived = self.waive if waive is None else waive
            if err.check == check and check in waived:
                self.waived(check, f"waived by policy ({check}): {err.reason}", **inputs)
                return None
            if err.unwaived is not None:  # the refusal under its own check id
                self.failed(err.unwaived.check, str(err.unwaived), **inputs)
                raise err.unwaived from None
            self.failed(check, str(err), **inputs)
            raise
        except AttestlogError as err:
            self.failed(check, str(err), **inputs)
            raise
        text = detail(result) if callable(detail) else (detail or "")
        self._records.append((check, PASS, text, inputs, self._subject))
        return result

    @property
    def verdict(self) -> str:
        if self.error is not None or any(s.result == FAIL for s in self.steps):
            return "refused"
        return "accepted" if self.steps else "refused"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verdict": self.verdict,
            "steps": [s.to_dict() for s in self.steps],
        }
        if self.error is not None:
            out["error"] = self.error.to_dict()
        return out
