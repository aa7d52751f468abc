"""The markdown model card written next to every exported model."""

from __future__ import annotations

import re
from pathlib import Path

from mammodesk_train.baseline import verdict
from mammodesk_train.families.registry import unit_of
from mammodesk_train.metrics import SUMMARY_KEYS, format_mean_sd

LIMITS = {
    "mias": ("MIAS is scanned screen-film from the early 1990s, downsampled to 200 micron pixels: the model has "
             "never seen a digital mammogram, and its figures say nothing about modern FFDM or DBT images."),
}

TOO_FEW_PATIENTS = 100  # below this, a card says its figures cannot speak for accuracy


def acquisition_words(acquisition: dict | None) -> str:
    """What kind of images a model learnt from, as far as the files say: film or digital only where every file
    is DICOM (its tags tell); a JPEG, PNG or PGM does not say which it is."""
    if not acquisition:
        return "unknown"
    formats = acquisition.get("formats") or []
    bits = "/".join(f"{b}" for b in acquisition.get("bits_stored") or []) + "-bit"
    if formats and all(f == "DICOM" for f in formats):
        return f"{' and '.join(acquisition.get('kinds') or ['unknown'])} ({bits} DICOM)"
    return f"{bits} {', '.join(formats) or 'images'} (film or digital: the files do not say)"


def size_warning(samples: int, patients: int, unit: str = "images") -> str:
    """A card's first words when the data is far too small for its figures to mean much."""
    if patients >= TOO_FEW_PATIENTS:
        return ""
    return (f"**Far too small for accuracy**: trained and evaluated on {samples} {unit} of {patients} patients "
            f"(fewer than {TOO_FEW_PATIENTS}); its figures carry wide error, and it shows that the pipeline runs "
            "on this data, not how well a model can read it.\n\n")


def opening(name: str, comparison: dict | None, samples: int, patients: int, unit: str = "images") -> str:
    """Every card's first lines, whatever its family: its name, whether it lost to its plain baseline (exported
    anyway), whether its data is far too small, and that it is not for clinical use."""
    warning = ""
    if comparison and not comparison["beats_baseline"]:
        warning = (f"**Does not beat its plain baseline** ({verdict(comparison)}); exported with `--force`. "
                   "Treat its answers as no better than simple intensity statistics.\n\n")
    return (f"# {name}\n\n{warning}{size_warning(samples, patients, unit)}**Not for clinical use.** Research "
            "software; this model is not a medical device.\n")


def write_model_card(path: Path, name: str, metrics: dict, run: dict, description: str,
                     notes: list[str] = (), explanations: dict | None = None) -> Path:
    summary = metrics["cv_summary"]
    rows = _rows(summary)
    unit = unit_of(metrics["family"])
    for level in (k for k in metrics if k.startswith("cv_summary_")):
        label = level.removeprefix("cv_summary_").replace("_", "-")
        rows += f"\n| **{label}** | | |\n" + _rows(metrics[level])
    comparison = metrics.get("comparison")
    source = run["data"].split(":", 1)[0]
    support = [c["support"] for c in metrics["pooled"]["per_class"].values()]
    majority = max(support) / max(1, sum(support))
    card = opening(name, comparison, metrics["samples"], metrics["patients"], unit) + f"""
| about | |
|---|---|
| family / preset | {metrics['family']} / `{metrics['preset']}` |
| task | `{metrics['task']}`: {', '.join(metrics['classes'])} |
| data | `{run['data']}`: {_counted(metrics, unit)}; acquisition {acquisition_words(run.get('acquisition'))} |
| shipped weights | retrained on all {metrics['samples']} {unit} after cross-validation |

{description}

## How it was evaluated

{metrics['evaluation']}, seed {run['seed']}. {_split_words(metrics)} {_fold_isolation(run)} These are development-set
cross-validation figures, not results on an independent test set.

| metric | mean ± sd over {run['folds']} folds | per fold |
|---|---|---|
{rows}

For reference: chance AUC is 0.5, and always answering the most frequent class
gives accuracy {majority:.3f}.
{_per_class(metrics["pooled"])}{_baseline_section(comparison)}{_calibration_section(metrics.get("calibration"))}{_domain_section(metrics.get("domain_cv"))}{_explanation_section(explanations)}
## Limits

- {LIMITS.get(source, 'Trained on one dataset: expect lower performance on images from other sites and devices.')}
- {metrics['samples']} {unit} is a small sample: the spread across folds is the honest uncertainty.
- Grad-CAM maps show where the prediction is sensitive, not where a lesion is.
{"".join(f"- {note}{chr(10)}" for note in notes)}
## Rebuild

```bash
mammodesk-train fit --preset {metrics['preset']} --data {run['data'].replace(':', ':PATH/TO/', 1)} --task {metrics['task']} --folds {run['folds']} --seed {run['seed']} --out runs/{name}
mammodesk-train explain runs/{name} --data {run['data'].replace(':', ':PATH/TO/', 1)}
mammodesk-train export runs/{name} --out resources/models/{name}.onnx --name {name}
```
"""
    path.write_text(card)
    return path


