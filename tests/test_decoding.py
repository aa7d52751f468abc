"""Decoding in worker processes with a time limit: a file that hangs its decoder fails alone, on time."""

from __future__ import annotations

import time

from mammodesk.io.decoding import DecodeFailed, TimedOut, decode_all


def slow_or_bad(item: str) -> str:
    if item == "hangs":
        time.sleep(3600)
    if item == "bad":
        raise ValueError("bad pixel stream at byte 12")
    return item.upper()


def test_a_hanging_file_fails_alone_within_its_limit_and_the_rest_go_on():
    started = time.monotonic()
    items = ["a", "hangs", "b", "bad", "c", "d"]
    results = list(decode_all(slow_or_bad, items, workers=2, timeout_s=3))
    elapsed = time.monotonic() - started
    assert [item for item, _ in results] == items  # in order
    values = dict(results)
    assert [values[k] for k in "abcd"] == ["A", "B", "C", "D"]
    assert isinstance(values["hangs"], TimedOut) and "longer than 3 s" in str(values["hangs"])
    assert isinstance(values["bad"], DecodeFailed) and "bad pixel stream at byte 12" in str(values["bad"])
    assert elapsed < 3 + 30  # the limit plus the batch's own time (spawning two workers, twice for one)


def test_no_items_no_work():
    assert list(decode_all(slow_or_bad, [], workers=2)) == []
