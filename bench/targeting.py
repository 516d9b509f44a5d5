"""Non-targetability, measured (issue 13; docs/threats.md, "Non-targetability").

For servers S with attested capacities C(S_i) and a subset T the attacker controls, the
system is non-targetable when P(u ∈ R(T)), the probability that user u's request is
processed by T, equals ΣC(T)/ΣC(S). This bench runs the client's real choice
(:func:`verifier.private.choice.choose`: weights are the attested GPU counts, randomness the
client's) against a hostile router and hostile nodes, and prints per strategy the measured
P(u ∈ R(T)) with a 95 % Wilson interval next to ΣC(T)/ΣC(S) and next to the bound the
router reaches when it may withhold nodes (it must still list ``min_nodes``).

Strategies (what the router or the attacker's nodes do):

- ``honest``: the full directory, true claims.
- ``reorder``: the attacker's nodes first, the rest shuffled.
- ``inflate``: the attacker's nodes claim 64 GPUs each in the directory (unattested).
- ``withhold``: only T and the fewest, smallest honest nodes that ``min_nodes`` forces.
- ``replay``: an old directory from when fewer honest nodes existed (the newest withheld).
- ``migrate``: the router forwards a share of requests meant for honest nodes to T instead;
  the request is encapsulated to the chosen node's attested key, so T cannot open it
  (tests/test_private_client.py: a request to another key is not answered); it is lost.
- ``priority``: the router delays or drops requests to honest nodes (half of them); the
  client does not re-send (``PrivateClient`` raises ``private.send``), so T gains nothing.
- ``priority+redraw``: the same, with a client that re-sends after a failure with a fresh
  choice. Not what attestlog's client does; shown because it is how an application
  retrying on its own would hand the router its share back.

    .venv/bin/python -m bench.targeting [--trials N] [--seed S] [--min-nodes K]
"""

from __future__ import annotations

import argparse
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from transparency_log.common.errors import PolicyError
from verifier.private.choice import Weighted, choose

#: The simulated fleet: attested GPU counts. Honest nodes h0.., attacker nodes t0..
HONEST = (8, 8, 8, 8, 4, 4, 4, 4, 2, 2, 1, 1)
ATTACKER = (1, 1)
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Node:
    id: str
    attested: int  # what the evidence attests (the client's weight)
    claimed: int  # what the router's directory says (ignored by the client)
    hostile: bool


def fleet() -> list[Node]:
    return ([Node(f"h{i}", g, g, False) for i, g in enumerate(HONEST)]
            + [Node(f"t{i}", g, g, True) for i, g in enumerate(ATTACKER)])


def share(nodes: list[Node]) -> float:
    """ΣC(T)/ΣC(listed) by attested capacity."""
    total = sum(n.attested for n in nodes)
    return sum(n.attested for n in nodes if n.hostile) / total if total else 0.0


def withheld(nodes: list[Node], min_nodes: int) -> list[Node]:
    """The directory that maximises T's share with ``min_nodes`` still listed: all of T and
    the smallest honest nodes needed to make up ``min_nodes``."""
    hostile = [n for n in nodes if n.hostile]
    honest = sorted((n for n in nodes if not n.hostile), key=lambda n: n.attested)
    return hostile + honest[:max(0, min_nodes - len(hostile))]


def withhold_bound(nodes: list[Node], min_nodes: int) -> float:
    """How far a withholding router can raise T's share (docs/threats.md)."""
    return share(withheld(nodes, min_nodes))


Directory = Callable[[random.Random], list[Node]]


@dataclass(frozen=True)
class Strategy:
    name: str
    directory: Directory
    drop_honest: float = 0.0  # requests to honest nodes the router loses
    to_attacker: bool = False  # lost requests go to T (which cannot open them)
    redraw: bool = False  # the client re-sends after a failure, with a fresh choice


