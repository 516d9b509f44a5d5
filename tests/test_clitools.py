"""Shared CLI plumbing: the --at time parser used by every verifier command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import click
import pytest

from transparency_log.common.clitools import parse_time


def test_parse_time_forms() -> None:
    want = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_time("2024-03-01T12:00:00Z") == want
    assert parse_time("2024-03-01T12:00:00") == want  # naive means UTC
    assert parse_time("2024-03-01T14:00:00+02:00") == want
    assert parse_time("2024-03-01T14:00:00+02:00").tzinfo == timezone(timedelta(hours=2))
    now = parse_time(None)
    assert now.tzinfo is not None and abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_parse_time_refuses_garbage() -> None:
    with pytest.raises(click.BadParameter):
        parse_time("yesterday")
