"""`verifier ear keygen|verify`: the verifier's EAR signing key, and checking an EAR the way a
relying party would (docs/ear.md).

``verifier ear verify TOKEN --key PUB`` exits 0 when the EAR is authentic and every submodule
is ``affirming``; 5 when it is authentic but some submodule is not (warning, contraindicated,
none); 2 when it is malformed or forged (wrong algorithm, bad signature, bad claims, another
nonce); 4 for an unusable key file.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from transparency_log.common.clitools import read_input
from transparency_log.common.errors import TrustConfigError
from verifier.ear_token import (
    CHECK_KEY,
    EarSigner,
    load_signing_key,
    load_verification_key,
    verify_ear,
)

__all__ = ["ear_group", "load_signer", "verifier_build"]

EXIT_NOT_AFFIRMING = 5


def verifier_build() -> str:
    """``ear.verifier-id.build``: this distribution and its version."""
    try:
        return f"attestlog {version('attestlog')}"
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "attestlog (unpackaged)"


def _read_key(path: str, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise TrustConfigError(CHECK_KEY, f"cannot read key file: {err.strerror}",
                               field=option, got=path) from None


def load_signer(path: str) -> EarSigner:
    """The ``--ear-key`` file as an :class:`EarSigner` with this build's identity."""
    return EarSigner(load_signing_key(_read_key(path, "--ear-key")), verifier_build())


@click.group("ear")
def ear_group() -> None:
    """EAT Attestation Results (IETF RATS EAR): make a key, check a token."""


@ear_group.command("keygen")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Private key file to write (PEM, mode 0600); the public key goes to "
              "OUT.pub.")
@click.option("--alg", type=click.Choice(["EdDSA", "ES256"]), default="EdDSA",
              show_default=True, help="Signature algorithm of the key (RFC 7518 name).")
def keygen_cmd(out: str, alg: str) -> None:
    """Make an EAR signing key (Ed25519 or ECDSA P-256)."""
    key = (ed25519.Ed25519PrivateKey.generate() if alg == "EdDSA"
           else ec.generate_private_key(ec.SECP256R1()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    Path(out + ".pub").write_bytes(pub)
    click.echo(f"{alg} key: {out}, public key: {out}.pub")


@ear_group.command("verify")
@click.argument("token_file", metavar="TOKEN", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
              help="The verifier's public key (PEM); it pins the algorithm.")
@click.option("--nonce", "nonce_hex", help="The nonce you sent (hex): eat_nonce must match.")
@click.option("--json", "as_json", is_flag=True, help="Print the verified claims as JSON.")
def verify_cmd(token_file: str, key_file: str, nonce_hex: str | None, as_json: bool) -> None:
    """Check an EAR in file TOKEN ('-' for stdin) and print each submodule's appraisal."""
    key = load_verification_key(_read_key(key_file, "--key"))
    nonce = None
    if nonce_hex is not None:
        try:
            nonce = bytes.fromhex(nonce_hex)
        except ValueError:
            raise click.BadParameter("not hex", param_hint="--nonce") from None
    data = read_input(token_file)
    if data.endswith(b"\n"):  # a file written by --ear ends with one newline
        data = data[:-1]
    ear = verify_ear(data, key, expected_nonce=nonce)
    if as_json:
        click.echo(json.dumps(dict(ear.claims), indent=2))
    else:
        claims = ear.claims
        vid = claims["ear.verifier-id"]
        click.echo(f"EAR verified: {vid['build']} ({vid['developer']}), iat {claims['iat']}")
        width = max(len(n) for n in claims["submods"])
        for name, sub in sorted(claims["submods"].items()):
            vector = " ".join(f"{k}={v}" for k, v in
                              sub.get("ear.trustworthiness-vector", {}).items())
            click.echo(f"  {name:<{width}}  {ear.statuses[name]:<15}  {vector}")
    if not ear.all_affirming:
        click.echo("error: not every submodule is affirming", err=True)
        sys.exit(EXIT_NOT_AFFIRMING)
