"""`verifier bundle-inspect FILE [--json]`: strictly decode an evidence bundle and summarize it.

For debugging: it verifies nothing (no signatures, chains, log proofs or policy; that is
`verifier bundle`), but it refuses a malformed bundle exactly as the verifier does
(FormatError naming the field path, exit 2), and it prints the binding values the bundle's
reports must carry (docs/formats.md, "Binding"). A simulated bundle gets a loud banner.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import click

from attest.binding import bundle_gpu_nonce, bundle_report_data, gpu_digest
from attest.formats.bundle import (
    EvidenceBundle,
    GpuEvidence,
    SnpEvidence,
    TdxEvidence,
    decode_bundle,
)
from transparency_log.common.clitools import read_input

__all__ = ["SIMULATED_BANNER", "bundle_inspect", "summarize"]

SIMULATED_BANNER = ("*** SIMULATED HARDWARE: this bundle's evidence was made by "
                    "attest.simulate and proves nothing about a real TEE ***")


def _blob(data: bytes) -> dict[str, Any]:
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _item(item: SnpEvidence | TdxEvidence | GpuEvidence) -> dict[str, Any]:
    out: dict[str, Any] = {"type": item.TYPE}
    if isinstance(item, SnpEvidence):
        out["report"] = _blob(item.report)
        out["certs"] = {role: _blob(der) for role, der in item.certs.items()}
        out["collateral"] = dict(item.collateral)
    elif isinstance(item, TdxEvidence):
        out["quote"] = _blob(item.quote)
        out["collateral"] = dict(item.collateral)
    else:
        out["index"] = item.index
        out["report"] = _blob(item.report)
        out["cert_chain"] = _blob(item.cert_chain)
        out["rims"] = dict(item.rims)
        out["ocsp"] = list(item.ocsp)
    return out


def summarize(bundle: EvidenceBundle, data: bytes) -> dict[str, Any]:
    """A JSON-ready summary: sizes and SHA-256 of every blob, and the binding values."""
    first_line = bundle.tlog_proof.split(b"\n", 1)[0].decode("utf-8", "replace")
    binding: dict[str, Any] = {
        "gpu_digest": gpu_digest(bundle.gpu_state, bundle.gpu_evidence).hex(),
        **{f"gpu_nonce[{g.index}]": bundle_gpu_nonce(bundle, g.index).hex()
           for g in bundle.gpu_evidence},
    }
    cpu = bundle.cpu_evidence
    if cpu is not None:
        field = "REPORT_DATA" if isinstance(cpu, SnpEvidence) else "REPORTDATA"
        binding[field] = bundle_report_data(bundle).hex()
    return {
        "bundle": _blob(data),
        "version": bundle.version,
        "simulated": bundle.simulated,
        "gpu_state": {"cc_mode": bundle.gpu_state.cc_mode,
                      "attached": bundle.gpu_state.attached},
        "nonce": bundle.nonce.hex(),
        "node_key": _blob(bundle.node_key),
        "evidence": [_item(e) for e in bundle.evidence],
        "release": _blob(bundle.release),
        "tlog_proof": {**_blob(bundle.tlog_proof), "first_line": first_line},
        "collateral": {name: _blob(b) for name, b in bundle.collateral.items()},
        "sigstore_bundle": (_blob(bundle.sigstore_bundle)
                            if bundle.sigstore_bundle is not None else None),
        "ohttp_keys": _blob(bundle.ohttp_keys) if bundle.ohttp_keys is not None else None,
        "binding": binding,
    }


def _refs(refs: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in refs.items()) or "-"


def _text(s: dict[str, Any]) -> list[str]:
    def blob(b: dict[str, Any]) -> str:
        return f"{b['size']} bytes, sha256:{b['sha256']}"

    lines = []
    if s["simulated"]:
        lines.append(SIMULATED_BANNER)
    lines += [
        f"bundle      v{s['version']}, {blob(s['bundle'])}",
        f"simulated   {'YES' if s['simulated'] else 'no'}",
        f"nonce       {s['nonce']} ({len(s['nonce']) // 2} bytes)",
        f"node_key    {blob(s['node_key'])}",
        f"gpu_state   cc_mode {s['gpu_state']['cc_mode']}, "
        f"{s['gpu_state']['attached']} GPU(s) attached (node-reported)",
        f"evidence    {len(s['evidence'])} item(s)",
    ]
    for i, item in enumerate(s["evidence"]):
        if item["type"] == "sev-snp":
            lines.append(f"  [{i}] sev-snp     report {blob(item['report'])}")
            lines.append(f"      certs {', '.join(item['certs']) or '-'}; "
                         f"collateral {_refs(item['collateral'])}")
        elif item["type"] == "tdx":
            lines.append(f"  [{i}] tdx         quote {blob(item['quote'])}")
            lines.append(f"      collateral {_refs(item['collateral'])}")
        else:
            lines.append(f"  [{i}] nvidia-gpu  index {item['index']}, "
                         f"report {blob(item['report'])}")
            lines.append(f"      cert_chain {item['cert_chain']['size']} bytes; "
                         f"rims {_refs(item['rims'])}; ocsp {', '.join(item['ocsp']) or '-'}")
    lines.append(f"release     {blob(s['release'])}")
    lines.append(f"tlog_proof  {s['tlog_proof']['size']} bytes, "
                 f"first line {json.dumps(s['tlog_proof']['first_line'])}")
    lines.append(f"collateral  {len(s['collateral'])} entry(ies)")
    lines += [f"  {name}  {blob(b)}" for name, b in s["collateral"].items()]
    sig = s["sigstore_bundle"]
    lines.append(f"sigstore    {blob(sig)} (the release's Sigstore bundle)" if sig else
                 "sigstore    none")
    keys = s["ohttp_keys"]
    lines.append(f"ohttp_keys  {blob(keys)} (the node's HPKE key configuration)" if keys else
                 "ohttp_keys  none (the node takes no private requests)")
    lines.append("binding (values the reports must carry; not checked here)")
    lines += [f"  {k:<16} {v}" for k, v in s["binding"].items()]
    if s["simulated"]:
        lines.append(SIMULATED_BANNER)
    return lines


@click.command("bundle-inspect")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def bundle_inspect(file: str, as_json: bool) -> None:
    """Strictly decode an evidence bundle FILE (- for stdin) and print a summary.

    Verifies nothing: use `verifier bundle` for a verdict. Exit 2 if the bundle is malformed.
    """
    data = read_input(file)
    summary = summarize(decode_bundle(data), data)
    if summary["simulated"]:
        click.echo(SIMULATED_BANNER, err=True)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo("\n".join(_text(summary)))