def strategies(min_nodes: int) -> list[Strategy]:
    base = fleet()

    def reorder(rng: random.Random) -> list[Node]:
        rest = [n for n in base if not n.hostile]
        rng.shuffle(rest)
        return [n for n in base if n.hostile] + rest

    inflated = [Node(n.id, n.attested, 64 if n.hostile else n.claimed, n.hostile) for n in base]
    old = [n for n in base if n.hostile or int(n.id[1:]) < 6]  # h6..h11 joined later
    return [
        Strategy("honest", lambda rng: base),
        Strategy("reorder", reorder),
        Strategy("inflate", lambda rng: inflated),
        Strategy("withhold", lambda rng: withheld(base, min_nodes)),
        Strategy("replay", lambda rng: old),
        Strategy("migrate", lambda rng: base, drop_honest=0.5, to_attacker=True),
        Strategy("priority", lambda rng: base, drop_honest=0.5),
        Strategy("priority+redraw", lambda rng: base, drop_honest=0.5, redraw=True),
    ]


ROUNDS_WITH_REDRAW = 8


def expected(strategy: Strategy) -> float:
    """The exact P(u ∈ R(T)) under ``strategy``: T's attested share s of the listed nodes;
    with re-draws, s · Σ_{i<rounds} ((1-s)·drop)^i (every lost try is drawn again)."""
    s = share(strategy.directory(random.Random(0)))
    if not strategy.redraw:
        return s
    lost = (1 - s) * strategy.drop_honest
    return s * sum(lost ** i for i in range(ROUNDS_WITH_REDRAW))


def one_request(strategy: Strategy, min_nodes: int, rng: random.Random) -> bool | None:
    """Whether T processed this request (None: the client refused to send)."""
    for _ in range(ROUNDS_WITH_REDRAW if strategy.redraw else 1):
        listed = strategy.directory(rng)
        try:  # the client weighs by attested GPUs; ``claimed`` never enters
            node = choose([Weighted(n, n.attested) for n in listed], min_nodes, rng.randbytes)
        except PolicyError:
            return None
        if node.hostile:
            return True
        if rng.random() >= strategy.drop_honest:
            return False  # an honest node processed it
        # lost (or sent to T, which cannot open a request encapsulated to another key)
    return False


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Row:
    strategy: str
    hits: int
    sent: int
    refused: int
    measured: float
    low: float
    high: float
    expected: float  # the exact P(u ∈ R(T)) of this strategy (:func:`expected`)
    fair: float  # ΣC(T)/ΣC(S), the whole fleet
    allowed: float  # the withholding bound under min_nodes


def measure(strategy: Strategy, *, trials: int, seed: int, min_nodes: int) -> Row:
    rng = random.Random(f"{seed}:{strategy.name}")
    hits = sent = refused = 0
    for _ in range(trials):
        got = one_request(strategy, min_nodes, rng)
        if got is None:
            refused += 1
            continue
        sent += 1
        hits += got
    low, high = wilson(hits, sent)
    return Row(strategy.name, hits, sent, refused, hits / sent if sent else 0.0, low, high,
               expected(strategy), share(fleet()), withhold_bound(fleet(), min_nodes))


def run(trials: int, seed: int, min_nodes: int) -> list[Row]:
    return [measure(s, trials=trials, seed=seed, min_nodes=min_nodes)
            for s in strategies(min_nodes)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--min-nodes", type=int, default=3)
    args = ap.parse_args(argv)
    f = fleet()
    print(f"fleet: {len(HONEST)} honest nodes, {sum(HONEST)} GPUs; T = {len(ATTACKER)} nodes, "
          f"{sum(ATTACKER)} GPUs; min_nodes = {args.min_nodes}; {args.trials} requests each")
    print(f"{'strategy':<16} {'P(u in R(T))':>12} {'95% CI':>17} {'exact':>7} "
          f"{'SC(T)/SC(S)':>12} {'withhold bound':>15} {'refused':>8}")
    for r in run(args.trials, args.seed, args.min_nodes):
        print(f"{r.strategy:<16} {r.measured:>12.4f} [{r.low:.4f}, {r.high:.4f}] "
              f"{r.expected:>7.4f} {r.fair:>12.4f} {r.allowed:>15.4f} {r.refused:>8}")
    print("withhold bound by min_nodes: " + ", ".join(
        f"{k}: {withhold_bound(f, k):.3f}" for k in (1, 2, 3, 4, 6, 8, 10, 14)))


if __name__ == "__main__":
    main()
