"""One image view: pyqtgraph ViewBox + ImageItem, driven by a `Document`.

The item holds native-dtype pixels (or the processed result) and a window
LUT, so window/level changes re-map without touching the pixels. A large
image is painted from its display-resolution copy (made by the loader) while
it is seen whole, and from full-resolution crops of what is in view once
zoomed past that copy's detail: pyqtgraph applies the LUT to every pixel it
holds on each paint, so the cost follows the screen, not the detector.
Display flips and the processed result's geometry are item transforms: the
view's coordinates are always source pixels as displayed, which is what the
cursor readout, the loupe and layout synchronisation work in.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.io.image import WindowPreset
from mammodesk.qt.timers import single_shot_timer
from mammodesk.io.display import DisplayCopy, lut_size, window_lut
from mammodesk.state.measurements import scale_bar
from mammodesk.state.viewer import Document

LOUPE_SIZE = 180
LOUPE_ZOOM = 3
ACTIVE_RING = "#3a78c8"
REFINE_MS = 40  # after a zoom or pan settles, the crop in view is brought up to full resolution


class CanvasViewBox(pg.ViewBox):
    """Left drag pans, wheel zooms (pyqtgraph defaults); right drag is window/level.
    An ROI editor, when attached, sees left drags and clicks first."""

    window_dragged = QtCore.Signal(float, float)

    def __init__(self) -> None:
        super().__init__(lockAspect=True, invertY=True, enableMenu=False)
        self.editor = None

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 - Qt naming
        if ev.button() == QtCore.Qt.MouseButton.RightButton:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.window_dragged.emit(float(delta.x()), float(delta.y()))
        elif self.editor is None or not self.editor.drag(ev):
            super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev):  # noqa: N802 - no context menu on right click
        if ev.button() == QtCore.Qt.MouseButton.RightButton:
            ev.accept()
        elif self.editor is not None and self.editor.click(ev):
            ev.accept()
        else:
            super().mouseClickEvent(ev)


class ImageCanvas(pg.GraphicsView):
    """Shows one document, original or processed."""

    window_dragged = QtCore.Signal(object, float, float, bool)  # document, dx, dy, processed
    cursor_moved = QtCore.Signal(str)  # readout text ("" when the cursor leaves the image)
    activated = QtCore.Signal(object)  # document clicked
    clicked_at = QtCore.Signal(object, float, float)  # document, source x, source y (left click)
    range_changed = QtCore.Signal(object)  # this canvas, after a user or programmatic change

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent, background="k")
        self.view_box = CanvasViewBox()
        self.setCentralItem(self.view_box)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)
        self.document: Document | None = None
        self.processed = False
        self.flip = False
        self.caption = ""
        self.align: str | None = None  # "left"/"right": fit against that edge (hanging layouts)
        self.active = False  # the view the panels speak of, in a multi-view hanging: a blue ring
        self._shown: np.ndarray | None = None
        self._geometry_matrix = np.eye(3)  # shown-array pixel centres -> source pixel centres
        self._lut_key: tuple | None = None
        self._crop: tuple[int, int, int, int] | None = None  # y0, y1, x0, x1 of the full-resolution crop shown
        self._crop_pixels: np.ndarray | None = None
        self._refine_timer = single_shot_timer(self, REFINE_MS, self._refine)
        self._info = QtWidgets.QLabel(self)
        self._info.setStyleSheet("color: #e8e8e8; background: rgba(0,0,0,120); padding: 3px; font-size: 11px;")
        self._info.move(6, 6)
        self._info.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.scale_bar = ScaleBar(self)
        self.loupe = QtWidgets.QLabel(self)
        self.loupe.setFixedSize(LOUPE_SIZE, LOUPE_SIZE)
        self.loupe.setStyleSheet("border: 2px solid #f0c040; background: black;")
        self.loupe.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.loupe.hide()
        self.loupe_enabled = False
        self.view_box.window_dragged.connect(self._on_window_dragged)
        self.view_box.sigRangeChanged.connect(lambda *_: self._on_range_changed())
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.editor = None  # the mouse handler a feature's layer attaches (labelling's ROI editor)
        self.scene().sigMouseClicked.connect(self._on_clicked)
        self.setMouseTracking(True)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Ignored)
        self.setMinimumSize(120, 120)

    # --- content -----------------------------------------------------------------
    def show_document(self, document: Document | None, *, processed: bool, flip: bool, caption: str = "") -> None:
        """(Re)bind to a document; keeps the zoom when only the content changes."""
        changed = document is not self.document
        self.document, self.flip, self.caption = document, flip, caption
        view = document.processed if (document is not None and processed) else None
        self.processed = view is not None
        if document is None:
            self._shown = None
            self.image_item.clear()
            self._lut_key = None
            self._update_info()
            self.scale_bar.refresh()
            return
        if changed:
            self._crop = self._crop_pixels = None
        if view is not None:
            shown, matrix = view.shown, view.result.geometry.inverse_matrix
        else:
            shown, matrix = self._original_region(document, whole=changed)  # a new image is first seen whole
        self._set_shown(document, shown, matrix)
        if changed:
            self.fit()
        self._update_info()

    def _set_shown(self, document: Document, shown: np.ndarray, matrix: np.ndarray) -> None:
        if shown is not self._shown:
            self._shown = shown
            self._lut_key = None
            self.image_item.setImage(shown, autoLevels=False, levels=(0, lut_size(shown) - 1))
        self._geometry_matrix = matrix
        self.image_item.setTransform(self._item_transform(document))
        self.refresh_window()

    # --- the original's pixels at the detail the view needs ------------------------------------------
    def _original_region(self, document: Document, whole: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(array to paint, its pixel centres -> source): the pixels themselves for small images, the
        display copy while the whole image is in sight, a full-resolution crop around the view when
        zoomed past the copy's detail."""
        copy = document.display_copy
        if copy is None or whole or not self._wants_detail(copy):
            self._crop = self._crop_pixels = None
            if copy is None:
                return document.image.pixels, np.eye(3)
            level = copy.level_for(self._fit_per_device_pixel(document) if whole else self._per_device_pixel())
            sy, sx = level.scale
            return level.pixels, np.array([[sx, 0, (sx - 1) / 2], [0, sy, (sy - 1) / 2], [0, 0, 1]])
        wanted = self._visible_source_box(document)
        if self._crop is None or not _inside(wanted, self._crop) or _area(self._crop) > 9 * max(_area(wanted), 1):
            self._crop = _grown(wanted, document.image.shape)
            y0, y1, x0, x1 = self._crop
            self._crop_pixels = document.image.pixels[y0:y1, x0:x1]
        y0, _, x0, _ = self._crop
        return self._crop_pixels, np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1]])

    def _wants_detail(self, copy: DisplayCopy) -> bool:
        """Zoomed in so far that a copy pixel spans more than one device pixel (with some hysteresis)."""
        return self._per_device_pixel() < copy.factor * (1.0 if self._crop is not None else 0.8)

    def _per_device_pixel(self) -> float:
        """Source pixels per device pixel at the current zoom."""
        return self.view_box.viewPixelSize()[0] / max(self.devicePixelRatioF(), 1e-9)

    def _fit_per_device_pixel(self, document: Document) -> float:
        """The same once the whole image is fitted into the view (before the fit has happened)."""
        rows, cols = document.image.shape[:2]
        view = self.viewport().size()
        return max(rows / max(view.height(), 1), cols / max(view.width(), 1)) / max(self.devicePixelRatioF(), 1e-9)

    def _visible_source_box(self, document: Document) -> tuple[int, int, int, int]:
        rect = self.view_box.viewRect()
        x0, x1 = rect.left(), rect.right()
        if self.flip:
            cols = document.image.shape[1]
            x0, x1 = cols - x1, cols - x0
        return int(math.floor(rect.top())), int(math.ceil(rect.bottom())), int(math.floor(x0)), int(math.ceil(x1))

    def _refine(self) -> None:
        document = self.document
        if document is None or self.processed or document.display_copy is None:
            return
        shown, matrix = self._original_region(document)
        if shown is not self._shown:
            self._set_shown(document, shown, matrix)

    def refresh_window(self) -> None:
        document = self.document
        if document is None or self._shown is None:
            return
        preset = self._preset()
        if preset is None:
            return
        key = (id(self._shown), _preset_key(preset), document.inverted)
        if key != self._lut_key:
            self._lut_key = key
            self.image_item.setLookupTable(window_lut(preset, lut_size(self._shown), inverted=document.inverted))
        self._update_info()

    def _preset(self) -> WindowPreset | None:
        if self.document is None:
            return None
        return self.document.processed_window if self.processed else self.document.window

    def _item_transform(self, document: Document) -> QtGui.QTransform:
        # Item coordinates are pixel edges of the shown array; the geometry works on pixel
        # centres, hence the half-pixel shifts around it.
        half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
        to_source = half @ self._geometry_matrix @ np.linalg.inv(half)
        if self.flip:
            cols = document.image.shape[1]
            to_source = np.array([[-1, 0, cols], [0, 1, 0], [0, 0, 1]]) @ to_source
        m = to_source
        return QtGui.QTransform(m[0, 0], m[1, 0], m[0, 1], m[1, 1], m[0, 2], m[1, 2])

    # --- zoom --------------------------------------------------------------------
    def fit(self) -> None:
        """The whole image in view; in a hanging, pushed against the side its
        chest wall is on (`align`), so the two chest walls meet in the middle."""
        if self.document is None:
            return
        rows, cols = self.document.image.shape
        width, height = max(self.view_box.width(), 1.0), max(self.view_box.height(), 1.0)
        shown_width = max(cols, rows * width / height)  # data width visible once the height fits
        if self.align is None or shown_width <= cols * 1.001:
            self.view_box.setRange(QtCore.QRectF(0, 0, cols, rows), padding=0.01)
            return
        left = 0.0 if self.align == "left" else cols - shown_width
        self.view_box.setRange(QtCore.QRectF(left, 0, shown_width, rows), padding=0)

    def one_to_one(self) -> None:
        """One source pixel per screen pixel, around the current centre."""
        centre = self.view_box.viewRect().center()
        ratio = self.devicePixelRatioF()
        width, height = self.view_box.width() / ratio, self.view_box.height() / ratio
        self.view_box.setRange(QtCore.QRectF(centre.x() - width / 2, centre.y() - height / 2, width, height),
                               padding=0)

    def zoom_percent(self) -> float:
        size = self.view_box.viewPixelSize()[0]
        return 100.0 / size / self.devicePixelRatioF() if size > 0 else 100.0

    def source_range(self) -> QtCore.QRectF:
        return self.view_box.viewRect()

    # --- events ----------------------------------------------------------------
    def _on_window_dragged(self, dx: float, dy: float) -> None:
        if self.document is not None:
            self.window_dragged.emit(self.document, dx, dy, self.processed)

    def _on_range_changed(self) -> None:
        if self.document is not None and self.document.display_copy is not None and not self.processed:
            self._refine_timer.start()
        self._update_info()
        self._place_info()
        self.scale_bar.refresh()
        self.range_changed.emit(self)

    def keep_clear(self, boxes: list[tuple[float, float, float, float]]) -> None:
        """The view's text moves to the top right while it would cover a mark (`boxes`, scene coordinates,
        as drawn); back at the top left otherwise."""
        self._marks = list(boxes)
        self._place_info()

    def _place_info(self) -> None:
        covered = False
        info = QtCore.QRectF(self._info.geometry().translated(6 - self._info.x(), 6 - self._info.y()))
        for x0, y0, x1, y1 in getattr(self, "_marks", ()):
            corners = [self.view_box.mapViewToDevice(QtCore.QPointF(x, y)) for x, y in ((x0, y0), (x1, y1))]
            if any(c is None for c in corners):  # not laid out yet
                continue
            mark = QtCore.QRectF(corners[0], corners[1]).normalized().adjusted(-4, -4, 4, 4)
            covered |= mark.intersects(info)
        x = self.viewport().width() - self._info.width() - 6 if covered else 6
        self._info.move(max(6, x), 6)

    def set_active(self, active: bool) -> None:
        """A ring painted over the view, not a style sheet: restyling a canvas re-polishes its labels
        and relays it out, which cost ~20 ms of the UI thread whenever another view became active."""
        if active != self.active:
            self.active = active
            self.viewport().update()

    def drawForeground(self, painter: QtGui.QPainter, rect) -> None:  # noqa: N802 - Qt naming
        super().drawForeground(painter, rect)
        if self.active:
            painter.save()
            painter.resetTransform()
            painter.setPen(QtGui.QPen(QtGui.QColor(ACTIVE_RING), 2))
            painter.drawRect(QtCore.QRectF(self.viewport().rect()).adjusted(1, 1, -1, -1))
            painter.restore()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt naming
        super().resizeEvent(event)
        if getattr(self, "scale_bar", None) is not None:  # Qt resizes before __init__ has made it
            self.scale_bar.refresh()

    def _on_clicked(self, event) -> None:
        if self.document is None:
            return
        self.activated.emit(self.document)
        if event.button() == QtCore.Qt.MouseButton.LeftButton:
            x, y = self.source_point(event.scenePos())
            rows, cols = self.document.image.shape
            if 0 <= x < cols and 0 <= y < rows:
                self.clicked_at.emit(self.document, x, y)

    def attach_editor(self, editor) -> None:
        self.editor = editor
        self.view_box.editor = editor

    def source_point(self, scene_pos: QtCore.QPointF) -> tuple[float, float]:
        """Source-pixel coordinates (as stored, not mirrored) of a scene position."""
        point = self.view_box.mapSceneToView(scene_pos)
        x = point.x()
        if self.flip and self.document is not None:
            x = self.document.image.shape[1] - x
        return x, point.y()

    def _on_mouse_moved(self, scene_pos: QtCore.QPointF) -> None:
        document = self.document
        if document is None or self._shown is None:
            self.cursor_moved.emit("")
            return
        if self.processed:
            point = self.image_item.mapFromScene(scene_pos)
            col, row = math.floor(point.x()), math.floor(point.y())
            rows, cols = self._shown.shape[:2]
        else:  # the original: source pixels, whichever copy or crop is painted (through the item's own
            # transform, so the readout agrees with what is drawn even before the view's matrix updates)
            point = self.image_item.mapToParent(self.image_item.mapFromScene(scene_pos))
            x = document.image.shape[1] - point.x() if self.flip else point.x()
            col, row = math.floor(x), math.floor(point.y())
            rows, cols = document.image.shape
        if not (0 <= row < rows and 0 <= col < cols):
            self.loupe.hide()
            self.cursor_moved.emit("")
            return
        self.cursor_moved.emit(self._readout(col, row))
        if self.loupe_enabled:
            self._show_loupe(col, row, self.mapFromScene(scene_pos))
        if self.editor is not None:  # the rubber band of a polygon being placed
            view_point = self.view_box.mapSceneToView(scene_pos)
            self.editor.hover(view_point.x(), view_point.y())

    def _readout(self, col: int, row: int) -> str:
        document = self.document
        assert document is not None and self._shown is not None
        value = self._shown[row, col] if self.processed else document.image.pixels[row, col]
        if self.processed and document.processed is not None:
            x, y = document.processed.result.geometry.inverse_points(np.array([[col, row]], float))[0]
            value = np.ravel(document.processed.result.array[row, col])[0]  # first channel of RGB inputs
            value_text = f"processed {float(value):.4f}"
        else:
            x, y = col, row
            value_text = f"value {int(value)}"
        text = f"{document.name}  x {x:.0f}  y {y:.0f}"
        spacing = document.image.meta.pixel_spacing_mm
        if spacing:
            text += f"  ({x * spacing[1]:.1f} mm, {y * spacing[0]:.1f} mm)"
        return f"{text}  {value_text}"

    def _show_loupe(self, col: int, row: int, at: QtCore.QPoint) -> None:
        half = LOUPE_SIZE // (2 * LOUPE_ZOOM)
        if self.processed:
            image = self.image_item.qimage
            if image is None:
                return
            crop = image.copy(col - half, row - half, 2 * half, 2 * half)
        else:
            crop = self._source_loupe(col, row, half)
        if self.flip:
            crop = crop.mirrored(True, False)
        pixmap = QtGui.QPixmap.fromImage(crop).scaled(
            LOUPE_SIZE, LOUPE_SIZE, QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
            QtCore.Qt.TransformationMode.FastTransformation)
        self.loupe.setPixmap(pixmap)
        x = at.x() + 24 if at.x() + 24 + LOUPE_SIZE < self.width() else at.x() - 24 - LOUPE_SIZE
        y = min(max(0, at.y() - LOUPE_SIZE // 2), max(0, self.height() - LOUPE_SIZE))
        self.loupe.move(int(x), int(y))
        self.loupe.show()

    def _source_loupe(self, col: int, row: int, half: int) -> QtGui.QImage:
        """The full-resolution source pixels around (col, row) under the current window (never the copy)."""
        document = self.document
        assert document is not None
        pixels = document.image.pixels
        rows, cols = pixels.shape
        block = np.zeros((2 * half, 2 * half), np.uint8)
        y0, x0 = row - half, col - half
        ys, xs = slice(max(0, y0), min(rows, y0 + 2 * half)), slice(max(0, x0), min(cols, x0 + 2 * half))
        lut = self.image_item.lut
        values = pixels[ys, xs]
        if lut is not None and values.size:
            index = np.clip(np.rint(values), 0, len(lut) - 1).astype(np.intp)  # float originals too
            block[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] = lut[index]
        block = np.ascontiguousarray(block)
        return QtGui.QImage(block.data, block.shape[1], block.shape[0], block.strides[0],
                            QtGui.QImage.Format.Format_Grayscale8).copy()

    def set_loupe(self, enabled: bool) -> None:
        self.loupe_enabled = enabled
        if not enabled:
            self.loupe.hide()

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt naming
        self.loupe.hide()
        self.cursor_moved.emit("")
        super().leaveEvent(event)

    def _update_info(self) -> None:
        document = self.document
        if document is None:
            self._info.setText(self.caption or "No image here: open one (Ctrl+O) or double-click a file in the "
                                              "study browser (Ctrl+2)")
        else:
            preset = self._preset()
            lines = [f"{self.caption or document.anatomy.label}  {document.name}"]
            if preset is not None:
                lines.append(window_text(preset) + ("  inverted" if document.inverted else ""))
            state = ""
            if self.processed and document.processed is not None:
                state = "  processed (preview)" if document.processed.preview else "  processed"
            lines.append(f"zoom {self.zoom_percent():.0f}%{state}" + ("  mirrored" if self.flip else ""))
            self._info.setText("\n".join(lines))
        self._info.adjustSize()


class ScaleBar(QtWidgets.QWidget):
    """A round length at the bottom-left of the view: mm where the spacing is known, pixels otherwise."""

    def __init__(self, canvas: "ImageCanvas") -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.resize(220, 34)
        self.length_px, self.text = 0.0, ""

    def refresh(self) -> None:
        document = self.canvas.document
        if document is None or self.canvas.processed:
            self.hide()
            return
        per_screen_pixel = max(self.canvas.view_box.viewPixelSize()[0], 1e-9)
        self.length_px, self.text = scale_bar(per_screen_pixel, document.image.meta.pixel_spacing_mm)
        self.move(8, self.canvas.height() - self.height() - 6)
        self.show()
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt naming
        painter = QtGui.QPainter(self)
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        y, length = self.height() - 8, min(self.length_px, self.width() - 4)
        painter.setPen(QtGui.QPen(QtGui.QColor("#e8e8e8"), 2))
        painter.drawLine(QtCore.QPointF(2, y), QtCore.QPointF(2 + length, y))
        for x in (2, 2 + length):
            painter.drawLine(QtCore.QPointF(x, y - 5), QtCore.QPointF(x, y + 3))
        painter.drawText(QtCore.QPointF(4, y - 8), self.text)


def window_text(preset: WindowPreset) -> str:
    """The VOI in the overlay: its name (the file's preset, auto, custom), its function and W/L."""
    name = preset.name or "window"
    if preset.function == "LUT":
        return f"{name} (VOI LUT, {preset.width:.0f} entries)"
    return f"{name} · {preset.function}  W {preset.width:.0f}  L {preset.center:.0f}"


def _preset_key(preset: WindowPreset) -> tuple:
    lut = None if preset.lut is None else id(preset.lut)
    return preset.center, preset.width, preset.function, lut, preset.lut_first


def _inside(inner: tuple[int, int, int, int], outer: tuple[int, int, int, int]) -> bool:
    return inner[0] >= outer[0] and inner[1] <= outer[1] and inner[2] >= outer[2] and inner[3] <= outer[3]


def _area(box: tuple[int, int, int, int]) -> int:
    return max(0, box[1] - box[0]) * max(0, box[3] - box[2])


def _grown(box: tuple[int, int, int, int], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The visible box with half its size again on every side (panning stays inside it), within the image."""
    y0, y1, x0, x1 = box
    dy, dx = (y1 - y0) // 2 + 1, (x1 - x0) // 2 + 1
    rows, cols = shape
    y0, y1 = max(0, y0 - dy), min(rows, y1 + dy)
    x0, x1 = max(0, x0 - dx), min(cols, x1 + dx)
    return y0, max(y1, y0 + 1), x0, max(x1, x0 + 1)
