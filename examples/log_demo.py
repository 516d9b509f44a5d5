"""The transparency log on its own, in-process (`examples/demo.py` tells the full story).

A transparency log on SQLite in a temporary directory, its Ed25519 note key generated,
release entries added (durably sequenced, integrated into C2SP tiles), a checkpoint signed,
an offline c2sp.org/tlog-proof produced and verified, a tampered proof refused, and the
static tile tree published and read back the way a remote client would.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from transparency_log.common.errors import VerificationError
from transparency_log.core import tile_reader
from transparency_log.core.checkpoint import open_checkpoint
from transparency_log.core.key_types import Verifier
from transparency_log.core.note import Signer, generate_keys
from transparency_log.core.tlog_proof import TlogProof, parse_tlog_proof, verify_tlog_proof
from transparency_log.log.lifecycle import Log
from transparency_log.log.publish import publish_tiles
from transparency_log.log.storage.sqlite import SqliteStorage

ORIGIN = "demo.attestlog.example/releases"


def step(title: str) -> None:
    print(f"\n== {title}")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="attestlog-demo-") as tmp:
        work = Path(tmp)
        step("log key")
        skey, vkey = generate_keys(ORIGIN)
        print(f"verifier key: {vkey}")

        step("log on SQLite")
        storage = SqliteStorage(work / "log.db")
        try:
            log = Log(storage, ORIGIN)
            releases = [f'{{"release": "inference-server", "version": "1.{i}.0"}}'.encode()
                        for i in range(300)]
            indexes = log.add(releases)
            print(f"sequenced {len(indexes)} release entries durably (indexes "
                  f"{indexes[0]}..{indexes[-1]})")
            again = log.add([releases[7]])
            print(f"adding release 7 again returns its existing index: {again[0]}")
            state = log.integrate()
            print(f"integrated into tiles: tree size {state.size}, root {state.root.hex()}")

            step("checkpoint")
            note = log.publish(Signer(skey), datetime.now(UTC))
            print(note.decode().rstrip())

            step("offline inclusion proof (c2sp.org/tlog-proof@v1) for entry 42")
            proof_text = log.prove(42).to_text()
            (work / "entry42.tlog-proof").write_bytes(proof_text)
            proof = parse_tlog_proof(proof_text)
            cp = verify_tlog_proof(releases[42], proof, Verifier(vkey))
            print(f"{len(proof.hashes)} path hashes; verified against checkpoint of size "
                  f"{cp.size}: OK")

            step("tampered proofs")
            flipped = bytearray(proof.hashes[0])
            flipped[0] ^= 1
            forged = [
                ("one bit of the path flipped",
                 TlogProof(proof.index, (bytes(flipped), *proof.hashes[1:]),
                           proof.checkpoint_note), releases[42]),
                ("another entry claimed at index 42", proof, b'{"release": "backdoored"}'),
                ("the index moved to 43", TlogProof(43, proof.hashes, proof.checkpoint_note),
                 releases[42]),
            ]
            for what, bad, entry in forged:
                try:
                    verify_tlog_proof(entry, bad, Verifier(vkey))
                except VerificationError as err:
                    print(f"{what}: refused ({err})")
                else:
                    print(f"BUG: {what}: accepted")
                    return 1

            step("static tile tree (C2SP tlog-tiles)")
            public = work / "public"
            stats = publish_tiles(log, public)
            for path in sorted(p.relative_to(public) for p in public.rglob("*") if p.is_file()):
                print(f"  {path}")
            print(f"{stats.written} files for tree size {stats.size}")
            served_cp, _ = open_checkpoint((public / "checkpoint").read_bytes(), Verifier(vkey))
            remote = tile_reader.TileReader(lambda p: (public / p).read_bytes(), served_cp.size)
            same = remote.inclusion_proof(42) == list(proof.hashes)
            print(f"a client reading only the static files gets the same proof: {same}")
            if not same or remote.root() != served_cp.root:
                return 1
        finally:
            storage.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
