"""Wires the second opinion into the main window: the model panel's requests
become jobs for the model worker, answers land in `OpinionState`, and the
canvas clicks place ROIs while the ROI tool is on."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.inference import ModelEntry
from mammodesk.inference.runner import roi_window
from mammodesk.qt.feature import Feature, Panel, set_checked
from mammodesk.qt.host import Host
from mammodesk.qt.opinion.layer import OpinionLayer
from mammodesk.qt.opinion.panel import ModelPanel
from mammodesk.qt.opinion.worker import OpinionRunner
from mammodesk.qt.workers import emit_from_worker
from mammodesk.state.opinion import Opinion, OpinionState
from mammodesk.state.viewer import Document

DEFAULT_ROI_PX = 120
MODEL_FOLDERS = "models/folders"  # the settings key of the model folders the user added


class SecondOpinion(QtCore.QObject, Feature):
    answered = QtCore.Signal(object)  # Opinion, after it is recorded in the state
    idle = QtCore.Signal()  # every queued job has finished
    models_verified = QtCore.Signal(bool)  # the digests were checked off the UI thread; True: a model changed

    def __init__(self, host: Host, opinions: OpinionState, *, prefer_gpu: bool = True) -> None:
        super().__init__(host.widget)
        viewer = host.viewer
        self.viewer, self.opinions, self.settings, self.workers = viewer, opinions, host.settings, host.workers
        opinions.open_documents = lambda: list(viewer.documents)
        for folder in self._remembered_folders():  # models trained here: added once, there at every start
            if Path(folder).is_dir():
                opinions.library.add_folder(folder)
        self.panel = ModelPanel(opinions, self.workers)
        self.layer = OpinionLayer(viewer, opinions)
        self.worker = OpinionRunner(opinions.library, self.workers, self, prefer_gpu=prefer_gpu)
        self.placing = False
        self.panel.run_requested.connect(self.run)
        self.panel.stop_requested.connect(self.stop)
        self.panel.add_folder_requested.connect(self._on_add_folder)
        self.panel.place_roi.toggled.connect(self.set_placing)
        self.panel.clear_rois.clicked.connect(lambda: viewer.active and opinions.clear_rois(viewer.active))
        self.worker.finished.connect(self._on_finished)
        self.worker.progress.connect(self.panel.set_progress)
        self.worker.busy_changed.connect(self._on_busy)
        viewer.documents_changed.connect(self._forget_closed)
        show_exam = lambda *_args: self.panel.show_exam(opinions.exam(list(viewer.documents)),  # noqa: E731
                                                        running=bool(self.worker.busy))
        self.worker.busy_changed.connect(show_exam)
        opinions.opinions_changed.connect(show_exam)
        opinions.selected_changed.connect(show_exam)
        opinions.active_changed.connect(show_exam)
        viewer.documents_changed.connect(show_exam)
        viewer.active_changed.connect(opinions.follow_active)
        opinions.follow_active(viewer.active)
        opinions.selected_changed.connect(self._activate_its_view)
        self._warmed = False
        viewer.documents_changed.connect(self._warm_once)
        self.models_verified.connect(lambda changed: changed and opinions.models_changed.emit())
        opinions.models_changed.connect(self._verify_models)
        self._verify_models()

    def _verify_models(self) -> None:
        """Weights digests hash whole files: never on the UI thread (a damaged file turns red when found)."""
        if self.opinions.library.pending():
            try:
                self.workers.submit("verify", lambda: emit_from_worker(self.models_verified,
                                                                       self.opinions.verify_models()))
            except RuntimeError:  # shut down while closing
                pass

    # --- the feature ---------------------------------------------------------------------------
    def panels(self) -> list[Panel]:
        return [Panel("models", "Models", self.panel, "right", "Ctrl+4", "Show or hide the model panel",
                      menu_text="M&odels Panel", tab_with="pipeline", scrolls=True)]

    def canvas_layer(self) -> OpinionLayer:
        return self.layer

    def connect_actions(self, a: dict[str, QtGui.QAction], area) -> None:
        a["run_models"].triggered.connect(lambda: self.panel.run_button.click())
        a["run_all_models"].triggered.connect(lambda: self.run(None, self.panel.target_mode(), True))
        a["overlay"].setChecked(self.opinions.overlay.visible)
        a["overlay"].toggled.connect(lambda on: self.opinions.set_overlay(visible=on))
        self.opinions.overlay_changed.connect(lambda s: set_checked(a["overlay"], s.visible))
        a["place_roi"].toggled.connect(self.set_placing)
        self.panel.place_roi.toggled.connect(lambda on: set_checked(a["place_roi"], on))
        area.clicked_at.connect(self.on_clicked)

    def shutdown(self) -> None:
        self.worker.shutdown()
        self.workers.close_pool("verify")

    # --- running ----------------------------------------------------------------------------
    def run(self, entry: ModelEntry | None, mode: str = "auto", all_images: bool = False) -> int:
        """Queue the jobs `OpinionState.plan_run` asks for (on the views shown with `all_images`, else the active
        one); the number queued."""
        documents = self.viewer.shown_documents() if all_images else [d for d in [self.viewer.active] if d]
        jobs = self.opinions.plan_run(entry, documents, mode)
        for job in jobs:
            self.worker.submit(job)
        if not jobs and not self.worker.busy:
            self.panel.set_idle("nothing to run: open an image" if not documents else "shown from the cache")
        return len(jobs)

    def run_everything(self, assumed_spacing_mm: float | None = None) -> None:
        """Every model on every image shown (the demo's first look), then the best answer for the active
        view is the one shown."""
        if assumed_spacing_mm:
            self.panel.spacing.setValue(assumed_spacing_mm)
            self.panel.assume_spacing.setChecked(True)

        def show_best() -> None:
            self.idle.disconnect(show_best)
            self.opinions.select(self.opinions.best_for(self.viewer.active))

        self.idle.connect(show_best)
        self.run(None, "auto", all_images=True)

    def stop(self) -> None:
        self.worker.stop()
        self.panel.set_idle("stopped")

    def _on_finished(self, opinion: Opinion) -> None:
        if opinion.document not in self.viewer.documents:
            return  # closed while its model ran
        self.opinions.add(opinion)
        self.answered.emit(opinion)

    def _activate_its_view(self, opinion: Opinion | None) -> None:
        """Picking another view's answer (a findings row) makes that view active: the answer shown
        and the active view never disagree."""
        if opinion is not None and opinion.document in self.viewer.documents:
            self.viewer.set_active(opinion.document)

    def _on_busy(self, count: int) -> None:
        if count == 0:
            failed = [o for o in self.opinions.opinions if o.error and o.error != "stopped"]
            self.panel.set_idle(f"done; {len(failed)} failed (see the list)" if failed else "done")
            self.idle.emit()

    def _warm_once(self) -> None:
        """The first image opened starts the sessions, while the others still decode."""
        if not self._warmed and self.viewer.documents:
            self._warmed = True
            self.worker.warm(self.opinions.models)

    def _forget_closed(self) -> None:
        open_ids = {d.id for d in self.viewer.documents}
        for document in {o.document for o in self.opinions.opinions if o.document.id not in open_ids}:
            self.opinions.forget_document(document)

    # --- ROIs -----------------------------------------------------------------------------
    def set_placing(self, on: bool) -> None:
        self.placing = on
        with QtCore.QSignalBlocker(self.panel.place_roi):
            self.panel.place_roi.setChecked(on)

    def on_clicked(self, document: Document, x: float, y: float) -> None:
        if not self.placing:
            return
        entry = self.panel.current_entry()
        image = self.opinions.image_for_models(document)
        if entry is not None and entry.card is not None and not entry.card.reads_whole_image:
            top, left, rows, cols = roi_window(entry.card, image, (x, y, x, y))
            self.opinions.add_roi(document, (float(left), float(top), float(left + cols), float(top + rows)))
        else:
            half = DEFAULT_ROI_PX / 2
            self.opinions.add_roi(document, (x - half, y - half, x + half, y + half))

    def _remembered_folders(self) -> list[str]:
        value = self.settings.value(MODEL_FOLDERS, []) if self.settings is not None else []
        return [value] if isinstance(value, str) else list(value or [])

    def _on_add_folder(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self.panel, "Add a folder of models")
        if folder:
            self.add_model_folder(folder)

    def add_model_folder(self, folder: str) -> None:
        """Its models join the list now and at every later start of the app."""
        self.opinions.add_model_folder(folder)
        if self.settings is not None:
            remembered = self._remembered_folders()
            if folder not in remembered:
                self.settings.setValue(MODEL_FOLDERS, [*remembered, folder])
