"""bench/targeting.py (issue 13, "Non-targetability, measured"): with a fixed seed, the
measured P(u ∈ R(T)) of every strategy lies in a 99.9 % Wilson interval around its exact
value; that value is ΣC(T)/ΣC(S) whenever the router lists every node (whatever it claims
or in which order), and at most the min_nodes withholding bound when it does not."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from bench import targeting as tg

Z999 = 3.2905267314919255
TRIALS = 4000


@pytest.fixture(scope="module")
def rows() -> dict[str, tg.Row]:
    return {r.strategy: r for r in tg.run(TRIALS, seed=13, min_nodes=3)}


def test_every_strategy_measures_its_exact_value(rows) -> None:
    for r in rows.values():
        low, high = tg.wilson(r.hits, r.sent, Z999)
        assert low <= r.expected <= high, r
        assert r.refused == 0


@pytest.mark.parametrize("name", ["honest", "reorder", "inflate", "migrate", "priority"])
def test_a_router_that_lists_every_node_gets_its_fair_share(rows, name) -> None:
    assert rows[name].expected == pytest.approx(rows[name].fair)
    low, high = tg.wilson(rows[name].hits, rows[name].sent, Z999)
    assert low <= rows[name].fair <= high


@pytest.mark.parametrize("name", ["withhold", "replay"])
def test_withholding_is_bounded_by_min_nodes(rows, name) -> None:
    low, _ = tg.wilson(rows[name].hits, rows[name].sent, Z999)
    assert rows[name].expected <= rows[name].allowed + 1e-12
    assert low <= rows[name].allowed


def test_inflating_claimed_capacity_changes_nothing() -> None:
    by_name = {s.name: s for s in tg.strategies(3)}
    inflated = dataclasses.replace(by_name["inflate"], name="honest")  # same random stream
    assert (tg.measure(inflated, trials=TRIALS, seed=5, min_nodes=3).hits
            == tg.measure(by_name["honest"], trials=TRIALS, seed=5, min_nodes=3).hits)


def test_a_client_that_weighed_claims_would_be_targeted() -> None:
    """The inflate attack built against a client weighing the directory's claim: T's share
    jumps from 2/56 to 128/182, outside the fair value's interval (so the check can fail)."""
    listed = tg.strategies(3)[2].directory(random.Random(0))
    claimed = [dataclasses.replace(n, attested=n.claimed) for n in listed]
    assert tg.share(claimed) > 0.5 > tg.share(listed)


def test_the_withholding_bound_falls_with_min_nodes() -> None:
    f = tg.fleet()
    bounds = [tg.withhold_bound(f, k) for k in range(1, len(f) + 1)]
    assert bounds[0] == bounds[1] == 1.0  # |T| = 2: min_nodes <= 2 lets T be alone
    assert all(a >= b for a, b in itertools.pairwise(bounds))
    assert bounds[-1] == pytest.approx(tg.share(f))


def test_min_nodes_above_the_listed_nodes_refuses() -> None:
    """A directory withheld down to 3 nodes, read by a client asking for 4: never sent."""
    withheld = tg.Strategy("w", lambda rng: tg.withheld(tg.fleet(), 3))
    refused = tg.measure(withheld, trials=50, seed=1, min_nodes=4)
    assert refused.refused == 50 and refused.sent == 0


def test_the_bench_prints_a_row_per_strategy(capsys) -> None:
    tg.main(["--trials", "200"])
    out = capsys.readouterr().out
    for s in tg.strategies(3):
        assert s.name in out
