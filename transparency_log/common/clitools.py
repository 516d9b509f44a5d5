"""Shared command-line plumbing for the `tlog`, `attest` and `verifier` commands.

Errors are one line on stderr with the exit status of their class
(:class:`transparency_log.common.exit_status.ExitStatus`, README.md "Exit statuses"), never a
traceback; usage errors exit 64, not click's 2 (which is forged evidence here). With
``--json`` (:func:`json_option`) a command prints a JSON object on stdout for every outcome,
early errors included.

Any other exception is a bug of ours, never a verdict: exit 1 (``UNEXPECTED``) with the one
line ``error: internal error (a bug in attestlog, please report): TYPE: MESSAGE``. Under
``--debug`` on the root command (``tlog --debug ...``, :func:`debug_option`) or
``ATTESTLOG_TRACEBACK=1``, the full traceback is printed before that line, and before the
line of every other error too (whose exit status does not change).
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import sqlite3
import sys
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import click

from transparency_log.common.errors import AttestlogError, PolicyError, bug_line
from transparency_log.common.exit_status import ExitStatus

EXIT_UNEXPECTED = ExitStatus.UNEXPECTED
_JSON = "attestlog.json"  # ctx.meta: the command was given --json
_PRINTED = "attestlog.json_printed"  # ctx.meta: the command printed its JSON object
_QUIET = "attestlog.quiet"  # ctx.meta: -q, the exit status only
_DEBUG = "attestlog.debug"  # ctx.meta: --debug, tracebacks on stderr
DEBUG_ENV = "ATTESTLOG_TRACEBACK"
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
_NO_INPUT = (errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EACCES, errno.EPERM)


def report_error(err: AttestlogError) -> None:
    """Print an error as one line per failure on stderr."""
    if isinstance(err, PolicyError):
        click.echo(f"error: policy refused ({len(err.failures)} failure(s))", err=True)
        for failure in err.failures:
            click.echo(f"  {failure}", err=True)
    else:
        click.echo(f"error: {err}", err=True)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` (parameter ``as_json``): print one JSON object on stdout for every outcome.

    Commands that print their own object call :func:`json_printed`; for any error before that
    (an unreachable node, a bad policy, a usage error) :class:`ErrorHandlingGroup` prints
    ``{"verdict": "error", "exit_status": N, "error": {...}}``."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        ctx.meta[_JSON] = value
        return value

    return click.option("--json", "as_json", is_flag=True, is_eager=True, callback=remember,
                        help="Print one JSON object on stdout (errors included).")(fn)


def quiet_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``-q/--quiet`` (parameter ``quiet``): print nothing, not even the error line; the exit
    status is the answer (like go-sev-guest's ``check -quiet``)."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        ctx.meta[_QUIET] = value
        return value

    return click.option("-q", "--quiet", is_flag=True, is_eager=True, callback=remember,
                        help="Print nothing; the exit status is the answer.")(fn)


def debug_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--debug`` on a root command: print the traceback of an error before its one line
    (the same as ``ATTESTLOG_TRACEBACK=1``); a bug still exits 1, other errors keep their
    status."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            ctx.meta[_DEBUG] = True
        return value

    return click.option("--debug", is_flag=True, is_eager=True, expose_value=False,
                        callback=remember,
                        help=f"Print the traceback of an error (or set {DEBUG_ENV}=1).")(fn)


def _debugging(ctx: click.Context) -> bool:
    return bool(ctx.meta.get(_DEBUG) or os.environ.get(DEBUG_ENV))


def json_printed() -> None:
    """Tell the error handler that this command already printed its JSON object."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_PRINTED] = True


def _json_error(ctx: click.Context, status: int, error: dict[str, Any]) -> None:
    if ctx.meta.get(_JSON) and not ctx.meta.get(_PRINTED):
        ctx.meta[_PRINTED] = True
        click.echo(json.dumps({"verdict": "error", "exit_status": int(status),
                               "error": error}, indent=2))


def os_error_line(err: OSError) -> tuple[str, ExitStatus]:
    """One line naming the path for a file that cannot be used, and its exit status."""
    path = err.filename if err.filename is not None else "(unnamed file)"
    reason = (err.strerror or str(err)).lower()
    if err.errno in _NO_INPUT:
        return f"cannot read {path}: {reason}", ExitStatus.NO_INPUT
    return f"cannot use {path}: {reason}", ExitStatus.IO_ERROR


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("attestlog")
    except PackageNotFoundError:  # a source tree that was never installed
        text = "unknown"
    root = ctx.find_root().info_name or "attestlog"
    click.echo(f"{root} (attestlog) {text}")
    ctx.exit(ExitStatus.OK)


def with_common_options(cmd: click.Command) -> click.Command:
    """Give a command (and, for a group, every subcommand) ``--version``; ``-h`` comes from
    :data:`CONTEXT_SETTINGS`. Idempotent."""
    if not any("--version" in p.opts for p in cmd.params):
        cmd.params.append(click.Option(["--version"], is_flag=True, expose_value=False,
                                       is_eager=True, callback=_print_version,
                                       help="Show the version and exit."))
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            with_common_options(sub)
    return cmd


CONFIG_KEYS = ("policy", "state", "log_url")


