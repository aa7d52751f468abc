"""Reading against priors: two studies of one woman hang current over prior,
view by view, with zoom, pan and window moving together."""

from __future__ import annotations

import numpy as np
from dicom_factory import make_dataset, phantom, write

from mammodesk.io import read_image
from mammodesk.state import ViewerState
from mammodesk.state.priors import studies_of


def exam(folder, patient: str, study: str, date: str | None, seed: int):
    """Four views of one study, as a screening archive exports them (one folder per exam)."""
    folder.mkdir(parents=True)
    paths = []
    for index, (side, view) in enumerate((("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))):
        pixels = phantom(160, 128, bits=12, seed=seed + index)
        if side == "R":
            pixels = pixels[:, ::-1].copy()  # stored with the chest wall on the right
        attributes = {"PatientID": patient, "StudyInstanceUID": study, "ImageLaterality": side, "ViewPosition": view}
        if date:
            attributes["StudyDate"] = date
        paths.append(write(make_dataset(pixels, bits_stored=12, **attributes), folder / f"{side}{view}.dcm"))
    return paths


def open_all(state: ViewerState, paths) -> list:
    return [state.add_image(read_image(p)) for p in paths]


def test_current_over_prior_by_study_date(tmp_path):
    state = ViewerState()
    prior = open_all(state, exam(tmp_path / "a", "P1", "1.2.3.1", "20220110", 0))
    current = open_all(state, exam(tmp_path / "b", "P1", "1.2.3.2", "20240115", 10))
    open_all(state, exam(tmp_path / "c", "OTHER", "1.2.3.9", "20240301", 20))  # another woman: never mixed in
    state.set_active(current[0])
    assert [s.date for s in studies_of(state.documents, current[0].image.meta.patient_key)] == ["20240115", "20220110"]
    assert state.toggle_priors() and state.layout == "priors"
    panes = state.comparison()
    assert [d for d, _ in panes] == [current[0], current[1], prior[0], prior[1]]  # CC page: R, L over R, L
    assert panes[0][1] == "R CC · current" and panes[2][1] == "R CC · prior, 24 months earlier"
    assert "2024" not in " ".join(c for _, c in panes)  # dates order the studies, they are not shown
    state.cycle_priors_page()
    assert [d for d, _ in state.comparison()] == [current[2], current[3], prior[2], prior[3]]


def test_folders_without_dates_order_by_their_names(tmp_path):
    state = ViewerState()
    current = open_all(state, exam(tmp_path / "exam", "P1", "1.1", None, 0))
    prior = open_all(state, exam(tmp_path / "prior-exam", "P1", "1.2", None, 4))
    state.set_active(prior[1])
    panes = state.comparison()
    assert panes[0][0] is current[0] and panes[2][0] is prior[0] and panes[2][1] == "R CC · prior"


def test_one_study_has_no_comparison(tmp_path):
    state = ViewerState()
    documents = open_all(state, exam(tmp_path / "only", "P1", "1.1", "20240101", 0))
    state.set_active(documents[0])
    assert not state.toggle_priors() and state.layout == "single"


def test_priors_layout_syncs_zoom_pan_and_window(window, qtbot, tmp_path):
    from PySide6 import QtCore

    exam(tmp_path / "2022", "P1", "1.1", "20220110", 0)
    exam(tmp_path / "2024", "P1", "1.2", "20240115", 9)
    window.open_paths([str(tmp_path / "2022"), str(tmp_path / "2024")])
    qtbot.waitUntil(lambda: len(window.state.documents) == 8, timeout=60_000)
    window.state.set_active(next(d for d in window.state.documents if d.image.meta.source_path.parent.name == "2024"))
    window.actions_["priors"].trigger()
    assert window.state.layout == "priors"
    canvases = window.area.visible_canvases()
    assert len(canvases) == 4 and [c.caption.split(" · ")[1] for c in canvases][:2] == ["current", "current"]
    current_r, _, prior_r, prior_l = canvases
    current_r.view_box.setRange(QtCore.QRectF(10, 20, 40, 50), padding=0)
    qtbot.wait(50)
    a, b = current_r.source_range(), prior_r.source_range()
    assert abs(a.left() - b.left()) < 1 and abs(a.top() - b.top()) < 1  # same breast: the same region
    mirrored = prior_l.source_range()  # the other breast: mirrored about the chest wall
    assert abs(mirrored.right() - (128 - a.left())) < 2
    before = {id(c.document): c.document.window for c in canvases}
    window.area._on_window_dragged(current_r.document, 40, -20, False)
    assert all(c.document.window != before[id(c.document)] for c in canvases)  # every view followed
    ratios = [c.document.window.width / before[id(c.document)].width for c in canvases]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-6)  # the same relative change everywhere
