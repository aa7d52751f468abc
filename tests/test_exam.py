"""Per-breast and per-study answers from per-view ones, and where in the breast."""

from __future__ import annotations

import numpy as np
import pytest

from mammodesk.inference.bilateral import Bilateral
from mammodesk.inference.domain import check
from mammodesk.inference.exam import ViewAnswer, above_nipple, combine
from mammodesk.inference.levels import ExamRule, Level, Levels
from mammodesk.io import ImageMeta


VIEW = Level("view", flag=0.4, clear=0.6, knots=tuple(np.linspace(0.1, 0.9, 9)))
BREAST = Level("breast", flag=0.5, clear=0.7, knots=tuple(np.linspace(0.1, 0.9, 9)))
EXAM = Level("exam", flag=0.45, clear=0.65, knots=tuple(np.linspace(0.1, 0.9, 9)))
RULE = ExamRule(w_max=1.5, w_min=-0.5, bias=-0.2)
LEVELS = Levels(VIEW, BREAST, EXAM, RULE, "MIAS development data")


def view(name, side, code, p, logit=None, **kw) -> ViewAnswer:
    return ViewAnswer(name, side, code, p, logit=logit, scale=VIEW, **kw)


def test_each_level_answers_on_its_own_scale_with_a_band_between_its_two_thresholds():
    assert [VIEW.answer(p) for p in (0.2, 0.39, 0.4, 0.6, 0.61)] == \
        ["normal", "normal", "no clear answer", "no clear answer", "abnormal"]
    assert VIEW.flagged(0.4) and not VIEW.flagged(0.39)
    assert [VIEW.score(p) for p in (0.05, 0.1, 0.55, 0.95)] == [1, 2, 6, 10]
    crossed = Level("x", flag=0.6, clear=0.4)  # a strong model: both labels leave the set between them
    assert [crossed.answer(p) for p in (0.3, 0.5, 0.7)] == ["normal", "no clear answer", "abnormal"]


def test_a_breast_is_its_most_suspicious_view_and_the_exam_is_the_fitted_rule_on_both_breasts():
    views = [view("R CC", "R", "CC", 0.9, 2.0, above_nipple=True), view("R MLO", "R", "MLO", 0.7, 1.0,
                                                                        above_nipple=True),
             view("L CC", "L", "CC", 0.05, -2.0, above_nipple=False), view("L MLO", "L", "MLO", 0.09, -1.5)]
    exam = combine(views, LEVELS)
    right, left = exam.breasts
    assert right.probability == 0.9 and right.answer == "abnormal" and right.where == "upper outer"
    assert left.answer == "normal" and not left.flagged
    assert exam.ruled and exam.deciding is right  # the breast with the higher logit drives the rule
    expected = RULE.probability([2.0, -1.5])
    assert exam.probability == pytest.approx(expected) and exam.scale is EXAM
    assert exam.answer == EXAM.answer(expected) == "abnormal" and exam.flagged
    assert exam.line() == f"Exam: abnormal — R breast, upper outer · score {EXAM.score(expected)}/10"
    assert right.line() == "R breast: abnormal · score 10/10, upper outer"
    assert left.line() == "L breast: normal · score 1/10"
    one_breast = combine([view("L MLO", "L", "MLO", 0.45, 0.1, above_nipple=False)], LEVELS)
    assert not one_breast.ruled and one_breast.scale is VIEW  # one breast: the exam is its answer
    assert one_breast.line() == "Exam: no clear answer — L breast, lower · score 5/10, above the operating point"


def test_no_level_is_more_confident_than_its_views_for_every_reason():
    """A view outside the training data (or one it could not read) may be the deciding one: its breast and every
    exam holding it answer 'no clear answer (outside training data: ...)', with no score, flag or place."""
    for caveat, said in (("outside training data: digital mammogram", "outside training data"),
                         ("could not be read: no breast found", "unread")):
        views = [view("R CC", "R", "CC", 0.95, 3.0, above_nipple=True),
                 view("R MLO", "R", "MLO", 0.2, -1.0, caveat=caveat),
                 view("L CC", "L", "CC", 0.05, -2.0), view("L MLO", "L", "MLO", 0.05, -2.0)]
        exam = combine(views, LEVELS, Bilateral(1.0, -0.5, 0.0, 0.5))
        right, left = exam.breasts
        assert right.answer == exam.answer == "no clear answer"
        assert not right.flagged and not exam.flagged and right.score is None and exam.score is None
        assert right.line() == f"R breast: no clear answer ({said}: R MLO)" and right.where
        assert exam.line() == f"Exam: no clear answer (R breast {said}: R MLO)" and exam.where == ""
        assert left.answer == "normal"  # the other breast still answers for itself
        assert views[1].answer == "no clear answer" and not views[1].flagged and views[1].score is None
        from mammodesk.inference.exam import view_caveat

        assert view_caveat(views[0], right.caveat) == f"this breast's R MLO is {said}"  # the CC, in its own words
        assert view_caveat(views[1], right.caveat) == caveat


