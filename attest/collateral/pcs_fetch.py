"""Intel PCS v4 collateral for TDX: TCB Info by FMSPC, TD QE Identity, PCK CRL, Root CA CRL.

Intel SGX and TDX Provisioning Certification Service API v4:
- ``GET {base}/tdx/certification/v4/tcb?fmspc={hex}``: TCB Info JSON; the signer's chain
  (PEM, URL-encoded) is in the ``TCB-Info-Issuer-Chain`` header;
- ``GET {base}/tdx/certification/v4/qe/identity``: TD QE Identity JSON; chain in
  ``SGX-Enclave-Identity-Issuer-Chain``;
- ``GET {base}/sgx/certification/v4/pckcrl?ca={platform|processor}&encoding=der``: PCK CRL;
  chain in ``SGX-PCK-CRL-Issuer-Chain``;
- the Root CA CRL at the CRL distribution point of the Intel SGX Root CA.

The client takes a :data:`~transparency_log.common.http_fetch.Fetch` callable (only cli modules wire
in ``HttpFetcher``); ``fetch=None`` is offline mode: the cache only. Whatever comes from
here is verified exactly like stapled collateral (verifier.tdx.collateral); fetching never
decides validity, and an unreachable PCS is a FetchError, never "invalid".

Lives in ``attest`` so the node agent can staple what it fetches (DESIGN.md: attest never
imports verifier); the verifier uses it too, for collateral a node did not staple.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from attest.collateral.kds_fetch import SourceHook
from transparency_log.common.errors import FetchError
from transparency_log.common.http_fetch import DiskCache, Fetch

PCS_BASE = "https://api.trustedservices.intel.com"
ROOT_CRL_URL = "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"
CHECK = "tdx.collateral.fetch"


@dataclass(frozen=True)
class TdxCollateral:
    """Raw collateral as served by Intel PCS (or stapled by the node); unverified bytes.
    The field names are the bundle's TDX collateral roles (docs/formats.md)."""

    tcb_info: bytes | None = None
    tcb_info_issuer_chain: bytes | None = None
    qe_identity: bytes | None = None
    qe_identity_issuer_chain: bytes | None = None
    pck_crl: bytes | None = None
    pck_crl_issuer_chain: bytes | None = None
    root_crl: bytes | None = None


def tcb_info_url(base: str, fmspc: bytes) -> str:
    return f"{base}/tdx/certification/v4/tcb?fmspc={fmspc.hex()}"


def qe_identity_url(base: str) -> str:
    return f"{base}/tdx/certification/v4/qe/identity"


def pck_crl_url(base: str, ca: str) -> str:
    if ca not in ("platform", "processor"):
        raise ValueError(f"unknown PCK CA {ca!r}")
    return f"{base}/sgx/certification/v4/pckcrl?ca={ca}&encoding=der"


def pck_ca_kind(issuer_common_name: str) -> str:
    """``platform`` or ``processor`` from the PCK leaf's issuer CN (PCK profile spec 1.2)."""
    return "processor" if "Processor" in issuer_common_name else "platform"


class PcsClient:
    """Fetch (or read from cache) the TDX collateral for one platform.

    Cache first: a cached item is used as is unless ``refresh`` is set (stale collateral is
    then refused by the verifier, and a refresh fetches anew). Each item is cached under its
    URL; the issuer chain under the URL plus ``#issuer-chain``.

    No state changes after construction (safe to share between threads): each call takes its
    own ``on_get`` hook, called with (url, "cache" | "fetched", body) for what it returns.
    """

    def __init__(self, fetch: Fetch | None, *, cache: DiskCache | None = None,
                 base: str = PCS_BASE, root_crl_url: str = ROOT_CRL_URL,
                 refresh: bool = False) -> None:
        self.fetch = fetch
        self.cache = cache
        self.base = base.rstrip("/")
        self.root_crl_url = root_crl_url
        self.refresh = refresh

    def _get(self, url: str, chain_header: str | None,
             on_get: SourceHook | None) -> tuple[bytes, bytes | None]:
        chain_key = url + "#issuer-chain"
        if self.cache is not None and not self.refresh:
            body = self.cache.get(url)
            chain = self.cache.get(chain_key) if chain_header else None
            if body is not None and (chain_header is None or chain is not None):
                if on_get is not None:
                    on_get(url, "cache", body)
                return body, chain
        if self.fetch is None:
            raise FetchError(CHECK, "offline and not in the cache", field=url)
        resp = self.fetch(url)
        if resp.status != 200:
            raise FetchError(CHECK, f"PCS answered HTTP {resp.status}", field=url)
        chain_bytes = None
        if chain_header is not None:
            value = resp.header(chain_header)
            if not value:
                raise FetchError(CHECK, "issuer chain header missing", field=chain_header)
            chain_bytes = unquote(value, errors="strict").encode("ascii")
        if self.cache is not None:
            self.cache.put(url, resp.body)
            if chain_bytes is not None:
                self.cache.put(chain_key, chain_bytes)
        if on_get is not None:
            on_get(url, "fetched", resp.body)
        return resp.body, chain_bytes

    def tcb_info(self, fmspc: bytes, *,
                 on_get: SourceHook | None = None) -> tuple[bytes, bytes | None]:
        """TCB Info JSON for ``fmspc`` and its issuer chain (PEM)."""
        return self._get(tcb_info_url(self.base, fmspc), "TCB-Info-Issuer-Chain", on_get)

    def qe_identity(self, *, on_get: SourceHook | None = None) -> tuple[bytes, bytes | None]:
        """TD QE Identity JSON and its issuer chain (PEM)."""
        return self._get(qe_identity_url(self.base), "SGX-Enclave-Identity-Issuer-Chain",
                         on_get)

    def pck_crl(self, pck_ca: str = "platform", *,
                on_get: SourceHook | None = None) -> tuple[bytes, bytes | None]:
        """The PCK CRL (DER) of the ``platform`` or ``processor`` CA and its issuer chain."""
        return self._get(pck_crl_url(self.base, pck_ca), "SGX-PCK-CRL-Issuer-Chain", on_get)

    def root_crl(self, *, on_get: SourceHook | None = None) -> bytes:
        """The Intel SGX Root CA CRL (DER)."""
        return self._get(self.root_crl_url, None, on_get)[0]

    def collateral(self, fmspc: bytes, *, pck_ca: str = "platform",
                   on_get: SourceHook | None = None) -> TdxCollateral:
        tcb, tcb_chain = self.tcb_info(fmspc, on_get=on_get)
        qe, qe_chain = self.qe_identity(on_get=on_get)
        crl, crl_chain = self.pck_crl(pck_ca, on_get=on_get)
        return TdxCollateral(tcb, tcb_chain, qe, qe_chain, crl, crl_chain,
                             self.root_crl(on_get=on_get))
