"""verifier/private (issue 13): the client against the real issuer, router and relay on
127.0.0.1 with stub node gateways (tests/support/private_client_world.py); the node choice
and ``[private] min_nodes``."""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest
from click.testing import CliRunner

from attest.formats.bhttp import BinaryRequest
from attest.oblivious.spent_tokens import SqliteSpentTokens
from attest.private.hpke import PrivateKey
from tests.support import private_servers as ps
from tests.support.pipeline_support import make_world, policy_text
from tests.support.private_client_world import (
    client_path,
    honest_nodes,
    x25519_node_key_config,
)
from transparency_log.common.errors import FetchError, PolicyError, TrustConfigError
from verifier.policy import parse_policy
from verifier.private import BUCKETS, IssuerTokens, PrivateClient, Weighted, choose
from verifier.private.choice import uniform_below


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("private"), gpus=1)


@pytest.fixture
def spent(tmp_path):
    store = SqliteSpentTokens(tmp_path / "spent.sqlite")
    yield store
    store.close()


def _client(world, path, min_nodes=2, **kw) -> PrivateClient:
    policy = parse_policy(policy_text(world.fx, extra=f"\n[private]\nmin_nodes = {min_nodes}\n"
                                      ).encode())
    kw.setdefault("key_configs", x25519_node_key_config)
    return PrivateClient(path.relay, policy,
                         tokens=lambda c: IssuerTokens(path.issuer + "/.well-known/"
                                                       "private-token-issuer-directory",
                                                       ps.ACCOUNT_TOKEN)(c),
                         clock=lambda: world.fx.now, trust=world.trust,
                         caches=world.caches, checkpoint_store=world.store,
                         revocations=world.mirror, **kw)


def _hello(content: bytes = b"hello") -> BinaryRequest:
    return BinaryRequest(b"POST", b"https", b"inference.example", b"/v1/echo", (), content)


def test_private_request_end_to_end(world, spent) -> None:
    with client_path(world, honest_nodes(3), spent) as p:
        out = _client(world, p).request(_hello())
    assert out.response.status == 200
    assert out.response.content == f"node {out.node}: hello".encode()
    assert p.nodes[out.node].answered == [b"hello"]
    assert sum(len(n.answered) for n in p.nodes.values()) == 1
    assert {c.entry.id for c in out.candidates} == set(p.nodes) and not out.refused
    assert all(c.gpus == 1 for c in out.candidates)


def test_requests_are_padded_and_freshly_encapsulated(world, spent) -> None:
    """Same request twice, and a longer one: one length on the wire (the 1 KiB bucket),
    never the same bytes (a fresh HPKE encapsulation each time)."""
    with client_path(world, honest_nodes(2), spent) as p:
        client = _client(world, p)
        directory = client.directory()
        candidates, _ = client.verify(directory)
        node = p.nodes[candidates[0].entry.id]
        for content in (b"a", b"a", b"b" * 700):
            client.send(candidates[0], _hello(content), directory.token_challenge)
    assert node.answered == [b"a", b"a", b"b" * 700]
    assert len(set(node.raw)) == 3
    assert {len(r) for r in node.raw} == {len(node.raw[0])}
    assert len(node.raw[0]) > BUCKETS[0]


def test_too_few_verified_nodes_refuse_to_send(world, spent) -> None:
    """A router that withholds all but two nodes, against min_nodes = 3: nothing is sent."""
    with client_path(world, honest_nodes(2), spent) as p:
        with pytest.raises(PolicyError) as err:
            _client(world, p, min_nodes=3).request(_hello())
    assert err.value.check == "private.min_nodes"
    assert all(not n.answered and not n.failed for n in p.nodes.values())


def test_a_node_with_an_unbound_key_config_is_not_a_candidate(world, spent) -> None:
    """The default key source reads none: every node refused (fail closed), nothing sent."""
    with client_path(world, honest_nodes(2), spent) as p:
        from verifier.private import unbound_key_config

        client = _client(world, p, min_nodes=1, key_configs=unbound_key_config)
        with pytest.raises(PolicyError) as err:
            client.request(_hello())
        _, refused = client.verify(client.directory())
    assert err.value.check == "private.min_nodes"
    assert {e.check for e in refused.values()} == {"private.key_config"}


def test_a_node_whose_evidence_does_not_bind_the_key_it_holds_is_not_answered(world, spent
                                                                              ) -> None:
    nodes = honest_nodes(1)
    node = next(iter(nodes.values()))
    node.held = PrivateKey.generate(os.urandom)  # the gateway holds another key
    with client_path(world, nodes, spent) as p:
        with pytest.raises(FetchError) as err:
            _client(world, p, min_nodes=1).request(_hello())
    assert err.value.check == "private.send" and "502" in str(err.value)
    assert node.failed == 1 and node.answered == []


