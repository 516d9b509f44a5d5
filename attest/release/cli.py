"""`attest release`: release keys and offline checks of release entries.

(`attest publish` / `attest revoke`, which submit entries to the log, are separate commands.)
"""

from __future__ import annotations

from pathlib import Path

import click

from attest.release import canonical_json
from attest.release.dsse import open_entry
from attest.release.keys import (
    ALG_ED25519,
    ALG_P256,
    generate_signing_key,
    load_public_key_file,
    write_signing_key_file,
)
from transparency_log.common.clitools import read_input


@click.group()
def release() -> None:
    """Release keys and release entries (in-toto Statement in a DSSE envelope)."""


@release.command("keygen")
@click.option("--out", "prefix", required=True, type=click.Path(dir_okay=False),
              help="Writes PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub.")
@click.option("--algorithm", type=click.Choice([ALG_ED25519, ALG_P256]), default=ALG_ED25519,
              show_default=True, help="Signature algorithm of the release key.")
def keygen(prefix: str, algorithm: str) -> None:
    """Create a release signing key; prints its key id."""
    key = generate_signing_key(algorithm)
    write_signing_key_file(Path(prefix + ".key"), key)
    Path(prefix + ".pub").write_text(key.public.to_text(), encoding="ascii")
    click.echo(key.keyid)


@release.command("verify")
@click.argument("entry", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--key", "keys", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Accepted release public key file (repeatable).")
@click.option("--threshold", type=click.IntRange(1, 8), default=1, show_default=True,
              help="How many of the given keys must have signed.")
def verify(entry: str, keys: tuple[str, ...], threshold: int) -> None:
    """Check a release/revocation entry's signatures offline; print its digest and statement."""
    accepted = [load_public_key_file(Path(k)) for k in keys]
    opened = open_entry(read_input(entry), accepted, threshold=threshold)
    click.echo(f"OK: {type(opened.statement).__name__.lower()} "
               f"sha256:{opened.digest.hex()} signed by {', '.join(opened.signers)}")
    click.echo(canonical_json.encode(opened.statement.to_json()).decode("utf-8"))
