#!/usr/bin/env bash
# One entry point that does all set-up on a fresh machine, then runs a justfile recipe:
#   bash scripts/dev.sh run       # build morsd (cargo's progress shown) and run experiments/quickstart.toml
#   bash scripts/dev.sh test      # build and run the whole test suite
#   bash scripts/dev.sh install   # put `morsd` on the PATH (a symlink to the build; see the justfile)
# Needs only cargo and python3 (both on the machine image); installs `just` from PyPI if absent.
# `run` says up front what it builds and how long that takes, and ends with where the binary
# is, how to put it on the PATH and what to try next.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/morsd-target}"
if ! command -v just >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check rust-just >&2
    export PATH="$HOME/.local/bin:$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
fi
if [ "${1:-}" != run ] || [ $# -gt 1 ]; then
    exec just "$@"
fi
bin="$CARGO_TARGET_DIR/debug/morsd"
if [ -x "$bin" ]; then
    echo "morsd: building morsd into $CARGO_TARGET_DIR (incremental: seconds to ~3 min), then running experiments/quickstart.toml (about 1½ min on 2 cores)" >&2
else
    echo "morsd: first build: compiling morsd and its dependency tree (burn, polars, tokenizers, plotters; ~500 crates) into $CARGO_TARGET_DIR; about 16–25 min on 2 cores, progress below; then the quickstart (about 1½ min)" >&2
fi
start=$(date +%s)
just run
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if [ "$(readlink -f "$cargo_bin/morsd" 2>/dev/null)" = "$(readlink -f "$bin")" ]; then
    path_line="morsd is already linked into the PATH: $cargo_bin/morsd -> $bin"
else
    path_line="put it on the PATH:  bash scripts/dev.sh install   (= ln -sf \"$bin\" \"$cargo_bin/morsd\"; reuses this build, compiles nothing)"
fi
cat <<MSG

morsd: done in $(( $(date +%s) - start )) s.
The binary: $bin
$path_line
Next:
  xdg-open results/quickstart/report.html       # or open file://$PWD/results/quickstart/report.html: charts, runs, rationale browser
  morsd plan experiments/quickstart.toml        # every stage is fresh now; \`morsd run\` again takes about a second
  morsd run experiments/quickstart.toml --jobs 2 --set 'experiment.seeds=[0,1,2,3,4,5]'   # more seeds, narrower CIs (≈ 1½ min more)
  morsd run experiments/paper/ablation-k.toml --jobs 2   # morsd over k: 5 budgets × 6 seeds, 1000 test questions (≈ 25 min)
  morsd data list                               # real tasks and recorded rationales under MORSD_DATA
  bash scripts/dev.sh test                      # the test suite
Your runs go to results/ (untracked); the committed reference results are in reference/.
MSG
