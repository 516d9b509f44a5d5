"""``attest issuer keygen|serve``, ``attest router`` and ``attest relay`` (docs/private.md).
The only place these servers wire in files, the clock, randomness and the network."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import click

from transparency_log.common.clitools import write_key_pair
from transparency_log.common.errors import TrustConfigError
from transparency_log.common.service_logging import configure_logging, log_format_option

log = logging.getLogger("attest.oblivious.cli")


def _serve(app: object, host: str, port: int, check: str) -> None:
    """Bind first (StartupError, exit 7, nothing written), then serve until stopped."""
    from transparency_log.common.asgi_serving import bind_listener, make_server

    sock = bind_listener(host, port, check=check)
    with sock:
        log.info("listening on %s:%d", host, port)
        make_server(app, host, port).run(sockets=[sock])


@click.group("issuer")
def issuer_group() -> None:
    """Privacy Pass issuer (token type 2): make its key, serve issuance."""


@issuer_group.command("keygen")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Private key file to create (PEM, mode 0600, never overwritten); the "
                   "token key (padded base64url SPKI) goes beside it as .vkey.")
def issuer_keygen(out: str) -> None:
    """Make a 2048-bit RSA issuer key; print the token key routers pin."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from attest.formats.privacy_pass_http import b64url_encode
    from attest.private import blind_rsa
    from attest.private.privacy_pass import IssuerKey

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode().strip()
    token_key = b64url_encode(IssuerKey.from_public_key(
        blind_rsa.PublicKey.from_cryptography(key.public_key())).spki)
    try:
        vkey_path = write_key_pair(out, pem, token_key)
    except FileExistsError:
        raise click.BadParameter(f"{out} exists; it is never overwritten",
                                 param_hint="--out") from None
    click.echo(token_key)
    click.echo(f"wrote {out} (private) and {vkey_path} (token key)", err=True)


def load_issuer_key(path: Path):  # type: ignore[no-untyped-def]
    """The issuer's private key file as an attest.private.privacy_pass.Issuer."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from attest.private import blind_rsa
    from attest.private.privacy_pass import Issuer

    try:
        key = load_pem_private_key(path.read_bytes(), None)
    except (OSError, ValueError, TypeError) as err:
        raise TrustConfigError("issuer.config", f"cannot read the issuer key: {err}",
                               field="private_key", got=str(path)) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TrustConfigError("issuer.config", "the issuer key is not RSA",
                               field="private_key", got=str(path))
    return Issuer(blind_rsa.PrivateKey.from_cryptography(key))


@issuer_group.command("serve")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False),
              help="Issuer configuration (TOML; docs/private.md).")
@log_format_option
def issuer_serve(config_file: str, log_format: str) -> None:
    """Serve the issuer directory and token issuance to authenticated accounts."""
    from attest.oblivious.config import load_issuer_config
    from attest.oblivious.issuer_service import HourlyQuota, create_issuer_app
    from transparency_log.serve.server import Submitters

    configure_logging(log_format)
    cfg = load_issuer_config(config_file)
    issuer = load_issuer_key(cfg.private_key)
    accounts = Submitters.from_config({}, cfg.accounts)
    app = create_issuer_app(issuer, accounts=accounts, request_uri=cfg.request_uri,
                            quota=HourlyQuota(cfg.tokens_per_account_per_hour,
                                              time.monotonic),
                            rng=os.urandom, not_before=cfg.not_before)
    _serve(app, cfg.host, cfg.port, "issuer.listen")


def open_spent_store(settings):  # type: ignore[no-untyped-def]
    """The spent-token store a router's ``[spent_tokens]`` names."""
    if settings.backend == "postgres":
        from attest.oblivious.spent_tokens_postgres import PostgresSpentTokens

        return PostgresSpentTokens(settings.dsn, schema=settings.schema)
    from attest.oblivious.spent_tokens import SqliteSpentTokens

    return SqliteSpentTokens(settings.path)


def router_app_from_config(cfg):  # type: ignore[no-untyped-def]
    """The router's app and its spent-token store (the caller closes it)."""
    from attest.formats.node_directory import NodeDirectory, NodeEntry
    from attest.formats.privacy_pass import TOKEN_TYPE_BLIND_RSA, TokenChallenge
    from attest.oblivious.forward_client import Forwarder
    from attest.oblivious.router_service import create_router_app
    from attest.private.privacy_pass import IssuerKey
    from transparency_log.common.errors import FormatError

    try:
        issuer = IssuerKey.from_spki(cfg.token_key)
        challenge = TokenChallenge(token_type=TOKEN_TYPE_BLIND_RSA, issuer_name=cfg.issuer_name,
                                   origin_info=cfg.origin).encode()
    except FormatError as err:
        raise TrustConfigError("router.config", err.message, field=err.field,
                               got=err.got) from None
    directory = NodeDirectory(
        token_challenge=challenge, issuer_directory=cfg.issuer_directory,
        nodes=tuple(NodeEntry(n.id, n.url, n.bundle_url, n.gpus) for n in cfg.nodes))
    spent = open_spent_store(cfg.spent_tokens)
    app = create_router_app(directory, {n.id: n.gateway_url for n in cfg.nodes},
                            issuer=issuer, spent=spent,
                            forwarder=Forwarder(cfg.limits.upstream_timeout,
                                                cfg.limits.max_request_bytes,
                                                ca_file=cfg.nodes_ca_file),
                            max_request_bytes=cfg.limits.max_request_bytes,
                            body_timeout=cfg.limits.body_timeout)
    return app, spent


@click.command("router")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False),
              help="Router configuration (TOML; docs/private.md).")
@log_format_option
def router_command(config_file: str, log_format: str) -> None:
    """Untrusted router: node directory, one token per request, forward to the chosen node."""
    from attest.oblivious.config import load_router_config
    from transparency_log.common.asgi_serving import bind_listener, make_server

    configure_logging(log_format)
    cfg = load_router_config(config_file)
    sock = bind_listener(cfg.host, cfg.port, check="router.listen")  # before the store
    with sock:
        app, spent = router_app_from_config(cfg)
        try:
            make_server(app, cfg.host, cfg.port).run(sockets=[sock])
        finally:
            spent.close()


def relay_app_from_config(cfg):  # type: ignore[no-untyped-def]
    from attest.oblivious.forward_client import Forwarder
    from attest.oblivious.relay_service import ClientLimits, create_relay_app

    return create_relay_app(
        cfg.router, forwarder=Forwarder(cfg.limits.upstream_timeout,
                                        cfg.limits.max_request_bytes),
        limits=ClientLimits(cfg.requests_per_second, cfg.burst,
                            cfg.client_requests_per_second, cfg.client_burst),
        max_request_bytes=cfg.limits.max_request_bytes, body_timeout=cfg.limits.body_timeout)


@click.command("relay")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False),
              help="Relay configuration (TOML; docs/private.md).")
@log_format_option
def relay_command(config_file: str, log_format: str) -> None:
    """Oblivious HTTP relay (RFC 9458) in front of one router: strips the client, rate-limits."""
    from attest.oblivious.config import load_relay_config

    configure_logging(log_format)
    cfg = load_relay_config(config_file)
    _serve(relay_app_from_config(cfg), cfg.host, cfg.port, "relay.listen")
