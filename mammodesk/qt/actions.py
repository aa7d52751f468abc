"""Every frequent action with its shortcut, in one table: the menus, the
shortcuts and the help dialog (F1) are all built from it, so they agree.
The features' panels add their toggles (Panels menu), and a feature may add
entries of its own (`Feature.actions`); `window_actions` joins them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.io import image_formats


@dataclass(frozen=True)
class ActionSpec:
    key: str
    text: str
    shortcut: str
    help: str
    menu: str
    checkable: bool = False


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open", "&Open...", "Ctrl+O", f"Open image files ({', '.join(r.description for r in image_formats())})",
               "File"),
    ActionSpec("open_folder", "Open &Folder...", "Ctrl+Shift+O", "Open a folder as a study", "File"),
    ActionSpec("servers", "DICOM &Servers...", "Ctrl+Shift+D", "DICOMweb and DIMSE servers (passwords in the OS keyring)", "File"),
    ActionSpec("save_to_server", "Save Labels to Server", "Ctrl+Shift+S", "Store the active image's labels on the "
               "server it came from, as a new DICOM SR of yours (nothing is overwritten)", "File"),
    ActionSpec("close", "&Close Image", "Ctrl+W", "Close the active image", "File"),
    ActionSpec("close_all", "Close &All", "Ctrl+Shift+W", "Close every image", "File"),
    ActionSpec("quit", "&Quit", "Ctrl+Q", "Quit MammoDesk", "File"),
    ActionSpec("fit", "&Fit to Window", "F", "Fit the image(s) to the view", "View"),
    ActionSpec("one_to_one", "&Actual Pixels (1:1)", "1", "One image pixel per screen pixel", "View"),
    ActionSpec("zoom_in", "Zoom &In", "+", "Zoom in (also: mouse wheel)", "View"),
    ActionSpec("zoom_out", "Zoom &Out", "-", "Zoom out (also: mouse wheel)", "View"),
    ActionSpec("layout", "&2x2 Hanging", "L", "Switch between one image and the RCC|LCC / RMLO|LMLO hanging", "View",
               True),
    ActionSpec("priors", "Compare with &Prior", "K", "Current study over the woman's prior study, view by view "
               "(open both studies: a folder per exam, or DICOM studies); zoom, pan and window move together", "View",
               True),
    ActionSpec("priors_page", "Prior Comparison: CC / MLO", "J", "Switch the prior comparison between the CC and "
               "the MLO views", "View"),
    ActionSpec("show", "Original / Processed / Side by Side", "P", "Cycle what the canvas shows", "View"),
    ActionSpec("orientation", "Original &Orientation", "O", "Show images as stored instead of standardised", "View",
               True),
    ActionSpec("loupe", "&Magnifier", "M", "A 3x loupe follows the cursor", "View", True),
    ActionSpec("next_image", "&Next Image", "PgDown", "Make the next image active", "View"),
    ActionSpec("prev_image", "&Previous Image", "PgUp", "Make the previous image active", "View"),
    ActionSpec("invert", "&Invert", "I", "Invert the grey scale", "Image"),
    ActionSpec("next_preset", "Next &Window Preset", "W", "Cycle the file's window presets, then automatic", "Image"),
    ActionSpec("reset", "&Reset Window and Zoom", "R", "Default window, not inverted, fitted", "Image"),
    ActionSpec("stop", "&Stop Processing", "Esc", "Stop the running preprocessing", "Image"),
    ActionSpec("run_models", "&Run Model", "Ctrl+R", "Run the selected model on the active image", "Models"),
    ActionSpec("run_all_models", "Run &All Models", "Ctrl+Shift+R", "Run every model on every image shown", "Models"),
    ActionSpec("overlay", "&Heat Map Overlay", "H", "Show or hide the Grad-CAM / scan heat map", "Models", True),
    ActionSpec("place_roi", "&Place ROI", "A", "Each left click places an ROI for the ROI models", "Models", True),
    ActionSpec("tool_select", "&Select / Move", "V", "Select, move and resize ROIs; drag elsewhere pans", "Labels",
               True),
    ActionSpec("tool_rect", "&Rectangle", "B", "Draw a rectangle (drag corner to corner)", "Labels", True),
    ActionSpec("tool_ellipse", "&Ellipse", "E", "Draw an ellipse (drag its bounding box)", "Labels", True),
    ActionSpec("tool_circle", "&Circle", "C", "Draw a circle: press at the centre, drag out the radius (MIAS)",
               "Labels", True),
    ActionSpec("tool_polygon", "&Polygon", "G", "Click vertices; double-click, Enter or the first vertex closes",
               "Labels", True),
    ActionSpec("tool_freehand", "&Freehand", "D", "Drag an outline", "Labels", True),
    ActionSpec("tool_point", "Poin&t", "T", "Click to mark a point (e.g. one calcification)", "Labels", True),
    ActionSpec("tool_measure", "&Ruler", "U", "Drag to measure a distance: mm where the pixel spacing is known, "
               "pixels otherwise (a reading aid, not a label)", "Labels", True),
    ActionSpec("clear_measurements", "Clear Rulers", "Shift+U", "Remove the rulers of the active image", "Labels"),
    ActionSpec("undo", "&Undo", "Ctrl+Z", "Undo the last labelling edit on the active image", "Labels"),
    ActionSpec("redo", "Re&do", "Ctrl+Shift+Z", "Redo", "Labels"),
    ActionSpec("delete_finding", "De&lete ROI", "Del", "Delete the selected ROI (Backspace: last polygon vertex)",
               "Labels"),
    ActionSpec("next_finding", "Next ROI", "]", "Select the next ROI", "Labels"),
    ActionSpec("prev_finding", "Previous ROI", "[", "Select the previous ROI", "Labels"),
    ActionSpec("type_mass", "Label: Mass", "Shift+M", "Selected ROI (or the next one drawn) is a mass", "Labels"),
    ActionSpec("type_calc", "Label: Calcification", "Shift+C", "... a calcification", "Labels"),
    ActionSpec("type_distortion", "Label: Architectural Distortion", "Shift+D", "... an architectural distortion",
               "Labels"),
    ActionSpec("type_asymmetry", "Label: Asymmetry", "Shift+Y", "... an asymmetry", "Labels"),
    ActionSpec("type_normal", "Label: Normal", "Shift+N", "... normal tissue", "Labels"),
    ActionSpec("pathology_benign", "Pathology: Benign", "Ctrl+B", "Selected ROI (or the next one) is benign",
               "Labels"),
    ActionSpec("pathology_malignant", "Pathology: Malignant", "Ctrl+M", "... malignant", "Labels"),
    ActionSpec("pathology_unknown", "Pathology: Unknown", "Ctrl+U", "... of unknown pathology", "Labels"),
    ActionSpec("next_shape", "Next Mass Shape", "Shift+H", "The selected mass's next shape (oval, round, "
               "irregular ...)", "Labels"),
    ActionSpec("next_margin", "Next Mass Margin", "Shift+G", "The selected mass's next margin (circumscribed, "
               "obscured ...)", "Labels"),
    *(ActionSpec(f"birads_{n}", f"BI-RADS {n}", f"Alt+{n}", f"BI-RADS {n} for the selected ROI (none selected: "
                 "the image)", "Labels") for n in range(7)),
    ActionSpec("next_file", "Next File in Study", "Ctrl+PgDown", "Open the study browser's next file", "Labels"),
    ActionSpec("next_unlabelled", "Next Unlabelled File", "Ctrl+Shift+PgDown",
               "Open the study's next file without labels", "Labels"),
    ActionSpec("prev_unlabelled", "Previous Unlabelled File", "Ctrl+Shift+PgUp",
               "Open the study's previous file without labels", "Labels"),
    ActionSpec("prev_file", "Previous File in Study", "Ctrl+PgUp", "Open the study browser's previous file",
               "Labels"),
    ActionSpec("import_labels", "&Import Labels...", "Ctrl+I",
               "MIAS Info.txt, CBIS-DDSM CSV, INbreast XML, MammoDesk CSV, COCO or DICOM SR", "Labels"),
    ActionSpec("export_labels", "E&xport Labels...", "Ctrl+E", "CSV, COCO, MIAS Info.txt or DICOM SR", "Labels"),
    ActionSpec("include_identifiers", "Include Patient Identifiers in Exports...", "",
               "Off by default: exports carry no names, IDs, dates or real UIDs; on only from the menu, after a "
               "confirmation (no key turns it on)", "Labels", True),
    ActionSpec("edit_taxonomy", "Label &Taxonomy...", "Ctrl+T", "Edit the project's finding types and attributes",
               "Labels"),
)
HELP = ActionSpec("help", "&Keyboard Shortcuts", "F1", "This list", "Help")
MOUSE_HELP = (
    ("Left drag", "Pan"),
    ("Wheel", "Zoom around the cursor"),
    ("Right drag", "Window/level: horizontal = width, vertical = level"),
    ("Click", "Make that view's image active; select the ROI under the cursor"),
    ("Drag on an ROI (Select tool)", "Move it; drag a handle to resize or move a vertex"),
    ("Double-click a polygon edge", "Insert a vertex (Shift+click a vertex deletes it)"),
    ("Middle drag", "Pan while a drawing tool is active"),
)


def window_actions(extra: Iterable[ActionSpec]) -> tuple[ActionSpec, ...]:
    """The shared table, then the features' entries, Help last."""
    return (*ACTIONS, *extra, HELP)


