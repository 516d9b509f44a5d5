"""AMD KDS fetching moved to :mod:`attest.collateral.kds_fetch` (shared with the node agent,
which staples what it fetches); these names are re-exported for the verifier's users."""

from attest.collateral.kds_fetch import (
    CHECK,
    KDS_BASE,
    KdsClient,
    cert_chain_url,
    crl_url,
    vcek_url,
)

__all__ = ["CHECK", "KDS_BASE", "KdsClient", "cert_chain_url", "crl_url", "vcek_url"]
