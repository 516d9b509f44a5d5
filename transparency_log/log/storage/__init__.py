"""Durable storage for the transparency log: the interface (base) and its backends."""

from transparency_log.log.storage.base import LogStorage, StorageConflictError, TreeState

__all__ = ["LogStorage", "StorageConflictError", "TreeState"]
