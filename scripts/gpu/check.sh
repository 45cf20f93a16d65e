#!/usr/bin/env bash
# Runs on an offline NVIDIA host from the repository root, after scripts/gpu/pack.sh made .gpu/:
# unpacks Node, the Vulkan loader and the app under /tmp, points Vulkan at the NVIDIA ICD, and runs the
# GPU check (bench/gpu-check.ts), then the training benchmark on webgpu. Exits non-zero if WebGPU does
# not come up on a GPU adapter (a silent CPU fallback would be 30x slower). Output also goes to
# $OUT/gpu-check.log when OUT is set. VK_ICD, TRAIN_BATCHES and TRAIN_STEPS override the defaults.
set -euo pipefail
work=/tmp/modestream-gpu
mkdir -p "$work"
xz -dc .gpu/node.xz > "$work/node" && chmod +x "$work/node"
for deb in .gpu/debs/*.deb; do dpkg -x "$deb" /; done
ldconfig
icd=${VK_ICD:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
tar -xJf .gpu/app.tar.xz -C "$work"
log=${OUT:-$work}/gpu-check.log
cd "$work/app"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | tee "$log" || true
set -o pipefail
"$work/node" dist/bench/gpu-check.js --backend webgpu "$@" 2>&1 | tee -a "$log"
"$work/node" dist/bench/train.js --backends webgpu --batches "${TRAIN_BATCHES:-256,1024,4096}" ${TRAIN_STEPS:+--steps "$TRAIN_STEPS"} 2>&1 | tee -a "$log"
