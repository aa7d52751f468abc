"""Mouse tools for labelling on one canvas: draw rectangles, ellipses, circles
(centre + radius, the MIAS convention), polygons, freehand outlines and points;
select, move, resize and edit vertices. Every finished gesture is one edit in
the Qt-free `LabellingState` (so one undo step); while dragging only the
layer's preview changes. Coordinates are source pixels, snapped to the image.

With the select tool a drag that starts off every ROI pans, as elsewhere;
with a drawing tool the middle button pans."""

from __future__ import annotations

import math

from PySide6 import QtCore

from mammodesk.annotations import geometry
from mammodesk.annotations.model import Circle, Ellipse, Point, Polygon, Rect
from mammodesk.qt.labelling.roi_layer import HANDLE_PX, RoiLayer
from mammodesk.state.labelling import LabellingState

DRAG_TOOLS = ("rect", "ellipse", "circle", "freehand", "measure")


class RoiEditor:
    def __init__(self, canvas, labelling: LabellingState) -> None:
        self.canvas = canvas
        self.labelling = labelling
        self.layer = RoiLayer(canvas.view_box)
        self._drag: dict | None = None
        self.vertices: list[tuple[float, float]] = []  # the polygon being placed

    # --- state -> layer ------------------------------------------------------------------
    @property
    def key(self) -> int | None:
        document = self.canvas.document
        return document.id if document is not None and document.id in self.labelling.sheets else None

    def refresh(self) -> None:
        document = self.canvas.document
        sheet = self.labelling.sheet(document.id) if document is not None else None
        if sheet is None:
            self.layer.set_findings((), None)
            self.cancel()
            return
        self.layer.set_geometry(document.image.shape, self.canvas.flip)
        self.layer.set_findings(sheet.labels.findings, sheet.selected)
        self.layer.set_measurements(self.labelling.measurements.get(document.id, []),
                                    document.image.meta.pixel_spacing_mm)
        self.layer.set_others(self.labelling.others.get(document.id, []))

    # --- coordinates ---------------------------------------------------------------------------
    def model_point(self, view_box_pos: QtCore.QPointF) -> tuple[float, float]:
        point = self.canvas.view_box.mapToView(view_box_pos)
        return self.from_view(point.x(), point.y())

    def from_view(self, x: float, y: float) -> tuple[float, float]:
        if self.canvas.flip:
            x = self.canvas.document.image.shape[1] - x
        return x - 0.5, y - 0.5

    def to_view(self, x: float, y: float) -> tuple[float, float]:
        if self.canvas.flip:
            return self.canvas.document.image.shape[1] - x - 0.5, y + 0.5
        return x + 0.5, y + 0.5

    def widget_point(self, x: float, y: float) -> QtCore.QPoint:
        """Where source pixel (x, y) is on the canvas widget (tests, demos)."""
        vx, vy = self.to_view(x, y)
        scene = self.canvas.view_box.mapViewToScene(QtCore.QPointF(vx, vy))
        return self.canvas.mapFromScene(scene)

    def _pixel(self) -> float:
        """Source pixels per screen pixel."""
        return max(self.canvas.view_box.viewPixelSize()[0], 1e-6)

    def _bounds(self) -> tuple[int, int]:
        return self.canvas.document.image.shape

    # --- picking ----------------------------------------------------------------------------------
    def hit(self, x: float, y: float) -> tuple[str, str, str | None] | None:
        """("handle", uid, name) on the selected ROI's handle, ("body", uid, None) on
        or inside an ROI (the smallest), else None."""
        sheet = self.labelling.sheet(self.key) if self.key is not None else None
        if sheet is None:
            return None
        tolerance = (HANDLE_PX / 2 + 2) * self._pixel()
        if sheet.selected is not None:
            shape = sheet.finding(sheet.selected).shape
            for name, hx, hy in geometry.handles(shape) if shape is not None else []:
                if abs(hx - x) <= tolerance and abs(hy - y) <= tolerance:
                    return "handle", sheet.selected, name
        best = None
        for finding in sheet.labels.findings:
            shape = finding.shape
            if shape is None or shape.bbox() is None:
                continue
            inside = not isinstance(shape, Point) and shape.contains(x, y)
            if inside or geometry.edge_distance(shape, x, y) <= tolerance:
                size = geometry.area(shape)
                if best is None or size <= best[0]:
                    best = (size, finding.uid)
        return ("body", best[1], None) if best else None

    # --- mouse --------------------------------------------------------------------------------------
    def drag(self, ev) -> bool:
        """A pyqtgraph drag event on the view box; False lets the view pan."""
        if ev.button() != QtCore.Qt.MouseButton.LeftButton or self.key is None:
            return False
        if ev.isStart():
            self._drag = self._start(self.model_point(ev.buttonDownPos()))
        if self._drag is None:
            return False
        ev.accept()
        point = self.model_point(ev.pos())
        if ev.isFinish():
            self._finish(point)
        else:
            self._update(point)
        return True

    def _start(self, start: tuple[float, float]) -> dict | None:
        tool, key = self.labelling.tool, self.key
        if tool == "select":
            hit = self.hit(*start)
            if hit is None:
                return None
            kind, uid, handle = hit
            self.labelling.select(key, uid)
            return {"mode": kind, "uid": uid, "handle": handle, "start": start,
                    "shape": self.labelling.sheets[key].finding(uid).shape}
        if tool in DRAG_TOOLS:
            start = geometry.clamp_point(*start, self._bounds())
            return {"mode": "draw", "tool": tool, "start": start, "trace": [start]}
        return None

    def _update(self, point: tuple[float, float]) -> None:
        drag = self._drag
        assert drag is not None
        if drag["mode"] == "draw" and drag["tool"] == "freehand":
            point = geometry.clamp_point(*point, self._bounds())
            last = drag["trace"][-1]
            if math.hypot(point[0] - last[0], point[1] - last[1]) >= self._pixel():
                drag["trace"].append(geometry.clamp_point(*point, self._bounds()))
            self.layer.set_trace(drag["trace"])
            return
        if drag.get("tool") == "measure":
            self.layer.set_ruler((drag["start"], geometry.clamp_point(*point, self._bounds())))
            return
        shape = self._dragged_shape(drag, point)
        self.layer.set_preview(shape, drag.get("uid"))

    def _dragged_shape(self, drag: dict, point: tuple[float, float]):
        bounds = self._bounds()
        if drag["mode"] == "body":
            return geometry.move_within(drag["shape"], point[0] - drag["start"][0], point[1] - drag["start"][1],
                                        bounds)
        if drag["mode"] == "handle":
            return geometry.drag_handle(drag["shape"], drag["handle"], *point, bounds)
        (x0, y0), (x1, y1) = drag["start"], geometry.clamp_point(*point, bounds)
        if drag["tool"] == "rect":
            return Rect(x0, y0, x1, y1)
        if drag["tool"] == "ellipse":
            return Ellipse((x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2)
        return Circle(x0, y0, geometry.snap(math.hypot(x1 - x0, y1 - y0)))

    def _finish(self, point: tuple[float, float]) -> None:
        drag, key = self._drag, self.key
        self._drag = None
        self.layer.set_preview(None)
        self.layer.set_trace([])
        if drag is None or key is None:
            return
        if drag.get("tool") == "measure":
            self.layer.set_ruler(None)
            end = geometry.clamp_point(*point, self._bounds())
            if math.dist(drag["start"], end) >= max(1.0, 3 * self._pixel()):
                self.labelling.add_measurement(key, (drag["start"], end))
            return
        if drag["mode"] in ("body", "handle"):
            shape = self._dragged_shape(drag, point)
            if shape != drag["shape"]:
                self.labelling.set_shape(key, drag["uid"], shape,
                                         "Move ROI" if drag["mode"] == "body" else "Resize ROI")
            return
        if drag["tool"] == "freehand":
            points = geometry.simplify(drag["trace"] + [geometry.clamp_point(*point, self._bounds())], self._pixel())
            if len(points) >= 3 and geometry.area(Polygon(points)) >= 1.0:
                self.labelling.add_finding(key, Polygon(points), text="Add freehand outline")
            return
        shape = self._dragged_shape(drag, point)
        x0, y0, x1, y1 = shape.bbox()
        if max(x1 - x0, y1 - y0) >= max(1.0, 3 * self._pixel()):  # not a slip of the hand
            self.labelling.add_finding(key, shape)

    def click(self, ev) -> bool:
        if ev.button() != QtCore.Qt.MouseButton.LeftButton or self.key is None:
            return False
        key, tool = self.key, self.labelling.tool
        point = self.model_point(ev.pos())
        if tool == "point":
            self.labelling.add_finding(key, Point(*geometry.clamp_point(*point, self._bounds())))
            return True
        if tool == "polygon":
            self._polygon_click(point, ev.double())
            return True
        hit = self.hit(*point)
        shift = bool(ev.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier)
        if hit is not None and tool == "select":
            kind, uid, handle = hit
            shape = self.labelling.sheets[key].finding(uid).shape
            if isinstance(shape, Polygon) and kind == "handle" and shift and len(shape.points) > 3:
                self.labelling.set_shape(key, uid, geometry.delete_vertex(shape, int(handle[1:])), "Delete vertex")
                return True
            if isinstance(shape, Polygon) and ev.double() and kind == "body":
                x, y = geometry.clamp_point(*point, self._bounds())
                self.labelling.set_shape(key, uid, geometry.insert_vertex(shape, x, y), "Add vertex")
                return True
        self.labelling.select(key, hit[1] if hit else None)
        return hit is not None

    def _polygon_click(self, point: tuple[float, float], double: bool) -> None:
        point = geometry.clamp_point(*point, self._bounds())
        near_first = bool(self.vertices) and math.hypot(point[0] - self.vertices[0][0],
                                                        point[1] - self.vertices[0][1]) <= HANDLE_PX * self._pixel()
        if double or (near_first and len(self.vertices) >= 3):
            self.finish_polygon()
            return
        self.vertices.append(point)
        self.layer.set_trace(self.vertices)

    def hover(self, view_x: float, view_y: float) -> None:
        if self.vertices:
            self.layer.set_trace(self.vertices, self.from_view(view_x, view_y))

    # --- keys -------------------------------------------------------------------------------------------
    def finish_polygon(self) -> bool:
        vertices, self.vertices = self.vertices, []
        self.layer.set_trace([])
        if len(vertices) >= 3 and self.key is not None:
            self.labelling.add_finding(self.key, Polygon(tuple(vertices)), text="Add polygon")
            return True
        return False

    def remove_last_vertex(self) -> bool:
        if not self.vertices:
            return False
        self.vertices.pop()
        self.layer.set_trace(self.vertices)
        return True

    def cancel(self) -> bool:
        """Esc: drop the polygon being placed or the drag in progress."""
        busy = bool(self.vertices) or self._drag is not None
        self.vertices, self._drag = [], None
        self.layer.set_trace([])
        self.layer.set_preview(None)
        return busy


class RoiEditors:
    """Labelling's layer on the canvases: one editor on each, which sees left drags and clicks first."""

    def __init__(self, labelling: LabellingState) -> None:
        self.labelling = labelling
        self.editors: dict[object, RoiEditor] = {}  # canvas -> its editor
        labelling.changed.connect(self.refresh)
        labelling.selection_changed.connect(lambda key, _uid: self.refresh(key))

    def attach(self, canvas) -> None:
        self.editors[canvas] = editor = RoiEditor(canvas, self.labelling)
        canvas.attach_editor(editor)

    def refresh(self, key: int | None = None) -> None:
        for canvas, editor in self.editors.items():
            if key is None or (canvas.document is not None and canvas.document.id == key):
                editor.refresh()

    def editor_for(self, document) -> RoiEditor | None:
        """The editor of the visible view showing `document`."""
        for canvas, editor in self.editors.items():
            if document is not None and canvas.isVisible() and canvas.document is document:
                return editor
        return None
