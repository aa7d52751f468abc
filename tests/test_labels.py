"""Label readers: MIAS Info.txt (real file), CBIS-DDSM CSVs and INbreast
sheets/XML (fixtures written here in the datasets' real layouts)."""

from __future__ import annotations

import plistlib

import pytest

from mammodesk.annotations import (
    Circle, FindingKind, MaskRef, Pathology, Point, Polygon, read_cbis_csv, read_inbreast_sheet,
    read_inbreast_xml, read_mias_info,
)
from mammodesk.errors import LabelReadError

MASS_CSV = """patient_id,breast_density,left or right breast,image view,abnormality id,abnormality type,mass shape,mass margins,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path
P_00001,3,LEFT,CC,1,mass,IRREGULAR-ARCHITECTURAL_DISTORTION,SPICULATED,4,MALIGNANT,4,Mass-Training_P_00001_LEFT_CC/1.3.6.1.4.1.9590.100.1.2.422112722213189649807611434612228974994/1.3.6.1.4.1.9590.100.1.2.342386194811267636608694132590482924515/000000.dcm,Mass-Training_P_00001_LEFT_CC_1/1.3.6.1.4.1.9590/000000.dcm,Mass-Training_P_00001_LEFT_CC_1/1.3.6.1.4.1.9590/000001.dcm
P_00004,3,LEFT,MLO,1,mass,ARCHITECTURAL_DISTORTION,ILL_DEFINED,4,BENIGN,3,Mass-Training_P_00004_LEFT_MLO/1.3.6/1.3.6/000000.dcm,Mass-Training_P_00004_LEFT_MLO_1/1.3/000000.dcm,Mass-Training_P_00004_LEFT_MLO_1/1.3/000001.dcm
P_00004,3,LEFT,MLO,2,mass,OVAL,CIRCUMSCRIBED,3,BENIGN_WITHOUT_CALLBACK,2,Mass-Training_P_00004_LEFT_MLO/1.3.6/1.3.6/000000.dcm,Mass-Training_P_00004_LEFT_MLO_2/1.3/000000.dcm,Mass-Training_P_00004_LEFT_MLO_2/1.3/000001.dcm
"""
CALC_CSV = """patient_id,breast density,left or right breast,image view,abnormality id,abnormality type,calc type,calc distribution,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path
P_00005,3,RIGHT,CC,1,calcification,AMORPHOUS,CLUSTERED,3,MALIGNANT,3,Calc-Training_P_00005_RIGHT_CC/1.3.6/1.3.6/000000.dcm,Calc-Training_P_00005_RIGHT_CC_1/1.3/000000.dcm,Calc-Training_P_00005_RIGHT_CC_1/1.3/000001.dcm
"""
INBREAST_CSV = """Patient ID;Patient age;Laterality;View;Acquisition date;File Name;ACR;Bi-Rads
removed;removed;R;CC;201001;22678622;4;1
removed;removed;L;MLO;201001;22678646;2;4c
removed;removed;L;CC;201001;22678694;1;5
;;;;;;;
"""


def test_mias_info_real_file(mias_dir):
    labels = read_mias_info(mias_dir / "Info.txt")
    assert len(labels) == 258
    assert sum(len(label.findings) for label in labels.values()) == 265  # rows in the subset
    mdb001 = labels["mdb001"].findings[0]
    assert mdb001.kind == FindingKind.MASS and mdb001.pathology == Pathology.BENIGN
    assert mdb001.shape == Circle(535.0, 1023 - 425.0, 197.0)  # bottom-left origin
    assert labels["mdb003"].is_normal and labels["mdb003"].density == "D"
    # rows with a severity but no coordinates: image labels, not locations
    for ref in ("mdb059", "mdb216"):
        finding = labels[ref].findings[0]
        assert finding.shape is None and finding.pathology != Pathology.UNKNOWN
    assert max(len(label.findings) for label in labels.values()) >= 2


def test_mias_origin_option(tmp_path):
    path = tmp_path / "Info.txt"
    path.write_text("mdb010 F CIRC B 525 425 33\nmdb011 F NORM\n")
    assert read_mias_info(path)["mdb010"].findings[0].shape.cy == 598
    assert read_mias_info(path, origin="top-left")["mdb010"].findings[0].shape.cy == 425


def test_mias_errors(tmp_path):
    path = tmp_path / "Info.txt"
    path.write_text("nothing here\n")
    with pytest.raises(LabelReadError, match="no MIAS rows"):
        read_mias_info(path)
    path.write_text("mdb010 F CIRC B 525 425\n")
    with pytest.raises(LabelReadError, match="line 1"):
        read_mias_info(path)


