"""The embedded AMD roots: pinned, and each intermediate verifies under its ARK."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.support.snp_fixtures import AT, vec
from transparency_log.common.errors import TrustConfigError
from verifier.snp import roots as roots_mod
from verifier.snp.roots import PINS, amd_roots
from verifier.x509chain import pinned_root, verify_chain


@pytest.mark.parametrize("product", ["Milan", "Genoa", "Turin"])
def test_embedded_intermediates_chain_to_the_pinned_ark(product: str) -> None:
    r = amd_roots()[product]
    assert r.ark.fingerprint.hex() == PINS[product][0] and not r.simulated
    for mid, role in ((r.ask, "ASK"), (r.asvk, "ASVK")):
        path, root, _ = verify_chain([mid], [r.ark], at=AT, check="snp.vcek.chain",
                                  roles=[role, "ARK"])
        assert root is r.ark and len(path) == 2


def test_embedded_roots_equal_the_published_bundles() -> None:
    for product, bundle in (("Milan", "ask_ark_milan.pem"), ("Genoa", "ask_ark_genoa.pem"),
                            ("Turin", "ask_ark_turin_vcek.pem")):
        ask, ark = x509.load_pem_x509_certificates(vec(f"amd-roots/{bundle}"))
        r = amd_roots()[product]
        assert (r.ask, r.ark.certificate) == (ask, ark)


def test_a_root_that_does_not_match_its_pin_is_refused() -> None:
    ark = amd_roots()["Milan"].ark.certificate.public_bytes(Encoding.DER)
    with pytest.raises(TrustConfigError):
        pinned_root("ARK-Milan", ark, PINS["Genoa"][0])
    with pytest.raises(TrustConfigError):
        roots_mod._pinned(amd_roots()["Milan"].ask, PINS["Milan"][2], "ASK-Milan")
