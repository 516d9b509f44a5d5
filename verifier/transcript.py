"""The verification transcript: every step with its check id, detail and inputs' digests.

DESIGN.md: "The result is a transcript (JSON): every step, its inputs' digests, collateral
versions, the policy's hash, the verdict." Steps are appended in the order they run.
A step that could not run is recorded as failed unless the policy waived it by name, and
then it is recorded as ``waived`` (house rule 5: nothing is skipped silently).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transparency_log.errors import AttestlogError

PASS = "pass"  # noqa: S105 (a step result, not a password)
FAIL = "fail"
WAIVED = "waived"


@dataclass
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


@dataclass
class Transcript:
    steps: list[Step] = field(default_factory=list)
    error: AttestlogError | None = None

    def passed(self, check: str, detail: str = "", **inputs: str) -> None:
        self.steps.append(Step(check, PASS, detail, dict(inputs)))

    def failed(self, check: str, detail: str = "", **inputs: str) -> None:
        self.steps.append(Step(check, FAIL, detail, dict(inputs)))

    def waived(self, check: str, detail: str = "", **inputs: str) -> None:
        self.steps.append(Step(check, WAIVED, detail, dict(inputs)))

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
