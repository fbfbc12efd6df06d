#!/usr/bin/env bash
# The environment a `--features tch` build and run need, given the python of the PyTorch venv
# (scripts/setup-torch.sh): burn-tch 0.22.1's torch-sys links against that wheel's libtorch
# (LIBTORCH_USE_PYTORCH=1; tch 0.22 wants torch 2.9.0 exactly), the venv's python first on the
# PATH for torch-sys's build script, libtorch's folder on LD_LIBRARY_PATH for the binaries, and a
# target dir of its own ($CARGO_TARGET_DIR-tch) so the default build keeps its burn features.
# Prints the variables as NAME=value lines (values %q-quoted).
set -euo pipefail
py="$1"
lib="$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
ver="$("$py" -c 'import torch; print(torch.__version__.split("+")[0])')"
if [ "$ver" != 2.9.0 ]; then
    echo "setup-tch: $py has torch $ver; burn-tch 0.22 (tch 0.22) needs torch 2.9.0" >&2
    exit 1
fi
target="${CARGO_TARGET_DIR:-$HOME/.cache/morsd-target}"
case "$target" in *-tch) ;; *) target="$target-tch" ;; esac
printf "LIBTORCH_USE_PYTORCH=1\n"
printf "PATH=%q\n" "$(dirname "$py"):$PATH"
printf "LD_LIBRARY_PATH=%q\n" "$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
printf "CARGO_TARGET_DIR=%q\n" "$target"
