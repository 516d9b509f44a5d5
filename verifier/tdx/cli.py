"""`verifier tdx QUOTE`: verify one raw TDX quote with its collateral; print fields, the TCB
status with advisory IDs and every check; exit with DESIGN.md's codes (0 accepted,
2 malformed/forged, 3 collateral unreachable, 4 bad trust config/policy, 5 policy refusal).

Collateral given as files is used as is; what is missing is fetched from Intel PCS (cache
first with ``--cache``), or, with ``--offline``, taken from the cache or refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.serialization import Encoding

from attest.certificates import load_pem_bundle
from attest.collateral.pcs_fetch import PCS_BASE, ROOT_CRL_URL, PcsClient, pck_ca_kind
from attest.formats.tdx_quote import SPEC_NAMES, TdxQuote, parse_quote
from transparency_log.common.clitools import parse_time, read_input
from transparency_log.common.errors import AttestlogError
from transparency_log.common.http_fetch import DiskCache, HttpFetcher
from verifier.policy import load_policy as policy_file
from verifier.render import Output, output_options, waive_option
from verifier.tdx.collateral import TdxCollateral, VerificationTimes
from verifier.tdx.evidence import verify_tdx_evidence
from verifier.tdx.policy import TdxPolicy
from verifier.tdx.quote_verify import load_pck_chain, sgx_extensions
from verifier.tdx.roots import production_roots
from verifier.transcript import Transcript
from verifier.x509chain import PinnedRoot, fingerprint, pinned_root


def load_policy(path: str | None,
                waive: frozenset[str] = frozenset()) -> tuple[TdxPolicy, frozenset[str]]:
    """The ``[tdx]`` table of ``--policy`` (defaults without one), and the waived check ids
    (the file's and ``--waive``'s): the transcript's ``waive`` set. The file is read whole by
    the one loader (docs/policy.md)."""
    if path is None:
        return TdxPolicy(), waive
    full = policy_file(path).with_waivers(waive)
    return full.tdx, full.waive


def _file(path: str | None) -> bytes | None:
    return None if path is None else read_input(path)


def quote_fields(quote: TdxQuote) -> dict[str, Any]:
    """The quote's fields by spec name (hex), for printing."""
    body = quote.body
    out: dict[str, Any] = {"version": quote.version, "body_type": quote.body_type,
                           "trailing_bytes": len(quote.trailing)}
    for attr, name in SPEC_NAMES.items():
        value = getattr(body, attr)
        if value is not None:
            out[name] = value.hex()
    out["TDATTRIBUTES.flags"] = list(body.td_attribute_flags)
    return out


@click.command("tdx")
@click.argument("quote_file", metavar="QUOTE")
@click.option("--tcb-info", type=click.Path(exists=True, dir_okay=False),
              help="PCS TDX TCB Info JSON.")
@click.option("--qe-identity", type=click.Path(exists=True, dir_okay=False),
              help="PCS TD QE Identity JSON.")
@click.option("--tcb-signing-chain", type=click.Path(exists=True, dir_okay=False),
              help="PEM chain of the TCB Info / QE Identity signer (TCB-Info-Issuer-Chain).")
@click.option("--pck-crl", type=click.Path(exists=True, dir_okay=False), help="PCK CRL.")
@click.option("--pck-crl-chain", type=click.Path(exists=True, dir_okay=False),
              help="PEM chain of the PCK CRL issuer (SGX-PCK-CRL-Issuer-Chain).")
@click.option("--root-crl", type=click.Path(exists=True, dir_okay=False),
              help="Intel SGX Root CA CRL.")
@click.option("--policy", "policy_file", type=click.Path(exists=True, dir_okay=False),
              envvar="ATTESTLOG_POLICY",
              help="Policy file (TOML); its [tdx] table (defaults without one) and waive list "
                   "apply; env ATTESTLOG_POLICY, or the config file's policy.")
@click.option("--at", "at_text", help="Verification time (ISO 8601) for every item; "
              "default: now.")
@click.option("--at-item", "at_items", multiple=True, metavar="ITEM=TIME",
              help="Time for one item: pck_chain, tcb_info, qe_identity, tcb_signing_chain, "
                   "pck_crl, root_crl. Repeatable; recorded in the transcript.")
@click.option("--offline", is_flag=True, help="Never fetch: files and the cache only.")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False),
              help="Collateral cache directory.")
@click.option("--pcs-url", default=PCS_BASE, show_default=True,
              help="Intel Provisioning Certification Service base URL.")
@click.option("--root-crl-url", default=ROOT_CRL_URL, show_default=True,
              help="Where the Intel SGX Root CA CRL is fetched from.")
@click.option("--unsafe-trust-root", "extra_roots", multiple=True,
              type=click.Path(exists=True, dir_okay=False),
              help="Trust this root (PEM) INSTEAD of Intel's: simulated hardware only.")
@click.option("--event-log", type=click.Path(exists=True, dir_okay=False),
              help="CCEL event log area: replayed, must reproduce RTMR0-2.")
