"""Every parser the repository keeps, as fuzz targets (tests/test_fuzz_parsers.py).

Each target is ``bytes -> anything`` with seeds taken from the real vectors (tests/vectors) or,
where none exist, from valid simulated or fixture samples. Parsers of structured values
(PCS JSON, KDS extension maps, NRAS tokens, keys) are wrapped so that the fuzzed bytes reach
them the way they arrive on the wire. docs/fuzzing.md lists the targets by area.
"""

from __future__ import annotations

import base64
import json
import warnings
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from cryptography import x509

from attest.agent.config import parse_config
from attest.agent.nonce import parse_time_nonce
from attest.certificates import load_crl as load_x509_crl
from attest.certificates import load_pem_bundle
from attest.collateral.rim_fetch import decode_rim_service_reply
from attest.formats import der
from attest.formats.bundle import decode_bundle, encode_bundle
from attest.formats.cbor_scan import scan
from attest.formats.ccel import parse_ccel_table, parse_event_log
from attest.formats.intel_pcs import parse_qe_identity_response, parse_tcb_info_response
from attest.formats.nvidia_opaque import parse_opaque
from attest.formats.nvidia_rim import parse_rim
from attest.formats.sgx_pck_extensions import parse_sgx_extensions
from attest.formats.snp_certtable import (
    CertTable,
    CertTableEntry,
    parse_cert_table,
    serialize_cert_table,
)
from attest.formats.snp_kds_ext import parse_kds_extensions
from attest.formats.snp_report import parse_report
from attest.formats.spdm_measurements import parse_report as parse_spdm_report
from attest.formats.spdm_measurements import parse_report_text, parse_request
from attest.formats.tdx_quote import parse_quote
from attest.measure.snp_launch import OvmfImage
from attest.release import canonical_json
from attest.release.dsse import open_entry, parse_entry
from attest.release.keys import ReleasePublicKey, ReleaseSigningKey
from attest.release.statement import parse_statement
from tests.support.bundle_samples import snp_bundle, tdx_bundle
from tests.support.fuzz_support import Target
from tests.support.fuzz_tlog import TLOG_PARSERS
from tests.support.log_fixtures import (
    RELEASE_KEY,
    policy_toml,
    release_entry,
    revocation_entry,
)
from tests.support.tdx_support import GCP, SPR_E4, V5, read
from tests.support.vectors import vector_path
from verifier.gpu.nras import parse_nras_answer
from verifier.snp.chain import kds_extensions, load_key_certificate
from verifier.snp.crl import load_crl as load_snp_crl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _vec(*parts: str) -> bytes:
    return vector_path(*parts).read_bytes()


# --------------------------------------------------------------------------- seeds


@cache
def snp_reports() -> tuple[bytes, ...]:
    from tests.support.snp_fixtures import sim
    return (_vec("snp", "virtee-sev", "report_milan.bin"),
            _vec("snp", "trustee", "test-report.bin"),
            _vec("snp", "go-sev-guest", "attestation.bin")[:1184], sim("Genoa").report())


@cache
def vceks() -> tuple[bytes, ...]:
    return (_vec("snp", "virtee-sev", "vcek_milan.der"),
            _vec("snp", "virtee-sev", "vcek_turin.der"),
            _vec("snp", "trustee", "test-vcek.der"), _vec("snp", "go-sev-guest", "vcek.testcer"))


@cache
def cert_tables() -> tuple[bytes, ...]:
    from attest.formats.snp_certtable import NAME_GUIDS
    ask_ark = _vec("snp", "amd-roots", "ask_ark_milan.pem")
    table = CertTable((CertTableEntry(NAME_GUIDS["VCEK"], vceks()[0]),
                       CertTableEntry(NAME_GUIDS["ASK"], ask_ark[:600]),
                       CertTableEntry(NAME_GUIDS["ARK"], ask_ark[600:1200])))
    return (serialize_cert_table(table), serialize_cert_table(CertTable(table.entries[:1])))


