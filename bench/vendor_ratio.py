"""Shared by the vendor-verifier benches (issue 15): time each case against a bare signature
verify in the same process, interleaved so machine load hits both alike, and print the ratio.

Also runs under an older checkout (``--before`` figures): :func:`with_cache` passes the
``cache`` keyword only to functions that take it, and :func:`clear_parse_memos` forgets every
parse-once memo that exists, so a "cold" case really starts cold.
"""

from __future__ import annotations

import importlib
import inspect
import statistics
import time
from collections.abc import Callable
from typing import Any

_MEMOS = (("verifier.tdx.quote_verify", "_sgx_extensions"),
          ("verifier.tdx.collateral", "_parsed_tcb_info"),
          ("verifier.tdx.collateral", "_parsed_qe_identity"),
          ("verifier.snp.chain", "kds_extensions"),
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
          ("verifier.tdx.collateral", "_CRL_ISSUERS"))


def clear_parse_memos() -> None:
    """Forget parsed certificates, CRLs, extensions and collateral (a cold start)."""
    own = getattr(importlib.import_module("attest.certificates"), "clear_parse_memos", None)
    if own is not None:  # every memo the loaders keep, whatever this checkout names them
        own()
    for module, name in _MEMOS:
        memo = getattr(importlib.import_module(module), name, None)
        if hasattr(memo, "cache_clear"):
            memo.cache_clear()  # type: ignore[union-attr]
        elif hasattr(memo, "clear"):  # a bounded VerifiedCache
            memo.clear()  # type: ignore[union-attr]


def with_cache(fn: Callable[..., Any], cache: object, **kwargs: Any) -> Any:
    """``fn(**kwargs, cache=cache)`` where ``fn`` takes a cache; ``fn(**kwargs)`` otherwise."""
    if "cache" in inspect.signature(fn).parameters:
        kwargs["cache"] = cache
    return fn(**kwargs)


def per_call_ms(fn: Callable[[], object], n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1000


def ratios(bare: Callable[[], object], cases: dict[str, Callable[[], object]], *,
           rounds: int = 7, n: int = 30) -> tuple[float, dict[str, float]]:
    """(bare ms, {case: ms}): medians over ``rounds`` interleaved rounds of ``n`` calls."""
    bare()
    for fn in cases.values():
        fn()
    b: list[float] = []
    got: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        b.append(per_call_ms(bare, n))
        for k, fn in cases.items():
            got[k].append(per_call_ms(fn, n))
            b.append(per_call_ms(bare, n))
    return statistics.median(b), {k: statistics.median(v) for k, v in got.items()}


def print_rows(bare_name: str, bare_ms: float,
               rows: list[tuple[str, float | None, str, str]]) -> None:
    """Rows of (operation, ms or None, ratio text, target text)."""
    print(f"| operation | ms/call | ratio to one {bare_name} | target |")
    print("|---|---|---|---|")
    print(f"| bare {bare_name} | {bare_ms:.3f} | 1.00x | |")
    for name, ms, ratio, target in rows:
        print(f"| {name} | {'' if ms is None else f'{ms:.3f}'} | {ratio} | {target} |")


def ratio_text(ms: float, bare_ms: float) -> str:
    return f"{ms / bare_ms:.2f}x"
