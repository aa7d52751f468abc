"""Per-breast and per-study answers from per-view ones, and where in the breast."""

from __future__ import annotations

import numpy as np
import pytest

from mammodesk.inference.domain import check
from mammodesk.inference.exam import ViewAnswer, above_nipple, combine
from mammodesk.io import ImageMeta


def test_a_breast_combines_its_views_and_the_study_takes_the_worse_breast():
    views = [ViewAnswer("R CC", "R", "CC", 0.9, above_nipple=True), ViewAnswer("R MLO", "R", "MLO", 0.7, True),
             ViewAnswer("L CC", "L", "CC", 0.05, False), ViewAnswer("L MLO", "L", "MLO", 0.09, False)]
    study = combine(views, threshold=0.4)
    right, left = study.breasts
    assert (right.laterality, left.laterality) == ("R", "L")
    assert right.probability == 0.9 and right.suspicious and right.where == "upper outer"
    assert left.probability == 0.09 and not left.suspicious
    assert study.probability == 0.9 and study.suspicious
    assert study.line() == "R breast: suspicious 0.90, upper outer; L breast: no finding 0.09"


def test_a_finding_on_one_view_recalls_its_breast_and_unknown_sides_are_never_pooled():
    views = [ViewAnswer("R CC", "R", "CC", 0.1), ViewAnswer("R MLO", "R", "MLO", 0.9, above_nipple=False,
                                                            caveat="outside training data: digital")]
    (right,) = combine(views, 0.5).breasts
    assert right.suspicious and right.probability == 0.9  # the CC's 0.1 does not halve it
    assert right.line() == "R breast: suspicious 0.90, lower (1 view outside training data)"
    assert right.caveats == ["R MLO: outside training data: digital"]
    two_unknown = combine([ViewAnswer("a", None, None, 0.2), ViewAnswer("b", None, None, 0.7)], 0.5)
    assert [b.probability for b in two_unknown.breasts] == [0.2, 0.7]


def test_one_view_speaks_for_its_breast_and_says_only_what_it_can_see():
    study = combine([ViewAnswer("L MLO", "L", "MLO", 0.6, above_nipple=False)], threshold=0.5)
    (left,) = study.breasts
    assert left.probability == 0.6 and left.where == "lower"  # an MLO cannot tell inner from outer
    cc_only = combine([ViewAnswer("R CC", "R", "CC", 0.6, above_nipple=False)], 0.5).breasts[0]
    assert cc_only.where == "inner"
    unknown = combine([ViewAnswer("x", None, None, 0.2)], 0.5)
    assert unknown.line() == "breast of unknown side: no finding 0.20"


def test_the_nipple_row_is_where_the_breast_reaches_furthest_from_the_chest_wall():
    mask = np.zeros((100, 60), bool)
    for row in range(10, 90):  # a half-disc against the left edge, widest at row 50
        mask[row, : int(50 * np.sqrt(max(0.0, 1 - ((row - 50) / 40) ** 2))) + 1] = True
    assert above_nipple(mask, "left", 30) and not above_nipple(mask, "left", 70)
    assert above_nipple(mask[:, ::-1], "right", 30) and not above_nipple(mask[:, ::-1], "right", 70)
    assert above_nipple(np.zeros((10, 10), bool), "left", 3) is None


def test_a_reader_that_normalises_is_judged_on_film_or_digital_not_on_bit_depth_or_spacing():
    domain = {"acquisition": {"kinds": ["film"], "bits_stored": [8], "spacing_mm": [0.2, 0.2], "normalised": True}}
    film16 = ImageMeta(format="DICOM", bits_stored=16, pixel_spacing_mm=(0.05, 0.05),
                       tags={"ConversionType": "WSD"})
    assert check(domain, film16).in_domain
    digital = ImageMeta(format="DICOM", bits_stored=14, pixel_spacing_mm=(0.07, 0.07))
    verdict = check(domain, digital)
    assert not verdict.in_domain and "digital mammogram" in verdict.reasons[0]
    strict = {"acquisition": {"kinds": ["film"], "bits_stored": [8], "spacing_mm": [0.2, 0.2]}}
    assert not check(strict, film16).in_domain  # models that see raw digitisation keep the full check


