#!/usr/bin/env bash
# `just reproduce-cpu`: the CPU study of experiments/paper/ in one go, from an empty cache, and
# results/paper/README.md recording how it ran: wall time per spec and in all, the commit, the
# versions, the machine, and that the cache started empty.
# MORSD_STUDY_CACHE names the cache (default: a new empty folder under .morsd/); reusing a
# non-empty one resumes a study, and the README then says the cache was not empty.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$CARGO_TARGET_DIR/debug/morsd"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
export MORSD_CACHE="${MORSD_STUDY_CACHE:-.morsd/study-$stamp}"
mkdir -p "$MORSD_CACHE" results/paper
entries_before=$(find "$MORSD_CACHE" -name manifest.json 2>/dev/null | wc -l)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l)
start=$(date +%s)
rows=""
for s in main-synthetic ablation-k rd-minmax main-smollm2 main-svamp; do
    t0=$(date +%s)
    "$bin" run "experiments/paper/$s.toml" --jobs 2
    rows+="| \`morsd run experiments/paper/$s.toml --jobs 2\` | $(( $(date +%s) - t0 )) s |"$'\n'
done
"$bin" paper results/paper --setting experiments/paper/SETTING.md >/dev/null
total=$(( $(date +%s) - start ))
{
    echo "# results/paper — how this study ran"
    echo
    echo "Written by \`just reproduce-cpu\` (scripts/reproduce-cpu.sh); the claims are in \`CLAIMS.md\`."
    echo
    echo "- Started $(date -u -d "@$start" +%Y-%m-%dT%H:%M:%SZ), wall time **$(( total / 60 )) min $(( total % 60 )) s** in all."
    echo "- Commit $commit$( [ "$dirty" -gt 0 ] && echo " with $dirty modified tracked file(s)")."
    echo "- $("$bin" --version), $(rustc --version 2>/dev/null || echo 'rustc unknown'), burn $(grep -m1 -o 'burn = { version = "=[0-9.]*' Cargo.toml | grep -o '[0-9.]*$'), backend ${MORSD_DEVICE:-flex}."
    echo "- Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB."
    echo "- Cache \`$MORSD_CACHE\`: $entries_before entries at the start$( [ "$entries_before" -eq 0 ] && echo ' (empty: every stage ran in this invocation)')."
    echo
    echo "| step | wall time |"
    echo "|---|---|"
    printf '%s' "$rows"
    echo "| \`morsd paper results/paper --setting experiments/paper/SETTING.md\` | – |"
} > results/paper/README.md
echo "results/paper/README.md: $(( total / 60 )) min $(( total % 60 )) s in all"
