"""`verifier`: the client side's command line."""

from __future__ import annotations

import click

from transparency_log.clitools import ErrorHandlingGroup


@click.group(cls=ErrorHandlingGroup)
def main() -> None:
    """Verify attestation evidence, bundles and logs; refuse with a named reason."""

from verifier.snp.cli import snp  # noqa: E402

main.add_command(snp)
from verifier.gpu.cli import gpu  # noqa: E402

main.add_command(gpu)
from verifier.tdx.cli import tdx_command  # noqa: E402

main.add_command(tdx_command)

from verifier.cli_bundle import bundle_inspect  # noqa: E402

main.add_command(bundle_inspect)
from verifier.cli_policy import policy_group  # noqa: E402

main.add_command(policy_group)
from verifier.cli_audit import audit_cmd  # noqa: E402

main.add_command(audit_cmd)
from verifier.cli_verify import bundle_command, node_command  # noqa: E402

main.add_command(node_command)
main.add_command(bundle_command)
from verifier.cli_ear import ear_group  # noqa: E402

main.add_command(ear_group)
from verifier.cli_serve import serve_cmd  # noqa: E402

main.add_command(serve_cmd)
