"""The log's side of C2SP tlog-witness: ask one witness to cosign a checkpoint.

:class:`WitnessClient` remembers the size the witness last cosigned (``known_size``). It
sends ``old <known_size>`` with the consistency proof from there; on ``409`` it learns the
witness's size from the ``text/x.tlog.size`` body and retries once (tlog-witness: "If a
client doesn't have information on the latest cosigned checkpoint, it MAY initially make a
request with a old size of zero to obtain it"). The answer's signature lines are verified
with the witness's cosignature key (appended to the checkpoint and opened as a note, as
the spec suggests); lines from other keys are ignored.

Transport failures and unexpected statuses are FetchError (the witness is unreachable or
refuses); a ``422`` is a ConsistencyError: the witness says this log forked from what it
cosigned, which an operator must look at.
"""

from __future__ import annotations

from collections.abc import Callable

import requests

from transparency_log.common.errors import AttestlogError, ConsistencyError, FetchError
from transparency_log.common.http_fetch import network_reason
from transparency_log.core.checkpoint import parse_decimal
from transparency_log.core.cosignature import CosignatureVerifier
from transparency_log.core.note import NoteSignature, open_note
from transparency_log.witness.service import SIZE_CONTENT_TYPE, AddCheckpointRequest

ProofFor = Callable[[int], list[bytes]]
"""``old size -> consistency proof`` from ``old`` to the checkpoint being submitted."""

CHECK = "log.witness.request"


class WitnessClient:
    """One witness: its add-checkpoint URL and cosignature verifier key."""

    def __init__(self, name: str, url: str, verifier: CosignatureVerifier, *,
                 timeout: float = 10.0, session: requests.Session | None = None) -> None:
        self.name = name
        self.url = url.rstrip("/") + "/add-checkpoint" if not url.endswith(
            "/add-checkpoint") else url
        self.verifier = verifier
        self.timeout = timeout
        self.session = session or requests.Session()
        self.known_size = 0

    def _post(self, body: bytes) -> requests.Response:
        try:
            return self.session.post(self.url, data=body, timeout=self.timeout)
        except requests.RequestException as err:
            raise FetchError("log.witness.unreachable", network_reason(err),
                             field=self.name) from None

    def cosign(self, note: bytes, size: int, proof_for: ProofFor) -> list[NoteSignature]:
        """Submit the signed checkpoint ``note`` of tree ``size``; return the witness's
        verified cosignatures (at least one) or raise."""
        for _attempt in range(2):
            old = self.known_size if self.known_size <= size else 0
            proof = proof_for(old) if 0 < old < size else []
            resp = self._post(AddCheckpointRequest(old, tuple(proof), note).to_bytes())
            if resp.status_code == 409 and resp.headers.get("content-type", "").startswith(
                    SIZE_CONTENT_TYPE):
                learned = parse_decimal(resp.text.rstrip("\n"), CHECK, "witness size")
                if learned > size:
                    raise ConsistencyError("log.witness.ahead", "witness cosigned a larger "
                                           "tree than this log has", field=self.name,
                                           got=learned, want=f"<= {size}")
                if learned == self.known_size:
                    raise ConsistencyError("log.witness.conflict", "witness holds another "
                                           "tree of this size", field=self.name, got=learned)
                self.known_size = learned
                continue
            if resp.status_code == 422:
                raise ConsistencyError("log.witness.inconsistent", "witness refused the "
                                       "consistency proof", field=self.name,
                                       got=resp.text.strip()[:200])
            if resp.status_code != 200:
                raise FetchError(CHECK, f"witness answered HTTP {resp.status_code}: "
                                 f"{resp.text.strip()[:200]}", field=self.name)
            try:
                opened = open_note(note + resp.content, [self.verifier])
            except AttestlogError as err:
                raise FetchError(CHECK, f"witness answer does not verify: {err}",
                                 field=self.name) from None
            self.known_size = size
            return list(opened.sigs)
        raise FetchError(CHECK, "witness size kept changing", field=self.name)
