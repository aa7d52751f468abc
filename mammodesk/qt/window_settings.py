"""What the window remembers between sessions: its geometry and panels, the
recent files, the loupe. In the user's settings file; never a secret."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from mammodesk.state.viewer import ViewerState


def default_settings() -> QtCore.QSettings:
    return QtCore.QSettings(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                            "MammoDesk", "MammoDesk")


def restore(window: QtWidgets.QMainWindow, settings: QtCore.QSettings, viewer: ViewerState) -> bool:
    """Geometry, panels and recent files; True when the user's own panel layout was restored."""
    geometry = settings.value("geometry")
    if geometry is None or not window.restoreGeometry(geometry):
        window.resize(first_size(window))
    layout = settings.value("window_state")
    restored = layout is not None and window.restoreState(layout)
    recent = settings.value("recent", [])
    viewer.recent = [str(p) for p in (recent if isinstance(recent, list) else [recent]) if p]
    return restored


def first_size(window: QtWidgets.QWidget) -> QtCore.QSize:
    """The first window: 1400 x 900, or 94 % of the screen's free area where that is smaller (a 1366 x 768
    laptop), so no part of it starts off screen."""
    screen = window.screen() or QtWidgets.QApplication.primaryScreen()
    wanted = QtCore.QSize(1400, 900)
    if screen is None:
        return wanted
    free = screen.availableGeometry().size()
    return wanted.boundedTo(QtCore.QSize(int(free.width() * 0.94), int(free.height() * 0.94)))


def save(window: QtWidgets.QMainWindow, settings: QtCore.QSettings, viewer: ViewerState, loupe: bool) -> None:
    settings.setValue("geometry", window.saveGeometry())
    settings.setValue("window_state", window.saveState())
    settings.setValue("recent", viewer.recent)
    settings.setValue("loupe", loupe)
    settings.sync()
