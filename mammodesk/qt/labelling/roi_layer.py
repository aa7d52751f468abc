"""Draws a document's labelled ROIs over its image. The item's coordinates are
the core's source pixels (pixel centres at integers); its transform maps them
into the view, mirrored when the display is, so every stored coordinate stays
in source orientation whatever the view does. Labels ignore the transform
and so never read mirrored."""

from __future__ import annotations

import math

from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.annotations.geometry import handles
from mammodesk.annotations.model import Circle, Ellipse, Finding, FindingKind, Point, Polygon, Rect, Shape
from mammodesk.annotations.taxonomy import finding_type
from mammodesk.state.measurements import length_text

COLOURS = {
    FindingKind.MASS: "#ff9a3c",
    FindingKind.CALCIFICATION: "#43d3f0",
    FindingKind.ARCHITECTURAL_DISTORTION: "#e36bff",
    FindingKind.ASYMMETRY: "#f4e04d",
    FindingKind.NORMAL: "#6ddf7a",
    FindingKind.OTHER: "#e8e8e8",
}
HANDLE_PX = 8  # handle size on screen
RULER_COLOUR = "#7cf0ff"
READER_COLOURS = ("#b388ff", "#80cbc4", "#ffab91", "#c5e1a5")  # other readers, dashed and read-only
ABBREVIATIONS = {"mass": "Mass", "calcification": "Calc", "architectural_distortion": "AD", "asymmetry": "Asym",
                 "normal": "Normal"}


def label_text(index: int, finding: Finding) -> str:
    name = finding_type(finding.kind, finding.attributes)
    text = f"{index} {ABBREVIATIONS.get(name, name)}"
    if finding.pathology.value != "unknown":
        text += f" {finding.pathology.value[0].upper()}"
    if finding.birads is not None:
        text += f" BR{finding.birads}"
    return text


