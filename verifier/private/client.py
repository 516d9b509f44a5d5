"""``PrivateClient``: one private request as Private Cloud Compute sends it (issue 13).

1. GET the node directory through the relay (``/.well-known/attestlog/node-directory``,
   attest/formats/node_directory.py); the router that wrote it is untrusted.
2. For every listed node: a fresh 32-byte nonce from the client's randomness, the node's
   bundle for it (:class:`~verifier.private.fetch.BundleSource`), verified with
   :func:`verifier.pipeline.run_pipeline` under the client's policy, offline unless given a
   ``fetch`` (stapled collateral and caches). A node that is unreachable, refused, or whose
   evidence binds no HPKE key configuration (``binding.ohttp_keys``) is not a candidate
   (:attr:`Outcome.refused` says why).
3. Choose (verifier/private/choice.py): weighted by the attested GPU count only, with the
   client's randomness; ``private.min_nodes`` refuses to send when too few verified.
4. Binary HTTP (RFC 9292, known-length) request, zero-padded (§3.8) to the smallest of
   :data:`BUCKETS`, encapsulated in OHTTP (RFC 9458 §4.3) to the chosen node's attested key
   configuration: a fresh HPKE encapsulation each request.
5. One Privacy Pass token for the directory's challenge (RFC 9577 §2.2,
   ``Authorization: PrivateToken``), spent by the router.
6. ``POST <relay>/nodes/<id>`` (``message/ohttp-req``) on a fresh connection, no cookie, no
   User-Agent; a 200 ``message/ohttp-res`` is decapsulated (RFC 9458 §4.4), anything else
   is ``private.send``. A node that cannot open the request (not the key the evidence
   bound) answers nothing the client can open.

Padding buckets (:data:`BUCKETS`, bytes of the Binary HTTP request): 1 KiB, 4 KiB, 16 KiB,
64 KiB, 256 KiB, 1 MiB, 4 MiB, 16 MiB; an observer learns only which bucket. A larger
request is refused (``bhttp.format``). Responses are padded by the node.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from attest.formats.bhttp import (
    BinaryRequest,
    BinaryResponse,
    decode_response,
    encode_request,
    pad_to_bucket,
)
from attest.formats.node_directory import DIRECTORY_PATH, NodeDirectory, NodeEntry, node_path
from attest.formats.ohttp import MEDIA_TYPE_REQUEST, MEDIA_TYPE_RESPONSE, KeyConfig
from attest.formats.privacy_pass_http import authorization
from attest.private.ohttp import encapsulate_request
from transparency_log.common.errors import AttestlogError, FetchError
from verifier.ohttp_keys import attested_key_config
from verifier.pipeline import Result, run_pipeline
from verifier.policy import Policy
from verifier.private.choice import Rng, Weighted, choose
from verifier.private.fetch import (
    BundleSource,
    KeyConfigSource,
    TokenSource,
    get_ok,
    http,
    http_bundle_source,
)

__all__ = ["BUCKETS", "CHECK_SEND", "Candidate", "Outcome", "PrivateClient", "attested_gpus"]

CHECK_SEND = "private.send"
NONCE_SIZE = 32
BUCKETS: tuple[int, ...] = tuple(1 << n for n in range(10, 25, 2))  # 1 KiB .. 16 MiB, x4


def attested_gpus(result: Result) -> int:
    """The GPUs an accepted result attests: GPU evidence items that verified and are bound
    (distinct devices: ``device.distinct``). The directory's ``gpus`` never counts."""
    return len(result.gpus) if result.accepted else 0


@dataclass(frozen=True)
class Candidate:
    """A node that verified: its directory entry, attested GPUs and attested key config."""

    entry: NodeEntry
    gpus: int
    key_config: KeyConfig
    result: Result = field(repr=False, compare=False)


@dataclass
class Outcome:
    """One private request: the decoded answer, the node chosen, and what was refused."""

    response: BinaryResponse
    node: str
    candidates: list[Candidate]
    refused: dict[str, AttestlogError]


