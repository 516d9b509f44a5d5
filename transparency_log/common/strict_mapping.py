"""The one fail-closed reader of decoded mappings (house rule 2: decode strictly).

A :class:`StrictMapping` reads the members of one decoded map (a TOML table, a JSON object,
a CBOR map) by name and type; :meth:`StrictMapping.finish` refuses every member nobody read,
so a typo or an unknown option can never be silently ignored. Every refusal is the caller's
error class (FormatError for wire formats, TrustConfigError for configuration files) with the
caller's check id, naming the member by its dotted path (``log.origin``,
``predicate.artifacts[2].sha256``, ``evidence[0].certs.vcek``).

What differs between formats is only how an error names things, a :class:`Style`: the word
for a member (``key`` or ``field``), the names of the value types (TOML ``int``, JSON
``integer``, CBOR ``uint``), the name of the whole document, and whether a missing member
that looks like the misspelling of an unread one is named as that typo.

Pure: no cryptography, no clock, no I/O, so attest/formats can use it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any, Self

from transparency_log.common.errors import AttestlogError

__all__ = ["CBOR", "JSON", "MISSING", "TOML", "StrictMapping", "Style"]

MISSING: Any = object()
"""The default of every reader: the member is required."""

ErrorClass = Callable[..., AttestlogError]


@dataclass(frozen=True)
class Style:
    """How one format's errors name things."""

    noun: str = "key"  # "key" (TOML, CBOR) or "field" (JSON)
    kinds: Mapping[type, str] = field(default_factory=dict)  # value type -> its name
    container: str = "table"  # what a mapping is called in "want"
    root: str = ""  # the field named when the document itself is not a mapping
    hints: bool = False  # name a near-miss unread member instead of "missing"

    def kind(self, value_type: type) -> str:
        return self.kinds.get(value_type, value_type.__name__)


TOML = Style(noun="key", container="table", hints=True)
"""TOML files (the policy, the agent and verifier configurations): Python type names."""
JSON = Style(noun="field", container="object",
             kinds={bool: "boolean", int: "integer", str: "string", list: "array",
                    dict: "object"})
"""JSON documents (RFC 8259 type names)."""
CBOR = Style(noun="key", container="map", root="bundle",
             kinds={bool: "bool", int: "uint", bytes: "bytes", str: "text", list: "array",
                    dict: "map"})
"""CBOR maps with text keys (RFC 8949 major-type names)."""


class StrictMapping:
    """Reads the members of one mapping once each; :meth:`finish` refuses the unread ones.

    ``error`` and ``check`` are the class and check id of every refusal; ``path`` names this
    mapping (``""`` for the document itself); ``style`` how errors name things.
    """

    def __init__(self, value: Any, path: str, *, error: ErrorClass, check: str,
                 style: Style = TOML) -> None:
        self.error, self.check, self.style, self.path = error, check, style, path
        where = path or style.root
        if type(value) is not dict:
            raise error(check, "wrong type", field=where, got=self._kind(value),
                        want=style.container)
        for key in value:
            if type(key) is not str:
                raise error(check, f"map {style.noun} is not a text string", field=where,
                            got=self._kind(key))
        self.value: dict[str, Any] = value
        self.seen: set[str] = set()

    # ------------------------------------------------------------------ naming
    def sub(self, key: str) -> str:
        """The dotted path of member ``key``."""
        return f"{self.path}.{key}" if self.path else key

    def fail(self, message: str, key: str | None = None, got: Any = None,
             want: Any = None) -> AttestlogError:
        """This reader's error about member ``key`` (or the mapping itself)."""
        where = self.sub(key) if key is not None else (self.path or self.style.root)
        return self.error(self.check, message, field=where, got=got, want=want)

    def _kind(self, value: Any) -> str:
        return self.style.kind(type(value))

    # ------------------------------------------------------------------ readers
    def has(self, key: str) -> bool:
        return key in self.value

    def raw(self, key: str, default: Any = MISSING) -> Any:
        """The value of ``key`` as decoded; ``default`` when absent (required by default)."""
        self.seen.add(key)
        if key in self.value:
            return self.value[key]
        if default is not MISSING:
            return default
        typo = self._typo_of(key) if self.style.hints else None
        if typo is not None:  # `orgin = ...`: name the typo, not a missing key
            raise self.fail(f"unknown {self.style.noun} (did you mean {key!r}?)", typo)
        raise self.fail(f"required {self.style.noun} missing", key)

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = MISSING) -> Any:
        """The value of ``key``, which must be of ``kind`` (a bool is never an int)."""
        value = self.raw(key, default)
        if key not in self.value:
            return value
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not _is(value, kinds):
            raise self.fail("wrong type", key, got=self._kind(value),
                            want="|".join(self.style.kind(k) for k in kinds))
        return value

    def get_list(self, key: str, item: type, default: Any = MISSING) -> Any:
        """A list whose every item is of type ``item``."""
        value = self.get(key, list, default)
        if key not in self.value:
            return value
        for i, v in enumerate(value):
            if not _is(v, (item,)):
                raise self.error(self.check, "wrong item type", field=f"{self.sub(key)}[{i}]",
                                 got=self._kind(v), want=self.style.kind(item))
        return value

    def mapping(self, key: str, *, required: bool = False) -> Self | None:
        """The nested mapping ``key`` read the same way; None when absent and not required."""
        value = self.get(key, dict, MISSING if required else None)
        return None if value is None else self.nested(value, self.sub(key))

    def nested(self, value: Any, path: str) -> Self:
        """Another mapping (a member, an array item) read with this reader's rules and class."""
        out = copy.copy(self)
        StrictMapping.__init__(out, value, path, error=self.error, check=self.check,
                               style=self.style)
        return out

    def removed(self, key: str, replacement: str) -> None:
        """Refuse a member that no longer exists, naming what replaced it."""
        if key in self.value:
            raise self.fail(f"removed {self.style.noun}: use {replacement}", key)

    def finish(self) -> None:
        """Refuse every member that was not read (fail closed on typos and unknown options),
        naming the closest known one (difflib) when there is one."""
        unknown = sorted(set(self.value) - self.seen)
        if unknown:
            near = get_close_matches(unknown[0], sorted(self.seen), n=1, cutoff=0.75)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise self.fail(f"unknown {self.style.noun}(s): {', '.join(unknown)}{hint}",
                            unknown[0], got=", ".join(unknown))

    def _typo_of(self, key: str) -> str | None:
        """An unread member that looks like a misspelling of ``key``."""
        unread = [k for k in self.value if k not in self.seen and k != key]
        near = get_close_matches(key, unread, n=1, cutoff=0.75)
        return near[0] if near else None


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    # bool is an int in Python; refuse it where an int is wanted.
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def strict_json(data: bytes, *, error: ErrorClass, check: str, what: str,
                field: str = "document") -> Any:
    """UTF-8 JSON (RFC 8259) decoded strictly, as I-JSON asks (RFC 7493 §2.3): a member name
    given twice and the non-standard constants NaN/Infinity are refused, as is bad UTF-8 or
    bad JSON; every refusal is ``error(check, ...)`` naming ``what``."""

    def members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in pairs:
            if name in out:
                raise error(check, f"duplicate name in the {what}", field=name)
            out[name] = value
        return out

    def constant(name: str) -> Any:
        raise error(check, f"NaN/Infinity in the {what}", field=field, got=name)

    try:
        return json.loads(bytes(data).decode("utf-8"), object_pairs_hook=members,
                          parse_constant=constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise error(check, f"{what} is not JSON: {err}", field=field) from None
