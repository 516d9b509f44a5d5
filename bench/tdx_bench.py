"""Benchmark (issue 15): TDX quote verification, cold and warm, as a ratio to one bare ECDSA
P-256 verify measured in the same process.

Rows:
- cold: a fresh cache and every parse-once memo cleared before each call (nothing known);
- warm: the same quote with the PCK chain, CRLs, TCB Info and QE Identity verified before
  (each still re-checked against its time; the quote's own signature is always verified);
- peer: dcap-qvl (Rust, PyPI wheel) on the same simulated v4 quote and collateral, timed
  against a bare P-256 verify in *its* process, when ``--peer-python`` names a venv with
  ``dcap-qvl`` and ``cryptography``; otherwise the issue's figure, marked as such.

Run by hand: ``.venv/bin/python -m bench.tdx_bench [--peer-python /tmp/venv/bin/python]``.
Prints a table; never run as a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
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
from bench.vendor_ratio import clear_parse_memos, print_rows, ratio_text, ratios, with_cache  # noqa: E402
from verifier.tdx.collateral import TdxCollateral, VerificationTimes  # noqa: E402
from verifier.tdx.evidence import verify_tdx_evidence  # noqa: E402
from verifier.tdx.roots import production_roots  # noqa: E402
from verifier.x509chain import PinnedRoot, fingerprint, pinned_root  # noqa: E402

VEC = ROOT / "tests" / "vectors" / "tdx" / "go-tdx-guest"
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
PEER_FIGURE = "10.8x (dcap-qvl, from the issue)"

PEER_SCRIPT = r"""
import json, statistics, sys, time
import dcap_qvl
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
d = json.load(open(sys.argv[1]))
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
    t = time.perf_counter()
    for _ in range(n): fn()
    return (time.perf_counter() - t) / n * 1000
peer(); bare()
b, p = [], []
for _ in range(7):
    b.append(per(bare)); p.append(per(peer)); b.append(per(bare))
print(json.dumps({"bare": statistics.median(b), "peer": statistics.median(p)}))
"""


def peer(python: str | None, sim: IntelSimulator, col: TdxCollateral, quote: bytes,
         root_der: bytes) -> tuple[float, float] | str:
    if python is None:
        return "not run (give --peer-python)"
    q = parse_quote(quote)
    ti, _, ti_sig = split_signed_json(col.tcb_info, "tcbInfo", check="bench")  # type: ignore[arg-type]
    qi, _, qi_sig = split_signed_json(col.qe_identity, "enclaveIdentity", check="bench")  # type: ignore[arg-type]
    doc = {"quote": quote.hex(), "root": root_der.hex(), "now": int(NOW.timestamp()),
           "pck_crl_issuer_chain": col.pck_crl_issuer_chain.decode(),  # type: ignore[union-attr]
           "root_crl": col.root_crl.hex(), "pck_crl": col.pck_crl.hex(),  # type: ignore[union-attr]
           "tcb_info_issuer_chain": col.tcb_info_issuer_chain.decode(),  # type: ignore[union-attr]
           "tcb_info": ti.decode(), "tcb_info_signature": ti_sig.hex(),
           "qe_identity_issuer_chain": col.qe_identity_issuer_chain.decode(),  # type: ignore[union-attr]
           "qe_identity": qi.decode(), "qe_identity_signature": qi_sig.hex(),
           "att_key": q.signature_data.attestation_key.hex(),
           "sig": q.signature_data.signature.hex(), "signed": q.signed_bytes.hex()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.json"
        path.write_text(json.dumps(doc))
        proc = subprocess.run([python, "-c", PEER_SCRIPT, str(path)], cwd=tmp,
                              capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        return "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:100]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["bare"], out["peer"]


def sim_roots(sim: IntelSimulator) -> list[PinnedRoot]:
    """The simulator's root, pinned with its PCK CA and TCB signing certificate as embedded
    intermediates: the simulator stands for Intel, whose production trust store
    (verifier.tdx.roots) embeds its PCK Platform CA and TCB Signing certificate the same way."""
    def pin(cert: x509.Certificate) -> tuple[bytes, str]:
        return cert.public_bytes(Encoding.PEM), fingerprint(cert).hex()

    return [pinned_root("sim", *pin(sim.root_cert), intermediates=[
        ("sim PCK CA", *pin(sim.pck_ca_cert)), ("sim TCB signing", *pin(sim.tcb_signing_cert))])]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--peer-python", help="python of a venv with dcap-qvl and cryptography")
    args = ap.parse_args()
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
    real_times = VerificationTimes.uniform(datetime(2026, 2, 3, tzinfo=UTC)).override(
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
    }, rounds=args.rounds)
    root_der = sim.root_cert.public_bytes(Encoding.DER)
    got = peer(args.peer_python, sim, col, quote, root_der)
    peer_text = (f"{got[1] / got[0]:.2f}x (dcap-qvl {got[1]:.3f} ms, its bare {got[0]:.3f} ms)"
                 if isinstance(got, tuple) else f"{PEER_FIGURE}; here: {got}")
    print_rows("ECDSA P-256 verify", bare_ms, [
        ("TDX v4 quote (simulated), full verification, cold (no caches)", ms["cold"],
         ratio_text(ms["cold"], bare_ms), "<= 10.8x"),
        ("TDX v4 quote (simulated), warm (collateral and chain verified before)", ms["warm"],
         ratio_text(ms["warm"], bare_ms), "<= 4x"),
        ("TDX v5 quote (real, Intel vectors), cold", ms["real cold"],
         ratio_text(ms["real cold"], bare_ms), ""),
        ("TDX v5 quote (real, Intel vectors), warm", ms["real warm"],
         ratio_text(ms["real warm"], bare_ms), ""),
        ("peer: dcap-qvl, same simulated v4 quote, cold", None, peer_text, ""),
    ])


if __name__ == "__main__":
    main()
