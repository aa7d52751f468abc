"""RSNA, VinDr-Mammo and CMMD read from small copies of their documented layouts, written here with pydicom."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from dicom_factory import make_dataset, write  # noqa: E402
from train_fixtures import breast  # noqa: E402

from mammodesk_train.data.sources import DataError, load_source  # noqa: E402
from mammodesk_train.data.tasks import get_task  # noqa: E402


def _dicom(path, seed=0, **tags):
    path.parent.mkdir(parents=True, exist_ok=True)
    return write(make_dataset((breast(seed).astype(np.uint16) * 16), bits_stored=12, phi=False, **tags), path)


def _classes(records, task):
    task = get_task(task)
    return [None if (y := task.label(r, None)) is None else task.classes[y] for r in records]


def test_rsna_cancer_biopsy_and_negative_screens(tmp_path):
    root = tmp_path / "rsna"
    rows = ["site_id,patient_id,image_id,laterality,view,age,cancer,biopsy,invasive,BIRADS,implant,density,"
            "machine_id,difficult_negative_case"]
    for patient, image, side, cancer, biopsy in ((10, 1, "L", 1, 1), (10, 2, "R", 0, 0), (11, 3, "L", 0, 1),
                                                 (12, 4, "R", 0, 0)):
        rows.append(f"1,{patient},{image},{side},CC,60,{cancer},{biopsy},0,,0,B,21,False")
        if image != 4:
            _dicom(root / "train_images" / str(patient) / f"{image}.dcm", image, PatientID=str(patient))
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    records = load_source(f"rsna:{root}")
    assert [r.image_id for r in records] == ["1", "2", "3"]  # image 4's file is missing: skipped, counted
    assert _classes(records, "normal_abnormal") == ["abnormal", "normal", "abnormal"]
    assert _classes(records, "benign_malignant") == ["malignant", None, "benign"]
    assert records[0].patient_key == records[1].patient_key != records[2].patient_key
    assert records[0].patient_key == records[0].load().meta.patient_key  # the key the app reads, too
    assert _classes(records, "density_acr") == ["B", "B", "B"] and records[1].labels.laterality == "R"


def test_vindr_birads_with_boxed_findings(tmp_path):
    root = tmp_path / "vindr"
    breast_rows = ["study_id,series_id,image_id,laterality,view_position,height,width,breast_birads,"
                   "breast_density,split"]
    finding_rows = ["study_id,series_id,image_id,laterality,view_position,height,width,breast_birads,"
                    "breast_density,finding_categories,finding_birads,xmin,ymin,xmax,ymax,split"]
    for study, image, birads in (("s1", "a", 1), ("s1", "b", 4), ("s2", "c", 2), ("s3", "d", 3)):
        breast_rows.append(f"{study},x,{image},L,CC,64,64,BI-RADS {birads},DENSITY C,training")
        _dicom(root / "images" / study / f"{image}.dicom")
    finding_rows.append("s1,x,a,L,CC,64,64,BI-RADS 1,DENSITY C,['No Finding'],,,,,,training")
    finding_rows.append("s1,x,b,L,CC,64,64,BI-RADS 4,DENSITY C,\"['Mass', 'Suspicious Calcification']\",BI-RADS 4,"
                        "10.5,12,30,40.5,training")
    (root / "breast-level_annotations.csv").write_text("\n".join(breast_rows) + "\n")
    (root / "finding_annotations.csv").write_text("\n".join(finding_rows) + "\n")
    records = load_source(f"vindr:{root}")
    assert _classes(records, "normal_abnormal") == ["normal", "abnormal", None, "abnormal"]  # BI-RADS 2: neither
    mass, calcification = records[1].labels.findings
    assert (mass.kind.value, calcification.kind.value) == ("mass", "calcification")
    assert mass.shape.bbox() == (10.5, 12, 30, 40.5) and mass.birads == 4
    assert not records[3].labels.located_findings  # BI-RADS 3 without a box: abnormal, unlocated
    assert records[0].patient_key == records[1].patient_key and records[0].labels.density == "C"


def test_cmmd_labels_each_breast_from_the_clinical_table(tmp_path):
    root = tmp_path / "cmmd"
    (root / "CMMD_clinicaldata_revision.csv").parent.mkdir(parents=True)
    (root / "CMMD_clinicaldata_revision.csv").write_text(
        "ID1,LeftRight,Age,number,abnormality,classification,subtype\n"
        "D1-0001,R,44,2,calcification,Benign,\nD2-0002,L,60,2,mass,Malignant,Luminal A\n")
    for patient, side, n in (("D1-0001", "R", 1), ("D1-0001", "R", 2), ("D2-0002", "L", 1), ("D2-0002", "R", 1)):
        _dicom(root / "CMMD" / patient / "study" / f"{side}-{n}" / "1-1.dcm", PatientID=patient, ImageLaterality=side)
    records = load_source(f"cmmd:{root}")
    assert len(records) == 3  # D2-0002's right breast is not in the table: left out
    assert _classes(records, "benign_malignant") == ["benign", "benign", "malignant"]
    assert records[0].patient_key == records[1].patient_key == records[0].load().meta.patient_key
    assert records[2].labels.findings[0].kind.value == "mass"


@pytest.mark.parametrize("kind", ["rsna", "vindr", "cmmd"])
def test_a_folder_of_another_layout_is_refused_by_name(tmp_path, kind):
    (tmp_path / "x.txt").write_text("nothing here")
    with pytest.raises(DataError, match="not a"):
        load_source(f"{kind}:{tmp_path}")
