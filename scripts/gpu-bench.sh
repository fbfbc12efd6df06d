#!/usr/bin/env bash
# The student bench on a GPU machine (one short run; see README "GPU"). Builds morsd with the
# `wgpu` feature (and, when PyTorch 2.9 is importable, `tch` against its libtorch), then runs
# examples/bench.rs with MORSD_DEVICE=wgpu (and tch) and PyTorch as the baseline. Tables go to
# $OUT (default results/bench/gpu/).
#   usage: bash scripts/gpu-bench.sh        (needs the SmolLM2 GGUF: MORSD_SMOLLM2_GGUF or `just models`)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-results/bench/gpu}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$out/device.txt" 2>/dev/null || true
py="${MORSD_TORCH_PYTHON:-}"
if [ -z "$py" ]; then
    eval "$(bash scripts/setup-torch.sh | sed 's/^/export /')"
    py="$MORSD_TORCH_PYTHON"
fi
# 1. wgpu (Vulkan on the GPU).
cargo build --quiet --features wgpu --example bench
MORSD_DEVICE=wgpu "${CARGO_TARGET_DIR:-target}/debug/examples/bench" "$out/wgpu.md" "$py" | tee "$out/wgpu.log"
# 2. tch (libtorch from the PyTorch wheel), if that PyTorch is 2.9.
if "$py" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.9') else 1)"; then
    torch_lib="$("$py" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
    export LIBTORCH_USE_PYTORCH=1 LD_LIBRARY_PATH="$torch_lib:${LD_LIBRARY_PATH:-}"
    PATH="$(dirname "$py"):$PATH" cargo build --quiet --features tch --example bench
    MORSD_DEVICE=tch "${CARGO_TARGET_DIR:-target}/debug/examples/bench" "$out/tch.md" "$py" | tee "$out/tch.log"
fi
