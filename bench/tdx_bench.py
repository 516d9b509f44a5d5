"""Benchmark: verify one TDX quote with a warm collateral cache (target <= 5 ms median).

Run by hand: ``.venv/bin/python bench/tdx_bench.py [--rounds N]``. Prints a table; never run
as a test. "Warm cache" = the collateral comes from a DiskCache via PcsClient in offline
mode (no network), so each round reads the cache, parses and verifies everything: the quote,
the PCK chain, both CRLs, TCB Info and QE Identity (chains and signatures), TCB matching
and the policy. The ratio compares with the bare ECDSA P-256 verifications the pipeline
performs (15 for a quote with full collateral: PCK chain 3, QE report 1, quote 1, Root CRL 1,
PCK CRL chain 2 + CRL 1, TCB Info chain 2 + 1, QE Identity chain 2 + 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from attest.collateral.pcs_fetch import (  # noqa: E402
    PCS_BASE,
    ROOT_CRL_URL,
    PcsClient,
    pck_crl_url,
    qe_identity_url,
    tcb_info_url,
)
from attest.formats.tdx_quote import parse_quote  # noqa: E402
from attest.simulate.tdx import IntelSimulator  # noqa: E402
from transparency_log.http_fetch import DiskCache  # noqa: E402
from verifier.tdx.collateral import VerificationTimes  # noqa: E402
from verifier.tdx.evidence import verify_tdx_evidence  # noqa: E402
from verifier.tdx.roots import production_roots  # noqa: E402
from verifier.x509chain import fingerprint, pinned_root  # noqa: E402

VEC = ROOT / "tests" / "vectors" / "tdx" / "go-tdx-guest"
ECDSA_PER_QUOTE = 15


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def _warm_real(cache: DiskCache) -> None:
    fmspc = bytes.fromhex("90c06f000000")
    items = [
        (tcb_info_url(PCS_BASE, fmspc), "sample_tcbinfo_response_v5", "tcb_info_issuer_chain.pem"),
        (qe_identity_url(PCS_BASE), "sample_qeIdentity_response", "qe_identity_issuer_chain.pem"),
        (pck_crl_url(PCS_BASE, "platform"), "pckcrl", "pck_crl_issuer_chain.pem"),
        (ROOT_CRL_URL, "rootcrl.der", None),
    ]
    for url, body, chain in items:
        cache.put(url, (VEC / body).read_bytes())
        if chain:
            cache.put(url + "#issuer-chain", (VEC / chain).read_bytes())


def _median_ms(fn, rounds: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(wall-clock median, CPU-time median) in ms; CPU time is steadier on a shared host."""
    fn()
    wall, cpu = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=300)
    rounds = ap.parse_args().rounds
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = DiskCache(tmp)
        _warm_real(cache)
        client = PcsClient(None, cache=cache)
        quote = (VEC / "quote_v5_sample.dat").read_bytes()
        times = VerificationTimes.uniform(_t("2026-02-03")).override(
            tcb_signing_chain=_t("2025-05-01"), qe_identity=_t("2023-07-01"),
            pck_crl=_t("2023-07-01"), root_crl=_t("2024-01-01"))
        roots = production_roots()
        fmspc = bytes.fromhex("90c06f000000")

        def real() -> None:
            verify_tdx_evidence(quote, client.collateral(fmspc), roots=roots, times=times)

        rows.append(("real v5 quote (Intel vectors)", _median_ms(real, rounds)))

        now = _t("2026-11-23")
        sim = IntelSimulator(now=now)
        sim_cache = DiskCache(Path(tmp) / "sim")
        sim_client = PcsClient(lambda url: _serve(sim, url), cache=sim_cache)
        sim_client.collateral(sim.extensions.fmspc)  # warm the cache
        sim_client = PcsClient(None, cache=sim_cache)
        sim_quote = sim.quote(version=4).to_bytes()
        sim_roots = [pinned_root("sim", sim.root_pem, fingerprint(sim.root_cert).hex())]

        def simulated() -> None:
            verify_tdx_evidence(sim_quote, sim_client.collateral(sim.extensions.fmspc),
                                roots=sim_roots, times=VerificationTimes.uniform(now))

        rows.append(("simulated v4 quote", _median_ms(simulated, rounds)))

        # Bare ECDSA P-256 verification of the quote's own signature, 15 times.
        q = parse_quote(quote)
        key = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b"\x04" + q.signature_data.attestation_key)
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        sig = q.signature_data.signature
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        signed = q.signed_bytes

        def bare() -> None:
            for _ in range(ECDSA_PER_QUOTE):
                key.verify(der, signed, ec.ECDSA(hashes.SHA256()))

        bare_ms = _median_ms(bare, rounds)
    load = os.getloadavg()[0]
    print(f"rounds {rounds}, load average {load:.2f} on {os.cpu_count()} CPUs")
    print(f"| case | wall median ms | CPU median ms | ratio (CPU) to {ECDSA_PER_QUOTE} bare "
          "ECDSA P-256 verifications |")
    print("|---|---|---|---|")
    for name, (wall, cpu) in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {cpu / bare_ms[1]:.1f}x |")
    print(f"| {ECDSA_PER_QUOTE} bare ECDSA P-256 verifications | {bare_ms[0]:.2f} | "
          f"{bare_ms[1]:.2f} | 1.0x |")


def _serve(sim: IntelSimulator, url: str):  # type: ignore[no-untyped-def]
    from urllib.parse import urlsplit

    from transparency_log.http_fetch import FetchResponse

    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    routes = sim.pcs_routes()
    if parts.path.endswith("IntelSGXRootCA.der"):
        target = "/IntelSGXRootCA.der"
    status, headers, body = routes[target]
    return FetchResponse(status, body, headers)


if __name__ == "__main__":
    main()
