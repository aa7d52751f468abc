"""The one contract between the window and its features (the viewer, the
preprocessing, the second opinion, labelling, the archive, and any added
later). A feature offers its panels, binds the menu actions it answers,
may draw a layer on every canvas, hears of each loaded image, may cancel
what it is doing (Esc) and ends its work on close. The window only loops
over its features; the viewer knows none of them, only their layers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from PySide6 import QtCore, QtGui, QtWidgets

from mammodesk.qt.actions import ActionSpec

if TYPE_CHECKING:
    from mammodesk.qt.viewer.area import ViewerArea
    from mammodesk.qt.viewer.canvas import ImageCanvas
    from mammodesk.services.loading import Loaded
    from mammodesk.state.viewer import Document


@dataclass(frozen=True)
class Panel:
    """A dock of the window, with its entry in the Panels menu (action `panel_<key>`)."""

    key: str
    title: str
    widget: QtWidgets.QWidget
    side: str  # "left" or "right"
    shortcut: str
    help: str
    menu_text: str = ""  # default: the title
    tab_with: str | None = None  # another panel's key: a tab beside it
    scrolls: bool = False  # tall: in a scroll area, so it never sets the window's minimum height

    def toggle(self) -> ActionSpec:
        return ActionSpec(f"panel_{self.key}", self.menu_text or f"&{self.title}", self.shortcut, self.help, "Panels",
                          checkable=True)


class CanvasLayer(Protocol):
    """What a feature draws over the images: given each canvas once, told after each relayout."""

    def attach(self, canvas: ImageCanvas) -> None: ...

    def refresh(self) -> None: ...


class Feature:
    """Defaults for every part of the contract; a feature overrides what it has."""

    menu_actions: tuple[ActionSpec, ...] = ()  # menu entries of its own, beyond the window's shared table

    def panels(self) -> list[Panel]:
        return []

    def canvas_layer(self) -> CanvasLayer | None:
        return None

    def connect_actions(self, actions: dict[str, QtGui.QAction], area: ViewerArea) -> None:
        """Bind the actions it answers (the shared table's and its own)."""

    def on_loaded(self, document: Document, loaded: Loaded) -> None:
        """An image was opened and added to the viewer."""

    def cancel(self) -> bool:
        """Esc: drop what is under way; True when something was (the next feature is then left alone)."""
        return False

    def shutdown(self) -> None:
        """The window closes: end the feature's work (its worker pools are stopped after)."""


def set_checked(action: QtGui.QAction, checked: bool) -> None:
    """Show a state on a checkable action without triggering it again."""
    with QtCore.QSignalBlocker(action):
        action.setChecked(checked)
