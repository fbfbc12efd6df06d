#!/usr/bin/env bash
# `just reproduce-cpu`: the CPU study of experiments/paper/ in one go, from an empty cache, and
# results/paper/README.md recording how it ran: wall time per spec and in all, the commit, the
# versions, the machine, and that the cache started empty.
# MORSD_STUDY_CACHE names the cache (default: a new empty folder under .morsd/); reusing a
# non-empty one resumes a study, and the README then says the cache was not empty.
# MORSD_STUDY_SPECS runs a piece: some of the specs (default: all five, in order). Every
# invocation appends its rows to study-log.tsv in the cache, so a study run in pieces on one
# cache gets one README listing each piece: when it started, at which commit, its wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
# MORSD_BIN: the binary to run (default: the debug build), so that a long study keeps one binary
# while the tree is rebuilt beside it.
bin="${MORSD_BIN:-$CARGO_TARGET_DIR/debug/morsd}"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
export MORSD_CACHE="${MORSD_STUDY_CACHE:-.morsd/study-$stamp}"
mkdir -p "$MORSD_CACHE" results/paper
entries_before=$(find "$MORSD_CACHE" -name manifest.json 2>/dev/null | wc -l)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l)
start=$(date +%s)
log="$MORSD_CACHE/study-log.tsv"
piece=$(date -u -d "@$start" +%Y-%m-%dT%H:%M:%SZ)
for s in ${MORSD_STUDY_SPECS:-main-synthetic ablation-k rd-minmax main-smollm2 main-svamp}; do
    t0=$(date +%s)
    "$bin" run "experiments/paper/$s.toml" --jobs 2
    printf '%s\t%s\t%s\t%s\t%s\n' "$piece" "$commit" "$entries_before" "$s" "$(( $(date +%s) - t0 ))" >> "$log"
done
rows=$(awk -F'\t' '{printf "| %s | %s | %s | `morsd run experiments/paper/%s.toml --jobs 2` | %s s |\n", $1, $2, $3, $4, $5}' "$log")
pieces=$(cut -f1 "$log" | sort -u | wc -l)
all_s=$(awk -F'\t' '{t += $5} END {print t + 0}' "$log")
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
    echo "- Cache \`$MORSD_CACHE\`: $entries_before entries at the start of this invocation$( [ "$entries_before" -eq 0 ] && echo ' (empty: every stage ran in this invocation)')."
    echo "- $pieces piece(s) on this cache, $(( all_s / 60 )) min $(( all_s % 60 )) s of \`morsd run\` in all (the table: one row per spec and piece; \"entries\" is the cache's entry count when the piece started)."
    echo
    echo "| piece started | commit | entries | step | wall time |"
    echo "|---|---|---|---|---|"
    printf '%s\n' "$rows"
    echo "| $piece | $commit | – | \`morsd paper results/paper --setting experiments/paper/SETTING.md\` | – |"
} > results/paper/README.md
echo "results/paper/README.md: $(( total / 60 )) min $(( total % 60 )) s in all"
