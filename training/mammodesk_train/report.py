"""A run's report: metrics.json (machine-readable) and report.html with ROC
and precision-recall curves and the confusion matrix drawn as inline SVG, from
the out-of-fold predictions (every sample predicted by a model that never saw
its patient)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

from mammodesk_train.metrics import SUMMARY_KEYS, format_mean_sd

SIZE, PAD = 260, 36
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def write_report(out: Path, document: dict, y_true: np.ndarray, probs: np.ndarray) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(document, indent=2, default=_jsonable) + "\n")
    classes = document["classes"]
    charts = [_curves("ROC (out-of-fold)", "false positive rate", "sensitivity", y_true, probs, classes, "roc"),
              _curves("Precision-recall (out-of-fold)", "recall", "precision", y_true, probs, classes, "pr"),
              _confusion(np.asarray(document["pooled"]["confusion_matrix"]), classes)]
    summary = document.get("cv_summary", {})
    rows = "".join(f"<tr><td>{k}</td><td>{format_mean_sd(summary, k)}</td>"
                   f"<td>{', '.join(f'{v:.3f}' for v in summary[k]['folds'])}</td></tr>"
                   for k in SUMMARY_KEYS if k in summary)
    comparison = _comparison(document)
    leakage = document.get("leakage", [])
    leak_text = "no patient or identical image on both sides of any fold" if all(f["ok"] for f in leakage) \
        else "LEAKAGE FOUND"
    body = f"""<!doctype html><meta charset="utf-8"><title>{html.escape(document['run'])}</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}
td,th{{padding:2px 10px;text-align:left}} svg{{margin:6px}}</style>
<h1>{html.escape(document['run'])}</h1>
<p>{html.escape(document['preset'])} · task <b>{html.escape(document['task'])}</b> ({', '.join(map(html.escape, classes))})
· data {html.escape(document['data'])} · {document['samples']} samples from {document['patients']} patients</p>
<p><b>Evaluation:</b> {html.escape(document['evaluation'])}. Leakage check: {leak_text}.</p>
<table><tr><th>metric</th><th>mean ± sd over folds</th><th>per fold</th></tr>{rows}</table>
{comparison}
<div>{''.join(charts)}</div>
<p>Wall time {document.get('wall_time_s', 0):.0f} s on {html.escape(document.get('device', ''))}.</p>"""
    (out / "report.html").write_text(body)


def _comparison(document: dict) -> str:
    """The model and the plain baseline in the same folds, with the paired difference."""
    comparison = document.get("comparison")
    if not comparison:
        return ""
    from mammodesk_train.baseline import verdict

    m, b, d = comparison["model"], comparison["baseline"], comparison["difference"]
    rows = "".join(f"<tr><td>{i + 1}</td><td>{mv:.3f}</td><td>{bv:.3f}</td><td>{dv:+.3f}</td></tr>"
                   for i, (mv, bv, dv) in enumerate(zip(m["folds"], b["folds"], d["folds"])))
    colour = "#1a7f37" if comparison["beats_baseline"] else "#b3261e"
    return f"""<h2>Against the plain baseline</h2>
<p style="color:{colour}"><b>{html.escape(verdict(comparison))}</b></p>
<p>Baseline: {html.escape(comparison['baseline_method'])}. Rule: a model {html.escape(comparison['rule'])}.</p>
<table><tr><th>fold</th><th>model {comparison['metric']}</th><th>baseline</th><th>difference</th></tr>{rows}
<tr><td>mean ± sd</td><td>{m['mean']:.3f} ± {m['sd']:.3f}</td><td>{b['mean']:.3f} ± {b['sd']:.3f}</td>
<td>{d['mean']:+.3f} ± {d['sd']:.3f}</td></tr></table>"""


def _axes(title: str, xlabel: str, ylabel: str, ticks: bool = True) -> list[str]:
    s, p = SIZE, PAD
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{s + 2 * p}" height="{s + 2 * p}" '
             f'font-size="11"><text x="{p}" y="14" font-weight="bold">{html.escape(title)}</text>',
             f'<rect x="{p}" y="{p}" width="{s}" height="{s}" fill="none" stroke="#888"/>',
             f'<text x="{p + s / 2}" y="{s + 2 * p - 6}" text-anchor="middle">{xlabel}</text>',
             f'<text x="10" y="{p + s / 2}" transform="rotate(-90 10 {p + s / 2})" text-anchor="middle">{ylabel}</text>']
    for tick in (0, 0.5, 1) if ticks else ():
        parts.append(f'<text x="{p + tick * s}" y="{p + s + 12}" text-anchor="middle">{tick:g}</text>')
        parts.append(f'<text x="{p - 4}" y="{p + (1 - tick) * s + 4}" text-anchor="end">{tick:g}</text>')
    return parts


def _curves(title, xlabel, ylabel, y_true, probs, classes, kind) -> str:
    parts = _axes(title, xlabel, ylabel)
    s, p = SIZE, PAD
    if kind == "roc":
        parts.append(f'<line x1="{p}" y1="{p + s}" x2="{p + s}" y2="{p}" stroke="#ccc" stroke-dasharray="4"/>')
    shown = [1] if len(classes) == 2 else range(len(classes))
    for row, c in enumerate(shown):
        positive = y_true == c
        if positive.all() or not positive.any():
            continue
        if kind == "roc":
            xs, ys, _ = roc_curve(positive, probs[:, c])
        else:
            precision, recall, _ = precision_recall_curve(positive, probs[:, c])
            xs, ys = recall, precision
        points = " ".join(f"{p + x * s:.1f},{p + (1 - y) * s:.1f}" for x, y in zip(xs, ys))
        colour = COLOURS[c % len(COLOURS)]
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{p + s - 4}" y="{p + s - 8 - 13 * row}" text-anchor="end" fill="{colour}">'
                     f'{html.escape(classes[c])}</text>')
    return "".join(parts) + "</svg>"


def _confusion(cm: np.ndarray, classes) -> str:
    parts = _axes("Confusion matrix (pooled)", "predicted", "true", ticks=False)
    s, p, k = SIZE, PAD, len(classes)
    cell, top = s / k, max(1, cm.max())
    for i in range(k):
        for j in range(k):
            shade = int(255 - 200 * cm[i, j] / top)
            parts.append(f'<rect x="{p + j * cell}" y="{p + i * cell}" width="{cell}" height="{cell}" '
                         f'fill="rgb({shade},{shade},255)" stroke="#fff"/>')
            parts.append(f'<text x="{p + (j + 0.5) * cell}" y="{p + (i + 0.5) * cell + 4}" '
                         f'text-anchor="middle">{cm[i, j]}</text>')
        parts.append(f'<text x="{p + (i + 0.5) * cell}" y="{p - 4}" text-anchor="middle">{html.escape(classes[i])}</text>')
        parts.append(f'<text x="{p - 4}" y="{p + (i + 0.5) * cell + 4}" text-anchor="end">{html.escape(classes[i])}</text>')
    return "".join(parts) + "</svg>"


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON-serialisable: {type(value)}")
