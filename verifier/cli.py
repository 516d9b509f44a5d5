"""`verifier`: the client side's command line."""

from __future__ import annotations

import click

from transparency_log.clitools import ErrorHandlingGroup


@click.group(cls=ErrorHandlingGroup)
def main() -> None:
    """Verify attestation evidence, bundles and logs; refuse with a named reason."""


_CLIENT = {"policy": "policy_path", "state": "state", "log_url": "log_url"}
main.config_commands = {"node": _CLIENT, "bundle": _CLIENT,  # type: ignore[attr-defined]
                        "audit": {"policy": "policy_file", "state": "state_dir"}}

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
