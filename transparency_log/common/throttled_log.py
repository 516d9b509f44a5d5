"""One-line, rate-limited logging for failures that repeat at request (or publisher) rate.

A log whose disk is full refuses every ``POST /add``; logging a traceback per refusal (tens a
second, onto the same full disk) helps no one. Nor does a warning every second that a witness
is down. :class:`ThrottledLog` writes one line per kind of failure at most every ``interval``
seconds and says how many it left out since.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


def one_line(err: BaseException) -> str:
    """``Type: message`` on one line (no traceback)."""
    return f"{type(err).__name__}: {err}".replace("\n", " ")


class ThrottledLog:
    """At most one record per ``key`` every ``interval`` seconds, each one line."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger, self.interval, self.clock = logger, interval, clock
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}
        self._lock = threading.Lock()

    def error(self, key: str, message: str) -> None:
        """Log ``message`` (already one line) as an error unless ``key`` was logged less than
        ``interval`` seconds ago; then it is only counted."""
        self.log(logging.ERROR, key, message)

    def warning(self, key: str, message: str) -> None:
        """:meth:`error`, at level WARNING."""
        self.log(logging.WARNING, key, message)

    def log(self, level: int, key: str, message: str) -> None:
        """Log ``message`` at ``level`` unless ``key`` was logged less than ``interval``
        seconds ago (then it is only counted)."""
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._left_out[key] = self._left_out.get(key, 0) + 1
                return
            self._last[key] = now
            left_out = self._left_out.pop(key, 0)
        if left_out:
            message += f" ({left_out} more like it in the last {now - last:.0f} s not logged)"
        self.logger.log(level, "%s", message)