class PrivateClient:
    """Send requests privately through ``relay`` (module docstring).

    ``key_configs``: how to read an accepted result's HPKE key configuration (default: the
    one its evidence binds, :func:`verifier.ohttp_keys.attested_key_config`; a node whose
    evidence binds none is refused with ``binding.ohttp_keys``); ``tokens``: one Privacy
    Pass token per challenge;
    ``rng``: the client's randomness (nonces, the choice, HPKE); ``clock``: the verification
    time; ``pipeline``: more :func:`run_pipeline` arguments (trust, caches, revocations,
    checkpoint_store, fetch; offline by default)."""

    def __init__(self, relay: str, policy: Policy, *, tokens: TokenSource,
                 key_configs: KeyConfigSource = attested_key_config,
                 bundles: BundleSource | None = None, rng: Rng = os.urandom,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 timeout: float = 60.0, **pipeline: Any) -> None:
        self.relay = relay.rstrip("/")
        self.policy = policy
        self._tokens = tokens
        self._key_configs = key_configs
        self._bundles = bundles or http_bundle_source()
        self._rng = rng
        self._clock = clock
        self._timeout = timeout
        self._pipeline = pipeline

    def directory(self) -> NodeDirectory:
        """The router's directory, fetched through the relay (``router.directory``)."""
        return NodeDirectory.decode(get_ok(self.relay + DIRECTORY_PATH, timeout=self._timeout))

    def verify(self, directory: NodeDirectory) -> tuple[list[Candidate], dict[str, AttestlogError]]:
        """Verify every listed node (each with a fresh nonce): the candidates, and why each
        other node was refused."""
        at = self._clock()
        candidates: list[Candidate] = []
        refused: dict[str, AttestlogError] = {}
        for entry in directory.nodes:
            try:
                nonce = self._rng(NONCE_SIZE)
                result = run_pipeline(self._bundles(entry, nonce), self.policy, at=at,
                                      expected_nonce=nonce, **self._pipeline)
                if not result.accepted:
                    assert result.error is not None
                    raise result.error
                candidates.append(Candidate(entry, attested_gpus(result),
                                            self._key_configs(result), result))
            except AttestlogError as err:
                refused[entry.id] = err
        return candidates, refused

    def choose(self, candidates: list[Candidate]) -> Candidate:
        return choose([Weighted(c, c.gpus) for c in candidates], self.policy.private.min_nodes,
                      self._rng)

    def send(self, candidate: Candidate, request: BinaryRequest, challenge: bytes
             ) -> BinaryResponse:
        """Encapsulate ``request`` to ``candidate``'s key, redeem one token, POST through the
        relay, decapsulate the answer."""
        message = pad_to_bucket(encode_request(request), BUCKETS)
        enc_request, opener = encapsulate_request(candidate.key_config, message, rng=self._rng)
        url = self.relay + node_path(candidate.entry.id)
        resp = http("POST", url, body=enc_request, timeout=self._timeout, check=CHECK_SEND,
                    headers={"Content-Type": MEDIA_TYPE_REQUEST,
                             "Authorization": authorization(self._tokens(challenge))})
        media = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        if resp.status_code != 200 or media != MEDIA_TYPE_RESPONSE:
            line = resp.content[:200].decode("utf-8", "replace").splitlines()
            raise FetchError(CHECK_SEND, f"HTTP {resp.status_code}"
                             + (f": {line[0]}" if line else ""), field=url,
                             got=f"{resp.status_code} {media}",
                             want=f"200 {MEDIA_TYPE_RESPONSE}")
        return decode_response(opener.decapsulate(resp.content))

    def request(self, request: BinaryRequest) -> Outcome:
        """Steps 1-6 of the module docstring for one request."""
        directory = self.directory()
        candidates, refused = self.verify(directory)
        chosen = self.choose(candidates)
        response = self.send(chosen, request, directory.token_challenge)
        return Outcome(response, chosen.entry.id, candidates, refused)
