"""Issue 15: certificates, bundles and CRLs are parsed once per exact bytes, whichever check
asks; a refusal is never memoized, so every caller is refused under its own check id and
field, every time; one certificate met in several bundles is decoded once."""

from __future__ import annotations

import pytest

from attest.certificates import clear_parse_memos, load_crl, load_pem_bundle, name_text
from tests.support.tdx_support import read
from transparency_log.common.errors import FormatError


def _cut(pem: bytes) -> bytes:
    """The bundle with its last PEM block cut off (built at run time)."""
    return pem[: pem.rindex(b"-----END ") - 10]


@pytest.mark.parametrize("check, field", [("tdx.tcb_info.chain", "tcb_info_issuer_chain"),
                                          ("tdx.qe.identity.chain", "qe_identity_issuer_chain")])
def test_a_refused_bundle_is_refused_under_each_callers_check_every_time(check: str,
                                                                         field: str) -> None:
    bad = _cut(read("tcb_info_issuer_chain.pem"))
    for other in ("tdx.pck_crl.chain", check, "tdx.pck.chain", check):
        want = check if other == check else other
        with pytest.raises(FormatError) as err:
            load_pem_bundle(bad, check=want, field=field)
        assert err.value.check == want and err.value.field == field


def test_a_refused_crl_names_each_callers_check() -> None:
    bad = read("rootcrl.der")[:-7]
    for check in ("tdx.root_crl.format", "tdx.pck_crl.format", "tdx.root_crl.format"):
        with pytest.raises(FormatError) as err:
            load_crl(bad, check=check, field="crl")
        assert err.value.check == check


def test_one_certificate_in_several_bundles_is_one_decoded_instance() -> None:
    clear_parse_memos()
    tcb = load_pem_bundle(read("tcb_info_issuer_chain.pem"), check="a", field="a")
    crl_chain = load_pem_bundle(read("pck_crl_issuer_chain.pem"), check="b", field="b")
    root_in_tcb, root_in_crl = tcb[-1], crl_chain[-1]
    assert root_in_tcb == root_in_crl and root_in_tcb is root_in_crl
    assert name_text(root_in_tcb) == root_in_tcb.subject.rfc4514_string()
    assert name_text(tcb[0], "issuer") == tcb[0].issuer.rfc4514_string()
