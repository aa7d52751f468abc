"""mammodesk-train list | fit | pretrain | evaluate | export."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from mammodesk_train import __version__
from mammodesk_train.entry import COMMANDS as COMMAND_HELP, DESCRIPTION
from mammodesk_train.data.sources import SOURCES, DataError, load_source
from mammodesk_train.data.tasks import TASKS, get_task
from mammodesk_train.families.registry import FAMILIES, PRESETS, family_for


REFUSED_BY_BASELINE = 3  # export's exit status when the model does not beat its plain baseline


class CliError(Exception):
    """One clear line for the user; exit code 2 (3: export refused because the model loses to its baseline)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mammodesk-train", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"mammodesk-train {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("env", help=COMMAND_HELP["env"])
    sub.add_parser("list", help=COMMAND_HELP["list"])
    fit = sub.add_parser("fit", help=COMMAND_HELP["fit"])
    fit.add_argument("--preset", required=True)
    fit.add_argument("--data", required=True, help="SOURCE:PATH, e.g. mias:../shared/data/mias-dev.tar.gz")
    fit.add_argument("--task", help="what to learn (see list); the reader's presets learn normal_abnormal, their "
                                     "default")
    fit.add_argument("--folds", type=int, default=5)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--out", required=True, type=Path)
    fit.add_argument("--device", default="auto", help="auto, cpu or cuda")
    fit.add_argument("--no-final", action="store_true", help="skip the final model trained on all data")
    fit.add_argument("--epochs-scale", type=float, default=1.0, help="multiply every epoch count (smoke runs)")
    fit.add_argument("--select-from", default="", metavar="PRESET,...",
                     help="other presets to choose from: each outer fold fits whichever of --preset and these wins "
                          "inner CV on its own training patients (nested selection); the final model likewise")
    fit.add_argument("--select-folds", type=int, default=3, help="inner patient-level folds for --select-from")
    fit.add_argument("--resume", action="store_true",
                     help="continue a stopped fit into the same --out: its finished folds are kept, the fold it was "
                          "in is fitted afresh")
    fit.add_argument("--init", type=Path, help="start the trunk from a backbone file written by `pretrain`: "
                     "ResNet50V2 (simclr, hybrid, transfer-resnet50v2) or VGG16 (fusion-vgg16)")
    fit.add_argument("--second-seed", type=int, help="a second outer fold seed, reported too (the reader's "
                     "presets: default --seed + 1)")
    _export_options(fit)
    pre = sub.add_parser("pretrain", help=COMMAND_HELP["pretrain"])
    pre.add_argument("--method", choices=["simclr"], default="simclr")
    pre.add_argument("--data", required=True, action="append",
                     help="SOURCE:PATH, repeatable (e.g. mias:... and images:FOLDER); labels are not used")
    pre.add_argument("--architecture", choices=["resnet50v2", "vgg16"], default="resnet50v2",
                     help="the encoder: the small-input ResNet50V2 (simclr, hybrid) or the VGG16 trunk (fusion)")
    pre.add_argument("--windows", type=int, default=0,
                     help="random in-breast windows per image at MIAS scale (0.2 mm/pixel) instead of whole "
                          "breasts: pretraining for the ROI families")
    pre.add_argument("--window", type=int, default=120, help="window side in MIAS pixels (with --windows)")
    pre.add_argument("--size", type=int, help="network input side (default: the preset's)")
    pre.add_argument("--out", required=True, type=Path, help="backbone file to write, e.g. backbones/NAME.pt")
    pre.add_argument("--preset", default="simclr-lite", help="a simclr preset (architecture, input, schedule)")
    pre.add_argument("--width", type=float, help="encoder width (match the family you will --init)")
    pre.add_argument("--epochs", type=int)
    pre.add_argument("--batch-size", type=int)
    pre.add_argument("--micro-batch", type=int, help="embed this many views at a time (large batches on "
                     "small machines, same gradient)")
    pre.add_argument("--seed", type=int, default=0)
    pre.add_argument("--device", default="auto")
    export = sub.add_parser("export", help=COMMAND_HELP["export"])
    export.add_argument("run", type=Path)
    export.add_argument("--out", required=True, type=Path)
    export.add_argument("--name", help="model name (default: the run folder's name)")
    export.add_argument("--note", action="append", default=[],
                        help="an observation for the model card's limits, e.g. what its Grad-CAM maps show (repeatable)")
    export.add_argument("--force", action="store_true",
                        help="export a model whose CV does not beat its plain baseline (the card says so first)")
    explain = sub.add_parser("explain", help=COMMAND_HELP["explain"])
    explain.add_argument("run", type=Path)
    explain.add_argument("--data", required=True, help="the run's data (SOURCE:PATH)")
    explain.add_argument("--no-pointing", action="store_true", help="skip the whole-breast scans")
    evaluate = sub.add_parser("evaluate", help=COMMAND_HELP["evaluate"])
    evaluate.add_argument("model", type=Path)
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--task", help="default: the model's task")
    evaluate.add_argument("--out", type=Path, help="write metrics.json here")
    catalogue = sub.add_parser("catalogue", help=COMMAND_HELP["catalogue"])
    catalogue.add_argument("--out", type=Path, default=None,
                           help="where to write it (default: the bundled resources/models/families.json)")
    reader = sub.add_parser("reader", help=COMMAND_HELP["reader"])
    reader.add_argument("--data", required=True, help="SOURCE:PATH with image labels and located findings")
    reader.add_argument("--preset", default="reader-lite0-hidden",
                        help="reader-lite0-hidden (shipped), reader-lite0, reader-lite1, reader-lite2 or "
                             "reader-lite0-finetune")
    reader.add_argument("--folds", type=int, default=5)
    reader.add_argument("--seed", type=int, default=0, help="the reported outer fold seed")
    reader.add_argument("--second-seed", type=int, default=1, help="a second outer fold seed, reported too")
    reader.add_argument("--out", required=True, type=Path)
    reader.add_argument("--resume", action="store_true",
                        help="continue a stopped run into the same --out: its finished outer folds are kept, and "
                             "images read before come from the feature cache")
    reader.add_argument("--device", default="auto",
                        help="where the frozen trunk reads the images: auto (a CUDA GPU when torch sees one), cpu or "
                             "cuda; the heads are fitted on the CPU")
    _export_options(reader)
    return parser


def _export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--export", type=Path, help="when done, export the shipped model here (an ONNX file and its "
                                                    "card) if it beats the plain baseline: as `export OUT --out`")
    parser.add_argument("--name", help="the exported model's name in the app and in predict (default: the --export "
                                       "file's name without .onnx)")
    parser.add_argument("--force", action="store_true", help="export even when it does not beat the baseline")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        preset = PRESETS.get(args.preset) if args.command in ("fit", "reader") else None
        kept = FAMILIES[preset.family].kept_on_stop if preset is not None else "Nothing was kept."
        print(f"\nmammodesk-train {args.command}: stopped (Ctrl+C). {kept}",
              file=sys.stderr)
        return 130
    except (CliError, DataError, ValueError, KeyError, FileNotFoundError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"mammodesk-train {args.command}: {message}", file=sys.stderr)
        return exc.code if isinstance(exc, CliError) else 2


def _env(args) -> int:
    import onnx
    import torch

    cuda = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    print(f"torch {torch.__version__} (CUDA {'available: ' + ', '.join(devices) if cuda else 'not available'})")
    print(f"onnx {onnx.__version__}, threads {torch.get_num_threads()}")
    return 0


DATA_HELP = {
    "manifest": "a CSV or JSON list: path, label, patient, laterality, view, finding, box, mask, spacing, birads, "
                "density (docs/TRAIN_YOUR_OWN.md); a MammoDesk findings CSV too",
    "labels": "a folder of images labelled in MammoDesk (their .mammodesk.json sidecars)",
    "mias": "the MIAS folder or its original tarball",
    "cbis": "CBIS-DDSM: the case-description CSVs and the DICOM or PNG images",
    "inbreast": "INbreast: AllDICOMs/, AllXML/ and INbreast.csv or .xls",
    "rsna": "RSNA Screening Mammography: train.csv and train_images/PATIENT/IMAGE.dcm",
    "vindr": "VinDr-Mammo: breast-level_annotations.csv, finding_annotations.csv and images/STUDY/IMAGE.dicom",
    "cmmd": "CMMD: CMMD_clinicaldata_revision.csv (or .xlsx) and the DICOM tree",
    "folder": "one sub-folder per class: normal/abnormal/benign/malignant, or density A-D, or any names (--task folder)",
    "images": "any images, unlabelled (pretraining)",
}


def _list(args) -> int:
    print("presets (mammodesk-train fit --preset; reader-lite0-hidden is the app's default second opinion):")
    for name, preset in sorted(PRESETS.items(), key=lambda item: (not FAMILIES[item[1].family].default,
                                                                  item[1].family, item[0])):
        print(f"  {name:<22} {preset.family:<10} {preset.description}")
    print("tasks (fit --task; the reader learns normal_abnormal):")
    for name, task in TASKS.items():
        print(f"  {name:<24} {task.description} [{', '.join(task.classes)}]")
    print("  folder                   the sub-folder of each image (folder:PATH data)")
    print("data sources (--data KIND:PATH):")
    for kind in SOURCES:
        print(f"  {kind + ':PATH':<22} {DATA_HELP.get(kind, '')}")
    return 0


def _preset(name: str):
    if name not in PRESETS:
        from mammodesk_train.app import did_you_mean

        raise CliError(f"unknown preset {name!r}{did_you_mean(name, PRESETS)} (presets: {', '.join(PRESETS)})")
    return PRESETS[name]


def _own_name(name: str, out: Path) -> None:
    """A model trained here never takes a bundled model's name, unless it is that model, rebuilt in place."""
    from mammodesk_train.app import resources_dir

    bundled = resources_dir() / "models"
    if (bundled / f"{name}.onnx").is_file() and out.resolve().parent != bundled.resolve():
        raise CliError(f"{name!r} is the name of a bundled model; give yours its own with --name (a model with a "
                       "bundled model's name would be mistaken for it)")


def _fit(args) -> int:
    presets = [_preset(name) for name in [args.preset, *filter(None, args.select_from.split(","))]]
    if args.epochs_scale != 1.0:
        presets = [preset.scaled(args.epochs_scale) for preset in presets]
    if len({preset.name for preset in presets}) < len(presets):
        raise CliError("--select-from: each candidate preset once (and not --preset again)")
    if args.select_folds < 2:
        raise CliError("--select-folds: at least 2 inner folds")
    learns = FAMILIES[presets[0].family].tasks
    if args.task is None:
        if learns is None or len(learns) != 1:
            raise CliError(f"--task is needed for {args.preset} (see `mammodesk-train list`)")
        args.task = learns[0]
    elif learns is not None and args.task not in learns:
        raise CliError(f"{args.preset} learns {' or '.join(learns)}, not {args.task}")
    name = _export_name(args)
    from mammodesk_train.engine import distributed, init_distributed_from_env, leave_distributed

    init_distributed_from_env()  # a no-op unless launched by torchrun
    try:
        _fit_in_group(args, presets)
        if distributed()[0] != 0:
            return 0
    finally:
        leave_distributed()
    if args.export is None:
        return 0
    from mammodesk_train.shipping import NotBetter, ship

    try:
        print(ship(args.out, args.export, name, force=args.force))
    except NotBetter as exc:
        print(f"not exported: {exc} (--force exports it anyway; its card then says so)")
        return 1
    return 0


def _export_name(args) -> str | None:
    """The exported model's name: --name, else the --export file's; never a bundled model's (checked first)."""
    if args.export is None:
        return None
    name = args.name or args.export.stem
    _own_name(name, args.export)
    return name


def _fit_in_group(args, presets) -> None:
    from mammodesk_train.data.tasks import check_task
    from mammodesk_train.families.protocol import RunOptions

    if args.out.is_dir() and any(args.out.iterdir()) and not args.resume:
        raise CliError(f"{args.out} already holds a run: --resume continues it (its finished folds are not fitted "
                       "again); two runs in one folder would mix their logs and weights, so choose another --out, or "
                       "delete that folder first")
    families = [family_for(preset, device=args.device) for preset in presets]
    if args.init is not None:
        for family in families:
            if not family.accepts_init:
                raise CliError(f"--init: the {family.preset.family} family has no trunk to start from a backbone file")
            family.init = args.init
    options = RunOptions(data=args.data, folds=args.folds, seed=args.seed, out=args.out, resume=args.resume,
                         final=not args.no_final, alternatives=tuple(families[1:]), select_folds=args.select_folds,
                         second_seed=args.second_seed)
    families[0].check(options)  # before any image is read
    records = load_source(args.data)
    task = get_task(args.task, records)
    check_task(records, task, args.folds)
    if len(task.classes) == 2:
        print(f"classes: {task.classes[0]} (0, negative), {task.classes[1]} (1, positive: AUC, sensitivity and the "
              "operating point are about it)", flush=True)
    document = families[0].evaluate(records, task, options)
    from mammodesk_train.engine import distributed

    if distributed()[0] != 0:
        return
    if args.init is not None:
        from mammodesk_train.simclr.backbone import seen_patients

        seen = seen_patients(args.init, [r.patient_key for r in records])
        run = json.loads((args.out / "run.json").read_text())
        run["init"] = {"backbone": args.init.name, "cv_patients_seen_in_pretraining": seen}
        (args.out / "run.json").write_text(json.dumps(run, indent=2))
        if seen:
            print(f"note: the backbone's pretraining saw images (not labels) of {seen} of these patients; "
                  "the CV figures are not free of that overlap", file=sys.stderr)
    print("\n".join(families[0].summary(document, args.out)))


def _pretrain(args) -> int:
    from dataclasses import replace

    from mammodesk_train.simclr.backbone import pretrain_backbone

    preset = _preset(args.preset)
    if preset.family != "simclr" or preset.pretrain is None:
        raise CliError(f"--preset {args.preset} is not a SimCLR pretraining preset (e.g. simclr-lite, simclr-paper)")
    overrides = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size),
                                   ("micro_batch", args.micro_batch)) if v is not None}
    preset = replace(preset, pretrain=replace(preset.pretrain, **overrides), width=args.width or preset.width,
                     size=args.size or preset.size)
    about = pretrain_backbone(args.data, args.out, preset, seed=args.seed, device=args.device,
                              architecture=args.architecture, windows=args.windows, window=args.window)
    print(f"{args.out}: {about['architecture']} (width {about['width']}) pretrained on {about['views']} views of "
          f"{about['images']} images; NT-Xent {about['history'][0]['loss']:.3f} -> {about['final_loss']:.3f}, "
          f"{about['views_per_s']:.0f} views/s")
    return 0


