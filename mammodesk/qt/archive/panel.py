"""The Worklist panel: search a server, retrieve with progress and Stop, the
woman's priors, and the outbox's offer to send what a crash or a dead server
left behind. Every server call runs on the archive thread; the window never
waits for one."""

from __future__ import annotations

import itertools

from PySide6 import QtCore, QtWidgets

from mammodesk.archive.client import StudySummary
from mammodesk.archive.servers import ServerConfigError
from mammodesk.qt.compact import compact_combo
from mammodesk.qt.workers import WorkerPools, attempt, emit_from_worker
from mammodesk.services.archive_session import ArchiveSession

ARCHIVE_POOL = "archive"  # one thread for every server call (the panel's and the controller's): they share the
# session and its outbox, which must never be sent from two threads at once


def submit_archive(workers: WorkerPools, work) -> None:
    try:
        workers.submit(ARCHIVE_POOL, work)
    except RuntimeError:  # the window is closing: nothing new starts
        pass


class WorklistPanel(QtWidgets.QWidget):
    """Search a server's studies; double-click retrieves and opens one; its priors are offered."""

    open_files = QtCore.Signal(list)  # paths of a retrieved study (the current one first)
    _done = QtCore.Signal(int, str, object)  # job id, what, result or Exception
    _progress = QtCore.Signal(str, int, int)

    def __init__(self, session: ArchiveSession, workers: WorkerPools, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.workers = session, workers
        layout = QtWidgets.QVBoxLayout(self)
        self.server = compact_combo()
        self.manage = QtWidgets.QPushButton("Servers...")
        layout.addWidget(self.server)
        layout.addWidget(self.manage)
        form = QtWidgets.QFormLayout()
        form.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.WrapLongRows)
        self.query = {key: QtWidgets.QLineEdit() for key in ("patient_id", "patient_name", "date_from", "date_to",
                                                              "accession", "modality")}
        self.query["modality"].setText("MG")
        self.query["date_from"].setPlaceholderText("YYYYMMDD")
        self.query["date_to"].setPlaceholderText("YYYYMMDD")
        for label, key in (("Patient ID", "patient_id"), ("Name", "patient_name"), ("From", "date_from"),
                           ("To", "date_to"), ("Accession", "accession"), ("Modality", "modality")):
            self.query[key].setMinimumWidth(60)  # narrow docks: the fields shrink instead of being cut off
            form.addRow(label, self.query[key])
        layout.addLayout(form)
        self.search_button = QtWidgets.QPushButton("Search")
        layout.addWidget(self.search_button)
        self.results = QtWidgets.QTreeWidget()
        self.results.setHeaderLabels(["date", "patient", "images", "accession", "modalities"])
        self.results.setRootIsDecorated(False)
        self.results.setMinimumHeight(120)
        self.results.setMinimumWidth(60)  # scrolls sideways inside itself
        layout.addWidget(self.results, 1)
        row = QtWidgets.QGridLayout()
        self.open_button = QtWidgets.QPushButton("Open")
        self.priors_button = QtWidgets.QPushButton("Open with prior")
        self.stop_button = QtWidgets.QPushButton("Stop")
        row.addWidget(self.open_button, 0, 0)
        row.addWidget(self.stop_button, 0, 1)
        row.addWidget(self.priors_button, 1, 0, 1, 2)
        layout.addLayout(row)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setFormat("idle")
        self.progress.setTextVisible(True)
        layout.addWidget(self.progress)
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        layout.addWidget(self.status)
        self.send_button = QtWidgets.QPushButton("Send waiting reports")
        self.send_button.hide()
        layout.addWidget(self.send_button)
        self.studies: list[StudySummary] = []
        self._jobs = itertools.count(1)
        self._stop = False
        self.search_button.clicked.connect(self.search)
        self.open_button.clicked.connect(lambda: self.open_selected(with_prior=False))
        self.priors_button.clicked.connect(lambda: self.open_selected(with_prior=True))
        self.results.itemDoubleClicked.connect(lambda *_: self.open_selected(with_prior=False))
        self.stop_button.clicked.connect(self.stop)
        self.send_button.clicked.connect(self.send_pending)
        self._done.connect(self._on_done)
        self._progress.connect(self._on_progress)
        self.refresh_servers()
        self.show_pending()

    # --- helpers --------------------------------------------------------------------------------------------
    def refresh_servers(self) -> None:
        try:
            names = [s.name for s in self.session.servers()]
        except ServerConfigError as exc:
            names = []
            self.set_status(str(exc), error=True)
        current = self.server.currentText()
        self.server.clear()
        self.server.addItems(names)
        if current in names:
            self.server.setCurrentText(current)
        if not names:
            self.set_status("No server yet: Servers... adds one (DICOMweb URL, or DIMSE host and AE titles)")

    def set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(f"<span style='color:#e06060'>{text}</span>" if error else text)

    def _submit(self, what: str, work) -> None:
        job = next(self._jobs)
        self._stop = False
        submit_archive(self.workers, lambda: emit_from_worker(self._done, job, what, attempt(work)))

    def stop(self) -> None:
        self._stop = True

    # --- actions ------------------------------------------------------------------------------------------------
    def search(self) -> None:
        server = self.server.currentText()
        if not server:
            self.set_status("Choose or add a server first (Servers...)", error=True)
            return
        query = {key: field.text().strip() for key, field in self.query.items()}
        self.set_status(f"Searching {server}...")
        self._submit("search", lambda: self.session.search(server, **query))

    def open_selected(self, with_prior: bool) -> None:
        index = self.results.indexOfTopLevelItem(self.results.currentItem()) if self.results.currentItem() else -1
        if not 0 <= index < len(self.studies):
            self.set_status("Select a study in the list first", error=True)
            return
        server, study = self.server.currentText(), self.studies[index]

        def work():
            studies = [study] + (self.session.priors(server, study)[:1] if with_prior else [])
            paths = []
            for number, item in enumerate(studies):
                label = "current" if number == 0 else "prior"
                paths += self.session.retrieve(server, item.study_uid, should_stop=lambda: self._stop,
                                               progress=lambda d, t, lb=label: self._progress.emit(lb, d, t))
            return paths, len(studies)

        self.set_status(f"Retrieving {'the study and its prior' if with_prior else 'the study'} from {server}...")
        self._submit("retrieve", work)

    def send_pending(self) -> None:
        self.set_status("Sending waiting reports...")
        self._submit("send", self.session.send_pending)

    def show_pending(self) -> None:
        """The outbox's offer: reports a crash or a dead server left behind."""
        pending = self.session.pending()
        self.send_button.setVisible(bool(pending))
        if pending:
            names = ", ".join(sorted({p.image for p in pending}))
            self.send_button.setText(f"Send {len(pending)} waiting report(s)")
            self.set_status(f"{len(pending)} report(s) not yet acknowledged by a server ({names}); "
                            "they are kept and can be sent now", error=True)

    # --- results -------------------------------------------------------------------------------------------------
    def _on_progress(self, label: str, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.progress.setFormat(f"{label}: {done}/{total}")

    def _on_done(self, _job: int, what: str, result) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("idle")
        if isinstance(result, InterruptedError):
            self.set_status("Stopped; what arrived is kept in the cache and a new retrieve resumes")
            return
        if isinstance(result, Exception):
            self.set_status(f"{result}", error=True)
            return
        if what == "search":
            self.studies = list(result.studies)
            self.results.clear()
            for study in self.studies:
                modalities = "/".join(study.modalities) or "? (none listed)"
                item = QtWidgets.QTreeWidgetItem([_date(study.date), study.patient_name or study.patient_id,
                                                  str(study.images), study.accession, modalities])
                self.results.addTopLevelItem(item)
            for column in range(4):
                self.results.resizeColumnToContents(column)
            hint = "; double-click opens one, 'Open with prior' adds the woman's previous study" if self.studies else ""
            self.set_status(result.describe().replace("modality ''", "an empty Modality field") + hint)
        elif what == "retrieve":
            paths, count = result
            self.set_status(f"{len(paths)} image(s) of {count} stud{'y' if count == 1 else 'ies'} retrieved")
            self.open_files.emit([str(p) for p in paths])
        elif what == "send":
            sent, errors = result
            self.set_status(f"{sent} report(s) sent" + (f"; not sent: {errors[0]}" if errors else ""), bool(errors))
            self.show_pending() if errors else self.send_button.hide()


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 else value
