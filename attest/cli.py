"""`attest`: the node side's command line.

Subcommands are imported only when they run (clitools.LazyGroup), so `attest measure snp`
does not import the agent's web server or the release tooling (issue 12, "Start-up").
"""

from __future__ import annotations

import click

from transparency_log.common.clitools import LazyGroup, debug_option

# name -> ("module:attribute", short help shown by `attest --help` without importing it)
COMMANDS = {
    "measure": ("attest.measure.cli:measure",
                "Compute expected TEE launch measurements from build artifacts."),
    "release": ("attest.release.cli:release",
                "Release keys and release entries (in-toto Statement in a DSSE envelope)."),
    "snp-report": ("attest.collect.cli_snp:snp_report",
                   "Get an attestation report binding REPORT_DATA from the SNP firmware."),
    "gpu-evidence": ("attest.collect.cli_gpu:gpu_evidence",
                     "Collect the attestation report and certificate chain of every NVIDIA "
                     "GPU."),
    "tdx-quote": ("attest.collect.cli_tdx:tdx_quote_command",
                  "Get a TDX quote over REPORTDATA from the kernel (configfs-tsm, provider "
                  "tdx_guest)."),
    "agent": ("attest.agent.cli_agent:agent_command",
              "Boot-time agent: check this node's build is logged and not revoked, then serve "
              "evidence bundles over HTTPS."),
    "publish": ("attest.release.cli_publish:publish_command",
                "Publish a build: digests and measurements -> signed statement -> log -> "
                "tlog-proof."),
    "simulate": ("attest.simulate.cli:simulate_group",
                 "Simulated hardware (attest agent --simulate): print what it measures."),
    "revoke": ("attest.release.cli_publish:revoke_command",
               "Revoke a release (RELEASE: its entry file, or sha256:HEX of its entry or "
               "statement) or a build (--measurement HEX): sign, log, save the proof "
               "(docs/operations.md)."),
    "issuer": ("attest.oblivious.cli:issuer_group",
               "Privacy Pass issuer (token type 2): make its key, serve issuance."),
    "router": ("attest.oblivious.cli:router_command",
               "Untrusted router: node directory, one token per request, forward to the "
               "chosen node."),
    "relay": ("attest.oblivious.cli:relay_command",
              "Oblivious HTTP relay (RFC 9458) in front of one router: strips the client, "
              "rate-limits."),
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@debug_option
def main() -> None:
    """Collect evidence, publish releases and run the node agent."""
