"""The preprocessing of what is on screen: a spec edit or a view change
schedules the views whose result is missing or stale (`ScheduleBook`, in
the state), a preview at screen resolution first, then full resolution, on
worker threads (`ProcessingRunner`); spec files are loaded and saved here."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from mammodesk.qt.feature import Feature, Panel
from mammodesk.qt.host import Host
from mammodesk.qt.viewer.pipeline import PipelinePanel
from mammodesk.qt.viewer.area import ViewerArea
from mammodesk.qt.workers import ProcessingRunner
from mammodesk.resources import resources_dir
from mammodesk.state.processing import ProcessedView, ScheduleBook, preview_scale
from mammodesk.state.viewer import Document

TRANSIENT_MS = 4000


class ProcessingController(QtCore.QObject, Feature):
    busy_changed = QtCore.Signal(int)  # processing jobs queued or running

    def __init__(self, host: Host, area: ViewerArea) -> None:
        super().__init__(host.widget)
        self.host, self.area = host, area
        self.panel = panel = PipelinePanel(host.viewer)
        self.runner = ProcessingRunner(self, workers=host.workers)
        self.book = ScheduleBook()
        self.busy = 0
        self.runner.result.connect(self._on_processed)
        self.runner.failed.connect(self._on_failed)
        self.runner.busy_changed.connect(self._on_busy)
        viewer = host.viewer
        viewer.active_changed.connect(lambda *_: self.schedule_visible())
        viewer.documents_changed.connect(self.schedule_visible)
        viewer.layout_changed.connect(lambda *_: self.schedule_visible())
        viewer.show_changed.connect(lambda *_: self.schedule_visible())
        viewer.pipeline.changed.connect(lambda _: self.schedule_visible(respec=True))
        panel.load_requested.connect(self.load_spec)
        panel.save_requested.connect(self.save_spec)
        panel.model_requested.connect(self.spec_from_model)
        panel.stop_requested.connect(self.stop)

    # --- the feature ---------------------------------------------------------------------------
    def panels(self) -> list[Panel]:
        return [Panel("pipeline", "Preprocessing", self.panel, "right", "Ctrl+1",
                      "Show or hide the preprocessing panel", menu_text="&Preprocessing Panel")]

    def cancel(self) -> bool:
        if not self.runner.busy:  # nothing under way: Esc goes on to the next feature, the results stay
            return False
        self.stop()
        return True

    def shutdown(self) -> None:
        self.runner.shutdown()

    def schedule_visible(self, respec: bool = False) -> None:
        """Start (or supersede) processing for the documents on screen whose result is missing or was
        computed for another spec."""
        viewer = self.host.viewer
        spec = viewer.pipeline.spec
        key = spec.to_json(indent=None)
        if viewer.show == "original":  # nothing processed on screen: compute when it is shown
            if respec:
                self.runner.stop()
                self.book.clear()
                for document in viewer.documents:
                    viewer.set_processed(document, None)
            return
        for canvas in self.area.visible_canvases():
            document = canvas.document
            if document is None or not self.book.due(document.id, key, respec):
                continue
            if not spec.ops:
                self.runner.generations.cancel(document.id)
                viewer.set_processed(document, None)
                continue
            ratio = canvas.devicePixelRatioF()
            scale = preview_scale(document.image.shape, (int(canvas.width() * ratio), int(canvas.height() * ratio)))
            self.runner.schedule(document, spec, scale)

    def stop(self) -> None:
        self.runner.stop()
        self.book.clear()  # the next edit or view change starts again
        self.host.status("Processing stopped")

    def _on_processed(self, document: Document, view: ProcessedView, generation: int) -> None:
        if self.runner.is_current(document, generation):
            self.host.viewer.set_processed(document, view)
            stage = "preview" if view.preview else "full resolution"
            self.host.status(f"{document.name}: {stage} in {view.elapsed_ms:.0f} ms", TRANSIENT_MS)

    def _on_failed(self, document: Document, message: str) -> None:
        self.book.forget(document.id)
        self.panel.error.setText(f"{document.name}: {message}")

    def _on_busy(self, count: int) -> None:
        self.busy = count
        self.panel.status.setText("Processing..." if count else "")
        self.busy_changed.emit(count)

    # --- spec files ----------------------------------------------------------------------------
    def load_spec(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.host.widget, "Load preprocessing spec", "",
                                                        "Spec (*.json)")
        if path:
            self.host.viewer.pipeline.load(path)

    def save_spec(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.host.widget, "Save preprocessing spec", "spec.json",
                                                        "Spec (*.json)")
        if path:
            self.host.viewer.pipeline.save(path)

    def spec_from_model(self) -> None:
        models = resources_dir() / "models"
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.host.widget, "Spec of a model", str(models),
                                                        "Models (*.onnx)")
        viewer = self.host.viewer
        if path and viewer.pipeline.load_from_model(path):
            viewer.set_show("processed" if viewer.layout == "2x2" else "side_by_side")
