"""Shared by the vendor-verifier benches (issue 15): time each case against a bare signature
verify in the same process, interleaved so machine load hits both alike, and print the ratio.

The clock (``--clock cpu|wall``, :func:`set_clock`): ``cpu`` (the default) is the CPU time of
the calling thread (``time.thread_time``, nanosecond resolution on Linux); ``wall`` is
``time.perf_counter``. On a shared machine wall-clock ratios swing by up to 1x between runs,
because a Python-heavy case is preempted more often than a short bare verify; CPU time does
not count the time the thread waits for a core, so the ratio stays put. On a quiet machine the
two agree (a bare P-384 verify: within a few %). No bench case runs work in another thread
(the verifiers use none); :func:`ratios` checks this per case all the same, and a case whose
process CPU time exceeds its thread CPU time is timed with ``time.process_time`` instead (the
table's header says so), so work done in other threads is never hidden.

Also runs under an older checkout (``--before`` figures): :func:`with_cache` passes the
``cache`` keyword only to functions that take it, and :func:`clear_parse_memos` forgets every
parse-once memo that exists, so a "cold" case really starts cold.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CLOCKS: dict[str, tuple[Callable[[], float], str]] = {
    "cpu": (time.thread_time, "thread CPU time"),
    "wall": (time.perf_counter, "wall clock"),
}
PROCESS_CPU = "process CPU time"
_CHOSEN = ["cpu"]
_PROCESS_TIMED: set[str] = set()  # cases found to work in other threads (timed by process)

_MEMOS = (("verifier.tdx.quote_verify", "_sgx_extensions"),
          ("verifier.tdx.collateral", "_parsed_tcb_info"),
          ("verifier.tdx.collateral", "_parsed_qe_identity"),
          ("verifier.tdx.collateral", "pcs_time"), ("verifier.tdx.collateral", "_crl_facts"),
          ("attest.formats.intel_pcs", "_time_fault"),
          ("verifier.gpu.report_verify", "_parsed_report"),
          ("verifier.snp.verify", "_parsed_report"),
          ("verifier.snp.verify", "_reported_tcb"), ("verifier.snp.verify", "_hex"),
          ("verifier.collateral_window", "described"),
          ("attest.formats.tdx_quote", "_parse_quote"),
          ("verifier.tdx.quote_verify", "_p256_point"),
          ("verifier.tdx.collateral", "_sha256_hex"),
          ("verifier.x509chain", "_NAMED"), ("verifier.tdx.quote_verify", "_SUBJECTS"),
          ("verifier.tdx.collateral", "_CRL_ISSUERS"),
          ("attest.formats.bundle_memo", "BUNDLE_MEMO"))


def _module(name: str) -> Any:
    """An imported module without importlib's per-call machinery (a cold row pays this too)."""
    return sys.modules.get(name) or importlib.import_module(name)


def clear_parse_memos() -> None:
    """Forget parsed certificates, CRLs, extensions and collateral (a cold start)."""
    own = getattr(_module("attest.certificates"), "clear_parse_memos", None)
    if own is not None:  # every memo the loaders keep, whatever this checkout names them
        own()
    notes = getattr(_module("transparency_log.common.parse_cache"),
                    "clear_parse_caches", None)
    if notes is not None:  # parsed notes, checkpoints and envelopes (the log checks' inputs)
        notes()
    for module, name in _MEMOS:
        memo = getattr(_module(module), name, None)
        if hasattr(memo, "cache_clear"):
            memo.cache_clear()  # type: ignore[union-attr]
        elif hasattr(memo, "clear"):  # a bounded VerifiedCache
            memo.clear()  # type: ignore[union-attr]


def with_cache(fn: Callable[..., Any], cache: object, **kwargs: Any) -> Any:
    """``fn(**kwargs, cache=cache)`` where ``fn`` takes a cache; ``fn(**kwargs)`` otherwise."""
    if "cache" in inspect.signature(fn).parameters:
        kwargs["cache"] = cache
    return fn(**kwargs)


def set_clock(name: str) -> None:
    """Time every following measurement with ``name`` (a key of :data:`CLOCKS`)."""
    if name not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, not {name!r}")
    _CHOSEN[0] = name


def clock() -> Callable[[], float]:
    """The chosen clock's reading function (seconds)."""
    return CLOCKS[_CHOSEN[0]][0]


def chosen_clock() -> str:
    """The chosen clock's key ("cpu" or "wall"): what a peer script is told to use."""
    return _CHOSEN[0]


