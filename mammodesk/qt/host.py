"""What a feature's controller may ask of the window that composes it, and no
more: the viewer state, the worker pools, the settings and author, a line in the status
bar, opening a file, waiting for the files being opened, a parent for its
dialogs, bringing a panel forward, and the study browser's order. It carries no feature: a controller that needs another
feature's state is given it. Controllers take a `Host`; they never reach into
the window."""

from __future__ import annotations

from typing import Callable, Protocol

from PySide6 import QtCore, QtWidgets

from mammodesk.qt.workers import WorkerPools
from mammodesk.state.viewer import ViewerState


class Host(Protocol):
    viewer: ViewerState
    workers: WorkerPools  # every worker thread a controller runs comes from here
    widget: QtWidgets.QWidget  # the parent of a controller's dialogs
    settings: QtCore.QSettings
    author: str | None  # the radiologist labels and server reports are written as (settings' "author")

    def status(self, text: str, timeout_ms: int = 0) -> None: ...

    def current_status(self) -> str: ...

    def open_path(self, path: str) -> None: ...

    def when_loads_finish(self, callback: Callable[[], None]) -> None: ...

    def show_panel(self, key: str) -> None: ...

    def study_paths(self) -> list[str]: ...

    def study_labelled(self, path: str) -> bool: ...

    def select_study_path(self, index: int) -> None: ...


class WindowHost:
    """The main window as a `Host`: thin calls into the parts it composes."""

    def __init__(self, window) -> None:
        self._window = window
        self.viewer: ViewerState = window.state
        self.workers: WorkerPools = window.workers
        self.widget: QtWidgets.QWidget = window
        self.settings: QtCore.QSettings = window.settings
        self.author: str | None = window.settings.value("author", None) or None

    def status(self, text: str, timeout_ms: int = 0) -> None:
        self._window.statusBar().showMessage(text, timeout_ms)

    def current_status(self) -> str:
        return self._window.statusBar().currentMessage()

    def open_path(self, path: str) -> None:
        self._window.open_path(path)

    def when_loads_finish(self, callback: Callable[[], None]) -> None:
        self._window.when_loads_finish(callback)

    def show_panel(self, key: str) -> None:
        self._window.toggle_panel(key, front=True)

    def study_paths(self) -> list[str]:
        return self._window.browser.paths()

    def study_labelled(self, path: str) -> bool:
        return self._window.browser.is_labelled(path)

    def select_study_path(self, index: int) -> None:
        self._window.browser.setCurrentRow(index)
