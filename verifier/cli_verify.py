"""`verifier node URL` and `verifier bundle FILE...`: verify a node, print every check, exit with
the verdict (docs/verification.md; DESIGN.md exit codes: 0 accepted, 2 format/verification,
3 fetch, 4 trust config, 5 policy).

This module wires in what the library takes as parameters: the wall clock (``--at``), the
network (``HttpFetcher`` unless ``--offline``), randomness (the nonce), files (``--policy``,
``--state``, ``--simulated-trust``).

``verifier node URL`` POSTs a fresh 32-byte nonce (or ``--nonce HEX``) to
``URL/.well-known/attestlog/bundle`` over HTTPS, verifies the bundle, and then checks
``tls.node_key``: the node's TLS certificate is self-signed and **not** CA-verified; its
SubjectPublicKeyInfo must equal the bundle's verified ``node_key`` (the evidence vouches for
the key, not a CA). ``--save FILE`` keeps the bundle for ``verifier bundle``, and the nonce
beside it in ``FILE.nonce`` (verifier/saved_bundle.py), so ``verifier bundle FILE`` needs no
``--nonce``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from transparency_log.common.clitools import parse_time, read_input
from transparency_log.common.errors import AttestlogError, TrustConfigError
from transparency_log.common.exit_status import ExitStatus
from transparency_log.common.http_fetch import DiskCache, HttpFetcher
from verifier.ear_token import EarSigner
from verifier.pipeline import run_pipeline
from verifier.pipeline_trust import VerifierCaches, VerifierTrust
from verifier.policy import Policy, load_policy
from verifier.render import Output, output_options, waive_option
from verifier.result import ACCEPTED, REFUSED, Result

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


def _policy(path: str | None, waive: frozenset[str] = frozenset()) -> Policy:
    if path is None:
        raise TrustConfigError("policy.syntax", "no policy file: give --policy FILE or set "
                               "ATTESTLOG_POLICY (docs/policy.md)", field="--policy")
    return load_policy(path).with_waivers(waive)


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
    from transparency_log.client.checkpoint_store import CheckpointStore
    from transparency_log.client.log_client import LogClient, source_for
    from verifier.revocations import RevocationMirror

    root = Path(state)
    mirror = RevocationMirror(root / "revocations", policy.log.origin, policy.release)
    store = CheckpointStore(root / "checkpoints")
    out: dict[str, Any] = {"checkpoint_store": store, "revocations": mirror}
    if log_url is None or (offline and log_url.startswith(("http://", "https://"))):
        return out
    client = LogClient(source_for(log_url), policy.log.verifier, origin=policy.log.origin,
                       policy=policy.log.witness_policy, store=store)
    # The log's checkpoint moves last-seen forward (log.consistency: a fork or a rollback
    # stops here, evidence kept) before the mirror trusts it.
    _, current = client.update()
    size = current.checkpoint.size
    mirror.sync(current.checkpoint, lambda a, b: [e for _, e in client.entries(a, b, size)])
    out["fetch_consistency"] = client.fetch_consistency
    return out


def print_table(result: Result, out: Output | None = None, name: str | None = None) -> None:
    """The check table (verifier/render.py), a verdict line and, given the input's ``name``,
    its ``OK:``/``FAIL:`` line."""
    out = out or Output.of()
    out.table(result.transcript.steps)
    if result.bundle is not None and result.bundle.simulated:
        out.echo("  *** SIMULATED HARDWARE (unsafe_allow_simulated_hardware) ***")
    if result.accepted:
        rel = result.release_entry.digest.hex() if result.release_entry else "?"
        out.verdict(f"verdict: ACCEPTED  release {rel[:16]}…  "
                    f"policy {result.policy_digest.hex()[:16]}…", ok=True)
    else:
        err = result.error
        out.verdict(f"verdict: REFUSED  by {err.check if err else '?'}", ok=False)
    if name is not None:
        out.summary(name, None if result.accepted else _reason(result))


def _reason(result: Result) -> object:
    return result.error if result.error is not None else "?: refused"


def _finish(result: Result, out: Output, name: str,
            ear: tuple[str, EarSigner] | None = None, nonce: bytes = b"") -> None:
    if ear is not None:  # written whatever the verdict: a refusal is a contraindicated EAR
        Path(ear[0]).write_text(ear[1].sign(result, nonce) + "\n", encoding="ascii")
    out.json(result.to_json())
    print_table(result, out, name)
    if result.verdict != ACCEPTED:
        assert result.error is not None
        raise result.error


_common = [
    click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
                 envvar="ATTESTLOG_POLICY",
                 help="Policy file (TOML, docs/policy.md). Required; env ATTESTLOG_POLICY."),
    click.option("--offline", is_flag=True,
                 help="No network for collateral: only what the node stapled and the cache."),
    click.option("--at", "at_text", help="Verification time (ISO 8601); default now."),
    click.option("--state", type=click.Path(file_okay=False), envvar="ATTESTLOG_STATE",
                 help="Client state: last-seen checkpoints, revocation mirror, cache; env "
                 "ATTESTLOG_STATE."),
    click.option("--cache", "cache_dir", type=click.Path(file_okay=False),
                 help="Collateral cache (KDS/PCS/RIM answers); default STATE/cache with "
                 "--state. Offline, collateral not stapled comes only from here."),
    click.option("--log-url", envvar="ATTESTLOG_LOG_URL",
                 help="The log's tiles (URL, or a local directory), to sync the revocation "
                 "mirror and get consistency proofs (with --state); env ATTESTLOG_LOG_URL."),
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
    return waive_option(output_options(fn))


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
@click.argument("files", metavar="FILE...", nargs=-1, required=True)
@click.option("--nonce", "nonce_hex", help="The nonce the bundle was requested with (hex); "
              "default the one `verifier node --save` wrote beside it in FILE.nonce. Only "
              "with one FILE.")
@_options
def bundle_command(files: tuple[str, ...], nonce_hex: str | None, policy_path: str | None,
                   as_json: bool, offline: bool, at_text: str | None, state: str | None,
                   cache_dir: str | None, log_url: str | None, simulated_trust: str | None,
                   quiet: bool, verbose: bool, waive: frozenset[str], ear_out: str | None,
                   ear_key: str | None) -> None:
    """Verify saved evidence bundles (each FILE; '-' for stdin) and print every check.

    Each FILE is checked against the nonce saved beside it in FILE.nonce (or --nonce, with one
    FILE). With several FILEs: one OK:/FAIL: line each (tables with --verbose), and the worst
    exit status.
    """
    if nonce_hex is not None and len(files) > 1:
        raise click.UsageError("--nonce applies to one FILE; with several, each FILE is checked "
                               "against the nonce saved beside it in FILE.nonce")
    if ear_out is not None and len(files) > 1:
        raise click.UsageError("--ear writes one EAR: give one FILE")
    ear = _ear_args(ear_out, ear_key)
    nonce = _bundle_nonce(files[0], nonce_hex) if len(files) == 1 else None
    policy = _policy(policy_path, waive)
    at = parse_time(at_text)
    out = Output.of(quiet=quiet, verbose=verbose, as_json=as_json)
    if nonce is not None:
        data = read_input(files[0])
        args = _pipeline_args(policy, offline, state, log_url, simulated_trust, cache_dir)
        _finish(run_pipeline(data, policy, at=at, expected_nonce=nonce, **args), out, files[0],
                ear, nonce)
        return
    args = _pipeline_args(policy, offline, state, log_url, simulated_trust, cache_dir)
    _verify_saved_files(files, policy, at, args, out)


def _bundle_nonce(file: str, nonce_hex: str | None) -> bytes:
    """``--nonce``, else the one saved beside FILE (``FILE.nonce``); a usage error without."""
    from verifier.saved_bundle import saved_nonce

    saved = saved_nonce(file) if nonce_hex is None and file != "-" else None
    nonce = saved if saved is not None else parse_nonce(nonce_hex, required=True)
    assert nonce is not None
    return nonce


# Which exit status a run over several inputs ends with: the first of these that any input
# had (forged evidence outranks a policy refusal, which outranks stale or unreachable
# collateral and unreadable input), else OK.
WORST_FIRST = (ExitStatus.UNEXPECTED, ExitStatus.FORGED, ExitStatus.POLICY, ExitStatus.STALE,
               ExitStatus.UNREACHABLE, ExitStatus.TRUST_CONFIG, ExitStatus.NO_INPUT,
               ExitStatus.USAGE)


def worst_status(statuses: list[int]) -> int:
    """The exit status of several inputs (:data:`WORST_FIRST`)."""
    for status in WORST_FIRST:
        if status in statuses:
            return int(status)
    return max(statuses, default=int(ExitStatus.OK))


def _verify_saved_files(files: tuple[str, ...], policy: Policy, at: Any, args: dict[str, Any],
                        out: Output) -> None:
    """Several FILEs: each verified on its own (its own saved nonce), one ``OK:``/``FAIL:``
    line each (the check table before it with ``--verbose``); ``--json`` prints one object
    with every input's result; the exit status is the worst (:func:`worst_status`)."""
    from transparency_log.common.clitools import os_error_line

    docs: list[dict[str, Any]] = []
    statuses: list[int] = []
    for file in files:
        error: Any = None
        try:
            result = run_pipeline(read_input(file), policy, at=at,
                                  expected_nonce=_bundle_nonce(file, None), **args)
        except AttestlogError as err:
            error, status, doc = err, err.exit_code, {"verdict": "error",
                                                     "error": err.to_dict()}
        except click.UsageError as err:
            error = f"usage: {err.format_message()}"
            status, doc = ExitStatus.USAGE, {"verdict": "error", "error": {
                "kind": "usage", "message": err.format_message()}}
        except OSError as err:
            line, status = os_error_line(err)
            error, doc = f"input: {line}", {"verdict": "error",
                                            "error": {"kind": "input", "message": line}}
        else:
            doc = result.to_json()
            status = (ExitStatus.OK if result.accepted else
                      result.error.exit_code if result.error is not None
                      else ExitStatus.UNEXPECTED)
            if out.verbose:
                print_table(result, out)
            error = None if result.accepted else _reason(result)
        statuses.append(int(status))
        docs.append({"input": file, "exit_status": int(status), **doc})
        out.summary(file, error)
    worst = worst_status(statuses)
    out.json({"verdict": ACCEPTED if worst == ExitStatus.OK else REFUSED,
              "exit_status": worst, "inputs": docs})
    if worst != ExitStatus.OK:
        click.get_current_context().exit(worst)


