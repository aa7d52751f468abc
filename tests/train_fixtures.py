"""Tiny datasets written in each source's real layout, for fast training tests."""

from __future__ import annotations

import plistlib
import tarfile
from pathlib import Path

import cv2
import numpy as np
from dicom_factory import make_dataset, write

SIZE = 64


def breast(seed: int, bright_spot: bool = False, size: int = SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    disc = (xx / (0.8 * size)) ** 2 + ((yy - size / 2) / (0.45 * size)) ** 2 < 1
    image = np.where(disc, 110, 8) + rng.normal(0, 6, (size, size))
    if bright_spot:
        image[size // 2 - 4:size // 2 + 4, 10:18] += 90
    return np.clip(image, 0, 255).astype(np.uint8)


def write_pgm(path: Path, pixels: np.ndarray) -> None:
    path.write_bytes(f"P5\n{pixels.shape[1]} {pixels.shape[0]}\n255\n".encode() + pixels.tobytes())


MIAS_ROWS = [  # ref, tissue, class, severity, x, y, radius (bottom-left origin, 64-pixel images)
    ("mdb001", "G", "CIRC", "B", 14, 31, 6), ("mdb002", "G", "NORM"), ("mdb003", "D", "SPIC", "M", 14, 31, 5),
    ("mdb004", "D", "NORM"), ("mdb005", "F", "CALC", "M", 14, 31, 4), ("mdb006", "F", "NORM"),
    ("mdb007", "G", "MISC", "B", 14, 31, 6), ("mdb008", "G", "NORM"), ("mdb009", "D", "CIRC", "M", 14, 31, 5),
    ("mdb010", "D", "NORM"), ("mdb011", "F", "CALC", "B", 14, 31, 4), ("mdb012", "F", "NORM"),
    ("mdb013", "G", "ARCH", "B", 14, 31, 6), ("mdb014", "G", "NORM"), ("mdb015", "D", "SPIC", "M", 14, 31, 5),
    ("mdb016", "D", "NORM"),
]


def mias_folder(root: Path, *, lesions_on_spots: bool = False, normal_women: tuple[int, ...] = ()) -> Path:
    """MIAS layout. Info.txt's y counts from the bottom of a 1024-pixel image, so
    the rows' y = 31 lands off these 64-pixel images; `lesions_on_spots` writes
    the y that puts each lesion on its bright spot instead (for ROI recipes).
    Every woman has one abnormal breast, except `normal_women` (1-8: images
    2k-1 and 2k), whose finding is left out (an exam with no finding)."""
    folder = root / "mias"
    folder.mkdir(parents=True)
    lines = ["header text that real Info.txt files have", ""]
    for row in MIAS_ROWS:
        if (int(row[0][3:]) + 1) // 2 in normal_women:
            row = (*row[:2], "NORM")
        if lesions_on_spots and len(row) > 4:
            row = (*row[:5], 1024 - SIZE // 2, row[6])
        lines.append(" ".join(str(v) for v in row))
        write_pgm(folder / f"{row[0]}.pgm", breast(int(row[0][3:]), bright_spot=row[2] != "NORM"))
    (folder / "Info.txt").write_text("\n".join(lines) + "\n")
    return folder


def mias_tarball(root: Path) -> Path:
    folder = mias_folder(root / "src")
    archive = root / "all-mias.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="mias")
    return archive


CBIS_HEADER = ("patient_id,breast_density,left or right breast,image view,abnormality id,abnormality type,"
               "mass shape,mass margins,assessment,pathology,subtlety,image file path,cropped image file path,"
               "ROI mask file path")


def cbis_folder(root: Path) -> Path:
    folder = root / "cbis"
    rows = [CBIS_HEADER]
    for i, (side, view, pathology) in enumerate([("LEFT", "CC", "MALIGNANT"), ("RIGHT", "MLO", "BENIGN"),
                                                 ("LEFT", "MLO", "BENIGN_WITHOUT_CALLBACK"), ("RIGHT", "CC", "MALIGNANT")]):
        image_id = f"Mass-Training_P_{i:05d}_{side}_{view}"
        dicom = folder / image_id / "1.2.3" / "1.2.4" / "000000.dcm"
        dicom.parent.mkdir(parents=True)
        write(make_dataset(breast(i, True)), dicom)
        rows.append(f"P_{i:05d},{i % 4 + 1},{side},{view},1,mass,OVAL,CIRCUMSCRIBED,{3 + i % 3},{pathology},3,"
                    f"{image_id}/1.2.3/1.2.4/000000.dcm,{image_id}_1/x/000000.dcm,{image_id}_1/x/000001.dcm")
    (folder / "mass_case_description_train_set.csv").write_text("\n".join(rows) + "\n")
    return folder


def inbreast_folder(root: Path) -> Path:
    folder = root / "INbreast"
    (folder / "AllDICOMs").mkdir(parents=True)
    (folder / "AllXML").mkdir()
    sheet = ["Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads"]
    for i, (birads, acr) in enumerate([("1", "1"), ("2", "2"), ("4a", "3"), ("5", "4"), ("3", "2"), ("6", "1")]):
        name = f"{22678600 + i}"
        patient = f"{i // 2:016x}"  # two images per patient
        write(make_dataset(breast(i, birads not in ("1", "2"))), folder / "AllDICOMs" / f"{name}_{patient}_MG_R_CC_ANON.dcm")
        sheet.append(f"removed;removed;R;CC;201001;{name};{acr};{birads}")
        if birads not in ("1", "2"):
            roi = {"Name": "Mass", "NumberOfPoints": 4,
                   "Point_px": ["(10.0, 28.0)", "(18.0, 28.0)", "(18.0, 36.0)", "(10.0, 36.0)"]}
            (folder / "AllXML" / f"{name}.xml").write_bytes(plistlib.dumps({"Images": [{"ROIs": [roi]}]}))
    (folder / "INbreast.csv").write_text("\n".join(sheet) + "\n")
    return folder


def class_folders(root: Path) -> Path:
    folder = root / "classes"
    for name, bright in (("benign", False), ("malignant", True)):
        (folder / name).mkdir(parents=True)
        for i in range(4):
            cv2.imwrite(str(folder / name / f"case{i}_{name}.png"), breast(i + 10 * bright, bright))
    return folder


def run_and_ship(data: str, out, preset, export, name: str | None = None, **options) -> dict:
    """A reader run (`reader.run.run`) shipped as `fit --export --force` ships it; its report with the export's
    figures."""
    import json

    from mammodesk_train.families.registry import family_for
    from mammodesk_train.reader import run as reader_run
    from mammodesk_train.shipping import ship

    reader_run.run(data, out, preset, **options)
    ship(out, export, name or preset.name, force=True, family=family_for(preset, device="cpu"))
    return json.loads((out / "report.json").read_text())
