#!/usr/bin/env bash
# Installs PyTorch (CPU use; PyPI's Linux wheel, which brings its CUDA libraries along) for the
# `just bench` baseline (and, for `just bench-tch`, the libtorch that burn-tch builds against:
# tch 0.22 wants exactly 2.9.0), once, under $MORSD_TORCH_HOME (default $HOME/.cache/morsd-torch).
# Prints the path the bench reads (MORSD_TORCH_PYTHON).
set -euo pipefail
home="${MORSD_TORCH_HOME:-$HOME/.cache/morsd-torch}"
if ! "$home/bin/python" -c "import torch" >/dev/null 2>&1; then
    python3 -m venv "$home"
    "$home/bin/pip" install --quiet --disable-pip-version-check "torch==2.9.0" numpy >&2
fi
printf "MORSD_TORCH_PYTHON=%q\n" "$home/bin/python"
