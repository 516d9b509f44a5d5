"""A fake AMD KDS on 127.0.0.1 serving simulated collateral at the real paths:

- ``/vcek/v1/{product}/{hwid}?[fmcSPL=..&]blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..`` (DER VCEK,
  404 for an unknown chip, 400 for a malformed query);
- ``/{vcek|vlek}/v1/{product}/cert_chain`` (PEM) and ``/{vcek|vlek}/v1/{product}/crl`` (DER).

``throttle=n`` answers the first ``n`` requests with 429 and ``Retry-After: 0`` (to test
back-off). Use with :func:`attest.simulate.fake_service.serve`.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qs, urlsplit

from attest.formats.snp_report import TURIN, encode_tcb
from attest.simulate.fake_service import FakeService, Reply
from attest.simulate.snp import SimulatedAmd, der

_DER = {"Content-Type": "application/octet-stream"}
_PEM = {"Content-Type": "application/x-pem-file"}


def fake_kds(sims: Mapping[str, SimulatedAmd], *, throttle: int = 0,
             crls: Mapping[str, bytes] | None = None) -> FakeService:
    """A FakeService answering KDS paths for the given simulated products."""
    state = {"throttle": throttle}
    crl_cache: dict[str, bytes] = dict(crls or {})

    def handle(method: str, target: str, body: bytes) -> Reply:
        if state["throttle"] > 0:
            state["throttle"] -= 1
            return 429, {"Retry-After": "0"}, b"slow down\n"
        url = urlsplit(target)
        parts = url.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] not in ("vcek", "vlek") or parts[1] != "v1" \
                or parts[2] not in sims:
            return 404, {}, b"not found\n"
        kind, product, leaf = parts[0], parts[2], parts[3]
        sim = sims[product]
        if leaf == "cert_chain":
            return 200, _PEM, sim.cert_chain_pem(kind)
        if leaf == "crl":
            if product not in crl_cache:
                crl_cache[product] = sim.crl()
            return 200, _DER, crl_cache[product]
        if kind != "vcek" or leaf != sim.hwid.hex():
            return 404, {}, b"unknown chip\n"
        q = parse_qs(url.query, strict_parsing=False)
        names = ["blSPL", "teeSPL", "snpSPL", "ucodeSPL"] + (["fmcSPL"] if product == TURIN
                                                              else [])
        try:
            v = {n: int(q[n][0]) for n in names}
        except (KeyError, ValueError):
            return 400, {}, b"bad query\n"
        tcb = encode_tcb(product, boot_loader=v["blSPL"], tee=v["teeSPL"], snp=v["snpSPL"],
                         microcode=v["ucodeSPL"], fmc=v.get("fmcSPL", 0))
        return 200, _DER, der(sim.vcek(tcb))

    return FakeService(fallback=handle)
