"""`tlog`: the transparency log's command line.

Subcommands are imported only when they run (clitools.LazyGroup): `tlog add` does not import
the HTTP server, `tlog --help` imports none of them (issue 12, "Start-up").
"""

from __future__ import annotations

import click

from transparency_log.common.clitools import LazyGroup, debug_option

# name -> ("module:attribute", short help shown by `tlog --help` without importing it)
COMMANDS = {
    "init": ("transparency_log.cli.log:init_cmd",
             "Create a log in a new SQLite database; prints the log's verifier key."),
    "add": ("transparency_log.cli.log:add_cmd",
            "Log each FILE's bytes as one entry; prints `INDEX FILE` per file."),
    "checkpoint": ("transparency_log.cli.log:checkpoint_cmd",
                   "Integrate, sign and store a checkpoint; prints the signed note."),
    "prove": ("transparency_log.cli.log:prove_cmd",
              "Print a c2sp.org/tlog-proof@v1 for entry INDEX under the latest checkpoint."),
    "publish-tiles": ("transparency_log.cli.log:publish_tiles_cmd",
                      "Write the latest checkpoint with its tiles and entry bundles under "
                      "DIRECTORY, and the log explorer (index.html, explorer.js, explorer.css, "
                      "explorer.json) beside them."),
    "keygen": ("transparency_log.cli.keys:keygen",
               "Generate an Ed25519 key pair named NAME: the signer key in OUT, the verifier key "
               "in OUT with the suffix .vkey (log.key -> log.vkey) and on stdout."),
    "verify-proof": ("transparency_log.cli.keys:verify_proof",
                     "Verify offline that ENTRY_FILE is in the log, by a c2sp.org/tlog-proof@v1 "
                     "PROOF_FILE."),
    "serve": ("transparency_log.cli.service:serve_cmd",
              "Serve the log: tlog-tiles reads, authenticated POST /add, witnessed checkpoints, "
              "and the log explorer page at / (checking cosignatures against "
              "--witness-policy)."),
    "init-postgres": ("transparency_log.cli.service:init_postgres_cmd",
                      "Create a log in a PostgreSQL schema (what `tlog init` does for SQLite); "
                      "prints the log's verifier key."),
    "witness": ("transparency_log.cli.service:witness_group", "Run a C2SP tlog-witness."),
    "monitor": ("transparency_log.cli.service:monitor_cmd",
                "Audit a C2SP tlog-tiles log (URL or directory): verify the checkpoint and its "
                "consistency with the last one seen, download every new entry, recompute every "
                "hash tile and the root."),
}


@click.group(cls=LazyGroup, lazy_commands=COMMANDS)
@debug_option
def main() -> None:
    """Operate an RFC 6962 / C2SP transparency log."""
