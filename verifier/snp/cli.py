"""`verifier snp REPORT`: verify one SEV-SNP report, print its fields and every check.

REPORT is the raw 0x4A0-byte report, optionally followed by the extended-report certificate
table (what `attest snp-report` writes with --extended). Certificates come from --certs
files, that table, the KDS cache, or KDS itself unless --offline. Exit codes follow
DESIGN.md: 0 accepted, 2 malformed/forged, 3 unreachable, 4 trust config, 5 policy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from attest.collateral.kds_fetch import KDS_BASE, KdsClient
from attest.formats.snp_certtable import parse_cert_table
from attest.formats.snp_report import (
    PRODUCTS,
    REPORT_SIZE,
    AttestationReport,
    decode_tcb,
    parse_report,
)
from transparency_log.common.clitools import parse_time, read_input
from transparency_log.common.errors import AttestlogError, FormatError, show
from transparency_log.common.http_fetch import DiskCache, HttpFetcher
from verifier.policy import load_policy
from verifier.policy_base import FailureCollector
from verifier.render import Output, output_options, waive_option
from verifier.snp.verify import SnpCollateral, SnpVerification, SnpVerifier
from verifier.transcript import Transcript


def describe(report: AttestationReport, product: str | None) -> dict[str, Any]:
    """Fields by spec name, plus the decoded bits and TCBs, JSON-ready."""
    out: dict[str, Any] = {}
    for name, value in report.spec_fields():
        out[name] = value.hex() if isinstance(value, bytes) else value
    out["SIGNING_KEY"] = report.signing_key_name
    gp = vars(report.guest_policy).copy()
    gp.pop("raw")
    out["POLICY (decoded)"] = gp
    pi = vars(report.platform).copy()
    pi.pop("raw")
    out["PLATFORM_INFO (decoded)"] = pi
    if product:
        for name in ("CURRENT_TCB", "REPORTED_TCB", "COMMITTED_TCB", "LAUNCH_TCB"):
            tcb = decode_tcb(getattr(report, name.lower()), product)
            out[f"{name} ({product})"] = tcb.components()
    return out


def _field_line(name: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and name != "VERSION":
        value = f"{value} (0x{value:x})" if value < 1 << 64 else f"0x{value:x}"
    return f"{name:28} {show(value)}"


@click.command("snp")
@click.argument("report", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--certs", "certs", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="VCEK/VLEK/ASK/ASVK/ARK certificates (PEM bundles or DER); repeatable.")
@click.option("--crl", type=click.Path(exists=True, dir_okay=False), help="AMD CRL (DER/PEM).")
@click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False),
              envvar="ATTESTLOG_POLICY",
              help="Policy file; its [snp] table (defaults without one) and waive list are "
                   "applied; env ATTESTLOG_POLICY, or the config file's policy.")
@click.option("--measurement", "measurements", multiple=True,
              help="An allowed MEASUREMENT (hex, 48 bytes); repeatable.")
@click.option("--product", type=click.Choice(PRODUCTS),
              help="Product, for v2 reports when no certificate names it.")
@click.option("--at", "at_text", help="Verify at this time (ISO 8601); default now.")
@click.option("--offline", is_flag=True, help="Never contact KDS; use given certs and cache.")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              default=lambda: os.path.join(os.path.expanduser("~"), ".cache", "attestlog",
                                           "kds"), show_default="~/.cache/attestlog/kds",
              help="KDS answers (certificates, CRLs) are cached here.")
@click.option("--kds-url", default=KDS_BASE, show_default=True,
              help="AMD Key Distribution Service base URL.")
@waive_option
@output_options
def snp(report: str, certs: tuple[str, ...], crl: str | None, policy_path: str | None,
        measurements: tuple[str, ...], product: str | None, at_text: str | None,
        offline: bool, cache_dir: str, kds_url: str, waive: frozenset[str],
        as_json: bool, quiet: bool, verbose: bool) -> None:
    """Verify one AMD SEV-SNP attestation report (and apply a policy)."""
    at = parse_time(at_text)
    data = read_input(report)
    policy = None
    if policy_path:
        full = load_policy(policy_path).with_waivers(waive)  # the one loader, the whole file
        policy, waive = full.snp, full.waive
    allowed = []
    for m in measurements:
        try:
            allowed.append(bytes.fromhex(m))
        except ValueError:
            raise click.BadParameter(f"not hex: {m!r}", param_hint="--measurement") from None
    crl_der = Path(crl).read_bytes() if crl else None
    blobs = [Path(p).read_bytes() for p in certs]
    if blobs:
        collateral = SnpCollateral.from_files(blobs, crl=crl_der)
    elif len(data) > REPORT_SIZE:
        collateral = SnpCollateral.from_cert_table(parse_cert_table(data[REPORT_SIZE:]),
                                                   crl=crl_der)
    else:
        collateral = SnpCollateral(crl=crl_der)
    kds = KdsClient(None if offline else HttpFetcher(), DiskCache(cache_dir), base=kds_url)
    # snp.crl that cannot run (no CRL given, KDS unreachable or offline) is waived only by
    # name, through the transcript, which says so (house rule 5).
    t = Transcript(waive=frozenset(waive))
    result: SnpVerification | None = None
    error: AttestlogError | None = None
    raw = data[:REPORT_SIZE] if len(data) > REPORT_SIZE else data
    try:
        result = SnpVerifier.production(kds=kds).verify(
            raw, at=at, collateral=collateral, product=product, transcript=t)
        if policy is not None:
            collector = FailureCollector()
            policy.check(result, collector, measurements=allowed)
            try:
                collector.raise_if_any()
            except AttestlogError as err:
                t.failed("snp.policy", str(err))
                raise
            t.passed("snp.policy", "every [snp] rule holds")
        else:
            t.waived("snp.policy", "no --policy given: authenticity only")
    except AttestlogError as err:
        error = err
        t.error = err
    fields: dict[str, Any] = {}
    try:
        rep = result.report if result else parse_report(data[:REPORT_SIZE])
        fields = describe(rep, result.product if result else product)
        if result is not None:
            ext = result.key.extensions
            fields[f"{result.key.role} (KDS extensions)"] = {
                k: (v.hex() if isinstance(v, bytes) else v)
                for k, v in vars(ext).items() if v is not None}
    except FormatError:
        pass
    summary = t.to_dict()
    if policy is None and summary["verdict"] == "accepted":
        # Without a policy nothing but authenticity was judged: never call that acceptance.
        summary["verdict"] = "authentic-only"
    out = Output.of(quiet=quiet, verbose=verbose, as_json=as_json)
    out.json({"at": at.isoformat(), "fields": fields, **summary})
    out.fields(fields, _field_line)
    out.table(t.steps)
    note = (" (no policy: MEASUREMENT, TCB and guest policy not judged)"
            if summary["verdict"] == "authentic-only" else "")
    out.verdict(f"verdict: {summary['verdict']}{note}", ok=error is None)
    out.summary(report, error, note="authentic only: no policy"
                if summary["verdict"] == "authentic-only" else "")
    if error is not None:
        raise error
