"""`tlog init|add|checkpoint|prove|publish-tiles`: operate a log on one SQLite file.

The database remembers the log's origin, the path of its signer key file (the key itself
stays in its 0600 file) and the matching verifier key. Only this module reads the clock.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from transparency_log.common.errors import TrustConfigError
from transparency_log.core.note import Signer
from transparency_log.log.lifecycle import Log
from transparency_log.log.publish import publish_tiles
from transparency_log.log.storage.base import LogStorage
from transparency_log.log.storage.sqlite import SqliteStorage
from transparency_log.serve.explorer import explorer_config, write_explorer

META_ORIGIN = "origin"
META_KEY_FILE = "signer_key_file"
META_VKEY = "verifier_key"

_db_option = click.option("--db", "db", required=True, type=click.Path(dir_okay=False),
                          help="The log's SQLite database file.")


def load_signer(path: str | os.PathLike[str]) -> Signer:
    """The note signer in a key file written by `tlog keygen`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise TrustConfigError("log.key", f"cannot read the signer key file: {err}",
                               field="key", got=str(path)) from None
    return Signer(text.strip())


@contextmanager
def open_log(db: str) -> Iterator[Log]:
    """Open an initialised log database (refusing a missing or uninitialised one)."""
    if not Path(db).is_file():
        raise TrustConfigError("log.config", "no log database here (run `tlog init`)",
                               field="db", got=db)
    storage = SqliteStorage(db)
    try:
        origin = storage.get_meta(META_ORIGIN)
        if origin is None:
            raise TrustConfigError("log.config", "database is not an initialised log "
                                   "(run `tlog init`)", field="db", got=db)
        yield Log(storage, origin)
    finally:
        storage.close()


def log_signer(log: Log) -> Signer:
    """The log's signer, checked against the verifier key recorded at `tlog init`."""
    key_file = log.storage.get_meta(META_KEY_FILE)
    if key_file is None:
        raise TrustConfigError("log.config", "no signer key recorded", field=META_KEY_FILE)
    signer = load_signer(key_file)
    want = log.storage.get_meta(META_VKEY)
    if signer.verifier_key() != want:
        raise TrustConfigError("log.key", "signer key file does not match the log's key",
                               field="verifier key", got=signer.verifier_key(), want=want)
    return signer


@click.command("init")
@_db_option
@click.option("--origin", required=True, help="The log's origin line (e.g. example.com/log).")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False),
              help="Signer key file (from `tlog keygen`).")
def init_cmd(db: str, origin: str, key_file: str) -> None:
    """Create a log in a new SQLite database; prints the log's verifier key."""
    signer = load_signer(key_file)
    require_key_for_origin(signer, origin)
    if Path(db).exists():
        raise TrustConfigError("log.config", "refusing to initialise an existing file",
                               field="db", got=db)
    storage = SqliteStorage(db)
    try:
        record_log_identity(storage, origin, key_file, signer)
    finally:
        storage.close()
    click.echo(signer.verifier_key())


def require_key_for_origin(signer: Signer, origin: str) -> None:
    """Refuse a signer key whose name is not the log's origin (before anything is written)."""
    if signer.name != origin:
        raise TrustConfigError("log.config", "the signer key's name is not the origin "
                               "(make a key with `tlog keygen ORIGIN`)", field="--origin",
                               got=origin, want=signer.name)


def record_log_identity(storage: LogStorage, origin: str, key_file: str, signer: Signer) -> None:
    """What `tlog init` (SQLite) and `tlog init-postgres` store: the origin, the absolute path
    of the signer key file (never the key itself) and the verifier key it must match. The
    key's name must be the origin: clients take a log's origin from its key's name."""
    require_key_for_origin(signer, origin)
    storage.set_meta(META_ORIGIN, origin)
    storage.set_meta(META_KEY_FILE, str(Path(key_file).resolve()))
    storage.set_meta(META_VKEY, signer.verifier_key())


@click.command("add")
@_db_option
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def add_cmd(db: str, files: tuple[str, ...]) -> None:
    """Log each FILE's bytes as one entry; prints `INDEX FILE` per file."""
    entries = []
    for name in files:
        with open(name, "rb") as f:
            entries.append(f.read())
    with open_log(db) as log:
        indexes = log.add(entries)
        log.integrate()
    for index, name in zip(indexes, files, strict=True):
        click.echo(f"{index} {name}")


@click.command("checkpoint")
@_db_option
def checkpoint_cmd(db: str) -> None:
    """Integrate, sign and store a checkpoint; prints the signed note."""
    with open_log(db) as log:
        note = log.publish(log_signer(log), datetime.now(UTC))
    click.echo(note.decode(), nl=False)


@click.command("prove")
@_db_option
@click.argument("index", type=click.IntRange(min=0))
def prove_cmd(db: str, index: int) -> None:
    """Print a c2sp.org/tlog-proof@v1 for entry INDEX under the latest checkpoint."""
    with open_log(db) as log:
        proof = log.prove(index)
    click.echo(proof.to_text().decode(), nl=False)


def read_witness_policy(path: str | None) -> bytes | None:
    """The bytes of a tlog-policy file (parsed by the caller), or None without one."""
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise TrustConfigError("log.policy", f"cannot read policy: {err}", field="policy",
                               got=path) from None


def read_release_keys(paths: tuple[str, ...]) -> list[str]:
    """Release public key lines (`attestlog-release-key:v1 ...`) for the explorer's config."""
    out = []
    for path in paths:
        try:
            out.append(Path(path).read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError) as err:
            raise TrustConfigError("log.config", f"cannot read release key: {err}",
                                   field="release-key", got=path) from None
    return out


def log_explorer_config(log: Log, policy: bytes | None, release_keys: list[str]) -> bytes:
    """The explorer's explorer.json for this log (its origin and recorded verifier key)."""
    vkey = log.storage.get_meta(META_VKEY)
    if vkey is None:
        raise TrustConfigError("log.config", "no verifier key recorded", field=META_VKEY)
    return explorer_config(log.origin, vkey, policy, release_keys)


@click.command("publish-tiles")
@_db_option
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--witness-policy", type=click.Path(dir_okay=False), default=None,
              help="tlog-policy file the explorer page checks cosignatures against "
                   "(default: no witnesses required).")
@click.option("--release-key", "release_keys", multiple=True, type=click.Path(dir_okay=False),
              help="Release public key file the explorer page checks entry signatures with "
                   "(repeatable).")
@click.option("--no-explorer", is_flag=True, help="Do not write the explorer page.")
def publish_tiles_cmd(db: str, directory: str, witness_policy: str | None,
                      release_keys: tuple[str, ...], no_explorer: bool) -> None:
    """Write the latest checkpoint with its tiles and entry bundles under DIRECTORY, and
    the log explorer (index.html, explorer.js, explorer.css, explorer.json) beside them."""
    with open_log(db) as log:
        config = None
        if not no_explorer:
            config = log_explorer_config(log, read_witness_policy(witness_policy),
                                         read_release_keys(release_keys))
        stats = publish_tiles(log, directory)
    if config is not None:
        write_explorer(directory, config)
    click.echo(f"published tree size {stats.size}: {stats.written} files written, "
               f"{stats.skipped} unchanged" + ("" if no_explorer else "; explorer index.html"))


COMMANDS = [init_cmd, add_cmd, checkpoint_cmd, prove_cmd, publish_tiles_cmd]
