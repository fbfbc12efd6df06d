#!/usr/bin/env bash
# Installs what the report test (tests/report_html.rs) drives: headless Chromium from Debian's
# packages (`apt-get install -y chromium`; needs root and apt, as scripts/slurm-up.sh does).
# Does nothing when a Chromium is already there. Prints the path the test reads
# (MORSD_CHROMIUM=...), for `eval "$(bash scripts/setup-browser.sh | sed 's/^/export /')"`.
# Without root or apt it prints nothing and says why on stderr: the test then skips, unless CI
# is set, where it fails.
set -euo pipefail
find_chromium() {
    if [ -n "${MORSD_CHROMIUM:-}" ] && [ -x "$MORSD_CHROMIUM" ]; then echo "$MORSD_CHROMIUM"; return; fi
    command -v chromium || command -v chromium-browser || command -v google-chrome || true
}
bin="$(find_chromium)"
if [ -z "$bin" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "setup-browser: no chromium, and no root + apt-get to install it (tests/report_html.rs will skip unless CI is set)" >&2
        exit 0
    fi
    echo "setup-browser: installing Debian's chromium (apt-get install -y chromium) ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        apt-get update -qq >&2
    fi
    apt-get install -y -qq chromium >&2
    bin="$(find_chromium)"
fi
if [ -n "$bin" ]; then
    printf 'MORSD_CHROMIUM=%q\n' "$bin"
fi