def test_a_replayed_bundle_is_refused(world, spent) -> None:
    """A node (or router) answering an old bundle, made for another nonce, is refused."""
    nodes = honest_nodes(3)
    with client_path(world, nodes, spent) as p:
        client = _client(world, p)
        stale = {}

        def replaying(entry, nonce):
            from verifier.private.fetch import http_bundle_source

            if entry.id == "node-a":
                stale.setdefault("b", http_bundle_source()(entry, b"\x01" * 32))
                return stale["b"]
            return http_bundle_source()(entry, nonce)

        client._bundles = replaying
        out = client.request(_hello())
    assert set(out.refused) == {"node-a"} and out.refused["node-a"].check == "binding.nonce"
    assert out.node != "node-a"


def test_claimed_gpus_do_not_weigh(world, spent) -> None:
    """The directory claims 64 GPUs for node-a; each node attests 1: the weights are equal."""
    nodes = honest_nodes(2)
    nodes["node-a"].claimed_gpus = 64
    with client_path(world, nodes, spent) as p:
        client = _client(world, p)
        candidates, _ = client.verify(client.directory())
    assert {c.entry.id: c.gpus for c in candidates} == {"node-a": 1, "node-b": 1}
    rng = random.Random(7)
    picks = Counter(choose([Weighted(c.entry.id, c.gpus) for c in candidates], 2,
                           rng.randbytes) for _ in range(2000))
    assert 900 <= picks["node-a"] <= 1100  # P = 1/2; 1/64+1 would give ~31


def test_choice_is_proportional_and_order_free() -> None:
    items = [Weighted("x", 1), Weighted("y", 3), Weighted("z", 0), Weighted("w", 4)]
    for order in (items, list(reversed(items))):
        rng = random.Random(1)
        picks = Counter(choose(order, 3, rng.randbytes) for _ in range(8000))
        assert picks["z"] == 0
        for name, weight in (("x", 1), ("y", 3), ("w", 4)):
            assert abs(picks[name] / 8000 - weight / 8) < 0.02
    with pytest.raises(PolicyError) as err:
        choose(items, 4)
    assert err.value.check == "private.min_nodes"


def test_uniform_below_has_no_modulo_bias() -> None:
    rng = random.Random(3)
    counts = Counter(uniform_below(3, rng.randbytes) for _ in range(9000))
    assert all(abs(counts[i] - 3000) < 200 for i in range(3))


def test_private_policy_table(world) -> None:
    def policy(extra: str):
        return parse_policy((policy_text(world.fx) + "\n" + extra).encode())

    for bad in ("min_nodes = 0", "min_nodes = 4097", 'min_nodes = "3"'):
        with pytest.raises(TrustConfigError) as err:
            policy(f"[private]\n{bad}\n")
        assert err.value.check == "policy.schema" and "private.min_nodes" in str(err.value)
    with pytest.raises(TrustConfigError) as err:
        policy("[private]\nmin_node = 2\n")
    assert "min_node" in str(err.value)
    assert policy("[private]\nmin_nodes = 5\n").private.min_nodes == 5
    assert policy("").private.min_nodes == 3


def test_cli_request(world, spent, tmp_path, monkeypatch) -> None:
    from verifier import cli_request
    from verifier.cli import main

    policy = tmp_path / "policy.toml"
    policy.write_text(policy_text(world.fx, drop_waiver=False,
                                  extra="\n[private]\nmin_nodes = 2\n"))
    trust = tmp_path / "trust.json"
    trust.write_bytes(world.fx.trust.to_json())
    monkeypatch.setattr(cli_request, "KEY_CONFIGS", x25519_node_key_config)
    monkeypatch.setenv("ATTESTLOG_ACCOUNT_TOKEN", ps.ACCOUNT_TOKEN)
    with client_path(world, honest_nodes(2), spent) as p:
        args = ["request", "https://inference.example/v1/echo", "--relay", p.relay,
                "--policy", str(policy), "--simulated-trust", str(trust), "--offline",
                "--at", world.fx.now.isoformat(), "--state", str(tmp_path / "state"),
                "--log-url", str(world.fx.tiles_dir)]
        ok = CliRunner().invoke(main, args)
        assert ok.exit_code == 0, ok.output
        assert "node node-" in ok.output
        few = CliRunner().invoke(main, [*args[:5], str(tmp_path / "p3.toml"), *args[6:]])
    assert few.exit_code == 4  # no such policy file
    monkeypatch.setattr(cli_request, "KEY_CONFIGS", cli_request.unbound_key_config)
    with client_path(world, honest_nodes(2), spent) as p:
        args[3] = p.relay
        refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 5, refused.output
    assert "private.min_nodes" in refused.output
