#!/usr/bin/env bash
# One entry point that does all set-up on a fresh machine, then runs a justfile recipe:
#   bash scripts/dev.sh run     # build morsd and run experiments/quickstart.toml
#   bash scripts/dev.sh test    # build and run the whole test suite
# Needs only cargo and python3 (both on the machine image); installs `just` from PyPI if absent.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/morsd-target}"
if ! command -v just >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check rust-just >&2
    export PATH="$HOME/.local/bin:$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
fi
exec just "$@"
