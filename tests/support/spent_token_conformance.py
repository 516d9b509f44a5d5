"""The spent-token store contract (attest/oblivious/spent_tokens.py), run against every
backend: a test module star-imports these tests and defines ``spent_factory`` (a fixture
returning a callable that opens the store; calling it again opens the same store anew, as a
restarted router would)."""

from __future__ import annotations

import hashlib
import threading

KID = hashlib.sha256(b"issuer key").digest()
OTHER_KID = hashlib.sha256(b"another key").digest()


def _key(i: int) -> bytes:
    return hashlib.sha256(b"token %d" % i).digest()


def test_conformance_spend_once(spent_factory) -> None:
    store = spent_factory()
    try:
        assert store.spend(_key(1), KID) is True
        assert store.spend(_key(1), KID) is False
        assert store.spend(_key(2), KID) is True
    finally:
        store.close()


def test_conformance_survives_reopen(spent_factory) -> None:
    store = spent_factory()
    assert store.spend(_key(3), KID) is True
    store.close()
    again = spent_factory()
    try:
        assert again.spend(_key(3), KID) is False
    finally:
        again.close()


def test_conformance_concurrent_spenders_exactly_one_wins(spent_factory) -> None:
    stores = [spent_factory() for _ in range(4)]  # four routers, own connections
    wins: list[int] = []
    lock = threading.Lock()

    def work(store) -> None:
        for i in range(100, 140):
            if store.spend(_key(i), KID):
                with lock:
                    wins.append(i)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(wins) == list(range(100, 140)), "a token was accepted twice or never"
    finally:
        for s in stores:
            s.close()


def test_conformance_forget_key_deletes_only_that_keys_rows(spent_factory) -> None:
    store = spent_factory()
    try:
        store.spend(_key(200), KID)
        store.spend(_key(201), OTHER_KID)
        assert store.forget_key(OTHER_KID) == 1
        assert store.spend(_key(200), KID) is False
        assert store.spend(_key(201), OTHER_KID) is True
    finally:
        store.close()
