"""The reading room's state: open images, their windows and orientation, the
layout, the active image, load errors and recent files. The Qt layer renders
it and routes every user action to a method here."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Literal

from mammodesk.anatomy import Anatomy, Side, assign_slots, read_anatomy
from mammodesk.io import display
from mammodesk.io.image import Image, WindowPreset
from mammodesk.preprocessing.spatial import BreastOutline, outline_breast
from mammodesk.state.events import Signal
from mammodesk.state.pipeline_editor import PipelineEditor
from mammodesk.state.priors import PAGES, comparison
from mammodesk.state.processing import ProcessedView

Layout = Literal["single", "2x2", "priors"]
ShowMode = Literal["original", "processed", "side_by_side"]
SHOW_MODES: tuple[ShowMode, ...] = ("original", "processed", "side_by_side")
RECENT_LIMIT = 12
_ids = itertools.count(1)


@dataclass(frozen=True)
class LoadError:
    path: str
    message: str


@dataclass(eq=False)
class Document:
    """One open image and how it is shown. `anatomy` says which breast and view it
    is and where its chest wall really is; `flip` mirrors the display to the
    standard chest-wall side; the pixels and every coordinate stay in source
    orientation."""

    image: Image
    window: WindowPreset
    anatomy: Anatomy
    flip: bool = False
    auto: WindowPreset | None = None  # the automatic window on the breast (computed once, at load)
    inverted: bool = False
    processed: ProcessedView | None = None  # latest pipeline output (view-resolution preview or full)
    processed_window: WindowPreset | None = None
    processed_window_custom: bool = False
    display_copy: display.DisplayCopy | None = None  # reduced copy for the view (None: show the pixels)
    outline: BreastOutline | None = None  # where the breast is, found once at load (anatomy, window, answers)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def name(self) -> str:
        path = self.image.meta.source_path
        return path.name if path else f"image {self.id}"

    @property
    def presets(self) -> tuple[WindowPreset, ...]:
        return self.image.meta.window_presets

    @property
    def value_span(self) -> float:
        return float(self.image.max_value)


def automatic_window(image: Image, outline: BreastOutline | None = None) -> WindowPreset:
    """The automatic window over the breast itself (the load's outline; found here when not
    given): over the whole image the black background widened it so far that dense tissue washed
    out. The whole image's percentiles when no breast is found."""
    outline = outline or outline_breast(image)
    return display.breast_window(image, outline.pixels, outline.mask)


def default_window(image: Image, auto: WindowPreset | None = None) -> WindowPreset:
    """The file's first VOI preset, else the automatic window over the breast."""
    return image.meta.default_window or auto or automatic_window(image)


