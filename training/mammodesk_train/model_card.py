"""The markdown model card written next to every exported model."""

from __future__ import annotations

from pathlib import Path

from mammodesk_train.metrics import SUMMARY_KEYS, format_mean_sd

ROI_FAMILIES = ("fusion-vgg", "hybrid")
LIMITS = {
    "mias": ("MIAS is scanned screen-film from the early 1990s, downsampled to 200 micron pixels: the model has "
             "never seen a digital mammogram, and its figures say nothing about modern FFDM or DBT images."),
}


def write_model_card(path: Path, name: str, metrics: dict, run: dict, description: str,
                     notes: list[str] = ()) -> Path:
    summary = metrics["cv_summary"]
    rows = _rows(summary)
    unit = "ROIs" if metrics["family"] in ROI_FAMILIES else "images"
    for level in (k for k in metrics if k.startswith("cv_summary_")):
        label = level.removeprefix("cv_summary_").replace("_", "-")
        rows += f"\n| **{label}** | | |\n" + _rows(metrics[level])
    source = run["data"].split(":", 1)[0]
    support = [c["support"] for c in metrics["pooled"]["per_class"].values()]
    majority = max(support) / max(1, sum(support))
    card = f"""# {name}

**Not for clinical use.** Research software; this model is not a medical device.

| | |
|---|---|
| family / preset | {metrics['family']} / `{metrics['preset']}` |
| task | `{metrics['task']}`: {', '.join(metrics['classes'])} |
| data | `{run['data']}`: {metrics['samples']} {unit} of {metrics['patients']} patients |
| shipped weights | retrained on all {metrics['samples']} {unit} after cross-validation |

{description}

## How it was evaluated

{metrics['evaluation']}, seed {run['seed']}. Folds are split by patient and
stratified by class; no patient and no identical image is on both sides of any
fold (checked on every fold). Every model in a fold, the unsupervised part
included, saw only that fold's training patients. These are development-set
cross-validation figures, not results on an independent test set.

| metric | mean ± sd over {run['folds']} folds | per fold |
|---|---|---|
{rows}

For reference: chance AUC is 0.5, and always answering the most frequent class
gives accuracy {majority:.3f}.

## Limits

- {LIMITS.get(source, 'Trained on one dataset: expect lower performance on images from other sites and devices.')}
- {metrics['samples']} {unit} is a small sample: the spread across folds is the honest uncertainty.
- Grad-CAM maps show where the prediction is sensitive, not where a lesion is.
{"".join(f"- {note}{chr(10)}" for note in notes)}
## Rebuild

```bash
mammodesk-train fit --preset {metrics['preset']} --data {run['data'].replace(':', ':PATH/TO/', 1)} --task {metrics['task']} --folds {run['folds']} --seed {run['seed']} --out runs/{name}
mammodesk-train export runs/{name} --out resources/models/{name}.onnx
```
"""
    path.write_text(card)
    return path


def _rows(summary: dict) -> str:
    return "\n".join(f"| {key} | {format_mean_sd(summary, key)} | "
                      f"{', '.join(f'{v:.3f}' for v in summary[key]['folds'])} |"
                      for key in SUMMARY_KEYS if key in summary)
