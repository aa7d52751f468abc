"""Wires ROI labelling into the main window: sheets for loaded images, the
autosave thread's reports, tools and label hotkeys, import/export dialogs,
the project taxonomy and stepping through a study's files."""

from __future__ import annotations

import concurrent.futures as futures
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.annotations.model import Pathology
from mammodesk.annotations.taxonomy import TAXONOMY_FILE, STANDARD_TYPES, Taxonomy, load_taxonomy
from mammodesk.errors import MammoDeskError
from mammodesk.qt.feature import Feature, Panel
from mammodesk.qt.host import Host
from mammodesk.qt.labelling.panel import LabelsPanel
from mammodesk.qt.labelling.roi_editor import RoiEditor, RoiEditors
from mammodesk.services import label_io
from mammodesk.services.autosave import AutoSaver
from mammodesk.state.labelling import TOOLS, LabellingState
from mammodesk.services.loading import LabelStatus, Loaded
from mammodesk.state.viewer import Document
from mammodesk.storage import write_atomic

TYPE_KEYS = dict(zip(STANDARD_TYPES, ("type_mass", "type_calc", "type_distortion", "type_asymmetry",
                                      "type_normal")))
PATHOLOGY_KEYS = {"pathology_benign": Pathology.BENIGN, "pathology_malignant": Pathology.MALIGNANT,
                  "pathology_unknown": Pathology.UNKNOWN}