class RoiLayer(QtWidgets.QGraphicsObject):
    def __init__(self, view_box) -> None:
        super().__init__()
        self.setZValue(20)  # above the image and the heat map
        self.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)
        view_box.addItem(self, ignoreBounds=True)
        self.findings: tuple[Finding, ...] = ()
        self.selected: str | None = None
        self.preview: Shape | None = None  # the ROI being drawn or dragged
        self.preview_uid: str | None = None  # the finding `preview` replaces while dragging
        self.trace: list[tuple[float, float]] = []  # polygon vertices placed so far / freehand trace
        self.cursor: tuple[float, float] | None = None
        self._size = (1, 1)
        self._labels: dict[str, QtWidgets.QGraphicsSimpleTextItem] = {}  # finding uid -> its label
        self.measurements: list = []  # ruler segments
        self.ruler = None  # the segment being measured
        self.spacing: tuple[float, float] | None = None
        self._ruler_labels: list[QtWidgets.QGraphicsSimpleTextItem] = []
        self.others: list = []  # [(reader, findings)]: other readers' labels, drawn read-only
        self._other_labels: list[QtWidgets.QGraphicsSimpleTextItem] = []

    def set_geometry(self, shape: tuple[int, int], flip: bool) -> None:
        rows, cols = shape
        self._size = (rows, cols)
        transform = QtGui.QTransform(-1, 0, 0, 1, cols - 0.5, 0.5) if flip else QtGui.QTransform(1, 0, 0, 1, 0.5, 0.5)
        self.prepareGeometryChange()
        self.setTransform(transform)

    def set_findings(self, findings: tuple[Finding, ...], selected: str | None) -> None:
        self.findings, self.selected = findings, selected
        self._rebuild_labels()
        self.update()

    def set_preview(self, shape: Shape | None, uid: str | None = None) -> None:
        """Called on every mouse move of a drag: only the dragged ROI's label moves."""
        previous, self.preview, self.preview_uid = self.preview_uid, shape, uid
        for moved in {previous, uid} - {None}:
            finding = next((f for f in self.findings if f.uid == moved), None)
            label = self._labels.get(moved)
            box = (shape if moved == uid else finding.shape).bbox() if finding is not None else None
            if label is not None and box is not None:
                label.setPos(box[0], box[1])
        self.update()

    def set_others(self, readers: list) -> None:
        self.others = list(readers)
        for item in self._other_labels:
            if item.scene() is not None:
                item.scene().removeItem(item)
        self._other_labels = []
        for index, (reader, findings) in enumerate(self.others):
            for finding in findings:
                box = finding.shape.bbox() if finding.shape is not None else None
                if box is None:
                    continue
                item = _Label(reader.replace("^", " ").strip(), self)
                item.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
                item.setBrush(QtGui.QColor(READER_COLOURS[index % len(READER_COLOURS)]))
                item.setPos(box[0], box[3])
                item.setTransform(QtGui.QTransform.fromTranslate(0, 3))  # below the outline
                self._other_labels.append(item)
        self.update()

    def set_measurements(self, segments: list, spacing: tuple[float, float] | None) -> None:
        self.measurements, self.spacing = list(segments), spacing
        self._rebuild_ruler_labels()
        self.update()

    def set_ruler(self, segment) -> None:
        self.ruler = segment
        self._rebuild_ruler_labels()
        self.update()

    def _rebuild_ruler_labels(self) -> None:
        for item in self._ruler_labels:
            if item.scene() is not None:
                item.scene().removeItem(item)
        self._ruler_labels = []
        for segment in self.measurements + ([self.ruler] if self.ruler else []):
            item = _Label(length_text(segment, self.spacing), self)
            item.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            item.setBrush(QtGui.QColor(RULER_COLOUR))
            (x0, y0), (x1, y1) = segment
            item.setPos((x0 + x1) / 2, (y0 + y1) / 2)
            item.setTransform(QtGui.QTransform.fromTranslate(6, 4))
            self._ruler_labels.append(item)

    def set_trace(self, points: list[tuple[float, float]], cursor: tuple[float, float] | None = None) -> None:
        self.trace, self.cursor = list(points), cursor
        self.update()

    def boundingRect(self) -> QtCore.QRectF:  # noqa: N802 - Qt naming
        rows, cols = self._size
        margin = max(rows, cols)  # circles may overhang the image
        return QtCore.QRectF(-margin, -margin, cols + 2 * margin, rows + 2 * margin)

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        pixel = 1.0 / max(math.hypot(painter.worldTransform().m11(), painter.worldTransform().m12()), 1e-9)
        for finding in self.findings:
            shape = self.preview if finding.uid == self.preview_uid else finding.shape
            if shape is None or shape.bbox() is None:
                continue
            selected = finding.uid == self.selected
            colour = QtGui.QColor(COLOURS.get(finding.kind, "#e8e8e8"))
            _draw(painter, shape, _pen(colour, 3.0 if selected else 1.8), pixel)
            if selected:
                _draw_handles(painter, shape, colour, pixel)
        if self.preview is not None and self.preview_uid is None:
            _draw(painter, self.preview, _pen(QtGui.QColor("#ffffff"), 1.5, dashed=True), pixel)
        if self.trace:
            path = QtGui.QPolygonF([QtCore.QPointF(x, y) for x, y in self.trace + ([self.cursor] if self.cursor else [])])
            painter.setPen(_pen(QtGui.QColor("#ffffff"), 1.5, dashed=True))
            painter.drawPolyline(path)
        for segment in self.measurements + ([self.ruler] if self.ruler else []):
            _draw_ruler(painter, segment, pixel)
        for index, (_, findings) in enumerate(self.others):
            pen = _pen(QtGui.QColor(READER_COLOURS[index % len(READER_COLOURS)]), 1.6, dashed=True)
            for finding in findings:
                if finding.shape is not None and finding.shape.bbox() is not None:
                    _draw(painter, finding.shape, pen, pixel)

    def _rebuild_labels(self) -> None:
        for item in self._labels.values():
            item.setParentItem(None)
            if item.scene() is not None:
                item.scene().removeItem(item)
        self._labels = {}
        for index, finding in enumerate(self.findings, start=1):
            shape = self.preview if finding.uid == self.preview_uid else finding.shape
            box = shape.bbox() if shape is not None else None
            if box is None:
                continue
            item = _Label(label_text(index, finding), self)
            item.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            item.setBrush(QtGui.QColor(COLOURS.get(finding.kind, "#e8e8e8")))
            font = item.font()
            font.setBold(finding.uid == self.selected)
            item.setFont(font)
            item.setPos(box[0], box[1])
            item.setTransform(QtGui.QTransform.fromTranslate(0, -item.boundingRect().height() - 3))  # above it
            self._labels[finding.uid] = item


