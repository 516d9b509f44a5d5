"""Shared fixtures. Real vectors live in tests/vectors (copied from ../shared/vectors with their
MANIFESTs); our own generated fixtures live in tests/assets with the scripts that make them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.vectors import VECTORS


@pytest.fixture
def vectors() -> Path:
    return VECTORS


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any connection attempt fails the test: for checks that must run offline."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access during offline verification")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield
