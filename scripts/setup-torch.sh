#!/usr/bin/env bash
# Installs PyTorch (CPU use; PyPI's Linux wheel, which brings its CUDA libraries along) for the
# `just bench` baseline (and, for `just bench-tch`, the libtorch that burn-tch builds against:
# tch 0.22 wants exactly 2.9.0), plus transformers and PEFT, the real consumers the export tests
# load morsd's exports with (tests/export.rs, scripts/check_export.py), once, under
# $MORSD_TORCH_HOME (default $HOME/.cache/morsd-torch). About 7 GB, 3–4 minutes from PyPI.
# Prints the path the bench and the tests read (MORSD_TORCH_PYTHON).
set -euo pipefail
home="${MORSD_TORCH_HOME:-$HOME/.cache/morsd-torch}"
if ! "$home/bin/python" -c "import torch, transformers, peft" >/dev/null 2>&1; then
    [ -x "$home/bin/pip" ] || python3 -m venv "$home"
    "$home/bin/pip" install --quiet --disable-pip-version-check "torch==2.9.0" numpy \
        "transformers==4.57.3" "peft==0.17.1" >&2
fi
printf "MORSD_TORCH_PYTHON=%q\n" "$home/bin/python"
