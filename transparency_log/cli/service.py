"""`tlog serve`, `tlog witness keygen|serve`: run the log and a witness over HTTP.

Only this module wires in the wall clock, files and the network for the service modules
(server.py, service.py, witness.py), which take them as parameters.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
import tomllib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from transparency_log.cli.log import (
    META_ORIGIN,
    load_signer,
    log_explorer_config,
    log_signer,
    read_release_keys,
    read_witness_policy,
    record_log_identity,
)
from transparency_log.client.log_client import CheckpointStore, LogClient, monitor, source_for
from transparency_log.common.asgi_serving import bind_listener, make_server
from transparency_log.common.clitools import read_vkey, vkey_option, write_key_pair
from transparency_log.common.errors import FetchError, StartupError, TrustConfigError
from transparency_log.common.service_logging import configure_logging, log_format_option
from transparency_log.common.state_files import HeldLock, try_hold
from transparency_log.core.cosignature import CosignatureSigner, cosign, generate_cosigner_keys
from transparency_log.core.key_types import Verifier
from transparency_log.core.witness_policy import WitnessPolicy, parse_witness_policy
from transparency_log.log.lifecycle import Log, require_writer_lock
from transparency_log.log.storage.base import LogStorage
from transparency_log.serve.explorer import explorer_assets
from transparency_log.serve.server import Limits, Submitters, create_app
from transparency_log.serve.service import LogService
from transparency_log.witness.client import WitnessClient
from transparency_log.witness.service import Witness, WitnessState, create_witness_app

log = logging.getLogger("transparency_log.cli.service")


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"want HOST:PORT, got {listen!r}", param_hint="--listen")
    return host or "127.0.0.1", int(port)


def open_storage(db: str, pg_schema: str = "tlog") -> LogStorage:
    """A SQLite file path, or a PostgreSQL DSN (``postgresql://...``) and schema."""
    if db.startswith(("postgresql://", "postgres://")):
        from transparency_log.log.storage.postgres import PostgresStorage

        return PostgresStorage(db, schema=pg_schema)
    from transparency_log.log.storage.sqlite import SqliteStorage

    if not Path(db).is_file():
        raise TrustConfigError("log.config", "no log database here (run `tlog init`)",
                               field="db", got=db)
    return SqliteStorage(db)


def load_submitters(path: str | None) -> Submitters:
    """The submitters file (TOML): ``[keys] name = "base64 Ed25519 public key"`` and
    ``[tokens] name = "hex SHA-256 of the bearer token"``; unknown keys are errors."""
    if path is None:
        return Submitters()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise TrustConfigError("server.submitters", f"cannot read submitters file: {err}",
                               field="submitters", got=path) from None
    unknown = set(data) - {"keys", "tokens"}
    if unknown:
        raise TrustConfigError("server.submitters", "unknown table in submitters file",
                               field="submitters", got=sorted(unknown), want="keys, tokens")
    keys, tokens = data.get("keys", {}), data.get("tokens", {})
    if not all(isinstance(v, str) for v in [*keys.values(), *tokens.values()]):
        raise TrustConfigError("server.submitters", "values must be strings",
                               field="submitters")
    return Submitters.from_config(keys, tokens)


def load_policy(path: str | None) -> WitnessPolicy | None:
    data = read_witness_policy(path)
    return None if data is None else parse_witness_policy(data)


def witness_clients(policy: WitnessPolicy | None) -> list[WitnessClient]:
    if policy is None:
        return []
    out = []
    for w, verifier in zip(policy.witnesses, policy.witness_verifiers, strict=True):
        if not w.url:
            raise TrustConfigError("log.policy", "a witness the log submits to needs a URL",
                                   field=f"witness {w.name}", want="witness NAME VKEY URL")
        out.append(WitnessClient(w.name, w.url, verifier))
    return out


@click.command("serve")
@click.option("--db", required=True, help="The log's SQLite file (from `tlog init`) or a "
              "postgresql:// DSN.")
@click.option("--pg-schema", default="tlog", show_default=True,
              help="With a PostgreSQL DSN: the schema holding this log.")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="HOST:PORT")
@click.option("--submitters", type=click.Path(dir_okay=False), default=None,
              help="TOML file of submitter keys and token hashes allowed to POST /add.")
@click.option("--witness-policy", type=click.Path(dir_okay=False), default=None,
              help="tlog-policy file: the witnesses (with URLs) and the quorum to publish.")
@click.option("--interval", type=float, default=1.0, show_default=True,
              help="Seconds between checkpoints.")
@click.option("--refresh", type=float, default=60.0, show_default=True,
              help="Seconds after which an unchanged tree is re-signed and re-cosigned.")
@click.option("--max-entry-bytes", type=int, default=65535, show_default=True,
              help="The largest entry POST /add accepts.")
