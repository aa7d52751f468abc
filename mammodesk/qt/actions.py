"""Every frequent action with its shortcut, in one table: the menus, the
shortcuts and the help dialog (F1) are all built from it, so they agree."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtCore, QtGui, QtWidgets


@dataclass(frozen=True)
class ActionSpec:
    key: str
    text: str
    shortcut: str
    help: str
    menu: str
    checkable: bool = False


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open", "&Open...", "Ctrl+O", "Open image files (DICOM, PGM, PNG, TIFF)", "File"),
    ActionSpec("open_folder", "Open &Folder...", "Ctrl+Shift+O", "Open a folder as a study", "File"),
    ActionSpec("close", "&Close Image", "Ctrl+W", "Close the active image", "File"),
    ActionSpec("close_all", "Close &All", "Ctrl+Shift+W", "Close every image", "File"),
    ActionSpec("quit", "&Quit", "Ctrl+Q", "Quit MammoDesk", "File"),
    ActionSpec("fit", "&Fit to Window", "F", "Fit the image(s) to the view", "View"),
    ActionSpec("one_to_one", "&Actual Pixels (1:1)", "1", "One image pixel per screen pixel", "View"),
    ActionSpec("zoom_in", "Zoom &In", "+", "Zoom in (also: mouse wheel)", "View"),
    ActionSpec("zoom_out", "Zoom &Out", "-", "Zoom out (also: mouse wheel)", "View"),
    ActionSpec("layout", "&2x2 Hanging", "L", "Switch between one image and the RCC|LCC / RMLO|LMLO hanging", "View",
               True),
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
    ActionSpec("panel_pipeline", "&Preprocessing Panel", "Ctrl+1", "Show or hide the preprocessing panel", "Panels",
               True),
    ActionSpec("panel_browser", "&Study Browser", "Ctrl+2", "Show or hide the study browser", "Panels", True),
    ActionSpec("panel_metadata", "&Metadata", "Ctrl+3", "Show or hide the metadata panel", "Panels", True),
    ActionSpec("panel_models", "M&odels Panel", "Ctrl+4", "Show or hide the model panel", "Panels", True),
    ActionSpec("help", "&Keyboard Shortcuts", "F1", "This list", "Help"),
)
MOUSE_HELP = (
    ("Left drag", "Pan"),
    ("Wheel", "Zoom around the cursor"),
    ("Right drag", "Window/level: horizontal = width, vertical = level"),
    ("Click", "Make that view's image active"),
)


def build_actions(window: QtWidgets.QMainWindow) -> dict[str, QtGui.QAction]:
    actions: dict[str, QtGui.QAction] = {}
    menus: dict[str, QtWidgets.QMenu] = {}
    for spec in ACTIONS:
        action = QtGui.QAction(spec.text, window)
        action.setShortcut(QtGui.QKeySequence(spec.shortcut))
        action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        action.setToolTip(f"{spec.help} ({spec.shortcut})")
        action.setCheckable(spec.checkable)
        if spec.menu not in menus:
            menus[spec.menu] = window.menuBar().addMenu(f"&{spec.menu}")
        menus[spec.menu].addAction(action)
        window.addAction(action)  # shortcuts work while the menu bar is hidden too
        actions[spec.key] = action
    return actions


class ShortcutsDialog(QtWidgets.QDialog):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard and mouse")
        rows = [(QtGui.QKeySequence(a.shortcut).toString(QtGui.QKeySequence.SequenceFormat.NativeText),
                 a.text.replace("&", ""), a.help) for a in ACTIONS]
        rows += [(gesture, what, "") for gesture, what in MOUSE_HELP]
        table = QtWidgets.QTableWidget(len(rows), 3)
        table.setHorizontalHeaderLabels(["Key", "Action", "What it does"])
        table.verticalHeader().hide()
        table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        for row, values in enumerate(rows):
            for column, value in enumerate(values):
                table.setItem(row, column, QtWidgets.QTableWidgetItem(value))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(table)
        close = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout.addWidget(close)
        self.table = table
        self.resize(640, 620)
