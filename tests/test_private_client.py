"""verifier/private (issue 13) end to end on 127.0.0.1, all real: client -> relay -> router ->
node agent's OHTTP gateway -> echo backend, with tokens from the issuer
(tests/support/private_client_world.py); the node choice and ``[private] min_nodes``."""

from __future__ import annotations

import logging
import random
from collections import Counter

import pytest
from click.testing import CliRunner

from attest.formats.bhttp import BinaryRequest
from attest.oblivious.spent_tokens import SqliteSpentTokens
from tests.support import private_servers as ps
from tests.support.node_agents import agent_policy_text
from tests.support.pipeline_support import make_world, policy_text
from tests.support.private_client_world import Node, client_path, honest_nodes
from transparency_log.common.errors import FetchError, PolicyError, TrustConfigError
from verifier.policy import parse_policy
from verifier.private import BUCKETS, IssuerTokens, PrivateClient, Weighted, choose
from verifier.private.choice import uniform_below
from verifier.private.fetch import http_bundle_source


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("private"), gpus=1)


@pytest.fixture
def spent(tmp_path):
    store = SqliteSpentTokens(tmp_path / "spent.sqlite")
    yield store
    store.close()


def _tokens(path, spent_log: list[bytes] | None = None):
    issue = IssuerTokens(path.issuer + "/.well-known/private-token-issuer-directory",
                         ps.ACCOUNT_TOKEN)

    def tokens(challenge: bytes) -> bytes:
        token = issue(challenge)
        if spent_log is not None:
            spent_log.append(token)
        return token

    return tokens


def _client(world, path, min_nodes=2, **kw) -> PrivateClient:
    policy = parse_policy(agent_policy_text(world, extra=f"\n[private]\nmin_nodes = {min_nodes}\n"
                                            ).encode())
    kw.setdefault("tokens", _tokens(path))
    return PrivateClient(path.relay, policy, clock=lambda: world.fx.now, trust=world.trust,
                         caches=world.caches, checkpoint_store=world.store,
                         revocations=world.mirror, **kw)


def _hello(content: bytes = b"hello") -> BinaryRequest:
    return BinaryRequest(b"POST", b"https", b"inference.example", b"/v1/echo", (), content)


def test_private_request_end_to_end(world, spent, caplog) -> None:
    """client -> relay -> router -> the chosen node's gateway -> echo backend and back; the
    relay's and the router's logs (and the servers') carry no client address, no plaintext."""
    caplog.set_level(logging.DEBUG)
    secret = b"SECRET-PROMPT-" + random.Random().randbytes(8).hex().encode()
    with client_path(world, honest_nodes(3), spent) as p:
        out = _client(world, p).request(_hello(secret))
    assert out.response.status == 200 and out.response.content == secret
    assert dict(out.response.headers)[b"x-echo-path"] == f"/{out.node}/v1/echo".encode()
    assert p.opened() == [(out.node, secret)]  # one node opened it: the chosen one
    assert len(p.nodes[out.node].received) == 1
    assert all(secret not in r for n in p.nodes.values() for r in n.received)
    assert {c.entry.id for c in out.candidates} == set(p.nodes) and not out.refused
    assert all(c.gpus == 1 for c in out.candidates)
    ours = [r for r in caplog.records
            if r.name.split(".")[0] in ("attest", "transparency_log", "uvicorn", "starlette")]
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in ours)
    assert secret.decode() not in text and "127.0.0.1" not in text


def test_requests_are_padded_and_freshly_encapsulated(world, spent) -> None:
    """Same request twice, and a longer one: one length on the wire (the 1 KiB bucket),
    never the same bytes (a fresh HPKE encapsulation each time)."""
    with client_path(world, honest_nodes(2), spent) as p:
        client = _client(world, p)
        directory = client.directory()
        candidates, _ = client.verify(directory)
        node = p.nodes[candidates[0].entry.id]
        for content in (b"a", b"a", b"b" * 700):
            answer = client.send(candidates[0], _hello(content), directory.token_challenge)
            assert answer.content == content
    assert [body for _, body in p.opened()] == [b"a", b"a", b"b" * 700]
    assert len(set(node.received)) == 3
    assert {len(r) for r in node.received} == {len(node.received[0])}
    assert len(node.received[0]) > BUCKETS[0]


def test_too_few_verified_nodes_refuse_to_send(world, spent) -> None:
    """A router that withholds all but two nodes, against min_nodes = 3: nothing is sent."""
    with client_path(world, honest_nodes(2), spent) as p:
        with pytest.raises(PolicyError) as err:
            _client(world, p, min_nodes=3).request(_hello())
    assert err.value.check == "private.min_nodes"
    assert p.opened() == [] and all(not n.received for n in p.nodes.values())


