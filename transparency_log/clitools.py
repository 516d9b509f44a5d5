"""Shared command-line plumbing for the `tlog`, `attest` and `verifier` commands.

Errors are one line on stderr with the exit code of their class (DESIGN.md error table),
never a traceback. ``ATTESTLOG_TRACEBACK=1`` re-raises for debugging.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import sys
from collections.abc import Mapping
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


class LazyGroup(ErrorHandlingGroup):
    """A group whose subcommands live in modules imported only when needed.

    ``lazy_commands`` maps a subcommand's name to ``("module:attribute", short_help)``. The
    module is imported when the subcommand runs (or completes, or shows its own help); the
    group's ``--help`` lists the short help from the table and imports nothing. A test
    (tests/test_cli_startup.py) keeps each table entry equal to its command's short help.
    """

    def __init__(self, *args: Any,
                 lazy_commands: Mapping[str, tuple[str, str]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, tuple[str, str]] = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.lazy_commands:
            return super().get_command(ctx, cmd_name)
        command = self.load_lazy(cmd_name)
        self.add_command(command, cmd_name)
        return command

    def load_lazy(self, cmd_name: str) -> click.Command:
        """Import the module of a table entry and return its command object."""
        module_name, _, attribute = self.lazy_commands[cmd_name][0].partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            if loaded is not None:
                if loaded.hidden:
                    continue
                text = loaded.get_short_help_str(limit)
            else:
                # click's own truncation, through a stand-in that holds only the text
                stand_in = click.Command(name, help=self.lazy_commands[name][1])
                text = stand_in.get_short_help_str(limit)
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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
