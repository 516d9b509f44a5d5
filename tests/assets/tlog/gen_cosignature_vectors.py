"""Regenerate cosignature_vectors.json: cosignature/v1 lines by tessera's TEST-ONLY witness keys.

Input: tests/vectors/tlog/notes/tessera_test_witness_keys.json (keys Wit1..3, the log key and
a checkpoint body, from transparency-dev/tessera append_lifecycle_test.go). Ed25519 is
deterministic, so the output only changes if our encoding does. Run from the repository root:

    .venv/bin/python tests/assets/tlog/gen_cosignature_vectors.py
"""

from __future__ import annotations

import json
from pathlib import Path

from transparency_log.core.checkpoint import parse_checkpoint
from transparency_log.core.cosignature import CosignatureSigner, cosignature, cosigned_message
from transparency_log.core.note import Signer, append_signatures, sign_note

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "tests/vectors/tlog/notes/tessera_test_witness_keys.json"
OUT = Path(__file__).with_name("cosignature_vectors.json")
TIMESTAMPS = {"Wit1": 1679315147, "Wit2": 1700000000, "Wit3": 0}


def main() -> None:
    src = json.loads(SOURCE.read_text())
    body = src["checkpoint_body"].encode()
    parse_checkpoint(body)
    log_note = sign_note(body, [Signer(src["log_test_only_skey"])])
    cases, sigs = [], []
    for name, keys in src["witnesses"].items():
        signer = CosignatureSigner(keys["test_only_skey"])
        ts = TIMESTAMPS[name]
        sigs.append(cosignature(body, signer, ts))
        cases.append({
            "witness": name,
            "vkey": keys["vkey"],
            "vkey_type04": signer.verifier_key(),
            "cosignature_key_id": signer.key_id.hex(),
            "timestamp": ts,
            "signed_message": cosigned_message(body, ts).decode(),
            "line": sigs[-1].line().decode(),
        })
    cosigned = append_signatures(log_note, sigs)
    OUT.write_text(json.dumps({
        "generated_by": "tests/assets/tlog/gen_cosignature_vectors.py",
        "source": "tests/vectors/tlog/notes/tessera_test_witness_keys.json (TEST-ONLY keys)",
        "checkpoint_body": body.decode(),
        "log_vkey": src["log_vkey"],
        "cases": cases,
        "cosigned_note": cosigned.decode(),
    }, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