def test_one_view_speaks_for_its_breast_and_says_only_what_it_can_see():
    exam = combine([view("L MLO", "L", "MLO", 0.7, above_nipple=False)], LEVELS)
    (left,) = exam.breasts
    assert left.probability == 0.7 and left.where == "lower"  # an MLO cannot tell inner from outer
    cc_only = combine([view("R CC", "R", "CC", 0.7, above_nipple=False)], LEVELS).breasts[0]
    assert cc_only.where == "inner"
    unknown = combine([view("x", None, None, 0.15)], LEVELS)
    assert unknown.breasts[0].line() == "breast of unknown side: normal · score 2/10"
    two_unknown = combine([view("a", None, None, 0.2), view("b", None, None, 0.7)], LEVELS)
    assert [b.probability for b in two_unknown.breasts] == [0.2, 0.7]  # unknown sides are never pooled


def test_an_older_card_answers_at_its_one_operating_point():
    old = Levels.from_card(None, threshold=0.3)
    assert old.view.flag == old.view.clear == 0.3 and old.breast is None and old.rule is None
    assert [old.view.answer(p) for p in (0.2, 0.3, 0.4)] == ["normal", "no clear answer", "abnormal"]
    assert old.view.score(0.5) is None


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
    from mammodesk.inference.exam import compare_sides

    bilateral = Bilateral(own=2.0, contralateral=-1.5, bias=0.1, threshold=0.6)
    views = [view("R MLO", "R", "MLO", 0.55, 1.0), view("L MLO", "L", "MLO", 0.5, -0.5),
             view("L CC", "L", "CC", 0.7, 0.8), view("? MLO", None, "MLO", 0.4, 2.0)]
    right, left, left_cc, unknown = compare_sides(views, bilateral, BREAST)
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    assert right.probability == pytest.approx(sigmoid(2.0 * 1.0 - 1.5 * -0.5 + 0.1)) and right.compared_with == "L MLO"
    assert left.probability == pytest.approx(sigmoid(2.0 * -0.5 - 1.5 * 1.0 + 0.1)) and left.scale is BREAST
    assert right.alone == 0.55 and left.alone == 0.5  # the view alone, kept for whoever asks
    assert left_cc == views[2] and unknown == views[3]  # no R CC to compare with; an unknown side never is
    exam = combine(views, LEVELS, bilateral)
    r_breast, l_breast, _ = exam.breasts
    assert r_breast.answer == "abnormal" and r_breast.probability == pytest.approx(right.probability)  # breast scale
    # its CC alone (0.7 on the view scale) decides, not its MLO
    assert l_breast.deciding.name == "L CC" and l_breast.flagged
    assert exam.compared and not combine(views, LEVELS).compared


def test_a_view_the_reader_could_not_read_leaves_its_breast_and_exam_without_an_answer(tmp_path):
    from mammodesk.inference.library import ModelEntry
    from mammodesk.state.opinion import Opinion, Target, unread_view

    class Doc:
        def __init__(self, side):
            self.anatomy = type("A", (), {"laterality": side, "view": "MLO", "label": f"{side} MLO"})()
            self.name, self.id = f"{side}.pgm", id(self)

    failed = Opinion(Doc("R"), ModelEntry(tmp_path / "m.onnx", None), Target("whole"), error="no breast found")
    view = unread_view(failed)
    assert view.laterality == "R" and "could not be read" in view.caveat and not view.flagged
    exam = combine([view, ViewAnswer("L MLO", "L", "MLO", 0.9, logit=2.0, scale=VIEW)], LEVELS)
    right, left = exam.breasts
    assert right.line() == "R breast: no clear answer (unread: R MLO)" and left.answer == "abnormal"
    assert exam.answer == "no clear answer" and not exam.flagged and exam.score is None


def test_the_exam_agrees_with_its_breasts_and_a_breast_is_never_read_against_a_view_without_an_answer():
    # a one-sided finding: the rule's exam p can fall below its flag while that breast is flagged
    lopsided = ExamRule(w_max=0.2, w_min=1.5, bias=-1.0)
    levels = Levels(VIEW, BREAST, EXAM, lopsided)
    exam = combine([view("R MLO", "R", "MLO", 0.9, 2.0), view("L MLO", "L", "MLO", 0.05, -4.0)], levels)
    assert EXAM.answer(exam.probability) == "normal" and exam.breasts[0].answer == "abnormal"
    assert exam.answer == "no clear answer"  # never 'normal' with a breast flagged
    high = Levels(VIEW, BREAST, Level("exam", 0.1, 0.2), ExamRule(1.0, 1.0, 5.0))
    quiet = combine([view("R MLO", "R", "MLO", 0.2, -1.0), view("L MLO", "L", "MLO", 0.2, -1.0)], high)
    assert quiet.answer == "no clear answer"  # nor 'abnormal' with no breast flagged
    bilateral = Bilateral(1.0, -0.5, 0.0, 0.5)
    outside = view("L MLO", "L", "MLO", 0.9, 3.0, caveat="outside training data: digital")
    right = combine([view("R MLO", "R", "MLO", 0.3, -1.0), outside], LEVELS, bilateral).breasts[0]
    assert right.views[0].compared_with == "" and right.views[0].scale is VIEW  # read alone, not against it
    unread = combine([view("R MLO", "R", "MLO", float("nan"), None), view("L MLO", "L", "MLO", 0.1, -2.0)], LEVELS)
    assert unread.breasts[0].answer == "no clear answer" and unread.breasts[0].score is None
    assert unread.answer == "no clear answer" and unread.breasts[0].caveat == "unread: R MLO"