def test_cbis_mass_csv(tmp_path):
    path = tmp_path / "mass_case_description_train_set.csv"
    path.write_text(MASS_CSV)
    labels = read_cbis_csv(path)
    assert set(labels) == {"Mass-Training_P_00001_LEFT_CC", "Mass-Training_P_00004_LEFT_MLO"}
    first = labels["Mass-Training_P_00001_LEFT_CC"]
    assert (first.laterality, first.view, first.density, first.density_system) == ("L", "CC", "C", "acr")
    finding = first.findings[0]
    assert finding.pathology == Pathology.MALIGNANT and finding.birads == 4
    assert finding.attributes["margin"] == "SPICULATED"
    assert isinstance(finding.shape, MaskRef) and finding.shape.path.endswith("000001.dcm")
    two = labels["Mass-Training_P_00004_LEFT_MLO"].findings
    assert len(two) == 2 and two[1].pathology == Pathology.BENIGN
    assert two[1].attributes["pathology_detail"] == "benign without callback"


def test_cbis_calc_csv_and_patient_keys(tmp_path):
    mass, calc = tmp_path / "m.csv", tmp_path / "c.csv"
    mass.write_text(MASS_CSV)
    calc.write_text(CALC_CSV)
    labels = {**read_cbis_csv(mass), **read_cbis_csv(calc)}
    finding = labels["Calc-Training_P_00005_RIGHT_CC"].findings[0]
    assert finding.kind == FindingKind.CALCIFICATION and finding.attributes["morphology"] == "AMORPHOUS"
    assert labels["Calc-Training_P_00005_RIGHT_CC"].laterality == "R"
    keys = {label.patient_key for label in labels.values()}
    assert len(keys) == 3 and not any("P_0000" in key for key in keys)


def test_cbis_rejects_other_csv(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(LabelReadError, match="missing"):
        read_cbis_csv(path)


def test_inbreast_csv_sheet(tmp_path):
    path = tmp_path / "INbreast.csv"
    path.write_text(INBREAST_CSV)
    labels = read_inbreast_sheet(path)
    assert set(labels) == {"22678622", "22678646", "22678694"}
    assert labels["22678646"].birads == 4 and labels["22678646"].extra["birads_detail"] == "4c"
    assert labels["22678622"].density == "D" and labels["22678694"].density == "A"
    assert (labels["22678646"].laterality, labels["22678646"].view) == ("L", "MLO")


def test_inbreast_xls_sheet(tmp_path):
    xlwt = pytest.importorskip("xlwt")
    book = xlwt.Workbook()
    sheet = book.add_sheet("Sheet1")
    rows = [line.split(";") for line in INBREAST_CSV.strip().splitlines()]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, float(value) if value.isdigit() and c >= 5 else value)
    path = tmp_path / "INbreast.xls"
    book.save(str(path))
    labels = read_inbreast_sheet(path)
    assert labels["22678646"].birads == 4 and labels["22678622"].density == "D"


def _roi(name, points):
    return {"Area": 10.0, "Center": "{1.0, 2.0}", "IndexInImage": 0, "Name": name,
            "NumberOfPoints": len(points), "Point_mm": ["(0.1, 0.2, 0.0)"] * len(points),
            "Point_px": [f"({x:.6f}, {y:.6f})" for x, y in points], "Type": 15 if len(points) > 1 else 19}


def test_inbreast_xml(tmp_path):
    document = {"Images": [{"ImageIndex": 0, "NumberOfROIs": 3, "ROIs": [
        _roi("Mass", [(10, 20), (30, 20), (30, 40), (10, 40)]),
        _roi("Calcification", [(55.5, 66.25)]),
        _roi("Assymetry", [(1, 1), (5, 1), (5, 5)]),
    ]}]}
    path = tmp_path / "22678646.xml"
    path.write_bytes(plistlib.dumps(document, fmt=plistlib.FMT_XML))
    mass, calc, asym = read_inbreast_xml(path)
    assert mass.kind == FindingKind.MASS and isinstance(mass.shape, Polygon)
    assert mass.shape.points[2] == (30.0, 40.0) and mass.shape.contains(20, 30)
    assert calc.kind == FindingKind.CALCIFICATION and calc.shape == Point(55.5, 66.25)
    assert asym.kind == FindingKind.ASYMMETRY


def test_inbreast_xml_damaged(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text("<plist><dict><key>Images</key>")
    with pytest.raises(LabelReadError, match="plist"):
        read_inbreast_xml(path)
