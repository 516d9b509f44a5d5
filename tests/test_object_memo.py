"""transparency_log/common/parse_cache.py ObjectMemo: one value per object (by identity, never
lent to another object, however equal), bounded, cleared on demand."""

from __future__ import annotations

from transparency_log.common.parse_cache import ObjectMemo


class _Box:
    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:  # equal boxes must still not share an entry
        return isinstance(other, _Box) and other.value == self.value

    __hash__ = object.__hash__


def test_a_value_is_computed_once_per_object_and_never_lent_to_an_equal_one() -> None:
    calls: list[int] = []
    memo: ObjectMemo[_Box, int] = ObjectMemo(lambda b: calls.append(b.value) or b.value * 2, 8)
    a, b = _Box(1), _Box(1)
    assert memo(a) == 2 and memo(a) == 2 and calls == [1]
    b.value = 5  # equal to a when made; its own entry is computed from its own state
    assert memo(b) == 10 and calls == [1, 5]


def test_the_memo_is_bounded_and_clears() -> None:
    calls: list[int] = []
    memo: ObjectMemo[_Box, int] = ObjectMemo(lambda b: calls.append(b.value) or b.value, 2)
    boxes = [_Box(i) for i in range(3)]
    for box in boxes:
        memo(box)
    memo(boxes[0])  # the oldest was evicted: computed again
    assert calls == [0, 1, 2, 0]
    memo.clear()
    memo(boxes[2])
    assert calls == [0, 1, 2, 0, 2]


def test_a_value_put_by_the_caller_is_returned() -> None:
    memo: ObjectMemo[_Box, int] = ObjectMemo(lambda b: 0, 4)
    box = _Box(3)
    memo.put(box, 42)
    assert memo(box) == 42
