"""Intel PCS v4 fetching moved to :mod:`attest.collateral.pcs_fetch` (shared with the node
agent, which staples what it fetches); these names are re-exported for the verifier's users.
What it returns is verified by :mod:`verifier.tdx.collateral`."""

from attest.collateral.pcs_fetch import (
    CHECK,
    PCS_BASE,
    ROOT_CRL_URL,
    PcsClient,
    TdxCollateral,
    pck_ca_kind,
    pck_crl_url,
    qe_identity_url,
    tcb_info_url,
)

__all__ = ["CHECK", "PCS_BASE", "ROOT_CRL_URL", "PcsClient", "TdxCollateral", "pck_ca_kind",
           "pck_crl_url", "qe_identity_url", "tcb_info_url"]