def clock_name() -> str:
    """What the chosen clock measures, for a table's header ("thread CPU time", ...)."""
    name = CLOCKS[_CHOSEN[0]][1]
    if _PROCESS_TIMED:
        name += f"; {PROCESS_CPU} for {', '.join(sorted(_PROCESS_TIMED))} (threads)"
    return name


def add_clock_argument(ap: argparse.ArgumentParser) -> None:
    """``--clock cpu|wall`` (default cpu); call :func:`set_clock` with the parsed value."""
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                    help="cpu: the thread's CPU time (default; steady on a shared machine); "
                         "wall: time.perf_counter")


def per_call_ms(fn: Callable[[], object], n: int,
                read: Callable[[], float] | None = None) -> float:
    """Milliseconds per call of ``fn`` over ``n`` calls, by ``read`` (the chosen clock)."""
    read = read or clock()
    t = read()
    for _ in range(n):
        fn()
    return (read() - t) / n * 1000


def _reader_for(name: str, fn: Callable[[], object], n: int) -> Callable[[], float]:
    """The chosen clock, or ``time.process_time`` when ``fn`` runs work in other threads
    (its process CPU time exceeds its thread CPU time by more than 10%): thread CPU time
    would hide that work."""
    if _CHOSEN[0] != "cpu":
        return clock()
    p0, t0 = time.process_time(), time.thread_time()
    for _ in range(n):
        fn()
    p1, t1 = time.process_time(), time.thread_time()
    if (p1 - p0) > 1.1 * (t1 - t0) + 1e-4:
        _PROCESS_TIMED.add(name)
        return time.process_time
    return clock()


def ratios(bare: Callable[[], object], cases: dict[str, Callable[[], object]], *,
           rounds: int = 7, n: int = 30) -> tuple[float, dict[str, float]]:
    """(bare ms, {case: ms}): medians over ``rounds`` interleaved rounds of ``n`` calls, by
    the chosen clock (a case that works in other threads: by process CPU time)."""
    bare()
    for fn in cases.values():
        fn()
    read = {k: _reader_for(k, fn, max(1, n // 10)) for k, fn in cases.items()}
    b: list[float] = []
    got: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        b.append(per_call_ms(bare, n))
        for k, fn in cases.items():
            got[k].append(per_call_ms(fn, n, read[k]))
            b.append(per_call_ms(bare, n))
    return statistics.median(b), {k: statistics.median(v) for k, v in got.items()}


def print_rows(bare_name: str, bare_ms: float,
               rows: list[tuple[str, float | None, str, str]]) -> None:
    """Rows of (operation, ms or None, ratio text, target text)."""
    print(f"| operation | ms/call ({clock_name()}) | ratio to one {bare_name} | target |")
    print("|---|---|---|---|")
    print(f"| bare {bare_name} | {bare_ms:.3f} | 1.00x | |")
    for name, ms, ratio, target in rows:
        print(f"| {name} | {'' if ms is None else f'{ms:.3f}'} | {ratio} | {target} |")


def ratio_text(ms: float, bare_ms: float) -> str:
    return f"{ms / bare_ms:.2f}x"


@dataclass(frozen=True)
class IssueRow:
    """One row of issue 15's table: ours as text and as a number comparable with the target
    (a ratio, or ms for the proof row), the peer's figure or why it was not run."""

    operation: str
    ours: str
    value: float
    target: float
    peer: str = "–"
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.value <= self.target

    @property
    def target_text(self) -> str:
        return f"<= {self.target:g}{'x' if self.unit == 'x' else ' ' + self.unit}"


def ratio_row(operation: str, ms: float, bare_ms: float, target: float, peer: str = "–",
              extra: str = "") -> IssueRow:
    """An issue-15 row of ours: ``ms`` per call as a ratio to ``bare_ms`` (``extra`` follows
    the figure)."""
    return IssueRow(operation, f"{ms:.3f} ms = {ratio_text(ms, bare_ms)}{extra}",
                    ms / bare_ms, target, peer)


def run_peer(python: str | None, script: str, args: list[str], *, what: str,
             timeout: int = 900) -> dict[str, Any] | str:
    """Run ``script`` with a peer venv's ``python`` in a temporary directory (outside our tree:
    a peer's package may be called ``verifier`` too); its last stdout line is JSON. Returns
    that object, or why it was not run / failed (one line)."""
    if python is None:
        return f"not run: no venv given for {what} (see bench/peers.md)"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            proc = subprocess.run([python, "-c", script, *args], cwd=tmp, capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"not run: {what}: {exc}"[:160]
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1].strip()
        return f"failed: {what}: {last[:120]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]
