"""Which breast and which view an image is, decided in one place: the hanging,
the display orientation, the sidecars and the exports all ask here.

The order is: DICOM tags, then file names, then pixels.

- Laterality from pixels: the chest wall is the image edge the breast rests
  on. Mammograms are stored with a left breast's chest wall on the left edge
  and a right breast's on the right (DICOM's MG convention; 256 of 258 MIAS
  images and every CBIS-DDSM image of the `mammograms` package). When the two
  edges hold nearly the same tissue, laterality stays unknown.
- View from pixels: an MLO view shows the pectoral muscle as a triangle of
  tissue in the top corner at the chest wall, which the breast tissue reaches
  from the top edge down; a CC view does not, its breast touches the chest
  wall only below the top edge. Anything in between stays unknown.

Unknown is "?", never a guess shown as a fact. The chest wall side always
comes from the pixels: that is where the breast really is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mammodesk.io.image import Image, ImageMeta
from mammodesk.io.naming import infer_from_name
from mammodesk.io.views import SLOTS, VIEW_FAMILY
from mammodesk.preprocessing.spatial import BreastOutline, chest_wall, outline_breast

Side = Literal["left", "right"]
Source = Literal["tag", "name", "pixels"]


@dataclass(frozen=True)
class Anatomy:
    laterality: Literal["L", "R"] | None
    view: str | None  # the view code as found (CC, MLO, XCCL ...) or the family seen in the pixels
    chest_wall: Side  # where the chest wall is in the stored pixels
    laterality_source: Source | None = None
    view_source: Source | None = None

    @property
    def family(self) -> str | None:
        """CC or MLO (the hanging's rows), None when unknown or neither."""
        return VIEW_FAMILY.get((self.view or "").upper())

    @property
    def slot(self) -> str | None:
        slot = f"{self.laterality}{self.family}" if self.laterality and self.family else None
        return slot if slot in SLOTS else None

    @property
    def label(self) -> str:
        """'R CC', 'L ?', '? MLO': what the reader sees; pixel-derived parts are marked."""
        def part(value: str | None, source: Source | None) -> str:
            return "?" if value is None else f"{value}*" if source == "pixels" else value

        return f"{part(self.laterality, self.laterality_source)} {part(self.view, self.view_source)}"

    @property
    def standard_side(self) -> Side:
        """Radiological display: a right breast is shown with its chest wall on the right of the
        screen, a left one on the left, so the chest walls meet in the middle of a hanging. An
        unknown breast keeps the side it has."""
        if self.laterality is None:
            return self.chest_wall
        return "right" if self.laterality == "R" else "left"

    @property
    def needs_flip(self) -> bool:
        return self.chest_wall != self.standard_side


def from_meta(meta: ImageMeta) -> tuple[str | None, Source | None, str | None, Source | None]:
    """(laterality, its source, view, its source) from tags, then the file name."""
    # Only DICOM has tags: other readers fill laterality and view from the file name.
    tagged = "tag" if meta.format == "DICOM" else "name"
    laterality, lat_source = meta.laterality, tagged if meta.laterality else None
    view, view_source = meta.view, tagged if meta.view else None
    if (laterality is None or view is None) and meta.source_path is not None:
        hints = infer_from_name(meta.source_path.name)
        if laterality is None and hints.laterality:
            laterality, lat_source = hints.laterality, "name"
        if view is None and hints.view:
            view, view_source = hints.view, "name"
    return laterality, lat_source, view, view_source


def read_anatomy(image: Image, outline: BreastOutline | None = None) -> Anatomy:
    """Tags, then names, then pixels (the load's breast outline; found here when not given)."""
    laterality, lat_source, view, view_source = from_meta(image.meta)
    outline = outline or outline_breast(image)
    mask = outline.mask
    wall, clear = chest_wall(outline.pixels, mask)
    if laterality is None and clear:
        laterality, lat_source = ("L" if wall == "left" else "R"), "pixels"
    if view is None:
        seen = view_from_pixels(mask, wall)
        if seen is not None:
            view, view_source = seen, "pixels"
    return Anatomy(laterality, view, wall, lat_source, view_source)  # type: ignore[arg-type]


def view_from_pixels(mask: np.ndarray, wall: Side) -> str | None:
    """'MLO', 'CC' or None (unsure), from the breast outline at the chest wall."""
    if not mask.any():
        return None
    oriented = mask if wall == "left" else mask[:, ::-1]
    rows, cols = oriented.shape
    columns = np.flatnonzero(oriented.any(axis=0))
    edge = int(columns[0])
    touching = np.flatnonzero(oriented[:, edge:edge + max(2, cols // 50)].any(axis=1))
    if not len(touching):
        return None
    corner = float(oriented[: max(1, rows // 12), edge: edge + max(1, cols // 8)].mean())
    first_contact = touching[0] / rows
    if corner >= 0.5 and first_contact <= 0.05:
        return "MLO"
    if corner <= 0.1 and first_contact >= 0.08:
        return "CC"
    return None


def assign_slots(anatomies: list[Anatomy]) -> dict[str, int]:
    """Slot name -> index into `anatomies`. The first image of each side+view takes its slot (a
    second RCC stays out of the hanging). An image whose slot is uncertain fills an empty slot
    only where what is known agrees (a right breast of unknown view: RCC or RMLO), and is shown
    with its own label ("R ?"), never the slot's; one of which nothing is known fills any slot."""
    slots: dict[str, int] = {}
    uncertain: list[int] = []
    for index, anatomy in enumerate(anatomies):
        if anatomy.slot is None:
            uncertain.append(index)
        elif anatomy.slot not in slots:
            slots[anatomy.slot] = index
    for index in uncertain:
        anatomy = anatomies[index]
        for slot in SLOTS:
            fits = (anatomy.laterality in (None, slot[0])) and (anatomy.family in (None, slot[1:]))
            if slot not in slots and fits:
                slots[slot] = index
                break
    return slots
