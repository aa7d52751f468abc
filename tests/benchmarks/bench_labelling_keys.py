"""Labelling 20 findings with the keys alone, against the mouse and dropdowns (run on demand):

  QT_QPA_PLATFORM=offscreen .venv/bin/python tests/benchmarks/bench_labelling_keys.py [--findings 20]

The real window at 1366x768 on a folder of 20 images. For each image the labeller goes to it, picks the
ellipse tool, drags one mass and gives it its type, pathology, BI-RADS, shape and margin (varied from image to
image), once with the keys (Ctrl+PgDown, E, Shift+M, Ctrl+B/M, Alt+n, Shift+H, Shift+G) and once with the mouse
(double-click in the study browser, the tool button, each dropdown opened and its item clicked). The drag is the
same in both. Every finding is checked in its sidecar, so both sessions really label.

A person's time cannot be measured here; it is estimated with the keystroke-level model (Card, Moran and Newell
1983) from the actions each session really sent: K 0.28 s a keystroke (a chord is two), P 1.1 s to point, B
0.1 s a button press or release, H 0.4 s to move a hand between keyboard and mouse, and M 1.35 s to decide,
once per label in both sessions. The app's own time per session (the scripted events processed, the script's
pauses left out) is measured and printed beside it: it shows whether the app keeps up, not how fast a person is.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: the image factory

KLM = {"K": 0.28, "P": 1.1, "B": 0.1, "H": 0.4, "M": 1.35}


class Session:
    """Sends the labeller's actions to the window and counts them as keystroke-level operators."""

    def __init__(self, window, app) -> None:
        self.window, self.app, self.ops = window, app, []
        self.paused = 0.0  # the script's own pauses (a popup's, the drag's): not the app's time

    def pause(self, ms: int) -> None:
        from PySide6.QtTest import QTest

        started = time.perf_counter()
        QTest.qWait(ms)
        self.paused += time.perf_counter() - started

    def wait(self, done, timeout: float = 30.0, what: str = "") -> None:
        from PySide6.QtTest import QTest

        end = time.perf_counter() + timeout
        while not done():
            if time.perf_counter() > end:
                raise TimeoutError(f"the window did not get there{': ' + what if what else ''}")
            QTest.qWait(5)

    def keys(self, chord: str) -> None:
        from PySide6 import QtGui
        from PySide6.QtTest import QTest

        combination = QtGui.QKeySequence(chord)[0]
        QTest.keyClick(self.window, combination.key(), combination.keyboardModifiers())
        self.ops += ["K"] * (chord.count("+") + 1)

    def click(self, widget, point, double: bool = False) -> None:
        from PySide6 import QtCore, QtGui, QtWidgets
        from PySide6.QtTest import QTest

        left, none = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier
        QTest.mouseClick(widget, left, none, point)
        if double:  # the rest of what a real double click sends: double-click, release
            event = QtGui.QMouseEvent(QtCore.QEvent.Type.MouseButtonDblClick, QtCore.QPointF(point),
                                      QtCore.QPointF(widget.mapToGlobal(point)), left, left, none)
            QtWidgets.QApplication.sendEvent(widget, event)
            QTest.mouseRelease(widget, left, none, point)
        self.ops += ["P"] + ["B", "B"] * (2 if double else 1)

    def choose(self, combo_now, text: str) -> None:
        """Open the dropdown (`combo_now()`: the panel may rebuild it after the last label) and click its item."""
        from PySide6 import QtCore, QtWidgets

        self.pause(QtWidgets.QApplication.doubleClickInterval() + 30)  # not a double click with the last one
        combo = combo_now()
        rect = combo.rect()  # an editable one opens from its arrow (its middle is a text field)
        self.click(combo, rect.center() if not combo.isEditable() else QtCore.QPoint(rect.right() - 6, rect.center().y()))
        self.wait(lambda: combo.view().isVisible(), timeout=5,
                  what=f"the {text!r} dropdown open (shown: {combo.isVisible()}, enabled: {combo.isEnabled()})")
        view = combo.view()
        row = combo.findText(text)
        index = view.model().index(row, 0)
        view.scrollTo(index)
        self.pause(QtWidgets.QApplication.doubleClickInterval() + 30)  # a popup ignores a release too soon after
        self.click(view.viewport(), view.visualRect(index).center())
        self.wait(lambda: not view.isVisible())

    def drag(self, editor, start, end) -> None:
        from PySide6 import QtCore
        from PySide6.QtTest import QTest

        viewport = editor.canvas.viewport()
        a, b = editor.widget_point(*start), editor.widget_point(*end)
        left, none = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier
        QTest.mousePress(viewport, left, none, a)
        for step in range(1, 7):
            self.pause(25)  # pyqtgraph drops moves faster than the screen refreshes
            QTest.mouseMove(viewport, a + (b - a) * step / 6)
        QTest.mouseRelease(viewport, left, none, b)
        self.ops += ["P", "B", "P", "B"]

    def estimate(self) -> float:
        return sum(KLM[op] for op in self.ops)


