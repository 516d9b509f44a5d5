"""One output style for every verifier command (docs/verification.md, "Output").

- default: the check table (one line per check: id, result, detail), a ``verdict:`` line, and
  last the sigstore-style one-liner per input (:func:`one_line`): ``OK: INPUT`` or
  ``FAIL: INPUT: CHECK: REASON`` (``verifier bundle`` with several FILEs prints only these,
  one per file, unless ``--verbose``);
- ``--verbose``: the parsed fields and every input digest too;
- ``-q/--quiet``: nothing at all, the exit status only (like go-sev-guest ``check -quiet``);
- ``--json``: one JSON object (:func:`transparency_log.common.clitools.json_option`).

Colour only when stdout is a terminal and ``NO_COLOR`` is not set (https://no-color.org).
Hashes and roots are lowercase hex, with no ``sha256:`` prefix.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import click

from transparency_log.common.clitools import json_option, json_printed, quiet_option
from verifier.transcript import FAIL, PASS, WAIVED, Step

__all__ = ["Output", "one_line", "output_options", "root_hex", "use_color", "waive_option"]

_MARKS = {PASS: ("pass", "green"), FAIL: ("FAIL", "red"), WAIVED: ("waived", "yellow")}


def use_color(stream: Any = None) -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set (to anything)."""
    if os.environ.get("NO_COLOR") is not None:
        return False
    stream = stream if stream is not None else sys.stdout
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def root_hex(root: bytes) -> str:
    """A tree root or digest as printed by every command: plain lowercase hex."""
    return root.hex()


def _short(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class Output:
    """How a verifier command prints: see the module docstring."""

    quiet: bool = False
    verbose: bool = False
    as_json: bool = False
    color: bool = False

    @classmethod
    def of(cls, *, quiet: bool = False, verbose: bool = False, as_json: bool = False) -> Output:
        return cls(quiet=quiet, verbose=verbose, as_json=as_json, color=use_color())

    @property
    def text(self) -> bool:
        """Whether the human-readable form is printed."""
        return not (self.quiet or self.as_json)

    def echo(self, line: str = "") -> None:
        if self.text:
            click.echo(line)

    def detail(self, line: str = "") -> None:
        """A line shown only with ``--verbose``."""
        if self.text and self.verbose:
            click.echo(line)

    def fields(self, fields: Mapping[str, Any], fmt: Callable[[str, Any], str]) -> None:
        """Parsed fields (by spec name), with ``--verbose`` only."""
        for name, value in fields.items():
            self.detail(fmt(name, value))
        if fields:
            self.detail()

    def _mark(self, result: str) -> str:
        word, colour = _MARKS.get(result, (result, "white"))
        padded = f"{word:<6}"
        return click.style(padded, fg=colour, bold=result == FAIL) if self.color else padded

    def table(self, steps: Iterable[Step]) -> None:
        """The check table: ``check  result  detail``; inputs' digests with ``--verbose``."""
        steps = list(steps)
        if not self.text:
            return
        width = max((len(s.check) for s in steps), default=10)
        click.echo(f"  {'check':<{width}}  {'result':<6}  detail")
        for s in steps:
            detail = s.detail if self.verbose else _short(s.detail)
            click.echo(f"  {s.check:<{width}}  {self._mark(s.result)}  {detail}")
            if self.verbose:
                for name, value in s.inputs.items():
                    click.echo(f"  {'':<{width}}  {'':<6}    {name} = {value}")

    def verdict(self, line: str, *, ok: bool) -> None:
        if not self.text:
            return
        if self.color:
            line = click.style(line, fg="green" if ok else "red", bold=True)
        click.echo(line)

    def summary(self, name: str, error: Any = None, *, note: str = "") -> None:
        """The last line for one input: :func:`one_line`, with ``note`` after an OK."""
        if not self.text:
            return
        line = one_line(name, error)
        if error is None and note:
            line += f" ({note})"
        if self.color:
            line = click.style(line, fg="green" if error is None else "red", bold=True)
        click.echo(line)

    def json(self, doc: Mapping[str, Any], *, indent: int | None = 2) -> None:
        """The command's JSON object (printed even with ``--quiet``: it was asked for)."""
        if self.as_json:
            click.echo(json.dumps(doc, indent=indent))
            json_printed()


def one_line(name: str, error: Any = None) -> str:
    """The sigstore-style summary of one input: ``OK: NAME`` or ``FAIL: NAME: REASON``, where
    REASON is the error's one-line form (``CHECK: message [field: got .., want ..]``, every
    failure of a PolicyError); ``-`` (standard input) is shown as ``<stdin>``."""
    name = "<stdin>" if name == "-" else name
    if error is None:
        return f"OK: {name}"
    return f"FAIL: {name}: {' '.join(str(error).split())}"


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--json``, ``-q/--quiet`` and ``-v/--verbose`` (parameters ``as_json``, ``quiet``,
    ``verbose``), the same on every verifier command."""
    fn = click.option("-v", "--verbose", is_flag=True,
                      help="Also print the parsed fields and every input's digest.")(fn)
    fn = quiet_option(fn)
    return json_option(fn)


def waive_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--waive CHECK`` (parameter ``waive``, a frozenset), repeatable: the policy's
    ``waive`` list from the command line, under the same rules
    (:func:`verifier.policy.validate_waivers`): a check id that is not waivable is a
    TrustConfigError naming it (exit 4)."""

    def check(_ctx: click.Context, _param: click.Parameter,
              values: tuple[str, ...]) -> frozenset[str]:
        from verifier.policy import validate_waivers

        return validate_waivers(list(values), field="--waive")

    return click.option(
        "--waive", "waive", multiple=True, metavar="CHECK", callback=check,
        help="Waive this check when it cannot run or its collateral is stale (recorded as "
             "'waived'); repeatable; the same ids as the policy's waive list "
             "(docs/policy.md).")(fn)