@click.option("--standby", is_flag=True,
              help="Start although another `tlog serve` holds the log's writer lock (several "
                   "writers on one PostgreSQL log): sequence entries and serve reads, and "
                   "publish only after taking the lock when the publisher stops.")
@click.option("--release-key", "release_keys", multiple=True, type=click.Path(dir_okay=False),
              help="Release public key file the explorer page at / checks entry signatures "
                   "with (repeatable).")
@log_format_option
def serve_cmd(db: str, pg_schema: str, listen: str, submitters: str | None,
              witness_policy: str | None, interval: float, refresh: float,
              max_entry_bytes: int, standby: bool, release_keys: tuple[str, ...],
              log_format: str) -> None:
    """Serve the log: tlog-tiles reads, authenticated POST /add, witnessed checkpoints, and
    the log explorer page at / (checking cosignatures against --witness-policy).

    Binds --listen and takes the log's writer lock before it writes anything: a second
    server on a taken address, or on a log whose lock is held (without --standby), stops
    with one line and exit 7, having written nothing."""
    configure_logging(log_format)
    host, port = parse_listen(listen)
    limits = Limits(max_entry_bytes=max_entry_bytes)
    subs = load_submitters(submitters)
    policy = load_policy(witness_policy)
    sock = bind_listener(host, port, check="serve.listen")
    storage: LogStorage | None = None
    try:
        storage = open_storage(db, pg_schema)
        origin = storage.get_meta(META_ORIGIN)
        if origin is None:
            raise TrustConfigError("log.config", "not an initialised log (run `tlog init`)",
                                   field="db", got=db)
        if not standby:
            require_writer_lock(storage)
        elif not storage.try_writer_lock():
            log.info("standby: another process publishes this log's checkpoints")
        explorer = explorer_assets(log_explorer_config(
            Log(storage, origin), read_witness_policy(witness_policy),
            read_release_keys(release_keys)))
        _serve_log(storage, origin, sock, subs, policy, limits, interval, refresh, explorer)
    finally:
        sock.close()
        if storage is not None:
            storage.close()


def _serve_log(storage: LogStorage, origin: str, sock: socket.socket, subs: Submitters,
               policy: WitnessPolicy | None, limits: Limits, interval: float,
               refresh: float, explorer: Mapping[str, tuple[bytes, str]]) -> None:
    the_log = Log(storage, origin)
    signer = log_signer(the_log)
    service = LogService(the_log, signer, signer.verifier_key(),
                         witnesses=witness_clients(policy), policy=policy,
                         now=lambda: datetime.now(UTC), refresh_after=refresh)
    if not subs.keys and not subs.token_sha256:
        log.warning("no --submitters: POST /add refuses every request")
    if policy is None:
        log.warning("no --witness-policy: checkpoints are published unwitnessed "
                    "(development only)")

    @asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = threading.Thread(target=service.run_publisher, args=(stop, interval),
                                  daemon=True, name="publisher")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(10)
            service.close()

    app = create_app(service, submitters=subs, limits=limits, lifespan=lifespan,
                     explorer=explorer)
    host, port = sock.getsockname()[:2]
    log.info("tlog serve: %s on http://%s:%s", origin, host, port)
    make_server(app, host, port).run(sockets=[sock])


@click.command("init-postgres")
@click.option("--db", required=True, help="postgresql:// DSN.")
@click.option("--pg-schema", default="tlog", show_default=True,
              help="The schema that will hold this log (several logs can share a database).")
@click.option("--origin", required=True, help="The log's origin line (e.g. example.com/log).")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
              help="Signer key file (from `tlog keygen`).")
def init_postgres_cmd(db: str, pg_schema: str, origin: str, key_file: str) -> None:
    """Create a log in a PostgreSQL schema (what `tlog init` does for SQLite); prints the
    log's verifier key."""
    if not db.startswith(("postgresql://", "postgres://")):
        raise click.BadParameter("want a postgresql:// DSN", param_hint="--db")
    signer = load_signer(key_file)
    storage = open_storage(db, pg_schema)
    try:
        if storage.get_meta(META_ORIGIN) is not None:
            raise TrustConfigError("log.config", "refusing to initialise an existing log",
                                   field="pg-schema", got=pg_schema)
        record_log_identity(storage, origin, key_file, signer)
    finally:
        storage.close()
    click.echo(signer.verifier_key())


@click.group("witness")
def witness_group() -> None:
    """Run a C2SP tlog-witness."""


@witness_group.command("keygen")
@click.argument("name")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the witness's signer key (mode 0600).")
def witness_keygen_cmd(name: str, out: str) -> None:
    """Make a cosignature/v1 witness key (OUT, and OUT with the suffix .vkey); prints the
    verifier key."""
    skey, vkey = generate_cosigner_keys(name)
    write_key_pair(out, skey, vkey)
    click.echo(vkey)


