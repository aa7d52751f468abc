"""Decoded pixels come back from a worker process through shared memory, and nothing is left behind."""

from __future__ import annotations

import os
import pickle
from multiprocessing import shared_memory

import numpy as np
import pytest

from mammodesk.io import Image, shared_pixels
from mammodesk.io.display import display_copy
from mammodesk.services.loading import ImageLoader, load
from dicom_factory import make_dataset, mammogram_like, write


@pytest.fixture
def sharing(monkeypatch):
    monkeypatch.setattr(shared_pixels, "_sharing", False)
    shared_pixels.share_from_this_process()
    if not shared_pixels._sharing:
        pytest.skip("shared-memory transport is POSIX only")


def test_large_pixels_travel_as_a_segment_that_the_receiver_removes(sharing):
    pixels = np.random.default_rng(0).integers(0, 4095, (1200, 1000), dtype=np.uint16)
    shipped = shared_pixels.export(pixels)
    assert isinstance(shipped, shared_pixels.SharedPixels)
    assert len(pickle.dumps(shipped)) < 1000  # the pickle holds a name, not 2.4 MB
    received = shared_pixels.take(shipped)
    assert np.array_equal(received, pixels) and received.dtype == np.uint16
    with pytest.raises(FileNotFoundError):  # taken once, then gone from /dev/shm
        shared_memory.SharedMemory(name=shipped.name)


def test_an_image_and_its_display_copy_round_trip_through_pickle(sharing):
    pixels = np.random.default_rng(1).integers(0, 4095, (3000, 2400), dtype=np.uint16)
    image = Image(pixels)
    copy = display_copy(pixels)
    blob = pickle.dumps((image, copy))
    assert len(blob) < pixels.nbytes // 4  # neither the image nor its 1.5k copy went in-band
    image_back, copy_back = pickle.loads(blob)
    assert np.array_equal(image_back.pixels, pixels) and not image_back.pixels.flags.writeable
    assert np.array_equal(copy_back.pixels, copy.pixels)


def test_small_arrays_and_processes_that_did_not_opt_in_pickle_as_before(monkeypatch):
    monkeypatch.setattr(shared_pixels, "_sharing", False)
    big = np.zeros((2000, 2000), np.uint16)
    assert shared_pixels.export(big) is big  # the app's own process never leaves segments behind
    shared_pixels.share_from_this_process()
    small = np.zeros((100, 100), np.uint16)
    assert shared_pixels.export(small) is small


def test_no_room_for_a_segment_falls_back_to_pickling(sharing, monkeypatch):
    def full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shared_pixels.os, "posix_fallocate", full)
    before = segments()
    pixels = np.ones((1500, 1500), np.uint16)
    assert shared_pixels.export(pixels) is pixels
    assert segments() == before  # the half-made segment was removed


def test_a_worker_decodes_a_12_mp_image_back_through_shared_memory(tmp_path, monkeypatch):
    received, take = [], shared_pixels.take
    monkeypatch.setattr(shared_pixels, "take", lambda value: (received.append(type(value)), take(value))[1])
    pixels = mammogram_like(seed=3)
    path = write(make_dataset(pixels, bits_stored=12), tmp_path / "big.dcm")
    before = segments()
    loader = ImageLoader(workers=1)
    try:
        loaded = loader.submit(load, str(path)).result(timeout=120)
    finally:
        loader.shutdown()
    assert np.array_equal(loaded.image.pixels, pixels)
    assert received.count(shared_pixels.SharedPixels) >= 2  # the pixels and the display copy
    assert loaded.display is not None and loaded.display.pixels.shape[0] < pixels.shape[0]
    assert segments() == before  # every segment the worker made was taken and removed


def segments() -> set[str]:
    """Shared-memory segments in /dev/shm (a process pool's semaphores live there too: not counted)."""
    return {n for n in os.listdir("/dev/shm") if not n.startswith("sem.")} if os.path.isdir("/dev/shm") else set()
