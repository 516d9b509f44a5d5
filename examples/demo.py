"""The main job end to end on the embedded defaults (grows as issues land).

Now: a Merkle log in memory, entries added, an inclusion proof produced and verified, a
tampered proof refused.
"""

from __future__ import annotations

import sys

from transparency_log import merkle
from transparency_log.errors import VerificationError


def main() -> int:
    tree = merkle.MemoryTree()
    entries = [f"release {i}".encode() for i in range(10)]
    for e in entries:
        index = tree.append(e)
        print(f"added entry {index}: {e.decode()}")
    root = tree.root()
    print(f"tree size {tree.size}, root {root.hex()}")
    proof = tree.inclusion_proof(3)
    merkle.verify_inclusion(3, tree.size, merkle.leaf_hash(entries[3]), proof, root)
    print(f"inclusion proof for entry 3 ({len(proof)} hashes): verified")
    tampered = [bytes(32), *proof[1:]]
    try:
        merkle.verify_inclusion(3, tree.size, merkle.leaf_hash(entries[3]), tampered, root)
    except VerificationError as err:
        print(f"tampered proof refused: {err}")
    else:
        print("BUG: tampered proof accepted")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
