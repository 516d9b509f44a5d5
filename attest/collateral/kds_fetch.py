"""AMD Key Distribution Service (KDS) collateral: VCEKs, cert chains and CRLs.

URLs (AMD KDS interface spec 57230, "KDS Interface") are built by pure functions:

- ``{base}/vcek/v1/{product}/{hwid}?blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..`` — Turin adds
  ``fmcSPL`` first and uses the 8-byte hwID; values are decimal;
- ``{base}/{vcek|vlek}/v1/{product}/cert_chain`` (PEM: ASK or ASVK, then ARK);
- ``{base}/{vcek|vlek}/v1/{product}/crl`` (DER CRL signed by the ARK).

:class:`KdsClient` reads through a :class:`DiskCache` (VCEKs keyed by product, chip and TCB, so
each is fetched once) and a :data:`Fetch` callable (``HttpFetcher`` in the CLI: timeouts,
retries, 429 back-off). With no fetch callable it is offline and serves the cache only.
Whatever it returns is verified exactly like certificates a node staples (verifier/snp).
A client holds no per-call state (the ``on_get`` hook is an argument of each call), so one
client may serve many threads.
Lives in ``attest`` so the node agent can staple what it fetches; the verifier uses it
too, for collateral a node did not staple.
"""

from __future__ import annotations

from collections.abc import Callable

from attest.formats.snp_report import TURIN, TcbVersion
from transparency_log.common.errors import FetchError
from transparency_log.common.http_fetch import DiskCache, Fetch

SourceHook = Callable[[str, str, bytes], None]
"""``(url, source, body)`` after each read: source ``cache`` or ``fetched`` (transcripts)."""

KDS_BASE = "https://kdsintf.amd.com"
CHECK = "snp.kds.fetch"


def vcek_url(product: str, hwid: bytes, tcb: TcbVersion, *, base: str = KDS_BASE) -> str:
    """The KDS URL of the VCEK for this chip at this TCB (use REPORTED_TCB)."""
    if product == TURIN:
        hwid = hwid[:8]
        query = (f"fmcSPL={tcb.FMC or 0}&blSPL={tcb.BOOT_LOADER}&teeSPL={tcb.TEE}"
                 f"&snpSPL={tcb.SNP}&ucodeSPL={tcb.MICROCODE}")
    else:
        query = (f"blSPL={tcb.BOOT_LOADER}&teeSPL={tcb.TEE}&snpSPL={tcb.SNP}"
                 f"&ucodeSPL={tcb.MICROCODE}")
    return f"{base}/vcek/v1/{product}/{hwid.hex()}?{query}"


def cert_chain_url(product: str, kind: str = "vcek", *, base: str = KDS_BASE) -> str:
    return f"{base}/{kind}/v1/{product}/cert_chain"


def crl_url(product: str, kind: str = "vcek", *, base: str = KDS_BASE) -> str:
    return f"{base}/{kind}/v1/{product}/crl"


class KdsClient:
    """Cache-then-network access to KDS. ``fetch=None`` is offline mode."""

    def __init__(self, fetch: Fetch | None = None, cache: DiskCache | None = None, *,
                 base: str = KDS_BASE) -> None:
        self.fetch = fetch
        self.cache = cache
        self.base = base.rstrip("/")

    @property
    def offline(self) -> bool:
        return self.fetch is None

    def _get(self, key: str, url: str, on_get: SourceHook | None, *,
             prefer_network: bool = False) -> bytes:
        def seen(source: str, body: bytes) -> bytes:
            if on_get is not None:
                on_get(url, source, body)
            return body

        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None and not (prefer_network and self.fetch is not None):
            return seen("cache", cached)
        if self.fetch is None:
            if cached is not None:
                return seen("cache", cached)
            raise FetchError(CHECK, "offline and not in the cache", field=url)
        resp = self.fetch(url)
        if resp.status != 200 or not resp.body:
            if cached is not None:
                return seen("cache", cached)
            raise FetchError(CHECK, f"KDS answered HTTP {resp.status}", field=url)
        if self.cache is not None:
            self.cache.put(key, resp.body)
        return seen("fetched", resp.body)

    def vcek(self, product: str, hwid: bytes, tcb: TcbVersion, *,
             on_get: SourceHook | None = None) -> bytes:
        """The VCEK (DER) for ``hwid`` (CHIP_ID; its first 8 bytes on Turin) at ``tcb``;
        ``on_get`` hears where it came from."""
        hwid = hwid[:8] if product == TURIN else hwid
        url = vcek_url(product, hwid, tcb, base=self.base)
        return self._get(f"snp/vcek/{product}/{hwid.hex()}/{tcb.raw:016x}", url, on_get)

    def cert_chain(self, product: str, kind: str = "vcek", *,
                   on_get: SourceHook | None = None) -> bytes:
        """The ASK (or ASVK) + ARK PEM bundle."""
        return self._get(f"snp/{kind}/{product}/cert_chain",
                         cert_chain_url(product, kind, base=self.base), on_get)

    def crl(self, product: str, kind: str = "vcek", *,
            on_get: SourceHook | None = None) -> bytes:
        """The product's CRL; online, always refreshed from KDS (the cache is the fallback)."""
        return self._get(f"snp/{kind}/{product}/crl", crl_url(product, kind, base=self.base),
                         on_get, prefer_network=True)
