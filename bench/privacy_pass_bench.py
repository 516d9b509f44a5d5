"""Privacy Pass token type 2: issuance and redemption rates (run by hand; prints a table).

In process (no HTTP): the client's ``begin`` (blind), the issuer's ``evaluate`` (blinded
RSA-2048 CRT in pure Python with base and exponent blinding, then the s^e = m check), the
client's ``finalize`` (unblind + verify), and the router's redemption (``verify_token`` +
the spent-token store, SQLite WAL with synchronous=FULL: one fsync per token). Then the
same over HTTP on 127.0.0.1: issuance through ``attest issuer``'s app, redemption through
the router's app to an echo gateway (tests/support/private_servers.py).

    .venv/bin/python -m bench.privacy_pass_bench
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from attest.oblivious.spent_tokens import SqliteSpentTokens, spend_key
from attest.private import privacy_pass as pp
from tests.support import private_servers as ps
from transparency_log.common.asgi_serving import serve_in_thread

ROUNDS = 200


def _rate(fn: Callable[[], object], n: int = ROUNDS) -> tuple[float, float]:
    """(operations per second, median ms) over n calls."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return 1 / med, med * 1000


def main() -> None:
    issuer = ps.issuer_key()
    challenge = ps.challenge_for()
    client = pp.Client(issuer.key)
    rows: list[tuple[str, float, float]] = []

    rows.append(("client begin (blind)", *_rate(lambda: client.begin(challenge, os.urandom))))
    request, _ = client.begin(challenge, os.urandom)
    rows.append(("issuer evaluate (BlindSign)",
                 *_rate(lambda: issuer.evaluate(request, os.urandom))))

    def issue() -> bytes:
        req, pending = client.begin(challenge, os.urandom)
        return pending.finalize(issuer.evaluate(req, os.urandom)).encode()

    rows.append(("full issuance, in process", *_rate(issue, 100)))
    tokens = [issue() for _ in range(ROUNDS + 100)]
    it = iter(tokens)
    rows.append(("verify_token", *_rate(lambda: pp.verify_token(next(it), issuer.key,
                                                                 challenge=challenge))))
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteSpentTokens(Path(tmp) / "spent.sqlite")
        it2 = iter(tokens)

        def redeem() -> None:
            token = pp.verify_token(next(it2), issuer.key, challenge=challenge)
            assert store.spend(spend_key(token), token.token_key_id)

        rows.append(("redeem: verify + spend (SQLite)", *_rate(redeem)))
        store.close()

        spent = SqliteSpentTokens(Path(tmp) / "http.sqlite")
        with ExitStack() as stack:
            iss = ps.url(stack.enter_context(serve_in_thread(ps.issuer_app(issuer))))
            gw = ps.url(stack.enter_context(serve_in_thread(ps.echo_gateway(ps.Recorded()))))
            rt = ps.url(stack.enter_context(serve_in_thread(
                ps.router_app(gw + "/.well-known/ohttp-gateway", issuer, spent))))
            rows.append(("issuance over HTTP", *_rate(lambda: ps.fetch_token(iss, challenge),
                                                       100)))
            fresh = iter([issue() for _ in range(100)])
            rows.append(("redemption over HTTP (router + echo)",
                         *_rate(lambda: ps.post_private(rt, bytes(4096), next(fresh)), 100)))
        spent.close()

    print(f"{'operation':<40} {'per second':>12} {'median ms':>10}")
    for name, rate, ms in rows:
        print(f"{name:<40} {rate:>12.0f} {ms:>10.2f}")


if __name__ == "__main__":
    main()
