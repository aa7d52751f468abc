"""Where output pixels came from. Every geometry-changing op (crop, flip,
resize, pad, preview downscale) composes an affine map from source pixel
coordinates to output coordinates; its inverse carries points and heat maps
back to the source image.

Coordinates: x = column, y = row, pixel centres at integers. A resize from
n to m pixels maps x -> (x + 0.5) * m / n - 0.5, which is what OpenCV's
INTER_LINEAR / INTER_AREA assume, so maps and pixels stay aligned.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Geometry:
    source_shape: tuple[int, int]
    output_shape: tuple[int, int]
    matrix: np.ndarray  # 3x3, source (x, y, 1) -> output (x, y, 1)
    # Source region (x0, y0, x1, y1, pixel edges) that survived every crop. Padding added
    # later maps back onto source pixels outside it, which the output never contained.
    source_box: tuple[float, float, float, float] | None = None

    @classmethod
    def identity(cls, shape: tuple[int, int]) -> "Geometry":
        shape = (int(shape[0]), int(shape[1]))
        return cls(shape, shape, np.eye(3))

    def then(self, step: np.ndarray, output_shape: tuple[int, int]) -> "Geometry":
        """Compose with a further source->output step applied after this one."""
        return Geometry(self.source_shape, (int(output_shape[0]), int(output_shape[1])),
                        np.asarray(step, dtype=np.float64) @ self.matrix, self.source_box)

    def crop(self, y0: int, x0: int, height: int, width: int) -> "Geometry":
        corners = self.inverse_points([[x0 - 0.5, y0 - 0.5], [x0 + width - 0.5, y0 + height - 0.5]])
        kept = (*corners.min(axis=0), *corners.max(axis=0))
        box = self.source_box or (-0.5, -0.5, self.source_shape[1] - 0.5, self.source_shape[0] - 0.5)
        box = (max(box[0], kept[0]), max(box[1], kept[1]), min(box[2], kept[2]), min(box[3], kept[3]))
        cropped = self.then(_affine(1, 1, -x0, -y0), (height, width))
        return Geometry(cropped.source_shape, cropped.output_shape, cropped.matrix, box)

    def flip_horizontal(self) -> "Geometry":
        width = self.output_shape[1]
        return self.then(_affine(-1, 1, width - 1, 0), self.output_shape)

    def scale_to(self, height: int, width: int, offset_y: float = 0.0, offset_x: float = 0.0,
                 content_shape: tuple[int, int] | None = None) -> "Geometry":
        """Resize the current output to `content_shape` (default: the full
        (height, width)) and place it at (offset_y, offset_x) inside height x width."""
        h, w = self.output_shape
        ch, cw = content_shape or (height, width)
        sx, sy = cw / w, ch / h
        step = _affine(sx, sy, 0.5 * sx - 0.5 + offset_x, 0.5 * sy - 0.5 + offset_y)
        return self.then(step, (height, width))

    @property
    def inverse_matrix(self) -> np.ndarray:
        return np.linalg.inv(self.matrix)

    def forward_points(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) source (x, y) -> output (x, y)."""
        return _apply(self.matrix, points)

    def inverse_points(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) output (x, y) -> source (x, y)."""
        return _apply(self.inverse_matrix, points)

    def source_window(self) -> tuple[int, int, int, int]:
        """(y0, x0, height, width): the part of the source the output covers, clipped."""
        out_h, out_w = self.output_shape
        corners = self.inverse_points([[-0.5, -0.5], [out_w - 0.5, -0.5], [-0.5, out_h - 0.5], [out_w - 0.5, out_h - 0.5]])
        left, top = corners[:, 0].min(), corners[:, 1].min()
        right, bottom = corners[:, 0].max(), corners[:, 1].max()
        if self.source_box is not None:
            left, top = max(left, self.source_box[0]), max(top, self.source_box[1])
            right, bottom = min(right, self.source_box[2]), min(bottom, self.source_box[3])
        rows, cols = self.source_shape
        x0 = int(np.clip(np.floor(left + 0.5), 0, cols))
        x1 = int(np.clip(np.ceil(right + 0.5), 0, cols))
        y0 = int(np.clip(np.floor(top + 0.5), 0, rows))
        y1 = int(np.clip(np.ceil(bottom + 0.5), 0, rows))
        return y0, x0, max(0, y1 - y0), max(0, x1 - x0)

    def inverse_map(self, heat: np.ndarray, fill: float = np.nan,
                    window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Resample a map over the output (any resolution: a 7x7 CAM over a
        224x224 input is fine) onto the source pixel grid, bilinearly.
        Source pixels that the output never covered get `fill`. With `window`
        (y0, x0, height, width) only that part of the source grid is produced."""
        heat = np.asarray(heat, dtype=np.float32)
        if heat.ndim != 2:
            raise ValueError(f"inverse_map needs a 2-D map, got shape {heat.shape}")
        out_h, out_w = self.output_shape
        hh, hw = heat.shape
        y0, x0, rows, cols = window or (0, 0, *self.source_shape)
        to_heat = _affine(hw / out_w, hh / out_h, 0.5 * hw / out_w - 0.5, 0.5 * hh / out_h - 0.5)
        window_to_source = _affine(1, 1, x0, y0)
        # Pad by one pixel (edge values) so the map reaches the border of its footprint.
        step = (_affine(1, 1, 1, 1) @ to_heat @ self.matrix @ window_to_source)[:2]
        padded = cv2.copyMakeBorder(heat, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
        if rows == 0 or cols == 0:
            return np.zeros((rows, cols), np.float32)
        result = cv2.warpAffine(padded, step, (cols, rows), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        covered = self.coverage_mask((y0, x0, rows, cols))
        if not covered.all():
            np.copyto(result, np.float32(fill), where=~covered)
        return result

    def coverage_mask(self, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Source pixels (of `window`, default all) whose centre lands inside the output."""
        out_h, out_w = self.output_shape
        y0, x0, rows, cols = window or (0, 0, *self.source_shape)
        m = self.matrix
        bx0, by0, bx1, by1 = self.source_box or (-np.inf, -np.inf, np.inf, np.inf)
        if m[0, 1] == 0 and m[1, 0] == 0:  # axis-aligned: the mask is separable
            xs, ys = np.arange(x0, x0 + cols), np.arange(y0, y0 + rows)
            ox, oy = m[0, 0] * xs + m[0, 2], m[1, 1] * ys + m[1, 2]
            in_x = (ox >= -0.5) & (ox <= out_w - 0.5) & (xs > bx0) & (xs < bx1)
            in_y = (oy >= -0.5) & (oy <= out_h - 0.5) & (ys > by0) & (ys < by1)
            return np.outer(in_y, in_x)
        ys, xs = np.mgrid[y0:y0 + rows, x0:x0 + cols]
        ox = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
        oy = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
        inside = (xs > bx0) & (xs < bx1) & (ys > by0) & (ys < by1)
        return inside & (ox >= -0.5) & (ox <= out_w - 0.5) & (oy >= -0.5) & (oy <= out_h - 0.5)

    def to_dict(self) -> dict:
        return {"source_shape": list(self.source_shape), "output_shape": list(self.output_shape),
                "matrix": self.matrix.tolist(), "source_box": self.source_box}


def _affine(sx: float, sy: float, tx: float, ty: float) -> np.ndarray:
    return np.array([[sx, 0.0, tx], [0.0, sy, ty], [0.0, 0.0, 1.0]])


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    homogeneous = np.hstack([pts, np.ones((len(pts), 1))])
    return (homogeneous @ matrix.T)[:, :2]
