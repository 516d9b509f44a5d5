"""Configuration files of ``attest issuer serve``, ``attest router`` and ``attest relay``
(TOML; docs/private.md has each file with every key). Fail-closed like the agent's: an
unknown key or table, a value of the wrong type or out of range is a TrustConfigError naming
it (exit 4). Relative paths are relative to the file's folder.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from attest.formats.node_directory import check_node_id, check_url
from attest.formats.privacy_pass_http import b64url_decode
from transparency_log.common.errors import FormatError, TrustConfigError
from transparency_log.common.strict_mapping import TOML, StrictMapping

ISSUER_CHECK = "issuer.config"
ROUTER_CHECK = "router.config"
RELAY_CHECK = "relay.config"
BUNDLE_PATH = "/.well-known/attestlog/bundle"  # attest.agent.service.BUNDLE_PATH
GATEWAY_PATH = "/.well-known/ohttp-gateway"  # RFC 9540 §3
MAX_BODY = 16 * 1024 * 1024


_STYLE = replace(TOML, root="file", hints=False)


def _table(value: object, path: str, check: str) -> StrictMapping:
    """A config table read with the project's one strict mapping reader (errors: ``check``)."""
    return StrictMapping(value, path, error=TrustConfigError, check=check, style=_STYLE)


def _number(t: StrictMapping, key: str, default: float, lo: float, hi: float) -> float:
    v = float(t.get(key, (int, float), default))
    if not lo <= v <= hi:
        raise t.fail("out of range", key, got=v, want=f"{lo}..{hi}")
    return v


def _read(path: str | Path, check: str) -> tuple[StrictMapping, Path]:
    p = Path(path)
    try:
        top = _table(tomllib.loads(p.read_bytes().decode("utf-8")), "", check)
    except OSError as err:
        raise TrustConfigError(check, f"cannot read config: {err.strerror or err}",
                               field="file", got=str(p)) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise TrustConfigError(check, f"not TOML: {err}", field="file", got=str(p)) from None
    return top, p.parent


def _url(t: StrictMapping, key: str, default: str | None = None) -> str:
    value = t.get(key, str) if default is None else t.get(key, str, default)
    try:
        return check_url(value, key)
    except FormatError as err:
        raise TrustConfigError(t.check, "want an http(s) URL", field=f"{t.path or ''}{key}",
                               got=err.got) from None


def _listen(t: StrictMapping, default: str) -> tuple[str, int]:
    listen = t.get("listen", str, default)
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TrustConfigError(t.check, "want HOST:PORT", field="listen", got=listen)
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Limits:
    """``[limits]`` common to the three servers."""

    max_request_bytes: int = 1024 * 1024
    body_timeout: float = 10.0
    upstream_timeout: float = 60.0


def _limits(t: StrictMapping | None) -> tuple[Limits, StrictMapping | None]:
    if t is None:
        return Limits(), None
    return Limits(int(_number(t, "max_request_bytes", 1024 * 1024, 1, MAX_BODY)),
                  _number(t, "body_timeout", 10, 0.1, 600),
                  _number(t, "upstream_timeout", 60, 0.1, 600)), t


# --------------------------------------------------------------------------------------------
# attest issuer serve


@dataclass(frozen=True)
class IssuerConfig:
    host: str
    port: int
    private_key: Path
    request_uri: str
    accounts: dict[str, str]  # name -> hex SHA-256 of its bearer token
    tokens_per_account_per_hour: int
    not_before: int | None


def load_issuer_config(path: str | Path) -> IssuerConfig:
    top, base = _read(path, ISSUER_CHECK)
    host, port = _listen(top, "127.0.0.1:8600")
    key = base / top.get("private_key", str)
    uri = _url(top, "request_uri", f"http://{host}:{port}/token-request")
    not_before = top.get("not_before", int, None)
    acc = top.mapping("accounts", required=True)
    assert acc is not None
    accounts = {}
    for name in list(acc.value):
        accounts[name] = acc.get(name, str)
    acc.finish()
    if not accounts:
        raise TrustConfigError(ISSUER_CHECK, "no account may ask for tokens",
                               field="accounts")
    quota = 1000
    lim = top.mapping("limits")
    if lim is not None:
        quota = int(_number(lim, "tokens_per_account_per_hour", 1000, 1, 10**9))
        lim.finish()
    top.finish()
    return IssuerConfig(host, port, key, uri, accounts, quota, not_before)


# --------------------------------------------------------------------------------------------
# attest router


@dataclass(frozen=True)
class RouterNode:
    id: str
    url: str
    bundle_url: str
    gateway_url: str
    gpus: int


