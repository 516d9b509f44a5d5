"""Benchmark (issue 15): one SEV-SNP report, cold and warm, as a ratio to one bare ECDSA
P-384 verify in the same process (run by hand: ``.venv/bin/python -m bench.snp_bench``).

- cold: a new SnpVerifier per call, every parse-once memo cleared, the VCEK, ASK and ARK given:
  parse + ARK -> ASK -> VCEK (RSA-PSS) + CRL + report signature + extensions;
- warm: the same verifier again (chain and CRL verified before, re-checked against ``at``).
Two inputs: the real trustee report (Milan VCEK, embedded ASK/ARK; no AMD CRL in the vectors,
so the CRL is waived) and a simulated Milan chain with 4096-bit RSA keys and its CRL.
Peer: omne-attest (PyPI, pure Python on ``cryptography``) on the same real report and VCEK/ASK/
ARK with a permissive policy (the report allows debug), timed against a bare P-384 verify of
the report in *its* process, when ``--peer-python`` names a venv with it (bench/peers.md);
otherwise the issue's figure. Prints a table; never run as a test.

Clock: ``--clock cpu`` (default) times by the thread's CPU time, ``--clock wall`` by
``time.perf_counter`` (the peer uses the same). On this shared machine wall-clock ratios swing
by up to 1x between runs (the Python-heavy cold case is preempted more than the short bare
verify); CPU time leaves out the waits. On a quiet machine the two agree (bench.vendor_ratio).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

ROOT = Path(__file__).resolve().parent.parent

from attest.simulate.snp import SimulatedAmd, der  # noqa: E402
from bench.vendor_ratio import (  # noqa: E402
    IssueRow,
    add_clock_argument,
    chosen_clock,
    clear_parse_memos,
    print_rows,
    ratio_row,
    ratio_text,
    ratios,
    run_peer,
    set_clock,
)
from verifier.snp.chain import load_key_certificate  # noqa: E402
from verifier.snp.roots import AmdProductRoots, amd_roots  # noqa: E402
from verifier.snp.signature import verify_report_signature  # noqa: E402
from verifier.snp.verify import SnpCollateral, SnpVerifier  # noqa: E402
from verifier.transcript import Transcript  # noqa: E402
from verifier.x509chain import PinnedRoot  # noqa: E402

AT = datetime(2026, 11, 23, tzinfo=UTC)
VEC = ROOT / "tests" / "vectors" / "snp"


NO_CRL = frozenset({"snp.crl"})  # the real vectors carry no CRL: waived by name


PEER_FIGURE = "2.13x (omne-attest, from the issue)"
PEER_SCRIPT = r"""
import hashlib, json, statistics, sys, time
import omne_attest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
d = json.load(open(sys.argv[1]))
h = bytes.fromhex
report, vcek, ask, ark = h(d["report"]), h(d["vcek"]), h(d["ask"]), h(d["ark"])
pin = hashlib.sha256(ark).digest()
policy = omne_attest.Policy(max_vmpl=3, reject_debug=False)
key = x509.load_der_x509_certificate(vcek).public_key()
sig = report[0x2A0:0x2A0 + 144]  # AMD SEV-SNP ABI table 23: R and S, 72 bytes little-endian
der = encode_dss_signature(int.from_bytes(sig[:72], "little"), int.from_bytes(sig[72:], "little"))
signed = report[:0x2A0]
def bare(): key.verify(der, signed, ec.ECDSA(hashes.SHA384()))
def peer(): omne_attest.verify(report, vcek, ask, ark, pin, policy)
clock = {"cpu": time.thread_time, "wall": time.perf_counter}[sys.argv[3]]
def per(fn, n=30):
    t = clock()
    for _ in range(n): fn()
    return (clock() - t) / n * 1000
peer(); bare()
b, p = [], []
for _ in range(int(sys.argv[2])):
    b.append(per(bare)); p.append(per(peer)); b.append(per(bare))
print(json.dumps({"bare": statistics.median(b), "peer": statistics.median(p)}))
"""


def peer(python: str | None, report: bytes, col: SnpCollateral, rounds: int) -> dict | str:  # type: ignore[type-arg]
    """omne-attest's verify (parse, report signature, ARK pinned by SHA-256, ARK -> ASK -> VCEK,
    chip binding, policy) over its bare P-384 verify: {"bare", "peer"} ms, or why not run."""
    if python is None:
        return "not run: no omne-attest venv given (--peer-python)"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.json"
        path.write_text(json.dumps({"report": report.hex(), "vcek": col.vcek.hex(),
                                    "ask": col.ask.hex(), "ark": col.ark.hex()}))
        return run_peer(python, PEER_SCRIPT, [str(path), str(rounds), chosen_clock()],
                       what="omne-attest")


def peer_text(got: dict | str) -> str:  # type: ignore[type-arg]
    if isinstance(got, str):
        return f"{got} (issue: {PEER_FIGURE})"
    return (f"{got['peer'] / got['bare']:.2f}x (omne-attest {got['peer']:.3f} ms; its bare "
            f"P-384 {got['bare']:.3f} ms)")


@dataclass
class SnpFigures:
    bare_ms: float
    ms: dict[str, float]
    peer: dict | str  # type: ignore[type-arg]


def measure(rounds: int = 7, peer_python: str | None = None) -> SnpFigures:
    """Every SNP case of the bench, timed interleaved with one bare P-384 verify."""
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
    }, rounds=rounds)
    return SnpFigures(bare_ms, ms, peer(peer_python, report, col, rounds))


def issue_rows(rounds: int = 7, peer_python: str | None = None) -> list[IssueRow]:
    """Issue 15's two SNP rows (the real report; the peer verifies the same)."""
    f = measure(rounds, peer_python)
    return [ratio_row("SNP report, cold (new verifier, VCEK/ASK/ARK given)", f.ms["cold"],
                      f.bare_ms, 1.8, peer_text(f.peer)),
            ratio_row("SNP report, warm", f.ms["warm"], f.bare_ms, 1.1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--peer-python", help="python of a venv with omne-attest")
    add_clock_argument(ap)
    args = ap.parse_args()
    set_clock(args.clock)
    f = measure(args.rounds, args.peer_python)
    bare_ms, ms = f.bare_ms, f.ms
    print_rows("ECDSA P-384 verify", bare_ms, [
        ("SNP report (real), cold (new verifier, VCEK/ASK/ARK given, CRL waived)", ms["cold"],
         ratio_text(ms["cold"], bare_ms), "<= 1.8x"),
        ("SNP report (real), warm", ms["warm"], ratio_text(ms["warm"], bare_ms), "<= 1.1x"),
        ("SNP report (sim 4096-bit chain + CRL), cold", ms["sim cold"],
         ratio_text(ms["sim cold"], bare_ms), ""),
        ("SNP report (sim 4096-bit chain + CRL), warm", ms["sim warm"],
         ratio_text(ms["sim warm"], bare_ms), ""),
        ("peer: omne-attest, same real report and chain, cold", None, peer_text(f.peer), ""),
    ])


if __name__ == "__main__":
    main()
