"""The whole-mammogram reader's model card (markdown beside the ONNX file), from its run report: the opening
every card has (`model_card.opening`), then the reader's own tables (two fold seeds, three levels)."""

from __future__ import annotations

from pathlib import Path

from mammodesk_train.app import LOCATION_MM, location_cells

from mammodesk_train import __version__
from mammodesk_train.data.patients import PATIENTS_FROM
from mammodesk_train.data.sources import public_spec
from mammodesk_train.model_card import LIMITS, acquisition_words, opening
from mammodesk_train.reader.fit import Setting
from mammodesk_train.reader.model import STRIDE


def _folds(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def _seed_table(part: dict, spacing_mm: float) -> str:
    c = part["comparison"]
    m, b, d = c["model"], c["baseline"], c["difference"]
    point, pointing, cal = part["operating_point"], part["pointing"], part["calibration"]
    chosen = "; ".join(f"fold {f['fold']}: {Setting(**f['chosen']).text()}, location {_window(f)}"
                       for f in part["folds"])
    return "\n".join([
        "| figure | value |", "|---|---|",
        f"| image AUC, reader | {m['mean']:.3f} ± {m['sd']:.3f} (folds {_folds(m['folds'])}) |",
        f"| image AUC, plain baseline | {b['mean']:.3f} ± {b['sd']:.3f} (folds {_folds(b['folds'])}) |",
        f"| paired difference | {d['mean']:+.3f} ± {d['sd']:.3f} ({c['folds_won']}/{len(d['folds'])} folds won; "
        f"{'beats' if c['beats_baseline'] else 'does NOT beat'} the baseline by more than the fold spread) |",
        f"| pooled out-of-fold AUC | reader {part['pooled_auc']:.3f}, baseline {part['baseline_pooled_auc']:.3f} |",
        f"| at the operating point | sensitivity {point['sensitivity']:.2f}, specificity {point['specificity']:.2f} "
        f"({point['how']}) |",
        f"| pointing game | {pointing['hits']}/{pointing['located_images']} located findings "
        f"({(pointing['rate'] or 0):.0%}) have their finding in the most suspicious breast cell" + (
            f"; the reported location box ({LOCATION_MM:g} mm, {location_cells(STRIDE * spacing_mm):g} cells at "
            f"{spacing_mm:g} mm/px, around the best block of cells chosen in inner folds) holds a finding centre "
            f"for "
            f"{pointing['box_hits']}/{pointing['located_images']} ({pointing['box_rate']:.0%})"
            if pointing.get("box_rate") is not None else "") + " |",
        f"| calibration (ECE, out of fold) | {cal['ece_before']:.3f} before, {cal['ece_after']:.3f} after "
        f"({cal['chosen_by']}) |",
        f"| settings chosen in inner folds | {chosen} |",
        *_bilateral_rows(part.get("bilateral")),
        "", *levels_table(part.get("levels")),
    ])


NORMAL_UNITS = {"view": "the normal development views", "breast": "the normal development breasts",
                "exam": "the normal development exams"}
LEVEL_WORDS = {"view": "view (read alone)", "breast": "breast (read against the other breast)",
               "exam": "exam (both breasts, fitted rule)"}


def units_of(name: str, level: dict) -> str:
    """The normal units a shipped level's thresholds were set on."""
    return f"the development {level['normal_units']}" if level.get("normal_units") else NORMAL_UNITS[name]


def levels_table(levels: dict | None) -> list[str]:
    """Per level: AUC against the plain baseline in the same folds, the flag's sensitivity and specificity,
    the share with no clear answer and the clear answers' error rate (all out of fold)."""
    if not levels:
        return []
    rows = ["| level | units (abnormal) | AUC | plain baseline | sensitivity / specificity at the flag | "
            "no clear answer | clear answers wrong | abnormal / normal whose label stays possible |",
            "|---|---|---|---|---|---|---|---|"]
    for name in ("view", "breast", "exam"):
        f = levels.get(name)
        if not f:
            continue
        m, b = f["comparison"]["model"], f["comparison"]["baseline"]
        error = "n/a" if f["clear_error_rate"] is None else f"{f['clear_error_rate']:.0%}"
        rows.append(f"| {LEVEL_WORDS[name]} | {f['units']} ({f['abnormal']}) | {m['mean']:.3f} ± {m['sd']:.3f} | "
                    f"{b['mean']:.3f} ± {b['sd']:.3f} | {f['sensitivity']:.2f} / {f['specificity']:.2f} | "
                    f"{f['band_share']:.0%} | {error} | {f['coverage_abnormal']:.0%} / {f['coverage_normal']:.0%} |")
    reference = (levels.get("breast") or {}).get("reference")
    if reference:
        rows += ["", f"{LEVEL_WORDS['breast'].capitalize()}: the normal units of the thresholds, the score, the "
                 f"specificity and the normal coverage are the {reference['normal_units']} breasts of women with "
                 "no finding (a normal breast beside a finding is read against it, which lowers its p); the band "
                 "and the clear answers count every breast. Abnormal breasts against normal women's: pooled AUC "
                 f"{reference['pooled_auc']:.3f} (plain baseline {reference['baseline_pooled_auc']:.3f}); "
                 f"specificity over every normal breast {reference['specificity_all_normal_units']:.2f}."]
    return rows


def _window(part: dict) -> str:
    window = int(part.get("location_window", 1))
    return "the peak cell" if window == 1 else f"the peak {window}x{window} cells"


def _bilateral_rows(part: dict | None) -> list[str]:
    """The views read against the other breast (each fold's weights fitted in its inner folds)."""
    if not part:
        return []
    c, one, alone = part["comparison"], part["versus_one_view_baseline"], part["versus_one_view_reader"]
    m, b = c["model"], c["baseline"]
    point, cal = part["operating_point"], part["calibration"]
    return [
        f"| **both breasts compared**: image AUC | {m['mean']:.3f} ± {m['sd']:.3f} (folds {_folds(m['folds'])}; "
        f"{part['images_compared']} images with the other breast) |",
        f"| ... plain baseline on both breasts' statistics | {b['mean']:.3f} ± {b['sd']:.3f}; paired difference "
        f"{c['difference']['mean']:+.3f} ± {c['difference']['sd']:.3f} ({c['folds_won']}/{len(m['folds'])} won; "
        f"{'beats' if c['beats_baseline'] else 'does NOT beat'} it by more than the fold spread) |",
        f"| ... against the one-view baseline / the one-view reader | {one['difference']['mean']:+.3f} ± "
        f"{one['difference']['sd']:.3f} / {alone['difference']['mean']:+.3f} ± {alone['difference']['sd']:.3f} "
        f"({alone['folds_won']}/{len(m['folds'])} folds better than the view alone) |",
        f"| ... at its operating point | sensitivity {point['sensitivity']:.2f}, specificity "
        f"{point['specificity']:.2f} |",
        f"| ... calibration (ECE, out of fold) | {cal['ece_before']:.3f} before, {cal['ece_after']:.3f} after |",
    ]


def write_reader_card(path: Path, name: str, report: dict, seconds_per_view: float | None = None,
                      notes: list[str] = ()) -> Path:
    shipped = report["shipped"]
    limits = LIMITS.get(report["data"].split(":", 1)[0], "")
    spacing = report["spacing_mm"]
    lines = [
        opening(name, report["reported"]["comparison"], report["images"], report["patients"]),
        f"{report['description']}.", "",
        f"**Task**: normal vs abnormal, per image (any abnormality: {_labelled_as(report)}); per breast and per exam in the app and `mammodesk predict`, each on its own scale (the table per level below). "
        f"{report['images']} images of {report['patients']} women ({report['abnormal']} abnormal, "
        f"{report['located']} with a located finding). {report['evaluation']}.", "",
        _data_line(report), "",
        f"## Reported fold seed ({report['reported']['seed']})", "", _seed_table(report["reported"], spacing), "",
        f"## Second fold seed ({report['second_seed']['seed']})", "", _seed_table(report["second_seed"], spacing), "",
        "## The shipped model", "",
        f"- Setting chosen by 3-fold CV on all images: {Setting(**shipped['setting']).text()}; the location box "
        f"centred on {_window(shipped)} (the block of breast cells with the highest mean logit).",
        f"- Operating point: calibrated p(abnormal) >= {shipped['threshold']:.3f} is flagged, chosen for "
        f"sensitivity 0.80 on out-of-fold answers of heads with the shipped setting (the reported seed's folds).",
        f"- Calibration: {(shipped['calibration'] or {}).get('method', 'none')}, fitted on those out-of-fold "
        "whole-image answers; the method (Platt, isotonic or none) chosen by cross-validated log loss across the "
        "outer folds. The tables' operating-point figures use thresholds chosen on the other folds' raw answers.",
    ]
    bilateral = shipped.get("bilateral")
    if bilateral:
        lines.append(
            f"- Both breasts compared: a view with the same view of the other breast in the same exam is answered "
            f"by p = sigmoid({bilateral['own']:.2f} x its image logit {bilateral['contralateral']:+.2f} x "
            f"the other breast's {bilateral['bias']:+.2f})"
            + (f", then {bilateral['calibration']['method']} calibration" if bilateral.get("calibration") else
               " (a logistic model: no further calibration beat it out of fold)")
            + f", flagged at >= {bilateral['threshold']:.3f}; weights fitted on out-of-fold image logits. "
            "A view without its partner keeps its own answer.")
    for level_name, level in (shipped.get("levels") or {}).items():
        if level:
            lines.append(f"- {LEVEL_WORDS[level_name].capitalize()}: flagged at p >= {level['flag']:.3f} (sensitivity "
                         f"0.80 out of fold), clearly abnormal above {level['clear']:.3f} (at or below it: 80 % of "
                         f"{units_of(level_name, level)}, out of fold), no clear answer between; score n/10 = above "
                         f"the out-of-fold p of n-1 tenths of them" + (f"; rule: {level['rule_chosen'].replace('_', ' and ')} of the two "
                                                    "breasts' image logits" if level_name == "exam" else "") + ".")
    if seconds_per_view is not None:
        lines.append(f"- Wall time: {seconds_per_view * 1000:.0f} ms per view on the export machine's CPU.")
    lines += ["", "## Limits", "", limits,
              "The trunk is ImageNet's, frozen: only the patch classifier is fitted, so what it can see is what "
              f"ImageNet features at {STRIDE * spacing:g} mm cells show; small calcifications are below "
              "that scale.", "", *(f"- {note}" for note in notes), *([""] if notes else []),
              f"Reproduce: `mammodesk-train reader --data {_reproduce_data(report['data'])} --preset "
              f"{report['preset']} --out runs/{report['preset']} --export resources/models/{name}.onnx` (built with "
              f"mammodesk-train {__version__}; another version may fit the heads "
              "differently: its figures then differ within the fold spread)", ""]
    path.write_text("\n".join(lines))
    return path


def _labelled_as(report: dict) -> str:
    if report["data"].startswith("mias:"):
        return "masses, calcifications, architectural distortion and asymmetry in the MIAS labels"
    return f"whatever `{public_spec(report['data'])}` labels abnormal, benign included"


def _reproduce_data(spec: str) -> str:
    """The bundled model's data by its path in the project; anyone else's by its name only."""
    return spec if spec.startswith("mias:../shared/data/") else public_spec(spec)


def _data_line(report: dict) -> str:
    """Where the data came from, by name only, and what kind of images it held."""
    counts = (report.get("grouping") or {}).get("counts", {})
    return (f"**Data**: `{public_spec(report['data'])}`; acquisition {acquisition_words(report.get('acquisition'))}; "
            "patients from "
            + ", ".join(f"{PATIENTS_FROM.get(how, how)} ({n} images)" for how, n in counts.items()) + ".")

