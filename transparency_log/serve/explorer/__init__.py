"""The log explorer: a static page (HTML, CSS, plain JavaScript) that verifies the log in
the browser from its C2SP tlog-tiles files, then shows it (docs/explorer.md).

``tlog publish-tiles`` writes it beside the tiles (:func:`write_explorer`); ``tlog serve``
serves the same files at ``/`` (:func:`explorer_assets`). The page's only trust is its
configuration, ``explorer.json``::

    {"version": 1, "origin": ORIGIN, "log_vkey": VKEY,
     "witness_policy": C2SP tlog-policy text (witness/group/quorum lines),
     "release_keys": ["attestlog-release-key:v1 <base64 SPKI>", ...]}

The page understands attestlog release and revocation entries (DSSE + in-toto, see
docs/formats.md) and shows any other entry raw, so this package stays generic: it never
parses an entry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from transparency_log.common.errors import TrustConfigError
from transparency_log.core.key_types import Verifier
from transparency_log.core.witness_policy import parse_witness_policy
from transparency_log.log.publish import write_atomic

CONFIG_NAME = "explorer.json"
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "explorer.js": "text/javascript; charset=utf-8",
    "explorer.css": "text/css; charset=utf-8",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
"""Sent as a header by ``tlog serve`` (the page also carries it as a meta tag)."""


def explorer_config(origin: str, log_vkey: str, witness_policy: bytes | None = None,
                    release_keys: Sequence[str] = ()) -> bytes:
    """``explorer.json``: checked here (the vkey and the tlog-policy parse, the log key names
    the origin) so the page is never given a configuration the Python side would refuse."""
    if Verifier(log_vkey).name != origin:
        raise TrustConfigError("log.config", "the log key's name is not the origin",
                               field="log_vkey", got=Verifier(log_vkey).name, want=origin)
    policy = ""
    if witness_policy is not None:
        parse_witness_policy(witness_policy)
        policy = witness_policy.decode("utf-8")
    for key in release_keys:
        if not key.startswith("attestlog-release-key:v1 ") or "\n" in key.strip():
            raise TrustConfigError("log.config", "not a release public key line",
                                   field="release_keys", got=key[:40],
                                   want="attestlog-release-key:v1 <base64 SPKI>")
    config = {"version": 1, "origin": origin, "log_vkey": log_vkey,
              "witness_policy": policy or "quorum none\n",
              "release_keys": [k.strip() for k in release_keys]}
    return json.dumps(config, indent=1, sort_keys=True).encode() + b"\n"


def explorer_assets(config: bytes) -> dict[str, tuple[bytes, str]]:
    """Every file of the page by name (``index.html``, ``explorer.js``, ``explorer.css``,
    ``explorer.json``) with its media type."""
    static = resources.files(__name__) / "static"
    out = {name: (static.joinpath(name).read_bytes(), media) for name, media in ASSETS.items()}
    out[CONFIG_NAME] = (config, "application/json")
    return out


def write_explorer(directory: str | os.PathLike[str], config: bytes) -> list[str]:
    """Write the page and its configuration under ``directory``; returns the names written."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, (data, _) in explorer_assets(config).items():
        write_atomic(out / name, data)
    return [*sorted(ASSETS), CONFIG_NAME]