def test_a_node_whose_evidence_binds_no_key_is_refused(world, spent) -> None:
    """node-a's gateway holds a key, but its evidence binds none: refused with
    ``binding.ohttp_keys`` (and nothing else), never sent to; node-b answers."""
    nodes = {"node-a": Node("node-a", bind=False), "node-b": Node("node-b")}
    with client_path(world, nodes, spent) as p:
        client = _client(world, p, min_nodes=1)
        outs = [client.request(_hello()) for _ in range(4)]
    for out in outs:
        assert out.node == "node-b" and set(out.refused) == {"node-a"}
        assert out.refused["node-a"].check == "binding.ohttp_keys"
    assert not p.nodes["node-a"].received and len(p.nodes["node-b"].received) == 4


def test_only_nodes_that_bind_no_key_refuse_to_send(world, spent) -> None:
    nodes = {n: Node(n, bind=False) for n in ("node-a", "node-b")}
    with client_path(world, nodes, spent) as p:
        client = _client(world, p, min_nodes=1)
        with pytest.raises(PolicyError) as err:
            client.request(_hello())
        _, refused = client.verify(client.directory())
    assert err.value.check == "private.min_nodes"
    assert {e.check for e in refused.values()} == {"binding.ohttp_keys"}
    assert all(not n.received for n in p.nodes.values()) and p.opened() == []


def test_a_request_to_another_nodes_key_fails_there_unanswered(world, spent) -> None:
    """A hostile router swaps the two nodes' gateways: the request, encapsulated to the chosen
    node's attested key, reaches the other node, which cannot open it; nothing is answered."""
    nodes = {"node-a": Node("node-a", route="node-b"), "node-b": Node("node-b", route="node-a")}
    with client_path(world, nodes, spent) as p:
        with pytest.raises(FetchError) as err:
            _client(world, p).request(_hello())
    assert err.value.check == "private.send" and "502" in str(err.value)
    assert sum(len(n.received) for n in p.nodes.values()) == 1
    assert p.opened() == []  # no node opened or forwarded it


def test_a_replayed_or_double_spent_token_is_refused(world, spent) -> None:
    """The first use of a token is answered; the same token again (a replay by someone who
    saw it, or a client spending it twice) is refused by the router, unanswered."""
    issued: list[bytes] = []
    with client_path(world, honest_nodes(2), spent) as p:
        client = _client(world, p, tokens=_tokens(p, issued))
        directory = client.directory()
        candidates, _ = client.verify(directory)
        assert client.send(candidates[0], _hello(b"first"), directory.token_challenge
                           ).content == b"first"
        for target in candidates:  # to the same node and to another one
            replay = _client(world, p, tokens=lambda _c: issued[0])
            with pytest.raises(FetchError) as err:
                replay.send(target, _hello(b"again"), directory.token_challenge)
            assert err.value.check == "private.send" and "401" in str(err.value)
    assert p.opened() == [(candidates[0].entry.id, b"first")]
    assert sum(len(n.received) for n in p.nodes.values()) == 1


def test_a_replayed_bundle_is_refused(world, spent) -> None:
    """A node (or router) answering an old bundle, made for another nonce, is refused."""
    nodes = honest_nodes(3)
    with client_path(world, nodes, spent) as p:
        stale = {}

        def replaying(entry, nonce):
            if entry.id == "node-a":
                stale.setdefault("b", http_bundle_source()(entry, b"\x01" * 32))
                return stale["b"]
            return http_bundle_source()(entry, nonce)

        out = _client(world, p, bundles=replaying).request(_hello())
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
    """`verifier request` with the default key source (the attested key configuration)."""
    from verifier.cli import main

    policy = tmp_path / "policy.toml"
    policy.write_text(agent_policy_text(world, keep_log_waiver=True,
                                        extra="\n[private]\nmin_nodes = 2\n"))
    trust = tmp_path / "trust.json"
    trust.write_bytes(world.fx.trust.to_json())
    prompt = tmp_path / "prompt.txt"
    prompt.write_bytes(b"cli prompt")
    monkeypatch.setenv("ATTESTLOG_ACCOUNT_TOKEN", ps.ACCOUNT_TOKEN)
    with client_path(world, honest_nodes(2), spent) as p:
        args = ["request", "https://inference.example/v1/echo", "--relay", p.relay,
                "--policy", str(policy), "--simulated-trust", str(trust), "--offline",
                "--at", world.fx.now.isoformat(), "--state", str(tmp_path / "state"),
                "--log-url", str(world.fx.tiles_dir), "--data", str(prompt)]
        ok = CliRunner().invoke(main, args)
        assert ok.exit_code == 0, ok.output
        assert "node node-" in ok.output and "HTTP 200" in ok.output
        assert "cli prompt" in ok.output and [b for _, b in p.opened()] == [b"cli prompt"]
        few = CliRunner().invoke(main, [*args[:5], str(tmp_path / "p3.toml"), *args[6:]])
    assert few.exit_code == 4  # no such policy file
    unbound = {n: Node(n, bind=False) for n in ("node-a", "node-b")}
    with client_path(world, unbound, spent) as p:
        args[3] = p.relay
        refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 5, refused.output
    assert "private.min_nodes" in refused.output and "binding.ohttp_keys" in refused.output
    assert p.opened() == []
