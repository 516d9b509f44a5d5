"""`verifier gpu`: verify one NVIDIA GPU attestation report and print every check.

Exit codes (DESIGN.md): 0 accepted, 2 malformed or forged, 3 collateral unreachable,
4 bad trust configuration or policy file, 5 refused by policy (including RIM mismatches).
This is the only GPU module that reads the clock, files and the network.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from attest.certificates import load_certificate
from attest.collateral.rim_fetch import NVIDIA_RIM_SERVICE, RimSource
from attest.collect.cli_gpu import parse_nonce_hex
from attest.formats.nvidia_opaque import parse_opaque
from attest.formats.spdm_measurements import parse_report, parse_report_text
from transparency_log.common.clitools import parse_time, read_input
from transparency_log.common.errors import AttestlogError, TrustConfigError
from transparency_log.common.http_fetch import DiskCache, HttpFetcher
from verifier.gpu.evidence import GpuEvidenceResult, GpuTrust, verify_gpu_evidence
from verifier.gpu.nras import NRAS_ISSUER, parse_nras_answer, verify_nras
from verifier.gpu.ocsp import NVIDIA_OCSP_URL
from verifier.gpu.policy import GpuPolicy
from verifier.policy import load_policy as policy_file
from verifier.policy_base import FailureCollector
from verifier.render import Output, output_options, waive_option
from verifier.transcript import Transcript
from verifier.x509chain import fingerprint, pinned_root


def load_policy(path: str | None, waive: frozenset[str] = frozenset()
                ) -> tuple[GpuPolicy, frozenset[str]]:
    """The ``[gpu]`` table of ``--policy`` (a lone report's defaults without one, or when the
    file has none), and the waivers: the file's and ``--waive``'s (the transcript's). The file
    is read whole by the one loader (docs/policy.md)."""
    if path is None:
        return GpuPolicy.for_lone_report(), waive
    full = policy_file(path).with_waivers(waive)
    return (full.gpu if "gpu" in full.tables else GpuPolicy.for_lone_report()), full.waive


def _extra_root(path: str, name: str):
    cert = load_certificate(read_input(path), check="trust.root", field=path)
    return pinned_root(name, read_input(path), fingerprint(cert).hex())


@click.command("gpu")
@click.argument("report")
@click.option("--chain", "chain_path", required=True, help="device certificate chain (PEM)")
@click.option("--nonce", "nonce_hex", help="the 32-byte nonce the report must be bound to (hex)")
@click.option("--rim", "rim_paths", multiple=True, help="driver or VBIOS RIM (SWID XML)")
@click.option("--rim-dir", type=click.Path(file_okay=False), help="directory of <id>.swidtag")
@click.option("--nras-token", "nras_path", help="NRAS answer [[\"JWT\", ..], {..}] (JSON)")
@click.option("--jwks", "jwks_path", help="NRAS JWKS (JSON)")
@click.option("--nras-root", "nras_root_path", help="root certificate for the JWKS x5c chain")
@click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False),
              envvar="ATTESTLOG_POLICY",
              help="policy file: its [gpu] table (a lone report's defaults without one) and "
                   "waive list; env ATTESTLOG_POLICY, or the config file's policy")
@click.option("--at", "at_text", help="verification time (ISO 8601); default now")
@click.option("--offline", is_flag=True, help="no network: given/stapled/cached data only")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="RIM cache directory")
@click.option("--rim-service", default=NVIDIA_RIM_SERVICE, show_default=True,
              help="RIM service base URL")
@click.option("--ocsp-url", default=NVIDIA_OCSP_URL, show_default=True,
              help="OCSP responder URL")
@click.option("--cc-mode", type=click.Choice(["on", "off", "devtools"]),
              help="CC mode the node reported (NVML; unsigned)")
@click.option("--attached", type=int, help="number of GPUs the node reported attached")
@click.option("--unsafe-device-root", "device_root_path",
              help="trust this device root instead of NVIDIA's (simulated GPUs)")
@click.option("--unsafe-rim-root", "rim_root_path",
              help="trust this RIM root instead of NVIDIA's (simulated RIMs)")
@waive_option
@output_options
def gpu(report: str, chain_path: str, nonce_hex: str | None, rim_paths: tuple[str, ...],
        rim_dir: str | None, nras_path: str | None, jwks_path: str | None,
        nras_root_path: str | None, policy_path: str | None, at_text: str | None,
        offline: bool, cache_dir: str | None, rim_service: str, ocsp_url: str,
        cc_mode: str | None, attached: int | None,
        device_root_path: str | None, rim_root_path: str | None, waive: frozenset[str],
        as_json: bool, quiet: bool, verbose: bool) -> None:
    """Verify one GPU attestation REPORT (hex or binary)."""
    at = parse_time(at_text)
    policy, waive = load_policy(policy_path, waive)
    out = Output.of(quiet=quiet, verbose=verbose, as_json=as_json)
    nonce = _nonce(nonce_hex)
    trust = GpuTrust.production()
    if device_root_path or rim_root_path:
        trust = GpuTrust(
            (_extra_root(device_root_path, "unsafe device root"),) if device_root_path
            else trust.device_roots,
            (_extra_root(rim_root_path, "unsafe RIM root"),) if rim_root_path
            else trust.rim_roots)
    fetch = None if offline else HttpFetcher()
    source = RimSource(fetch=fetch, base_url=rim_service,
                       cache=DiskCache(cache_dir) if cache_dir else None,
                       directory=Path(rim_dir) if rim_dir else None)
    report_bytes = parse_report_text(read_input(report))
    transcript = Transcript(waive=waive)
    collector = FailureCollector()
    result: GpuEvidenceResult | None = None
    try:
        result = verify_gpu_evidence(
            report_bytes, read_input(chain_path), nonce=nonce, trust=trust, at=at,
            transcript=transcript, fetch=fetch,
            rims=[read_input(p) for p in rim_paths], rim_source=source, ocsp_url=ocsp_url,
            cc_mode=cc_mode)
        if nras_path:
            _nras(nras_path, jwks_path, nras_root_path, at,
                  nonce or result.report.report.request.nonce, transcript)
        policy.check([result.facts], attached=attached, collector=collector)
        for f in collector.failures:
            if f.check.startswith("gpu.policy"):
                transcript.failed(f.check, str(f))
        collector.raise_if_any()
    except AttestlogError as err:
        transcript.error = err
        _print(report_bytes, result, transcript, out, report)
        raise
    _print(report_bytes, result, transcript, out, report)


def _nonce(text: str | None) -> bytes | None:
    return None if text is None else parse_nonce_hex(text)


def _nras(path: str, jwks_path: str | None, root_path: str | None, at: datetime, nonce: bytes,
          transcript: Transcript) -> None:
    if not jwks_path or not root_path:
        raise TrustConfigError("gpu.nras.key", "--nras-token needs --jwks and --nras-root",
                               field="--jwks/--nras-root")
    overall, detached = parse_nras_answer(read_input(path))
    jwks = json.loads(read_input(jwks_path))
    root = _extra_root(root_path, "NRAS root")
    try:
        result = verify_nras(overall, detached, jwks=jwks, roots=[root], at=at, nonce=nonce,
                             issuers=(NRAS_ISSUER,))
    except AttestlogError as err:
        transcript.failed(err.check, str(err))
        raise
    transcript.passed("gpu.nras", f"{len(result.gpus)} GPU token(s) verified, all positive")


def _print(report_bytes: bytes, result: GpuEvidenceResult | None, transcript: Transcript,
           out: Output, name: str) -> None:
    info: dict[str, Any] = {"report_size": len(report_bytes)}
    opaque: dict[str, str] = {}
    if result is not None:
        r = result.report
        opaque = r.opaque.summary()
        info.update(blocks=len(r.report.response.blocks), trailing=len(r.report.trailing),
                    nonce=r.report.request.nonce.hex())
    else:  # refused: show what still parses (the report, then its opaque data on its own)
        try:
            parsed = parse_report(report_bytes)
            info.update(blocks=len(parsed.response.blocks), trailing=len(parsed.trailing),
                        nonce=parsed.request.nonce.hex())
            opaque = parse_opaque(parsed.response.opaque_data).summary()
        except AttestlogError:
            pass
    mismatches = [] if result is None else [
        {"rim_index": m.rim_index, "spdm_index": m.spdm_index, "rim": m.source,
         "got": m.got.hex() if m.got else None, "want": [w.hex() for w in m.want]}
        for m in result.mismatches]
    out.json({"report": info, "opaque": opaque, "mismatches": mismatches,
              **transcript.to_dict()})
    out.detail(f"report: {info['report_size']} bytes, {info.get('blocks', '?')} measurement "
               f"blocks, {info.get('trailing', '?')} trailing byte(s)")
    if "nonce" in info:
        out.detail(f"nonce: {info['nonce']}")
    out.detail("opaque data:")
    for key, value in opaque.items():
        out.detail(f"  {key:<24} {value}")
    out.table(transcript.steps)
    if mismatches:
        out.echo("mismatching RIM indexes: "
                 + ", ".join(str(m["rim_index"]) for m in mismatches))
    out.verdict(f"verdict: {transcript.verdict}", ok=transcript.verdict == "accepted")
    out.summary(name, transcript.error)
