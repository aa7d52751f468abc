"""Patient-level splits and the leakage check. Every split groups samples by
patient (MIAS: images 2k-1 and 2k are one woman), stratifies by class and is
seeded; the check fails a run if a patient or an identical image (pixel
hash) is on both sides."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from mammodesk_train.data.sources import Record


def patient_key_hash(key: str) -> str:
    """What a model's metadata stores about each training patient: enough to detect
    overlap with evaluation data (`mammodesk-train evaluate`), nothing more."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class LeakageError(RuntimeError):
    """Train and test share a patient or an identical image."""


@dataclass(frozen=True)
class Fold:
    index: int
    train: np.ndarray  # sample indices
    test: np.ndarray


def patient_kfold(labels: Sequence[int], groups: Sequence[str], folds: int, seed: int) -> list[Fold]:
    labels, groups = np.asarray(labels), np.asarray(groups)
    patients = len(set(groups.tolist()))
    if folds < 2 or folds > patients:
        raise ValueError(f"{folds} folds need between 2 and {patients} patients")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [Fold(i, train, test) for i, (train, test) in
            enumerate(splitter.split(np.zeros(len(labels)), labels, groups))]


def patient_holdout(labels: Sequence[int], groups: Sequence[str], test_fraction: float, seed: int) -> Fold:
    """One stratified, patient-grouped split with about `test_fraction` of samples held out."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test fraction must be in (0, 1), got {test_fraction}")
    folds = max(2, int(round(1 / test_fraction)))
    return patient_kfold(labels, groups, folds, seed)[0]


def leakage_report(records: Sequence[Record], train_records: Sequence[int], test_records: Sequence[int],
                   hashes: Mapping[int, str] | None = None) -> dict:
    """Patients and pixel hashes found on both sides (indices into `records`)."""
    train, test = set(int(i) for i in train_records), set(int(i) for i in test_records)
    train_patients = {records[i].patient_key for i in train}
    shared_patients = sorted({records[i].patient_key for i in test} & train_patients)
    shared_images: list[str] = []
    if hashes is not None:
        train_hashes = {hashes[i] for i in train if i in hashes}
        shared_images = sorted({records[i].image_id for i in test if hashes.get(i) in train_hashes})
    return {"shared_patients": shared_patients, "shared_images": shared_images,
            "train_records": len(train), "test_records": len(test),
            "ok": not shared_patients and not shared_images}


def check_leakage(records: Sequence[Record], train_records: Sequence[int], test_records: Sequence[int],
                  hashes: Mapping[int, str] | None = None) -> dict:
    report = leakage_report(records, train_records, test_records, hashes)
    if not report["ok"]:
        raise LeakageError(f"train/test leakage: {len(report['shared_patients'])} patient(s) "
                           f"{report['shared_patients'][:5]} and {len(report['shared_images'])} identical "
                           f"image(s) {report['shared_images'][:5]} are on both sides")
    return report