class LabellingController(QtCore.QObject, Feature):
    _saved = QtCore.Signal(object, object)  # SaveJob, error: from the saver thread to the UI thread
    _imported = QtCore.Signal(str, str, object)  # kind, path, list[ImageLabels] | Exception
    labels_changed = QtCore.Signal(str, object)  # image path, LabelStatus: the worklist's mark

    def __init__(self, host: Host) -> None:
        super().__init__(host.widget)
        self.host = host
        self.export_folder: str | None = None  # where the last export went (this session)
        host.viewer.active_changed.connect(self.show_active)
        host.viewer.documents_changed.connect(self.on_documents_changed)
        self.saver = AutoSaver(on_done=lambda job, error: self._saved.emit(job, error))
        self.state = LabellingState(self.saver, author=host.author)
        self.panel = LabelsPanel(self.state)
        self.editors = RoiEditors(self.state)
        self.targets: dict[int, label_io.LabelTarget] = {}
        self.pending_imports: list[tuple[str, object]] = []  # (text, ImageLabels) for images not open yet
        self.taxonomy_file: str | None = None
        self._saved.connect(self.state.on_saved)
        self._imported.connect(self._on_imported)
        self.state.changed.connect(self._report_labels)

    def _cycle(self, attribute: str) -> None:
        value = self.state.cycle_attribute(self.active_key, attribute)
        self.host.status(f"{attribute}: {value}" if value else f"Select a mass to set its {attribute}")

    def _report_labels(self, key: int) -> None:
        target, sheet = self.targets.get(key), self.state.sheet(key)
        if target is not None and target.path is not None and sheet is not None:
            self.labels_changed.emit(str(target.path), LabelStatus.of(sheet.labels))

    # --- documents ----------------------------------------------------------------------------------
    def on_loaded(self, document: Document, loaded: Loaded) -> None:
        if loaded.annotations is None:
            return
        path = document.image.meta.source_path
        if self.taxonomy_file is None and path is not None:
            taxonomy, problem = load_taxonomy(path.parent)
            self.taxonomy_file = taxonomy.source if problem is None else ""
            self.state.set_taxonomy(taxonomy)
            if problem:
                self.host.status(problem)
        anatomy = document.anatomy
        self.targets[document.id] = label_io.LabelTarget(
            document.id, path, loaded.sha256, document.image.shape, document.image.meta.format.upper() == "DICOM",
            anatomy.laterality if anatomy is not None and anatomy.laterality_source == "pixels" else None)
        self.state.attach(document.id, file_name=path.name if path else document.name, sha256=loaded.sha256,
                          shape=document.image.shape, read=loaded.annotations, anatomy=document.anatomy)
        self._apply_pending(document.id)
        self.show_active(self.host.viewer.active)

    def on_documents_changed(self) -> None:
        open_ids = {d.id for d in self.host.viewer.documents}
        for key in [k for k in self.state.sheets if k not in open_ids]:
            self.state.detach(key)
            self.targets.pop(key, None)

    def show_active(self, document: Document | None) -> None:
        spacing = document.image.meta.pixel_spacing_mm if document is not None else None
        self.panel.set_key(document.id if document is not None else None, spacing[1] if spacing else None)

    @property
    def active_key(self) -> int | None:
        document = self.host.viewer.active
        return document.id if document is not None and document.id in self.state.sheets else None

    def active_editor(self) -> RoiEditor | None:
        return self.editors.editor_for(self.host.viewer.active)

    def editor_for(self, document: Document | None) -> RoiEditor | None:
        return self.editors.editor_for(document)

    # --- the feature ------------------------------------------------------------------------------------
    def panels(self) -> list[Panel]:
        return [Panel("labels", "Labels", self.panel, "right", "Ctrl+5", "Show or hide the labelling panel",
                      menu_text="&Labels Panel", tab_with="pipeline", scrolls=True)]

    def canvas_layer(self) -> RoiEditors:
        return self.editors

    def cancel(self) -> bool:
        return self.cancel_drawing()  # Esc first drops a polygon being placed

    def shutdown(self) -> None:
        unsaved = self.close()
        if unsaved:
            QtWidgets.QMessageBox.warning(self.host.widget, "Annotations not saved",
                                          "These annotations could not be written: " + ", ".join(unsaved))

    # --- actions ----------------------------------------------------------------------------------------
    def connect_actions(self, a: dict[str, QtGui.QAction], area: QtWidgets.QWidget) -> None:
        """The labelling actions of the menus, and the keys that act while the image area has the focus."""
        for key in ("Backspace", "Return", "Enter"):
            shortcut = QtGui.QShortcut(QtGui.QKeySequence(key), area)
            shortcut.setContext(QtCore.Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self.delete_or_back if key == "Backspace" else self.finish_polygon)
        state = self.state
        group = QtGui.QActionGroup(self)
        for tool in TOOLS:
            action = a[f"tool_{tool}"]
            group.addAction(action)
            action.triggered.connect(lambda _=False, t=tool: self._set_tool(t))
        a["tool_select"].setChecked(True)
        state.tool_changed.connect(lambda tool: a[f"tool_{tool}"].setChecked(True))
        self.panel.add_tool_actions([a[f"tool_{t}"] for t in TOOLS])
        buttons = self.panel.buttons
        self.panel.add_tool_actions([a["undo"], a["redo"], a["delete_finding"]], buttons)
        a["undo"].triggered.connect(lambda: self._history(state.undo))
        a["redo"].triggered.connect(lambda: self._history(state.redo))
        a["delete_finding"].triggered.connect(self.delete_or_back)
        a["next_finding"].triggered.connect(lambda: self.active_key is not None and
                                            state.step_selection(self.active_key, +1))
        a["prev_finding"].triggered.connect(lambda: self.active_key is not None and
                                            state.step_selection(self.active_key, -1))
        for type_name, key in TYPE_KEYS.items():
            a[key].triggered.connect(lambda _=False, t=type_name: state.label_selected(self.active_key, type=t))
        for key, pathology in PATHOLOGY_KEYS.items():
            a[key].triggered.connect(lambda _=False, p=pathology: state.label_selected(self.active_key, pathology=p))
        for value in range(7):
            a[f"birads_{value}"].triggered.connect(
                lambda _=False, v=value: state.label_selected(self.active_key, birads=v))
        a["clear_measurements"].triggered.connect(lambda: state.clear_measurements(self.active_key))
        a["import_labels"].triggered.connect(self.import_dialog)
        a["export_labels"].triggered.connect(self.export_dialog)
        a["edit_taxonomy"].triggered.connect(self.taxonomy_dialog)
        a["next_file"].triggered.connect(lambda: self.step_file(+1))
        a["prev_file"].triggered.connect(lambda: self.step_file(-1))
        for attribute in ("shape", "margin"):
            a[f"next_{attribute}"].triggered.connect(lambda _=False, n=attribute: self._cycle(n))
        a["next_unlabelled"].triggered.connect(lambda: self.step_file(+1, unlabelled=True))
        a["prev_unlabelled"].triggered.connect(lambda: self.step_file(-1, unlabelled=True))
        self.include_identifiers = a["include_identifiers"]
        self.include_identifiers.toggled.connect(self._confirm_identifiers)

    def _confirm_identifiers(self, on: bool) -> None:
        """Identifiers go into exports only on purpose: one key from Import must not turn them on unasked."""
        if not on:
            self.host.status("Exports carry no patient identifiers")
            return
        answer = QtWidgets.QMessageBox.question(
            self.host.widget, "Include patient identifiers?",
            "Exports will then carry the patient's name, ID, birth date, accession number and the real study and "
            "image UIDs, until you turn this off. Include them?",
            QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
            QtWidgets.QMessageBox.StandardButton.No)
        if answer != QtWidgets.QMessageBox.StandardButton.Yes:
            with QtCore.QSignalBlocker(self.include_identifiers):
                self.include_identifiers.setChecked(False)
            return
        self.host.status("Exports now INCLUDE patient identifiers (Labels menu to turn off)")

    def _set_tool(self, tool: str) -> None:
        editor = self.active_editor()
        if editor is not None:
            editor.cancel()
        self.state.set_tool(tool)

    def _history(self, step) -> None:
        editor = self.active_editor()
        if editor is not None and editor.cancel():
            return  # Ctrl+Z while placing a polygon drops it first
        if self.active_key is not None:
            text = step(self.active_key)
            self.host.status(f"{step.__name__.capitalize()}: {text}" if text else
                                                f"Nothing to {step.__name__}")

    def delete_or_back(self) -> None:
        """Delete/Backspace: the last polygon vertex while placing one, else the selected ROI."""
        editor = self.active_editor()
        if editor is not None and editor.remove_last_vertex():
            return
        key = self.active_key
        sheet = self.state.sheet(key) if key is not None else None
        if sheet is not None and sheet.selected is not None:
            self.state.delete_finding(key, sheet.selected)

    def cancel_drawing(self) -> bool:
        editor = self.active_editor()
        return editor is not None and editor.cancel()

    def finish_polygon(self) -> bool:
        editor = self.active_editor()
        return editor is not None and editor.finish_polygon()

    # --- stepping through a study ------------------------------------------------------------------
    def step_file(self, offset: int, unlabelled: bool = False) -> None:
        """Open the next/previous file of the study browser (`unlabelled`: the next one without labels) in place
        of the active image; says when it wraps past the end, or when none is left."""
        viewer = self.host.viewer
        paths = self.host.study_paths()
        active = viewer.active
        current = str(active.image.meta.source_path) if active is not None else None
        if not paths:
            return
        start = paths.index(current) if current in paths else (-1 if offset > 0 else len(paths))
        steps = [start + offset * k for k in range(1, len(paths) + 1)]
        if unlabelled:
            steps = [s for s in steps if not self.host.study_labelled(paths[s % len(paths)])
                     and paths[s % len(paths)] != current]
            if not steps:
                self.host.status("Every file of the study is labelled")
                return
        index = steps[0] % len(paths)
        wrapped = current in paths and len(paths) > 1 and not 0 <= steps[0] < len(paths)
        target = paths[index]
        self.host.select_study_path(index)
        for document in viewer.documents:
            if str(document.image.meta.source_path) == target:
                viewer.set_active(document)
                break
        else:
            if active is not None and viewer.layout == "single":
                viewer.close(active)  # its labels are saved on close
            self.host.open_path(target)
        if wrapped:  # said after the view changes, so the active view's description does not hide it
            self.host.status(f"Wrapped to the {'first' if offset > 0 else 'last'} file of the study "
                             f"({index + 1} of {len(paths)})")

    # --- import ---------------------------------------------------------------------------------------
    def import_dialog(self) -> None:
        filters = list(label_io.IMPORT_FORMATS.values())
        path, chosen = QtWidgets.QFileDialog.getOpenFileName(self.host.widget, "Import labels", "", ";;".join(filters))
        if path:
            kind = list(label_io.IMPORT_FORMATS)[filters.index(chosen)] if chosen in filters else "csv"
            self.import_file(path, kind)

    def import_file(self, path: str, kind: str) -> futures.Future:
        """Read and match off the UI thread (CBIS masks are decoded, DICOM headers read for UIDs)."""
        self.host.status(f"Reading {Path(path).name}...")
        targets = list(self.targets.values())

        def work():
            try:
                imported = label_io.read_labels_file(Path(path), kind)
                result = (imported, *label_io.match(imported, targets))
            except (MammoDeskError, OSError, ValueError) as exc:
                result = exc
            self._imported.emit(kind, path, result)

        return self.host.workers.submit("label-import", work)

    def _on_imported(self, kind: str, path: str, result) -> None:
        name = Path(path).name
        if isinstance(result, Exception):
            QtWidgets.QMessageBox.warning(self.host.widget, "Import failed", f"{name}: {result}")
            return
        imported, matched, unmatched = result
        text = f"Import {name}"
        by_id = {labels.image_id: labels for labels in imported}
        waiting = [by_id[image_id] for image_id in unmatched if image_id in by_id]
        waiting += [labels for key, labels in matched.items() if key not in self.state.sheets]  # closed meanwhile
        matched = {key: labels for key, labels in matched.items() if key in self.state.sheets}
        added = sum(self.state.import_labels(key, labels, text) for key, labels in matched.items())
        self.pending_imports += [(text, labels) for labels in waiting]
        self.host.status(
            f"{name}: {added} finding(s) added to {len(matched)} open image(s); "
            f"{len(waiting)} other image(s) get theirs when opened")

    def _apply_pending(self, key: int) -> None:
        if not self.pending_imports:
            return
        imported = [labels for _, labels in self.pending_imports]
        matched, _ = label_io.match(imported, [self.targets[key]])
        if key in matched:
            self.state.import_labels(key, matched[key], self.pending_imports[0][0])

    # --- export --------------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        if not self.state.sheets:
            self.host.status("Nothing to export: open and label an image first")
            return
        dicom = any(target.is_dicom for target in self.targets.values())
        offered = {k: v for k, v in label_io.EXPORT_FORMATS.items() if k != "sr" or dicom}  # SR: DICOM images only
        filters = list(offered.values())
        kind, ok = QtWidgets.QInputDialog.getItem(self.host.widget, "Export labels", "Format (all open images):",
                                                  filters, 0, False)
        if not ok or kind not in filters:
            return
        kind = list(offered)[filters.index(kind)]
        if not self._export_anyway(kind):
            return
        folder = self.export_folder or ""
        if kind == "sr":
            out = QtWidgets.QFileDialog.getExistingDirectory(self.host.widget, "Folder for the structured reports",
                                                             folder)
        else:
            suffix = {"csv": "findings.csv", "coco": "annotations.coco.json", "mias": "Info.txt"}[kind]
            out, _ = QtWidgets.QFileDialog.getSaveFileName(self.host.widget, "Export labels",
                                                           str(Path(folder) / suffix) if folder else suffix)
        if out:
            self.export_folder = out if kind == "sr" else str(Path(out).parent)  # the next export starts there
            self.export(kind, Path(out))

    def _export_anyway(self, kind: str) -> bool:
        """Asked before writing: what the format cannot hold (MIAS without a density ...), image by image."""
        items = [(self.targets[key], sheet.labels) for key, sheet in self.state.sheets.items() if key in self.targets]
        problems = label_io.cannot_hold(kind, items)
        if not problems:
            return True
        shown = "\n".join(f"• {p}" for p in problems[:15]) + (f"\n… and {len(problems) - 15} more"
                                                              if len(problems) > 15 else "")
        answer = QtWidgets.QMessageBox.question(
            self.host.widget, "Some labels cannot be exported",
            f"This format cannot hold {len(problems)} of the labels:\n{shown}\n\nExport the rest anyway? "
            "(No: add what is missing, e.g. each image's breast density, or choose CSV or COCO, which hold all.)",
            QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.No,
            QtWidgets.QMessageBox.StandardButton.No)
        return answer == QtWidgets.QMessageBox.StandardButton.Yes

    def export(self, kind: str, out: Path) -> str:
        items = [(self.targets[key], sheet.labels) for key, sheet in self.state.sheets.items() if key in self.targets]
        try:
            summary = label_io.export(kind, out, items, finding_types=self.state.taxonomy.finding_types,
                                      author=self.state.author,
                                      include_identifiers=self.include_identifiers.isChecked())
        except (MammoDeskError, OSError, ValueError) as exc:
            QtWidgets.QMessageBox.warning(self.host.widget, "Export failed", f"{out.name}: {exc}")
            return ""
        if self.include_identifiers.isChecked():
            summary += " WITH patient identifiers"
        self.host.status(summary)
        return summary

    # --- taxonomy --------------------------------------------------------------------------------------
    def taxonomy_dialog(self) -> None:
        active = self.host.viewer.active
        folder = active.image.meta.source_path.parent if active and active.image.meta.source_path else None
        dialog = TaxonomyDialog(self.state.taxonomy, folder, self.host.widget)
        if dialog.exec() and dialog.result_taxonomy is not None:
            self.state.set_taxonomy(dialog.result_taxonomy)
            self.taxonomy_file = dialog.result_taxonomy.source

    # --- shutdown ---------------------------------------------------------------------------------------
    def close(self) -> list[str]:
        """Flush every save; the file names whose labels could not be written (the user is told)."""
        names = {key: sheet.file_name for key, sheet in self.state.sheets.items()}
        for key in list(self.state.sheets):
            self.state.detach(key)
        self.saver.close(timeout=10)
        self.host.workers.close_pool("label-import")
        return [names.get(key, str(key)) for key in self.saver.unsaved()]


