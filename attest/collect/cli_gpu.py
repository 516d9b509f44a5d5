"""`attest gpu-evidence`: collect every GPU's evidence for a nonce (NVML)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from attest.collect.nvml_gpu import CollectedEvidence, collect_gpu_evidence


def evidence_summary(ev: CollectedEvidence, files: dict[int, tuple[str, str]] | None = None,
                     ) -> dict[str, Any]:
    gpus = []
    for g in ev.gpus:
        item: dict[str, Any] = {"index": g.index, "uuid": g.uuid, "nonce": g.nonce.hex(),
                                "report_size": len(g.report)}
        if files:
            item["report"], item["chain"] = files[g.index]
        else:
            item["report_hex"] = g.report.hex()
            item["chain_pem"] = g.chain_pem.decode("ascii", "replace")
        gpus.append(item)
    return {"nonce": ev.nonce.hex() if ev.nonce is not None else None,
            "driver_version": ev.driver_version,
            "cc_mode": ev.cc.mode, "attached": len(ev.gpus), "gpus": gpus}


def parse_nonce_hex(text: str) -> bytes:
    """A 32-byte nonce given as hex on the command line."""
    try:
        nonce = bytes.fromhex(text)
    except ValueError:
        raise click.BadParameter("--nonce must be hex") from None
    if len(nonce) != 32:
        raise click.BadParameter(f"--nonce must be 32 bytes, got {len(nonce)}")
    return nonce


@click.command("gpu-evidence")
@click.option("--nonce", "nonce_hex", required=True, help="32-byte nonce (hex)")
@click.option("-o", "--output", type=click.Path(file_okay=False),
              help="write gpu-N.report.bin, gpu-N.chain.pem and evidence.json here")
def gpu_evidence(nonce_hex: str, output: str | None) -> None:
    """Collect the attestation report and certificate chain of every NVIDIA GPU."""
    ev = collect_gpu_evidence(parse_nonce_hex(nonce_hex))
    if output is None:
        click.echo(json.dumps(evidence_summary(ev), indent=2))
        return
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for g in ev.gpus:
        report, chain = f"gpu-{g.index}.report.bin", f"gpu-{g.index}.chain.pem"
        (out / report).write_bytes(g.report)
        (out / chain).write_bytes(g.chain_pem)
        files[g.index] = (report, chain)
    summary = evidence_summary(ev, files)
    (out / "evidence.json").write_text(json.dumps(summary, indent=2) + "\n")
    click.echo(f"{len(ev.gpus)} GPU(s), CC mode {ev.cc.mode}, driver {ev.driver_version}: "
               f"evidence written to {out}")
