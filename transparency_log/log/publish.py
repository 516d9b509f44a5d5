"""Write a log's C2SP tlog-tiles read API as static files (servable by any file server or CDN).

Layout under the output directory (https://c2sp.org/tlog-tiles)::

    checkpoint                      the latest signed checkpoint (written last)
    tile/<L>/<N>[.p/<W>]            hash tiles for the checkpoint's tree size
    tile/entries/<N>[.p/<W>]        entry bundles for the checkpoint's tree size

The tiles match the *checkpoint's* size (not a newer integrated size), so everything the
checkpoint commits to is in place before the checkpoint is replaced. Every file is written
to a temporary name and renamed, so a reader never sees half a file. Full tiles never change
and are skipped when present; partial tiles of earlier sizes are left in place (clients of
an older checkpoint may still ask for them; C2SP lets a log delete them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from transparency_log.common.errors import FormatError
from transparency_log.core import tiles
from transparency_log.log.lifecycle import Log


@dataclass(frozen=True)
class PublishStats:
    """What :func:`publish_tiles` did."""

    size: int
    written: int
    skipped: int


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary name and a rename (mode from the umask, so
    a web server can read it), fsynced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def publish_tiles(log: Log, directory: str | os.PathLike[str]) -> PublishStats:
    """Write the checkpoint, hash tiles and entry bundles of ``log`` under ``directory``."""
    latest = log.storage.latest_checkpoint()
    if latest is None:
        raise FormatError("log.publish", "the log has no signed checkpoint yet",
                          field="checkpoint", want="run `tlog checkpoint` first")
    size, note = latest
    out = Path(directory)
    written = skipped = 0
    reader = log.reader(size)
    for tile in [*tiles.tiles_for_size(size), *tiles.bundles_for_size(size)]:
        path = out / tile.path
        if tile.width == tiles.TILE_WIDTH and path.exists():
            skipped += 1
            continue
        if tile.level == tiles.ENTRIES:
            data = log.entry_bundle(tile.index, tile.width)
        else:
            data = reader.fetch(tile.path)
        write_atomic(path, data)
        written += 1
    write_atomic(out / "checkpoint", note)
    return PublishStats(size, written + 1, skipped)
