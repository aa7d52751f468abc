"""The DICOM servers dialog: named DICOMweb and DIMSE servers, a connection
test off the UI thread; passwords and tokens go to the OS keyring (or an
environment variable), never to settings."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from mammodesk.archive import open_archive
from mammodesk.archive.servers import AUTHS, KINDS, ServerConfig, ServerConfigError, secret_variable, set_secret
from mammodesk.qt.compact import compact_combo
from mammodesk.qt.workers import WorkerPools, emit_from_worker
from mammodesk.services.archive_session import ArchiveSession


class ServersDialog(QtWidgets.QDialog):
    """Named servers; passwords and tokens go to the OS keyring (or an environment variable), never to settings."""

    _tested = QtCore.Signal(str)

    def __init__(self, session: ArchiveSession, workers: WorkerPools,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("DICOM servers")
        self.session, self.workers = session, workers
        self.servers = session.servers()
        self.list = QtWidgets.QListWidget()
        form = QtWidgets.QFormLayout()
        self.fields = {"name": QtWidgets.QLineEdit(), "url": QtWidgets.QLineEdit(), "username": QtWidgets.QLineEdit(),
                       "host": QtWidgets.QLineEdit(), "called_ae": QtWidgets.QLineEdit(),
                       "calling_ae": QtWidgets.QLineEdit()}
        self.kind, self.auth = compact_combo(KINDS), compact_combo(AUTHS)
        self.port = QtWidgets.QSpinBox()
        self.port.setRange(1, 65535)
        self.plain_http = QtWidgets.QCheckBox("Allow plain HTTP to another host (unencrypted)")
        self.secret = QtWidgets.QLineEdit()
        self.secret.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        self.secret.setPlaceholderText("stored in the OS keyring, never in settings")
        self.fields["url"].setPlaceholderText("https://pacs.example.org/dicom-web")
        for label, widget in (("Name", self.fields["name"]), ("Protocol", self.kind), ("DICOMweb URL", self.fields["url"]),
                              ("Authentication", self.auth), ("User", self.fields["username"]),
                              ("Password / token", self.secret), ("", self.plain_http), ("DIMSE host", self.fields["host"]),
                              ("Port", self.port), ("Called AE", self.fields["called_ae"]),
                              ("Calling AE", self.fields["calling_ae"])):
            form.addRow(label, widget)
        self.status = QtWidgets.QLabel()
        self.status.setWordWrap(True)
        buttons = QtWidgets.QHBoxLayout()
        for text, slot in (("New", self._new), ("Save", self._save), ("Remove", self._remove), ("Test", self._test)):
            button = QtWidgets.QPushButton(text)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        close = QtWidgets.QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons.addWidget(close)
        right = QtWidgets.QVBoxLayout()
        right.addLayout(form)
        right.addWidget(self.status)
        right.addLayout(buttons)
        layout = QtWidgets.QHBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addLayout(right, 3)
        self.list.currentRowChanged.connect(self._show)
        self.finished.connect(lambda _result: workers.close_pool("server-test"))
        self._tested.connect(self.status.setText)
        self._refresh()
        self._new()

    def _refresh(self) -> None:
        self.list.clear()
        self.list.addItems([s.name for s in self.servers])

    def _show(self, row: int) -> None:
        if not 0 <= row < len(self.servers):
            return
        server = self.servers[row]
        for key, widget in self.fields.items():
            widget.setText(str(getattr(server, key)))
        self.kind.setCurrentText(server.kind)
        self.auth.setCurrentText(server.auth)
        self.port.setValue(int(server.port))
        self.plain_http.setChecked(server.allow_plain_http)
        self.secret.clear()

    def _new(self) -> None:
        self.list.setCurrentRow(-1)
        defaults = ServerConfig("")
        for key, widget in self.fields.items():
            widget.setText(str(getattr(defaults, key)))
        self.port.setValue(defaults.port)

    def current(self) -> ServerConfig:
        values = {key: widget.text().strip() for key, widget in self.fields.items()}
        return ServerConfig(kind=self.kind.currentText(), auth=self.auth.currentText(), port=self.port.value(),
                            allow_plain_http=self.plain_http.isChecked(), **values).check()

    def _save(self) -> None:
        try:
            server = self.current()
            if self.secret.text():
                set_secret(server.name, self.secret.text())
            self.servers = [s for s in self.servers if s.name != server.name] + [server]
            self.session.store.save(self.servers)
        except ServerConfigError as exc:
            self.status.setText(f"<span style='color:#e06060'>{exc}</span>")
            return
        finally:
            self.secret.clear()
        self.session.forget(server.name)
        self._refresh()
        note = "" if server.auth == "none" else f" (secret: OS keyring, or {secret_variable(server.name)})"
        self.status.setText(f"Saved {server.name}{note}")

    def _remove(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.servers):
            self.servers.pop(row)
            self.session.store.save(self.servers)
            self._refresh()

    def _test(self) -> None:
        try:
            server = self.current()
        except ServerConfigError as exc:
            self.status.setText(f"<span style='color:#e06060'>{exc}</span>")
            return
        self.status.setText(f"Testing {server.name}...")

        def test() -> None:
            try:
                text = f"<span style='color:#4caf50'>{open_archive(server).echo()}</span>"
            except Exception as exc:  # noqa: BLE001 - shown to the user as is
                text = f"<span style='color:#e06060'>{exc}</span>"
            emit_from_worker(self._tested, text)

        try:
            self.workers.submit("server-test", test)
        except RuntimeError:  # the window is closing
            pass