class ViewerState:
    def __init__(self) -> None:
        self.documents: list[Document] = []
        self.errors: list[LoadError] = []
        self.recent: list[str] = []
        self.layout: Layout = "single"
        self.priors_page = "CC"  # the view family compared with the prior study
        self.active: Document | None = None
        self.standardised = True
        self.show: ShowMode = "original"
        self.pipeline = PipelineEditor()
        self.documents_changed = Signal()  # ()
        self.active_changed = Signal()  # (Document | None)
        self.layout_changed = Signal()  # (Layout)
        self.window_changed = Signal()  # (Document)
        self.orientation_changed = Signal()  # ()
        self.show_changed = Signal()  # (ShowMode)
        self.processed_changed = Signal()  # (Document)
        self.errors_changed = Signal()  # ()
        self.recent_changed = Signal()  # ()

    # --- documents -----------------------------------------------------------
    def add_image(self, image: Image, *, auto: WindowPreset | None = None, anatomy: Anatomy | None = None,
                  copy: display.DisplayCopy | None = None, outline: BreastOutline | None = None) -> Document:
        """Open an image. Loaders pass the automatic window, the anatomy, the breast outline and the display
        copy they computed off the UI thread; otherwise the first three are computed here."""
        if anatomy is None or auto is None or outline is None:
            outline = outline or outline_breast(image)
            anatomy = anatomy or read_anatomy(image, outline)
            auto = auto or automatic_window(image, outline)
        document = Document(image, default_window(image, auto), anatomy, flip=anatomy.needs_flip, auto=auto,
                            display_copy=copy, outline=outline)
        self.documents.append(document)
        if image.meta.source_path is not None:
            self.note_recent(str(image.meta.source_path))
        self.documents_changed.emit()
        if self.layout == "single" or self.active is None:
            self.set_active(document)
        return document

    def add_error(self, path: str, message: str) -> None:
        self.errors.append(LoadError(path, message))
        self.errors_changed.emit()

    def close(self, document: Document) -> None:
        index = self.documents.index(document)
        self.documents.remove(document)
        self.documents_changed.emit()
        if self.active is document:
            remaining = self.documents
            self.set_active(remaining[min(index, len(remaining) - 1)] if remaining else None)

    def close_all(self) -> None:
        self.documents.clear()
        self.documents_changed.emit()
        self.set_active(None)

    def set_active(self, document: Document | None) -> None:
        if document is not self.active:
            self.active = document
            self.active_changed.emit(document)

    def step_active(self, offset: int) -> None:
        """Next/previous image (wraps)."""
        if not self.documents:
            return
        index = self.documents.index(self.active) if self.active in self.documents else -offset
        self.set_active(self.documents[(index + offset) % len(self.documents)])

    def note_recent(self, path: str) -> None:
        self.recent = [path] + [p for p in self.recent if p != path][:RECENT_LIMIT - 1]
        self.recent_changed.emit()

    # --- layout --------------------------------------------------------------
    def set_layout(self, layout: Layout) -> None:
        if layout not in ("single", "2x2", "priors"):
            raise ValueError(f"unknown layout {layout!r}")
        if layout != self.layout:
            self.layout = layout
            self.layout_changed.emit(layout)

    def toggle_layout(self) -> None:
        self.set_layout("2x2" if self.layout == "single" else "single")

    def toggle_priors(self) -> bool:
        """Current beside prior (the active image's woman needs two studies open); False when not possible."""
        if self.layout == "priors":
            self.set_layout("2x2")
            return True
        if not self.comparison():
            return False
        self.set_layout("priors")
        return True

    def cycle_priors_page(self) -> None:
        self.priors_page = PAGES[(PAGES.index(self.priors_page) + 1) % len(PAGES)]
        if self.layout == "priors":
            self.layout_changed.emit(self.layout)

    def comparison(self) -> list[tuple[Document | None, str]]:
        """The priors layout's four panes (`priors.comparison`)."""
        return comparison(self.documents, self.active, self.priors_page)

    def shown_documents(self) -> list[Document]:
        """The images on screen: the hanging's in 2x2, else the active one."""
        if self.layout == "2x2":
            return [d for d in self.hanging().values() if d is not None]
        return [self.active] if self.active is not None else []

    def hanging(self) -> dict[str, Document]:
        """Slot (RCC, LCC, RMLO, LMLO) -> document, for the 2x2 layout (`anatomy.assign_slots`)."""
        slots = assign_slots([d.anatomy for d in self.documents])
        return {slot: self.documents[index] for slot, index in slots.items()}

    def set_show(self, mode: ShowMode) -> None:
        if mode not in SHOW_MODES:
            raise ValueError(f"unknown show mode {mode!r}")
        if mode != self.show:
            self.show = mode
            self.show_changed.emit(mode)

    def cycle_show(self) -> None:
        self.set_show(SHOW_MODES[(SHOW_MODES.index(self.show) + 1) % len(SHOW_MODES)])

    # --- orientation -------------------------------------------------------------
    def toggle_orientation(self) -> None:
        """Standardised (chest walls on their standard sides) <-> as stored."""
        self.standardised = not self.standardised
        self.orientation_changed.emit()

    def displayed_flip(self, document: Document) -> bool:
        return self.standardised and document.flip

    def displayed_chest_wall(self, document: Document) -> Side:
        """The screen side the chest wall really is on, as displayed now (from the pixels)."""
        stored = document.anatomy.chest_wall
        if not self.displayed_flip(document):
            return stored
        return "left" if stored == "right" else "right"

    # --- window / level ------------------------------------------------------------
    def set_window(self, document: Document, preset: WindowPreset, *, processed: bool = False) -> None:
        if processed:
            document.processed_window = preset
        else:
            document.window = preset
        self.window_changed.emit(document)

    def drag_window(self, document: Document, dx: float, dy: float, *, processed: bool = False) -> None:
        if processed:
            if document.processed_window is None or document.processed is None:
                return
            document.processed_window_custom = True
            preset, span = document.processed_window, document.processed.value_span
        else:
            preset, span = document.window, document.value_span
        self.set_window(document, display.drag_window(preset, dx, dy, span), processed=processed)

    def next_preset(self, document: Document) -> None:
        """Cycle the file's own presets (DICOM VOI), then the automatic window on the breast."""
        choices = list(document.presets) + [document.auto or automatic_window(document.image)]
        labels = [p.label for p in choices]
        index = labels.index(document.window.label) + 1 if document.window.label in labels else 0
        self.set_window(document, choices[index % len(choices)])

    def invert(self, document: Document) -> None:
        document.inverted = not document.inverted
        self.window_changed.emit(document)

    def reset(self, document: Document) -> None:
        """Back to the file's default window, not inverted (zoom is reset by the view)."""
        document.inverted = False
        document.processed_window_custom = False
        if document.processed is not None:
            document.processed_window = document.processed.auto_window
        self.set_window(document, default_window(document.image, document.auto))

    # --- processing results ---------------------------------------------------------
    def set_processed(self, document: Document, view: ProcessedView | None) -> None:
        """A pipeline result arrived (from a worker, delivered on the UI thread).
        The processed window follows the result unless the user has dragged it."""
        if document not in self.documents:
            return  # closed while it was computing
        document.processed = view
        if view is None:
            document.processed_window, document.processed_window_custom = None, False
        elif not document.processed_window_custom or document.processed_window is None:
            document.processed_window = view.auto_window
        self.processed_changed.emit(document)
