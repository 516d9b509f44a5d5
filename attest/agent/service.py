"""The running node agent: boot-time self-check, bundle making and the HTTP endpoint.

Boot (:func:`boot_agent`) — any failure means the agent does not start (the CLI prints one
line naming the check and exits non-zero, so the systemd unit fails):

1. collect a probe bundle's evidence for a random nonce: the CPU report/quote and every GPU
   report (FetchError when evidence cannot be collected; ``gpu.collect.cc_mode`` when the
   GPUs are not in CC mode);
2. refuse GPUs whose CC mode is anything but ``on`` (``agent.gpu.cc_mode``: DEVTOOLS mode
   is debuggable);
3. read the launch identity from the CPU evidence and find this build in the release log
   (:class:`attest.agent.release_lookup.ReleaseTracker`): ``agent.release.not_logged`` /
   ``agent.release.revoked``.

Serving (:func:`create_agent_app`, docs/formats.md "Node agent HTTP API"):

- ``POST /.well-known/attestlog/bundle``, body = the client's nonce (32..64 raw bytes,
  ``application/octet-stream``): a fresh bundle (``application/cbor``). Fresh reports are
  rate-limited by a token bucket (429 with ``Retry-After``).
- ``GET /.well-known/attestlog/bundle``: the cached bundle, whose nonce is a timestamp
  (:mod:`attest.agent.nonce`), remade when older than ``cached_max_age``.
- ``GET /.well-known/attestlog/simulated-trust``: only with ``--simulate``, the simulated
  roots (attest.simulate.platform.SimulatedTrust JSON).
- ``GET /.well-known/ohttp-gateway`` (RFC 9540 §3): the node's HPKE key configuration
  (``application/ohttp-keys``), the one every bundle binds (``ohttp_keys``);
  ``POST /.well-known/ohttp-gateway`` with a ``message/ohttp-req`` body: the OHTTP gateway
  (:mod:`attest.agent.gateway`), answered ``message/ohttp-res``. A request not encapsulated
  to this node's key is a one-line 400 naming the check; nothing of a request is logged.
- Evidence that cannot be made (an AttestlogError) is a 503 naming the check; a bug of ours
  (any other exception) a one-line ``500 internal error`` and one line in the log, never a
  bundle.

The tlog-proof is refreshed every ``proof_refresh`` seconds (:meth:`NodeAgent.refresh`).
The agent always staples the newest release that lists its measurement and that clients
accept (not revoked by statement or by measurement, the rule of
:mod:`attest.release.revocation_index`). Revocations (docs/operations.md, "Node agent"):

- its release is revoked and another unrevoked release lists the same measurement: the agent
  switches to that one and logs it at ERROR level ("SWITCHED"), naming both releases and
  saying that the build stays served until it is revoked by measurement;
- no unrevoked release lists its measurement: ``on_revocation = "stop"`` (the default)
  answers 503 to every bundle request and logs it at ERROR level; ``"warn"`` logs the same
  and keeps serving its last (revoked) release, which clients refuse (``release.revoked``);
- a stopped agent that later finds an unrevoked release listing its measurement serves
  again, and logs that too.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from attest.agent.config import AgentSettings
from attest.agent.gateway import GATEWAY_PATH, MAX_ENCAPSULATED_REQUEST, NodeGateway
from attest.agent.node_identity import NodeIdentity
from attest.agent.nonce import is_time_nonce, time_nonce
from attest.agent.release_lookup import CHECK_REVOKED, OwnRelease, ReleaseTracker
from attest.agent.sigstore_staple import SigstoreStaple
from attest.bundle_builder import build_bundle, collect_evidence
from attest.formats.bundle import MAX_NONCE, MIN_NONCE
from attest.formats.ohttp import MEDIA_TYPE_KEYS, MEDIA_TYPE_REQUEST, MEDIA_TYPE_RESPONSE
from attest.platform import CPU_SEV_SNP, LaunchIdentity, Platform, launch_identity
from transparency_log.common.asgi_serving import (
    BodyError,
    bug_response,
    read_body,
    text_response,
)
from transparency_log.common.errors import AttestlogError, PolicyError, PolicyFailure

__all__ = ["BUNDLE_PATH", "GATEWAY_PATH", "TRUST_PATH", "NodeAgent", "TokenBucket", "boot_agent",
           "create_agent_app", "probe_identity"]

log = logging.getLogger("attest.agent")
BUNDLE_PATH = "/.well-known/attestlog/bundle"
TRUST_PATH = "/.well-known/attestlog/simulated-trust"
CBOR = "application/cbor"


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; ``clock`` is a monotonic clock."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.last = clock()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0.0 when a token was taken, else the seconds until one is available."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


def probe_identity(platform: Platform, node_key: bytes,
                   random: Callable[[int], bytes] = os.urandom) -> LaunchIdentity:
    """Boot steps 1-2: collect everything once, check the GPUs' CC mode, return the launch
    identity (raises the collector's FetchError, or PolicyError ``agent.gpu.cc_mode``)."""
    got = collect_evidence(platform, random(32), node_key)
    state = got.gpu_state
    if state.attached and state.cc_mode != "on":
        raise PolicyError([PolicyFailure("agent.gpu.cc_mode", "gpu_state.cc_mode",
                                         state.cc_mode, "on",
                                         "GPUs must run in confidential-computing mode")])
    return launch_identity(got.cpu)


@dataclass
class NodeAgent:
    """What the HTTP app serves from. Thread-safe; ``wall`` is the wall clock (unix seconds)
    for cached-bundle nonces, ``monotonic`` the rate limiter's clock."""

    platform: Platform
    identity: NodeIdentity
    tracker: ReleaseTracker | None
    own: OwnRelease
    settings: AgentSettings
    wall: Callable[[], float]
    monotonic: Callable[[], float]
    simulated: bool
    random: Callable[[int], bytes] = os.urandom
    trust_json: bytes | None = None
    stopped: str | None = None
    sigstore: SigstoreStaple | None = None
    gateway: NodeGateway | None = None  # the OHTTP gateway and its request key (bound)

    def __post_init__(self) -> None:
        self.bucket = TokenBucket(self.settings.fresh_per_second, self.settings.fresh_burst,
                                  self.monotonic)
        self._lock = threading.Lock()
        self._cached: tuple[float, bytes] | None = None

    def bundle(self, nonce: bytes) -> bytes:
        own = self.own
        sigstore = self.sigstore.for_entry(own.entry) if self.sigstore is not None else None
        ohttp_keys = self.gateway.ohttp_keys if self.gateway is not None else None
        return build_bundle(self.platform, nonce, self.identity.node_key, own.entry,
                            own.tlog_proof, simulated=self.simulated,
                            sigstore_bundle=sigstore, ohttp_keys=ohttp_keys).encode()

    def cached_bundle(self) -> bytes:
        with self._lock:
            now = self.wall()
            if self._cached is None or now - self._cached[0] >= self.settings.cached_max_age:
                nonce = time_nonce(int(now), self.random(8))
                self._cached = (now, self.bundle(nonce))
            return self._cached[1]

    def refresh(self) -> None:
        """Re-fetch stapled collateral (when the platform staples; a failure keeps the last),
        then re-read the log: a fresh tlog-proof under the newest checkpoint, or, when the
        release was revoked meanwhile, stop serving (``on_revocation = "stop"``)."""
        refresh_collateral = getattr(self.platform, "refresh_collateral", None)
        if refresh_collateral is not None:
            for failure in refresh_collateral():
                log.warning("collateral refresh failed, keeping the last one: %s", failure)
            with self._lock:
                self._cached = None
        if self.tracker is None:
            return
        try:
            own = self.tracker.current()
        except PolicyError as err:
            if err.check == CHECK_REVOKED:
                self._no_release_left(str(err.failures[0]))
            else:
                log.error("release lookup failed: %s", err)
            return
        except AttestlogError as err:  # log unreachable: keep the last proof
            log.warning("tlog-proof refresh failed, keeping the last one: %s", err)
            return
        old = self.own
        if own.index != old.index:
            revoked = self.tracker.revoked_at(old.index)
            if revoked is not None:
                log.error("SWITCHED the stapled release: %s was %s; now stapling %s, which "
                          "lists this node's measurement and is not revoked. This build is "
                          "STILL SERVED; to stop it, revoke the build itself (attest revoke "
                          "--measurement %s)", old.describe(), revoked.describe(),
                          own.describe(), _build_measurement(self.tracker.identity))
            else:
                log.warning("switched the stapled release to the newest one listing this "
                            "node's measurement: %s -> %s", old.describe(), own.describe())
        with self._lock:
            if self.stopped is not None:
                log.error("SERVING AGAIN: %s lists this node's measurement and is not revoked",
                          own.describe())
                self.stopped = None
            self.own = own
            self._cached = None

    def _no_release_left(self, why: str) -> None:
        """No unrevoked release lists this node's measurement (``on_revocation``)."""
        if self.settings.on_revocation == "stop":
            if self.stopped is None:
                log.error("NOT SERVING (on_revocation = \"stop\"): no unrevoked release "
                          "lists this node's measurement; every bundle request gets 503: %s",
                          why)
            self.stopped = why
        else:
            log.error("THIS NODE'S RELEASE IS REVOKED and no unrevoked release lists its "
                      "measurement; still serving it (on_revocation = \"warn\"): clients "
                      "refuse it (release.revoked): %s", why)

    def run_refresher(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.proof_refresh):
            self.refresh()


def _build_measurement(identity: LaunchIdentity) -> str:
    """The hex measurement ``attest revoke --measurement`` would take for this build (SNP
    MEASUREMENT; TDX MRTD, though RTMR1/RTMR2 revoke a kernel or command line more narrowly)."""
    value = identity.measurement if identity.cpu == CPU_SEV_SNP else identity.mrtd
    return value.hex()


def boot_agent(platform: Platform, identity: NodeIdentity, make_tracker: Callable[
        [LaunchIdentity], ReleaseTracker], *, settings: AgentSettings,
        wall: Callable[[], float], monotonic: Callable[[], float],
        random: Callable[[int], bytes] = os.urandom,
        unsafe_unlogged: Callable[[ReleaseTracker, PolicyError], OwnRelease] | None = None,
        sigstore: SigstoreStaple | None = None,
        gateway: NodeGateway | None = None) -> NodeAgent:
    """Boot steps 1-3 (module docstring); raises on any refusal. ``sigstore``: the Sigstore
    bundles to staple with the release (:mod:`attest.agent.sigstore_staple`); ``gateway``: the
    OHTTP gateway whose request key every bundle binds."""
    ident = probe_identity(platform, identity.node_key, random)
    tracker = make_tracker(ident)
    try:
        own = tracker.current()
    except PolicyError as err:
        if unsafe_unlogged is None or err.check != "agent.release.not_logged":
            raise
        own = unsafe_unlogged(tracker, err)
        tracker = None  # type: ignore[assignment]
    trust = getattr(platform, "trust", None)
    return NodeAgent(platform, identity, tracker, own, settings, wall, monotonic,
                     simulated=platform.simulated, random=random,
                     trust_json=trust().to_json() if platform.simulated and trust else None,
                     sigstore=sigstore, gateway=gateway)


def create_agent_app(agent: NodeAgent) -> Starlette:
    """The agent's ASGI app (module docstring)."""

    def unavailable() -> Response | None:
        if agent.stopped is not None:
            return text_response(503, f"not serving: this node's release is revoked "
                                      f"({agent.stopped})")
        return None

    async def post_bundle(request: Request) -> Response:
        if (r := unavailable()) is not None:
            return r
        try:
            nonce = await read_body(request, MAX_NONCE, 5.0)
        except BodyError as err:
            return err.response()
        if not MIN_NONCE <= len(nonce) <= MAX_NONCE:
            return text_response(400, f"nonce must be {MIN_NONCE}..{MAX_NONCE} raw bytes, got "
                                      f"{len(nonce)}")
        if is_time_nonce(nonce):
            return text_response(400, "nonce uses the cached-bundle prefix")
        wait = agent.bucket.take()
        if wait:
            return text_response(429, "too many fresh reports; retry later or GET the "
                                      "cached bundle", {"Retry-After": str(max(1, int(wait + 1)))})
        return await bundle_response(request, lambda: agent.bundle(nonce), "no-store")

    async def get_bundle(request: Request) -> Response:
        if (r := unavailable()) is not None:
            return r
        return await bundle_response(request, agent.cached_bundle, "no-cache")

    async def bundle_response(request: Request, make: Callable[[], bytes],
                              cache_control: str) -> Response:
        """A bundle made off the event loop: 503 naming the check when the evidence cannot
        be had, 500 for a bug of ours (never a bundle)."""
        try:
            data = await run_in_threadpool(make)
        except AttestlogError as err:
            log.error("bundle failed: %s", err)
            return text_response(503, f"evidence unavailable: {err.check}")
        except Exception as err:  # a bug of ours: a 500, never a bundle
            return bug_response(log, request.url.path, err)
        return Response(data, media_type=CBOR, headers={"Cache-Control": cache_control})

    async def get_trust(request: Request) -> Response:
        if agent.trust_json is None:
            return text_response(404, "not found")
        return Response(agent.trust_json, media_type="application/json")

    async def get_keys(request: Request) -> Response:
        if agent.gateway is None:
            return text_response(404, "not found")
        return Response(agent.gateway.ohttp_keys, media_type=MEDIA_TYPE_KEYS,
                        headers={"Cache-Control": "no-cache"})

    async def post_gateway(request: Request) -> Response:
        """RFC 9458 §5: never logs or answers anything of the request in the clear."""
        gateway = agent.gateway
        if gateway is None:
            return text_response(404, "not found")
        if (r := unavailable()) is not None:
            return r
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != MEDIA_TYPE_REQUEST:
            return text_response(415, f"want Content-Type: {MEDIA_TYPE_REQUEST}")
        try:
            body = await read_body(request, MAX_ENCAPSULATED_REQUEST, 30.0)
        except BodyError as err:
            return err.response()
        try:
            data = await run_in_threadpool(gateway.answer, body)
        except AttestlogError as err:  # not for this key: nothing was decrypted
            return text_response(400, f"{err.check}: not a request encapsulated to this "
                                      "node's key")
        except Exception as err:  # a bug of ours; its message may hold request bytes
            log.error("internal error on the OHTTP gateway: %s", type(err).__name__)
            return text_response(500, "internal error")
        return Response(data, media_type=MEDIA_TYPE_RESPONSE,
                        headers={"Cache-Control": "no-store"})

    async def not_found(request: Request, exc: Exception) -> Response:
        return text_response(404, "not found")

    routes = [Route(BUNDLE_PATH, post_bundle, methods=["POST"]),
              Route(BUNDLE_PATH, get_bundle, methods=["GET"]),
              Route(TRUST_PATH, get_trust, methods=["GET"]),
              Route(GATEWAY_PATH, get_keys, methods=["GET"]),
              Route(GATEWAY_PATH, post_gateway, methods=["POST"])]
    return Starlette(routes=routes, exception_handlers={404: not_found})
