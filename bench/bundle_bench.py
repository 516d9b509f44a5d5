"""Evidence bundle encode/decode and binding derivation cost (run by hand; prints a table).

Blobs are placeholders of real sizes: SNP report 1184 B + 3 certificates ~1.4 KiB, per GPU an
SPDM report 4117 B and a PEM chain 4825 B (H100 vectors), two 20 KiB RIMs shared by all GPUs.

    .venv/bin/python -m bench.bundle_bench
"""

from __future__ import annotations

import statistics
import timeit

from attest.binding import bundle_gpu_nonce, bundle_report_data
from attest.formats.bundle import (
    EvidenceBundle,
    GpuEvidence,
    GpuState,
    SnpEvidence,
    decode_bundle,
    encode_bundle,
)

CERT = b"\x30\x82\x05\x64" + bytes(0x564)


def make(gpus: int) -> EvidenceBundle:
    items = [SnpEvidence(bytes(1184), {"ark": CERT, "ask": CERT, "vcek": CERT})]
    items += [GpuEvidence(i, bytes([i]) * 4117, b"P" * 4825,
                          {"driver": "nvidia/rim/driver", "vbios": "nvidia/rim/vbios"})
              for i in range(gpus)]
    collateral = ({"nvidia/rim/driver": b"D" * 20519, "nvidia/rim/vbios": b"V" * 20466}
                  if gpus else {})
    return EvidenceBundle(bytes(32), b"\x30\x2a" + bytes(42), False, tuple(items),
                          b"{}" * 600, b"p" * 3000, collateral,
                          GpuState("on", gpus) if gpus else GpuState())


def median_ms(fn: object, runs: int = 7, number: int = 50) -> float:
    times = timeit.repeat(fn, repeat=runs, number=number)  # type: ignore[arg-type]
    return statistics.median(times) / number * 1e3


def main() -> None:
    print(f"{'GPUs':>4} {'bytes':>8} {'encode ms':>10} {'decode ms':>10} {'binding ms':>11}")
    for gpus in (0, 1, 8, 16):
        bundle = make(gpus)
        data = encode_bundle(bundle)
        enc = median_ms(lambda b=bundle: encode_bundle(b))
        dec = median_ms(lambda d=data: decode_bundle(d))
        bind = median_ms(lambda b=bundle: (bundle_report_data(b), [
            bundle_gpu_nonce(b, g.index) for g in b.gpu_evidence]))
        print(f"{gpus:>4} {len(data):>8} {enc:>10.3f} {dec:>10.3f} {bind:>11.3f}")


if __name__ == "__main__":
    main()
