"""`tlog keygen` and `tlog verify-proof`: signed-note keys and offline tlog-proof checks.

Registered at the end of :mod:`transparency_log.cli.main`; errors are one line on stderr with the
exit code of their class (``ErrorHandlingGroup``).
"""

from __future__ import annotations

import click

from transparency_log.common.clitools import read_input, vkey_option, write_key_pair
from transparency_log.core.cosignature import generate_cosigner_keys
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import generate_keys
from transparency_log.core.tlog_proof import parse_tlog_proof, verify_tlog_proof_detailed
from transparency_log.core.witness_policy import parse_witness_policy

__all__ = ["keygen", "verify_proof"]


@click.command("keygen")
@click.argument("name")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False),
              help="File to write the signer key to (created with mode 0600; never overwritten).")
@click.option("--cosigner", is_flag=True,
              help="Make a witness key (cosignature/v1, vkey type 0x04) instead of a log key.")
def keygen(name: str, out: str, cosigner: bool) -> None:
    """Generate an Ed25519 key pair named NAME: the signer key in OUT, the verifier key in
    OUT with the suffix .vkey (log.key -> log.vkey) and on stdout."""
    skey, vkey = (generate_cosigner_keys if cosigner else generate_keys)(name)
    write_key_pair(out, skey, vkey)
    click.echo(vkey)


@click.command("verify-proof")
@vkey_option(required=True, help="The log's verifier key (name+hex8+base64).")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False),
              help="A c2sp.org/tlog-policy file: require its witness quorum.")
@click.option("--origin", default=None,
              help="Expected checkpoint origin (default: the key's name).")
@click.argument("entry_file", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("proof_file", type=click.Path(dir_okay=False, allow_dash=True))
def verify_proof(vkey: str, policy_file: str | None, origin: str | None, entry_file: str,
                 proof_file: str) -> None:
    """Verify offline that ENTRY_FILE is in the log, by a c2sp.org/tlog-proof@v1 PROOF_FILE."""
    verifier = Verifier(vkey)
    policy = parse_witness_policy(read_input(policy_file)) if policy_file else None
    entry = read_input(entry_file)
    proof = parse_tlog_proof(read_input(proof_file))
    cp, quorum = verify_tlog_proof_detailed(entry, proof, verifier, policy, origin)
    line = f"OK: entry {proof.index} of {cp.origin} (tree size {cp.size})"
    if quorum is not None:
        witnesses = ", ".join(sorted(quorum.cosigned)) or "none needed"
        line += f"; quorum {quorum.quorum} met by {witnesses}"
    click.echo(line)
