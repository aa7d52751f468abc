"""The second opinion on the canvases: each view draws the heat map and the
location of the answer shown for its image, and the ROIs placed for the ROI
models; nothing where the answer is no answer."""

from __future__ import annotations

from mammodesk.qt.opinion.overlay import OverlayLayer
from mammodesk.state.opinion import OpinionState
from mammodesk.state.viewer import ViewerState


class OpinionLayer:
    def __init__(self, viewer: ViewerState, opinions: OpinionState) -> None:
        self.viewer, self.opinions = viewer, opinions
        self.overlays: dict[object, OverlayLayer] = {}  # canvas -> its overlay
        self._which: tuple = (None, None)
        opinions.selected_changed.connect(lambda *_: self.refresh())
        opinions.opinions_changed.connect(self.refresh)
        opinions.rois_changed.connect(lambda *_: self.refresh())
        opinions.overlay_changed.connect(self._on_style)

    def attach(self, canvas) -> None:
        self.overlays[canvas] = OverlayLayer(canvas.view_box)

    def overlay_on(self, canvas) -> OverlayLayer:
        return self.overlays[canvas]

    def refresh(self) -> None:
        """Each visible view draws the map of the answer shown for its image."""
        opinions, documents = self.opinions, list(self.viewer.documents)
        for canvas, overlay in self.overlays.items():
            document = canvas.document if canvas.isVisible() else None
            flip_width = document.image.shape[1] if document is not None and canvas.flip else None
            opinion = opinions.shown_for(document) if document is not None else None
            read = opinions.as_read(opinion, documents) if opinion is not None else None
            unanswered = read is not None and bool(read[1] or read[0].caveat)  # no answer: no mark, no heat
            shown = opinions.overlay_map(opinion) if opinion is not None and not unanswered else None
            overlay.set_map(shown[0] if shown else None, opinions.overlay_for(opinion), flip_width=flip_width)
            rois = opinions.rois.get(document.id, []) if document is not None else []
            analysed = [opinion.box] if opinion is not None and opinion.box is not None \
                and opinions.marks_a_place(opinion, documents, read) else []
            label = f"{read[0].answer} · {read[0].score}/10" if analysed and read and read[0].score is not None else ""
            canvas.keep_clear(overlay.set_boxes(rois, analysed, flip_width=flip_width, label=label))

    def _on_style(self, settings) -> None:
        """Colours, opacity and threshold only recolour; another map or class re-maps."""
        which = (settings.map_name, settings.class_index)
        if which != self._which:
            self._which = which
            self.refresh()
            return
        for canvas, overlay in self.overlays.items():
            document = canvas.document if canvas.isVisible() else None
            shown = self.opinions.shown_for(document) if document is not None else None
            overlay.restyle(self.opinions.overlay_for(shown))