class TaxonomyDialog(QtWidgets.QDialog):
    """Edit the project's label vocabulary as JSON; saved as mammodesk-taxonomy.json
    in the image folder, so everyone labelling that folder uses the same words."""

    def __init__(self, taxonomy: Taxonomy, folder: Path | None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Label taxonomy")
        self.folder = folder
        self.result_taxonomy: Taxonomy | None = None
        layout = QtWidgets.QVBoxLayout(self)
        where = folder / TAXONOMY_FILE if folder else "open an image first to choose the project folder"
        layout.addWidget(QtWidgets.QLabel(f"In use: {taxonomy.source}\nSaved to: {where}"))
        self.text = QtWidgets.QPlainTextEdit(taxonomy.to_json())
        layout.addWidget(self.text)
        self.error = QtWidgets.QLabel()
        self.error.setStyleSheet("color: #e06060;")
        layout.addWidget(self.error)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Save
                                             | QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._save)
        buttons.rejected.connect(self.reject)
        buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Save).setEnabled(folder is not None)
        layout.addWidget(buttons)
        self.resize(560, 520)

    def _save(self) -> None:
        assert self.folder is not None
        path = self.folder / TAXONOMY_FILE
        try:
            taxonomy = Taxonomy.from_json(self.text.toPlainText(), str(path))
            write_atomic(path, taxonomy.to_json().encode("utf-8"))
        except (ValueError, OSError) as exc:
            self.error.setText(str(exc))
            return
        self.result_taxonomy = taxonomy
        self.accept()
