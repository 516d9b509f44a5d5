"""verifier/collateral_window.py: what each kind of collateral is and its validity window."""

from __future__ import annotations

import hashlib

from tests.support.vectors import vector_path
from verifier.collateral_window import describe_collateral


def describe(*parts: str) -> dict[str, object]:
    data = vector_path(*parts).read_bytes()
    out = describe_collateral("x", data, "test").to_dict()
    assert out["sha256"] == hashlib.sha256(data).hexdigest()
    return out


def test_certificate() -> None:
    doc = describe("snp", "virtee-sev", "vcek_milan.der")
    assert doc["kind"] == "x509-certificate"
    assert doc["valid"]["until"].startswith("2030-04-03")  # type: ignore[index]


def test_crl_and_pem_chain() -> None:
    crl = describe("tdx", "go-tdx-guest", "rootcrl.der")
    assert crl["kind"] == "x509-crl"
    assert crl["valid"]["until"].startswith("2024-04-02")  # type: ignore[index]
    chain = describe("tdx", "go-tdx-guest", "tcb_info_issuer_chain.pem")
    assert chain["kind"] == "x509-chain"
    assert chain["valid"]["until"].startswith("2025-05-21")  # type: ignore[index]


def test_intel_json() -> None:
    info = describe("tdx", "go-tdx-guest", "sample_tcbInfo_response")
    assert info["kind"] == "intel-tcb-info"
    assert info["valid"] == {"from": "2023-06-18T08:42:58Z", "until": "2023-07-18T08:42:58Z"}
    assert describe("tdx", "go-tdx-guest", "sample_qeIdentity_response")["kind"] == \
        "intel-qe-identity"


def test_rim_and_unknown() -> None:
    assert describe("nvidia", "nvtrust", "Driver_RIM_test_no_gpu.swidtag")["kind"] == \
        "nvidia-rim"
    for blob, kind in ((b"\x30\x03\x02\x01\x00", "opaque"), (b"{not json", "json"),
                       (b"hello", "opaque")):
        doc = describe_collateral("y", blob).to_dict()
        assert doc["kind"] == kind and "valid" not in doc
