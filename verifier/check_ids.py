"""The catalogue of every check id attestlog reports: its meaning and the error it raises.

Size: one table row per check id the project reports; splitting it would hide ids.

Check ids are stable API (DESIGN.md, "Verification is a pipeline of named checks"): scripts,
EAR appraisals (docs/ear.md) and policies' ``waive`` lists name them. This table is the one
list. tests/test_check_ids.py reads the code (ast) and fails for any id reported there that
is not here (and for any id here that the code no longer has), for an error class the code
raises that is not listed, and when the table in docs/verification.md ("Check ids") differs
from :func:`markdown`. Regenerate that table with::

    python -m verifier.check_ids --markdown     # print it
    python -m verifier.check_ids --update docs/verification.md

``raises``: the classes of transparency_log/common/errors.py the check fails with
(``PolicyError``: a collected policy failure; ``CheckNotRun``: a check that could not run,
``waived`` only when the policy's ``waive`` list names it); ``-`` for a step that records a
fact and does not fail. A step that re-raises a lower check's error under its own id
(verifier.checks.with_check) keeps that error's class.

Importing this module imports nothing but the standard library.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BEGIN", "CHECKS", "END", "CheckId", "by_id", "markdown", "update"]


@dataclass(frozen=True)
class CheckId:
    id: str
    raises: tuple[str, ...]
    meaning: str


_F, _V, _S, _C = "FormatError", "VerificationError", "SignatureError", "ChainError"
_T, _X, _P, _N = "TrustConfigError", "FetchError", "PolicyError", "CheckNotRun"

# (id, raises (space-separated), meaning); grouped by the id's first word, sorted in a group.
_TABLE: tuple[tuple[str, str, str], ...] = (
    # attest agent (node side, at boot and while serving)
    ("agent.collateral", _X, "stapling collateral at boot failed (prefix of the ids below)"),
    ("agent.collateral.gpu.ocsp", _X, "an OCSP answer for a GPU certificate cannot be had"),
    ("agent.collateral.gpu.rim.driver", _X, "the GPU driver RIM cannot be had"),
    ("agent.collateral.gpu.rim.vbios", _X, "the GPU VBIOS RIM cannot be had"),
    ("agent.collateral.snp.cert_chain", _X, "the AMD ASK/ARK chain cannot be had from KDS"),
    ("agent.collateral.snp.crl", _X, "the AMD CRL cannot be had from KDS"),
    ("agent.collateral.snp.product", _X, "the SNP product (Milan, Genoa, Turin) cannot be told"),
    ("agent.collateral.snp.vcek", _X, "the VCEK cannot be had from KDS"),
    ("agent.collateral.tdx.fmspc", _X, "the FMSPC cannot be read from the PCK certificate"),
    ("agent.collateral.tdx.pck_crl", _X, "the Intel PCK CRL cannot be had from PCS"),
    ("agent.collateral.tdx.qe_identity", _X, "the Intel QE Identity cannot be had from PCS"),
    ("agent.collateral.tdx.root_crl", _X, "the Intel Root CA CRL cannot be had"),
    ("agent.collateral.tdx.tcb_info", _X, "the Intel TCB Info cannot be had from PCS"),
    ("agent.config", _T, "the agent's configuration or state folder is unusable"),
    ("agent.gateway.upstream", "-", "a private request's inference upstream is missing or "
     "unreachable (answered encapsulated, 502/503)"),
    ("agent.gpu.cc_mode", _P, "the node's GPUs are not in confidential-computing mode"),
    ("agent.listen", "StartupError", "the agent's listening address cannot be bound"),
    ("agent.nonce", _F, "a client nonce is malformed (size, cached-bundle form)"),
    ("agent.release.not_logged", _P, "the node's own build is not in the release log"),
    ("agent.release.revoked", _P, "every logged release of the node's build is revoked"),
    ("agent.sigstore", _T, "the Sigstore bundles to staple are unusable"),
    ("agent.state_lock", "StartupError", "another agent holds the state folder"),
    # verifier audit
    ("audit.vkey", _T, "--vkey differs from the policy's log key"),
    # Oblivious HTTP, blind RSA, Privacy Pass (attest/private, attest/formats)
    ("bhttp.format", _F, "a Binary HTTP message is malformed (RFC 9292)"),
    ("binding.gpu_items", _F, "the bundle's GPU items are not one per index"),
    ("binding.gpu_nonce", f"{_F} {_V}", "a GPU report does not sign the nonce of its index"),
    ("binding.nonce", f"{_F} {_V}", "the bundle does not answer the client's nonce"),
    ("binding.ohttp_keys", _V, "the evidence binds no (or another) HPKE key configuration"),
    ("binding.report_data", _V, "REPORT_DATA/REPORTDATA does not commit to nonce, keys, GPUs"),
    ("blindrsa.blind", _T, "blinding cannot draw a value in range (RFC 9474)"),
    ("blindrsa.encode", _F, "EMSA-PSS encoding fails for this key (RFC 9474)"),
    ("blindrsa.input", _F, "a blind RSA input has the wrong size (RFC 9474)"),
    ("blindrsa.sign", _S, "the blind signature does not verify (a signing fault)"),
    ("blindrsa.signature", _S, "a finalized blind RSA signature does not verify"),
    # private requests: issuer, router and relay (attest/oblivious; docs/private.md)
    ("issuer.account", "-", "issuance: the account's bearer token is unknown (401)"),
    ("issuer.config", _T, "the issuer's configuration or key is unusable"),
    ("issuer.listen", "StartupError", "the issuer cannot bind its address"),
    ("issuer.quota", "-", "issuance: the account's hourly quota is spent (429)"),
    ("oblivious.forward", _X, "the router or relay cannot forward to the next hop"),
    ("relay.config", _T, "the relay's configuration is unusable"),
    ("relay.listen", "StartupError", "the relay cannot bind its address"),
    ("relay.rate", "-", "the relay's rate limit refused the request (429)"),
    ("relay.upstream", "-", "the relay's router did not answer (502)"),
    ("router.config", _T, "the router's configuration is unusable"),
    ("router.directory", _F, "a node directory is malformed"),
    ("router.gateway", "-", "the chosen node's gateway did not answer (502)"),
    ("router.listen", "StartupError", "the router cannot bind its address"),
    ("router.spent_tokens", f"{_T} InputFileError", "the spent-token store is unusable"),
    ("router.token.missing", "-", "no PrivateToken: answered with the token challenge (401)"),
    ("router.token.spent", "-", "the token was already spent (or does not verify) (401)"),
    # the evidence bundle
    ("bundle.canonical", _F, "the bundle is not deterministic CBOR"),
    ("bundle.cbor", _F, "the bundle is not well-formed CBOR"),
    ("bundle.collateral", _F, "two different collateral blobs under one name"),
    ("bundle.format", _F, "decode the bundle strictly (step 1)"),
    ("bundle.saved_nonce", _F, "a saved FILE.nonce is malformed"),
    ("bundle.schema", _F, "a bundle field is missing, unknown or of the wrong type"),
    ("bundle.size", _F, "the bundle is over its size cap"),
    # transparency_log core formats
    ("checkpoint.format", _F, "a checkpoint is malformed (C2SP tlog-checkpoint)"),
    ("checkpoint.origin", _V, "a checkpoint is for another log"),
    ("collateral.describe", _F, "describing a blob for the transcript (internal, never a refusal)"),
    ("collateral.stale", "-", "a stapled item expired; a current one is fetched"),
    ("config.schema", _T, "an unknown key or wrong type in the client config file"),
    ("config.syntax", _T, "the client config file is not TOML"),
    ("cosignature.format", _F, "a cosignature is malformed (C2SP tlog-cosignature)"),
    ("cosignature.signature", _S, "a cosignature does not verify"),
    # EAR attestation results
    ("ear.alg", _S, "the EAR's algorithm is not the key's"),
    ("ear.claims", _F, "an EAR claim is missing or out of range"),
    ("ear.format", _F, "the EAR is not a well-formed JWT"),
    ("ear.key", _T, "the EAR signing or verifying key is unusable"),
    ("ear.nonce", _V, "the EAR answers another nonce"),
    ("ear.signature", _S, "the EAR's signature does not verify"),
    # HTTP fetching
    ("fetch.encoding", _X, "a response's Content-Encoding is not supported"),
    ("fetch.headers", _X, "a response has too many headers"),
    ("fetch.size", _X, "a response is over its size cap"),
    ("fetch.status", _X, "a server answered an HTTP error"),
    ("fetch.unreachable", _X, "a server could not be reached (after retries)"),
    ("fetch.url", _X, "a URL is not a plain http(s) URL"),
    # NVIDIA GPUs
    ("gpu.chain", f"{_C} StaleError FormatError",
     "the GPU device chain does not lead to the pinned NVIDIA CA, or has a malformed field"),
    ("gpu.chain.format", _F, "the GPU certificate chain is malformed"),
    ("gpu.collect.cc_mode", _X, "the node's GPUs are not in CC mode: no reports"),
    ("gpu.collect.driver", _X, "NVML did not initialise (no NVIDIA driver)"),
    ("gpu.collect.no_gpu", _X, "NVML sees no GPU"),
    ("gpu.collect.nvml", _X, "the NVML bindings are not installed"),
    ("gpu.collect.report", _X, "NVML failed to give a GPU's report or chain"),
    ("gpu.device.distinct", _V, "two GPU items are the same physical GPU"),
    ("gpu.nras", "-", "an NVIDIA NRAS token was verified (verifier gpu)"),
    ("gpu.nras.chain", f"{_C} StaleError", "the NRAS signing key does not chain to the NRAS root"),
    ("gpu.nras.claims", _V, "an NRAS token claim is not acceptable (issuer, time, nonce)"),
    ("gpu.nras.format", _F, "an NRAS token is malformed"),
    ("gpu.nras.key", f"{_F} {_T} {_V}", "the NRAS key set or its use is unusable"),
    ("gpu.nras.result", _P, "NRAS did not find every GPU trustworthy"),
    ("gpu.nras.signature", _S, "an NRAS token's signature does not verify"),
    ("gpu.nras.submods", _V, "the NRAS overall token and GPU tokens disagree"),
    ("gpu.ocsp", f"{_F} {_V} {_S} {_N}", "OCSP for the GPU chain, with the stapled answers"),
    ("gpu.ocsp.certid", _V, "an OCSP answer is about another certificate"),
    ("gpu.ocsp.fetch", _X, "the NVIDIA OCSP responder cannot be reached"),
    ("gpu.ocsp.format", _F, "an OCSP answer is malformed or not successful"),
    ("gpu.ocsp.fresh", _V, "an OCSP answer is not current"),
    ("gpu.ocsp.nonce", _V, "an OCSP answer does not echo the nonce"),
    ("gpu.ocsp.revoked", _V, "a GPU certificate is revoked (OCSP)"),
    ("gpu.ocsp.signature", _S, "an OCSP answer is not signed by the chain's responder"),
    ("gpu.policy", _P, "the [gpu] policy"),
    ("gpu.policy.attached", _P, "the number of attached GPUs is not the policy's"),
    ("gpu.policy.cc_mode", _P, "a GPU is not in CC mode"),
    ("gpu.policy.chip_info", _P, "a GPU's chip info is not allowed"),
    ("gpu.policy.chip_sku", _P, "a GPU's chip SKU is not allowed"),
    ("gpu.policy.count", _P, "fewer GPUs than the policy requires"),
    ("gpu.policy.devtools", _P, "a GPU runs in devtools mode"),
    ("gpu.policy.driver", _P, "a GPU's driver version is not allowed"),
    ("gpu.policy.feature_mode", _P, "a GPU's feature mode (CC, PPCIe) is not allowed"),
    ("gpu.policy.ocsp", _P, "the OCSP setting of the [gpu] policy is not met"),
    ("gpu.policy.opaque_version", _P, "a GPU's opaque-data version is not allowed"),
    ("gpu.policy.rims", _P, "the RIM setting of the [gpu] policy is not met"),
    ("gpu.policy.vbios", _P, "a GPU's VBIOS version is not allowed"),
    ("gpu.report.format", _F, "a GPU SPDM report is malformed"),
    ("gpu.report.fwid", _V, "the report's FWID differs from the device certificate's"),
    ("gpu.report.nonce", _V, "a GPU report does not carry the expected nonce"),
    ("gpu.report.opaque", _F, "a GPU report's opaque field does not decode by its type"),
    ("gpu.report.signature", _S, "a GPU report's signature does not verify"),
    ("gpu.rim.chain", f"{_C} StaleError", "a RIM signer does not chain to the NVIDIA RIM root"),
    ("gpu.rim.conflict", _V, "driver and VBIOS RIMs both claim a measurement index"),
    ("gpu.rim.driver", _P, "the driver RIM's version is not the report's"),
    ("gpu.rim.fetch", f"{_X} {_F} {_N}", "a RIM cannot be had (stapled, cached or fetched)"),
    ("gpu.rim.format", _F, "a RIM (SWID/CoRIM XML) is malformed"),
    ("gpu.rim.measurements", _P, "a GPU measurement differs from its RIM"),
    ("gpu.rim.signature", f"{_S} {_F}", "a RIM's XML signature does not verify"),
    ("gpu.rim.vbios", _P, "the VBIOS RIM's version is not the report's"),
    # the transparency log (server, client, verifier's log half)
    ("log.checkpoint.age", f"{_P} {_N}", "the checkpoint is older than the policy allows"),
    ("log.config", _T, "the log's configuration or database is missing or unusable"),
    ("log.consistency", f"ConsistencyError {_X} {_F} {_N}",
     "consistent with the last-seen checkpoint (a fork or rollback is kept)"),
    ("log.entries", f"{_F} {_V} ProofError ConsistencyError",
     "mirrored log entries are malformed or do not match the checkpoint"),
    ("log.fetch", _X, "a tile a proof needs is not served"),
    ("log.inclusion", f"ProofError {_F}", "the release entry is in the log (RFC 9162 inclusion)"),
    ("log.integrate", _F, "stored tiles do not allow integrating new entries"),
    ("log.key", _T, "the log's signer key is unusable or not the log's"),
    ("log.origin", _V, "the checkpoint origin is not the log key's name"),
    ("log.policy", _T, "a log or witness policy file is unusable"),
    ("log.prove", _F, "the log cannot prove: no signed checkpoint yet"),
    ("log.publish", _F, "the log cannot publish: no signed checkpoint yet"),
    ("log.replay", _F, "the stored log does not replay (a partial bundle not last)"),
    ("log.signature", f"{_S} {_V} {_F}", "the checkpoint is signed by the policy's log key"),
    ("log.size", _F, "a tree size the log has not integrated"),
    ("log.tiles", "ProofError", "fetched tiles do not hash to the checkpoint root"),
    ("log.witness.ahead", "ConsistencyError", "a witness cosigned a larger tree than the log has"),
    ("log.witness.conflict", "ConsistencyError", "a witness holds another tree of the same size"),
    ("log.witness.inconsistent", "ConsistencyError", "a witness refused the consistency proof"),
    ("log.witness.quorum", _V, "fewer policy witnesses cosigned than the quorum"),
    ("log.witness.request", _X, "a witness request failed (its size kept changing)"),
    ("log.witness.signature", _S, "a policy witness's cosignature does not verify"),
    ("log.witness.unreachable", _X, "a witness cannot be reached"),
    ("log.writer_lock", "StartupError", "another process holds the log's writer lock"),
    # measurement tools
    ("measure.snp", _F, "an SNP launch measurement input is out of range"),
    ("measure.tdx", _F, "a TDX MRTD input is out of range"),
    ("merkle.consistency", f"{_F} ProofError", "an RFC 9162 consistency proof does not verify"),
    ("merkle.inclusion", f"{_F} ProofError", "an RFC 9162 inclusion proof does not verify"),
    ("node.fetch", _X, "the node's bundle cannot be fetched"),
    ("note.format", _F, "a signed note is malformed (C2SP signed-note)"),
    ("note.key", _T, "a note key (vkey or skey) is malformed or of a wrong type"),
    ("note.signature", _S, "a note signature from a known key does not verify"),
    ("note.unverified", _V, "a note has no signature from a trusted key"),
    ("ohttp.decrypt", "DecryptError", "an OHTTP message does not decrypt (RFC 9458)"),
    ("ohttp.format", _F, "an OHTTP message or key config is malformed (RFC 9458)"),
    ("ohttp.key_id", _F, "no OHTTP key with this identifier and KEM"),
    ("ohttp.suite", _F, "the OHTTP KDF/AEAD pair is not offered"),
    ("pipeline", _T, "internal: a refusal that recorded no error (a bug)"),
    ("platform.detect", _X, "the node's TEE platform cannot be detected"),
    # the policy file and its evidence rules
    ("policy.evidence", _P, "the [evidence] rules"),
    ("policy.evidence.cpu", _P, "the required CPU TEE evidence is absent"),
    ("policy.evidence.gpu", _P, "no GPU evidence where the policy requires one"),
    ("policy.evidence.gpu_cc", _P, "a GPU is not in CC mode where the policy requires it"),
    ("policy.log", _T, "the [log] table is unusable"),
    ("policy.release", _T, "the [release] table is unusable"),
    ("policy.schema", _T, "an unknown key or wrong type in the policy"),
    ("policy.simulated", f"{_P} {_T}",
     "simulated evidence without unsafe_allow_simulated_hardware = true"),
    ("policy.syntax", _T, "the policy file is missing or not TOML"),
    ("policy.version", _T, "the policy's version is not supported"),
    ("policy.waive", _T, "a waiver names an id that cannot be waived"),
    ("privacypass.challenge", _V, "a Privacy Pass token answers another challenge (RFC 9577)"),
    ("privacypass.finalize", _V, "a Privacy Pass token cannot be finalized"),
    ("privacypass.format", _F, "a Privacy Pass message is malformed"),
    ("privacypass.key", _T, "the Privacy Pass issuer has no usable key"),
    ("privacypass.key_id", _V, "a Privacy Pass token was issued under another key"),
    ("privacypass.signature", _S, "a Privacy Pass token's authenticator does not verify"),
    ("private.fetch", _X, "the node directory or a node's bundle cannot be had (client)"),
    ("private.min_nodes", _P, "fewer nodes verified than [private] min_nodes: nothing sent"),
    ("private.send", _X, "the private request was not answered with message/ohttp-res"),
    ("private.token", f"{_X} {_T}", "no Privacy Pass token could be had from the issuer"),
    ("publish.auth", _T, "the submitter key or authorisation is unusable"),
    ("publish.entry", _F, "the log refused the submitted entry"),
    ("publish.fetch", _X, "the log cannot be reached to publish"),
    # releases and revocations
    ("release.artifacts.missing", _P, "audit: a release artifact to rebuild from is missing"),
    ("release.dsse", _F, "a DSSE envelope is malformed"),
    ("release.dsse.signature", _S, "a release signature does not verify"),
    ("release.dsse.signer", _V, "not signed by enough accepted release keys"),
    ("release.entry.format", _F, "audit: a log entry is not a release or revocation"),
    ("release.entry.size", _F, "a release entry is over the log entry size"),
    ("release.json.canonical", _F, "a release statement is not RFC 8785 canonical JSON"),
    ("release.json.depth", _F, "release JSON nests too deep"),
    ("release.json.duplicate", _F, "release JSON has a duplicate member name"),
    ("release.json.number", _F, "release JSON has a non-integer number"),
    ("release.json.object", _F, "release JSON has a non-string member name"),
    ("release.json.size", _F, "release JSON is over its size cap"),
    ("release.json.string", _F, "release JSON has a lone surrogate"),
    ("release.json.syntax", _F, "release JSON does not parse"),
    ("release.json.type", _F, "a value has no JSON form"),
    ("release.json.utf8", _F, "release JSON is not UTF-8"),
    ("release.key.algorithm", _T, "a release key is not Ed25519 or ECDSA P-256"),
    ("release.key.format", _T, "a release key file is malformed"),
    ("release.key.permissions", _T, "a release private key file is readable by others"),
    ("release.measurement", _P, "the evidence's measurements are the logged release's"),
    ("release.reproduce", f"{_V} {_P}", "audit: a rebuilt artifact differs from the logged one"),
    ("release.revocation.target", _F, "audit: a revocation names nothing in the log"),
    ("release.revocations.unavailable", _N,
     "the revocation mirror is missing or behind the checkpoint"),
    ("release.revoked", f"{_P} {_V}", "the release, or a measurement it lists, is revoked"),
    ("release.signature", _V, "the release entry is signed by the policy's release keys"),
    ("release.sigstore", f"{_V} {_P}", "Sigstore provenance of the release ([release.sigstore])"),
    ("release.sigstore.artifact", _S, "the Sigstore bundle signs another digest"),
    ("release.sigstore.bundle", _F, "the Sigstore bundle is malformed"),
    ("release.sigstore.certificate", _C, "the Sigstore certificate does not chain to the root"),
    ("release.sigstore.identity", _V, "the Sigstore signer is not the policy's identity"),
    ("release.sigstore.root", _T, "the Sigstore trusted root is unusable"),
    ("release.sigstore.verify", _V, "sigstore refuses the bundle (tlog entry, SCT, time)"),
    ("release.statement", _F, "a release statement (in-toto) is malformed"),
    # services
    ("serve.limits", _T, "a verifier serve limit is out of range"),
    ("serve.listen", "StartupError", "tlog serve's listening address cannot be bound"),
    ("server.limits", _T, "a log server limit is out of range"),
    ("server.submitters", _T, "the submitters file is unusable"),
    ("simulate.trust", _F, "a simulated-trust document is malformed"),
    # AMD SEV-SNP
    ("snp.ark.format", _F, "the ARK certificate is malformed"),
    ("snp.ask.format", _F, "the ASK certificate is malformed"),
    ("snp.asvk.format", _F, "the ASVK certificate is malformed"),
    ("snp.cert_chain", "-", "the ASK/ARK chain (a stapled collateral item)"),
    ("snp.certtable.format", _F, "the SNP certificate table is malformed"),
    ("snp.collateral.format", _F, "SNP collateral is not an AMD SEV certificate or CRL"),
    ("snp.collect", _X, "collecting an SNP report failed (prefix of the ids below)"),
    ("snp.collect.device", _X, "no SEV-SNP guest device"),
    ("snp.collect.generation", _X, "the report request changed while reading"),
    ("snp.collect.ioctl", _X, "the SNP guest ioctl failed"),
    ("snp.collect.provider", _X, "the configfs-tsm provider is not sev_guest"),
    ("snp.collect.report_data", _V, "the device returned another REPORT_DATA"),
    ("snp.crl", f"{_C} StaleError {_X} {_N} {_F}",
     "AMD CRL: by the ARK, current, the key not revoked"),
    ("snp.kds.fetch", _X, "AMD KDS cannot be reached (or offline, not cached)"),
    ("snp.policy", _P, "the [snp] policy"),
    ("snp.policy.abi", _P, "the guest policy's ABI is below the minimum"),
    ("snp.policy.author_key_digest", _P, "AUTHOR_KEY_DIGEST is not allowed"),
    ("snp.policy.chip_id", _P, "CHIP_ID is not allowed"),
    ("snp.policy.debug", _P, "the guest allows debugging"),
    ("snp.policy.family_id", _P, "FAMILY_ID is not allowed"),
    ("snp.policy.guest_svn", _P, "GUEST_SVN is below the minimum"),
    ("snp.policy.host_data", _P, "HOST_DATA is not the policy's"),
    ("snp.policy.id_key_digest", _P, "ID_KEY_DIGEST is not allowed"),
    ("snp.policy.image_id", _P, "IMAGE_ID is not allowed"),
    ("snp.policy.measurement", f"{_P} {_T}", "MEASUREMENT is not allowed"),
    ("snp.policy.migrate_ma", _P, "the guest allows a migration agent"),
    ("snp.policy.report_data", _P, "REPORT_DATA is not the policy's"),
    ("snp.policy.single_socket", _P, "the guest is not single-socket where required"),
    ("snp.policy.smt", _P, "the guest allows SMT where the policy forbids it"),
    ("snp.policy.tcb.committed_minimum", _P, "COMMITTED_TCB is below the minimum"),
    ("snp.policy.tcb.current_minimum", _P, "CURRENT_TCB is below the minimum"),
    ("snp.policy.tcb.launch_minimum", _P, "LAUNCH_TCB is below the minimum"),
    ("snp.policy.tcb.minimum", _P, "REPORTED_TCB (and the key's SPLs) below the minimum"),
    ("snp.policy.tcb.order", _P, "the report's TCB values are out of order"),
    ("snp.policy.tcb.provisional", _P, "a provisional (uncommitted) TCB is in use"),
    ("snp.policy.vmpl", _P, "VMPL is not allowed"),
    ("snp.report.format", _F, "the SNP report is malformed"),
    ("snp.report.product", f"{_F} {_T} {_V}", "the report's product and its signing key's agree"),
    ("snp.report.signature", _S, "the SNP report's signature does not verify"),
    ("snp.roots", _T, "no AMD roots for the product"),
    ("snp.vcek", "-", "the VCEK (a stapled collateral item)"),
    ("snp.vcek.chain", f"{_C} StaleError", "VCEK/VLEK <- ASK/ASVK <- a pinned ARK, at the time"),
    ("snp.vcek.collateral", _X, "the VCEK/VLEK is neither stapled nor to be had"),
    ("snp.vcek.extensions", _V, "the VCEK's extensions (hwID, TCB) are not the report's"),
    ("snp.vcek.format", _F, "the VCEK certificate or its extensions are malformed"),
    ("snp.vlek.format", _F, "the VLEK certificate or its extensions are malformed"),
    # log storage
    ("storage.checkpoint", "StorageConflictError", "a stored checkpoint would go back"),
    ("storage.dedup", "StorageConflictError", "a leaf hash prefix collision"),
    ("storage.integrate", "StorageConflictError", "the tree state moved under a writer"),
    ("storage.postgres", _T, "the PostgreSQL storage configuration is unusable"),
    ("storage.sqlite", f"{_F} InputFileError", "the file is not a usable SQLite log database"),
    ("storage.state", _F, "the stored tree state is inconsistent"),
    # Intel TDX
    ("tdx.ccel.format", _F, "the CCEL event log is malformed"),
    ("tdx.collateral.fetch", _X, "Intel PCS cannot be reached (or offline, not cached)"),
    ("tdx.collect", f"{_X} {_F}", "collecting a TDX quote failed"),
    ("tdx.pck.chain", f"{_F} {_V} {_C}", "PCK <- PCK CA <- the pinned Intel SGX Root CA"),
    ("tdx.pck.extensions", _F, "the PCK's SGX extensions are malformed"),
    ("tdx.pck_crl", _V, "the PCK CRL is missing"),
    ("tdx.pck_crl.chain", _V, "the PCK CRL is not issued by the PCK's CA"),
    ("tdx.pck_crl.format", _F, "the PCK CRL is malformed"),
    ("tdx.pck_crl.revocation", _V, "the PCK certificate is revoked"),
    ("tdx.pck_crl.signature", _V, "the PCK CRL's signature does not verify"),
    ("tdx.pck_crl.validity", f"StaleError {_N}", "the PCK CRL is past its next update"),
    ("tdx.policy", _P, "the [tdx] policy"),
    ("tdx.policy.debug", _P, "the TD allows debugging"),
    ("tdx.policy.events", _P, "a required event is not in the replayed CCEL log"),
    ("tdx.policy.mrconfigid", _P, "MRCONFIGID is not the policy's"),
    ("tdx.policy.mrowner", _P, "MROWNER is not the policy's"),
    ("tdx.policy.mrownerconfig", _P, "MROWNERCONFIG is not the policy's"),
    ("tdx.policy.mrseam", _P, "MRSEAM is not allowed"),
    ("tdx.policy.mrtd", _P, "MRTD is not allowed"),
    ("tdx.policy.report_data", _P, "REPORTDATA is not the policy's"),
    ("tdx.policy.rtmr0", _P, "RTMR0 is not allowed"),
    ("tdx.policy.rtmr1", _P, "RTMR1 is not allowed"),
    ("tdx.policy.rtmr2", _P, "RTMR2 is not allowed"),
    ("tdx.policy.tcb_status", _P, "the TCB status is not accepted"),
    ("tdx.policy.td_attributes", _P, "TDATTRIBUTES are not the policy's"),
    ("tdx.policy.tee_tcb_svn", _P, "TEE_TCB_SVN is below the minimum"),
    ("tdx.policy.xfam", _P, "XFAM is not allowed"),
    ("tdx.qe.identity", _V, "the QE matches Intel's QE Identity"),
    ("tdx.qe.identity.chain", f"{_C} StaleError",
     "the QE Identity signer does not chain to a root"),
    ("tdx.qe.identity.format", _F, "the QE Identity is malformed"),
    ("tdx.qe.identity.signature", _V, "the QE Identity's signature does not verify"),
    ("tdx.qe.identity.validity", "StaleError", "the QE Identity is past its next update"),
    ("tdx.qe.report.signature", _S, "the QE report's signature (by the PCK) does not verify"),
    ("tdx.qe.report_data", _V, "the QE report does not bind the attestation key"),
    ("tdx.quote.format", _F, "the TDX quote is malformed"),
    ("tdx.quote.header", _V, "the quote's version, body type or length is not accepted"),
    ("tdx.quote.signature", _S, "the quote's signature (by the attestation key) does not verify"),
    ("tdx.root_crl", _V, "the Intel Root CA CRL is missing"),
    ("tdx.root_crl.format", _F, "the Root CA CRL is malformed"),
    ("tdx.root_crl.revocation", _V, "the PCK CA or TCB signing certificate is revoked"),
    ("tdx.root_crl.signature", _V, "the Root CA CRL's signature does not verify"),
    ("tdx.root_crl.validity", f"StaleError {_N}", "the Root CA CRL is past its next update"),
    ("tdx.rtmr.replay", f"{_F} {_V}", "the CCEL log does not replay to RTMR0-2"),
    ("tdx.tcb.fmspc", _V, "the TCB Info is for another platform (FMSPC)"),
    ("tdx.tcb.level", _V, "no TCB level of the TCB Info matches the platform"),
    ("tdx.tcb.module", _V, "the TDX module (MRSIGNERSEAM, attributes) is not the TCB Info's"),
    ("tdx.tcb.relaunch", "-", "the launch and current TCB statuses (TEE_TCB_SVN2)"),
    ("tdx.tcb.status", "-", "the platform's TCB status"),
    ("tdx.tcb_info", _V, "the TCB Info is missing"),
    ("tdx.tcb_info.chain", f"{_C} StaleError", "the TCB Info signer does not chain to the root"),
    ("tdx.tcb_info.format", _F, "the TCB Info is malformed"),
    ("tdx.tcb_info.signature", _V, "the TCB Info's signature does not verify"),
    ("tdx.tcb_info.validity", "StaleError", "the TCB Info is past its next update"),
    ("tdx.times", _T, "a collateral time given on the command line is unusable"),
    # tiles
    ("tiles.entry", _F, "a log entry is malformed (C2SP tlog-tiles)"),
    ("tiles.entry_bundle", _F, "an entry bundle is malformed"),
    ("tiles.hash_tile", _F, "a hash tile is malformed"),
    ("tiles.path", _F, "a tile path is malformed"),
    ("tlog_proof.format", _F, "a tlog-proof is malformed (C2SP tlog-proof)"),
    ("tls.node_key", f"NodeKeyMismatch {_T} {_F}", "the TLS server holds the bundle's node key"),
    ("trust.root", _T, "a trust root file is unusable"),
    ("trust.root.pin", _T, "an embedded root or intermediate does not match its pin"),
    ("trust.simulated", _T, "a simulated root is unusable"),
    # witness service
    ("witness.add_checkpoint", _F, "an add-checkpoint request is malformed (C2SP tlog-witness)"),
    ("witness.config", _T, "the witness configuration is unusable"),
    ("witness.key", _T, "the witness key is unusable"),
    ("witness.listen", "StartupError", "the witness's listening address cannot be bound"),
    ("witness.state_lock", "StartupError", "another witness process holds the state"),
)

CHECKS: tuple[CheckId, ...] = tuple(CheckId(i, tuple(r.split()), m) for i, r, m in _TABLE)

BEGIN = ("<!-- check-ids: generated by `python -m verifier.check_ids --markdown`; "
         "do not edit by hand -->")
END = "<!-- /check-ids -->"


def by_id() -> dict[str, CheckId]:
    """The catalogue as ``{id: CheckId}``."""
    return {c.id: c for c in CHECKS}


def markdown() -> str:
    """The table of docs/verification.md ("Check ids")."""
    rows = ["| check id | raises | meaning |", "| --- | --- | --- |"]
    for c in sorted(CHECKS, key=lambda c: c.id):
        rows.append(f"| `{c.id}` | {', '.join(c.raises)} | {c.meaning} |")
    return "\n".join(rows) + "\n"


def update(text: str) -> str:
    """``text`` with the part between :data:`BEGIN` and :data:`END` replaced by the table."""
    head, begin, rest = text.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"no {BEGIN!r} ... {END!r} markers")
    return f"{head}{BEGIN}\n{markdown()}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verifier.check_ids",
                                     description="The catalogue of attestlog's check ids.")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--markdown", action="store_true", help="print the Markdown table")
    group.add_argument("--update", metavar="FILE",
                       help="rewrite the table between the markers in FILE")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown())
        return 0
    path = Path(args.update)
    path.write_text(update(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
