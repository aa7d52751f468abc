"""Three-way merge of one image's labels, for two windows (or two machines on
a shared folder) saving the same sidecar: `base` is what this writer last read
or wrote, `ours` what it is saving now, `theirs` what another writer saved
meanwhile. Findings are matched by uid. Nothing is lost: a finding changed on
one side only takes that change; changed on both sides, both versions stay
(theirs as a copy with a new uid, marked); deleted on one side and untouched
on the other, it stays deleted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields, replace

from mammodesk.annotations.model import Finding, ImageLabels

IMAGE_FIELDS = tuple(f.name for f in fields(ImageLabels) if f.name not in ("findings", "image_id"))


@dataclass(frozen=True)
class Merged:
    labels: ImageLabels
    taken: int  # findings added or changed by the other writer that the result holds
    conflicts: int  # findings both writers changed: both versions kept


def merge_labels(base: ImageLabels | None, ours: ImageLabels, theirs: ImageLabels) -> Merged:
    base_by = {f.uid: f for f in (base.findings if base is not None else ()) if f.uid}
    ours_by = {f.uid: f for f in ours.findings}
    findings, taken, conflicts = [], 0, 0
    for finding in ours.findings:
        other = _find(theirs, finding.uid)
        original = base_by.get(finding.uid)
        if other is None:
            if original is not None and finding == original:
                continue  # they deleted it, we did not touch it
            findings.append(finding)
        elif finding == other or other == original:
            findings.append(finding)
        elif finding == original:
            findings.append(other)
            taken += 1
        else:  # both changed it: keep both
            findings += [finding, _copy_of(other)]
            conflicts += 1
    for finding in theirs.findings:
        if finding.uid in ours_by:
            continue
        original = base_by.get(finding.uid)
        if original is not None and finding == original:
            continue  # we deleted it, they did not touch it
        findings.append(finding)
        taken += 1
    image = {}
    for name in IMAGE_FIELDS:
        mine, other, before = getattr(ours, name), getattr(theirs, name), getattr(base, name, None)
        image[name] = other if mine == before and other != before else mine
    return Merged(replace(ours, findings=tuple(findings), **image), taken, conflicts)


def _find(labels: ImageLabels, uid: str) -> Finding | None:
    return next((f for f in labels.findings if f.uid == uid), None) if uid else None


def _copy_of(finding: Finding) -> Finding:
    attributes = {**finding.attributes, "merge": f"another writer's version of {finding.uid}"}
    return replace(finding, uid=uuid.uuid4().hex[:12], attributes=attributes)
