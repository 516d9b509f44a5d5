"""The router's node directory (attest/formats/node_directory.py) and the servers' config
files and commands (attest/oblivious/config.py, cli.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from attest.formats.node_directory import NodeDirectory, NodeEntry, node_path
from attest.formats.privacy_pass_http import b64url_decode
from attest.oblivious.config import load_relay_config, load_router_config
from attest.private.privacy_pass import IssuerKey
from tests.support.private_servers import challenge_for
from transparency_log.common.errors import FormatError, TrustConfigError

NODES = (NodeEntry("node-a", "https://a.example", "https://a.example/b", 8),
         NodeEntry("node-b", "https://b.example", "https://b.example/b", 0))
DIRECTORY = NodeDirectory(token_challenge=challenge_for(),
                          issuer_directory="https://issuer.example/d", nodes=NODES)


def test_round_trip() -> None:
    assert NodeDirectory.decode(DIRECTORY.encode()) == DIRECTORY
    assert DIRECTORY.node("node-b") == NODES[1] and DIRECTORY.node("nope") is None
    assert node_path("node-a") == "/nodes/node-a"


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(version=2),
    lambda d: d.update(extra=1),
    lambda d: d["nodes"].append(dict(d["nodes"][0])),  # an id twice
    lambda d: d["nodes"][0].update(id="Node_A"),
    lambda d: d["nodes"][0].update(id="../x"),
    lambda d: d["nodes"][0].update(gpus=True),
    lambda d: d["nodes"][0].update(gpus=65),
    lambda d: d["nodes"][0].update(url="file:///etc/passwd"),
    lambda d: d["nodes"][0].pop("bundle_url"),
    lambda d: d.update(nodes=[]),
    lambda d: d.update(token_challenge="not base64!"),
])
def test_malformed_directories_are_refused(mutate) -> None:
    doc = json.loads(DIRECTORY.encode())
    mutate(doc)
    with pytest.raises(FormatError) as err:
        NodeDirectory.decode(json.dumps(doc).encode())
    assert err.value.check in ("router.directory", "privacypass.format")


ROUTER_TOML = """
listen = "127.0.0.1:8700"
origin = "router.example"
[issuer]
name = "issuer.example"
token_key = "{key}"
directory = "https://issuer.example/.well-known/private-token-issuer-directory"
[spent_tokens]
path = "spent.sqlite"
[[nodes]]
id = "node-a"
url = "https://node-a.example:8443"
gpus = 8
"""


def test_keygen_and_router_config(tmp_path) -> None:
    from attest.cli import main

    out = CliRunner().invoke(main, ["issuer", "keygen", "--out", str(tmp_path / "iss.key")])
    assert out.exit_code == 0, out.output
    key_text = (tmp_path / "iss.vkey").read_text().strip()
    assert IssuerKey.from_spki(b64url_decode(key_text, "k")).spki
    assert (tmp_path / "iss.key").stat().st_mode & 0o777 == 0o600
    again = CliRunner().invoke(main, ["issuer", "keygen", "--out", str(tmp_path / "iss.key")])
    assert again.exit_code != 0  # never overwritten
    cfg_file = tmp_path / "router.toml"
    cfg_file.write_text(ROUTER_TOML.format(key=key_text))
    cfg = load_router_config(cfg_file)
    (node,) = cfg.nodes
    assert node.gateway_url == "https://node-a.example:8443/.well-known/ohttp-gateway"
    assert node.bundle_url == "https://node-a.example:8443/.well-known/attestlog/bundle"
    assert cfg.spent_tokens.path == tmp_path / "spent.sqlite"
    cfg_file.write_text(ROUTER_TOML.format(key=key_text) + "typo = 1\n")
    with pytest.raises(TrustConfigError) as err:
        load_router_config(cfg_file)
    assert err.value.check == "router.config" and err.value.field == "nodes[0].typo"


def test_relay_config_refuses_a_bad_router_url(tmp_path) -> None:
    f = tmp_path / "relay.toml"
    f.write_text('router = "ftp://router"\n')
    with pytest.raises(TrustConfigError) as err:
        load_relay_config(f)
    assert err.value.check == "relay.config"
    f.write_text('router = "http://127.0.0.1:8700"\n[limits]\nclient_burst = 3\n')
    assert load_relay_config(f).client_burst == 3


def test_router_trusts_node_gateways_only_by_a_file_it_can_read(tmp_path) -> None:
    """``nodes_ca_file``: the trust anchors of the nodes' self-signed HTTPS gateways; a path
    that is not a readable file is refused by name (router.config), never ignored."""
    from attest.cli import main

    CliRunner().invoke(main, ["issuer", "keygen", "--out", str(tmp_path / "iss.key")])
    key_text = (tmp_path / "iss.vkey").read_text().strip()
    cfg_file = tmp_path / "router.toml"
    cfg_file.write_text('nodes_ca_file = "nodes-ca.pem"\n' + ROUTER_TOML.format(key=key_text))
    with pytest.raises(TrustConfigError) as err:
        load_router_config(cfg_file)
    assert err.value.check == "router.config" and err.value.field == "nodes_ca_file"
    (tmp_path / "nodes-ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    assert load_router_config(cfg_file).nodes_ca_file == str(tmp_path / "nodes-ca.pem")
    cfg_file.write_text(ROUTER_TOML.format(key=key_text))
    assert load_router_config(cfg_file).nodes_ca_file is None  # the system's CAs
