"""The exit statuses of `tlog`, `attest` and `verifier`: one table for all three commands.

README.md ("Exit statuses") lists every value; tests/test_exit_status.py makes each happen.
The verification statuses follow DESIGN.md's error table (transparency_log/common/errors.py gives
each error class its ``exit_code`` from here); usage errors take sysexits(3)'s ``EX_USAGE``
and an input that cannot be read ``EX_NOINPUT``, so that neither shares 2 with forged
evidence.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitStatus"]


class ExitStatus(IntEnum):
    """Why a command exited. Scripts branch on these values; they never change meaning."""

    OK = 0
    """Accepted / done."""
    UNEXPECTED = 1
    """A bug: an error attestlog has no class for, never a verdict (please report it, with
    the traceback ``--debug`` or ``ATTESTLOG_TRACEBACK=1`` prints)."""
    FORGED = 2
    """Malformed or false evidence: FormatError, VerificationError (signature, chain, proof,
    consistency)."""
    UNREACHABLE = 3
    """Collateral, a node or the log could not be fetched (FetchError); never "invalid"."""
    TRUST_CONFIG = 4
    """Bad roots, keys or policy file (TrustConfigError)."""
    POLICY = 5
    """Authentic evidence the policy refuses (PolicyError, with every failure)."""
    FLAGGED = 6
    """``verifier audit``: the log is consistent but entries were flagged."""
    STARTUP = 7
    """A service could not start: its address is taken or its state is locked."""
    STALE = 8
    """Authentic collateral outside its validity window (an expired certificate, a CRL or
    TCB Info past its next update): fetch fresh collateral (StaleError)."""
    USAGE = 64
    """Wrong command line: unknown option, missing argument, bad value (sysexits EX_USAGE)."""
    NO_INPUT = 66
    """An input file or database cannot be read: missing, unreadable, a directory, not the
    expected kind of file (sysexits EX_NOINPUT)."""
    IO_ERROR = 74
    """A file or database could not be written (a full disk, a read-only folder; sysexits
    EX_IOERR)."""
