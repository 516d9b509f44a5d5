"""Building blocks for the policy file (docs/policy.md): strict tables and failure collection.

The policy file is TOML and fail-closed: an unknown key is a TrustConfigError, a value of the
wrong type is a TrustConfigError naming the key. Each evidence type parses its own table
(``[snp]``, ``[tdx]``, ``[gpu]``, ``[log]``) with :class:`StrictTable`; the verifier
composes them. Policy checks never stop at the first failure: they add to a
:class:`FailureCollector` and raise one PolicyError with the whole list (house rule 5).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from transparency_log.common.errors import PolicyError, PolicyFailure, TrustConfigError
from transparency_log.common.strict_mapping import MISSING, TOML, StrictMapping

CHECK_SCHEMA = "policy.schema"


class StrictTable(StrictMapping):
    """A read-once view over one policy table: the project's one strict mapping reader
    (transparency_log/common/strict_mapping.py) with TrustConfigError and ``policy.schema``;
    :meth:`finish` refuses keys nobody read."""

    def __init__(self, data: Any, path: str) -> None:
        super().__init__(data, path, error=TrustConfigError, check=CHECK_SCHEMA, style=TOML)

    def get_hex(self, key: str, size: int | None = None, default: Any = MISSING) -> Any:
        """A lowercase or uppercase hex string decoded to bytes, optionally of exact size."""
        value = self.get(key, str, default)
        if key not in self.value:
            return value
        return parse_hex(value, size, field=self.sub(key))

    def table(self, key: str) -> StrictTable | None:
        """A nested table, or None when absent."""
        return self.mapping(key)


def config_error(check: str, message: str, field: str, got: Any = None,
                 want: Any = None) -> TrustConfigError:
    """A policy file refusal naming ``field`` (CLI exit 4)."""
    return TrustConfigError(check, message, field=field, got=got, want=want)


def int_in(t: StrictTable, where: str, key: str, lo: int, hi: int,
           default: Any = MISSING) -> int:
    """``where.key``: an integer in ``lo..hi`` (``default`` when absent)."""
    value = t.get(key, int, default)
    if not lo <= value <= hi:
        raise config_error(CHECK_SCHEMA, "out of range", f"{where}.{key}", got=value,
                           want=f"{lo}..{hi}")
    return value


def choice(t: StrictTable, where: str, key: str, choices: Sequence[str], default: str) -> str:
    """``where.key``: one of ``choices`` (``default`` when absent)."""
    value = t.get(key, str, default)
    if value not in choices:
        raise config_error(CHECK_SCHEMA, "unknown value", f"{where}.{key}", got=value,
                           want=" | ".join(choices))
    return value


def parse_hex(value: str, size: int | None, *, field: str) -> bytes:
    """Decode a hex policy value strictly."""
    try:
        out = bytes.fromhex(value)
    except ValueError:
        raise TrustConfigError(CHECK_SCHEMA, "not hex", field=field, got=value) from None
    if size is not None and len(out) != size:
        raise TrustConfigError(CHECK_SCHEMA, "wrong length", field=field,
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
