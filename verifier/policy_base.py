"""Building blocks for the policy file (docs/policy.md): strict tables and failure collection.

The policy file is TOML and fail-closed: an unknown key is a TrustConfigError, a value of the
wrong type is a TrustConfigError naming the key. Each evidence type parses its own table
(``[snp]``, ``[tdx]``, ``[gpu]``, ``[log]``) with :class:`StrictTable`; the verifier
composes them. Policy checks never stop at the first failure: they add to a
:class:`FailureCollector` and raise one PolicyError with the whole list (house rule 5).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from difflib import get_close_matches
from typing import Any, TypeVar

from transparency_log.common.errors import PolicyError, PolicyFailure, TrustConfigError

T = TypeVar("T")
_MISSING = object()


class StrictTable:
    """A read-once view over one TOML table; :meth:`finish` refuses keys nobody read."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise TrustConfigError("policy.schema", "must be a table", field=path,
                                   got=type(data).__name__, want="table")
        self._data = data
        self._path = path
        self._seen: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def get(self, key: str, kind: type[T] | tuple[type, ...], default: Any = _MISSING) -> Any:
        """The value of ``key``, which must be of ``kind``; ``default`` when absent."""
        self._seen.add(key)
        if key not in self._data:
            if default is _MISSING:
                typo = self._typo_of(key)
                if typo is not None:  # `orgin = ...`: name the typo, not a missing key
                    raise TrustConfigError("policy.schema",
                                           f"unknown key (did you mean {key!r}?)",
                                           field=self._name(typo))
                raise TrustConfigError("policy.schema", "required key missing",
                                       field=self._name(key))
            return default
        value = self._data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; refuse it where an int is wanted.
        if isinstance(value, bool) and bool not in kinds:
            ok = False
        else:
            ok = isinstance(value, kinds)
        if not ok:
            raise TrustConfigError("policy.schema", "wrong type", field=self._name(key),
                                   got=type(value).__name__,
                                   want="|".join(k.__name__ for k in kinds))
        return value

    def get_list(self, key: str, item: type[T], default: Any = _MISSING) -> list[T] | Any:
        """A list whose every item is of type ``item``."""
        value = self.get(key, list, default)
        if value is default:
            return value
        for i, v in enumerate(value):
            if not isinstance(v, item) or (isinstance(v, bool) and item is not bool):
                raise TrustConfigError("policy.schema", "wrong item type",
                                       field=f"{self._name(key)}[{i}]",
                                       got=type(v).__name__, want=item.__name__)
        return value

    def get_hex(self, key: str, size: int | None = None, default: Any = _MISSING) -> Any:
        """A lowercase or uppercase hex string decoded to bytes, optionally of exact size."""
        value = self.get(key, str, default)
        if value is default:
            return value
        return parse_hex(value, size, field=self._name(key))

    def removed(self, key: str, replacement: str) -> None:
        """Refuse a key that no longer exists, naming what replaced it."""
        if key in self._data:
            raise TrustConfigError("policy.schema", f"removed key: use {replacement}",
                                   field=self._name(key))

    def table(self, key: str) -> StrictTable | None:
        """A nested table, or None when absent."""
        value = self.get(key, dict, None)
        return None if value is None else StrictTable(value, self._name(key))

    def _typo_of(self, key: str) -> str | None:
        """An unread key of this table that looks like a misspelling of ``key``."""
        unread = [k for k in self._data if k not in self._seen and k != key]
        near = get_close_matches(key, unread, n=1, cutoff=0.75)
        return near[0] if near else None

    def finish(self) -> None:
        """Refuse any key that was not read (fail closed on typos and unknown options),
        naming the closest known key (difflib) when there is one."""
        unknown = sorted(set(self._data) - self._seen)
        if unknown:
            near = get_close_matches(unknown[0], sorted(self._seen), n=1, cutoff=0.75)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise TrustConfigError("policy.schema",
                                   "unknown key(s): " + ", ".join(unknown) + hint,
                                   field=self._name(unknown[0]))


def parse_hex(value: str, size: int | None, *, field: str) -> bytes:
    """Decode a hex policy value strictly."""
    try:
        out = bytes.fromhex(value)
    except ValueError:
        raise TrustConfigError("policy.schema", "not hex", field=field, got=value) from None
    if size is not None and len(out) != size:
        raise TrustConfigError("policy.schema", "wrong length", field=field,
                               got=len(out), want=size)
    return out


def unsafe_settings(doc: Mapping[str, Any], path: str = "") -> list[str]:
    """Every key named ``unsafe_*``, at any depth, that is switched on (any value but
    ``false`` or an empty list), as ``dotted.key = value`` lines, in file order.

    ``verifier policy check`` warns on each: by house convention a setting that weakens a check
    beyond its safe bound is named ``unsafe_`` so that it can be found mechanically.
    """
    out: list[str] = []
    for key, value in doc.items():
        name = f"{path}.{key}" if path else key
        if isinstance(value, dict):
            out.extend(unsafe_settings(value, name))
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    out.extend(unsafe_settings(item, f"{name}[{i}]"))
        elif key.startswith("unsafe_") and value is not False and value != []:
            out.append(f"{name} = {json.dumps(value, default=str)}")
    return out


class FailureCollector:
    """Collects policy failures; :meth:`raise_if_any` raises one PolicyError with all of them."""

    def __init__(self) -> None:
        self.failures: list[PolicyFailure] = []

    def fail(self, check: str, field: str, got: Any, want: Any, message: str = "") -> None:
        self.failures.append(PolicyFailure(check, field, got, want, message))

    def require(self, ok: bool, check: str, field: str, got: Any, want: Any,
                message: str = "") -> None:
        if not ok:
            self.fail(check, field, got, want, message)

    def run(self, fn: Callable[[FailureCollector], None]) -> None:
        fn(self)

    def raise_if_any(self) -> None:
        if self.failures:
            raise PolicyError(self.failures)
