"""`verifier request URL --relay RELAY --policy P`: one private request (issue 13;
docs/private.md, "verifier request").

The client (:class:`verifier.private.PrivateClient`) fetches the node directory through
``--relay``, verifies every node's evidence bundle under the policy (offline unless
``--online``: stapled collateral and ``--cache`` only), chooses a node with its own
randomness weighted by attested GPUs (``[private] min_nodes``), and sends ``URL`` as a
Binary HTTP request in OHTTP with one Privacy Pass token bought with the account token
(``--account-token-file``, or env ``ATTESTLOG_ACCOUNT_TOKEN``). Prints the answer's body
(``--json``: node, status, candidates, refusals). Exit: 0 answered (whatever its HTTP
status), 3 unreachable or not answered (``private.send``, ``private.fetch``), 4 trust
config, 5 too few nodes verified (``private.min_nodes``), 2 malformed.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import click

from transparency_log.common.clitools import parse_time, read_input
from transparency_log.common.errors import TrustConfigError
from verifier.cli_verify import _common, _pipeline_args, _policy
from verifier.ohttp_keys import attested_key_config
from verifier.private.fetch import KeyConfigSource
from verifier.render import Output, output_options, waive_option

__all__ = ["KEY_CONFIGS", "request_command"]

#: How an accepted bundle's HPKE key configuration is read: the one its evidence binds
#: (``binding.ohttp_keys`` when none; verifier/ohttp_keys.py).
KEY_CONFIGS: KeyConfigSource = attested_key_config


def _options(fn):  # type: ignore[no-untyped-def]
    # --policy --offline --at --state --cache --log-url --simulated-trust (not --ear*)
    for option in reversed(_common[:7]):
        fn = option(fn)
    return waive_option(output_options(fn))


def _account(path: str | None) -> str:
    if path is not None:
        return Path(path).read_text(encoding="utf-8").strip()
    token = os.environ.get("ATTESTLOG_ACCOUNT_TOKEN", "")
    if not token:
        raise TrustConfigError("private.token", "no account token: give --account-token-file "
                               "or set ATTESTLOG_ACCOUNT_TOKEN", field="--account-token-file")
    return token


def _target(url: str, method: str, headers: tuple[str, ...], data: bytes):  # type: ignore[no-untyped-def]
    from attest.formats.bhttp import BinaryRequest

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter("want an http(s) URL", param_hint="URL")
    fields = []
    for h in headers:
        name, sep, value = h.partition(":")
        if not sep:
            raise click.BadParameter(f"want NAME: VALUE, got {h!r}", param_hint="--header")
        fields.append((name.strip().lower().encode(), value.strip().encode()))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return BinaryRequest(method.upper().encode(), parts.scheme.encode(), parts.netloc.encode(),
                         path.encode(), tuple(fields), data)


@click.command("request")
@click.argument("url")
@click.option("--relay", required=True, help="The oblivious relay's base URL.")
@click.option("-X", "--method", default=None, help="Method (default GET, POST with --data).")
@click.option("-H", "--header", "headers", multiple=True, help="NAME: VALUE (repeatable).")
@click.option("--data", "data_file", type=click.Path(dir_okay=False, allow_dash=True),
              help="Request body from FILE ('-' for stdin).")
@click.option("--account-token-file", type=click.Path(dir_okay=False),
              help="The issuer account's bearer token; env ATTESTLOG_ACCOUNT_TOKEN.")
@click.option("--timeout", type=float, default=60.0, show_default=True)
@_options
def request_command(url: str, relay: str, method: str | None, headers: tuple[str, ...],
                    data_file: str | None, account_token_file: str | None, timeout: float,
                    policy_path: str | None, offline: bool, at_text: str | None,
                    state: str | None, cache_dir: str | None, log_url: str | None,
                    simulated_trust: str | None, as_json: bool, quiet: bool, verbose: bool,
                    waive: frozenset[str]) -> None:
    """Send one request privately: OHTTP through a relay to a node the client verified and chose."""
    from verifier.private import IssuerTokens, PrivateClient

    data = read_input(data_file) if data_file is not None else b""
    inner = _target(url, method or ("POST" if data_file is not None else "GET"), headers, data)
    policy = _policy(policy_path, waive)
    at = parse_time(at_text)
    args = _pipeline_args(policy, offline, state, log_url, simulated_trust, cache_dir)
    client = PrivateClient(relay, policy, tokens=lambda c: IssuerTokens(
        directory.issuer_directory, _account(account_token_file), timeout=timeout)(c),
        key_configs=KEY_CONFIGS, clock=lambda: at, timeout=timeout, **args)
    directory = client.directory()
    candidates, refused = client.verify(directory)
    out = Output.of(quiet=quiet, verbose=verbose, as_json=as_json)
    for node, err in refused.items():
        out.echo(f"refused {node}: {err.check}: {err}")
    chosen = client.choose(candidates)
    response = client.send(chosen, inner, directory.token_challenge)
    out.json({"node": chosen.entry.id, "status": response.status,
              "headers": {k.decode(): v.decode("latin-1") for k, v in response.headers},
              "body": response.content.decode("utf-8", "replace"),
              "candidates": [{"id": c.entry.id, "gpus": c.gpus} for c in candidates],
              "refused": {n: e.to_dict() for n, e in refused.items()}})
    if not as_json:
        out.echo(f"node {chosen.entry.id} (of {len(candidates)} verified): HTTP "
                 f"{response.status}")
        click.echo(response.content.decode("utf-8", "replace"))
