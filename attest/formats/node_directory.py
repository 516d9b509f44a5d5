"""The router's node directory (issue 13): which nodes a client may choose, as JSON.

Pure and strict (check ``router.directory``); docs/formats.md ("Node directory") has the
layout. Served by ``attest router`` at :data:`DIRECTORY_PATH`; a client verifies every
node's evidence bundle itself and weighs nodes only by what the evidence attests: the
``gpus`` number here is the router's claim, to be compared with the bundle, never trusted.

- ``version``: 1.
- ``token_challenge``: padded base64url of the TokenChallenge (RFC 9577 §2.1.1) every
  request's ``Authorization: PrivateToken`` token must answer. One challenge for all
  clients, so that the challenge identifies no one.
- ``issuer_directory``: where the Privacy Pass issuer's directory is (RFC 9578 §4).
- ``nodes``: 1..:data:`MAX_NODES` objects ``{id, url, bundle_url, gpus}``; ids unique,
  :data:`NODE_ID` syntax; URLs ``http(s)://``; ``gpus`` 0..:data:`MAX_GPUS`.

A request for node ``id`` is POSTed to ``/nodes/<id>`` (:func:`node_path`) on the router, or
on the relay, which forwards the same path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from attest.formats.privacy_pass_http import b64url_decode, b64url_encode
from transparency_log.common.errors import FormatError
from transparency_log.common.strict_mapping import JSON, StrictMapping, strict_json

CHECK = "router.directory"
VERSION = 1
DIRECTORY_PATH = "/.well-known/attestlog/node-directory"
MEDIA_TYPE = "application/json"
MAX_NODES = 4096
MAX_GPUS = 64
MAX_URL = 2048
MAX_DIRECTORY_LEN = 4 * 1024 * 1024
NODE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_URL = re.compile(r"https?://[!-~]+")
_STYLE = replace(JSON, root="directory")


def node_path(node_id: str) -> str:
    """The path a client POSTs a ``message/ohttp-req`` for ``node_id`` to."""
    check_node_id(node_id)
    return f"/nodes/{node_id}"


def check_node_id(node_id: str, field: str = "id") -> str:
    if not isinstance(node_id, str) or not NODE_ID.fullmatch(node_id):
        raise FormatError(CHECK, "node id must be 1-63 of a-z 0-9 - (not starting with -)",
                          field=field, got=repr(node_id)[:70])
    return node_id


def check_url(url: Any, field: str) -> str:
    if not isinstance(url, str) or len(url) > MAX_URL or not _URL.fullmatch(url):
        raise FormatError(CHECK, "want an http(s) URL of printable ASCII", field=field,
                          got=repr(url)[:70])
    return url


@dataclass(frozen=True)
class NodeEntry:
    id: str
    url: str
    bundle_url: str
    gpus: int

    def __post_init__(self) -> None:
        check_node_id(self.id)
        check_url(self.url, "url")
        check_url(self.bundle_url, "bundle_url")
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) \
                or not 0 <= self.gpus <= MAX_GPUS:
            raise FormatError(CHECK, f"gpus must be an integer 0..{MAX_GPUS}", field="gpus",
                              got=repr(self.gpus)[:32])


@dataclass(frozen=True)
class NodeDirectory:
    token_challenge: bytes
    issuer_directory: str
    nodes: tuple[NodeEntry, ...]

    def __post_init__(self) -> None:
        check_url(self.issuer_directory, "issuer_directory")
        if not 1 <= len(self.nodes) <= MAX_NODES:
            raise FormatError(CHECK, f"nodes must list 1..{MAX_NODES} nodes", field="nodes",
                              got=len(self.nodes))
        seen: set[str] = set()
        for node in self.nodes:
            if node.id in seen:
                raise FormatError(CHECK, "node id listed twice", field="id", got=node.id)
            seen.add(node.id)

    def node(self, node_id: str) -> NodeEntry | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def encode(self) -> bytes:
        doc = {"version": VERSION, "token_challenge": b64url_encode(self.token_challenge),
               "issuer_directory": self.issuer_directory,
               "nodes": [{"id": n.id, "url": n.url, "bundle_url": n.bundle_url,
                          "gpus": n.gpus} for n in self.nodes]}
        return json.dumps(doc, indent=2).encode("utf-8") + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> NodeDirectory:
        if len(data) > MAX_DIRECTORY_LEN:
            raise FormatError(CHECK, "node directory too large", field="directory",
                              got=len(data), want=f"<= {MAX_DIRECTORY_LEN}")
        doc = strict_json(data, error=FormatError, check=CHECK, what="node directory",
                          field="directory")
        top = StrictMapping(doc, "", error=FormatError, check=CHECK, style=_STYLE)
        version = top.get("version", int)
        if version != VERSION:
            raise top.fail("unknown node directory version", "version", got=version,
                           want=VERSION)
        challenge = top.get("token_challenge", str)
        entries = []
        for i, item in enumerate(top.get("nodes", list)):
            node = top.nested(item, f"nodes[{i}]")
            entries.append(NodeEntry(id=node.raw("id"), url=node.raw("url"),
                                     bundle_url=node.raw("bundle_url"), gpus=node.raw("gpus")))
            node.finish()
        issuer_directory = top.raw("issuer_directory")
        top.finish()
        return cls(token_challenge=b64url_decode(challenge, "token_challenge"),
                   issuer_directory=issuer_directory, nodes=tuple(entries))
