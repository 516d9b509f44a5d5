"""Sample evidence bundles for tests/test_bundle_*.py and tests/test_binding*.py.

Built from the real vectors in tests/vectors (SNP report + VCEK/ASK/ARK, TDX quote + PCS
collateral, H100 SPDM report + device chain + RIMs); the binding values are not those real
reports' (the binding tests pass REPORT_DATA and GPU nonces in explicitly).
"""

from __future__ import annotations

import base64
import re

from attest.formats.bundle import (
    EvidenceBundle,
    GpuEvidence,
    GpuState,
    SnpEvidence,
    TdxEvidence,
)
from tests.support.vectors import vector_path

NONCE = bytes(range(32))
# An Ed25519 SubjectPublicKeyInfo (RFC 8410 §4): SEQUENCE { AlgorithmIdentifier, BIT STRING }.
NODE_KEY = bytes.fromhex("302a300506032b6570032100") + bytes(range(0x20, 0x40))
OTHER_NODE_KEY = bytes.fromhex("302a300506032b6570032100") + bytes(range(0x40, 0x60))
RELEASE = b'{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[]}'
TLOG_PROOF = (b"c2sp.org/tlog-proof@v1\nindex 0\n\nexample.com/log\n1\n"
              b"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n")


def pem_blocks(path: str, *parts: str) -> list[bytes]:
    text = vector_path(path, *parts).read_text()
    return [base64.b64decode(m) for m in
            re.findall(r"-----BEGIN CERTIFICATE-----(.*?)-----END", text, re.S)]


def snp_item() -> SnpEvidence:
    ask, ark = pem_blocks("snp", "amd-roots", "ask_ark_milan.pem")
    return SnpEvidence(
        report=vector_path("snp", "virtee-sev", "report_milan.bin").read_bytes(),
        certs={"vcek": vector_path("snp", "virtee-sev", "vcek_milan.der").read_bytes(),
               "ask": ask, "ark": ark})


def tdx_item() -> TdxEvidence:
    return TdxEvidence(
        quote=vector_path("tdx", "go-tdx-guest", "tdx_prod_quote_SPR_E4.dat").read_bytes(),
        collateral={"tcb_info": "intel/tcb_info", "qe_identity": "intel/qe_identity",
                    "pck_crl": "intel/pck_crl", "root_crl": "intel/root_crl",
                    "pck_crl_issuer_chain": "intel/pck_crl_issuer_chain"})


def tdx_collateral() -> dict[str, bytes]:
    def read(name: str) -> bytes:
        return vector_path("tdx", "go-tdx-guest", name).read_bytes()

    return {"intel/tcb_info": read("sample_tcbInfo_response"),
            "intel/qe_identity": read("sample_qeIdentity_response"),
            "intel/pck_crl": read("pckcrl"), "intel/root_crl": read("rootcrl.der"),
            "intel/pck_crl_issuer_chain": read("pck_crl_issuer_chain.pem")}


def gpu_report() -> bytes:
    hex_text = vector_path("nvidia", "nvtrust", "hopperAttestationReport.txt").read_text()
    return bytes.fromhex(hex_text.strip())


def gpu_item(index: int, report: bytes | None = None) -> GpuEvidence:
    return GpuEvidence(
        index=index,
        report=gpu_report() if report is None else report,
        cert_chain=vector_path("nvidia", "nvtrust", "hopperCertChain.txt").read_bytes(),
        rims={"driver": "nvidia/rim/driver", "vbios": "nvidia/rim/vbios"})


def gpu_collateral() -> dict[str, bytes]:
    return {
        "nvidia/rim/driver":
            vector_path("nvidia", "nvtrust", "Driver_RIM_test_no_gpu.swidtag").read_bytes(),
        "nvidia/rim/vbios":
            vector_path("nvidia", "nvtrust", "1010_0200_882_96005E0001_PROD.swidtag").read_bytes(),
    }


def snp_bundle(gpus: int = 2, **overrides: object) -> EvidenceBundle:
    """SEV-SNP + ``gpus`` H100s, all from real vectors."""
    fields: dict[str, object] = {
        "nonce": NONCE, "node_key": NODE_KEY, "simulated": False,
        "evidence": (snp_item(), *(gpu_item(i) for i in range(gpus))),
        "release": RELEASE, "tlog_proof": TLOG_PROOF,
        "collateral": gpu_collateral() if gpus else {},
        "gpu_state": GpuState("on", gpus) if gpus else GpuState(),
    }
    fields.update(overrides)
    return EvidenceBundle(**fields)  # type: ignore[arg-type]


def tdx_bundle() -> EvidenceBundle:
    return EvidenceBundle(nonce=bytes(64), node_key=NODE_KEY, simulated=True,
                          evidence=(tdx_item(), gpu_item(3)), release=RELEASE,
                          tlog_proof=TLOG_PROOF,
                          collateral={**tdx_collateral(), **gpu_collateral()},
                          gpu_state=GpuState("on", 4))


def docs_example() -> EvidenceBundle:
    """The worked example of docs/formats.md, "Evidence bundle (CBOR)" (placeholder blobs)."""
    return EvidenceBundle(
        nonce=bytes(range(32)), node_key=NODE_KEY, simulated=True,
        evidence=(TdxEvidence(quote=b"QUOTE", collateral={"tcb_info": "intel/tcb"}),
                  GpuEvidence(index=0, report=b"SPDM", cert_chain=b"PEM",
                              rims={"driver": "nv/drv"}, ocsp=())),
        release=b"{}", tlog_proof=b"PROOF",
        collateral={"intel/tcb": b"{}", "nv/drv": b"<rim/>"},
        gpu_state=GpuState(cc_mode="on", attached=1))