@click.command("node")
@click.argument("url")
@click.option("--nonce", "nonce_hex", help="Nonce to send (hex); default 32 fresh random bytes.")
@click.option("--save", type=click.Path(dir_okay=False),
              help="Also save the bundle here, and the nonce sent beside it in FILE.nonce.")
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Seconds to wait for the node's answer.")
@_options
def node_command(url: str, nonce_hex: str | None, save: str | None, timeout: float,
                 policy_path: str | None, as_json: bool, offline: bool, at_text: str | None,
                 state: str | None, cache_dir: str | None, log_url: str | None,
                 simulated_trust: str | None, quiet: bool, verbose: bool,
                 waive: frozenset[str], ear_out: str | None, ear_key: str | None) -> None:
    """Fetch a node's evidence bundle over HTTPS, verify it, and pin its TLS key."""
    from verifier.requests import check_tls_key, fetch_node_bundle

    ear = _ear_args(ear_out, ear_key)
    nonce = parse_nonce(nonce_hex, required=False) or os.urandom(NONCE_SIZE)
    policy = _policy(policy_path, waive)
    at = parse_time(at_text)
    args = _pipeline_args(policy, offline, state, log_url, simulated_trust, cache_dir)
    served = fetch_node_bundle(url, nonce, timeout=timeout)
    if save is not None:
        from verifier.saved_bundle import save_bundle

        save_bundle(save, served.data, nonce)
    result = run_pipeline(served.data, policy, at=at, expected_nonce=nonce, **args)
    check_tls_key(result, served.server_spki)
    _finish(result, Output.of(quiet=quiet, verbose=verbose, as_json=as_json), url, ear, nonce)
