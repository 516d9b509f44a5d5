"""`verifier policy check FILE`: lint a policy file (docs/policy.md) without verifying anything.

Prints ``OK <file> sha256:<digest>`` (the digest the transcript records) and exits 0, or one
line naming the offending key and exits 4 (TrustConfigError, DESIGN.md error table). Before
the OK line, one ``warning:`` line on stderr for every setting that weakens verification
(:attr:`verifier.policy.Policy.warnings`: each ``unsafe_*`` key switched on, each waiver,
unwitnessed checkpoints); they do not change the exit status.
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
    """Parse FILE strictly (unknown keys, wrong types and bad keys are errors); warn on every
    unsafe_ key, waiver and unwitnessed-checkpoint setting."""
    policy = load_policy(file)
    for warning in policy.warnings:
        click.echo(f"warning: {file}: {warning}", err=True)
    click.echo(f"OK {file} sha256:{policy.digest.hex()}")
