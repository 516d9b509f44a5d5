"""Exhaustive single-bit flips through a real verifier entry point.

``flip_every_bit(data, lo, hi, verify)`` flips each bit of ``data[lo:hi]`` in turn (one at a
time, the others intact), calls ``verify(flipped)`` and records how it was refused. It fails
the test, naming the bit positions, if any flip is accepted or refused by anything other than
one of our errors (transparency_log.common.errors): a library exception escaping the verifier is a
bug too. The caller then asserts *which* of our checks refused each flip.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from transparency_log.common.errors import AttestlogError


@dataclass(frozen=True)
class Refusal:
    """How one flip was refused: the bit position in the whole blob and the error."""

    bit: int
    error: AttestlogError

    @property
    def offset(self) -> int:
        return self.bit // 8

    @property
    def kind(self) -> tuple[str, str]:
        return type(self.error).__name__, self.error.check


@dataclass(frozen=True)
class FlipRun:
    """Every flip of one region, each refused by one of our errors."""

    lo: int
    hi: int
    refusals: tuple[Refusal, ...]

    def __iter__(self) -> Iterator[Refusal]:
        return iter(self.refusals)

    def __len__(self) -> int:
        return len(self.refusals)

    def kinds(self) -> Counter[tuple[str, str]]:
        return Counter(r.kind for r in self.refusals)

    def unexpected(self, allowed: Callable[[Refusal], bool]) -> list[str]:
        """The refusals ``allowed`` rejects, one line each (empty when all are as expected)."""
        return [f"byte 0x{r.offset:x} bit {r.bit % 8}: {r.kind} {r.error}"
                for r in self.refusals if not allowed(r)]


def flip_every_bit(data: bytes, lo: int, hi: int, verify: Callable[[bytes], object]) -> FlipRun:
    """Flip every bit of ``data[lo:hi]`` and require ``verify`` to refuse each one."""
    assert 0 <= lo < hi <= len(data)
    buf = bytearray(data)
    refusals: list[Refusal] = []
    accepted: list[int] = []
    foreign: list[str] = []
    for bit in range(lo * 8, hi * 8):
        buf[bit // 8] ^= 1 << (bit % 8)
        try:
            verify(bytes(buf))
        except AttestlogError as err:
            refusals.append(Refusal(bit, err))
        except Exception as err:  # any other exception is a finding too
            foreign.append(f"byte 0x{bit // 8:x} bit {bit % 8}: {type(err).__name__}: {err}")
        else:
            accepted.append(bit)
        buf[bit // 8] ^= 1 << (bit % 8)
    assert accepted == [], f"{len(accepted)} flip(s) accepted, first bits: {accepted[:20]}"
    assert foreign == [], f"{len(foreign)} flip(s) escaped our errors: {foreign[:5]}"
    assert bytes(buf) == data
    return FlipRun(lo, hi, tuple(refusals))