class _Label(QtWidgets.QGraphicsSimpleTextItem):
    """Text on a dark plate, readable over bright tissue."""

    def paint(self, painter: QtGui.QPainter, option, widget=None) -> None:
        painter.fillRect(self.boundingRect().adjusted(-2, -1, 2, 1), QtGui.QColor(0, 0, 0, 150))
        super().paint(painter, option, widget)


def _pen(colour: QtGui.QColor, width: float, dashed: bool = False) -> QtGui.QPen:
    pen = QtGui.QPen(colour, width)
    pen.setCosmetic(True)
    if dashed:
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
    return pen


def _draw(painter: QtGui.QPainter, shape: Shape, pen: QtGui.QPen, pixel: float) -> None:
    painter.setPen(pen)
    painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
    if isinstance(shape, Rect):
        x0, y0, x1, y1 = shape.bbox()
        painter.drawRect(QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
    elif isinstance(shape, Circle):
        painter.drawEllipse(QtCore.QPointF(shape.cx, shape.cy), shape.radius, shape.radius)
    elif isinstance(shape, Ellipse):
        painter.save()
        painter.translate(shape.cx, shape.cy)
        painter.rotate(shape.angle_deg)
        painter.drawEllipse(QtCore.QPointF(0, 0), shape.rx, shape.ry)
        painter.restore()
    elif isinstance(shape, Polygon):
        painter.drawPolygon(QtGui.QPolygonF([QtCore.QPointF(x, y) for x, y in shape.points]))
    elif isinstance(shape, Point):
        arm = 7 * pixel
        painter.drawLine(QtCore.QPointF(shape.x - arm, shape.y), QtCore.QPointF(shape.x + arm, shape.y))
        painter.drawLine(QtCore.QPointF(shape.x, shape.y - arm), QtCore.QPointF(shape.x, shape.y + arm))


def _draw_ruler(painter: QtGui.QPainter, segment, pixel: float) -> None:
    """A caliper: the line and a short tick across each end."""
    (x0, y0), (x1, y1) = segment
    painter.setPen(_pen(QtGui.QColor(RULER_COLOUR), 1.6))
    painter.drawLine(QtCore.QPointF(x0, y0), QtCore.QPointF(x1, y1))
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    nx, ny = -(y1 - y0) / length * 6 * pixel, (x1 - x0) / length * 6 * pixel
    for x, y in ((x0, y0), (x1, y1)):
        painter.drawLine(QtCore.QPointF(x - nx, y - ny), QtCore.QPointF(x + nx, y + ny))


def _draw_handles(painter: QtGui.QPainter, shape: Shape, colour: QtGui.QColor, pixel: float) -> None:
    half = HANDLE_PX / 2 * pixel
    painter.setPen(_pen(QtGui.QColor("#000000"), 1))
    painter.setBrush(colour)
    for _, x, y in handles(shape):
        painter.drawRect(QtCore.QRectF(x - half, y - half, 2 * half, 2 * half))
