"""Rulers in mm where the pixel spacing is known (pixels and a note otherwise),
drawn with the mouse on the canvas, and a scale bar that follows the zoom."""

from __future__ import annotations

import numpy as np
import pytest
from dicom_factory import make_dataset, phantom, write
from PySide6 import QtCore
from PySide6.QtTest import QTest

from mammodesk.state.measurements import length_text, scale_bar


def test_lengths_and_scale_bar_formulas():
    assert length_text(((0, 0), (30, 40)), (0.1, 0.1)) == "5.0 mm"
    assert length_text(((0, 0), (10, 0)), (0.2, 0.05)) == "0.5 mm"  # columns use the column spacing
    assert length_text(((0, 0), (30, 40)), None) == "50 px (no pixel spacing)"
    length, text = scale_bar(0.5, (0.1, 0.1))  # 2 screen px per image px, 0.1 mm each: 110 px ~ 5.5 mm
    assert text == "5 mm" and length == pytest.approx(100)
    assert scale_bar(1.0, None)[1].endswith("px (no spacing)")


def test_ruler_drawn_on_the_canvas_reads_mm(window, qtbot, tmp_path):
    path = write(make_dataset(phantom(200, 160, bits=12), bits_stored=12, PixelSpacing=[0.1, 0.1]), tmp_path / "a.dcm")
    window.open_paths([str(path)])
    qtbot.waitUntil(lambda: len(window.state.documents) == 1 and bool(window.labelling.state.sheets), timeout=30_000)
    document = window.state.documents[0]
    canvas = window.area.visible_canvases()[0]
    editor = canvas.editor
    window.actions_["tool_measure"].trigger()
    start, end = editor.widget_point(20, 30), editor.widget_point(80, 110)
    viewport = canvas.viewport()
    QTest.mousePress(viewport, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, start)
    for step in range(1, 6):
        QTest.mouseMove(viewport, start + (end - start) * step / 5)
    QTest.mouseRelease(viewport, QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier, end)
    segments = window.labelling.state.measurements[document.id]
    assert len(segments) == 1
    (x0, y0), (x1, y1) = segments[0]
    assert abs(x0 - 20) <= 2 and abs(y1 - 110) <= 2
    label = editor.layer._ruler_labels[0].text()
    assert label.endswith(" mm") and float(label.split()[0]) == pytest.approx(np.hypot(x1 - x0, y1 - y0) * 0.1, abs=0.05)
    assert not window.labelling.state.sheets[document.id].labels.findings  # a reading aid, not a label
    assert canvas.scale_bar.isVisible() and canvas.scale_bar.text.endswith("mm")
    window.actions_["clear_measurements"].trigger()
    assert document.id not in window.labelling.state.measurements