def _kds_values(cert_der: bytes) -> dict[str, bytes]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # AMD VCEKs have non-positive serial numbers
        cert = x509.load_der_x509_certificate(cert_der)
    return {e.oid.dotted_string: e.value.value for e in cert.extensions
            if isinstance(e.value, x509.UnrecognizedExtension)}


@cache
def kds_maps() -> tuple[bytes, ...]:
    """KDS extension maps as canonical JSON ``{oid: hex}`` so that one blob carries a map."""
    return tuple(json.dumps({k: v.hex() for k, v in _kds_values(c).items()},
                            sort_keys=True).encode() for c in vceks())


def parse_kds_map(data: bytes) -> Any:
    try:
        value = json.loads(data)
        values = {str(k): bytes.fromhex(v) for k, v in value.items()}
    except (ValueError, AttributeError, TypeError, RecursionError):
        return None  # not a map: nothing reaches the parser
    return parse_kds_extensions(values)


def vcek_extensions(data: bytes) -> Any:
    return kds_extensions(load_key_certificate(data, "VCEK"))


@cache
def tdx_quotes() -> tuple[bytes, ...]:
    return (read(SPR_E4), read(V5), read(GCP))


@cache
def pck_extensions() -> tuple[bytes, ...]:
    out = []
    for q in tdx_quotes()[:2]:
        pem = q[q.find(b"-----BEGIN"):]
        leaf = x509.load_pem_x509_certificate(pem)
        out.extend(e.value.value for e in leaf.extensions
                   if e.oid.dotted_string == "1.2.840.113741.1.13.1")
    return tuple(out)


@cache
def gpu_reports() -> tuple[bytes, ...]:
    from tests.support.bundle_samples import gpu_report
    return (gpu_report(),)


@cache
def opaque_blobs() -> tuple[bytes, ...]:
    return tuple(parse_spdm_report(r).response.opaque_data for r in gpu_reports())


@cache
def rims() -> tuple[bytes, ...]:
    return (_vec("nvidia", "nvtrust", "Driver_RIM_test_no_gpu.swidtag"),
            _vec("nvidia", "nvtrust", "1010_0200_882_96005E0001_PROD.swidtag")[:30000])


@cache
def bundles() -> tuple[bytes, ...]:
    return (encode_bundle(snp_bundle(gpus=1)), encode_bundle(tdx_bundle()))


@cache
def release_entries() -> tuple[bytes, ...]:
    rel = release_entry(0)
    return (rel, release_entry(1), revocation_entry(rel))


@cache
def statements() -> tuple[bytes, ...]:
    return tuple(parse_entry(e).payload for e in release_entries())


def open_release_entry(data: bytes) -> Any:
    return open_entry(data, [RELEASE_KEY.public])


def release_public_key(data: bytes) -> Any:
    return ReleasePublicKey.from_text(data.decode("utf-8", "surrogateescape"))


@cache
def release_keys() -> tuple[bytes, ...]:
    from attest.release.keys import ALG_P256, generate_signing_key
    p256 = generate_signing_key(ALG_P256)
    return (RELEASE_KEY.public.to_text().encode(), p256.public.to_text().encode())


@cache
def signing_keys() -> tuple[bytes, ...]:
    return (RELEASE_KEY.to_pem(),)


def policy(data: bytes) -> Any:
    from verifier.policy import parse_policy
    return parse_policy(data, base_dir=EXAMPLES)


@cache
def policies() -> tuple[bytes, ...]:
    return ((EXAMPLES / "policy.example.toml").read_bytes(), policy_toml().encode())


def agent_config(data: bytes) -> Any:
    return parse_config(data, EXAMPLES)


