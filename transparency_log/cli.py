"""`tlog`: the transparency log's command line."""

from __future__ import annotations

import click

from transparency_log.clitools import ErrorHandlingGroup


@click.group(cls=ErrorHandlingGroup)
def main() -> None:
    """Operate an RFC 6962 / C2SP transparency log."""

from transparency_log.cli_log import COMMANDS as _LOG_COMMANDS  # noqa: E402

for _cmd in _LOG_COMMANDS:
    main.add_command(_cmd)
from transparency_log.cli_keys import keygen, verify_proof  # noqa: E402

main.add_command(keygen)
main.add_command(verify_proof)

from transparency_log.cli_service import COMMANDS as _SERVICE_COMMANDS  # noqa: E402

for _cmd in _SERVICE_COMMANDS:
    main.add_command(_cmd)
