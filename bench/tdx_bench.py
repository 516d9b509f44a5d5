"""Benchmark (issue 15): TDX quote verification, cold and warm, as a ratio to one bare ECDSA
P-256 verify measured in the same process.

Rows:
- cold: a fresh cache and every parse-once memo cleared before each call (nothing known);
- warm: the same quote with the PCK chain, CRLs, TCB Info and QE Identity verified before
  (each still re-checked against its time; the quote's own signature is always verified);
- peer: dcap-qvl (Rust, PyPI wheel) on the same simulated v4 quote and collateral, timed
  against a bare P-256 verify in *its* process, when ``--peer-python`` names a venv with
  ``dcap-qvl`` and ``cryptography``; otherwise the issue's figure, marked as such. The peer is
  also tried once on the real v5 vectors at the TCB Info's time and prints what it says (their
  collateral has no common validity time: it refuses; bench/peers.md).

Clock: ``--clock cpu`` (default) times by the thread's CPU time, ``--clock wall`` by
``time.perf_counter`` (the peer uses the same). On this shared machine wall-clock ratios swing
by up to 1x between runs (the Python-heavy cases are preempted more than the short bare
verify); CPU time leaves out the waits. On a quiet machine the two agree (bench.vendor_ratio).

Run by hand: ``.venv/bin/python -m bench.tdx_bench [--peer-python /tmp/venv/bin/python]
[--clock cpu|wall]``. Prints a table; never run as a test.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

ROOT = Path(__file__).resolve().parent.parent

from attest.formats.intel_pcs import split_signed_json  # noqa: E402
from attest.formats.tdx_quote import parse_quote  # noqa: E402
from attest.simulate.tdx import IntelSimulator  # noqa: E402
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
    with_cache,
)
from verifier.tdx.collateral import TdxCollateral, VerificationTimes  # noqa: E402
from verifier.tdx.evidence import verify_tdx_evidence  # noqa: E402
from verifier.tdx.roots import production_roots  # noqa: E402
from verifier.x509chain import PinnedRoot, fingerprint, pinned_root  # noqa: E402

VEC = ROOT / "tests" / "vectors" / "tdx" / "go-tdx-guest"
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
PEER_FIGURE = "10.8x (dcap-qvl, from the issue)"
# The real v5 vectors' collateral has no common validity time (TCB Info 2026-02/03, its signing
# certificate expired 2025-05-21, QE Identity and PCK CRL 2023-06/07): our bench gives each item
# its own time; dcap-qvl takes one, the TCB Info's issue time.
REAL_TCB_INFO_TIME = datetime(2026, 2, 3, tzinfo=UTC)

PEER_SCRIPT = r"""
import json, statistics, sys, time
import dcap_qvl
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
clock = {"cpu": time.thread_time, "wall": time.perf_counter}[sys.argv[1]]
d = json.load(open(sys.argv[2]))
h = bytes.fromhex
quote, root = h(d["quote"]), h(d["root"])
col = dcap_qvl.QuoteCollateralV3(d["pck_crl_issuer_chain"], h(d["root_crl"]), h(d["pck_crl"]),
    d["tcb_info_issuer_chain"], d["tcb_info"], h(d["tcb_info_signature"]),
    d["qe_identity_issuer_chain"], d["qe_identity"], h(d["qe_identity_signature"]))
now = d["now"]
key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + h(d["att_key"]))
sig = h(d["sig"]); der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                              int.from_bytes(sig[32:], "big"))
signed = h(d["signed"])
def bare(): key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
def peer(): dcap_qvl.verify_with_root_ca(quote, col, root, now)
def per(fn, n=30):
    t = clock()
    for _ in range(n): fn()
    return (clock() - t) / n * 1000
status = dcap_qvl.verify_with_root_ca(quote, col, root, now).status
real = "not given"
if len(sys.argv) > 3:
    r = json.load(open(sys.argv[3]))
    rcol = dcap_qvl.QuoteCollateralV3(r["pck_crl_issuer_chain"], h(r["root_crl"]),
        h(r["pck_crl"]), r["tcb_info_issuer_chain"], r["tcb_info"], h(r["tcb_info_signature"]),
        r["qe_identity_issuer_chain"], r["qe_identity"], h(r["qe_identity_signature"]))
    try:
        real = "verified: " + dcap_qvl.verify_with_root_ca(h(r["quote"]), rcol, h(r["root"]),
                                                           r["now"]).status
    except Exception as exc:
        real = "refused at %s: %s" % (time.strftime("%Y-%m-%d", time.gmtime(r["now"])), exc)
