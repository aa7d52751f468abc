"""Denoising and contrast ops: median, Gaussian, Wiener, non-local means,
CLAHE. Each keeps the input dtype; kernel sizes are in full-resolution pixels
and shrink with the preview scale."""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
from scipy import ndimage

from mammodesk.preprocessing.intensity import cast_like, from_uint16, to_uint16, value_range
from mammodesk.preprocessing.registry import Frame, Op, Param, register_op


def per_channel(fn: Callable[[np.ndarray], np.ndarray], pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        return fn(pixels)
    return np.stack([fn(np.ascontiguousarray(pixels[:, :, c])) for c in range(pixels.shape[2])], axis=2)


@register_op
class Median(Op):
    name = "median"
    doc = "Median filter (salt-and-pepper and film-grain noise)."
    params = (Param("ksize", int, 5, minimum=1, maximum=31, odd=True, scales=True, doc="kernel size, px"),)

    def apply(self, frame: Frame) -> Frame:
        k = self.scaled(self.ksize, frame, odd=True)
        if k == 1:
            return frame

        def run(x: np.ndarray) -> np.ndarray:
            # OpenCV takes any odd size for 8-bit, only 3 and 5 for 16-bit and float.
            if x.dtype == np.uint8 or k <= 5:
                return cv2.medianBlur(x, k)
            return ndimage.median_filter(x, size=k, mode="reflect")

        return frame.evolve(pixels=per_channel(run, frame.pixels))


@register_op
class Gaussian(Op):
    name = "gaussian"
    doc = "Gaussian blur."
    params = (Param("sigma", float, 1.0, minimum=0.1, maximum=50.0, scales=True, doc="standard deviation, px"),)

    def apply(self, frame: Frame) -> Frame:
        sigma = self.sigma * frame.scale
        if sigma < 0.25:  # below a quarter pixel the kernel is the identity
            return frame
        out = cv2.GaussianBlur(frame.pixels, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
        return frame.evolve(pixels=out)


@register_op
class Wiener(Op):
    name = "wiener"
    doc = "Adaptive Wiener filter (local mean and variance, like scipy.signal.wiener)."
    params = (
        Param("ksize", int, 5, minimum=3, maximum=31, odd=True, scales=True, doc="window size, px"),
        Param("noise", float, None, minimum=0.0, optional=True,
              doc="noise variance on a 0-1 intensity scale; empty = mean local variance"),
    )

    def apply(self, frame: Frame) -> Frame:
        k = self.scaled(self.ksize, frame, odd=True, minimum=3)
        lo, hi = value_range(frame)

        def run(x: np.ndarray) -> np.ndarray:
            f = (x.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo)
            mean = cv2.blur(f, (k, k), borderType=cv2.BORDER_REFLECT)
            var = np.maximum(cv2.blur(f * f, (k, k), borderType=cv2.BORDER_REFLECT) - mean * mean, 0)
            noise = np.float32(self.noise if self.noise is not None else var.mean())
            gain = np.where(var > noise, (var - noise) / np.maximum(var, 1e-12), 0).astype(np.float32)
            out = (mean + gain * (f - mean)) * np.float32(hi - lo) + np.float32(lo)
            return cast_like(out, x.dtype)

        return frame.evolve(pixels=per_channel(run, frame.pixels))


@register_op
class NonLocalMeans(Op):
    name = "nlmeans"
    doc = "Non-local means denoising (OpenCV); 8- and 16-bit. Slow: seconds at full resolution."
    params = (
        Param("h", float, 10.0, minimum=0.5, maximum=100.0, doc="strength on a 0-255 scale"),
        Param("template", int, 7, minimum=3, maximum=21, odd=True, scales=True, doc="patch size, px"),
        Param("search", int, 21, minimum=5, maximum=51, odd=True, scales=True, doc="search window, px"),
    )

    def apply(self, frame: Frame) -> Frame:
        template = self.scaled(self.template, frame, odd=True, minimum=3)
        search = max(self.scaled(self.search, frame, odd=True, minimum=5), template + 2)

        def run(x: np.ndarray) -> np.ndarray:
            single = frame.evolve(pixels=x)
            if x.dtype == np.uint8:
                return cv2.fastNlMeansDenoising(x, h=self.h, templateWindowSize=template,
                                                searchWindowSize=search)
            wide, lo, hi = to_uint16(single)
            # 16-bit needs the L1 norm; its distances grow with the value scale (x257 from 8-bit).
            out = cv2.fastNlMeansDenoising(wide, h=[self.h * 257.0], templateWindowSize=template,
                                           searchWindowSize=search, normType=cv2.NORM_L1)
            return from_uint16(out, lo, hi, x.dtype)

        return frame.evolve(pixels=per_channel(run, frame.pixels))


@register_op
class Clahe(Op):
    name = "clahe"
    doc = "Contrast-limited adaptive histogram equalisation."
    params = (
        Param("clip_limit", float, 2.0, minimum=0.1, maximum=40.0),
        Param("tiles", int, 8, minimum=1, maximum=64, doc="tiles per side (relative, so scale-free)"),
    )

    def apply(self, frame: Frame) -> Frame:
        clahe = cv2.createCLAHE(clipLimit=self.clip_limit, tileGridSize=(self.tiles, self.tiles))

        def run(x: np.ndarray) -> np.ndarray:
            if x.dtype == np.uint8:
                return clahe.apply(x)
            # Spread the nominal range over all 16 bits: 12- and 16-bit versions of one scene then
            # give the same result. (OpenCV's 16-bit CLAHE uses 65536 bins, so it is not identical
            # to 8-bit CLAHE at the same clip_limit; it keeps the full precision instead.)
            wide, lo, hi = to_uint16(frame.evolve(pixels=x))
            return from_uint16(clahe.apply(wide), lo, hi, x.dtype)

        return frame.evolve(pixels=per_channel(run, frame.pixels))