@witness_group.command("serve")
@click.option("--db", required=True, type=click.Path(dir_okay=False),
              help="The witness's SQLite state (created if missing).")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
              help="The witness's signer key file (from `tlog witness keygen`).")
@click.option("--log", "log_vkeys", multiple=True, required=True, metavar="VKEY|FILE",
              help="Verifier key of a log to witness, or a file holding it (repeatable); its "
                   "name is the origin.")
@click.option("--listen", default="127.0.0.1:8081", show_default=True, help="HOST:PORT")
@log_format_option
def witness_serve_cmd(db: str, key_file: str, log_vkeys: tuple[str, ...], listen: str,
                      log_format: str) -> None:
    """Serve POST /add-checkpoint for the given logs."""
    configure_logging(log_format)
    host, port = parse_listen(listen)
    try:
        signer = CosignatureSigner(Path(key_file).read_text(encoding="utf-8").strip())
    except OSError as err:
        raise TrustConfigError("witness.key", f"cannot read key file: {err}", field="key",
                               got=key_file) from None
    logs: dict[str, list[Verifier]] = {}
    for vkey in log_vkeys:
        v = Verifier(read_vkey(vkey))
        if v.public_key == signer.public_key:
            # A witness that signs with the log's key adds no independent view.
            raise TrustConfigError("witness.key", "the witness key is the log's own key: "
                                   "make one with `tlog witness keygen`", field="--key",
                                   got=key_file)
        logs.setdefault(v.name, []).append(v)
    with bind_listener(host, port, check="witness.listen") as sock:
        # An existing state is locked before it is opened; a new one once it is created.
        held = _hold_witness_state(db) if Path(db).exists() else None
        state = WitnessState(db)
        held = held or _hold_witness_state(db)
        witness = Witness(state, logs, cosign=lambda text, ts: cosign(text, signer, ts),
                          now=lambda: int(time.time()))
        log.info("tlog witness: %s on http://%s:%s", signer.name, host, port)
        make_server(create_witness_app(witness), host, port).run(sockets=[sock])
        held.release()


def _hold_witness_state(db: str) -> HeldLock:
    held = try_hold(db)
    if held is None:
        raise StartupError("witness.state_lock", "another witness process holds this state; "
                           "nothing was written", field="db", got=db)
    return held


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "attestlog" / "tlog-monitor"


@click.command("monitor")
@click.argument("source")
@vkey_option(required=True, help="The log's verifier key.")
@click.option("--origin", default=None,
              help="The log's origin line, when it is not the key's name.")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None,
              help="tlog-policy file: witnesses and quorum the checkpoint must satisfy.")
@click.option("--state", "state_dir", type=click.Path(file_okay=False), default=None,
              help="Where the last verified checkpoint per origin is kept "
                   "(default: $XDG_STATE_HOME/attestlog/tlog-monitor).")
@click.option("--follow", is_flag=True, help="Keep following the log.")
@click.option("--interval", type=float, default=10.0, show_default=True,
              help="Seconds between polls with --follow.")
def monitor_cmd(source: str, vkey: str, origin: str | None, policy_file: str | None,
                state_dir: str | None, follow: bool, interval: float) -> None:
    """Audit a C2SP tlog-tiles log (URL or directory): verify the checkpoint and its
    consistency with the last one seen, download every new entry, recompute every hash
    tile and the root. Exits non-zero naming the failed check on any mismatch."""
    client = LogClient(source_for(source), Verifier(vkey), origin=origin,
                       policy=load_policy(policy_file),
                       store=CheckpointStore(state_dir or default_state_dir()))
    while True:
        bar = None

        def progress(done: int, total: int) -> None:
            nonlocal bar
            if total < PROGRESS_MIN:
                return
            if bar is None:
                bar = click.progressbar(length=total, label="entries", file=sys.stderr)
                bar.__enter__()
            bar.update(done - bar.pos)

        try:
            result = monitor(client, progress=progress)
        except FetchError as err:
            if not follow:
                raise
            # Unreachable is not invalid: keep following; a mismatch still exits.
            click.echo(f"warning: {err}; retrying in {interval:g}s", err=True)
            time.sleep(interval)
            continue
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        cp = result.current
        was = result.previous.size if result.previous else 0
        click.echo(f"{cp.origin} size {cp.size} root {cp.root.hex()} "
                   f"new entries {result.new_entries} (from {was}), "
                   f"{result.checked_tiles} hash tiles checked")
        if not follow:
            return
        time.sleep(interval)


PROGRESS_MIN = 1 << 16

COMMANDS = [serve_cmd, init_postgres_cmd, witness_group, monitor_cmd]
