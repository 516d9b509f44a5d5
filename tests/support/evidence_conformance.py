"""The one conformance suite every hardware-evidence verifier runs (SEV-SNP, TDX, NVIDIA GPU).

Like tests/support/storage_conformance.py: a vendor's test module defines an ``adapter``
fixture (an :class:`EvidenceAdapter`: a few lines that call the vendor API) and imports the
tests from here. Every test starts from the vendor's real vector of record (tests/vectors,
with its MANIFEST's pinned time) and builds the attack at run time:

- ``test_record_is_accepted``                the unmutated vector verifies (the control);
- ``test_bit_flips_*``                       flips over each region of the evidence and of
  each collateral item: a deterministic, bounded sample per region (``FLIPS_PER_REGION``),
  and every bit of the regions the adapter marks ``exhaustive`` (cheap ones) through
  tests/support/bitflip_support.py;
- ``test_truncation``                        every structure boundary and inside point the
  adapter names for each item;
- ``test_look_alike_chain_is_refused``       the same subject names and extensions with
  self-made keys, ending in a self-made root instead of the pinned vendor root;
- ``test_real_evidence_under_an_impostor_root_is_refused``  the verifier pinned to a
  look-alike of the vendor root (same name, other key) refuses the real evidence;
- ``test_clock_past_not_after`` / ``test_clock_before_not_before`` / ``test_clock_inside``
  each collateral item's validity window (notBefore/notAfter, issueDate/thisUpdate ..
  nextUpdate): one second outside is refused, one second inside is accepted.

Each refusal must be one of our errors (transparency_log/common/errors.py) of the class and
check id the adapter documents for that mutation: never a foreign exception, never acceptance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

import pytest

from tests.support.bitflip_support import flip_every_bit
from tests.support.look_alike import Forged
from transparency_log.common.errors import AttestlogError

__all__ = [
    "FLIPS_PER_REGION",
    "Case",
    "EvidenceAdapter",
    "Expect",
    "Forged",
    "Region",
    "Window",
    "der_boundaries",
    "der_regions",
    "inner_points",
    "pem_inner_points",
    "record",
    "test_bit_flips_exhaustive",
    "test_bit_flips_sampled_collateral",
    "test_bit_flips_sampled_evidence",
    "test_clock_before_not_before",
    "test_clock_inside",
    "test_clock_past_not_after",
    "test_look_alike_chain_is_refused",
    "test_real_evidence_under_an_impostor_root_is_refused",
    "test_record_is_accepted",
    "test_truncation",
]

FLIPS_PER_REGION = 24
EVIDENCE = "evidence"  # the item name of the evidence itself (the rest are collateral)
SECOND = timedelta(seconds=1)

# (error class name, check id) pairs a mutation may be refused with.
Expect = frozenset[tuple[str, str]]


def expect(*pairs: tuple[type[AttestlogError], str]) -> Expect:
    """The refusals allowed for one kind of mutation: (our error class, check id) pairs.
    A subclass of a named class is accepted too (StaleError is a ChainError)."""
    return frozenset((cls.__name__, check) for cls, check in pairs)


@dataclass(frozen=True)
class Case:
    """One input to a verifier: the evidence, its collateral items and the clock.

    ``clock`` maps a clock name to its instant: one entry (``"at"``) for a vendor that judges
    everything at one time, one per collateral item for a vendor with per-item times (TDX).
    """

    evidence: bytes
    collateral: Mapping[str, bytes]
    clock: Mapping[str, datetime]

    def item(self, name: str) -> bytes:
        return self.evidence if name == EVIDENCE else self.collateral[name]

    def with_item(self, name: str, data: bytes) -> Case:
        if name == EVIDENCE:
            return replace(self, evidence=data)
        return replace(self, collateral={**self.collateral, name: data})

    def at(self, **clock: datetime) -> Case:
        unknown = set(clock) - set(self.clock)
        assert not unknown, f"unknown clock(s) {unknown}"
        return replace(self, clock={**self.clock, **clock})


@dataclass(frozen=True)
class Region:
    """Bytes ``[lo, hi)`` of one item (``EVIDENCE`` or a collateral name) that matter, and the
    refusals a bit flip there may give. ``exhaustive``: cheap enough to flip every bit."""

    name: str
    item: str
    lo: int
    hi: int
    refusals: Expect
    exhaustive: bool = False


@dataclass(frozen=True)
class Window:
    """The validity window of one collateral item as the verifier must judge it (the
    intersection, for items judged together on one clock): moving ``clock`` one second past
    ``not_after`` must give ``after``, one second before ``not_before`` must give ``before``,
    and one second inside either end must verify."""

    item: str
    clock: str
    not_before: datetime
    not_after: datetime
    after: Expect
    before: Expect


class EvidenceAdapter(Protocol):
    """What the suite needs from one vendor: the vendor knowledge, none of the mutation logic."""

    name: str
    # refusals for a truncated item, and for a look-alike chain / an impostor root
    truncation: Mapping[str, Expect]
    wrong_root: Expect

    def record(self) -> Case:
        """The real vector of record at its pinned time (must verify)."""

    def verify(self, case: Case, *, impostor_root: bool = False) -> object:
        """Verify under the pinned vendor roots (``impostor_root``: under a look-alike of the
        vendor root instead); return the authentic result or raise."""

    def regions(self, case: Case) -> Sequence[Region]:
        """The regions of the evidence and the collateral that matter."""

    def boundaries(self, case: Case) -> Mapping[str, Sequence[int]]:
        """Per item: lengths to truncate it to (structure boundaries; all must be refused)."""

    def windows(self, case: Case) -> Sequence[Window]:
        """The validity window of each collateral item."""

    def look_alike(self, case: Case) -> Case:
        """The record re-made under a look-alike chain ending in a self-made root."""


# ---------------------------------------------------------------------------- helpers

def der_spans(data: bytes, lo: int = 0, hi: int | None = None) -> list[tuple[int, int, int]]:
    """The (start, content start, end) of each DER TLV in ``data[lo:hi]`` (one level)."""
    hi = len(data) if hi is None else hi
    out = []
    pos = lo
    while pos < hi:
        n = data[pos + 1]
        start = pos + 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(data[start:start + k], "big")
            start += k
        out.append((pos, start, start + n))
        pos = start + n
    return out


def der_regions(data: bytes) -> dict[str, tuple[int, int]]:
    """A certificate's (or CRL's) regions: the signed part (``tbs``), the signature algorithm
    and the signature value."""
    (_, inner, _), = der_spans(data)
    tbs, alg, sig = der_spans(data, inner)
    return {"tbs": (tbs[0], tbs[2]), "algorithm": (alg[0], alg[2]), "signature": (sig[0], sig[2])}


def der_boundaries(data: bytes, depth: int = 2) -> list[int]:
    """Every TLV boundary (header end, content end) down to ``depth`` levels, below the full
    length: a DER item truncated there must be refused."""
    out: set[int] = set()

    def walk(lo: int, hi: int, level: int) -> None:
        for start, content, end in der_spans(data, lo, hi):
            out.update((start, content, end))
            if level < depth and data[start] & 0x20:  # constructed
                walk(content, end, level + 1)

    walk(0, len(data), 0)
    return sorted(p for p in out if p < len(data))


def pem_inner_points(data: bytes) -> list[int]:
    """Points inside each PEM block (after BEGIN, mid-body, inside the END line): a PEM item
    cut there has a broken certificate."""
    out = []
    pos = 0
    while (begin := data.find(b"-----BEGIN", pos)) >= 0:
        body = data.index(b"\n", begin) + 1
        end = data.index(b"-----END", body)
        out += [body, (body + end) // 2, end + 5]
        pos = end + 8
    return out


def inner_points(length: int) -> list[int]:
    """A few points inside any item: empty, one byte, the quarters, one byte short."""
    return sorted({0, 1, length // 4, length // 2, 3 * length // 4, length - 1})


def sample_bits(lo: int, hi: int, count: int = FLIPS_PER_REGION) -> list[int]:
    """A deterministic spread of ``count`` bit positions over bytes ``[lo, hi)`` (every bit
    of a small region), with varying bit numbers."""
    bits = (hi - lo) * 8
    if bits <= count:
        return list(range(lo * 8, hi * 8))
    step = bits / count
    return sorted({min(lo * 8 + int(i * step) + i % 8, hi * 8 - 1) for i in range(count)})


def refusal(fn: Callable[[], object]) -> tuple[str, str] | str:
    """How ``fn`` was refused: (our class, check id), or a one-line finding."""
    try:
        fn()
    except AttestlogError as err:
        return type(err).__name__, err.check
    except Exception as err:  # a library exception escaping the verifier is a finding
        return f"FOREIGN {type(err).__name__}: {err}"
    return "ACCEPTED"


def _allowed(got: tuple[str, str] | str, allowed: Expect, err_classes: Mapping[str, type],
             ) -> bool:
    if isinstance(got, str):
        return False
    cls, check = got
    mro = {c.__name__ for c in err_classes[cls].__mro__} if cls in err_classes else {cls}
    return any(name in mro and c == check for name, c in allowed)


def _error_classes() -> dict[str, type]:
    out: dict[str, type] = {}
    todo: list[type] = [AttestlogError]
    while todo:
        cls = todo.pop()
        out[cls.__name__] = cls
        todo += cls.__subclasses__()
    return out


def assert_refused(findings: Mapping[str, tuple[str, str] | str], allowed: Expect) -> None:
    """Every mutation (label -> how it was refused) was refused by an allowed error."""
    classes = _error_classes()
    bad = [f"{label}: {got}" for label, got in findings.items()
           if not _allowed(got, allowed, classes)]
    assert not bad, (f"{len(bad)} of {len(findings)} mutation(s) not refused as documented "
                     f"({sorted(allowed)}):\n" + "\n".join(bad[:15]))


# ---------------------------------------------------------------------------- the tests

@pytest.fixture
def record(adapter: EvidenceAdapter) -> Case:
    return adapter.record()


def test_record_is_accepted(adapter: EvidenceAdapter, record: Case) -> None:
    assert adapter.verify(record) is not None


def _flipped(data: bytes, bit: int) -> bytes:
    buf = bytearray(data)
    buf[bit // 8] ^= 1 << (bit % 8)
    return bytes(buf)


def _sampled_flips(adapter: EvidenceAdapter, record: Case, *, evidence: bool) -> None:
    for region in adapter.regions(record):
        if (region.item == EVIDENCE) != evidence:
            continue
        data = record.item(region.item)
        findings = {
            f"{region.name} byte 0x{bit // 8:x} bit {bit % 8}":
                refusal(lambda b=bit, r=region: adapter.verify(
                    record.with_item(r.item, _flipped(data, b))))
            for bit in sample_bits(region.lo, region.hi)}
        assert_refused(findings, region.refusals)


def test_bit_flips_sampled_evidence(adapter: EvidenceAdapter, record: Case) -> None:
    """A deterministic sample of single-bit flips over every region of the evidence."""
    _sampled_flips(adapter, record, evidence=True)


def test_bit_flips_sampled_collateral(adapter: EvidenceAdapter, record: Case) -> None:
    """The same over every region of every collateral item (certificates, CRLs, TCB Info,
    QE Identity, RIMs)."""
    _sampled_flips(adapter, record, evidence=False)


def test_bit_flips_exhaustive(adapter: EvidenceAdapter, record: Case) -> None:
    """Every bit of the regions the adapter marks cheap (bitflip_support.flip_every_bit
    fails on any acceptance or foreign exception; then the check ids are judged)."""
    regions = [r for r in adapter.regions(record) if r.exhaustive]
    assert regions, "the adapter marks no region for exhaustive flips"
    classes = _error_classes()
    for region in regions:
        run = flip_every_bit(record.item(region.item), region.lo, region.hi,
                             lambda data, r=region: adapter.verify(
                                 record.with_item(r.item, data)))
        assert not run.unexpected(lambda f, r=region: _allowed(f.kind, r.refusals, classes)), \
            run.unexpected(lambda f, r=region: _allowed(f.kind, r.refusals, classes))[:10]


def test_truncation(adapter: EvidenceAdapter, record: Case) -> None:
    """Each item cut empty, at one byte, and at every structure boundary and inside point the
    adapter names (helpers: der_boundaries, pem_inner_points, inner_points)."""
    for item, points in adapter.boundaries(record).items():
        data = record.item(item)
        cuts = sorted({0, 1, *points})
        assert all(0 <= n < len(data) for n in cuts), (item, cuts)
        findings = {f"{item}[:{n}]": refusal(lambda n=n: adapter.verify(
            record.with_item(item, data[:n]))) for n in cuts}
        assert_refused(findings, adapter.truncation[item])


def test_look_alike_chain_is_refused(adapter: EvidenceAdapter, record: Case) -> None:
    forged = adapter.look_alike(record)
    assert forged != record
    assert_refused({"look-alike chain": refusal(lambda: adapter.verify(forged))},
                   adapter.wrong_root)


def test_real_evidence_under_an_impostor_root_is_refused(adapter: EvidenceAdapter,
                                                         record: Case) -> None:
    assert_refused({"impostor root": refusal(
        lambda: adapter.verify(record, impostor_root=True))}, adapter.wrong_root)


def _windows(adapter: EvidenceAdapter, record: Case) -> Iterator[Window]:
    windows = list(adapter.windows(record))
    assert windows, "the adapter names no collateral validity window"
    yield from windows


def test_clock_past_not_after(adapter: EvidenceAdapter, record: Case) -> None:
    findings = {}
    for w in _windows(adapter, record):
        late = record.at(**{w.clock: w.not_after + SECOND})
        findings[w.item] = refusal(lambda c=late: adapter.verify(c))
        assert_refused({w.item: findings[w.item]}, w.after)


def test_clock_before_not_before(adapter: EvidenceAdapter, record: Case) -> None:
    for w in _windows(adapter, record):
        early = record.at(**{w.clock: w.not_before - SECOND})
        assert_refused({w.item: refusal(lambda c=early: adapter.verify(c))}, w.before)


def test_clock_inside(adapter: EvidenceAdapter, record: Case) -> None:
    """One second inside each end of each window verifies: the windows above are the
    verifier's real edges, not an artefact of some other item."""
    for w in _windows(adapter, record):
        for when in (w.not_before + SECOND, w.not_after - SECOND):
            adapter.verify(record.at(**{w.clock: when}))

