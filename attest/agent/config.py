"""The agent's configuration file (TOML; docs/operations.md "Node agent"; example in
examples/agent.example.toml). Fail-closed like the client policy: an unknown key or table,
or a value of the wrong type, is a TrustConfigError naming it (exit 4)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from attest.agent.gateway import GatewaySettings
from attest.collateral.stapler import CollateralServices
from attest.release.keys import ReleasePublicKey
from transparency_log.common.errors import TrustConfigError
from transparency_log.common.strict_mapping import TOML, StrictMapping
from transparency_log.core.witness_policy import WitnessPolicy, parse_witness_policy

__all__ = ["AgentConfig", "AgentSettings", "CollateralSettings", "SimulateSettings",
           "load_config", "parse_config"]

CHECK = "agent.config"
ON_REVOCATION = ("stop", "warn")
SIM_COLLATERAL = ("simulator", "services")


def _fail(message: str, where: str, got: Any = None, want: Any = None,
          check: str = CHECK) -> TrustConfigError:
    return TrustConfigError(check, message, field=where, got=got, want=want)


_STYLE = replace(TOML, root="file", hints=False)


def _table(value: Any) -> StrictMapping:
    """The file's top-level table, read with the project's one strict mapping reader."""
    return StrictMapping(value, "", error=TrustConfigError, check=CHECK, style=_STYLE)


@dataclass(frozen=True)
class AgentSettings:
    """``[agent]``: timings and limits of the running agent."""

    proof_refresh: float = 300.0
    fresh_per_second: float = 2.0
    fresh_burst: int = 10
    cached_max_age: float = 60.0
    on_revocation: str = "stop"


@dataclass(frozen=True)
class SimulateSettings:
    """``[simulate]``: the simulated node ``--simulate`` runs (attest.simulate.platform)."""

    cpu: str = "sev-snp"
    gpus: int = 1
    cc_mode: str = "on"
    seed: str = "attestlog-sim"
    collateral: str = "simulator"  # or "services": bare hardware, [collateral] fetches


@dataclass(frozen=True)
class CollateralSettings:
    """``[collateral]``: what the node staples (attest/collateral/stapler.py).

    ``staple_collateral = false`` staples nothing fetched: clients must then reach the vendor
    services themselves (or refuse offline). ``cache_dir`` (default ``<state_dir>/collateral``)
    keeps what was fetched across restarts; ``snp_product`` names the AMD product when the
    report cannot (v2 reports)."""

    staple_collateral: bool = True
    services: CollateralServices = field(default_factory=CollateralServices)
    cache_dir: Path | None = None
    snp_product: str | None = None


@dataclass(frozen=True)
class AgentConfig:
    listen: str
    state_dir: Path
    log_url: str
    log_vkey: str
    release_keys: tuple[ReleasePublicKey, ...]
    threshold: int = 1
    witness_policy: WitnessPolicy | None = None
    hostnames: tuple[str, ...] = ("localhost",)
    agent: AgentSettings = field(default_factory=AgentSettings)
    simulate: SimulateSettings = field(default_factory=SimulateSettings)
    collateral: CollateralSettings = field(default_factory=CollateralSettings)
    sigstore_bundles: Path | None = None  # [release] sigstore_bundles: folder to staple from
    gateway: GatewaySettings = field(default_factory=GatewaySettings)

    @property
    def collateral_cache(self) -> Path:
        return self.collateral.cache_dir or self.state_dir / "collateral"


def _number(t: StrictMapping, key: str, default: float, lo: float, hi: float) -> float:
    v = float(t.get(key, (int, float), default))
    if not lo <= v <= hi:
        raise _fail("out of range", t.sub(key), got=v, want=f"{lo}..{hi}")
    return v


def parse_config(data: bytes, base_dir: Path) -> AgentConfig:
    try:
        top = _table(tomllib.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise _fail(f"not TOML: {err}", "file") from None
    listen = top.get("listen", str, "127.0.0.1:8443")
    state_dir = base_dir / top.get("state_dir", str)
    hostnames = top.get("hostnames", list, ["localhost"])
    if not hostnames or not all(isinstance(h, str) and h for h in hostnames):
        raise _fail("want a non-empty list of host names", "hostnames")
    log = top.mapping("log", required=True)
    assert log is not None
    url = log.get("url", str)
    vkey = log.get("vkey", str)
    wp_text = log.get("witness_policy", str, None)
    log.finish()
    witness_policy = parse_witness_policy(wp_text.encode()) if wp_text is not None else None
    rel = top.mapping("release", required=True)
    assert rel is not None
    keys_text = rel.get("keys", list)
    if not keys_text or not all(isinstance(k, str) for k in keys_text):
        raise _fail("want a non-empty list of release public keys", "release.keys")
    keys = tuple(ReleasePublicKey.from_text(k.strip() + "\n") for k in keys_text)
    threshold = int(_number(rel, "threshold", 1, 1, len(keys)))
    sigstore_dir = rel.get("sigstore_bundles", str, None)
    rel.finish()
    settings = AgentSettings()
    ag = top.mapping("agent")
    if ag is not None:
        on_rev = ag.get("on_revocation", str, "stop")
        if on_rev not in ON_REVOCATION:
            raise _fail("unknown value", "agent.on_revocation", got=on_rev, want=ON_REVOCATION)
        settings = AgentSettings(_number(ag, "proof_refresh", 300, 0.1, 86400),
                                 _number(ag, "fresh_per_second", 2, 0.01, 1000),
                                 int(_number(ag, "fresh_burst", 10, 1, 10000)),
                                 _number(ag, "cached_max_age", 60, 1, 86400), on_rev)
        ag.finish()
    sim = SimulateSettings()
    st = top.mapping("simulate")
    if st is not None:
        sim = SimulateSettings(st.get("cpu", str, "sev-snp"), int(_number(st, "gpus", 1, 0, 8)),
                               st.get("cc_mode", str, "on"), st.get("seed", str, "attestlog-sim"),
                               st.get("collateral", str, "simulator"))
        if sim.collateral not in SIM_COLLATERAL:
            raise _fail("unknown value", "simulate.collateral", got=sim.collateral,
                        want=SIM_COLLATERAL)
        st.finish()
    collateral = _collateral(top.mapping("collateral"), base_dir)
    gateway = _gateway(top.mapping("gateway"))
    top.finish()
    return AgentConfig(listen, state_dir, url, vkey, keys, threshold, witness_policy,
                       tuple(hostnames), settings, sim, collateral,
                       base_dir / sigstore_dir if sigstore_dir is not None else None, gateway)


def _gateway(t: StrictMapping | None) -> GatewaySettings:
    """``[gateway]``: ``upstream`` (the local inference backend's base URL, http(s)) and
    ``timeout`` (seconds, 0.1..3600, default 60)."""
    if t is None:
        return GatewaySettings()
    upstream = t.get("upstream", str, None)
    if upstream is not None and (not upstream.startswith(("https://", "http://"))
                                 or any(c in upstream for c in "?# \t\r\n")):
        raise _fail("want an http(s) base URL without query or fragment", "gateway.upstream",
                    got=upstream)
    out = GatewaySettings(upstream, _number(t, "timeout", 60, 0.1, 3600))
    t.finish()
    return out


def _collateral(t: StrictMapping | None, base_dir: Path) -> CollateralSettings:
    if t is None:
        return CollateralSettings()
    d = CollateralServices()
    urls = {}
    for key in ("amd_kds", "intel_pcs", "intel_root_crl", "nvidia_rim", "nvidia_ocsp"):
        v = t.get(key, str, getattr(d, key))
        if not v.startswith(("https://", "http://")):
            raise _fail("want an http(s) URL", f"collateral.{key}", got=v)
        urls[key] = v
    cache = t.get("cache_dir", str, None)
    out = CollateralSettings(t.get("staple_collateral", bool, True), CollateralServices(**urls),
                             base_dir / cache if cache is not None else None,
                             t.get("snp_product", str, None))
    t.finish()
    return out


def load_config(path: str | Path) -> AgentConfig:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise _fail(f"cannot read config: {err}", "file", got=str(p)) from None
    return parse_config(data, p.parent)
