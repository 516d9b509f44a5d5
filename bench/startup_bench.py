"""Process start-up cost of the command-line tools (run by hand:
`.venv/bin/python -m bench.startup_bench [-n N] [--sev-snp-measure PATH]`).

Each row is the median wall time of N process starts of a command, next to the median of a
baseline command started the same number of times, interleaved so that load on the machine
hits both alike. Targets (issue 12, "Start-up"):

- `verifier --help` within 1.5x `python -c "import click, cryptography.x509"`;
- `attest measure snp` within 2x `sev-snp-measure` computing the same measurement
  (sev-snp-measure from PyPI, installed in a throwaway venv and named with --sev-snp-measure
  or $SEV_SNP_MEASURE; without it the baseline is `python -c "import hashlib"`, and the table
  says so).

Figures only: nothing here asserts on time (DESIGN.md, "bench/").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OVMF = ROOT / "tests" / "vectors" / "snp" / "sev-snp-measure" / "ovmf_AmdSev_suffix.bin"
SNP_ARGS = ["--vcpus", "4", "--vcpu-type", "EPYC-Milan", "--ovmf", str(OVMF)]


def start_once(argv: list[str]) -> float:
    """Wall seconds of one process run to completion (its output discarded)."""
    t0 = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def paired_medians(argv: list[str], base: list[str], n: int) -> tuple[float, float]:
    """Median seconds of ``argv`` and of ``base``, each started ``n`` times, interleaved."""
    start_once(argv), start_once(base)  # warm the page cache
    ours, theirs = [], []
    for _ in range(n):
        ours.append(start_once(argv))
        theirs.append(start_once(base))
    return statistics.median(ours), statistics.median(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="process starts per command")
    parser.add_argument("--sev-snp-measure", default=os.environ.get("SEV_SNP_MEASURE")
                        or shutil.which("sev-snp-measure"),
                        help="path of the sev-snp-measure script (PyPI) for the baseline")
    args = parser.parse_args()

    py = [sys.executable, "-c"]
    click_x509 = [*py, "import click, cryptography.x509"]
    if args.sev_snp_measure:
        snp_base = [args.sev_snp_measure, "--mode", "snp", *SNP_ARGS]
        snp_base_name = "sev-snp-measure --mode snp"
    else:
        snp_base = [*py, "import hashlib"]
        snp_base_name = "python -c 'import hashlib' (sev-snp-measure not found)"
    rows = [
        ("verifier --help", [str(BIN / "verifier"), "--help"],
         'python -c "import click, cryptography.x509"', click_x509, 1.5),
        ("tlog --help", [str(BIN / "tlog"), "--help"],
         'python -c "import click, cryptography.x509"', click_x509, None),
        ("attest --help", [str(BIN / "attest"), "--help"],
         'python -c "import click, cryptography.x509"', click_x509, None),
        ("attest measure snp", [str(BIN / "attest"), "measure", "snp", *SNP_ARGS],
         snp_base_name, snp_base, 2.0),
    ]
    print(f"median of {args.n} process starts each (ms)")
    print(f"{'command':<22} {'ms':>7}  {'baseline':<52} {'ms':>7} {'ratio':>6} {'target':>6}")
    for name, argv, base_name, base, target in rows:
        ours, theirs = paired_medians(argv, base, args.n)
        ratio = ours / theirs
        want = f"{target:.1f}x" if target else "-"
        print(f"{name:<22} {ours * 1e3:7.1f}  {base_name:<52} {theirs * 1e3:7.1f} "
              f"{ratio:5.2f}x {want:>6}")


if __name__ == "__main__":
    main()
