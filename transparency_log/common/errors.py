"""The one error hierarchy of attestlog (DESIGN.md, "Verification is a pipeline of named checks").

Every error carries the stable id of the check that failed (``check``), a one-line message,
and where it applies the field by its spec name with what was found (``got``) and what was
required (``want``). Bytes are shown as hex.

| class              | meaning                                          | CLI exit |
|--------------------|--------------------------------------------------|----------|
| FormatError        | malformed input (size, reserved bits, encoding)  | 2        |
| VerificationError  | well formed but false (signature, chain, proof)  | 2        |
| PolicyError        | authentic but not acceptable (a list of failures) | 5        |
| TrustConfigError   | bad roots, keys or policy file                   | 4        |
| FetchError         | collateral or log unreachable (never "invalid")  | 3        |
| StartupError       | a service cannot start: port taken, lock held    | 7        |
| StaleError         | authentic collateral outside its validity window | 8        |
| InputFileError     | an input file is missing, unreadable, wrong kind | 66       |

The values are :class:`transparency_log.common.exit_status.ExitStatus` (README.md lists them all).

The hierarchy lives in ``transparency_log`` because that is the lowest layer: ``attest`` and
``verifier`` import it from here (DESIGN.md import direction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transparency_log.common.exit_status import ExitStatus

__all__ = [
    "AttestlogError",
    "ChainError",
    "ConsistencyError",
    "FetchError",
    "FormatError",
    "InputFileError",
    "PolicyError",
    "PolicyFailure",
    "ProofError",
    "SignatureError",
    "StaleError",
    "StartupError",
    "TrustConfigError",
    "VerificationError",
    "bug_line",
    "show",
]

#: How a command or a service names an exception that is not an :class:`AttestlogError`: a bug
#: of ours (or a library's exception not caught where the library is called), never a verdict.
BUG = "internal error (a bug in attestlog, please report)"


def bug_line(err: BaseException) -> str:
    """One line for a bug: ``internal error (...): KeyError: 'x'`` (newlines folded)."""
    text = f"{BUG}: {type(err).__name__}: {err}"
    return " ".join(text.split())


def show(value: Any) -> str:
    """Render a got/want value for a message: bytes as lowercase hex, the rest with str()."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex() or "(empty)"
    return str(value)


class AttestlogError(Exception):
    """Base class: a failed check with its id, message, and optional field/got/want."""

    exit_code: int = ExitStatus.UNEXPECTED
    kind = "error"

    def __init__(
        self,
        check: str,
        message: str,
        *,
        field: str | None = None,
        got: Any = None,
        want: Any = None,
    ) -> None:
        self.check = check
        self.message = message
        self.field = field
        self.got = got
        self.want = want
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.check}: {self.message}"
        if self.field is not None:
            text += f" [{self.field}"
            if self.got is not None:
                text += f": got {show(self.got)}"
            if self.want is not None:
                text += f", want {show(self.want)}"
            text += "]"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for transcripts)."""
        out: dict[str, Any] = {"kind": self.kind, "check": self.check, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.got is not None:
            out["got"] = show(self.got)
        if self.want is not None:
            out["want"] = show(self.want)
        return out


class FormatError(AttestlogError):
    """Malformed input: wrong size, non-zero reserved bytes, non-canonical encoding, over a cap."""

    exit_code = ExitStatus.FORGED
    kind = "format"


class InputFileError(FormatError):
    """A file named on the command line cannot be used: missing, unreadable, a directory, or
    not the kind of file wanted (a log database that is not SQLite). Names the path."""

    exit_code = ExitStatus.NO_INPUT
    kind = "input"


class VerificationError(AttestlogError):
    """Well-formed input that is false: a signature, chain, proof or consistency check failed."""

    exit_code = ExitStatus.FORGED
    kind = "verification"


class SignatureError(VerificationError):
    """A signature does not verify under the key it must verify under."""

    kind = "signature"


class ChainError(VerificationError):
    """A certificate chain does not end in a pinned root, or a link in it is invalid."""

    kind = "chain"


class StaleError(ChainError):
    """Authentic collateral used outside its validity window: a certificate past notAfter (or
    before notBefore), a CRL or TCB Info past its next update. Not forged: fetch fresh
    collateral (or, where the check is waivable, waive it by name; docs/policy.md)."""

    exit_code = ExitStatus.STALE
    kind = "stale"


class ProofError(VerificationError):
    """A Merkle proof does not lead to the expected root (RFC 9162 §2.1.3.2, §2.1.4.2)."""

    kind = "proof"

    def __init__(
        self,
        check: str,
        message: str,
        *,
        expected_root: bytes | None = None,
        calculated_root: bytes | None = None,
        field: str | None = None,
    ) -> None:
        self.expected_root = expected_root
        self.calculated_root = calculated_root
        super().__init__(
            check,
            message,
            field=field if field is not None else ("root" if expected_root is not None else None),
            got=calculated_root,
            want=expected_root,
        )


class ConsistencyError(VerificationError):
    """Two views of a log are not consistent. Keeps the evidence (DESIGN.md house rule 6)."""

    kind = "consistency"

    def __init__(
        self,
        check: str,
        message: str,
        *,
        old: bytes | None = None,
        new: bytes | None = None,
        proof: list[bytes] | None = None,
        field: str | None = None,
        got: Any = None,
        want: Any = None,
    ) -> None:
        self.old = old
        self.new = new
        self.proof = proof
        super().__init__(check, message, field=field, got=got, want=want)


@dataclass(frozen=True)
class PolicyFailure:
    """One unacceptable field: the check id, the field by its spec name, got and want."""

    check: str
    field: str
    got: Any
    want: Any
    message: str = ""

    def __str__(self) -> str:
        text = f"{self.check}: {self.field} is {show(self.got)}, want {show(self.want)}"
        return f"{text} ({self.message})" if self.message else text

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "field": self.field,
            "got": show(self.got),
            "want": show(self.want),
            "message": self.message,
        }


class PolicyError(AttestlogError):
    """Authentic evidence that the policy does not accept. Carries every failure, not the first."""

    exit_code = ExitStatus.POLICY
    kind = "policy"

    def __init__(self, failures: list[PolicyFailure]) -> None:
        if not failures:
            raise ValueError("PolicyError needs at least one failure")
        self.failures = list(failures)
        first = self.failures[0]
        more = f" (+{len(self.failures) - 1} more)" if len(self.failures) > 1 else ""
        super().__init__(first.check, f"{len(self.failures)} policy failure(s){more}")

    def __str__(self) -> str:
        return "; ".join(str(f) for f in self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "check": self.check,
            "failures": [f.to_dict() for f in self.failures],
        }


class TrustConfigError(AttestlogError):
    """Bad trust configuration: roots, keys, or a policy file (unknown keys are errors)."""

    exit_code = ExitStatus.TRUST_CONFIG
    kind = "trust-config"


class FetchError(AttestlogError):
    """Collateral or log unreachable. Never means "invalid": the verdict stays a refusal."""

    exit_code = ExitStatus.UNREACHABLE
    kind = "fetch"


class StartupError(AttestlogError):
    """A service cannot start, and wrote nothing: its listening address is taken, or another
    process holds the lock on its state (the log's writer lock, the agent's state folder)."""

    exit_code = ExitStatus.STARTUP
    kind = "startup"