def config_path() -> str:
    """``$XDG_CONFIG_HOME/attestlog/config.toml`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "attestlog", "config.toml")


def config_defaults(commands: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Defaults from the client configuration file for what a client repeats on every call
    (README.md "Configuration"): ``policy``, ``state``, ``log_url``, as a click default_map
    for ``commands`` (``{command: {config key: parameter name}}``). Precedence: a flag, then
    the environment (``ATTESTLOG_POLICY``, ...), then this file. A missing file is no
    configuration; an unknown key is a TrustConfigError naming it."""
    import tomllib
    from difflib import get_close_matches

    from transparency_log.common.errors import TrustConfigError

    path = config_path()
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as err:
        raise TrustConfigError("config.syntax", f"not valid TOML: {err}", field=path) from None
    for key, value in doc.items():
        if key not in CONFIG_KEYS:
            near = get_close_matches(key, CONFIG_KEYS, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise TrustConfigError("config.schema", f"unknown key {key!r}{hint}", field=path,
                                   want=" | ".join(CONFIG_KEYS))
        if not isinstance(value, str):
            raise TrustConfigError("config.schema", "wrong type", field=f"{path}: {key}",
                                   got=type(value).__name__, want="str")
    return {cmd: {param: doc[key] for key, param in keys.items() if key in doc}
            for cmd, keys in commands.items()}


class ErrorHandlingGroup(click.Group):
    """A click group that maps every error to its exit status with a one-line message
    (AttestlogError by class, usage errors to 64, unusable files to 66/74), and with
    ``--json`` also prints the error as a JSON object on stdout. Nested groups and commands
    inherit ``-h``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)
        #: ``{command: {config key: parameter}}`` filled from :func:`config_defaults`.
        self.config_commands: dict[str, dict[str, str]] = {}
        with_common_options(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        return with_common_options(cmd) if cmd is not None else None

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        if parent is None and self.config_commands and "default_map" not in extra:
            try:
                extra["default_map"] = config_defaults(self.config_commands)
            except AttestlogError as err:
                report_error(err)
                sys.exit(err.exit_code)
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as err:
            err.exit_code = ExitStatus.USAGE
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            err.exit_code = ExitStatus.USAGE
            _json_error(ctx, ExitStatus.USAGE, {"kind": "usage", "message": err.format_message()})
            raise
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise  # click's own: an exit status, a usage problem, ^C
        except AttestlogError as err:
            _traceback(ctx)
            if not ctx.meta.get(_QUIET):
                report_error(err)
            _json_error(ctx, err.exit_code, err.to_dict())
            ctx.exit(err.exit_code)
        except OSError as err:
            # A file named on the command line that cannot be read, or a disk that is full.
            _traceback(ctx)
            line, status = os_error_line(err)
            click.echo(f"error: {line}", err=True)
            _json_error(ctx, status, {"kind": "input", "message": line})
            ctx.exit(status)
        except sqlite3.OperationalError as err:
            # A log database that cannot be written (a full disk, a locked file).
            _traceback(ctx)
            click.echo(f"error: {type(err).__name__}: {err}", err=True)
            _json_error(ctx, ExitStatus.IO_ERROR, {"kind": "error", "message": str(err)})
            ctx.exit(ExitStatus.IO_ERROR)
        except Exception as err:  # a bug of ours: exit 1, never a verdict
            _traceback(ctx)
            line = bug_line(err)
            click.echo(f"error: {line}", err=True)
            _json_error(ctx, ExitStatus.UNEXPECTED, {"kind": "bug", "message": line})
            ctx.exit(ExitStatus.UNEXPECTED)


def _traceback(ctx: click.Context) -> None:
    """Under ``--debug`` / ``ATTESTLOG_TRACEBACK=1``: the traceback being handled, on stderr."""
    if _debugging(ctx) and not ctx.meta.get(_DEBUG + ".shown"):
        ctx.meta[_DEBUG + ".shown"] = True  # a nested group handles the same error once
        traceback.print_exc(file=sys.stderr)


def read_vkey(value: str) -> str:
    """A ``--vkey`` value: the verifier key itself, or the path of a file holding it (what
    ``tlog keygen`` writes as ``NAME.vkey``)."""
    from pathlib import Path

    path = Path(value)
    if "+" not in value and path.is_file():
        return path.read_text(encoding="utf-8").strip()
    return value.strip()


def vkey_option(*, required: bool, help: str) -> Callable[..., Any]:
    """``--vkey KEY_OR_FILE`` (parameter ``vkey``), the same on every command."""

    def convert(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        return None if value is None else read_vkey(value)

    return click.option("--vkey", "vkey", required=required, metavar="VKEY|FILE",
                        callback=convert, help=f"{help} The key, or a file holding it.")


def write_key_pair(out: str, skey: str, vkey: str) -> str:
    """Write the signer key to ``out`` (mode 0600, never overwritten) and the verifier key
    beside it as ``out`` with the suffix ``.vkey`` (log.key -> log.vkey); returns that path."""
    from pathlib import Path

    vkey_path = str(Path(out).with_suffix(".vkey"))
    if vkey_path == out:
        raise click.BadParameter("the signer key file must not end in .vkey", param_hint="--out")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(skey + "\n")
    os.chmod(out, 0o600)  # whatever the umask
    with open(vkey_path, "w", encoding="utf-8") as f:
        f.write(vkey + "\n")
    return vkey_path


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
        self.add_command(self.load_lazy(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)  # with the common options

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
