"""The verifying client and the monitor: checkpoints, proofs from tiles, a store that only
moves forward, split views caught with evidence, every tile and the root recomputed."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from transparency_log.cli.main import main
from transparency_log.client.log_client import (
    CheckpointStore,
    LogClient,
    directory_source,
    monitor,
)
from transparency_log.common.errors import (
    ConsistencyError,
    FetchError,
    FormatError,
    ProofError,
    VerificationError,
)
from transparency_log.core import merkle
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import Signer, generate_keys, sign_note
from transparency_log.log.lifecycle import Log
from transparency_log.log.publish import publish_tiles
from transparency_log.log.storage.sqlite import SqliteStorage

ORIGIN = "example.com/client-test"
SKEY, VKEY = generate_keys(ORIGIN, seed=bytes([3]) * 32)
NOW = datetime(2026, 11, 23, tzinfo=UTC)


class PublishedLog:
    """A SQLite log whose tile tree is published to a directory after each growth."""

    def __init__(self, tmp: Path, name: str, tag: bytes = b"entry") -> None:
        self.storage = SqliteStorage(tmp / f"{name}.db")
        self.log = Log(self.storage, ORIGIN)
        self.dir = tmp / name
        self.tag = tag
        self.size = 0

    def grow(self, n: int) -> None:
        self.log.add([self.tag + b" %d" % i for i in range(self.size, self.size + n)])
        self.size += n
        self.log.publish(Signer(SKEY), NOW)
        publish_tiles(self.log, self.dir)

    def entry(self, i: int) -> bytes:
        return self.tag + b" %d" % i


@pytest.fixture()
def published(tmp_path) -> PublishedLog:
    p = PublishedLog(tmp_path, "log")
    p.grow(300)
    return p


def client_for(directory: Path, state: Path | None = None) -> LogClient:
    return LogClient(directory_source(directory), Verifier(VKEY),
                     store=CheckpointStore(state) if state else None)


def test_checkpoint_and_every_inclusion_proof_from_tiles(published) -> None:
    client = client_for(published.dir)
    vc = client.checkpoint()
    assert vc.checkpoint.size == 300
    for i in range(0, 300, 7):
        client.prove(published.entry(i), i, vc)
    with pytest.raises(ProofError):
        client.prove(b"not logged", 5, vc)


def test_checkpoint_of_another_key_is_refused(published) -> None:
    _, other = generate_keys(ORIGIN, seed=bytes([4]) * 32)
    with pytest.raises(VerificationError):
        LogClient(directory_source(published.dir), Verifier(other)).checkpoint()


def test_tampered_tile_is_caught_by_the_proof(published) -> None:
    tile = published.dir / "tile/0/000"
    data = bytearray(tile.read_bytes())
    data[40] ^= 1
    tile.write_bytes(bytes(data))
    client = client_for(published.dir)
    vc = client.checkpoint()
    with pytest.raises(ProofError):
        for i in range(8):
            client.prove(published.entry(i), i, vc)


def test_directory_source_refuses_traversal(published) -> None:
    fetch = directory_source(published.dir)
    for path in ("../log.db", "tile/../../log.db", "/etc/passwd"):
        with pytest.raises((FormatError, FileNotFoundError)):
            fetch(path)
    with pytest.raises(FileNotFoundError):
        fetch("tile/0/x001/000")


def test_missing_checkpoint_is_fetch_error(tmp_path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(FetchError):
        client_for(tmp_path / "empty").checkpoint()


def test_store_moves_forward_with_consistent_checkpoints(published, tmp_path) -> None:
    state = tmp_path / "state"
    client = client_for(published.dir, state)
    old, new = client.update()
    assert old is None and new.checkpoint.size == 300
    published.grow(500)
    old, new = client.update()
    assert (old.checkpoint.size, new.checkpoint.size) == (300, 800)
    assert client.store.load(ORIGIN) == new.note


def test_stale_checkpoint_does_not_move_the_store_back(published, tmp_path) -> None:
    stale = (published.dir / "checkpoint").read_bytes()
    published.grow(10)
    client = client_for(published.dir, tmp_path / "state")
    client.update()
    (published.dir / "checkpoint").write_bytes(stale)  # a cache serving an old one
    old, new = client.update()
    assert new.checkpoint.size == 300 and old.checkpoint.size == 310
    assert b"\n310\n" in client.store.load(ORIGIN)


def test_split_view_is_caught_with_evidence(published, tmp_path) -> None:
    """The log signs a fork (same key, other entries): a client that saw the honest
    checkpoint refuses the forked one and keeps both checkpoints and the proof."""
    state = tmp_path / "state"
    client = client_for(published.dir, state)
    client.update()
    fork = PublishedLog(tmp_path, "fork", tag=b"evil")
    fork.grow(400)
    forked = client_for(fork.dir, state)
    with pytest.raises(ConsistencyError) as info:
        forked.update()
    assert info.value.old and info.value.new and info.value.proof
    (evidence,) = forked.store.evidence(ORIGIN)
    assert info.value.got == str(evidence)
    assert (evidence / "last-seen.checkpoint").read_bytes() == (
        published.dir / "checkpoint").read_bytes()
    assert (evidence / "presented.checkpoint").read_bytes() == (
        fork.dir / "checkpoint").read_bytes()
    proof_lines = (evidence / "consistency-proof").read_text().splitlines()
    assert proof_lines[:2] == ["old_size 300", "new_size 400"] and len(proof_lines) > 2
    assert b"\n300\n" in forked.store.load(ORIGIN)  # not moved


def test_same_size_fork_is_caught(published, tmp_path) -> None:
    state = tmp_path / "state"
    client_for(published.dir, state).update()
    fork = PublishedLog(tmp_path, "fork", tag=b"evil")
    fork.grow(300)
    with pytest.raises(ConsistencyError):
        client_for(fork.dir, state).update()


def test_monitor_recomputes_everything_then_follows(published, tmp_path) -> None:
    client = client_for(published.dir, tmp_path / "state")
    seen: list[tuple[int, int]] = []
    r = monitor(client, progress=lambda d, t: seen.append((d, t)))
    assert (r.previous, r.current.size, r.new_entries) == (None, 300, 300)
    assert r.checked_tiles >= 2 and seen[-1] == (300, 300)
    published.grow(600)
    r = monitor(client)
    assert (r.previous.size, r.current.size, r.new_entries) == (300, 900, 600)
    r = monitor(client)
    assert r.new_entries == 0


def test_monitor_catches_a_bundle_that_does_not_match(published, tmp_path) -> None:
    bundle = published.dir / "tile/entries/000"
    data = bytearray(bundle.read_bytes())
    data[-1] ^= 1
    bundle.write_bytes(bytes(data))
    with pytest.raises(ProofError) as info:
        monitor(client_for(published.dir, tmp_path / "state"))
    assert info.value.check == "log.tiles"


def test_monitor_catches_a_hash_tile_that_does_not_match(published, tmp_path) -> None:
    tile = published.dir / "tile/0/001.p/44"
    data = bytearray(tile.read_bytes())
    data[0] ^= 1
    tile.write_bytes(bytes(data))
    with pytest.raises(ProofError) as info:
        monitor(client_for(published.dir, tmp_path / "state"))
    assert info.value.check == "log.tiles"


def test_monitor_catches_a_level_one_tile_that_does_not_match(published, tmp_path) -> None:
    tile = published.dir / "tile/1/000.p/1"
    tile.write_bytes(bytes(32))
    with pytest.raises(ProofError) as info:
        monitor(client_for(published.dir, tmp_path / "state"))
    assert info.value.check == "log.tiles" and info.value.field == "tile/1/000.p/1"


def test_monitor_from_an_unaligned_size_across_tile_levels(tmp_path) -> None:
    p = PublishedLog(tmp_path, "log")
    p.grow(257)
    client = client_for(p.dir, tmp_path / "state")
    assert monitor(client).current.size == 257
    for n in (255, 1, 300):
        p.grow(n)
        r = monitor(client)
        assert r.new_entries == n and r.current.size == p.size


def test_monitor_cli(published, tmp_path) -> None:
    runner = CliRunner()
    state = str(tmp_path / "state")
    r = runner.invoke(main, ["monitor", str(published.dir), "--vkey", VKEY, "--state", state])
    assert r.exit_code == 0, r.output
    assert f"{ORIGIN} size 300" in r.output and "new entries 300" in r.output
    fork = PublishedLog(tmp_path, "fork", tag=b"evil")
    fork.grow(350)
    r = runner.invoke(main, ["monitor", str(fork.dir), "--vkey", VKEY, "--state", state])
    assert r.exit_code == 2
    assert "log.consistency" in r.output and "Traceback" not in r.output


def write_foreign_tree(root: Path, entries: list[bytes], skey: str, *,
                       delete_partials: bool) -> None:
    """A C2SP tlog-tiles tree laid out by hand from the spec (not by our publisher), as
    another implementation would: a checkpoint with an extension line and a cosignature from
    a witness we do not know, and, like Tessera, partial tiles removed once full ones exist."""
    from transparency_log.core.note import NoteSignature, append_signatures

    tree = merkle.MemoryTree(entries)
    n = len(entries)

    def put(path: str, data: bytes) -> None:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)

    def index_path(i: int) -> str:  # spec: 3-digit groups, all but the last with "x"
        groups = []
        while True:
            groups.append(f"{i % 1000:03d}")
            i //= 1000
            if not i:
                break
        return "/".join([*(f"x{g}" for g in reversed(groups[1:])), groups[0]])

    level = 0
    while (n >> (8 * level)) > 0:
        hashes = tree.levels[8 * level] if 8 * level < len(tree.levels) else []
        width_total = n >> (8 * level)
        for t in range(0, width_total, 256):
            chunk = hashes[t:t + 256]
            suffix = "" if len(chunk) == 256 else f".p/{len(chunk)}"
            put(f"tile/{level}/{index_path(t // 256)}{suffix}", b"".join(chunk))
        level += 1
    for t in range(0, n, 256):
        chunk = entries[t:t + 256]
        suffix = "" if len(chunk) == 256 else f".p/{len(chunk)}"
        put(f"tile/entries/{index_path(t // 256)}{suffix}",
            b"".join(len(e).to_bytes(2, "big") + e for e in chunk))
    if delete_partials:
        for p in list(root.rglob("*.p")):
            full = p.with_suffix("")
            if full.exists():
                for f in p.iterdir():
                    f.unlink()
                p.rmdir()
    text = f"{ORIGIN}\n{n}\n{base64.b64encode(tree.root()).decode()}\nextension line\n"
    note = sign_note(text.encode(), [Signer(skey)])
    note = append_signatures(note, [NoteSignature("someone.else/witness", b"\x01\x02\x03\x04",
                                                  bytes(72))])
    put("checkpoint", note)


def test_client_and_monitor_on_a_foreign_tile_tree(tmp_path) -> None:
    entries = [b"foreign %d" % i for i in range(600)]
    root = tmp_path / "foreign"
    write_foreign_tree(root, entries, SKEY, delete_partials=False)
    client = client_for(root, tmp_path / "state")
    r = monitor(client)
    assert (r.current.size, r.current.extensions) == (600, ("extension line",))
    vc = client.checkpoint()
    for i in (0, 255, 256, 599):
        client.prove(entries[i], i, vc)
    entries += [b"foreign %d" % i for i in range(600, 800)]
    write_foreign_tree(root, entries, SKEY, delete_partials=True)
    assert not (root / "tile/0/002.p").exists()  # filled up and removed, as Tessera does
    r = monitor(client)
    assert (r.previous.size, r.current.size, r.new_entries) == (600, 800, 200)
def test_monitor_from_start_hands_every_entry_over_in_order(published, tmp_path) -> None:
    client = client_for(published.dir, tmp_path / "state")
    monitor(client)
    published.grow(10)
    seen: list[tuple[int, list[bytes]]] = []

    def collect(first: int, batch: list[bytes]) -> None:
        seen.append((first, batch))

    r = monitor(client, on_entries=collect)
    assert r.new_entries == 10 and r.verified is not None and r.verified.checkpoint == r.current
    assert seen[0][0] == 256 and seen[-1][0] + len(seen[-1][1]) == 310  # whole bundles
    seen.clear()
    r = monitor(client, from_start=True, on_entries=collect)
    assert r.new_entries == 310 and r.previous.size == 310
    assert [e for _, batch in seen for e in batch] == [published.entry(i) for i in range(310)]


def test_monitor_from_start_recomputes_a_stale_view(published, tmp_path) -> None:
    stale = (published.dir / "checkpoint").read_bytes()
    published.grow(10)
    client = client_for(published.dir, tmp_path / "state")
    monitor(client)
    (published.dir / "checkpoint").write_bytes(stale)
    assert monitor(client).new_entries == 0  # stays at the stored size, reads nothing
    r = monitor(client, from_start=True)
    assert (r.current.size, r.new_entries, r.previous.size) == (300, 300, 310)
    assert b"\n310\n" in client.store.load(ORIGIN)  # never moved back


# --- the proof tile cache (issue 15: fewest reads) ----------------------------------------------


class CountingSource:
    """A directory source that records the paths it served."""

    def __init__(self, directory: Path) -> None:
        self.inner = directory_source(directory)
        self.paths: list[str] = []

    def __call__(self, path: str) -> bytes:
        self.paths.append(path)
        return self.inner(path)


def test_proof_tiles_reused_but_every_proof_verified(published, tmp_path) -> None:
    """A second proof reads fewer tiles (the border and top are cached), and a cached tile
    never vouches for anything: an entry not at the index, and a checkpoint of another tree
    (a fork with the same size, whose root the cached tiles do not lead to), are refused."""
    source = CountingSource(published.dir)
    client = LogClient(source, Verifier(VKEY))
    vc = client.checkpoint()
    client.prove(published.entry(3), 3, vc)
    first = len(source.paths)
    client.prove(published.entry(4), 4, vc)
    assert len(source.paths) == first  # same tiles: nothing read again
    client.prove(published.entry(299), 299, vc)
    assert 0 < len(source.paths) - first < first - 1  # only the tiles not yet read
    with pytest.raises(ProofError) as err:
        client.prove(b"not logged", 4, vc)
    assert err.value.check == "log.inclusion"
    fork = PublishedLog(tmp_path, "fork", tag=b"evil")
    fork.grow(300)
    forked = client.verify_note((fork.dir / "checkpoint").read_bytes())
    client.prove(published.entry(5), 5, vc)  # warm again
    with pytest.raises(ProofError) as err:
        client.prove(published.entry(5), 5, forked)
    assert err.value.check == "log.inclusion"


def test_failed_proof_empties_the_tile_cache(published) -> None:
    """A tile that was bad when read is not kept: once the log serves the right one, the
    next proof reads it again and passes (and while it is bad, every proof fails)."""
    tile = published.dir / "tile/0/000"
    good = tile.read_bytes()
    data = bytearray(good)
    data[40] ^= 1
    tile.write_bytes(bytes(data))
    source = CountingSource(published.dir)
    client = LogClient(source, Verifier(VKEY))
    vc = client.checkpoint()
    with pytest.raises(ProofError):
        client.prove(published.entry(0), 0, vc)
    with pytest.raises(ProofError):
        client.prove(published.entry(0), 0, vc)
    tile.write_bytes(good)
    source.paths.clear()
    client.prove(published.entry(0), 0, vc)
    assert "tile/0/000" in source.paths
