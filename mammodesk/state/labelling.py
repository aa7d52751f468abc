"""ROI labelling state: each open image's labels ("sheet"), the undo/redo
history, the selection, the drawing tool and the autosave bookkeeping.

Every edit goes through `LabellingState.apply`, which records (before, after)
snapshots of the immutable `ImageLabels`: undo and redo swap whole
snapshots, so any edit - a label, a move, an import - undoes the same way."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from mammodesk.anatomy import Anatomy
from mammodesk.annotations.geometry import translate
from mammodesk.annotations.merge import merge_labels
from mammodesk.annotations.model import Finding, ImageLabels, Pathology, Rect, Shape, default_author
from mammodesk.annotations.sidecar import SidecarRead
from mammodesk.annotations.taxonomy import Taxonomy, finding_type, kind_for
from mammodesk.services.autosave import AutoSaver, SaveJob
from mammodesk.state.events import Signal

TOOLS = ("select", "rect", "ellipse", "circle", "polygon", "freehand", "point", "measure")
HISTORY_LIMIT = 1000


def now_stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class Edit:
    text: str
    before: ImageLabels
    after: ImageLabels


@dataclass
class Sheet:
    """The labels of one open image and what is needed to save them."""

    key: int
    file_name: str
    sha256: str
    shape: tuple[int, int]
    sidecar: Path
    labels: ImageLabels
    undo_stack: list[Edit] = field(default_factory=list)
    redo_stack: list[Edit] = field(default_factory=list)
    revision: int = 0
    saved_revision: int = 0
    save_error: str | None = None
    problems: list[str] = field(default_factory=list)
    selected: str | None = None
    read_token: str | None = None  # the sidecar write these labels were opened from
    read_labels: ImageLabels | None = None

    @property
    def saved(self) -> bool:
        return self.saved_revision >= self.revision

    def finding(self, uid: str) -> Finding:
        for finding in self.labels.findings:
            if finding.uid == uid:
                return finding
        raise KeyError(f"no finding {uid!r} on {self.file_name}")


class LabellingState:
    def __init__(self, saver: AutoSaver | None = None, *, author: str | None = None,
                 taxonomy: Taxonomy | None = None) -> None:
        self.saver = saver
        self.author = author or default_author()
        self.taxonomy = taxonomy or Taxonomy()
        self.sheets: dict[int, Sheet] = {}
        self.measurements: dict[int, list] = {}  # image key -> ruler segments (source pixels)
        self.others: dict[int, list] = {}  # image key -> [(author, findings)]: other authors' labels, read-only
        self.tool = "select"
        self.next_type = "mass"  # what a newly drawn ROI is labelled
        self.next_pathology = Pathology.UNKNOWN
        self.changed = Signal()  # (key)
        self.selection_changed = Signal()  # (key, uid | None)
        self.tool_changed = Signal()  # (tool)
        self.save_status_changed = Signal()  # (key)
        self.taxonomy_changed = Signal()  # (Taxonomy)

    # --- images ------------------------------------------------------------------------
    def attach(self, key: int, *, file_name: str, sha256: str, shape: tuple[int, int], read: SidecarRead,
               image_id: str = "", anatomy: Anatomy | None = None) -> Sheet:
        """Labels of an opened image. Laterality and view the file states (tags or name; not
        pixel guesses) fill the labels when they have none, so sidecars and exports keep them."""
        labels = read.labels or ImageLabels(image_id=image_id or Path(file_name).stem)
        if anatomy is not None:
            known = {"laterality": anatomy.laterality if anatomy.laterality_source in ("tag", "name") else None,
                     "view": anatomy.view if anatomy.view_source in ("tag", "name") else None}
            labels = replace(labels, **{k: v for k, v in known.items() if v and not getattr(labels, k)})
        labels = self._with_uids(labels)
        sheet = Sheet(key, file_name, sha256, shape, read.path, labels, revision=read.revision,
                      saved_revision=read.revision, problems=list(read.problems), read_token=read.token,
                      read_labels=labels)
        self.sheets[key] = sheet
        self.changed.emit(key)
        return sheet

    def detach(self, key: int) -> None:
        self.measurements.pop(key, None)
        self.others.pop(key, None)
        sheet = self.sheets.pop(key, None)
        if sheet is not None and not sheet.saved and self.saver is not None:
            self.saver.schedule(self._job(sheet), immediately=True)
            self.saver.flush(timeout=2.0)  # reopening the image at once must find this state on disk

    def sheet(self, key: int) -> Sheet | None:
        return self.sheets.get(key)

    # --- the one way to change labels ---------------------------------------------------------
    def apply(self, key: int, text: str, after: ImageLabels) -> None:
        sheet = self.sheets[key]
        if after == sheet.labels:
            return
        sheet.undo_stack.append(Edit(text, sheet.labels, after))
        del sheet.undo_stack[:-HISTORY_LIMIT]
        sheet.redo_stack.clear()
        self._set(sheet, after)

    def undo(self, key: int) -> str | None:
        sheet = self.sheets[key]
        if not sheet.undo_stack:
            return None
        edit = sheet.undo_stack.pop()
        sheet.redo_stack.append(edit)
        self._set(sheet, edit.before)
        return edit.text

    def redo(self, key: int) -> str | None:
        sheet = self.sheets[key]
        if not sheet.redo_stack:
            return None
        edit = sheet.redo_stack.pop()
        sheet.undo_stack.append(edit)
        self._set(sheet, edit.after)
        return edit.text

    def _set(self, sheet: Sheet, labels: ImageLabels) -> None:
        sheet.labels = labels
        sheet.revision += 1
        if sheet.selected is not None and sheet.selected not in {f.uid for f in labels.findings}:
            self.select(sheet.key, None)
        if self.saver is not None:
            self.saver.schedule(self._job(sheet))
        self.changed.emit(sheet.key)
        self.save_status_changed.emit(sheet.key)

    # --- findings ----------------------------------------------------------------------
    def add_finding(self, key: int, shape: Shape | None, type_name: str | None = None, *,
                    pathology: Pathology | None = None, text: str | None = None, **fields) -> str:
        kind, extra = kind_for(type_name or self.next_type)
        stamp = now_stamp()
        finding = Finding(kind, pathology or self.next_pathology, _normalised(shape), attributes=extra,
                          uid=_new_uid(), author=self.author, created=stamp, modified=stamp, **fields)
        sheet = self.sheets[key]
        what = type(shape).__name__.lower() if shape is not None else "finding"
        self.apply(key, text or f"Add {what}", replace(sheet.labels,
                                                                    findings=sheet.labels.findings + (finding,)))
        self.select(key, finding.uid)
        return finding.uid

    def accept_model_finding(self, document, finding: Finding) -> str | None:
        """A model's answer accepted as a label of `document` (when its labels are open). Model boxes are in
        pixel edges, labels in pixel centres: the box moves by half a pixel."""
        if document.id not in self.sheets:
            return None
        if finding.shape is not None:
            finding = replace(finding, shape=translate(finding.shape, -0.5, -0.5))
        return self.add_existing(document.id, finding, f"Accept {finding.source}")

    def add_existing(self, key: int, finding: Finding, text: str) -> str:
        """A finding made elsewhere (a model's answer, an import), with a new identity."""
        stamp = now_stamp()
        finding = replace(finding, uid=_new_uid(), author=finding.author or self.author,
                                      created=finding.created or stamp, modified=stamp)
        sheet = self.sheets[key]
        self.apply(key, text, replace(sheet.labels, findings=sheet.labels.findings + (finding,)))
        return finding.uid

    def update_finding(self, key: int, uid: str, text: str | None = None, **changes) -> None:
        """Change fields of a finding: `type` (taxonomy name), `pathology`, `birads`,
        `note`, `shape`, or `attributes` (merged; a value None removes the attribute)."""
        sheet = self.sheets[key]
        old = sheet.finding(uid)
        attributes = dict(old.attributes)
        kind = old.kind
        if "type" in changes:
            type_name = changes.pop("type")
            kind, extra = kind_for(type_name)
            attributes.pop("finding_type", None)
            attributes.update(extra)
            allowed = set(self.taxonomy.attributes_for(type_name))
            for name in list(attributes):  # a calcification has no margin
                if name in self.taxonomy.attributes and name not in allowed:
                    del attributes[name]
        for name, value in (changes.pop("attributes", None) or {}).items():
            if value is None:
                attributes.pop(name, None)
            else:
                attributes[name] = str(value)
        if "shape" in changes:
            changes["shape"] = _normalised(changes["shape"])
        new = replace(old, kind=kind, attributes=attributes, modified_by=self.author,
                                  modified=now_stamp(), **changes)
        if _same_content(new, old):
            return
        findings = tuple(new if f.uid == uid else f for f in sheet.labels.findings)
        self.apply(key, text or "Edit finding", replace(sheet.labels, findings=findings))

    def set_shape(self, key: int, uid: str, shape: Shape, text: str = "Move/resize ROI") -> None:
        self.update_finding(key, uid, text, shape=shape)

    def delete_finding(self, key: int, uid: str) -> None:
        sheet = self.sheets[key]
        sheet.finding(uid)
        findings = tuple(f for f in sheet.labels.findings if f.uid != uid)
        self.apply(key, "Delete finding", replace(sheet.labels, findings=findings))

    def set_image(self, key: int, text: str = "Edit image labels", **changes) -> None:
        """Image-level labels: `density` (A-D), `birads` (0-6), `note`."""
        sheet = self.sheets[key]
        if "density" in changes:
            changes["density_system"] = "acr" if changes["density"] in ("A", "B", "C", "D") else (
                sheet.labels.density_system if changes["density"] else None)
        self.apply(key, text, replace(sheet.labels, **changes))

    def import_labels(self, key: int, imported: ImageLabels, text: str) -> int:
        """Add imported findings as editable ROIs (not twice: a finding with the
        same source, type and shape is kept once); image-level labels fill gaps.
        Returns how many findings were added."""
        sheet = self.sheets[key]
        present = {(f.source, f.kind, f.shape) for f in sheet.labels.findings}
        stamp = now_stamp()
        new = tuple(replace(f, uid=_new_uid(), author=f.author or self.author,
                                        created=f.created or stamp, modified=f.modified or stamp)
                    for f in imported.findings if (f.source, f.kind, f.shape) not in present)
        labels = sheet.labels
        changes = {name: getattr(imported, name) for name in ("density", "density_system", "birads", "laterality",
                                                              "view")
                   if getattr(labels, name) is None and getattr(imported, name) is not None}
        self.apply(key, text, replace(labels, findings=labels.findings + new, **changes))
        return len(new)

    # --- selection, tools, defaults -----------------------------------------------------
    def select(self, key: int, uid: str | None) -> None:
        sheet = self.sheets.get(key)
        if sheet is None or sheet.selected == uid:
            return
        sheet.selected = uid
        self.selection_changed.emit(key, uid)

    def step_selection(self, key: int, offset: int) -> None:
        sheet = self.sheets.get(key)
        if sheet is None or not sheet.labels.findings:
            return
        uids = [f.uid for f in sheet.labels.findings]
        index = uids.index(sheet.selected) + offset if sheet.selected in uids else (0 if offset > 0 else -1)
        self.select(key, uids[index % len(uids)])

    # --- the team's labels (from the archive) ----------------------------------------------------------
    def set_others(self, key: int, authors: list) -> None:
        """Other authors' latest findings on this image, shown read-only: [(author, findings)]."""
        self.others[key] = list(authors)
        self.changed.emit(key)

    def adopt(self, key: int, labels: ImageLabels, text: str) -> bool:
        """This author's latest report from the server becomes the labels, as one undoable edit,
        unless there are local edits not yet saved anywhere (those win and are kept)."""
        sheet = self.sheets.get(key)
        if sheet is None or not sheet.saved or labels.findings == sheet.labels.findings:
            return False
        self.apply(key, text, replace(sheet.labels, findings=self._with_uids(labels).findings,
                                      density=labels.density or sheet.labels.density,
                                      birads=labels.birads if labels.birads is not None else sheet.labels.birads))
        return True

    # --- rulers (reading aids, not labels) --------------------------------------------------------
    def add_measurement(self, key: int, segment) -> None:
        self.measurements.setdefault(key, []).append(segment)
        self.changed.emit(key)

    def clear_measurements(self, key: int | None) -> None:
        if key is not None and self.measurements.pop(key, None):
            self.changed.emit(key)

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; choose one of {TOOLS}")
        if tool != self.tool:
            self.tool = tool
            self.tool_changed.emit(tool)

    def label_selected(self, key: int | None, **changes) -> None:
        """A label hotkey: relabels the selected finding, else sets what the next ROI gets."""
        sheet = self.sheets.get(key) if key is not None else None
        if sheet is not None and sheet.selected is not None:
            self.update_finding(key, sheet.selected, "Relabel", **changes)
            return
        if "type" in changes:
            self.next_type = changes["type"]
        if "pathology" in changes:
            self.next_pathology = changes["pathology"]
        if key is not None and sheet is not None and "birads" in changes:
            self.set_image(key, "Image BI-RADS", birads=changes["birads"])
        self.tool_changed.emit(self.tool)  # the panel shows the defaults next to the tool

    def cycle_attribute(self, key: int | None, name: str) -> str | None:
        """A label hotkey for an attribute (shape, margin): the selected finding's next value in the taxonomy's
        list, where its type has that attribute. Returns the value set (None: nothing selected, or not its)."""
        sheet = self.sheets.get(key) if key is not None else None
        if sheet is None or sheet.selected is None:
            return None
        finding = sheet.finding(sheet.selected)
        values = list(self.taxonomy.attributes.get(name, ()))
        if not values or name not in self.taxonomy.attributes_for(finding_type(finding.kind, finding.attributes)):
            return None
        current = finding.attributes.get(name)
        value = values[(values.index(current) + 1) % len(values)] if current in values else values[0]
        self.update_finding(key, sheet.selected, f"Set {name}", attributes={name: value})
        return value

    def set_taxonomy(self, taxonomy: Taxonomy) -> None:
        if taxonomy == self.taxonomy:
            return  # the same (the built-in one, most often): the panel's combos stay as they are
        self.taxonomy = taxonomy
        if self.next_type not in taxonomy.finding_types:
            self.next_type = "mass"
        self.taxonomy_changed.emit(taxonomy)

    # --- saving ---------------------------------------------------------------------------------
    def _job(self, sheet: Sheet) -> SaveJob:
        return SaveJob(sheet.key, sheet.sidecar, sheet.labels, sheet.file_name, sheet.sha256, sheet.shape,
                       sheet.revision, sheet.read_token, sheet.read_labels)

    def on_saved(self, job: SaveJob, error: Exception | None) -> None:
        """The saver's report, delivered on the UI thread."""
        sheet = self.sheets.get(job.key)
        if sheet is None or sheet.sidecar != job.path:
            return
        if error is None:
            sheet.saved_revision = max(sheet.saved_revision, job.revision)
            sheet.save_error = None
            outcome = getattr(job, "outcome", None)
            if outcome is not None and outcome.merged is not None and outcome.labels != job.labels:
                self._adopt_merge(sheet, job)  # the file holds another writer's work: deletions and fields too
        else:
            sheet.save_error = f"{error}; your edits are kept in memory and saving is retried"
        self.save_status_changed.emit(job.key)

    def _adopt_merge(self, sheet: Sheet, job: SaveJob) -> None:
        """Another writer saved this image meanwhile; the file now holds both. Show the merge (one undoable
        edit on top of what was edited since the job was made) and say what happened."""
        merged = job.outcome.merged
        now = merge_labels(job.labels, sheet.labels, job.outcome.labels).labels
        self.apply(sheet.key, "Merge labels saved meanwhile by another window", now)
        text = (f"another MammoDesk saved changes to these labels meanwhile ({merged.taken} finding(s) of theirs "
                "taken); merged, nothing lost")
        if merged.conflicts:
            text += f" ({merged.conflicts} finding(s) changed in both: both versions kept, marked 'merge')"
        sheet.problems.append(text)

    def _with_uids(self, labels: ImageLabels) -> ImageLabels:
        if all(f.uid for f in labels.findings):
            return labels
        return replace(labels, findings=tuple(
            f if f.uid else replace(f, uid=_new_uid()) for f in labels.findings))


def _new_uid() -> str:
    return uuid.uuid4().hex[:12]


def _normalised(shape: Shape | None) -> Shape | None:
    return Rect(*shape.bbox()) if isinstance(shape, Rect) else shape


def _same_content(a: Finding, b: Finding) -> bool:
    return replace(a, modified_by=b.modified_by, modified=b.modified) == b


def describe(finding: Finding) -> str:
    """Short text for lists: 'mass, malignant, BI-RADS 5'."""
    parts = [finding_type(finding.kind, finding.attributes).replace("_", " ")]
    if finding.pathology != Pathology.UNKNOWN:
        parts.append(finding.pathology.value)
    if finding.birads is not None:
        parts.append(f"BI-RADS {finding.birads}")
    return ", ".join(parts)

