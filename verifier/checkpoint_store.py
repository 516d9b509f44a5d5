"""Moved: the one checkpoint store is :mod:`transparency_log.checkpoint_store`.

This module only re-exports it, so that code written against the old path keeps importing.
"""

from transparency_log.checkpoint_store import (
    CHECK_CONSISTENCY,
    CheckpointStore,
    ConsistencyFetch,
    ConsistencyResult,
    StoredCheckpoint,
)

__all__ = [
    "CHECK_CONSISTENCY",
    "CheckpointStore",
    "ConsistencyFetch",
    "ConsistencyResult",
    "StoredCheckpoint",
]