@cache
def nras_answers() -> tuple[bytes, ...]:
    (_, overall), detached = _sim_nras_answer()
    return (json.dumps([["JWT", overall], detached]).encode(),
            json.dumps([["JWT", "a.b.c"], {"GPU-0": "d.e.f", "GPU-1": "g.h.i"}]).encode())


NRAS_AT = datetime(2026, 1, 1, tzinfo=UTC)


@cache
def _nras_pki() -> Any:
    from attest.simulate.gpu import make_rim_pki
    return make_rim_pki(b"fuzz-nras")


@cache
def _sim_nras_answer() -> Any:
    from attest.simulate.gpu_nras import good_gpu_claims
    from attest.simulate.gpu_nras import nras_tokens as make_tokens
    return make_tokens(_nras_pki(), "k1", nonce=bytes(32), now=NRAS_AT,
                       gpu_claims={"GPU-0": good_gpu_claims(bytes(32))})


@cache
def nras_tokens() -> tuple[bytes, ...]:
    (_, overall), detached = _sim_nras_answer()
    return (overall.encode(), *(t.encode() for t in detached.values()))


def nras_token(data: bytes) -> Any:
    """The bytes as the str a JSON answer gives (lone surrogates included), then verified."""
    from attest.simulate.gpu_nras import jwks_for
    from verifier.gpu.nras import verify_token
    from verifier.x509chain import fingerprint, pinned_root
    pki = _nras_pki()
    root = pinned_root("nras", pki.root_pem(), fingerprint(pki.root).hex())
    try:
        token = data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        token = data.decode("utf-8", "surrogateescape")
    return verify_token(token, jwks=jwks_for(pki, "k1"),
                        roots=[root], at=NRAS_AT, nonce=bytes(32))


@cache
def _ocsp_pki() -> Any:
    from attest.simulate.gpu import make_chain
    return make_chain(b"fuzz-ocsp", ("leaf", "ca", "root"))


@cache
def ocsp_answers() -> tuple[bytes, ...]:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp

    from attest.simulate.gpu import OcspResponder
    pki = _ocsp_pki()
    out = []
    for nonce in (None, bytes(16)):
        builder = ocsp.OCSPRequestBuilder().add_certificate(
            pki.certificates[0], pki.certificates[1], hashes.SHA384())
        if nonce:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        request = builder.build().public_bytes(serialization.Encoding.DER)
        out.append(OcspResponder(pki, NRAS_AT).respond(request))
    return tuple(out)


def ocsp_answer(data: bytes) -> Any:
    from verifier.gpu.ocsp import verify_response
    pki = _ocsp_pki()
    return verify_response(data, pki.certificates[0], pki.certificates[1], role="leaf",
                           at=NRAS_AT, nonce=None)


@cache
def crls() -> tuple[bytes, ...]:
    return (_vec("tdx", "go-tdx-guest", "rootcrl.der"), _vec("tdx", "go-tdx-guest", "pckcrl"))


def tdx_crl(data: bytes) -> Any:
    return load_x509_crl(data, check="tdx.crl.format", field="CRL")


def pem_bundle(data: bytes) -> Any:
    return load_pem_bundle(data, check="x509.format", field="chain")


@cache
def pem_chains() -> tuple[bytes, ...]:
    return (_vec("nvidia", "nvtrust", "hopperCertChain.txt"),
            _vec("tdx", "go-tdx-guest", "tcb_info_issuer_chain.pem"))


def der_walk(data: bytes) -> Any:
    """Every DER helper over one blob: a TLV, a single element, an INTEGER, an OID."""
    tag, contents = der.read_single(data, check="der", field="DER")
    if tag == 0x02:
        der.decode_uint(contents, check="der", field="INTEGER")
    elif tag == 0x06:
        der.decode_oid(contents, check="der")
    return tag


def cbor_scan(data: bytes) -> Any:
    return scan(data, check_cbor="cbor", check_canonical="cbor.canonical", field="cbor",
                max_items=8192, max_depth=16)