bare()
b, p = [], []
for _ in range(7):
    b.append(per(bare)); p.append(per(peer)); b.append(per(bare))
print(json.dumps({"bare": statistics.median(b), "peer": statistics.median(p),
                  "status": status, "real": real}))
"""


def _peer_doc(quote: bytes, col: TdxCollateral, root_der: bytes, now: datetime) -> dict:  # type: ignore[type-arg]
    """dcap-qvl's inputs: the quote, its collateral split as QuoteCollateralV3 wants it."""
    q = parse_quote(quote)
    ti, _, ti_sig = split_signed_json(col.tcb_info, "tcbInfo", check="bench")  # type: ignore[arg-type]
    qi, _, qi_sig = split_signed_json(col.qe_identity, "enclaveIdentity", check="bench")  # type: ignore[arg-type]
    return {"quote": quote.hex(), "root": root_der.hex(), "now": int(now.timestamp()),
            "pck_crl_issuer_chain": col.pck_crl_issuer_chain.decode(),  # type: ignore[union-attr]
            "root_crl": col.root_crl.hex(), "pck_crl": col.pck_crl.hex(),  # type: ignore[union-attr]
            "tcb_info_issuer_chain": col.tcb_info_issuer_chain.decode(),  # type: ignore[union-attr]
            "tcb_info": ti.decode(), "tcb_info_signature": ti_sig.hex(),
            "qe_identity_issuer_chain": col.qe_identity_issuer_chain.decode(),  # type: ignore[union-attr]
            "qe_identity": qi.decode(), "qe_identity_signature": qi_sig.hex(),
            "att_key": q.signature_data.attestation_key.hex(),
            "sig": q.signature_data.signature.hex(), "signed": q.signed_bytes.hex()}


def peer(python: str | None, col: TdxCollateral, quote: bytes, root_der: bytes,
         real: tuple[bytes, TdxCollateral, datetime] | None = None) -> dict | str:  # type: ignore[type-arg]
    """dcap-qvl on the simulated quote (timed against a bare P-256 verify in its process) and,
    once, on the real v5 vectors at ``real``'s time: {"bare", "peer", "status", "real"}, or
    why it was not run."""
    with tempfile.TemporaryDirectory() as tmp:
        sim_path, real_path = Path(tmp) / "sim.json", Path(tmp) / "real.json"
        sim_path.write_text(json.dumps(_peer_doc(quote, col, root_der, NOW)))
        args = [chosen_clock(), str(sim_path)]
        if real is not None:
            real_path.write_text(json.dumps(_peer_doc(real[0], real[1], _intel_root_der(),
                                                      real[2])))
            args.append(str(real_path))
        return run_peer(python, PEER_SCRIPT, args, what="dcap-qvl")


def sim_roots(sim: IntelSimulator) -> list[PinnedRoot]:
    """The simulator's root, pinned with its PCK CA and TCB signing certificate as embedded
    intermediates: the simulator stands for Intel, whose production trust store
    (verifier.tdx.roots) embeds its PCK Platform CA and TCB Signing certificate the same way."""
    def pin(cert: x509.Certificate) -> tuple[bytes, str]:
        return cert.public_bytes(Encoding.PEM), fingerprint(cert).hex()

    return [pinned_root("sim", *pin(sim.root_cert), intermediates=[
        ("sim PCK CA", *pin(sim.pck_ca_cert)), ("sim TCB signing", *pin(sim.tcb_signing_cert))])]


def _intel_root_der() -> bytes:
    from cryptography import x509

    pem = (VEC / "trusted_root.pem").read_bytes()
    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


def peer_text(got: dict | str) -> str:  # type: ignore[type-arg]
    if isinstance(got, str):
        return f"{got} (issue: {PEER_FIGURE})"
    return (f"{got['peer'] / got['bare']:.2f}x (dcap-qvl {got['peer']:.3f} ms, status "
            f"{got['status']}; its bare P-256 {got['bare']:.3f} ms)")


@dataclass
class TdxFigures:
    bare_ms: float
    ms: dict[str, float]
    peer: dict | str  # type: ignore[type-arg]