def _export(args) -> int:
    from mammodesk_train.shipping import NotBetter, ship

    name = args.name or args.run.name
    out = args.out / f"{name}.onnx" if args.out.is_dir() else args.out
    _own_name(name, out)
    try:
        print(ship(args.run, out, name, force=args.force, notes=args.note))
    except NotBetter as exc:
        raise CliError(f"refusing to export: {exc}. A model that does not beat ten lines of scikit-learn is not "
                       "worth shipping; pass --force to export it anyway (its card will say so)",
                       code=REFUSED_BY_BASELINE) from None
    return 0


def _explain(args) -> int:
    from mammodesk_train.explain import explain_run

    run = json.loads((args.run / "run.json").read_text())
    preset = _preset(run["preset"])
    if preset.family == "reader":
        raise CliError("the reader's map is its own patch classifier's, exported with it; its pointing game and "
                       "location box are measured in every outer fold of its run (report.json, and its card)")
    records = load_source(args.data)
    classes = json.loads((args.run / "metrics.json").read_text()).get("classes")
    task = get_task(run["task"], records, classes=classes)  # a folder task: the run's own classes, in its order
    family = family_for(preset, device="cpu", progress=False)
    chosen = run.get("fold_presets") or []
    fold_families = [family_for(_preset(name), device="cpu", progress=False) for name in chosen] or None
    result = explain_run(args.run, family, records, task, pointing_game=not args.no_pointing,
                         fold_families=fold_families)
    (args.run / "explain.json").write_text(json.dumps(result, indent=2))
    share = result["cam_in_breast"]
    print(f"Grad-CAM mass inside the breast: {share['mean']:.3f} ± {share['sd']:.3f} over {len(result['folds'])} folds")
    if result["pointing"]:
        p = result["pointing"]
        print(f"pointing game on {p['images']} held-out images: most positive window hits a finding "
              f"{p['window_hit_rate']:.2f} (chance {p['chance']:.2f}); CAM peak in a finding "
              f"{p['cam_peak_hit_rate'] if p['cam_peak_hit_rate'] is None else round(p['cam_peak_hit_rate'], 2)}")
    return 0


