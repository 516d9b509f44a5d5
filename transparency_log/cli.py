"""`tlog`: the transparency log's command line."""

from __future__ import annotations

import click

from transparency_log.clitools import ErrorHandlingGroup


@click.group(cls=ErrorHandlingGroup)
def main() -> None:
    """Operate an RFC 6962 / C2SP transparency log."""
