"""The viewer as a feature: opening images, the study browser and the
metadata panel, and the view commands (zoom, window, hanging, priors)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui

from mammodesk.qt.feature import Feature, Panel, set_checked
from mammodesk.qt.host import Host
from mammodesk.qt.viewer.area import ViewerArea
from mammodesk.qt.viewer.browser import StudyBrowser, StudyPanel
from mammodesk.qt.viewer.metadata import MetadataPanel
from mammodesk.qt.viewer.opening import OpeningController


class ViewerFeature(Feature):
    def __init__(self, host: Host, area: ViewerArea, settings: QtCore.QSettings) -> None:
        self.host, self.area, self.state = host, area, host.viewer
        self.browser, self.metadata = StudyBrowser(), MetadataPanel()
        self.study_panel = StudyPanel(self.browser)
        self.opening = OpeningController(host, self.browser, settings)
        self.opening.browse_requested.connect(lambda: host.show_panel("browser"))
        self.opening.loader.identifying.connect(self.metadata.set_identifying)
        self.metadata.reveal_requested.connect(self.opening.loader.reveal)
        self.state.active_changed.connect(self.metadata.show_document)

    def panels(self) -> list[Panel]:
        return [Panel("browser", "Study", self.study_panel, "left", "Ctrl+2", "Show or hide the study browser",
                      menu_text="&Study Browser"),
                Panel("metadata", "Metadata", self.metadata, "left", "Ctrl+3", "Show or hide the metadata panel")]

    def close_all(self) -> None:
        self.state.close_all()
        self.browser.clear_entries()

    def connect_actions(self, a: dict[str, QtGui.QAction], area: ViewerArea) -> None:
        state, opening = self.state, self.opening
        commands = {"open": opening.ask_files, "open_folder": opening.ask_folder,
                    "close": lambda: state.active and state.close(state.active), "close_all": self.close_all,
                    "fit": area.fit, "one_to_one": area.one_to_one,
                    "zoom_in": lambda: area.zoom(0.8), "zoom_out": lambda: area.zoom(1.25), "show": state.cycle_show,
                    "priors": lambda: self._toggle_priors(a["priors"]), "priors_page": state.cycle_priors_page,
                    "next_image": lambda: state.step_active(+1), "prev_image": lambda: state.step_active(-1),
                    "invert": lambda: state.active and state.invert(state.active),
                    "next_preset": lambda: state.active and state.next_preset(state.active),
                    "reset": lambda: (state.active and state.reset(state.active), area.fit())}
        for name, command in commands.items():
            a[name].triggered.connect(lambda _=False, c=command: c())
        a["layout"].toggled.connect(lambda on: state.set_layout("2x2" if on else "single"))
        a["orientation"].toggled.connect(lambda on: state.standardised == on and state.toggle_orientation())
        a["loupe"].toggled.connect(area.set_loupe)
        state.layout_changed.connect(lambda layout: (set_checked(a["layout"], layout == "2x2"),
                                                     set_checked(a["priors"], layout == "priors")))

    def _toggle_priors(self, action: QtGui.QAction) -> None:
        if not self.state.toggle_priors():
            set_checked(action, False)
            self.host.status("No prior study open for this woman: open her earlier exam too (a folder per exam, or "
                             "its DICOM study)", 4000)
