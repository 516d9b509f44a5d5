"""`verifier`: the client side's command line.

Subcommands are imported only when they run (clitools.LazyGroup), so `verifier --help` and a
command's start-up do not pay for the others' imports (issue 12, "Start-up").
"""

from __future__ import annotations

import click

from transparency_log.common.clitools import LazyGroup, debug_option

# name -> ("module:attribute", short help shown by `verifier --help` without importing it)
COMMANDS = {
    "snp": ("verifier.snp.cli:snp",
            "Verify one AMD SEV-SNP attestation report (and apply a policy)."),
    "gpu": ("verifier.gpu.cli:gpu", "Verify one GPU attestation REPORT (hex or binary)."),
    "tdx": ("verifier.tdx.cli:tdx_command",
            "Verify one raw Intel TDX quote (v4 or v5) and its collateral."),
    "bundle-inspect": ("verifier.cli_bundle:bundle_inspect",
                       "Strictly decode an evidence bundle FILE (- for stdin) and print a "
                       "summary."),
    "policy": ("verifier.cli_policy:policy_group", "Policy files: check them before deploying."),
    "audit": ("verifier.cli_audit:audit_cmd",
              "Audit a release log (URL or tile directory): verify every checkpoint, "
              "consistency and the whole tree, open every entry, list releases and "
              "revocations, flag every entry that fails, and with --reproduce re-derive the "
              "logged measurements."),
    "node": ("verifier.cli_verify:node_command",
             "Fetch a node's evidence bundle over HTTPS, verify it, and pin its TLS key."),
    "bundle": ("verifier.cli_verify:bundle_command",
               "Verify saved evidence bundles (each FILE; '-' for stdin) and print every "
               "check."),
    "ear": ("verifier.cli_ear:ear_group",
            "EAT Attestation Results (IETF RATS EAR): make a key, check a token."),
    "request": ("verifier.cli_request:request_command",
                "Send one request privately: OHTTP through a relay to a node the client "
                "verified and chose."),
    "serve": ("verifier.cli_serve:serve_cmd",
              "Serve POST /verify?nonce=HEX (body: an evidence bundle): answers the EAR and "
              "the transcript as JSON."),
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@debug_option
def main() -> None:
    """Verify attestation evidence, bundles and logs; refuse with a named reason."""


_CLIENT = {"policy": "policy_path", "state": "state", "log_url": "log_url"}
# The one-item commands read their own table of the same policy file (and its waivers).
main.config_commands = {"node": _CLIENT, "bundle": _CLIENT, "request": _CLIENT,  # type: ignore[attr-defined]
                        "audit": {"policy": "policy_file", "state": "state_dir"},
                        "snp": {"policy": "policy_path"}, "tdx": {"policy": "policy_file"},
                        "gpu": {"policy": "policy_path"}}
