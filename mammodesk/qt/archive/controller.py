"""The archive in the window: "Save Labels to Server", the team's reports on
opened images (this author's become the labels, the others are shown
read-only), opening a retrieved study (over its prior), and the servers
dialog. Its server calls and the Worklist panel's share one thread."""

from __future__ import annotations

from PySide6 import QtCore, QtGui

from mammodesk.qt.archive.panel import ARCHIVE_POOL, WorklistPanel, submit_archive
from mammodesk.qt.archive.servers_dialog import ServersDialog
from mammodesk.qt.feature import Feature, Panel
from mammodesk.qt.host import Host
from mammodesk.qt.workers import attempt, emit_from_worker
from mammodesk.services.archive_session import ArchiveSession
from mammodesk.state.labelling import LabellingState


class ArchiveController(QtCore.QObject, Feature):
    """Reports of images opened from a server (this author's become the labels, the others are shown
    read-only) and "Save Labels to Server", all off the UI thread."""

    _reports = QtCore.Signal(int, object, bool)  # document id, (mine, others) or Exception, adopt mine
    _saved = QtCore.Signal(int, object)  # document id, SaveResult or Exception

    def __init__(self, host: Host, labelling: LabellingState, session: ArchiveSession | None = None) -> None:
        super().__init__(host.widget)
        session = session or ArchiveSession(author=host.author)
        self.host, self.session, self.labelling = host, session, labelling
        self.panel = WorklistPanel(session, host.workers)
        self._reports.connect(self._on_reports)
        self._saved.connect(self._on_saved)
        self.panel.manage.clicked.connect(self.servers_dialog)
        self.panel.open_files.connect(self.open_retrieved)

    # --- the feature ---------------------------------------------------------------------------
    def panels(self) -> list[Panel]:
        return [Panel("worklist", "Worklist", self.panel, "left", "Ctrl+6",
                      "Search a DICOM server and open studies from it", tab_with="browser", scrolls=True)]

    def connect_actions(self, a: dict[str, QtGui.QAction], area) -> None:
        a["servers"].triggered.connect(lambda: self.servers_dialog())
        a["save_to_server"].triggered.connect(lambda: self.save_active())

    def on_loaded(self, document, loaded) -> None:
        self.fetch_reports(document)

    def shutdown(self) -> None:
        """The archive thread ends with the window (a running request finishes on its own; nothing new starts)."""
        self.host.workers.close_pool(ARCHIVE_POOL)

    def servers_dialog(self) -> None:
        ServersDialog(self.session, self.host.workers, self.host.widget).exec()
        self.panel.refresh_servers()

    def open_retrieved(self, paths: list[str]) -> None:
        host, viewer = self.host, self.host.viewer
        for path in paths:
            host.open_path(path)
        viewer.set_layout("2x2")
        order = {str(p): i for i, p in enumerate(paths)}  # the current study's images come first

        def when_loaded() -> None:  # two studies of one woman: current over prior
            opened = sorted((d for d in viewer.documents if str(d.image.meta.source_path) in order),
                            key=lambda d: order[str(d.image.meta.source_path)])
            if len({d.image.meta.study_key for d in opened}) > 1:
                viewer.set_active(opened[0])
                viewer.toggle_priors()

        host.when_loads_finish(when_loaded)

    def fetch_reports(self, document, adopt_mine: bool = True) -> None:
        """Fetch the image's reports: the others' are shown; this author's latest becomes the labels
        (not after a save: it is what was just saved, and its round trip through the SR would only
        replace the labels with an equal copy)."""
        path = document.image.meta.source_path
        if self.session.origin(path) is None:
            return
        key = document.id

        def work():
            try:
                result = self.session.refresh_reports(path)
            except Exception as exc:  # noqa: BLE001 - the cached reports still show; the message says why
                try:
                    result = (self.session.reports(path), exc)
                except Exception:  # noqa: BLE001
                    result = exc
            emit_from_worker(self._reports, key, result, adopt_mine)

        self._submit(work)

    def save_active(self) -> None:
        document = self.host.viewer.active
        labelling = self.labelling
        sheet = labelling.sheet(document.id) if document is not None else None
        path = document.image.meta.source_path if document is not None else None
        if sheet is None or self.session.origin(path) is None:
            self.host.status("Save to server: the active image was not opened from a server "
                                                "(Worklist, Ctrl+6); its labels are in its sidecar")
            return
        labels, key = sheet.labels, document.id
        self.host.status(f"Saving {document.name}'s labels to the server...")
        save = lambda: self.session.save(path, labels)  # noqa: E731
        self._submit(lambda: emit_from_worker(self._saved, key, attempt(save)))

    def _submit(self, work) -> None:
        submit_archive(self.host.workers, work)

    def _on_reports(self, key: int, result, adopt_mine: bool) -> None:
        labelling = self.labelling
        if isinstance(result, Exception) or key not in labelling.sheets:
            if isinstance(result, Exception):
                self.host.status(f"Reports not read: {result}")
            return
        reports, error = (result[0], result[1]) if isinstance(result[1], Exception) else (result, None)
        mine, others = reports
        adopted = adopt_mine and mine is not None and labelling.adopt(
            key, mine.labels, f"Your report of {mine.written[:8]} from the server")
        if adopted:
            self.host.status("Your latest report from the server is now the labels (Ctrl+Z undoes)")
        labelling.set_others(key, [(r.author, r.labels.findings) for r in others])
        if error is not None:
            self.host.status(f"Showing cached reports; the server did not answer: {error}")

    def _on_saved(self, key: int, result) -> None:
        if isinstance(result, Exception):
            self.host.status(f"Not saved to the server: {result} (kept locally)")
            self.panel.show_pending()
            return
        text = result.message
        if result.concurrent:
            names = ", ".join(r.replace("^", " ").strip() for r in result.concurrent)
            text += f"; {names} saved too while you worked: both reports are kept on the server"
        self.host.status(text)
        self.panel.show_pending()
        document = next((d for d in self.host.viewer.documents if d.id == key), None)
        if document is not None:
            self.fetch_reports(document, adopt_mine=False)