def label_all(folder: Path, count: int, by_keys: bool, settings_file: Path) -> tuple[Session, float]:
    from PySide6 import QtCore, QtWidgets
    from PySide6.QtTest import QTest

    from mammodesk.annotations.model import FindingKind, Pathology
    from mammodesk.annotations.taxonomy import DEFAULT_ATTRIBUTES

    shapes, margins = DEFAULT_ATTRIBUTES["shape"], DEFAULT_ATTRIBUTES["margin"]  # as the keys cycle them
    from mammodesk.qt.app import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    window = MainWindow(QtCore.QSettings(str(settings_file), QtCore.QSettings.Format.IniFormat))
    window.resize(1366, 768)
    window.show()
    session = Session(window, app)
    paths = sorted(str(p) for p in folder.glob("*.png"))
    window.open_paths([str(folder)])
    browser, state, labelling = window.browser, window.state, window.labelling
    session.wait(lambda: browser.count() == count, timeout=120)
    window.docks["labels"].raise_()
    panel = labelling.panel
    started = time.perf_counter()
    for n, path in enumerate(paths):
        if n == 0 or not by_keys:  # the first image: opened from the browser in both sessions
            item = browser.item(browser.paths().index(path))
            browser.scrollToItem(item)
            QTest.qWait(20)
            session.click(browser.viewport(), browser.visualItemRect(item).center(), double=True)
        else:
            session.keys("Ctrl+PgDown")
        session.wait(lambda: state.active is not None and str(state.active.image.meta.source_path) == path
                     and state.active.id in labelling.state.sheets, timeout=60,
                     what=f"{Path(path).name} active (it is {state.active and state.active.name})")
        document = state.active
        if n == 0 and len(window.area.visible_canvases()) > 1:  # one image at a time, in both sessions
            window.actions_["layout"].trigger()
        session.wait(lambda: window.labelling.editor_for(document) is not None)
        QTest.qWait(20)
        editor = window.labelling.editor_for(document)
        if by_keys:
            window.activateWindow()
            window.area.setFocus()
            session.keys("E")
            session.ops.append("H")  # to the mouse for the drag
        else:
            button = next(b for b in panel.findChildren(QtWidgets.QToolButton)
                          if b.defaultAction() is window.actions_["tool_ellipse"])
            session.click(button, button.rect().center())
        session.drag(editor, (60, 80), (130, 150))
        session.wait(lambda: len(labelling.state.sheets[document.id].labels.findings) == 1)
        pathology = (Pathology.BENIGN, Pathology.MALIGNANT)[n % 2]
        birads, shape, margin = 3 + n % 3, shapes[n % len(shapes)], margins[n % len(margins)]
        session.ops += ["M"] * 5  # a decision per label, in both sessions
        if by_keys:
            session.ops.append("H")  # back to the keyboard
            window.area.setFocus()
            session.keys("Shift+M")
            session.keys("Ctrl+B" if pathology is Pathology.BENIGN else "Ctrl+M")
            session.keys(f"Alt+{birads}")
            for _ in range(shapes.index(shape) + 1):
                session.keys("Shift+H")
            for _ in range(margins.index(margin) + 1):
                session.keys("Shift+G")
        else:
            session.choose(lambda: panel.type_combo, "mass")
            session.choose(lambda: panel.pathology, pathology.value)
            session.choose(lambda: panel.birads, str(birads))
            session.choose(lambda: panel.attribute_combos["shape"], shape)
            session.choose(lambda: panel.attribute_combos["margin"], margin)
        (finding,) = labelling.state.sheets[document.id].labels.findings
        got = (finding.kind, finding.pathology, finding.birads, finding.attributes.get("shape"),
               finding.attributes.get("margin"))
        if got != (FindingKind.MASS, pathology, birads, shape, margin):
            raise AssertionError(f"{Path(path).name}: labelled {got}")
    seconds = time.perf_counter() - started - session.paused
    window.close()
    return session, seconds


def main() -> None:
    import cv2
    from dicom_factory import phantom

    parser = argparse.ArgumentParser()
    parser.add_argument("--findings", type=int, default=20)
    args = parser.parse_args()
    from mammodesk.qt.viewer.opening import AUTO_OPEN_LIMIT

    if args.findings <= AUTO_OPEN_LIMIT:
        parser.error(f"--findings: more than {AUTO_OPEN_LIMIT} (a smaller folder opens every file at once)")
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for name, by_keys in (("keys", True), ("mouse", False)):
            folder = Path(root) / name
            folder.mkdir()
            for n in range(args.findings):
                pixels = phantom(300, 240, bits=8)
                pixels[5:9, 5 + n:9 + n] = 255  # distinct pixels: one sidecar each
                cv2.imwrite(str(folder / f"case{n:02d}.png"), pixels)
            results[name] = label_all(folder, args.findings, by_keys, Path(root) / f"{name}.ini")
    for name, (session, seconds) in results.items():
        counts = {op: session.ops.count(op) for op in "KPBHM"}
        print(f"{name}: {args.findings} findings labelled; actions {counts}; estimated person time "
              f"{session.estimate():.0f} s ({session.estimate() / args.findings:.1f} s per finding); the app's "
              f"own time {seconds:.1f} s (the script's pauses left out)")
    keys, mouse = results["keys"][0].estimate(), results["mouse"][0].estimate()
    print(f"keys alone: {mouse / keys:.2f}x faster than mouse and dropdowns (estimated)")


if __name__ == "__main__":
    main()
