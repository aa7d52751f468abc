"""Small manners a new user notices in the panels: the wheel scrolls a panel instead of changing
the slider it passes over, and the status bar speaks of the active view."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets


def wheel(widget: QtWidgets.QWidget, steps: int = -1) -> None:
    centre = QtCore.QPointF(widget.width() / 2, widget.height() / 2)
    event = QtGui.QWheelEvent(centre, widget.mapToGlobal(centre), QtCore.QPoint(0, 0), QtCore.QPoint(0, 120 * steps),
                              QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier,
                              QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(widget, event)


def test_the_wheel_scrolls_the_panel_and_changes_a_slider_only_when_focused(qtbot, window):
    window.docks["models"].raise_()
    panel = window.second_opinion.panel
    window.resize(1366, 600)  # short enough that the Models panel scrolls
    qtbot.waitUntil(lambda: panel.threshold.isVisible())
    scroll = window.docks["models"].widget().verticalScrollBar()
    assert scroll.maximum() > 0
    before, scrolled = panel.threshold.value(), scroll.value()
    wheel(panel.threshold)
    assert panel.threshold.value() == before  # passing over it changes nothing ...
    assert scroll.value() > scrolled  # ... the panel scrolls instead
    overlay = window.opinions.overlay.threshold
    panel.threshold.setFocus()
    qtbot.waitUntil(panel.threshold.hasFocus)
    wheel(panel.threshold)
    assert panel.threshold.value() != before and window.opinions.overlay.threshold != overlay  # focused: it takes it
    combo_index = panel.colour_combo.currentIndex()
    panel.threshold.clearFocus()
    wheel(panel.colour_combo)
    assert panel.colour_combo.currentIndex() == combo_index


def test_the_status_bar_names_the_active_view(qtbot, window, mias_images):
    first, second = (next(p for p in mias_images if p.name == name) for name in ("mdb001.pgm", "mdb002.pgm"))
    window.open_paths([str(first), str(second)])
    qtbot.waitUntil(lambda: len(window.state.documents) == 2 and not window.opening.pending, timeout=60_000)
    assert window.state.active.name in window.statusBar().currentMessage()  # reading done: the active view, no count
    by_name = {d.name: d for d in window.state.documents}
    for name in ("mdb002.pgm", "mdb001.pgm", "mdb002.pgm"):
        window.state.set_active(by_name[name])
        message = window.statusBar().currentMessage()
        assert name in message and by_name[name].anatomy.label in message


def test_start_up_never_hashes_models_on_the_ui_thread(qtbot, tmp_path, monkeypatch):
    """Five bundled models (one damaged): the window comes up with their cards read, the digests are
    checked in a worker, and the damaged one then turns unusable."""
    import shutil
    import threading

    from mammodesk.inference import contract
    from mammodesk.qt.app import MainWindow
    from mammodesk.resources import resources_dir

    models = tmp_path / "resources" / "models"
    models.mkdir(parents=True)
    source = next((resources_dir() / "models").glob("*.onnx"))
    for index in range(5):
        shutil.copy(source, models / f"model-{index}.onnx")
    damaged = bytearray((models / "model-4.onnx").read_bytes())
    damaged[len(damaged) // 2] ^= 0x01  # inside the weights
    (models / "model-4.onnx").write_bytes(bytes(damaged))
    monkeypatch.setenv("MAMMODESK_RESOURCES", str(tmp_path / "resources"))
    hashed_on: list[str] = []
    real = contract.graph_sha256

    def observed(path):
        hashed_on.append(threading.current_thread().name)
        return real(path)

    monkeypatch.setattr(contract, "graph_sha256", observed)
    window = MainWindow(QtCore.QSettings(str(tmp_path / "s.ini"), QtCore.QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    library = window.opinions.library
    assert len(library.entries) == 5
    qtbot.waitUntil(lambda: not library.pending(), timeout=20_000)
    qtbot.waitUntil(lambda: "unusable" in window.second_opinion.panel.models.item(4).text(), timeout=5_000)
    assert threading.main_thread().name not in hashed_on
    # each file's digest checked once by the verifier; a warm-up that may have started meanwhile hashes the
    # bytes it loads in its own worker
    assert sum(name.startswith("mammodesk-verify") for name in hashed_on) == 5
    assert [e.card is not None for e in library.entries] == [True, True, True, True, False]
    assert "weights do not match" in library.entries[4].error
    window.close()


def test_the_model_list_names_every_family_and_what_it_is_for(qtbot, window):
    from mammodesk.inference.library import family_catalogue

    panel = window.second_opinion.panel
    rows = [panel.models.item(i) for i in range(panel.models.count())]
    texts = [row.text() for row in rows]
    catalogue = family_catalogue()
    assert {"reader", "fusion-vgg", "vae-cnn", "hybrid"} <= {info.family for info in catalogue}
    for info in catalogue:  # every family is listed by its purpose, with a model or with why it has none
        assert any(text.startswith(info.purpose) for text in texts), info.family
    entry = next(e for e in window.opinions.library.entries if e.card is not None and e.card.reads_whole_image)
    metrics = entry.card.metrics
    figure = f"CV AUC {metrics['auc']['mean']:.2f}, baseline {metrics['baseline']['baseline']['mean']:.2f}"
    reader = next(text for text in texts if entry.name in text)
    assert reader.startswith("Whole mammogram: normal vs abnormal") and figure in reader, (figure, reader)
    assert figure == "CV AUC 0.75, baseline 0.54"  # the bundled reader's card (resources/models/*.md)
    missing = [row for row in rows if ": not bundled" in row.text()]
    assert len(missing) == sum(info.not_bundled is not None for info in catalogue) >= 2
    assert all(row.flags() == QtCore.Qt.ItemFlag.NoItemFlags for row in missing)  # never selected, never run
    assert len(rows) == len(window.opinions.library.entries) + len(missing)
