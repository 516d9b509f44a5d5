"""Shared command-line plumbing for the `tlog`, `attest` and `verifier` commands.

Errors are one line on stderr with the exit code of their class (DESIGN.md error table),
never a traceback. ``ATTESTLOG_TRACEBACK=1`` re-raises for debugging.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from datetime import UTC, datetime
from typing import Any

import click

from transparency_log.errors import AttestlogError, PolicyError

EXIT_UNEXPECTED = 1


def report_error(err: AttestlogError) -> None:
    """Print an error as one line per failure on stderr."""
    if isinstance(err, PolicyError):
        click.echo(f"error: policy refused ({len(err.failures)} failure(s))", err=True)
        for failure in err.failures:
            click.echo(f"  {failure}", err=True)
    else:
        click.echo(f"error: {err}", err=True)


class ErrorHandlingGroup(click.Group):
    """A click group that maps AttestlogError to its exit code with a one-line message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AttestlogError as err:
            if os.environ.get("ATTESTLOG_TRACEBACK"):
                raise
            report_error(err)
            ctx.exit(err.exit_code)
        except (OSError, ValueError, sqlite3.Error) as err:
            # Files or a log database that cannot be read or written (a full disk included),
            # and similar; still one line, no traceback.
            if os.environ.get("ATTESTLOG_TRACEBACK"):
                raise
            click.echo(f"error: {type(err).__name__}: {err}", err=True)
            ctx.exit(EXIT_UNEXPECTED)


def read_input(path: str) -> bytes:
    """Read a file given on the command line; ``-`` is standard input."""
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


def parse_time(text: str | None) -> datetime:
    """A verification time given on the command line (``--at``): ISO 8601 / RFC 3339, ``Z``
    allowed, a naive value is UTC; the wall clock when absent. Only CLIs read the clock."""
    if text is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {text!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)
