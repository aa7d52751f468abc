"""Geometry-changing ops: crop to the breast, flip to a standard side,
resize (keeping aspect, padding). Each records what it did in the frame's
`Geometry`, so heat maps and points map back to source pixels."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mammodesk.io.display import reduce_longest
from mammodesk.io.image import Image
from mammodesk.preprocessing.intensity import value_range
from mammodesk.preprocessing.registry import Frame, Op, Param, register_op

MASK_WORK_SIZE = 512  # the breast mask is found on a copy this wide at most: fast, and plenty
OPENING_FRACTION = 0.015  # the mask's opening, as a share of the long side (see breast_mask)
EDGE_BAND = 0.05  # border strips are looked for this far in from each border (share of the width across it)


def breast_mask(pixels: np.ndarray, valid: np.ndarray | None = None, opening_px: float = 15.0,
                value_lo: float | None = None, value_hi: float | None = None) -> np.ndarray:
    """Foreground (breast) mask: pixels above the background, a morphological
    opening to cut off film labels and tape, the largest connected component,
    holes filled.

    The threshold sits just above the background (its histogram peak plus four
    noise sds, at least 6 grey levels of 255), capped by Otsu's: Otsu alone
    splits dense tissue from faint tissue and cut off the front of the breast
    and the skin line (MIAS mdb028 lost 19 mm at the nipple).

    `valid` marks pixels that may belong to the breast (False = DICOM padding).
    Returns a bool array of `pixels`' shape; all False for a blank image.
    """
    grey = pixels if pixels.ndim == 2 else pixels.mean(axis=2, dtype=np.float32)
    lo = float(grey.min()) if value_lo is None else value_lo
    hi = float(grey.max()) if value_hi is None else value_hi
    rows, cols = grey.shape
    factor = min(1.0, MASK_WORK_SIZE / max(rows, cols))
    small_size = (max(1, round(cols * factor)), max(1, round(rows * factor)))
    small = cv2.resize(grey, small_size, interpolation=cv2.INTER_AREA).astype(np.float32)  # native dtype: fast
    eight = np.clip((small - lo) * (255.0 / max(hi - lo, 1e-12)), 0, 255).astype(np.uint8)
    if valid is not None:
        small_valid = cv2.resize(valid.astype(np.uint8), small_size, interpolation=cv2.INTER_NEAREST) > 0
        eight[~small_valid] = 0
    if eight.max() == eight.min():
        return np.zeros(grey.shape, dtype=bool)
    binary = drop_edge_strips((eight > background_threshold(eight)).astype(np.uint8))
    # At least 1.5 % of the image's long side: the film's bright edge strips and the frame some digitisers
    # leave are a few mm wide and would join the breast to every border (CBIS-DDSM); a nipple is wider.
    k = max(1, int(round(opening_px * factor)), int(round(OPENING_FRACTION * max(small.shape))))
    if k > 1:
        binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return np.zeros(grey.shape, dtype=bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    component = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(component, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(component)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return cv2.resize(filled, (cols, rows), interpolation=cv2.INTER_NEAREST).astype(bool)


@dataclass(frozen=True)
class BreastOutline:
    """Where the breast is in one image, found once per load on a reduced copy (longest side
    MASK_WORK_SIZE at most): the anatomy (chest wall, view) and the automatic window read it."""

    pixels: np.ndarray  # the reduced copy, the source's dtype
    mask: np.ndarray  # the breast on that copy


def outline_breast(image: Image) -> BreastOutline:
    """The breast mask of a reduced copy, DICOM padding left out, the stored value range as the
    scale (so a 12-bit image in 16-bit words is judged by its own grey levels)."""
    small = reduce_longest(image.pixels, MASK_WORK_SIZE)
    valid = None
    if image.meta.padding_mask is not None:
        valid = cv2.resize((~image.meta.padding_mask).astype(np.uint8), (small.shape[1], small.shape[0]),
                           interpolation=cv2.INTER_NEAREST) > 0
    if np.issubdtype(small.dtype, np.integer):
        return BreastOutline(small, breast_mask(small, valid, value_lo=0.0, value_hi=float(image.max_value)))
    return BreastOutline(small, breast_mask(small, valid))


def drop_edge_strips(binary: np.ndarray, band: float = EDGE_BAND) -> np.ndarray:
    """Bright strips along the image's borders (the film's edge, a digitiser's frame, a ruler) taken out:
    along each border, a run of foreground that starts within `band` of the border and ends within it
    too is a strip; the breast's runs reach far beyond it and stay. Works on the small mask copy."""
    out = binary.copy()
    for turn in range(4):  # each border in turn, as the left one of a rotated view; the rows of one at once
        view = np.rot90(out, turn)
        width = view.shape[1]
        limit = max(2, int(round(band * width)))
        columns = np.arange(width)[None]
        near = view[:, :limit + 1] != 0
        start = near.argmax(axis=1)[:, None]  # each row's first foreground pixel near the border
        after = (view == 0) & (columns >= start)
        end = np.where(after.any(axis=1), after.argmax(axis=1), width)[:, None]  # and where its run ends
        strip = near.any(axis=1)[:, None] & (end <= limit)
        view[strip & (columns >= start) & (columns < end)] = 0
    return out


