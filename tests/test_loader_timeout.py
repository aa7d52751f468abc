"""The window's loader stops a file that hangs its decoder: it fails with the reason, the others load."""

from __future__ import annotations

import time

from slow_decoder import hang_on

from mammodesk.qt.workers import LoaderBridge


def test_a_file_that_hangs_its_decoder_fails_alone_after_the_limit(qtbot):
    bridge = LoaderBridge(timeout_s=3)
    failed, done = [], []
    bridge.failed.connect(lambda path, message: failed.append((path, message)))
    started = time.monotonic()
    try:
        for path in ("a.dcm", "hangs.dcm", "b.dcm"):
            bridge._submit(hang_on, path, done.append)
        # `failed` is queued to this thread; the count drops in the worker right after posting it
        qtbot.waitUntil(lambda: bridge.pending == 0 and len(done) + len(failed) == 3, timeout=60_000)
    finally:
        bridge.shutdown()
    assert sorted(done) == ["A.DCM", "B.DCM"]
    assert len(failed) == 1 and failed[0][0] == "hangs.dcm" and "longer than 3 s" in failed[0][1]
    assert time.monotonic() - started < 3 + 40


def test_files_waiting_their_turn_are_not_timed_out(qtbot):
    """The limit counts from when the pool hands the file on (at most one file ahead of a free worker), not from
    the open: twelve 1 s files on two workers take over 6 s, more than the limit, and none fails."""
    from slow_decoder import slow

    bridge = LoaderBridge(timeout_s=5)
    failed, done = [], []
    bridge.failed.connect(lambda path, message: failed.append(path))
    try:
        for n in range(12):
            bridge._submit(slow, f"{n}.dcm", done.append)
        qtbot.waitUntil(lambda: bridge.pending == 0, timeout=60_000)
    finally:
        bridge.shutdown()
    assert failed == [] and sorted(done) == sorted(f"{n}.dcm" for n in range(12))


def test_a_file_whose_pool_was_stopped_before_it_started_is_read_again(qtbot):
    """Stopping a stuck worker's pool cancels the files queued behind it: they are read again, never dropped
    in silence (neither loaded nor failed)."""
    from concurrent import futures

    bridge = LoaderBridge(timeout_s=30)
    done = []
    cancelled = futures.Future()
    cancelled.cancel()
    try:
        bridge._count(+1)  # as `_submit` counted it
        bridge._finish(cancelled, hang_on, "a.dcm", done.append, 0)
        qtbot.waitUntil(lambda: bridge.pending == 0, timeout=30_000)
    finally:
        bridge.shutdown()
    assert done == ["A.DCM"]
