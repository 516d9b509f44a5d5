"""`attest snp-report`: collect one SEV-SNP report on a node (configfs-tsm or /dev/sev-guest)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from attest.collect.snp import SEV_GUEST_DEVICE, TSM_ROOT, collect_snp_report


@click.command("snp-report")
@click.option("--report-data", required=True, help="REPORT_DATA, 64 bytes as hex.")
@click.option("-o", "--output", default="-", show_default=True,
              help="Where to write the raw report ('-' is standard output).")
@click.option("--extended", is_flag=True,
              help="Append the host's certificate table after the report.")
@click.option("--certs-out", type=click.Path(dir_okay=False),
              help="Also write the certificate table to this file.")
@click.option("--vmpl", type=click.IntRange(0, 3), default=None, help="VMPL (privlevel).")
@click.option("--tsm-root", type=click.Path(file_okay=False), default=str(TSM_ROOT),
              show_default=True, help="configfs-tsm report directory (tried first).")
@click.option("--device", type=click.Path(dir_okay=False), default=str(SEV_GUEST_DEVICE),
              show_default=True, help="SEV guest device (used without configfs-tsm).")
def snp_report(report_data: str, output: str, extended: bool, certs_out: str | None,
               vmpl: int | None, tsm_root: str, device: str) -> None:
    """Get an attestation report binding REPORT_DATA from the SNP firmware."""
    try:
        data = bytes.fromhex(report_data)
    except ValueError:
        raise click.BadParameter("not hex", param_hint="--report-data") from None
    if len(data) != 64:
        raise click.BadParameter(f"must be 64 bytes, got {len(data)}",
                                 param_hint="--report-data")
    ev = collect_snp_report(data, tsm_root=Path(tsm_root), device=Path(device), vmpl=vmpl)
    blob = ev.report + (ev.cert_table if extended else b"")
    if output == "-":
        sys.stdout.buffer.write(blob)
        sys.stdout.buffer.flush()
    else:
        Path(output).write_bytes(blob)
    if certs_out:
        Path(certs_out).write_bytes(ev.cert_table)
    click.echo(f"report from {ev.source}: {len(ev.report)} bytes, certificate table "
               f"{len(ev.cert_table)} bytes", err=True)
