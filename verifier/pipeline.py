"""The client verifier: one evidence bundle in, a verdict and a transcript out (DESIGN.md,
"Verification is a pipeline of named checks"; issue 7).

The steps, in this order (each recorded in the transcript under its stable check id, with the
SHA-256 of its inputs):

1. **Bundle** — ``bundle.format``: strict deterministic-CBOR decode
   (:func:`attest.formats.bundle.decode_bundle`, once per exact bytes:
   :mod:`attest.formats.bundle_memo`, ``source=cache`` when reused); ``binding.nonce``:
   the bundle's nonce is the one the client sent; ``policy.simulated``: a bundle made by
   ``attest.simulate`` is refused unless the policy says ``unsafe_allow_simulated_hardware =
   true``. Simulator trust roots are used only for such a bundle under such a policy
   (:mod:`verifier.pipeline_trust`).
2. **Evidence authenticity** — the SEV-SNP report (``snp.*``, verifier/snp/stage.py), the TDX
   quote with its collateral (``tdx.*``, verifier/tdx/evidence.py) and every GPU report
   (``gpu.*``, verifier/gpu/stage.py and evidence.py, OCSP with the stapled answers), with
   the collateral the node stapled (then caches, then ``fetch`` unless offline, through the
   fetchers of :mod:`attest.collateral`; whatever the source, the same checks run, and the
   Result's collateral list says ``stapled``, ``cache`` or ``fetched``); then
   ``gpu.device.distinct`` (verifier/gpu/device_identity.py): the GPU items come from as
   many distinct devices. The first failure stops the pipeline.
3. **Binding** — ``binding.report_data`` (or ``binding.ohttp_keys``) and
   ``binding.gpu_nonce`` (:func:`verifier.binding_check.check_binding`): REPORT_DATA/
   REPORTDATA and each GPU's SPDM nonce commit to the nonce, the node key, the node's HPKE
   key configuration, the GPU evidence and each GPU's index. A failure stops.
4. **Log** — :func:`verifier.log_checks.verify_log`: ``release.signature``,
   (``release.sigstore``), ``log.signature``, ``log.witness.quorum``, ``log.inclusion``,
   ``log.consistency`` (against the client's last-seen checkpoint), then the policy checks
   ``log.checkpoint.age`` and ``release.revoked``. Authenticity failures stop; the policy
   ones are collected with step 5 and 6's.
5. **Measurement match** — ``release.measurement``: the SNP MEASUREMENT, or the TDX MRTD and
   RTMR0-2, are among the logged release's; each GPU's driver and VBIOS versions are among
   the release's allowed versions.
6. **Policy** — ``policy.evidence`` (the ``[evidence]`` table: required CPU kind, a GPU,
   every GPU in CC mode), ``snp.policy`` / ``tdx.policy`` / ``gpu.policy`` (the ``[snp]``,
   ``[tdx]``, ``[gpu]`` tables; defaults when a table is absent). Every failure of steps 4-6
   is reported in one :class:`PolicyError`.

A check that could not run (:class:`verifier.checks.CheckNotRun`) is a failure unless the
policy waives it by name (``waive = [...]``), and then the transcript says ``waived``. The
verdict is ``accepted`` only when every step ran and passed (or was waived by the policy).

:func:`run_pipeline` returns a :class:`Result` for every outcome (the CLI prints it);
:func:`verify_bundle` is the API: it returns an accepted Result or raises the refusal (the
error carries the Result as ``err.result``).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from attest.binding import gpu_digest, ohttp_keys_digest
from attest.certificates import register_parse_memo
from attest.formats.bundle import EvidenceBundle, SnpEvidence, TdxEvidence
from attest.formats.bundle_memo import BUNDLE_MEMO
from transparency_log.client.checkpoint_store import CheckpointStore, ConsistencyFetch
from transparency_log.common.errors import (
    AttestlogError,
    PolicyError,
    PolicyFailure,
    TrustConfigError,
    VerificationError,
)
from transparency_log.common.http_fetch import Fetch
from verifier.binding_check import CHECK_GPU_NONCE, CHECK_REPORT_DATA, check_binding
from verifier.gpu.device_identity import CHECK_DEVICE_DISTINCT, check_distinct_devices
from verifier.gpu.stage import run_gpu_stage
from verifier.log_checks import LogEvidence, check_release_signature, verify_log
from verifier.measurement_match import CHECK_MEASUREMENT, check_measurements
from verifier.pipeline_trust import VerifierCaches, VerifierTrust
from verifier.policy import Policy
from verifier.policy_step import check_policy
from verifier.result import Result
from verifier.revocations import KnownRevocations
from verifier.snp.stage import run_snp_stage
from verifier.stage_context import StageContext
from verifier.tdx.stage import run_tdx_stage
from verifier.transcript import FAIL, Transcript
from verifier.verified_cache import CACHE_SOURCE

__all__ = ["CHECK_FORMAT", "CHECK_NONCE", "CHECK_SIMULATED", "run_pipeline", "verify_bundle"]

CHECK_FORMAT = "bundle.format"
CHECK_NONCE = "binding.nonce"
CHECK_SIMULATED = "policy.simulated"

register_parse_memo(BUNDLE_MEMO.cache_clear)  # a cold run forgets decoded bundles too


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# Step 1: the bundle


def _check_nonce(bundle: EvidenceBundle, expected: bytes) -> str:
    if not hmac.compare_digest(bundle.nonce, bytes(expected)):
        raise VerificationError(CHECK_NONCE, "the bundle answers another nonce (replayed or "
                                "relayed)", field="nonce", got=bundle.nonce, want=expected)
    return f"{len(expected)}-byte nonce matches"


def _check_simulated(bundle: EvidenceBundle, policy: Policy) -> str:
    if not bundle.simulated:
        return "real hardware: production vendor roots"
    if not policy.unsafe_allow_simulated_hardware:
        raise PolicyError([PolicyFailure(
            CHECK_SIMULATED, "simulated", True, False,
            "evidence from attest.simulate; the policy does not set "
            "unsafe_allow_simulated_hardware = true")])
    return "UNSAFE: simulated hardware, simulator roots (unsafe_allow_simulated_hardware)"


# --------------------------------------------------------------------------------------------
# The pipeline


def run_pipeline(bundle_bytes: bytes, policy: Policy, *, at: datetime, expected_nonce: bytes,
                 trust: VerifierTrust | None = None, fetch: Fetch | None = None,
                 caches: VerifierCaches | None = None,
                 checkpoint_store: CheckpointStore | None = None,
                 fetch_consistency: ConsistencyFetch | None = None,
                 revocations: KnownRevocations | None = None) -> Result:
    """Run steps 1-6 (module docstring) and return the Result, accepted or refused.

    ``at``: the verification time (timezone-aware); ``expected_nonce``: the nonce the client
    sent; ``trust``: the roots (default :meth:`VerifierTrust.production`); ``fetch``: network
    access for collateral missing from the bundle (None = offline: stapled collateral and
    ``caches`` only); ``checkpoint_store``/``fetch_consistency``: the client's last-seen
    checkpoints and how to get a consistency proof; ``revocations``: the client's synced
    revocation mirror. Never raises an :class:`AttestlogError`: it is in ``result.error``.
    """
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    t = Transcript(waive=policy.waive)
    result = Result(t, at, policy.digest, hashlib.sha256(bundle_bytes).digest())
    try:
        _run(bundle_bytes, policy, at, expected_nonce, trust or VerifierTrust.production(),
             fetch, caches if caches is not None else VerifierCaches(), checkpoint_store,
             fetch_consistency, revocations, result)
    except AttestlogError as err:
        t.error = err
    if t.error is None and any(s.result == FAIL for s in t.steps):
        failed = [s for s in t.steps if s.result == FAIL]
        t.error = PolicyError([PolicyFailure(s.check, "step", "failed", "passed", s.detail)
                               for s in failed])
    return result


def _run(data: bytes, policy: Policy, at: datetime, expected_nonce: bytes,
         trust: VerifierTrust, fetch: Fetch | None, caches: VerifierCaches,
         store: CheckpointStore | None, fetch_consistency: ConsistencyFetch | None,
         revocations: KnownRevocations | None, result: Result) -> None:
    t = result.transcript
    # (1) the bundle: format, nonce, simulated or not.
    # Decoded once per exact bytes (attest.formats.bundle_memo): a hit is these very bytes,
    # decoded and judged well-formed before; every later step runs again all the same.
    digest = result.bundle_sha256
    seen = BUNDLE_MEMO.get(data, digest)
    bundle: EvidenceBundle = t.run(
        CHECK_FORMAT, lambda: seen if seen is not None else BUNDLE_MEMO.decode(data, digest),
        detail=lambda b: f"{len(b.evidence)} evidence item(s), "
                         f"{len(b.collateral)} stapled collateral",
        bundle_sha256=digest.hex(), **({} if seen is None else {"source": CACHE_SOURCE}))
    result.bundle = bundle
    t.run(CHECK_NONCE, lambda: _check_nonce(bundle, expected_nonce), detail=str,
          nonce=bytes(expected_nonce).hex())
    t.run(CHECK_SIMULATED, lambda: _check_simulated(bundle, policy), detail=str)
    roots = trust.for_bundle(bundle.simulated)
    run = StageContext(bundle, policy, at, roots, caches, fetch, t,
                       uses=result.collateral, gpu_facts=result.gpu_facts)

    # (2) evidence authenticity: the first failure stops.
    # Each vendor stage records its steps about its item and turns the libraries' exceptions
    # into our errors where it calls them; anything else escaping is a bug of ours (exit 1).
    for item in bundle.evidence:
        if isinstance(item, SnpEvidence):
            result.snp = run_snp_stage(run, item)
        elif isinstance(item, TdxEvidence):
            result.tdx = run_tdx_stage(run, item)
        else:
            result.gpus.append(run_gpu_stage(run, item))
    if result.gpus:
        chains = [(item.index, g.report.chain.certificates)
                  for item, g in zip(bundle.gpu_evidence, result.gpus, strict=True)]
        t.run(CHECK_DEVICE_DISTINCT, lambda: check_distinct_devices(chains),
              detail=lambda ids: f"{len(ids)} GPU item(s) from {len(ids)} distinct device(s) "
                          f"(DeviceID keys {', '.join(i.device_key.hex()[:16] for i in ids)})")

    # (3) binding to the nonce, the node key and the GPU evidence.
    report_data = (result.snp.report.report_data if result.snp is not None else
                   result.tdx.quote.body.report_data if result.tdx is not None else None)
    gpu_nonces = {item.index: g.report.report.request.nonce
                  for item, g in zip(bundle.gpu_evidence, result.gpus, strict=True)}

    def rd_inputs(digest: bytes | None = None) -> dict[str, str]:
        """The inputs REPORT_DATA binds; ``digest``: the GPU digest when already computed."""
        gpus = gpu_digest(bundle.gpu_state, bundle.gpu_evidence) if digest is None else digest
        return {"node_key_sha256": _sha(bundle.node_key),
                "ohttp_keys_sha256": ohttp_keys_digest(bundle.ohttp_keys).hex(),
                "gpu_digest": gpus.hex()}

    bound_what = ("commits to nonce, node key, HPKE key configuration and GPU evidence"
                  if bundle.ohttp_keys is not None else
                  "commits to nonce, node key and GPU evidence (no HPKE key configuration)")
    try:
        bound = check_binding(bundle, report_data=report_data, gpu_nonces=gpu_nonces)
    except VerificationError as err:
        if err.check == CHECK_GPU_NONCE:  # checked after, and only when, REPORT_DATA matched
            t.passed(CHECK_REPORT_DATA, bound_what, **rd_inputs())
        t.failed(err.check, str(err), **rd_inputs())
        raise
    t.passed(CHECK_REPORT_DATA, bound_what, report_data=bound.report_data.hex(),
             **rd_inputs(bound.gpu_digest))
    t.passed(CHECK_GPU_NONCE, f"{len(gpu_nonces)} GPU report(s) carry their bound nonce",
             gpu_nonces=",".join(n.hex() for n in bound.gpu_nonces))

    # (4) the log: authenticity stops; age and revocation are collected with the policy.
    failures = run.failures
    try:
        evidence = LogEvidence.from_tlog_proof(bundle.release, bundle.tlog_proof,
                                               bundle.sigstore_bundle)
    except AttestlogError as err:  # a malformed tlog-proof: FormatError log.inclusion
        t.failed(err.check, str(err), tlog_proof_sha256=_sha(bundle.tlog_proof))
        raise
    try:
        result.log = verify_log(evidence, policy, at, store=store,
                                fetch_consistency=fetch_consistency, revocations=revocations,
                                transcript=t)
        result.release_entry = result.log.release
    except PolicyError as err:
        failures.failures.extend(err.failures)
        result.release_entry = check_release_signature(bundle.release, policy.release)
    release = result.release
    if release is None:  # check_release_signature refuses revocations; belt and braces
        raise VerificationError("release.signature", "the entry is not a release")

    # (5) measurement match against the logged release.
    before = len(failures.failures)
    result.measurements = check_measurements(release, snp=result.snp, tdx=result.tdx,
                                             gpus=result.gpus, collector=failures)
    new = failures.failures[before:]
    if new:
        t.failed(CHECK_MEASUREMENT, "; ".join(str(f) for f in new),
                 release_digest=result.release_entry.digest.hex())
    else:
        t.passed(CHECK_MEASUREMENT, f"{len(result.measurements)} value(s) match the release",
                 release_digest=result.release_entry.digest.hex())

    # (6) policy: everything collected into one PolicyError.
    check_policy(policy, bundle, snp=result.snp, tdx=result.tdx, gpu_facts=run.gpu_facts,
                 release=release, collector=failures, transcript=t)
    failures.raise_if_any()


def verify_bundle(bundle_bytes: bytes, policy: Policy, *, at: datetime, expected_nonce: bytes,
                  trust: VerifierTrust | None = None, fetch: Fetch | None = None,
                  caches: VerifierCaches | None = None,
                  checkpoint_store: CheckpointStore | None = None,
                  fetch_consistency: ConsistencyFetch | None = None,
                  revocations: KnownRevocations | None = None) -> Result:
    """Verify a node's evidence bundle; return the accepted :class:`Result` or raise.

    Same parameters as :func:`run_pipeline`. On refusal raises the error that refused it
    (FormatError, VerificationError, PolicyError, TrustConfigError, FetchError) with the full
    Result attached as ``err.result`` (its transcript says every step that ran).
    """
    result = run_pipeline(bundle_bytes, policy, at=at, expected_nonce=expected_nonce,
                          trust=trust, fetch=fetch, caches=caches,
                          checkpoint_store=checkpoint_store,
                          fetch_consistency=fetch_consistency, revocations=revocations)
    if not result.accepted:
        err = result.error
        if err is None:  # unreachable: a refused transcript always has an error
            err = TrustConfigError("pipeline", "refused without an error")
        err.result = result  # type: ignore[attr-defined]
        raise err
    return result
