"""`attest tdx-quote --report-data HEX [-o FILE]`: collect one TDX quote on this node."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from attest.collect.tdx import TSM_REPORT_ROOT, get_quote
from transparency_log.common.errors import FormatError


@click.command("tdx-quote")
@click.option("--report-data", "report_data_hex", required=True,
              help="REPORTDATA: 64 bytes as 128 hex digits.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here, not stdout.")
@click.option("--tsm-root", type=click.Path(file_okay=False), default=str(TSM_REPORT_ROOT),
              show_default=True, help="configfs-tsm report directory.")
def tdx_quote_command(report_data_hex: str, output: str | None, tsm_root: str) -> None:
    """Get a TDX quote over REPORTDATA from the kernel (configfs-tsm, provider tdx_guest)."""
    try:
        report_data = bytes.fromhex(report_data_hex)
    except ValueError:
        raise FormatError("tdx.collect", "REPORTDATA is not hex", field="REPORTDATA",
                          got=report_data_hex) from None
    quote = get_quote(report_data, root=Path(tsm_root))
    if output:
        Path(output).write_bytes(quote)
        click.echo(f"wrote {len(quote)} bytes to {output}", err=True)
    else:
        sys.stdout.buffer.write(quote)