def measure(rounds: int = 7, peer_python: str | None = None) -> TdxFigures:
    """Every TDX case of the bench, timed interleaved with one bare P-256 verify."""
    from verifier.tdx.collateral import TdxCollateral as Col

    sim = IntelSimulator(now=NOW)
    c = sim.collateral()
    col = Col(**{k: getattr(c, k) for k in Col.__dataclass_fields__})
    quote = sim.quote(version=4).to_bytes()
    roots = sim_roots(sim)
    times = VerificationTimes.uniform(NOW)

    real_quote = (VEC / "quote_v5_sample.dat").read_bytes()
    real_col = Col(tcb_info=(VEC / "sample_tcbinfo_response_v5").read_bytes(),
                   tcb_info_issuer_chain=(VEC / "tcb_info_issuer_chain.pem").read_bytes(),
                   qe_identity=(VEC / "sample_qeIdentity_response").read_bytes(),
                   qe_identity_issuer_chain=(VEC / "qe_identity_issuer_chain.pem").read_bytes(),
                   pck_crl=(VEC / "pckcrl").read_bytes(),
                   pck_crl_issuer_chain=(VEC / "pck_crl_issuer_chain.pem").read_bytes(),
                   root_crl=(VEC / "rootcrl.der").read_bytes())
    real_times = VerificationTimes.uniform(REAL_TCB_INFO_TIME).override(
        tcb_signing_chain=datetime(2025, 5, 1, tzinfo=UTC),
        qe_identity=datetime(2023, 7, 1, tzinfo=UTC), pck_crl=datetime(2023, 7, 1, tzinfo=UTC),
        root_crl=datetime(2024, 1, 1, tzinfo=UTC))
    real_roots = production_roots()

    def make_cache() -> object:
        try:
            from verifier.verified_cache import VendorCaches
        except ImportError:  # an older checkout: no caches
            return None
        return VendorCaches()

    warm_cache, real_warm_cache = make_cache(), make_cache()

    def run(q: bytes, cl: Col, r: list, t: VerificationTimes, cache: object) -> None:  # type: ignore[type-arg]
        with_cache(verify_tdx_evidence, cache, quote_bytes=q, collateral=cl, roots=r, times=t)

    def cold(q: bytes, cl: Col, r: list, t: VerificationTimes) -> None:  # type: ignore[type-arg]
        clear_parse_memos()
        run(q, cl, r, t, make_cache())

    q = parse_quote(quote)
    key = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), b"\x04" + q.signature_data.attestation_key)
    sig = q.signature_data.signature
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    signed = q.signed_bytes

    def bare() -> None:
        key.verify(der, signed, ec.ECDSA(hashes.SHA256()))

    bare_ms, ms = ratios(bare, {
        "cold": lambda: cold(quote, col, roots, times),
        "warm": lambda: run(quote, col, roots, times, warm_cache),
        "real cold": lambda: cold(real_quote, real_col, real_roots, real_times),
        "real warm": lambda: run(real_quote, real_col, real_roots, real_times,
                                 real_warm_cache),
    }, rounds=rounds)
    got = (peer(peer_python, col, quote, sim.root_cert.public_bytes(Encoding.DER),
                real=(real_quote, real_col, REAL_TCB_INFO_TIME))
           if peer_python else "not run: no dcap-qvl venv given (--peer-python)")
    return TdxFigures(bare_ms, ms, got)


def issue_rows(rounds: int = 7, peer_python: str | None = None) -> list[IssueRow]:
    """Issue 15's two TDX rows (the simulated v4 quote, which the peer verifies too)."""
    f = measure(rounds, peer_python)
    return [ratio_row("TDX v4 quote, full verification, cold (no caches)", f.ms["cold"],
                      f.bare_ms, 10.8, peer_text(f.peer)),
            ratio_row("TDX quote, warm (collateral and chain verified before)", f.ms["warm"],
                      f.bare_ms, 4)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--peer-python", help="python of a venv with dcap-qvl and cryptography")
    add_clock_argument(ap)
    args = ap.parse_args()
    set_clock(args.clock)
    f = measure(args.rounds, args.peer_python)
    bare_ms, ms = f.bare_ms, f.ms
    real = (f.peer.get("real", "?") if isinstance(f.peer, dict)
            else "not run")
    print_rows("ECDSA P-256 verify", bare_ms, [
        ("TDX v4 quote (simulated), full verification, cold (no caches)", ms["cold"],
         ratio_text(ms["cold"], bare_ms), "<= 10.8x"),
        ("TDX v4 quote (simulated), warm (collateral and chain verified before)", ms["warm"],
         ratio_text(ms["warm"], bare_ms), "<= 4x"),
        ("TDX v5 quote (real, Intel vectors), cold", ms["real cold"],
         ratio_text(ms["real cold"], bare_ms), ""),
        ("TDX v5 quote (real, Intel vectors), warm", ms["real warm"],
         ratio_text(ms["real warm"], bare_ms), ""),
        ("peer: dcap-qvl, same simulated v4 quote, cold", None, peer_text(f.peer), ""),
        ("peer: dcap-qvl, real v5 vectors (one time for all collateral)", None, real, ""),
    ])


if __name__ == "__main__":
    main()