def _per_class(pooled: dict) -> str:
    """Per-class figures of the pooled out-of-fold predictions (every class of a multi-class task)."""
    per_class = pooled.get("per_class", {})
    if len(per_class) <= 2:
        return ""
    def auc(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    rows = "\n".join(f"| {name} | {c['support']} | {c['sensitivity']:.3f} | {c['specificity']:.3f} | "
                     f"{auc(c['auc_ovr'])} |" for name, c in per_class.items())
    return f"""
Per class (pooled out-of-fold predictions):

| class | n | sensitivity | specificity | AUC one-vs-rest |
|---|---|---|---|---|
{rows}
"""


def _baseline_section(comparison: dict | None) -> str:
    if not comparison:
        return ""
    m, b, d = comparison["model"], comparison["baseline"], comparison["difference"]
    folds = "\n".join(f"| {i + 1} | {mv:.3f} | {bv:.3f} | {dv:+.3f} |"
                      for i, (mv, bv, dv) in enumerate(zip(m["folds"], b["folds"], d["folds"])))
    return f"""
## Against the plain baseline

{verdict(comparison)}.

The baseline: {comparison['baseline_method']}, trained in the same folds on the same samples (training-only extras of the model,
such as additional normal ROIs of its training patients, are not given to the baseline).
A model {comparison['rule']}.

| fold | model {comparison['metric']} | baseline | difference |
|---|---|---|---|
{folds}
| mean ± sd | {m['mean']:.3f} ± {m['sd']:.3f} | {b['mean']:.3f} ± {b['sd']:.3f} | {d['mean']:+.3f} ± {d['sd']:.3f} |
"""


def _counted(metrics: dict, unit: str) -> str:
    grouping = metrics.get("grouping", {})
    if grouping.get("patient_level", True):
        return f"{metrics['samples']} {unit} of {metrics['patients']} patients"
    return f"{metrics['samples']} {unit}; {grouping['statement']}"


def _split_words(metrics: dict) -> str:
    if metrics.get("grouping", {}).get("patient_level", True):
        return ("Folds are split by patient and stratified by class; no patient and no identical image is on both "
                "sides of any fold (checked on every fold).")
    return ("Folds are stratified by class; an image without a known patient is split alone, so one woman's images "
            "may sit on both sides. No identical image is on both sides of any fold (checked on every fold).")


def _fold_isolation(run: dict) -> str:
    """What each fold's model saw: a pretrained backbone (--init) may have seen held-out patients'
    images without labels (in-domain self-supervised pretraining on the whole development set)."""
    seen = (run.get("init") or {}).get("cv_patients_seen_in_pretraining", 0)
    if seen:
        return (f"The trunk started from `{run['init']['backbone']}`, whose self-supervised pretraining saw the "
                f"images (never the labels) of {seen} of these patients, held-out folds included: the figures "
                "are not free of that overlap.")
    return "Every model in a fold, the unsupervised part included, saw only that fold's training patients."


def _calibration_section(report: dict | None) -> str:
    if not report:
        return ""
    from mammodesk_train.app import describe_calibration

    def diagram(bins: list[dict]) -> str:
        return " ".join(f"{b['low']:.1f}-{b['high']:.1f}: {b['accuracy']:.2f} (n={b['count']})"
                        for b in bins if b["count"])

    losses = report.get("log_loss", {})
    method = (report["calibration"] or {}).get("method")
    loss = (f"Out-of-fold log loss {losses['uncalibrated']:.3f} raw, {losses[method]:.3f} calibrated. "
            if method in losses else "")
    return f"""
## Calibration

The probabilities this model shows are {describe_calibration(report['calibration'])} ({report['chosen_by']}).
{loss}Expected calibration error of the top class, out of fold: **{report['ece_before']:.3f} before, {report['ece_after']:.3f}
after** (the "after" predictions of each fold were calibrated by a map fitted on the other folds).

Reliability (confidence bin: observed accuracy), before: {diagram(report['reliability_before'])}

After: {diagram(report['reliability_after'])}
"""


def _domain_section(domain: dict | None) -> str:
    if not domain:
        return ""
    reasons = {}
    for fold in domain["folds"]:
        for key, count in fold["reasons"].items():
            kind = re.sub(r"\s*[-+]?\d[\d.]*(e[-+]?\d+)?$", "", key)  # "input intensity sd 0.36" -> "input intensity sd"
            reasons[kind] = reasons.get(kind, 0) + count
    why = ", ".join(f"{k}: {v}" for k, v in reasons.items()) or "none"
    return f"""
## Domain check

Every answer says whether the image is like the training images (acquisition, bits stored, pixel spacing,
input intensity, and the distance of its penultimate-layer embedding from the training set). Under
patient-level CV ({domain['how']}) it flagged **{domain['flag_rate']:.1%}** of the held-out development samples
(reasons: {why}).
"""


def _explanation_section(explanations: dict | None) -> str:
    if not explanations:
        return ""
    share = explanations["cam_in_breast"]
    text = (f"\n## Explanations\n\nGrad-CAM mass of the predicted class inside the breast, per CV fold on held-out "
            f"patients: **{share['mean']:.3f} ± {share['sd']:.3f}** (fold means).\n")
    pointing = explanations.get("pointing")
    if pointing:
        cam = pointing["cam_peak_hit_rate"]
        text += (f"\nPointing game on {pointing['images']} held-out images with located findings, each scanned "
                 f"whole: the most positive window contains a finding in **{pointing['window_hit_rate']:.0%}** "
                 f"(chance {pointing['chance']:.0%}); its Grad-CAM peak lies in a finding in "
                 f"{'n/a' if cam is None else f'{cam:.0%}'}.\n")
    return text


def _rows(summary: dict) -> str:
    return "\n".join(f"| {key} | {format_mean_sd(summary, key)} | "
                      f"{', '.join(f'{v:.3f}' for v in summary[key]['folds'])} |"
                      for key in SUMMARY_KEYS if key in summary)
