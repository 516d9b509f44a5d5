"""``verifier audit LOG_URL``: replay a release log, judge every entry (:mod:`verifier.audit`).

Exit codes (docs/operations.md, "verifier audit"): 0 the log is consistent and no entry was
flagged; 2 log-level failure, named by its check id (``log.signature``, ``log.witness.quorum``,
``log.consistency`` with evidence kept, ``log.tiles``, malformed data); 3 the log is
unreachable; 4 bad trust configuration (vkey, policy file); 6 (:data:`EXIT_FLAGGED`) the log
is consistent but entries were flagged (``release.signature``, ``release.entry.format``,
``release.sigstore``, ``release.revocation.target``, ``release.reproduce``,
``release.artifacts.missing``).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from attest.measure.tdx_mrtd import PageOrder
from transparency_log.client.checkpoint_store import CheckpointStore
from transparency_log.client.log_client import LogClient, source_for
from transparency_log.common.clitools import json_printed, vkey_option
from transparency_log.common.errors import FetchError, TrustConfigError
from transparency_log.common.exit_status import ExitStatus
from transparency_log.core.key_types import Verifier
from transparency_log.core.witness_policy import WitnessPolicy
from verifier.audit import AuditOptions, Auditor, AuditReport
from verifier.audit_reproduce import DEFAULT_SNP_GUEST_FEATURES
from verifier.policy import load_policy
from verifier.render import Output, output_options

EXIT_FLAGGED = ExitStatus.FLAGGED
PROGRESS_MIN = 1024  # entries: below this no progress bar


def _hex_int(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
             ) -> tuple[int, ...]:
    out = []
    for v in values:
        try:
            out.append(int(v, 16))
        except ValueError:
            raise click.BadParameter(f"not a hex number: {v!r}") from None
    return tuple(out) or DEFAULT_SNP_GUEST_FEATURES


def _progress(enabled: bool) -> tuple[Callable[[int, int], None], list[Any]]:
    """A ``monitor`` progress callback drawing a click progress bar on stderr, opened lazily
    for runs of at least PROGRESS_MIN entries; the list holds the bar to close."""
    bars: list[Any] = []

    def progress(done: int, total: int) -> None:
        if not enabled or total < PROGRESS_MIN:
            return
        if not bars:
            bar = click.progressbar(length=total, label="auditing entries", file=sys.stderr)
            bar.__enter__()
            bars.append(bar)
        bar = bars[0]
        bar.update(done - bar.pos)

    return progress, bars


def _short(data: bytes | str, n: int = 16) -> str:
    text = data.hex() if isinstance(data, bytes) else data
    return text[:n]


def print_table(report: AuditReport) -> None:
    cp = report.checkpoint
    was = f"from size {report.previous.size}" if report.previous else "first audit"
    wit = (f"; cosigned by {', '.join(report.cosigners) or 'nobody'}"
           if report.cosigners is not None else "; no witness policy")
    click.echo(f"log {report.origin}: size {cp.size} root {cp.root.hex()} ({was}{wit})")
    unsigned = "NOT checked (no --policy)"
    checks = [f"signatures {'checked' if report.signatures_checked else unsigned}",
              f"sigstore {'checked' if report.sigstore_checked else 'not checked'}",
              f"reproduce {'checked' if report.reproduce_checked else 'not checked'}"]
    click.echo("log: signature, consistency and every tile verified; " + ", ".join(checks))
    click.echo(f"\nreleases ({len(report.releases)}):")
    click.echo(f"  {'index':>6}  {'digest':16}  {'subject':24}  {'source':32}  "
               f"{'measurements':14}  {'signers':17}  {'revoked by':10}  reproduce")
    for r in report.releases:
        rel = r.release
        ms = rel.measurements
        kinds = [f"snp×{len(ms.snp)}"] if ms.snp else []
        kinds += ["tdx"] if ms.tdx else []
        kinds += ["gpu"] if ms.gpu else []
        source = f"{rel.repository.removeprefix('https://github.com/')}@{rel.commit[:8]}"
        revoked = ",".join(str(v.index) for v in r.revoked_by) or "-"
        repro = r.reproduction.status if r.reproduction else "-"
        signers = ",".join(_short(s, 8) for s in r.signers)
        click.echo(f"  {r.index:>6}  {_short(r.digest)}  {rel.subjects[0].name[:24]:24}  "
                   f"{source[:32]:32}  {' '.join(kinds):14}  {signers[:17]:17}  "
                   f"{revoked:10}  {repro}")
    click.echo(f"\nrevocations ({len(report.revocations)}):")
    for v in report.revocations:
        target = ",".join(str(i) for i in v.release_indexes) or "none"
        click.echo(f"  {v.index:>6}  {_short(v.digest)}  revokes {v.revocation.target} "
                   f"{_short(v.revocation.value)} (entries {target}): {v.reason}")
    click.echo(f"\nflags ({len(report.flags)}):")
    for f in report.flags:
        click.echo(f"  FAIL {f}")
    click.echo("\nverdict: " + ("OK" if report.ok else f"FLAGGED ({len(report.flags)})"))


@click.command("audit")
@click.argument("log_url")
@vkey_option(required=False, help="The log's verifier key (default: the policy's [log] vkey).")
@click.option("--origin", default=None,
              help="The log's origin line (default: the policy's, else the key's name).")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None,
              help="Policy file (docs/policy.md): witnesses + quorum, accepted release keys, "
                   "Sigstore identity.")
@click.option("--state", "state_dir", type=click.Path(file_okay=False), default=None,
              help="Keep the last-seen checkpoint here and check consistency with it "
                   "(default: a temporary folder for this run).")
@click.option("--reproduce", "reproduce_dir", type=click.Path(file_okay=False, exists=True),
              default=None, help="Artifact folder (DIR/<sha256>, DIR/sha256/<sha256> or "
                                 "DIR/<name>): recompute each release's measurements.")
@click.option("--sigstore-bundles", "sigstore_dir", type=click.Path(file_okay=False,
              exists=True), default=None,
              help="Folder of <sha256 of the statement>.sigstore.json bundles (checked when "
                   "the policy has [release.sigstore]).")
@click.option("--snp-guest-features", "guest_features", multiple=True, callback=_hex_int,
              help="VMSA SEV_FEATURES (hex) to try when reproducing SNP measurements "
                   "(repeatable; default 0x1).")
@output_options
@click.option("--follow", is_flag=True, help="Keep auditing new entries.")
@click.option("--interval", type=float, default=10.0, show_default=True,
              help="Seconds between rounds with --follow.")
@click.option("--iterations", type=click.IntRange(min=0), default=0,
              help="With --follow: stop after this many rounds (0: never).")
def audit_cmd(log_url: str, vkey: str | None, origin: str | None, policy_file: str | None,
              state_dir: str | None, reproduce_dir: str | None, sigstore_dir: str | None,
              guest_features: tuple[int, ...], as_json: bool, quiet: bool, verbose: bool,
              follow: bool, interval: float, iterations: int) -> None:
    """Audit a release log (URL or tile directory): verify every checkpoint, consistency and
    the whole tree, open every entry, list releases and revocations, flag every entry that
    fails, and with --reproduce re-derive the logged measurements. Exits 0 only if clean."""
    policy = load_policy(policy_file) if policy_file else None
    witness_policy: WitnessPolicy | None = None
    if policy is not None:
        if vkey is not None and vkey.strip() != policy.log.vkey:
            raise TrustConfigError("audit.vkey", "--vkey differs from the policy's [log] vkey",
                                   field="vkey", got=vkey.strip(), want=policy.log.vkey)
        vkey = policy.log.vkey
        origin = origin or policy.log.origin
        witness_policy = policy.log.witness_policy
    if vkey is None:
        raise click.UsageError("give --vkey or --policy")
    options = AuditOptions(
        release=policy.release if policy else None,
        reproduce_dir=Path(reproduce_dir) if reproduce_dir else None,
        sigstore_dir=Path(sigstore_dir) if sigstore_dir else None,
        snp_guest_features=guest_features,
        tdx_orders=(PageOrder.SINGLE, PageOrder.TWO))
    with tempfile.TemporaryDirectory(prefix="verifier-audit-") as tmp:
        store = CheckpointStore(state_dir or tmp)
        client = LogClient(source_for(log_url), Verifier(vkey), origin=origin,
                           policy=witness_policy, store=store)
        out = Output.of(quiet=quiet, verbose=verbose, as_json=as_json)
        code = _rounds(Auditor(client, options), out, follow, interval, iterations)
    click.get_current_context().exit(code)


def _rounds(auditor: Auditor, out: Output, follow: bool, interval: float,
            iterations: int) -> int:
    """Run audit rounds; returns the exit code of the last one (log failures raise)."""
    done = 0
    code = 0
    while True:
        progress, bars = _progress(not out.quiet)
        try:
            report = auditor.run(progress=progress)
        except FetchError as err:
            if not follow:
                raise
            click.echo(f"warning: {err}; retrying in {interval:g}s", err=True)
            report, code = None, err.exit_code
        finally:
            for bar in bars:
                bar.__exit__(None, None, None)
        if report is not None:
            if out.as_json:  # one document per round with --follow
                click.echo(json.dumps(report.to_json(), sort_keys=True))
                json_printed()
            elif out.text:
                print_table(report)
            code = 0 if report.ok else EXIT_FLAGGED
        done += 1
        if not follow or (iterations and done >= iterations):
            return code
        time.sleep(interval)
