"""`verifier policy check FILE`: lint a policy file (docs/policy.md) without verifying anything.

Prints ``OK <file> sha256:<digest>`` (the digest the transcript records) and exits 0, or one
line naming the offending key and exits 4 (TrustConfigError, DESIGN.md error table).
"""

from __future__ import annotations

import click

from verifier.policy import load_policy


@click.group("policy")
def policy_group() -> None:
    """Policy files: check them before deploying."""


@policy_group.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def check_cmd(file: str) -> None:
    """Parse FILE strictly (unknown keys, wrong types and bad keys are errors)."""
    policy = load_policy(file)
    click.echo(f"OK {file} sha256:{policy.digest.hex()}")
