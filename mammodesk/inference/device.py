"""Which device really runs the models. onnxruntime-gpu lists the CUDA
provider whenever its wheel is installed, GPU or not, and falls back to the
CPU silently; the only honest answer is to create a session and read back the
providers it got. Costs a few hundred milliseconds once: call it off the UI
thread."""

from __future__ import annotations

import base64
import functools

import onnxruntime as ort

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
# An 80-byte ONNX model, y = Identity(x), written with onnx.helper (the app does not depend on onnx).
_PROBE = base64.b64decode("CAgSCW1hbW1vZGVzazo7ChAKAXgSAXkiCElkZW50aXR5EgVwcm9iZVoPCgF4EgoKCAgBEgQKAggBYg8KAXkSCgoI"
                          "CAESBAoCCAFCBAoAEA0=")


@functools.lru_cache(maxsize=1)
def probe_device() -> str:
    """'CUDA' when a CUDA device answers a real session, else 'CPU (...why...)'."""
    if CUDA not in ort.get_available_providers():
        return "CPU (this onnxruntime has no CUDA provider)"
    options = ort.SessionOptions()
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(_PROBE, options, providers=[CUDA, CPU])
    except Exception as exc:  # noqa: BLE001 - any failure means: not usable
        return f"CPU (CUDA failed to start: {str(exc)[:80]})"
    if session.get_providers()[0] == CUDA:
        return "CUDA"
    return "CPU (no CUDA device found)"