def build_actions(window: QtWidgets.QMainWindow, specs: Iterable[ActionSpec]) -> dict[str, QtGui.QAction]:
    actions: dict[str, QtGui.QAction] = {}
    menus: dict[str, QtWidgets.QMenu] = {}
    for spec in specs:
        action = QtGui.QAction(spec.text, window)
        action.setShortcut(QtGui.QKeySequence(spec.shortcut))
        action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        action.setToolTip(f"{spec.help} ({spec.shortcut})" if spec.shortcut else spec.help)
        action.setCheckable(spec.checkable)
        if spec.menu not in menus:
            menus[spec.menu] = window.menuBar().addMenu(f"&{spec.menu}")
        menus[spec.menu].addAction(action)
        window.addAction(action)  # shortcuts work while the menu bar is hidden too
        actions[spec.key] = action
    return actions


class ShortcutsDialog(QtWidgets.QDialog):
    def __init__(self, specs: Iterable[ActionSpec], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard and mouse")
        rows = [(QtGui.QKeySequence(a.shortcut).toString(QtGui.QKeySequence.SequenceFormat.NativeText),
                 a.text.replace("&", ""), a.help) for a in specs]
        rows += [(gesture, what, "") for gesture, what in MOUSE_HELP]
        table = QtWidgets.QTableWidget(len(rows), 3)
        table.setHorizontalHeaderLabels(["Key", "Action", "What it does"])
        table.verticalHeader().hide()
        table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        for row, values in enumerate(rows):
            for column, value in enumerate(values):
                table.setItem(row, column, QtWidgets.QTableWidgetItem(value))
        table.setWordWrap(True)  # descriptions wrap rather than being cut
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(table)
        close = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)
        self.table = table
        screen = (parent.screen() if parent is not None else QtGui.QGuiApplication.primaryScreen()).availableGeometry()
        self.resize(min(920, int(screen.width() * 0.9)), min(720, int(screen.height() * 0.9)))
        table.resizeRowsToContents()

    def showEvent(self, event: QtGui.QShowEvent) -> None:  # noqa: N802 - Qt naming
        super().showEvent(event)
        self.table.resizeRowsToContents()  # the final column width is known now
