"""OCSP for the device chain and RIM fetching, against fake services on 127.0.0.1."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from attest.collateral.rim_fetch import RimSource, driver_rim_id, vbios_rim_id
from attest.simulate.fake_service import FakeService, serve
from attest.simulate.gpu import DEVICE_ROLES, OcspResponder, SimulatedGpu
from tests.support.vectors import vector_path
from transparency_log.common.errors import (
    FetchError,
    FormatError,
    SignatureError,
    VerificationError,
)
from transparency_log.common.http_fetch import DiskCache, FetchResponse, HttpFetcher
from verifier.gpu.ocsp import (
    OcspCache,
    build_request,
    check_chain_ocsp,
    verify_response,
)

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
GPU = SimulatedGpu()
CHAIN = GPU.device_pki.certificates


def fetch_from(responder: OcspResponder):
    def fetch(url: str) -> FetchResponse:
        status, headers, body = responder.handler("GET", url, b"")
        return FetchResponse(status, body, headers)
    return fetch


def test_good_chain_over_http_with_nonce() -> None:
    responder = OcspResponder(GPU.device_pki, now=NOW - timedelta(hours=1))
    with serve(FakeService(fallback=responder.handler)) as base:
        statuses = check_chain_ocsp(CHAIN, roles=DEVICE_ROLES, at=NOW, fetch=HttpFetcher(),
                                    url=base)
    assert [s.status for s in statuses] == ["good"] * 4
    assert all(s.nonce_checked for s in statuses)
    assert responder.calls == 4


def test_answers_are_cached() -> None:
    responder = OcspResponder(GPU.device_pki, now=NOW - timedelta(hours=1))
    cache = OcspCache()
    for _ in range(3):
        check_chain_ocsp(CHAIN, roles=DEVICE_ROLES, at=NOW, fetch=fetch_from(responder),
                         cache=cache)
    assert responder.calls == 4


def test_revoked_certificate_fails() -> None:
    responder = OcspResponder(GPU.device_pki, now=NOW - timedelta(hours=1),
                              revoked={CHAIN[2].serial_number})
    with pytest.raises(VerificationError) as err:
        check_chain_ocsp(CHAIN, roles=DEVICE_ROLES, at=NOW, fetch=fetch_from(responder))
    assert err.value.check == "gpu.ocsp.revoked"
    assert err.value.field == f"{DEVICE_ROLES[2]}.ocsp.certStatus"


def test_missing_nonce_echo_fails() -> None:
    responder = OcspResponder(GPU.device_pki, now=NOW - timedelta(hours=1), echo_nonce=False)
    with pytest.raises(VerificationError) as err:
        check_chain_ocsp(CHAIN, roles=DEVICE_ROLES, at=NOW, fetch=fetch_from(responder))
    assert err.value.check == "gpu.ocsp.nonce"


def test_stale_answer_fails_freshness() -> None:
    responder = OcspResponder(GPU.device_pki, now=NOW - timedelta(days=30))
    with pytest.raises(VerificationError) as err:
        check_chain_ocsp(CHAIN, roles=DEVICE_ROLES, at=NOW, fetch=fetch_from(responder))
    assert err.value.check == "gpu.ocsp.fresh"


def test_answer_signed_by_a_stranger_fails() -> None:
    other = SimulatedGpu(seed=b"stranger")
    responder = OcspResponder(other.device_pki, now=NOW - timedelta(hours=1))
    der = responder.respond(build_request(other.device_pki.certificates[0],
                                          other.device_pki.certificates[1], None))
    with pytest.raises(SignatureError):
        verify_response(der, CHAIN[0], CHAIN[1], role="leaf", at=NOW, nonce=None)


def test_answer_for_another_certificate_fails_the_certid() -> None:
    responder = OcspResponder(GPU.device_pki, now=NOW - timedelta(hours=1))
    der = responder.respond(build_request(CHAIN[1], CHAIN[2], None))
    with pytest.raises((VerificationError, SignatureError)):
        verify_response(der, CHAIN[0], CHAIN[1], role="leaf", at=NOW, nonce=None)


def test_offline_uses_stapled_answers_and_refuses_without_them() -> None:
    import hashlib

    from cryptography.hazmat.primitives.serialization import Encoding
    responder = OcspResponder(GPU.device_pki, now=NOW - timedelta(hours=1))
    stapled = {hashlib.sha256(c.public_bytes(Encoding.DER)).digest():
               responder.respond(build_request(c, CHAIN[i + 1], None))
               for i, c in enumerate(CHAIN[:-1])}
    statuses = check_chain_ocsp(CHAIN, roles=DEVICE_ROLES, at=NOW, fetch=None, stapled=stapled)
    assert [s.nonce_checked for s in statuses] == [False] * 4
    with pytest.raises(FetchError) as err:
        check_chain_ocsp(CHAIN, roles=DEVICE_ROLES, at=NOW, fetch=None)
    assert err.value.check == "gpu.ocsp.fetch"


def test_garbage_answer_is_a_format_error() -> None:
    with pytest.raises(FormatError):
        verify_response(b"\x30\x00", CHAIN[0], CHAIN[1], role="leaf", at=NOW, nonce=None)


# --- RIM fetching ---------------------------------------------------------------------------

def test_rim_ids_follow_nvidia_naming() -> None:
    assert driver_rim_id("550.90.07") == "NV_GPU_DRIVER_GH100_550.90.07"
    assert vbios_rim_id("1010", "0200", "882", "96.00.9F.00.01") == \
        "NV_GPU_VBIOS_1010_0200_882_96009F0001"


def rim_reply(xml: bytes) -> bytes:
    return json.dumps({"id": "x", "rim": base64.b64encode(xml).decode(),
                       "rim_format": "SWID"}).encode()


def test_rim_service_fetch_and_cache(tmp_path) -> None:
    xml = vector_path("nvidia", "nvtrust", "Driver_RIM_test_no_gpu.swidtag").read_bytes()
    service = FakeService({"/v1/rim/NV_GPU_DRIVER_GH100_545.00": (200, {}, rim_reply(xml))})
    cache = DiskCache(tmp_path)
    with serve(service) as base:
        source = RimSource(fetch=HttpFetcher(retries=0), base_url=base + "/v1/rim/",
                           cache=cache)
        assert source.get("NV_GPU_DRIVER_GH100_545.00") == xml
        with pytest.raises(FetchError, match="no such RIM"):
            source.get("NV_GPU_DRIVER_GH100_1.0")
    offline = RimSource(cache=cache)
    assert offline.get("NV_GPU_DRIVER_GH100_545.00") == xml
    with pytest.raises(FetchError, match="offline"):
        offline.get("NV_GPU_DRIVER_GH100_1.0")


def test_rim_directory_and_stapled(tmp_path) -> None:
    (tmp_path / "NV_A.swidtag").write_bytes(b"<a/>")
    assert RimSource(directory=tmp_path).get("NV_A") == b"<a/>"
    assert RimSource(stapled={"NV_B": b"<b/>"}).get("NV_B") == b"<b/>"


def test_malformed_rim_service_reply() -> None:
    source = RimSource(fetch=lambda url: FetchResponse(200, b'{"rim": "***"}'))
    with pytest.raises(FormatError):
        source.get("NV_X")
