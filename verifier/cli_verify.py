"""`verifier node URL` and `verifier bundle FILE`: verify a node, print every check, exit with
the verdict (docs/verification.md; DESIGN.md exit codes: 0 accepted, 2 format/verification,
3 fetch, 4 trust config, 5 policy).

This module wires in what the library takes as parameters: the wall clock (``--at``), the
network (``HttpFetcher`` unless ``--offline``), randomness (the nonce), files (``--policy``,
``--state``, ``--simulated-trust``).

``verifier node URL`` POSTs a fresh 32-byte nonce (or ``--nonce HEX``) to
``URL/.well-known/attestlog/bundle`` over HTTPS, verifies the bundle, and then checks
``tls.node_key``: the node's TLS certificate is self-signed and **not** CA-verified; its
SubjectPublicKeyInfo must equal the bundle's verified ``node_key`` (the evidence vouches for
the key, not a CA). ``--save FILE`` keeps the bundle for ``verifier bundle``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from transparency_log.clitools import parse_time, read_input, report_error
from transparency_log.errors import TrustConfigError
from transparency_log.http_fetch import DiskCache, HttpFetcher
from verifier.ear import EarSigner
from verifier.pipeline import ACCEPTED, Result, run_pipeline
from verifier.pipeline_trust import VerifierCaches, VerifierTrust
from verifier.policy import Policy, load_policy
from verifier.transcript import FAIL, PASS

__all__ = ["bundle_command", "node_command"]

NONCE_SIZE = 32


def parse_nonce(text: str | None, *, required: bool) -> bytes | None:
    if text is None:
        if required:
            raise click.BadParameter("the nonce the bundle was made for is required",
                                     param_hint="--nonce")
        return None
    try:
        nonce = bytes.fromhex(text)
    except ValueError:
        raise click.BadParameter("not hex", param_hint="--nonce") from None
    if not 32 <= len(nonce) <= 64:
        raise click.BadParameter("a nonce is 32..64 bytes", param_hint="--nonce")
    return nonce


def _policy(path: str | None) -> Policy:
    if path is None:
        raise TrustConfigError("policy.syntax", "no policy file: give --policy FILE "
                               "(docs/policy.md)", field="--policy")
    return load_policy(path)


def _trust(path: str | None) -> VerifierTrust:
    trust = VerifierTrust.production()
    if path is None:
        return trust
    from attest.simulate.platform import SimulatedTrust

    return trust.with_simulated(SimulatedTrust.from_json(Path(path).read_bytes()))


def _state(policy: Policy, state: str | None, log_url: str | None,
           offline: bool) -> dict[str, Any]:
    """The client's state under ``--state DIR``: last-seen checkpoints and the revocation
    mirror, synced from ``--log-url`` (a tile URL, not with ``--offline``; or a local tile
    directory) before verifying, which also serves consistency proofs."""
    if state is None:
        return {}
    from transparency_log.checkpoint_store import CheckpointStore
    from transparency_log.client import LogClient, source_for
    from verifier.revocations import RevocationMirror

    root = Path(state)
    mirror = RevocationMirror(root / "revocations", policy.log.origin, policy.release)
    out: dict[str, Any] = {"checkpoint_store": CheckpointStore(root / "checkpoints"),
                           "revocations": mirror}
    if log_url is None or (offline and log_url.startswith(("http://", "https://"))):
        return out
    client = LogClient(source_for(log_url), policy.log.verifier, origin=policy.log.origin,
                       policy=policy.log.witness_policy)
    current = client.checkpoint()
    size = current.checkpoint.size
    mirror.sync(current.checkpoint, lambda a, b: [e for _, e in client.entries(a, b, size)])
    out["fetch_consistency"] = lambda old, new: client.reader(new).consistency_proof(old)
    return out


def _short(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(result: Result) -> None:
    """One line per check (id, result, detail) and a verdict line."""
    steps = result.transcript.steps
    width = max((len(s.check) for s in steps), default=10)
    marks = {PASS: "pass", FAIL: "FAIL"}
    click.echo(f"  {'check':<{width}}  {'result':<6}  detail")
    for s in steps:
        click.echo(f"  {s.check:<{width}}  {marks.get(s.result, s.result):<6}  {_short(s.detail)}")
    if result.bundle is not None and result.bundle.simulated:
        click.echo("  *** SIMULATED HARDWARE (unsafe_allow_simulated_hardware) ***")
    if result.accepted:
        rel = result.release_entry.digest.hex() if result.release_entry else "?"
        click.echo(f"verdict: ACCEPTED  release {rel[:16]}…  "
                   f"policy {result.policy_digest.hex()[:16]}…")
    else:
        err = result.error
        click.echo(f"verdict: REFUSED  by {err.check if err else '?'}")


def _finish(result: Result, as_json: bool, ear: tuple[str, EarSigner] | None = None,
            nonce: bytes = b"") -> None:
    if ear is not None:  # written whatever the verdict: a refusal is a contraindicated EAR
        Path(ear[0]).write_text(ear[1].sign(result, nonce) + "\n", encoding="ascii")
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, sort_keys=False))
    else:
        print_table(result)
    if result.verdict != ACCEPTED:
        assert result.error is not None
        report_error(result.error)
        sys.exit(result.error.exit_code)


_common = [
    click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
                 help="Policy file (TOML, docs/policy.md). Required."),
    click.option("--json", "as_json", is_flag=True, help="Print the transcript as JSON."),
    click.option("--offline", is_flag=True,
                 help="No network for collateral: only what the node stapled and the cache."),
    click.option("--at", "at_text", help="Verification time (ISO 8601); default now."),
    click.option("--state", type=click.Path(file_okay=False),
                 help="Client state: last-seen checkpoints, revocation mirror, cache."),
    click.option("--cache", "cache_dir", type=click.Path(file_okay=False),
                 help="Collateral cache (KDS/PCS/RIM answers); default STATE/cache with "
                 "--state. Offline, collateral not stapled comes only from here."),
    click.option("--log-url", help="The log's tiles (URL, or a local directory), to sync the "
                 "revocation mirror and get consistency proofs (with --state)."),
    click.option("--simulated-trust", type=click.Path(dir_okay=False),
                 help="Simulator roots (JSON from attest.simulate); used only for simulated "
                 "bundles under unsafe_allow_simulated_hardware."),
    click.option("--ear", "ear_out", type=click.Path(dir_okay=False),
                 help="Also write the result as an EAR (signed JWT, docs/ear.md) here."),
    click.option("--ear-key", type=click.Path(dir_okay=False),
                 help="The verifier's EAR signing key (PEM, Ed25519 or ECDSA P-256)."),
]


def _ear_args(ear_out: str | None, ear_key: str | None) -> tuple[str, EarSigner] | None:
    """``--ear OUT --ear-key FILE``: the key is loaded before anything is verified."""
    if (ear_out is None) != (ear_key is None):
        raise click.BadParameter("--ear and --ear-key go together", param_hint="--ear")
    if ear_out is None or ear_key is None:
        return None
    from verifier.cli_ear import load_signer

    return ear_out, load_signer(ear_key)


def _options(fn: Any) -> Any:
    for option in reversed(_common):
        fn = option(fn)
    return fn


def _pipeline_args(policy: Policy, offline: bool, state: str | None, log_url: str | None,
                   simulated_trust: str | None, cache_dir: str | None = None) -> dict[str, Any]:
    """Collateral the node did not staple is fetched from the vendors (``HttpFetcher``)
    unless ``--offline``, through the ``--cache`` (or ``STATE/cache``) directory."""
    fetcher = None if offline else HttpFetcher()
    cache = cache_dir if cache_dir is not None else (
        str(Path(state) / "cache") if state is not None else None)
    disk = DiskCache(cache) if cache is not None else None
    return {"trust": _trust(simulated_trust), "fetch": fetcher,
            "caches": VerifierCaches(disk=disk), **_state(policy, state, log_url, offline)}


@click.command("bundle")
@click.argument("file")
@click.option("--nonce", "nonce_hex", help="The nonce the bundle was requested with (hex).")
@_options
def bundle_command(file: str, nonce_hex: str | None, policy_path: str | None, as_json: bool,
                   offline: bool, at_text: str | None, state: str | None, cache_dir: str | None,
                   log_url: str | None, simulated_trust: str | None, ear_out: str | None,
                   ear_key: str | None) -> None:
    """Verify a saved evidence bundle FILE ('-' for stdin) and print every check."""
    ear = _ear_args(ear_out, ear_key)
    nonce = parse_nonce(nonce_hex, required=True)
    assert nonce is not None
    policy = _policy(policy_path)
    at = parse_time(at_text)
    result = run_pipeline(read_input(file), policy, at=at, expected_nonce=nonce,
                          **_pipeline_args(policy, offline, state, log_url, simulated_trust,
                                           cache_dir))
    _finish(result, as_json, ear, nonce)


@click.command("node")
@click.argument("url")
@click.option("--nonce", "nonce_hex", help="Nonce to send (hex); default 32 fresh random bytes.")
@click.option("--save", type=click.Path(dir_okay=False), help="Also save the bundle here.")
@click.option("--timeout", type=float, default=10.0, show_default=True)
@_options
def node_command(url: str, nonce_hex: str | None, save: str | None, timeout: float,
                 policy_path: str | None, as_json: bool, offline: bool, at_text: str | None,
                 state: str | None, cache_dir: str | None, log_url: str | None,
                 simulated_trust: str | None, ear_out: str | None, ear_key: str | None) -> None:
    """Fetch a node's evidence bundle over HTTPS, verify it, and pin its TLS key."""
    from verifier.requests import check_tls_key, fetch_node_bundle

    ear = _ear_args(ear_out, ear_key)
    nonce = parse_nonce(nonce_hex, required=False) or os.urandom(NONCE_SIZE)
    policy = _policy(policy_path)
    at = parse_time(at_text)
    args = _pipeline_args(policy, offline, state, log_url, simulated_trust, cache_dir)
    served = fetch_node_bundle(url, nonce, timeout=timeout)
    if save is not None:
        Path(save).write_bytes(served.data)
    result = run_pipeline(served.data, policy, at=at, expected_nonce=nonce, **args)
    check_tls_key(result, served.server_spki)
    _finish(result, as_json, ear, nonce)
