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

# The whole test suite (sets up the llama.cpp server and finds the shared data root first).
test: setup-llama
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(bash scripts/setup-llama.sh | sed 's/^/export /')"
    export MORSD_DATA="${MORSD_DATA:-$(cd .. && pwd)/shared/data}"
    cargo test --no-fail-fast

# Throughput of the scratch student (train step, RD scoring, greedy decoding) → results/bench/bench.md,
# and of the openai teacher through morsd vs direct → results/bench/teacher.md
bench: setup-llama
    cargo run --quiet --example bench -- results/bench/bench.md
    cargo run --quiet --example bench_teacher -- results/bench/teacher.md

# The paper-style ablation on the embedded default (rationales per question × strategy × seed).
reproduce:
    cargo run --quiet --bin morsd -- run experiments/ablation-k.toml --jobs 2