@waive_option
@output_options
def tdx_command(quote_file: str, tcb_info: str | None, qe_identity: str | None,
                tcb_signing_chain: str | None, pck_crl: str | None, pck_crl_chain: str | None,
                root_crl: str | None, policy_file: str | None, at_text: str | None,
                at_items: tuple[str, ...], offline: bool, cache_dir: str | None, pcs_url: str,
                root_crl_url: str, extra_roots: tuple[str, ...], event_log: str | None,
                waive: frozenset[str], as_json: bool, quiet: bool, verbose: bool) -> None:
    """Verify one raw Intel TDX quote (v4 or v5) and its collateral."""
    raw = read_input(quote_file)
    at = parse_time(at_text)
    overrides = {}
    for item in at_items:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected ITEM=TIME, got {item}")
        overrides[name] = parse_time(value)
    times = VerificationTimes.uniform(at).override(**overrides)
    policy, waive = load_policy(policy_file, waive)
    out = Output.of(quiet=quiet, verbose=verbose, as_json=as_json)
    roots: list[PinnedRoot] = []
    for path in extra_roots:
        for cert in load_pem_bundle(Path(path).read_bytes(), check="trust.root", field=path):
            roots.append(pinned_root(f"unsafe:{path}", cert.public_bytes(Encoding.PEM),
                                     fingerprint(cert).hex()))
    if not roots:
        roots = list(production_roots())

    signing = _file(tcb_signing_chain)
    collateral = TdxCollateral(_file(tcb_info), signing, _file(qe_identity), signing,
                               _file(pck_crl), _file(pck_crl_chain), _file(root_crl))
    transcript = Transcript(waive=waive)
    try:
        if None in (collateral.tcb_info, collateral.qe_identity, collateral.pck_crl,
                    collateral.root_crl):
            collateral = _complete(raw, collateral, offline=offline, cache_dir=cache_dir,
                                   pcs_url=pcs_url, root_crl_url=root_crl_url)
        result = verify_tdx_evidence(raw, collateral, roots=roots, times=times,
                                     transcript=transcript, event_log=_file(event_log))
        policy.apply(result, transcript)
    except AttestlogError as err:
        transcript.error = transcript.error or err
        _print(transcript, times, _parsed_or_none(raw), None, out, quote_file)
        raise
    _print(transcript, times, result.quote, result.tcb.to_dict(), out, quote_file)


def _parsed_or_none(raw: bytes) -> TdxQuote | None:
    """The quote's fields are printed on refusal too, when it parses."""
    try:
        return parse_quote(raw)
    except AttestlogError:
        return None


def _complete(raw: bytes, given: TdxCollateral, *, offline: bool, cache_dir: str | None,
              pcs_url: str, root_crl_url: str) -> TdxCollateral:
    """Fill in missing collateral from PCS (or the cache when offline)."""
    quote = parse_quote(raw)
    chain = load_pck_chain(quote)
    ext = sgx_extensions(chain[0])
    client = PcsClient(None if offline else HttpFetcher(),
                       cache=DiskCache(cache_dir) if cache_dir else None, base=pcs_url,
                       root_crl_url=root_crl_url)
    fetched = client.collateral(ext.fmspc, pck_ca=pck_ca_kind(chain[0].issuer.rfc4514_string()))
    tcb_given = given.tcb_info is not None
    qe_given = given.qe_identity is not None
    crl_given = given.pck_crl is not None
    return TdxCollateral(
        given.tcb_info if tcb_given else fetched.tcb_info,
        given.tcb_info_issuer_chain if tcb_given else fetched.tcb_info_issuer_chain,
        given.qe_identity if qe_given else fetched.qe_identity,
        given.qe_identity_issuer_chain if qe_given else fetched.qe_identity_issuer_chain,
        given.pck_crl if crl_given else fetched.pck_crl,
        given.pck_crl_issuer_chain if crl_given else fetched.pck_crl_issuer_chain,
        given.root_crl if given.root_crl is not None else fetched.root_crl)


def _print(transcript: Transcript, times: VerificationTimes, quote: TdxQuote | None,
           tcb: dict[str, Any] | None, out: Output, name: str) -> None:
    doc = transcript.to_dict()
    doc["times"] = times.to_dict()
    if quote is not None:
        doc["quote"] = quote_fields(quote)
    if tcb is not None:
        doc["tcb"] = tcb
    out.json(doc)
    if quote is not None:
        out.fields(quote_fields(quote), lambda name, value: f"{name:20} {value}")
    if tcb is not None:
        advisories = ", ".join(tcb["advisory_ids"]) or "none"
        out.echo(f"{'TCB status':20} {tcb['status']} (advisories: {advisories}; platform "
                   f"{tcb['platform_status']}, module {tcb['module_id']} "
                   f"{tcb['module_status']}, QE {tcb['qe_status']}"
                   + (f"; launch {tcb['launch_status']}, current {tcb['current_status']}"
                      if tcb["current_status"] is not None else "") + ")")
    out.table(transcript.steps)
    out.verdict(f"verdict: {transcript.verdict}", ok=transcript.verdict == "accepted")
    out.summary(name, transcript.error)
