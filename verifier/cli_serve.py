"""`verifier serve`: run the HTTP attestation service (verifier/serve.py, docs/ear.md).

Wires in what the service takes as parameters: the wall clock, the network for collateral
(unless ``--offline``), the policy, the simulator roots and the EAR signing key."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import click

from transparency_log.cli.service import parse_listen
from transparency_log.common.asgi_serving import make_server
from verifier.cli_ear import load_signer
from verifier.cli_verify import _pipeline_args, _policy
from verifier.serve import ServiceLimits, create_app

__all__ = ["serve_cmd"]


@click.command("serve")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
              help="Policy file (TOML, docs/policy.md). Required.")
@click.option("--ear-key", required=True, type=click.Path(dir_okay=False),
              help="The service's EAR signing key (PEM, Ed25519 or ECDSA P-256).")
@click.option("--listen", default="127.0.0.1:8090", show_default=True, help="HOST:PORT")
@click.option("--offline", is_flag=True,
              help="No network for collateral: only what the node stapled and the cache.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False),
              help="Collateral cache directory (KDS/PCS/RIM answers).")
@click.option("--state", type=click.Path(file_okay=False),
              help="Client state: last-seen checkpoints and the revocation mirror (synced "
              "from --log-url when the service starts).")
@click.option("--log-url", help="The log's tiles (URL or directory), to sync the revocation "
              "mirror (with --state).")
@click.option("--simulated-trust", type=click.Path(dir_okay=False),
              help="Simulator roots (JSON from attest.simulate), for simulated bundles under "
              "unsafe_allow_simulated_hardware only.")
@click.option("--max-bundle-bytes", type=int, default=ServiceLimits.max_bundle_bytes,
              show_default=True)
def serve_cmd(policy_path: str | None, ear_key: str, listen: str, offline: bool,
              cache_dir: str | None, state: str | None, log_url: str | None,
              simulated_trust: str | None, max_bundle_bytes: int) -> None:
    """Serve POST /verify?nonce=HEX (body: an evidence bundle): answers the EAR and the
    transcript as JSON."""
    host, port = parse_listen(listen)
    policy = _policy(policy_path)
    signer = load_signer(ear_key)
    args = _pipeline_args(policy, offline, state, log_url, simulated_trust, cache_dir)
    app = create_app(policy, signer, now=lambda: datetime.now(UTC), trust=args.pop("trust"),
                     fetch=args.pop("fetch"), caches=args.pop("caches"),
                     limits=ServiceLimits(max_bundle_bytes=max_bundle_bytes),
                     pipeline_args=args)
    logging.basicConfig(level=logging.WARNING)
    click.echo(f"verifier serve: POST http://{host}:{port}/verify?nonce=HEX "
               f"(EAR {signer.alg})", err=True)
    make_server(app, host, port).run()
