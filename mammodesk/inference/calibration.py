"""Calibrated probabilities: `mammodesk-train` fits a calibration on the
out-of-fold CV predictions and stores it in the model's metadata; the engine
applies it to every answer. Qt-free and numpy-only.

Methods (the `method` key of `mammodesk.calibration`):
- `temperature`: softmax models; p' = softmax(log p / T).
- `platt`: two classes; p1' = sigmoid(a * logit(p1) + b).
- `isotonic`: two classes; p1' = a monotone piecewise-linear map through
  the knots (`x`, `y`).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

EPS = 1e-6
METHODS = ("temperature", "platt", "isotonic")


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def apply_calibration(calibration: Mapping[str, Any] | None, probs: np.ndarray) -> np.ndarray:
    """(N, K) or (K,) probabilities, calibrated (unchanged when `calibration` is None)."""
    if not calibration:
        return probs
    single = probs.ndim == 1
    p = np.atleast_2d(np.asarray(probs, np.float64))
    method = calibration.get("method")
    if method == "temperature":
        scaled = np.log(np.clip(p, EPS, 1.0)) / float(calibration["temperature"])
        scaled -= scaled.max(axis=1, keepdims=True)
        out = np.exp(scaled)
        out /= out.sum(axis=1, keepdims=True)
    elif method in ("platt", "isotonic"):
        if p.shape[1] != 2:
            raise ValueError(f"{method} calibration needs two classes, the model has {p.shape[1]}")
        if method == "platt":
            positive = 1.0 / (1.0 + np.exp(-(float(calibration["a"]) * logit(p[:, 1]) + float(calibration["b"]))))
        else:
            positive = np.interp(p[:, 1], np.asarray(calibration["x"], float), np.asarray(calibration["y"], float))
        out = np.column_stack([1 - positive, positive])
    else:
        raise ValueError(f"unknown calibration method {method!r} ({', '.join(METHODS)})")
    return out[0] if single else out


def describe(calibration: Mapping[str, Any] | None) -> str:
    if not calibration:
        return "uncalibrated (the network's own output)"
    method = calibration["method"]
    detail = {"temperature": lambda c: f"temperature scaling, T = {c['temperature']:.2f}",
              "platt": lambda c: f"Platt scaling (a = {c['a']:.2f}, b = {c['b']:.2f})",
              "isotonic": lambda c: f"isotonic regression ({len(c['x'])} knots)"}[method](calibration)
    return f"calibrated: {detail}, fitted on cross-validated predictions"
