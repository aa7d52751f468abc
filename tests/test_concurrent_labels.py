"""Two MammoDesk instances labelling the same image: neither loses the other's
work. Real processes sharing one sidecar (the saver's lock and tokens), and
the three-way merge's rules on their own."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from mammodesk.annotations.merge import merge_labels
from mammodesk.annotations.model import Finding, FindingKind, ImageLabels, Pathology, Rect
from mammodesk.annotations.sidecar import read_sidecar, save_sidecar
from mammodesk.services.autosave import AutoSaver
from mammodesk.state.labelling import LabellingState

SHA, SHAPE = "7" * 64, (400, 300)


def _finding(uid: str, x: float = 10, **changes) -> Finding:
    return Finding(FindingKind.MASS, shape=Rect(x, x, x + 20, x + 20), uid=uid, **changes)


def label_in_another_window(path: str, who: str, corner: float, delete: str, barrier, results) -> None:
    """One app instance, headless: open the labels, wait until the other has opened them too, edit, save."""
    read = read_sidecar(Path(path), SHA, SHAPE)
    done: list = []
    saver = AutoSaver(debounce_s=0.0, on_done=lambda job, error: done.append((job, error)))
    state = LabellingState(saver, author=who)
    state.attach(1, file_name="img.png", sha256=SHA, shape=SHAPE, read=read)
    barrier.wait(timeout=30)  # both read the same file before either writes
    added = state.add_finding(1, Rect(corner, corner, corner + 30, corner + 30))
    if delete:
        state.delete_finding(1, delete)
    for _ in range(3):  # deliver the saver's reports as the UI thread would, until nothing is left to save
        saver.flush()
        while done:
            state.on_saved(*done.pop(0))
    saver.close()
    sheet = state.sheets[1]
    results.put((who, added, [f.uid for f in sheet.labels.findings], sheet.problems, sheet.saved))


def test_two_processes_labelling_one_image_lose_nothing(tmp_path):
    sidecar = tmp_path / "img.png.mammodesk.json"
    save_sidecar(sidecar, ImageLabels("img", (_finding("shared"), _finding("doomed", 100))), base_token=None,
                 base_labels=None, file_name="img.png", sha256=SHA, shape=SHAPE, revision=1)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=label_in_another_window, args=(str(sidecar), who, corner, delete, barrier,
                                                                      results))
               for who, corner, delete in (("ann", 50.0, "doomed"), ("bob", 200.0, ""))]
    for worker in workers:
        worker.start()
    reports = {who: rest for who, *rest in (results.get(timeout=60) for _ in workers)}
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    on_disk = {f.uid for f in read_sidecar(sidecar, SHA, SHAPE).labels.findings}
    ann_added, bob_added = reports["ann"][0], reports["bob"][0]
    assert on_disk == {"shared", ann_added, bob_added}  # both additions kept; Ann's deletion honoured
    merged = [who for who, (_, _, problems, _) in reports.items() if any("merged, nothing lost" in p for p in problems)]
    assert len(merged) == 1  # the later writer merged, and was told so
    later = reports[merged[0]]
    assert set(later[1]) == on_disk and later[3]  # its window now shows the merged labels, saved


def test_merge_rules():
    base = ImageLabels("i", (_finding("a"), _finding("b"), _finding("c")), density="F")
    ours = ImageLabels("i", (_finding("a", pathology=Pathology.MALIGNANT), _finding("c", 50), _finding("mine")),
                       density="F")  # changed a, deleted b, changed c, added mine
    theirs = ImageLabels("i", (_finding("a"), _finding("b"), _finding("c", 80), _finding("yours")),
                         density="D")  # untouched a and b, changed c too, added yours, changed the density
    merged = merge_labels(base, ours, theirs)
    by_uid = {f.uid: f for f in merged.labels.findings}
    assert by_uid["a"].pathology == Pathology.MALIGNANT  # only we changed it
    assert "b" not in by_uid  # we deleted it, they did not touch it
    assert by_uid["c"].shape == Rect(50, 50, 70, 70)  # ours stays ...
    copies = [f for f in merged.labels.findings if f.attributes.get("merge") == "another writer's version of c"]
    assert len(copies) == 1 and copies[0].shape == Rect(80, 80, 100, 100)  # ... and theirs is kept beside it
    assert {"mine", "yours"} <= set(by_uid) and merged.labels.density == "D"
    assert merged.conflicts == 1 and merged.taken == 1
    assert merge_labels(base, base, base).labels == base  # nothing to merge: nothing changes


def test_a_merge_is_adopted_whole_and_a_save_made_before_it_cannot_undo_it(tmp_path):
    """Bob deletes a finding; Ann, who still has it, saves: the file keeps Bob's deletion, Ann's window takes
    the merge in (deletions and all), and a save Ann's window made before it did cannot write it back."""
    sidecar = tmp_path / "img.png.mammodesk.json"
    save_sidecar(sidecar, ImageLabels("img", (_finding("keep"), _finding("gone", 100))), base_token=None,
                 base_labels=None, file_name="img.png", sha256=SHA, shape=SHAPE, revision=1)

    def open_window(who: str):
        done: list = []
        saver = AutoSaver(debounce_s=0.0, on_done=lambda job, error: done.append((job, error)))
        state = LabellingState(saver, author=who)
        state.attach(1, file_name="img.png", sha256=SHA, shape=SHAPE, read=read_sidecar(sidecar, SHA, SHAPE))
        return state, saver, done

    def deliver(state, saver, done) -> None:
        saver.flush()
        while done:
            state.on_saved(*done.pop(0))

    ann, ann_saver, ann_done = open_window("ann")
    bob, bob_saver, bob_done = open_window("bob")
    bob.delete_finding(1, "gone")
    deliver(bob, bob_saver, bob_done)
    added = ann.add_finding(1, Rect(200, 200, 230, 230))
    ann_saver.flush()  # written (merged), but not yet taken in by Ann's window ...
    late = ann.add_finding(1, Rect(10, 250, 40, 280))  # ... when she edits again: this job still holds "gone"
    for _ in range(3):  # the adopted merge is itself saved: deliver until nothing is left
        deliver(ann, ann_saver, ann_done)
    on_disk = {f.uid for f in read_sidecar(sidecar, SHA, SHAPE).labels.findings}
    assert on_disk == {"keep", added, late}  # Bob's deletion stands; nothing of Ann's is lost
    assert {f.uid for f in ann.sheets[1].labels.findings} == on_disk and ann.sheets[1].saved
    for saver in (ann_saver, bob_saver):
        saver.close()


def test_saving_leaves_no_lock_file_beside_the_image(tmp_path):
    import threading

    from mammodesk.annotations.sidecar import _locked

    sidecar = tmp_path / "mdb001.pgm.mammodesk.json"
    order = []

    def hold(name):
        with _locked(sidecar):
            order.append(f"{name} in")
            time.sleep(0.05)
            order.append(f"{name} out")

    threads = [threading.Thread(target=hold, args=(n,)) for n in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [o.split()[1] for o in order] == ["in", "out"] * 3  # never two holders at once
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".lock")]
