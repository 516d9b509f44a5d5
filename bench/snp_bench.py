"""SEV-SNP verification cost (run by hand: `.venv/bin/python bench/snp_bench.py`).

- bare:  the ECDSA P-384/SHA-384 verify of one real report under a preloaded VCEK key;
- warm:  SnpVerifier.verify of the same report when the chain (and CRL) for that VCEK are
         already verified (the verifier's per-certificate cache);
- cold:  a fresh SnpVerifier each time: parse + full ARK->ASK->VCEK chain (RSA-PSS) + CRL +
         signature + extensions. Real AMD chain (4096-bit RSA) with the CRL waived (the
         vectors have no AMD CRL), and a simulated chain with 4096-bit RSA keys + its CRL.

Targets (issue 4): warm <= 1.5x bare, measured side by side here; cold <= 5 ms.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from attest.simulate.snp import SimulatedAmd, der  # noqa: E402
from verifier.snp.chain import load_key_certificate  # noqa: E402
from verifier.snp.roots import AmdProductRoots  # noqa: E402
from verifier.snp.signature import verify_report_signature  # noqa: E402
from verifier.snp.verify import SnpCollateral, SnpVerifier  # noqa: E402
from verifier.x509chain import PinnedRoot  # noqa: E402

AT = datetime(2026, 11, 23, tzinfo=UTC)
VEC = ROOT / "tests" / "vectors" / "snp"


def per_call_ms(fn: Callable[[], object], n: int, rounds: int = 5) -> float:
    """Median over ``rounds`` of the mean time per call, in ms."""
    fn()
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - t) / n * 1000)
    return statistics.median(out)


def main() -> None:
    report = (VEC / "trustee" / "test-report.bin").read_bytes()
    vcek_der = (VEC / "trustee" / "test-vcek.der").read_bytes()
    key = load_key_certificate(vcek_der, "VCEK").public_key()
    col = SnpCollateral(vcek=vcek_der)
    warm_v = SnpVerifier.production(unsafe_skip_crl=True)

    sim = SimulatedAmd.create("Milan", rsa_bits=4096)
    sim_report = sim.report(version=3)
    sim_col = SnpCollateral(vcek=der(sim.vcek()), crl=sim.crl())
    roots = {"Milan": AmdProductRoots("Milan", PinnedRoot("ARK-Milan (sim)", sim.ark), sim.ask,
                                      sim.asvk, simulated=True)}
    sim_warm = SnpVerifier(roots)

    sim_key = sim.vcek_key.public_key()

    def pair(bare_fn: Callable[[], object], fn: Callable[[], object]) -> tuple[float, float]:
        """Interleaved rounds, so both see the same machine load; medians."""
        b, w = [], []
        for _ in range(7):
            b.append(per_call_ms(bare_fn, 100, rounds=1))
            w.append(per_call_ms(fn, 100, rounds=1))
        return statistics.median(b), statistics.median(w)

    bare, warm = pair(lambda: verify_report_signature(report, key),
                      lambda: warm_v.verify(report, at=AT, collateral=col))
    sbare, swarm = pair(lambda: verify_report_signature(sim_report, sim_key),
                        lambda: sim_warm.verify(sim_report, at=AT, collateral=sim_col))
    cold_real = per_call_ms(lambda: SnpVerifier.production(unsafe_skip_crl=True).verify(
        report, at=AT, collateral=col), 50)
    cold_sim = per_call_ms(lambda: SnpVerifier(roots).verify(
        sim_report, at=AT, collateral=sim_col), 50)
    rows = [
        ("bare ECDSA P-384 verify (real report)", bare, "1.00x"),
        ("warm verify, real report (CRL waived)", warm, f"{warm / bare:.2f}x bare"),
        ("bare ECDSA P-384 verify (sim report)", sbare, "1.00x"),
        ("warm verify, sim 4096-bit chain + CRL", swarm, f"{swarm / sbare:.2f}x bare"),
        ("cold verify, real AMD chain (CRL waived)", cold_real, "target <= 5 ms"),
        ("cold verify, sim 4096-bit chain + CRL", cold_sim, "target <= 5 ms"),
    ]
    print(f"| {'case':42} | {'ms/verify':>9} | {'note':14} |")
    print(f"|{'-' * 44}|{'-' * 11}|{'-' * 16}|")
    for name, ms, note in rows:
        print(f"| {name:42} | {ms:9.3f} | {note:14} |")


if __name__ == "__main__":
    main()
