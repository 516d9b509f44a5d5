"""`attest`: the node side's command line."""

from __future__ import annotations

import click

from transparency_log.clitools import ErrorHandlingGroup


@click.group(cls=ErrorHandlingGroup)
def main() -> None:
    """Collect evidence, publish releases and run the node agent."""

from attest.collect.cli_tdx import tdx_quote_command  # noqa: E402

main.add_command(tdx_quote_command)