def _evaluate(args) -> int:
    from mammodesk_train.app import ModelRunner

    from mammodesk_train.metrics import classification_metrics
    from mammodesk_train.splits import patient_key_hash

    runner = ModelRunner(args.model)
    task = get_task(args.task or runner.card.task, classes=runner.card.labels)
    if tuple(task.classes) != runner.card.labels:
        raise CliError(f"task {task.name} has classes {list(task.classes)}, the model {list(runner.card.labels)}")
    records = load_source(args.data)
    from mammodesk_train.data.tasks import check_task

    check_task(records, task, 1)  # every class present, or an error naming the labels found
    trained = set(runner.card.training.get("patient_key_hashes", []))
    y, probs, overlap = [], [], 0
    for record in records:
        label = task.label(record, None)
        if label is None:
            continue
        overlap += patient_key_hash(record.patient_key) in trained
        y.append(label)
        probs.append(runner.predict(record.load()).probabilities)
    metrics = classification_metrics(np.array(y), np.array(probs), task.classes)
    metrics["providers"] = runner.providers
    metrics["training_patient_overlap"] = overlap
    if overlap:
        print(f"warning: {overlap} of {len(y)} images belong to patients the model was trained on; "
              "these figures are not test results", file=sys.stderr)
    print(f"{runner.card.name} on {args.data} ({len(y)} images, {runner.providers[0]}): accuracy "
          f"{metrics['accuracy']:.3f}, AUC {metrics['auc'] if metrics['auc'] is None else round(metrics['auc'], 3)}, "
          f"weighted F1 {metrics['f1_weighted']:.3f}")
    if args.out:
        args.out.write_text(json.dumps(metrics, indent=2))
    return 0


def _reader(args: argparse.Namespace) -> int:
    """`fit` with a reader preset, its defaults the reader's."""
    if PRESETS.get(args.preset) is None or PRESETS[args.preset].family != "reader":
        readers = [name for name, preset in PRESETS.items() if preset.family == "reader"]
        raise CliError(f"unknown reader preset {args.preset!r} (known: {', '.join(readers)})")
    fit = argparse.Namespace(**vars(args), task="normal_abnormal", select_from="", select_folds=3, epochs_scale=1.0,
                             init=None, no_final=False)
    return _fit(fit)


def _catalogue(args) -> int:
    from mammodesk_train.app import resources_dir
    from mammodesk_train.catalogue import write_catalogue

    print(f"wrote {write_catalogue(args.out or resources_dir() / 'models' / 'families.json')}")
    return 0


COMMANDS = {"catalogue": _catalogue, "reader": _reader, "env": _env, "list": _list, "fit": _fit, "pretrain": _pretrain, "export": _export,
            "explain": _explain, "evaluate": _evaluate}
