"""`attest`: the node side's command line."""

from __future__ import annotations

import click

from transparency_log.clitools import ErrorHandlingGroup


@click.group(cls=ErrorHandlingGroup)
def main() -> None:
    """Collect evidence, publish releases and run the node agent."""


from attest.measure.cli import measure  # noqa: E402

main.add_command(measure)

from attest.release.cli import release  # noqa: E402

main.add_command(release)
from attest.collect.cli_snp import snp_report  # noqa: E402

main.add_command(snp_report)
from attest.collect.cli_gpu import gpu_evidence  # noqa: E402

main.add_command(gpu_evidence)
from attest.collect.cli_tdx import tdx_quote_command  # noqa: E402

main.add_command(tdx_quote_command)
from attest.agent.cli_agent import agent_command  # noqa: E402

main.add_command(agent_command)
from attest.release.cli_publish import publish_command, revoke_command  # noqa: E402

main.add_command(publish_command)
main.add_command(revoke_command)
