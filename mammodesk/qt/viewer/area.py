"""The canvas area: one image (original, processed, or both side by side) or
the 2x2 hanging, with zoom/pan synchronised across the views. The features
draw over the images through their layers; the area knows none of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6 import QtCore, QtWidgets

from mammodesk.io.views import SLOTS
from mammodesk.qt.viewer.canvas import ImageCanvas
from mammodesk.state.viewer import Document, ViewerState

if TYPE_CHECKING:
    from mammodesk.qt.feature import CanvasLayer


class ViewerArea(QtWidgets.QWidget):
    cursor_text = QtCore.Signal(str)
    clicked_at = QtCore.Signal(object, float, float)  # document, source x, source y

    def __init__(self, state: ViewerState, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.layers: list[CanvasLayer] = []  # what the features draw over the images
        self.canvases = [ImageCanvas(self) for _ in range(4)]
        self._grid = QtWidgets.QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(2)
        self._syncing = False
        self._loupe = False
        self._cells = 0  # panes laid out in the grid
        for canvas in self.canvases:
            canvas.window_dragged.connect(self._on_window_dragged)
            canvas.cursor_moved.connect(self.cursor_text)
            canvas.activated.connect(state.set_active)
            canvas.range_changed.connect(self._on_range_changed)
            canvas.clicked_at.connect(self.clicked_at)
        state.documents_changed.connect(self.rebuild)
        state.active_changed.connect(lambda *_: self.rebuild())
        state.layout_changed.connect(lambda *_: self.rebuild(fit=True))
        state.show_changed.connect(lambda *_: self.rebuild())
        state.orientation_changed.connect(lambda: self.rebuild(fit=True))
        state.window_changed.connect(self._on_window_changed)
        state.processed_changed.connect(self._on_processed)
        self.rebuild()

    # --- what goes where ----------------------------------------------------------
    def assignments(self) -> list[tuple[Document | None, bool, str]]:
        """(document, processed?, caption) for each visible canvas."""
        state = self.state
        processed = state.show != "original"
        panes = state.comparison() if state.layout == "priors" else []
        if panes:
            return [(document, processed, caption) for document, caption in panes]
        if state.layout in ("2x2", "priors"):  # priors with one study open: the hanging
            hanging = state.hanging()  # each image is captioned with its own anatomy, never the slot's name
            return [(hanging.get(slot), processed, hanging[slot].anatomy.label if slot in hanging else f"{slot}: empty")
                    for slot in hanging_slots(hanging)]
        if state.show == "side_by_side":
            return [(state.active, False, "original"), (state.active, True, "processed")]
        return [(state.active, processed, "")]

    def visible_canvases(self) -> list[ImageCanvas]:
        return [c for c in self.canvases if c.isVisible()]

    def rebuild(self, fit: bool = False) -> None:
        plan = self.assignments()
        if len(plan) != self._cells:  # the grid changes only when the number of panes does
            self._lay_out(len(plan))
        for index, (document, processed, caption) in enumerate(plan):
            canvas = self.canvases[index]
            flip = document is not None and self.state.displayed_flip(document)
            refit = fit or document is not canvas.document or flip != canvas.flip
            in_hanging = self.state.layout != "single" and document is not None
            canvas.align = self.state.displayed_chest_wall(document) if in_hanging else None
            canvas.show_document(document, processed=processed, flip=flip, caption=caption)
            canvas.set_loupe(self._loupe)
            if refit:
                canvas.fit()
            canvas.set_active(document is not None and document is self.state.active and len(plan) > 1)
        for layer in self.layers:
            layer.refresh()
        if len(plan) == 2 and plan[0][0] is plan[1][0]:  # original and processed: the same coordinates
            self.canvases[1].view_box.setXLink(self.canvases[0].view_box)
            self.canvases[1].view_box.setYLink(self.canvases[0].view_box)
        else:
            self.canvases[1].view_box.setXLink(None)
            self.canvases[1].view_box.setYLink(None)

    def _lay_out(self, cells: int) -> None:
        self._cells = cells
        for canvas in self.canvases:
            self._grid.removeWidget(canvas)
            canvas.hide()
        columns = 2 if cells > 1 else 1
        for index in range(2):  # equal cells, whatever each canvas would like
            self._grid.setRowStretch(index, 1 if index < (cells + columns - 1) // columns else 0)
            self._grid.setColumnStretch(index, 1 if index < columns else 0)
        for index in range(cells):
            self._grid.addWidget(self.canvases[index], index // columns, index % columns)
            self.canvases[index].show()

    def canvases_showing(self, document: Document) -> list[ImageCanvas]:
        return [c for c in self.visible_canvases() if c.document is document]

    # --- commands ---------------------------------------------------------------------
    def fit(self) -> None:
        for canvas in self.visible_canvases():
            canvas.fit()

    def zoom(self, factor: float) -> None:
        """Zoom the active view about its centre (factor < 1: closer)."""
        canvas = self.active_canvas()
        if canvas is not None:
            canvas.view_box.scaleBy((factor, factor))

    def one_to_one(self) -> None:
        canvas = self.active_canvas()
        if canvas is not None:
            canvas.one_to_one()

    def active_canvas(self) -> ImageCanvas | None:
        visible = self.visible_canvases()
        for canvas in visible:
            if canvas.document is self.state.active and canvas.document is not None:
                return canvas
        return visible[0] if visible else None

    def set_loupe(self, enabled: bool) -> None:
        self._loupe = enabled
        for canvas in self.canvases:
            canvas.set_loupe(enabled)

    # --- the features' layers ----------------------------------------------------------------
    def add_layer(self, layer: CanvasLayer) -> None:
        """A feature's drawing over the images: on every canvas, refreshed after every relayout."""
        self.layers.append(layer)
        for canvas in self.canvases:
            layer.attach(canvas)
        layer.refresh()

    # --- state -> view ---------------------------------------------------------------
    def _on_window_changed(self, document: Document) -> None:
        for canvas in self.canvases_showing(document):
            canvas.refresh_window()

    def _on_processed(self, document: Document) -> None:
        for canvas in self.canvases_showing(document):
            if self.state.show != "original":
                canvas.show_document(document, processed=canvas.processed or canvas.caption != "original",
                                     flip=canvas.flip, caption=canvas.caption)

    def _on_window_dragged(self, document: Document, dx: float, dy: float, processed: bool) -> None:
        """Window/level; comparing with priors, every view shown follows (the drag is relative to
        each image's value range, so films and digital images move alike)."""
        self.state.set_active(document)
        shown = {id(c.document): c.document for c in self.visible_canvases() if c.document is not None}
        targets = list(shown.values()) if self.state.layout == "priors" else [document]
        for target in targets:
            self.state.drag_window(target, dx, dy, processed=processed)

    # --- zoom/pan synchronisation in the hanging ---------------------------------------------
    def _on_range_changed(self, source: ImageCanvas) -> None:
        """In the 2x2 layout the other views follow in relative coordinates,
        mirrored between left and right breasts so chest walls stay matched."""
        if self._syncing or self.state.layout == "single" or source.document is None:
            return
        rect = source.source_range()
        rows, cols = source.document.image.shape
        u0, u1 = rect.left() / cols, rect.right() / cols
        v0, v1 = rect.top() / rows, rect.bottom() / rows
        source_side = self.state.displayed_chest_wall(source.document)
        self._syncing = True
        try:
            for canvas in self.visible_canvases():
                if canvas is source or canvas.document is None:
                    continue
                r, c = canvas.document.image.shape
                side = self.state.displayed_chest_wall(canvas.document)
                a, b = (u0, u1) if side == source_side else (1 - u1, 1 - u0)
                canvas.view_box.setRange(QtCore.QRectF(a * c, v0 * r, (b - a) * c, (v1 - v0) * r), padding=0)
        finally:
            self._syncing = False


def hanging_slots(hanging: dict) -> tuple[str, ...]:
    """The slots a hanging shows: all four, or, when every view present is of one family (MLOs only, as MIAS
    has), that family's two side by side (1x2), R left and L right, rather than half a screen of empty slots."""
    families = {slot[1:] for slot in hanging}
    if len(families) == 1:
        (family,) = families
        return tuple(slot for slot in SLOTS if slot[1:] == family)
    return SLOTS