def test_an_exam_is_one_study_unless_the_archive_gives_each_view_its_own():
    from mammodesk.inference.exam import exam_key

    cbis = [("s1", ("R", "CC")), ("s2", ("L", "CC")), ("s3", ("R", "MLO")), ("s4", ("L", "MLO"))]
    assert {exam_key(s, "p", cbis) for s, _ in cbis} == {"p"}  # four single-view studies: one exam
    with_prior = [("now", ("R", "CC")), ("now", ("L", "CC")), ("prior", ("R", "CC")), ("prior", ("L", "CC"))]
    assert [exam_key(s, "p", with_prior) for s, _ in with_prior] == ["now", "now", "prior", "prior"]
    repeated = [("a", ("R", "CC")), ("b", ("R", "CC"))]  # two R CCs in their own studies: a prior, not one exam
    assert [exam_key(s, "p", repeated) for s, _ in repeated] == ["a", "b"]


def test_each_view_is_read_against_the_same_view_of_the_other_breast():
    from mammodesk.inference.bilateral import Bilateral
    from mammodesk.inference.exam import compare_sides

    bilateral = Bilateral(own=2.0, contralateral=-1.5, bias=0.1, threshold=0.6)
    views = [ViewAnswer("R MLO", "R", "MLO", 0.55, logit=1.0), ViewAnswer("L MLO", "L", "MLO", 0.5, logit=-0.5),
             ViewAnswer("L CC", "L", "CC", 0.7, logit=0.8), ViewAnswer("? MLO", None, "MLO", 0.4, logit=2.0)]
    right, left, left_cc, unknown = compare_sides(views, bilateral)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    assert right.probability == pytest.approx(sigmoid(2.0 * 1.0 - 1.5 * -0.5 + 0.1)) and right.compared_with == "L MLO"
    assert left.probability == pytest.approx(sigmoid(2.0 * -0.5 - 1.5 * 1.0 + 0.1)) and left.threshold == 0.6
    assert left_cc == views[2] and unknown == views[3]  # no R CC to compare with; an unknown side never is
    study = combine(views, threshold=0.3, bilateral=bilateral)
    r, l, _ = study.breasts
    assert r.suspicious and r.probability == pytest.approx(right.probability)  # 0.94 >= the comparison's 0.6
    assert l.suspicious  # its CC alone (0.7 >= the exam's 0.3), though its MLO compared is 0.08 < 0.6
    assert study.compared and not combine(views, 0.3).compared


def test_a_call_near_the_operating_point_says_so_at_every_level():
    """The breast line agrees with its views: a view within CLEAR_MARGIN / 2 of the threshold answers 'no clear
    answer (near the decision threshold)', so a breast called on it alone is borderline, and says at what."""
    near = combine([ViewAnswer("R CC", "R", "CC", 0.33, above_nipple=True),
                    ViewAnswer("L CC", "L", "CC", 0.05)], threshold=0.28)
    right, left = near.breasts
    assert right.suspicious and right.borderline and not left.borderline
    assert right.line() == "R breast: suspicious 0.33, outer (near the threshold, 0.28)"
    assert near.suspicious and near.borderline
    clear = combine([ViewAnswer("R CC", "R", "CC", 0.33), ViewAnswer("R MLO", "R", "MLO", 0.90)], 0.28)
    assert not clear.breasts[0].borderline and not clear.borderline  # one view well above it decides
    below = combine([ViewAnswer("L MLO", "L", "MLO", 0.20, caveat="outside training data: digital")], 0.28)
    assert below.breasts[0].line() == "L breast: no finding 0.20 (near the threshold, 0.28; 1 view outside " \
                                      "training data)"
    compared = ViewAnswer("R CC", "R", "CC", 0.62, threshold=0.6)  # a compared view: its own operating point
    assert combine([compared], 0.2).breasts[0].line() == "R breast: suspicious 0.62 (near the threshold, 0.60)"