def ovmf(data: bytes) -> Any:
    return OvmfImage.parse(data)


@cache
def ovmf_suffixes() -> tuple[bytes, ...]:
    return (_vec("snp", "sev-snp-measure", "ovmf_AmdSev_suffix.bin"),
            _vec("snp", "sev-snp-measure", "ovmf_OvmfX64_suffix.bin"))


def rim_reply(data: bytes) -> Any:
    return decode_rim_service_reply(data, "rim")


@cache
def rim_replies() -> tuple[bytes, ...]:
    return (json.dumps({"id": "rim", "rim": base64.b64encode(rims()[0][:2000]).decode(),
                        "sha256": "00"}).encode(),)


def time_nonces() -> tuple[bytes, ...]:
    from attest.agent.nonce import time_nonce
    return (time_nonce(1_800_000_000, bytes(8)), time_nonce(0, bytes(range(8))))


def signing_key(data: bytes) -> Any:
    return ReleaseSigningKey.from_pem(data)


PARSERS: tuple[Target, ...] = (
    # attest/formats
    Target("snp_report", parse_report, snp_reports),
    Target("snp_certtable", parse_cert_table, cert_tables),
    Target("snp_kds_ext", parse_kds_map, kds_maps),
    Target("snp_vcek_extensions", vcek_extensions, vceks),
    Target("tdx_quote", parse_quote, tdx_quotes),
    Target("sgx_pck_extensions", parse_sgx_extensions, pck_extensions),
    Target("ccel_table", parse_ccel_table, lambda: (read("ccel_ccel_table.dat"),)),
    Target("ccel_event_log", parse_event_log, lambda: (read("ccel_ccel_data.dat"),)),
    Target("spdm_report", parse_spdm_report, gpu_reports),
    Target("spdm_request", parse_request, lambda: tuple(r[:37] for r in gpu_reports())),
    Target("spdm_report_text", parse_report_text,
           lambda: (_vec("nvidia", "nvtrust", "hopperAttestationReport.txt")[:3000],)),
    Target("nvidia_opaque", parse_opaque, opaque_blobs),
    Target("nvidia_rim", parse_rim, rims, examples=25),
    Target("bundle_cbor", decode_bundle, bundles),
    Target("cbor_scan", cbor_scan, bundles),
    Target("der", der_walk, lambda: (*vceks()[:1], *pck_extensions())),
    *TLOG_PARSERS,
    # attest/release
    Target("release_entry_dsse", parse_entry, release_entries),
    Target("release_entry_open", open_release_entry, release_entries),
    Target("statement", parse_statement, statements),
    Target("canonical_json", canonical_json.decode, statements),
    Target("release_public_key", release_public_key, release_keys),
    Target("release_signing_key", signing_key, signing_keys, examples=20),
    # verifier and node configuration
    Target("verifier_policy", policy, policies),
    Target("agent_config", agent_config,
           lambda: ((EXAMPLES / "agent.example.toml").read_bytes(),)),
    Target("tdx_tcb_info", parse_tcb_info_response,
           lambda: (read("sample_tcbinfo_response_v5"), read("sample_tcbInfo_response"))),
    Target("tdx_qe_identity", parse_qe_identity_response,
           lambda: (read("sample_qeIdentity_response"),)),
    Target("tdx_crl", tdx_crl, crls),
    Target("snp_crl", load_snp_crl, crls),
    Target("x509_pem_bundle", pem_bundle, pem_chains, examples=25),
    Target("nras_answer", parse_nras_answer, nras_answers),
    Target("nras_token", nras_token, nras_tokens, examples=25),
    Target("gpu_ocsp", ocsp_answer, ocsp_answers, examples=25),
    Target("rim_service_reply", rim_reply, rim_replies),
    Target("time_nonce", parse_time_nonce, time_nonces),
    Target("ovmf_image", ovmf, ovmf_suffixes, examples=25),
)