def background_threshold(eight: np.ndarray) -> float:
    """Grey level (0-255) above which a pixel is breast: the film or detector background's peak
    (in the darker half, level 0 left out: it is padding, e.g. MIAS's frame around the film) plus
    four robust noise sds, at least 6 levels, at most Otsu's threshold."""
    otsu, _ = cv2.threshold(eight, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    histogram = np.bincount(eight.ravel(), minlength=256)
    peak = 1 + int(np.argmax(histogram[1:128]))
    if histogram[peak] == 0:
        peak = 0
    near = eight[(eight > 0) & (eight <= peak + 10)].astype(np.float32)
    noise = 1.4826 * float(np.median(np.abs(near - peak))) if near.size else 0.0
    return float(min(otsu, peak + max(6.0, 4.0 * noise)))


def resize_pixels(pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Area averaging along axes that shrink, bilinear along axes that grow.
    One cv2.resize call with mixed directions takes OpenCV's bilinear path,
    which skips pixels when shrinking: a calcification can vanish."""
    rows, cols = pixels.shape[:2]
    height, width = shape
    out = pixels
    if (height < rows) != (width < cols) and height != rows and width != cols:
        interim = (width, rows) if width < cols else (cols, height)  # shrink first
        out = cv2.resize(out, interim, interpolation=cv2.INTER_AREA)
    shrinking = height < out.shape[0] or width < out.shape[1]
    out = cv2.resize(out, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if out.ndim < pixels.ndim:  # OpenCV drops a trailing single channel
        out = out[:, :, None]
    return out


@register_op
class CropToBreast(Op):
    name = "crop_to_breast"
    geometric = True
    doc = "Crop to the breast (largest bright component); labels, tape and padding removed."
    params = (
        Param("opening", float, 15.0, minimum=0.0, maximum=200.0, scales=True,
              doc="opening size that removes thin labels, px"),
        Param("margin", int, 0, minimum=0, maximum=500, scales=True, doc="extra border kept, px"),
        Param("mask_background", bool, True, doc="set pixels outside the breast to black"),
    )

    def apply(self, frame: Frame) -> Frame:
        lo, hi = value_range(frame)
        mask = breast_mask(frame.pixels, frame.mask, self.opening * frame.scale, lo, hi)
        if not mask.any():
            return frame  # blank image: nothing to crop to
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        m = self.scaled(self.margin, frame, minimum=0)
        y0, y1 = max(0, rows[0] - m), min(mask.shape[0], rows[-1] + 1 + m)
        x0, x1 = max(0, cols[0] - m), min(mask.shape[1], cols[-1] + 1 + m)
        pixels = frame.pixels[y0:y1, x0:x1].copy()
        mask = np.ascontiguousarray(mask[y0:y1, x0:x1])
        if self.mask_background:
            np.copyto(pixels, pixels.dtype.type(lo), where=~mask if pixels.ndim == 2 else ~mask[:, :, None])
        geometry = frame.geometry.crop(y0, x0, y1 - y0, x1 - x0)
        return frame.evolve(pixels=pixels, mask=mask, geometry=geometry)


EDGE_MARGIN = 0.10  # the chest wall's edge third must hold this much more (relative) to be clear


def chest_wall(pixels: np.ndarray, mask: np.ndarray | None = None) -> tuple[str, bool]:
    """('left' or 'right', clear?): the edge third that holds more of the breast mask (the
    breast rests on the chest wall and narrows to the nipple), intensity when there is no mask.
    Not clear when the two thirds differ by less than 10 %."""
    grey = pixels if pixels.ndim == 2 else pixels[:, :, 0]
    mask = breast_mask(grey) if mask is None else mask
    third = max(1, grey.shape[1] // 3)
    left, right = float(mask[:, :third].mean()), float(mask[:, -third:].mean())
    if max(left, right) == 0:
        left, right = float(grey[:, :third].mean()), float(grey[:, -third:].mean())
    clear = abs(left - right) > EDGE_MARGIN * max(left, right, 1e-12)
    return ("left" if left >= right else "right"), clear


def chest_wall_side(pixels: np.ndarray, laterality: str | None = None) -> str:
    """'left' or 'right' from the pixels (`chest_wall`); when they don't say clearly, the
    laterality tag decides (a left breast is stored with its chest wall on the left edge)."""
    side, clear = chest_wall(pixels)
    if clear or laterality not in ("L", "R"):
        return side
    return "left" if laterality == "L" else "right"


@register_op
class FlipLaterality(Op):
    name = "flip_laterality"
    geometric = True
    doc = "Mirror horizontally so the chest wall is on a chosen side for every breast."
    params = (
        Param("chest_wall", str, "left", choices=("left", "right"), doc="where the chest wall should be"),
        Param("method", str, "auto", choices=("auto", "tags"),
              doc="auto: from the pixels (tag as tie-break); tags: from laterality only"),
    )

    def apply(self, frame: Frame) -> Frame:
        laterality = frame.meta.laterality
        if self.method == "tags" and laterality in ("L", "R"):
            current = "left" if laterality == "L" else "right"
        else:
            current = chest_wall_side(frame.pixels, laterality)
        if current == self.chest_wall:
            return frame
        mask = None if frame.mask is None else frame.mask[:, ::-1].copy()
        return frame.evolve(pixels=frame.pixels[:, ::-1].copy(), mask=mask,
                            geometry=frame.geometry.flip_horizontal())


@register_op
class Resize(Op):
    name = "resize"
    geometric = True
    doc = "Resize to width x height; optionally keep the aspect ratio and pad."
    params = (
        Param("width", int, 224, minimum=1, maximum=8192),
        Param("height", int, 224, minimum=1, maximum=8192),
        Param("keep_aspect", bool, True),
        Param("align", str, "center", choices=("center", "top-left", "chest-wall"),
              doc="where the image sits when padded (chest-wall: against the side it is on)"),
        Param("pad_value", float, 0.0),
        Param("upscale", bool, True, doc="off: an image smaller than the size is padded, never enlarged "
                                          "(keeps a resampled spacing)"),
    )

    def apply(self, frame: Frame) -> Frame:
        rows, cols = frame.pixels.shape[:2]
        if self.keep_aspect:
            factor = min(self.width / cols, self.height / rows)
            factor = factor if self.upscale else min(1.0, factor)
            content = (max(1, round(rows * factor)), max(1, round(cols * factor)))
        else:
            content = (self.height, self.width)
        off_y, off_x = self._offsets(frame, content)
        resized = resize_pixels(frame.pixels, content)
        out_shape = (self.height, self.width) + frame.pixels.shape[2:]
        out = np.full(out_shape, self.pad_value, dtype=frame.pixels.dtype)
        out[off_y:off_y + content[0], off_x:off_x + content[1]] = resized
        mask = None
        if frame.mask is not None:
            mask = np.zeros((self.height, self.width), dtype=bool)
            small = cv2.resize(frame.mask.astype(np.uint8), (content[1], content[0]), interpolation=cv2.INTER_NEAREST)
            mask[off_y:off_y + content[0], off_x:off_x + content[1]] = small > 0
        geometry = frame.geometry.scale_to(self.height, self.width, off_y, off_x, content)
        # After a resize to a fixed size, later kernels act on that size whatever the preview scale.
        return frame.evolve(pixels=out, mask=mask, geometry=geometry, scale=1.0)

    def _offsets(self, frame: Frame, content: tuple[int, int]) -> tuple[int, int]:
        spare_y, spare_x = self.height - content[0], self.width - content[1]
        if self.align == "top-left":
            return 0, 0
        if self.align == "chest-wall":
            side = chest_wall_side(frame.pixels, frame.meta.laterality)
            return spare_y // 2, 0 if side == "left" else spare_x
        return spare_y // 2, spare_x // 2


@register_op
class Resample(Op):
    name = "resample"
    geometric = True
    doc = ("Resample to a fixed pixel spacing, so film digitised at 50 um and at 200 um give the model the "
           "same tissue per pixel. Without a stated spacing the image is taken to be `fallback_height_mm` tall.")
    params = (
        Param("spacing_mm", float, 0.4, minimum=0.01, maximum=5.0, doc="target mm per pixel"),
        Param("fallback_height_mm", float, 205.0, minimum=10.0, maximum=1000.0,
              doc="the image's height when its file states no spacing (MIAS: 1024 px x 0.2 mm)"),
    )

    def apply(self, frame: Frame) -> Frame:
        rows, cols = frame.pixels.shape[:2]
        factor = self.factor(frame)
        shape = (max(1, round(rows * factor)), max(1, round(cols * factor)))
        if shape == (rows, cols):
            return frame
        mask = None
        if frame.mask is not None:
            mask = cv2.resize(frame.mask.astype(np.uint8), shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        return frame.evolve(pixels=resize_pixels(frame.pixels, shape), mask=mask,
                            geometry=frame.geometry.scale_to(*shape), scale=1.0)

    def factor(self, frame: Frame) -> float:
        """Output pixels per current pixel: from the source's spacing and what earlier ops did to it."""
        spacing = frame.meta.pixel_spacing_mm
        source_mm = float(spacing[0]) if spacing else self.fallback_height_mm / frame.geometry.source_shape[0]
        current_per_source = abs(float(frame.geometry.matrix[1, 1]))  # earlier resizes (a preview's, say)
        return source_mm / self.spacing_mm / current_per_source
