"""The heat-map layer of a canvas: an RGBA image item above the mammogram,
placed in source pixels (and mirrored with it), plus outlines of the ROIs the
models analysed. A layer, never burnt into the pixels: opacity, colour map
and threshold only recolour this item."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.inference import SourceMap
from mammodesk.state.opinion import Box, OverlaySettings

ROI_PEN = pg.mkPen((255, 220, 60), width=2, style=QtCore.Qt.PenStyle.DashLine, cosmetic=True)
ANALYSED_PEN = pg.mkPen((80, 220, 255), width=2, cosmetic=True)
_luts: dict[str, np.ndarray] = {}
_rgba_luts: dict[tuple, np.ndarray] = {}


def colour_lut(name: str) -> np.ndarray:
    if name not in _luts:
        _luts[name] = pg.colormap.get(name).getLookupTable(0.0, 1.0, 256, alpha=False).astype(np.uint8)
    return _luts[name]


def rgba_lut(settings: OverlaySettings) -> np.ndarray:
    """The 256 RGBA colours of values 0, 1/255 .. 1 (one uint32 each): transparent below the threshold
    and at 0 (where NaN lands); opacity ramps up over the first `ramp` above the threshold, so weak
    evidence stays faint and edges are soft."""
    key = (settings.colour_map, settings.threshold, settings.opacity, settings.ramp)
    if key not in _rgba_luts:
        level = np.arange(256) / 255.0
        ramp = np.clip((level - settings.threshold) / settings.ramp, 0.0, 1.0)
        alpha = np.where((level >= settings.threshold) & (level > 0), settings.opacity * 255 * ramp, 0)
        table = np.empty((256, 4), np.uint8)
        table[:, :3] = colour_lut(settings.colour_map)
        table[:, 3] = alpha.astype(np.uint8)
        _rgba_luts[key] = table.view(np.uint32).ravel()
    return _rgba_luts[key]


def rgba(values: np.ndarray, settings: OverlaySettings) -> np.ndarray:
    """Map values in 0..1 (NaN = not analysed) to RGBA through one table lookup: a 1024-pixel map
    recolours in a few ms on the UI thread (per-pixel arithmetic took ~30 ms a map, and an answer
    arriving for four views stalled the window)."""
    scaled = np.asarray(values, np.float32) * 255.0
    scaled[~np.isfinite(scaled)] = 0.0
    index = np.clip(scaled, 0.0, 255.0, out=scaled).astype(np.uint8)
    return rgba_lut(settings)[index].view(np.uint8).reshape(*values.shape, 4)


class OverlayLayer:
    def __init__(self, view_box: pg.ViewBox) -> None:
        self.view_box = view_box
        self.item = pg.ImageItem(axisOrder="row-major")
        self.item.setZValue(10)
        self.item.hide()
        view_box.addItem(self.item)
        self._boxes: list[QtWidgets.QGraphicsRectItem] = []
        self._values: np.ndarray | None = None
        self._source: SourceMap | None = None
        self._flip_width: int | None = None
        self._styled: tuple | None = None  # (values id, settings) last drawn: restyling the same is free
        self._placement: tuple[float, float, float, float] = (0, 0, 1, 1)  # x0, y0, sx, sy
        self.peak: tuple[int, int] | None = None  # (row, col) in source pixels of the map shown

    def set_map(self, source: SourceMap | None, settings: OverlaySettings, *, flip_width: int | None) -> None:
        """Show `source` (None: nothing). `flip_width` = the image's columns when the view is mirrored."""
        if source is self._source and flip_width == self._flip_width and source is not None:
            self.restyle(settings)  # the same map again (another answer arrived): nothing to recompute
            return
        self._source, self._flip_width, self._styled = source, flip_width, None
        if source is None or not np.isfinite(source.values).any():
            self._values, self.peak = None, None
            self.item.hide()
            return
        values, sx, sy = source.display()
        self._values = values
        self._placement = (source.x0, source.y0, sx, sy)
        self.peak = source.peak()
        self.item.setTransform(_transform(source.x0, source.y0, sx, sy, flip_width))
        self.restyle(settings)

    def restyle(self, settings: OverlaySettings) -> None:
        if self._values is None or not settings.visible:
            self.item.hide()
            return
        key = (id(self._values), settings)
        if key != self._styled:
            self.item.setImage(rgba(self._values, settings), autoLevels=False, levels=(0, 255))
            self._styled = key
        self.item.show()

    def set_boxes(self, rois: list[Box], analysed: list[Box], *, flip_width: int | None,
                  label: str = "") -> list[Box]:
        """ROIs placed (dashed) and the regions the answer is about; `label` (a reader's score) is written
        under the first of those. Returns the answer's boxes as drawn (mirrored with the view)."""
        for item in self._boxes:
            self.view_box.removeItem(item)
        self._boxes = []
        drawn: list[Box] = []
        for boxes, pen in ((rois, ROI_PEN), (analysed, ANALYSED_PEN)):
            for x0, y0, x1, y1 in boxes:
                if flip_width is not None:
                    x0, x1 = flip_width - x1, flip_width - x0
                rect = QtWidgets.QGraphicsRectItem(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
                rect.setPen(pen)
                rect.setZValue(11)
                self.view_box.addItem(rect)
                self._boxes.append(rect)
                if pen is ANALYSED_PEN:
                    drawn.append((x0, y0, x1, y1))
                if label and pen is ANALYSED_PEN and len(self._boxes) == len(rois) + 1:
                    text = pg.TextItem(label, color=(80, 220, 255), anchor=(0.5, 0.0), fill=(0, 0, 0, 160))
                    text.setPos((x0 + x1) / 2, y1)
                    text.setZValue(12)
                    self.view_box.addItem(text)
                    self._boxes.append(text)
        return drawn

    def shown_rgba(self) -> np.ndarray | None:
        """What the item draws now (tests and screenshots)."""
        return None if not self.item.isVisible() else self.item.image


def _transform(x0: float, y0: float, sx: float, sy: float, flip_width: int | None) -> QtGui.QTransform:
    transform = QtGui.QTransform(sx, 0, 0, sy, x0, y0)
    if flip_width is not None:
        transform = transform * QtGui.QTransform(-1, 0, 0, 1, flip_width, 0)
    return transform



class ColourLegend(QtWidgets.QWidget):
    """The heat map's colour scale: the colour map from 0 to 1, faded below the threshold (those values
    are not drawn), with what the values mean underneath."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.colour_map, self.threshold, self.caption = "inferno", 0.3, ""
        self.setMinimumHeight(34)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)

    def show_scale(self, colour_map: str, threshold: float, caption: str) -> None:
        self.colour_map, self.threshold, self.caption = colour_map, threshold, caption
        self.setToolTip(caption)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt naming
        painter = QtGui.QPainter(self)
        lut = colour_lut(self.colour_map)
        left, width, bar = 2, max(10, self.width() - 4), 10
        image = np.ascontiguousarray(np.repeat(lut[None, :, :], bar, axis=0))
        painter.drawImage(QtCore.QRect(left, 2, width, bar),
                          QtGui.QImage(image.data, 256, bar, image.strides[0], QtGui.QImage.Format.Format_RGB888))
        cut = int(width * self.threshold)
        painter.fillRect(QtCore.QRect(left, 2, cut, bar), QtGui.QColor(40, 40, 40, 200))  # not drawn
        painter.setPen(QtGui.QColor("#d0d0d0"))
        metrics = painter.fontMetrics()
        y = 4 + bar + metrics.ascent()
        painter.drawText(left, y, "0")
        painter.drawText(left + width - metrics.horizontalAdvance("1"), y, "1")
        if 0.05 < self.threshold < 0.95:
            text = f"{self.threshold:.2f}"
            painter.drawText(left + cut - metrics.horizontalAdvance(text) // 2, y, text)
        painter.end()
