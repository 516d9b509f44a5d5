"""Vendor collateral fetchers shared by the node agent (which staples) and the verifier (which
fetches what was not stapled): AMD KDS, Intel PCS v4, NVIDIA RIM service, OCSP.

Fetching only: URL building, an injected :data:`transparency_log.common.http_fetch.Fetch` callable
and a :class:`~transparency_log.common.http_fetch.DiskCache`. Nothing here judges what it fetched;
the verifier checks collateral from any source (stapled, cache, fetched) the same way.
"""
