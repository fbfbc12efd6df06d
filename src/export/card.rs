//! The model card (`README.md`) of every export: a Hugging Face card with YAML front matter
//! (`base_model`, `library_name`, tags), then what the student is: its base (with content
//! hash), the spec and run, the selection strategy and how many rationales it trained on, test
//! accuracy with its 95 % Wilson interval, the morsd version and commit, how to load the files,
//! and the spec itself.

use super::{Format, Loaded, Options, RunInfo};
use crate::error::{IoContext, Result};
use std::fmt::Write as _;
use std::path::Path;

/// The commit morsd was built from: `MORSD_GIT_COMMIT` at build time, else the source tree's
/// `git rev-parse HEAD` (with `-dirty` when it has changes), else `unknown`.
pub fn commit() -> String {
    if let Some(c) = option_env!("MORSD_GIT_COMMIT") {
        return c.to_string();
    }
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(head) if !head.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{head}-dirty") } else { head }
        }
        _ => "unknown".into(),
    }
}

/// Writes `dir/README.md`.
pub fn write(
    dir: &Path,
    info: &RunInfo,
    loaded: &Loaded,
    opts: &Options<'_>,
    gguf_file: Option<&str>,
) -> Result<()> {
    let mut s = String::new();
    // 1. Front matter the Hub reads.
    s.push_str("---\n");
    if let Some(id) = loaded.base.as_ref().and_then(|b| b.hub_id.as_ref()) {
        let _ = writeln!(s, "base_model: {id}");
    }
    let library = match opts.format {
        Format::Hf => "transformers",
        Format::Peft => "peft",
        Format::Gguf => "gguf",
    };
    let _ = writeln!(s, "library_name: {library}");
    s.push_str("tags:\n  - morsd\n  - chain-of-thought\n  - distillation\n  - rationale-selection\n---\n\n");
    // 2. What it is.
    let _ = writeln!(s, "# {} — {}\n", info.experiment, info.label);
    let _ = writeln!(
        s,
        "A student distilled by [morsd](https://arxiv.org/abs/2509.23574)-style chain-of-thought distillation: fine-tuned on teacher rationales chosen by a selection strategy, to write a rationale and then the answer.\n"
    );
    s.push_str("| | |\n|---|---|\n");
    match &loaded.base {
        Some(b) => {
            let lora = loaded
                .family
                .lora
                .as_ref()
                .map(|l| {
                    format!(
                        "; LoRA r = {}, α = {}, on {}",
                        l.rank,
                        l.alpha,
                        l.targets.join(", ")
                    )
                })
                .unwrap_or_else(|| "; every weight fine-tuned".into());
            let _ = writeln!(
                s,
                "| base model | `{}`{} (content hash `{}`){} |",
                b.weights,
                b.hub_id
                    .as_ref()
                    .map(|h| format!(" = {h}"))
                    .unwrap_or_default(),
                &b.content_hash[..16],
                lora
            );
        }
        None => {
            let _ = writeln!(
                s,
                "| base model | none: a scratch transformer trained from random initialisation |"
            );
        }
    }
    let sets = if info.sets.is_empty() {
        String::new()
    } else {
        format!(" with `--set {}`", info.sets.join(" --set "))
    };
    let _ = writeln!(s, "| spec | `{}`{sets} |", info.spec_path.display());
    let _ = writeln!(
        s,
        "| run | `{}` (train entry `{}`) |",
        info.label, info.train_key
    );
    let _ = writeln!(s, "| task | {} |", info.task);
    let _ = writeln!(
        s,
        "| selection | `{}`, {} rationale(s) per question |",
        info.strategy, info.per_question
    );
    let num = |k: &str| info.train_metrics.get(k).and_then(|v| v.as_f64());
    if let Some(r) = num("rationales") {
        let _ = writeln!(s, "| rationales trained on | {r} |");
    }
    if let Some(t) = num("training_tokens") {
        let _ = writeln!(s, "| training tokens | {t} |");
    }
    if let Some(st) = num("steps") {
        let _ = writeln!(s, "| optimiser steps | {st} |");
    }
    match &info.eval_metrics {
        Some(m) => {
            let (c, n) = (
                m["correct"].as_f64().unwrap_or(0.0),
                m["total"].as_f64().unwrap_or(0.0),
            );
            if n > 0.0 {
                let p = c / n;
                let z = 1.96f64;
                let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
                let half = crate::report::stats::wilson_half(p, n);
                let _ = writeln!(
                    s,
                    "| test accuracy | {:.1} % ({c} / {n}); 95 % Wilson interval [{:.1}, {:.1}] % |",
                    100.0 * p,
                    100.0 * (centre - half).max(0.0),
                    100.0 * (centre + half).min(1.0)
                );
            }
        }
        None => {
            s.push_str("| test accuracy | not evaluated (the run's eval stage has no entry) |\n")
        }
    }
    let _ = writeln!(
        s,
        "| morsd | {} (commit `{}`) |\n",
        env!("CARGO_PKG_VERSION"),
        commit()
    );
    s.push_str("One run is one seed: compare strategies over seeds with `morsd report` / `morsd paper`, not from this card.\n\n");
    // 3. How to load it.
    s.push_str("## Use\n\n");
    match opts.format {
        Format::Hf => s.push_str(
            "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\ntok = AutoTokenizer.from_pretrained(\"PATH\")\nmodel = AutoModelForCausalLM.from_pretrained(\"PATH\")\nids = tok(\"Q: ...\\nA:\", return_tensors=\"pt\").input_ids\nprint(tok.decode(model.generate(ids, max_new_tokens=128, do_sample=False)[0]))\n```\n\nvLLM: `vllm serve PATH`. lm-evaluation-harness: `lm_eval --model hf --model_args pretrained=PATH`.\n",
        ),
        Format::Gguf => {
            let f = gguf_file.unwrap_or("model.gguf");
            let _ = write!(
                s,
                "llama.cpp: `llama-server -m {f}` (an OpenAI-compatible server), or `llama-cli -m {f} -p \"Q: ...\"`.\n\nOllama: a `Modelfile` with the line `FROM ./{f}`, then `ollama create my-student -f Modelfile` and `ollama run my-student`.\n"
            );
        }
        Format::Peft => s.push_str(
            "```python\nfrom transformers import AutoModelForCausalLM\nfrom peft import PeftModel\nbase = AutoModelForCausalLM.from_pretrained(\"BASE\")  # the base named in base.json (or ./base with --with-base)\nmodel = PeftModel.from_pretrained(base, \"PATH\")\n```\n\n`base.json` holds the base checkpoint's file hashes: the adapters belong to exactly that base.\n",
        ),
    }
    // 4. The prompt format and the spec.
    s.push_str("\nThe student was trained on morsd's student format (see the spec's `student.format`); prompt it the same way.\n\n## Spec\n\n```toml\n");
    s.push_str(&info.spec_text);
    if !info.spec_text.ends_with('\n') {
        s.push('\n');
    }
    s.push_str("```\n");
    let p = dir.join("README.md");
    std::fs::write(&p, s).at(&p)
}
