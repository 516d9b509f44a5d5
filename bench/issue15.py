"""Issue 15's whole table, measured in one run: every row one after another in this process,
each as the ratio (or time) its own bench measures, next to its peer where one is given.

Rows come from the benches' importable functions (nothing is measured differently here):
bench.tdx_bench, bench.snp_bench, bench.gpu_bench (the H100 rows), bench.log_rows_bench (audit,
proof from tiles, checkpoint + cosignatures + proof) and bench.verify_bench (full bundle).
Peers run in venvs of their own (bench/peers.md): ``--peer-tdx`` (dcap-qvl), ``--peer-snp``
(omne-attest), ``--peer-gpu`` (nv-local-gpu-verifier), ``--peer-log`` (aics-tlog, Python >=
3.12); a peer not given prints "not run" with the reason and the issue's figure.

Run: ``.venv/bin/python -m bench.issue15 [--leaves N] [--quick] [--peer-tdx P] ...``. The
default log is 10^6 leaves (about 1 GiB of memory and minutes); ``--quick`` takes 20,000
leaves and fewer rounds (a smoke run: its figures are not the issue's). Prints one markdown
table; never run as a test.

Clock: ``--clock cpu`` (default) times the vendor rows and the bundle row by the thread's CPU
time, ``--clock wall`` by ``time.perf_counter``; the table's header names it. On this shared
machine wall-clock ratios swing by up to 1x between runs (a Python-heavy case is preempted more
than a short bare verify); CPU time leaves out the waits, and on a quiet machine the two agree
(bench.vendor_ratio). The log rows keep bench.log_rows_bench's own clock.
"""

from __future__ import annotations

import argparse
import time

from bench import gpu_bench, log_rows_bench, snp_bench, tdx_bench, verify_bench
from bench.vendor_ratio import IssueRow, add_clock_argument, clock_name, set_clock


def table(rows: list[IssueRow]) -> str:
    """operation | attestlog (clock) | peer | target | met?"""
    out = [f"| operation | attestlog ({clock_name()}) | peer | target | met? |",
           "|---|---|---|---|---|"]
    out += [f"| {r.operation} | {r.ours} | {r.peer} | {r.target_text} | "
            f"{'yes' if r.met else 'no'} |" for r in rows]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leaves", type=int, default=None, help="log size (default 10^6)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes and fewer rounds")
    ap.add_argument("--peer-tdx", help="python of a venv with dcap-qvl and cryptography")
    ap.add_argument("--peer-snp", help="python of a venv with omne-attest")
    ap.add_argument("--peer-gpu", help="python of a venv with nv-local-gpu-verifier")
    ap.add_argument("--peer-log", help="python (>= 3.12) of a venv with aics-tlog")
    add_clock_argument(ap)
    args = ap.parse_args()
    set_clock(args.clock)
    rounds = 3 if args.quick else 7
    leaves = args.leaves or (20_000 if args.quick else 1_000_000)
    runs = 100 if args.quick else 500

    t0 = time.perf_counter()
    rows = tdx_bench.issue_rows(rounds, args.peer_tdx)
    rows += snp_bench.issue_rows(rounds, args.peer_snp)
    rows += gpu_bench.issue_rows(rounds, args.peer_gpu)
    rows += log_rows_bench.issue_rows(leaves, runs=runs, repeat=2 if args.quick else 3,
                                      peer_python=args.peer_log)
    rows.append(verify_bench.bundle_row(40 if args.quick else 200))
    print(table(rows))
    met = sum(r.met for r in rows)
    print(f"\n{met} of {len(rows)} targets met; {rounds} interleaved rounds per vendor row, "
          f"log of {leaves:,} leaves; {time.perf_counter() - t0:.0f} s in all. Ratios are to a "
          "bare signature verify (or reference) timed in the same process; a peer's ratio is "
          "to the same bare verify in its own process.")


if __name__ == "__main__":
    main()
