"""Benchmark (issue 15): one SEV-SNP report, cold and warm, as a ratio to one bare ECDSA
P-384 verify in the same process (run by hand: ``.venv/bin/python -m bench.snp_bench``).

- cold: a new SnpVerifier per call, every parse-once memo cleared, the VCEK, ASK and ARK given:
  parse + ARK -> ASK -> VCEK (RSA-PSS) + CRL + report signature + extensions;
- warm: the same verifier again (chain and CRL verified before, re-checked against ``at``).
Two inputs: the real trustee report (Milan VCEK, embedded ASK/ARK; no AMD CRL in the vectors,
so the CRL is waived) and a simulated Milan chain with 4096-bit RSA keys and its CRL.
The peer (omne-attest) is quoted from the issue. Prints a table; never run as a test.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

ROOT = Path(__file__).resolve().parent.parent

from attest.simulate.snp import SimulatedAmd, der  # noqa: E402
from bench.vendor_ratio import clear_parse_memos, print_rows, ratio_text, ratios  # noqa: E402
from verifier.snp.chain import load_key_certificate  # noqa: E402
from verifier.snp.roots import AmdProductRoots, amd_roots  # noqa: E402
from verifier.snp.signature import verify_report_signature  # noqa: E402
from verifier.snp.verify import SnpCollateral, SnpVerifier  # noqa: E402
from verifier.transcript import Transcript  # noqa: E402
from verifier.x509chain import PinnedRoot  # noqa: E402

AT = datetime(2026, 11, 23, tzinfo=UTC)
VEC = ROOT / "tests" / "vectors" / "snp"


NO_CRL = frozenset({"snp.crl"})  # the real vectors carry no CRL: waived by name


def main() -> None:
    report = (VEC / "trustee" / "test-report.bin").read_bytes()
    vcek_der = (VEC / "trustee" / "test-vcek.der").read_bytes()
    key = load_key_certificate(vcek_der, "VCEK").public_key()
    milan = amd_roots()["Milan"]
    col = SnpCollateral(vcek=vcek_der, ask=milan.ask.public_bytes(Encoding.DER),
                        ark=milan.ark.certificate.public_bytes(Encoding.DER))
    warm_v = SnpVerifier.production()

    sim = SimulatedAmd.create("Milan", rsa_bits=4096)
    sim_report = sim.report(version=3)
    sim_col = SnpCollateral(vcek=der(sim.vcek()), ask=der(sim.ask), ark=der(sim.ark),
                            crl=sim.crl())
    roots = {"Milan": AmdProductRoots("Milan", PinnedRoot("ARK-Milan (sim)", sim.ark), sim.ask,
                                      sim.asvk, simulated=True)}
    sim_warm = SnpVerifier(roots)

    def cold_real() -> None:
        clear_parse_memos()
        SnpVerifier.production().verify(report, at=AT, collateral=col,
                                        transcript=Transcript(waive=NO_CRL))

    def cold_sim() -> None:
        clear_parse_memos()
        SnpVerifier(roots).verify(sim_report, at=AT, collateral=sim_col)

    bare_ms, ms = ratios(lambda: verify_report_signature(report, key), {
        "cold": cold_real,
        "warm": lambda: warm_v.verify(report, at=AT, collateral=col,
                                      transcript=Transcript(waive=NO_CRL)),
        "sim cold": cold_sim,
        "sim warm": lambda: sim_warm.verify(sim_report, at=AT, collateral=sim_col),
    })
    print_rows("ECDSA P-384 verify", bare_ms, [
        ("SNP report (real), cold (new verifier, VCEK/ASK/ARK given, CRL waived)", ms["cold"],
         ratio_text(ms["cold"], bare_ms), "<= 1.8x"),
        ("SNP report (real), warm", ms["warm"], ratio_text(ms["warm"], bare_ms), "<= 1.1x"),
        ("SNP report (sim 4096-bit chain + CRL), cold", ms["sim cold"],
         ratio_text(ms["sim cold"], bare_ms), ""),
        ("SNP report (sim 4096-bit chain + CRL), warm", ms["sim warm"],
         ratio_text(ms["sim warm"], bare_ms), ""),
        ("peer: omne-attest, cold", None, "2.13x (from the issue)", ""),
    ])


if __name__ == "__main__":
    main()
