"""`verifier`: the client side's command line."""

from __future__ import annotations

import click

from transparency_log.clitools import ErrorHandlingGroup


@click.group(cls=ErrorHandlingGroup)
def main() -> None:
    """Verify attestation evidence, bundles and logs; refuse with a named reason."""

from verifier.cli_policy import policy_group  # noqa: E402

main.add_command(policy_group)