@dataclass(frozen=True)
class SpentTokensSettings:
    backend: str  # "sqlite" or "postgres"
    path: Path | None = None
    dsn: str | None = None
    schema: str = "spent_tokens"


@dataclass(frozen=True)
class RouterConfig:
    host: str
    port: int
    origin: str
    issuer_name: str
    token_key: bytes  # the pinned issuer key (SPKI)
    issuer_directory: str
    spent_tokens: SpentTokensSettings
    nodes: tuple[RouterNode, ...]
    limits: Limits
    nodes_ca_file: str | None = None  # PEM trust anchors of the nodes' HTTPS gateways


def load_router_config(path: str | Path) -> RouterConfig:
    top, base = _read(path, ROUTER_CHECK)
    host, port = _listen(top, "127.0.0.1:8700")
    origin = top.get("origin", str)
    iss = top.mapping("issuer", required=True)
    assert iss is not None
    name = iss.get("name", str)
    key_text = iss.get("token_key", str)
    try:
        token_key = b64url_decode(key_text.strip(), "issuer.token_key")
    except FormatError as err:
        raise TrustConfigError(ROUTER_CHECK, "want the padded base64url token key that "
                               "`attest issuer keygen` prints", field="issuer.token_key",
                               got=err.got) from None
    directory = _url(iss, "directory")
    iss.finish()
    spent = _spent(top.mapping("spent_tokens", required=True), base)
    nodes_raw = top.get("nodes", list)
    nodes = tuple(_node(_table(item, f"nodes[{i}]", ROUTER_CHECK))
                  for i, item in enumerate(nodes_raw))
    if not nodes:
        raise TrustConfigError(ROUTER_CHECK, "no node to route to", field="nodes")
    if len({n.id for n in nodes}) != len(nodes):
        raise TrustConfigError(ROUTER_CHECK, "a node id is listed twice", field="nodes")
    limits, lim = _limits(top.mapping("limits"))
    if lim is not None:
        lim.finish()
    ca = top.get("nodes_ca_file", str, None)
    if ca is not None and not (base / ca).is_file():
        raise TrustConfigError(ROUTER_CHECK, "not a readable PEM file", field="nodes_ca_file",
                               got=ca)
    top.finish()
    return RouterConfig(host, port, origin, name, token_key, directory, spent, nodes, limits,
                        None if ca is None else str(base / ca))


def _spent(t: StrictMapping | None, base: Path) -> SpentTokensSettings:
    assert t is not None
    backend = t.get("backend", str, "sqlite")
    if backend == "sqlite":
        out = SpentTokensSettings("sqlite", path=base / t.get("path", str))
    elif backend == "postgres":
        out = SpentTokensSettings("postgres", dsn=t.get("dsn", str),
                                  schema=t.get("schema", str, "spent_tokens"))
    else:
        raise TrustConfigError(ROUTER_CHECK, "unknown backend", field="spent_tokens.backend",
                               got=backend, want=["sqlite", "postgres"])
    t.finish()
    return out


def _node(t: StrictMapping) -> RouterNode:
    node_id = t.get("id", str)
    try:
        check_node_id(node_id)
    except FormatError as err:
        raise TrustConfigError(ROUTER_CHECK, "bad node id (1-63 of a-z 0-9 -)",
                               field=f"{t.path}.id", got=err.got) from None
    url = _url(t, "url").rstrip("/")
    node = RouterNode(node_id, url, _url(t, "bundle_url", url + BUNDLE_PATH),
                      _url(t, "gateway_url", url + GATEWAY_PATH),
                      int(_number(t, "gpus", 0, 0, 64)))
    t.finish()
    return node


# --------------------------------------------------------------------------------------------
# attest relay


@dataclass(frozen=True)
class RelayConfig:
    host: str
    port: int
    router: str
    requests_per_second: float
    burst: int
    client_requests_per_second: float
    client_burst: int
    limits: Limits


def load_relay_config(path: str | Path) -> RelayConfig:
    top, _base = _read(path, RELAY_CHECK)
    host, port = _listen(top, "127.0.0.1:8800")
    router = _url(top, "router").rstrip("/")
    limits, lim = _limits(top.mapping("limits"))
    rates = (200.0, 400, 5.0, 20)
    if lim is not None:
        rates = (_number(lim, "requests_per_second", 200, 0.01, 10**6),
                 int(_number(lim, "burst", 400, 1, 10**6)),
                 _number(lim, "client_requests_per_second", 5, 0.01, 10**6),
                 int(_number(lim, "client_burst", 20, 1, 10**6)))
        lim.finish()
    top.finish()
    return RelayConfig(host, port, router, rates[0], rates[1], rates[2], rates[3], limits)
