//! `morsd export` against the real consumers of each format, driving the binary in a fresh
//! folder: transformers loads the Hugging Face folder (logits within 1e-4 of morsd's on the
//! same ids, alone and in a left-padded batch; the same greedy continuation; the same
//! tokenisation), PEFT loads the adapters onto the base (the same logits as morsd's LoRA
//! student), llama.cpp loads the GGUF (the same greedy continuation), and a GGUF export used
//! as `student.weights` gives the RD numbers of the entry it came from.
//!
//! A tiny random Llama with LoRA and a scratch student (GPT-2 folder) run in seconds; the
//! SmolLM2-135M LoRA student (a short run) takes a few minutes. Needs scripts/setup-torch.sh
//! (torch, transformers, peft: MORSD_TORCH_PYTHON) and scripts/setup-llama.sh (llama.cpp:
//! MORSD_LLAMA_PYTHON, MORSD_SMOLLM2_GGUF); `just test` runs both.

mod common;
#[path = "common/tiny_llama.rs"]
mod tiny;

use candle_core::quantized::GgmlDType;
use common::{Project, text};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn torch_python() -> PathBuf {
    let py = std::env::var_os("MORSD_TORCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/morsd-torch/bin/python")
        });
    assert!(
        py.exists(),
        "run scripts/setup-torch.sh first (missing {})",
        py.display()
    );
    py
}

fn python_json(py: &Path, script: &str, args: &[&str]) -> Value {
    let out = std::process::Command::new(py)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scripts")
                .join(script),
        )
        .args(args)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .env("TOKENIZERS_PARALLELISM", "false")
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap();
    serde_json::from_str(line).unwrap()
}

/// The one train entry of the project's cache.
fn train_entry(p: &Project) -> PathBuf {
    p.entry("train")
}

/// morsd's view of a student (a train entry, a .gguf, a folder): `generate --dump`.
fn morsd_dump(p: &Project, student: &Path, prompts: &[&str], new: usize, dump: &Path) -> Value {
    let mut args = vec![
        "generate".to_string(),
        "--student".into(),
        student.display().to_string(),
        "--max-new-tokens".into(),
        new.to_string(),
        "--dump".into(),
        dump.display().to_string(),
    ];
    for q in prompts {
        args.push("--prompt".into());
        args.push(q.to_string());
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = p.morsd(&a);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&std::fs::read(dump.join("tokens.json")).unwrap()).unwrap()
}

/// `morsd export SPEC` with whitespace-separated `args` and `--out out`.
fn export_to(p: &Project, args: &str, out: &Path) -> std::process::Output {
    let mut a: Vec<&str> = args.split_whitespace().collect();
    a.extend(["--out", out.to_str().unwrap()]);
    export(p, &a)
}

/// As [`export_to`], and it must succeed.
fn export_ok(p: &Project, args: &str, out: &Path) {
    let o = export_to(p, args, out);
    assert!(o.status.success(), "export {args}: {}", text(&o));
}

/// scripts/check_export.py on an export (`kind` hf or peft) against morsd's dump.
fn check_export(kind: &str, dir: &Path, base: Option<&Path>, dump: &Path, new: usize) -> Value {
    check_export_with(kind, dir, base, dump, new, &[])
}

/// [`check_export`] with more arguments for the script (`--no-cache`).
fn check_export_with(
    kind: &str,
    dir: &Path,
    base: Option<&Path>,
    dump: &Path,
    new: usize,
    extra: &[&str],
) -> Value {
    let (dir, dump, new) = (
        dir.to_str().unwrap(),
        dump.to_str().unwrap(),
        new.to_string(),
    );
    let mut args = vec![
        "--kind",
        kind,
        "--dir",
        dir,
        "--dump",
        dump,
        "--new-tokens",
        &new,
    ];
    if let Some(b) = base {
        args.extend(["--base", b.to_str().unwrap()]);
    }
    args.extend_from_slice(extra);
    python_json(&torch_python(), "check_export.py", &args)
}

fn export(p: &Project, args: &[&str]) -> std::process::Output {
    let spec = p.spec();
    let mut a = vec!["export", spec.to_str().unwrap()];
    a.extend_from_slice(args);
    p.morsd(&a)
}

/// transformers (or PEFT) on the export agrees with morsd's dump.
fn assert_transformers_agree(got: &Value, ours: &Value, tol: f64, check_tokenizer: bool) {
    for (i, (g, o)) in got["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(ours.as_array().unwrap())
        .enumerate()
    {
        let d = g["max_abs_diff"].as_f64().unwrap();
        eprintln!(
            "prompt {i}: max |Δlogit| {d:.2e} (logits up to {:.1}), padded batch {:.2e}, greedy {} tokens {}",
            g["max_abs_logit"].as_f64().unwrap_or(0.0),
            g["batch_max_abs_diff"].as_f64().unwrap_or(0.0),
            o["continuation_ids"].as_array().map_or(0, Vec::len),
            if g["continuation_ids"] == o["continuation_ids"] {
                "equal"
            } else {
                "DIFFER"
            }
        );
        assert!(
            d < tol,
            "prompt {i}: max |Δlogit| {d} (logits up to {})",
            g["max_abs_logit"]
        );
        assert!(
            g["batch_max_abs_diff"].as_f64().unwrap() < tol,
            "prompt {i}: padded batch {}",
            g["batch_max_abs_diff"]
        );
        assert_eq!(
            g["continuation_ids"], o["continuation_ids"],
            "prompt {i}: greedy continuation"
        );
        if check_tokenizer {
            assert_eq!(g["tokenizer_ids"], o["ids"], "prompt {i}: tokenizer");
        }
    }
}

/// llama.cpp's view of each prompt (scripts/gguf_greedy.py) at context `n_ctx`: its own
/// tokenisation of the text (`ids`) and its greedy continuation of morsd's ids
/// (`continuation_ids`).
fn llama_cpp_prompts(gguf: &Path, ours: &Value, new: usize, n_ctx: usize) -> Vec<Value> {
    let (py, _) = common::llama::llama_paths();
    let req: Vec<Value> = ours
        .as_array()
        .unwrap()
        .iter()
        .map(|o| serde_json::json!({"text": o["prompt"], "ids": o["ids"]}))
        .collect();
    let rp = gguf.with_extension("request.json");
    std::fs::write(&rp, serde_json::to_string(&req).unwrap()).unwrap();
    let got = python_json(
        &py,
        "gguf_greedy.py",
        &[
            "--gguf",
            gguf.to_str().unwrap(),
            "--request",
            rp.to_str().unwrap(),
            "--new-tokens",
            &new.to_string(),
            "--n-ctx",
            &n_ctx.to_string(),
        ],
    );
    got["prompts"].as_array().unwrap().clone()
}

/// llama.cpp's greedy continuation of morsd's prompt ids.
fn llama_cpp_greedy(gguf: &Path, ours: &Value, new: usize) -> Vec<Value> {
    llama_cpp_prompts(gguf, ours, new, 512)
        .iter()
        .map(|p| p["continuation_ids"].clone())
        .collect()
}

fn continuations(ours: &Value) -> Vec<Value> {
    ours.as_array()
        .unwrap()
        .iter()
        .map(|o| o["continuation_ids"].clone())
        .collect()
}

fn only_file(dir: &Path, ext: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == ext))
        .unwrap()
}

const TINY_PROMPTS: [&str; 3] = [
    "Q: Ann has 3 apples and buys 4 more. How many?\nA:",
    "Q: A coin is heads up. Bob flips it.\nA:",
    "Q: 7 + 5?\nA: 7 + 5 = 12. The answer is",
];

fn tiny_lora_spec(weights: &Path) -> String {
    common::TINY.replace(
        "[student]\nd_model = 32\nlayers = 1\nheads = 2\nmax_seq_len = 96\nvocab_size = 320",
        &format!(
            "[student]\nkind = \"llama\"\nweights = {:?}\nmax_seq_len = 96\nlora_rank = 4\nlora_targets = [\"q_proj\", \"v_proj\", \"down_proj\"]",
            weights.display().to_string()
        ),
    )
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn a_tiny_llama_lora_run_exports_to_hf_peft_and_gguf_and_each_consumer_agrees() {
    let models = tempfile::tempdir().unwrap();
    let t = tiny::write(models.path(), 11, GgmlDType::F32);
    let p = Project::new(&tiny_lora_spec(&t.hf));
    let out = p.morsd(&["run", p.spec().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let entry = train_entry(&p);
    let x = p.path().join("exports");
    let dump = p.path().join("dump");

    // 1. Without --run: the runs are listed and nothing is written.
    let o = export_to(&p, "--format hf", &x.join("hf"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("seed=0") && text(&o).contains("%"),
        "{}",
        text(&o)
    );
    assert!(!x.join("hf").exists());
    // A selector that fits nothing, and one naming an unswept key.
    let o = export_to(&p, "--run seed=5 --format hf", &x.join("o"));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("fits no run"), "{}", text(&o));
    let o = export_to(&p, "--run select.k=3 --format hf", &x.join("o"));
    assert!(text(&o).contains("not swept"), "{}", text(&o));

    // 2. hf: transformers loads it and agrees with morsd's LoRA student.
    let hf = x.join("hf");
    export_ok(&p, "--run seed=0 --format hf", &hf);
    let ours = morsd_dump(&p, &entry, &TINY_PROMPTS, 12, &dump);
    let got = check_export("hf", &hf, None, &dump, 12);
    assert_transformers_agree(&got, &ours, 1e-4, true);
    let card = std::fs::read_to_string(hf.join("README.md")).unwrap();
    for want in [
        "test accuracy",
        "LoRA r = 4",
        "content hash",
        "strategy = \"morsd\"",
        "library_name: transformers",
    ] {
        assert!(card.contains(want), "model card lacks {want:?}:\n{card}");
    }
    // The same key prefix selects the same run; a non-empty --out needs --force.
    let key = entry.file_name().unwrap().to_str().unwrap()[..10].to_string();
    let o = export_to(&p, &format!("--run {key} --format hf"), &hf);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    export_ok(
        &p,
        &format!("--run {key} --format hf --dtype bf16 --force"),
        &hf,
    );
    assert_eq!(
        read_json(&hf.join("config.json"))["torch_dtype"],
        "bfloat16"
    );

    // 3. peft: PEFT puts the adapters on the base folder and gives morsd's logits.
    let pf = x.join("peft");
    export_ok(&p, "--run seed=0 --format peft", &pf);
    let got = check_export("peft", &pf, Some(&t.hf), &dump, 12);
    assert_transformers_agree(&got, &ours, 1e-4, false);
    let base = read_json(&pf.join("base.json"));
    assert_eq!(base["content_hash"].as_str().unwrap().len(), 64);

    // 4. gguf (f32): llama.cpp continues as morsd does, and as student.weights it gives the
    //    entry's answer NLLs (the RD numerator and denominator).
    let gg = x.join("gguf");
    export_ok(&p, "--run seed=0 --format gguf --dtype f32", &gg);
    let file = only_file(&gg, "gguf");
    assert_eq!(llama_cpp_greedy(&file, &ours, 12), continuations(&ours));
    let device = morsd::device_from_env().unwrap();
    let (trained, tok) = morsd::student::load::load_student(&entry, &device).unwrap();
    let p2 = morsd::student::load_named(file.to_str().unwrap(), 96, &device).unwrap();
    let (exported, tok2) = (p2.model, p2.tok);
    let pairs: Vec<(String, String)> = TINY_PROMPTS
        .iter()
        .map(|q| (q.to_string(), " 7.".to_string()))
        .collect();
    assert_eq!(tok.encode(TINY_PROMPTS[0]), tok2.encode(TINY_PROMPTS[0]));
    let a = morsd::student::score::answer_nll(&trained, &tok, &pairs, 4, &device);
    let b = morsd::student::score::answer_nll(&exported, &tok2, &pairs, 4, &device);
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() < 1e-5,
            "answer NLL {x} (entry) vs {y} (exported gguf)"
        );
    }
    // An export that cannot go through leaves nothing behind.
    let o = export_to(
        &p,
        "--run seed=0 --format gguf --dtype bf16",
        &x.join("bad"),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(!x.join("bad").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&x)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A family fixture (tests/fixtures/families) as a LoRA run's project: `edits` replaces keys of
/// its `config.json` in a copy (a variant llama.cpp's graph can run), kept in the returned
/// folder.
fn family_project(name: &str, edits: &Value, max_seq_len: usize) -> (Project, tempfile::TempDir) {
    family_project_with(name, edits, None, max_seq_len)
}

/// [`family_project`], with the tokenizer files of tests/fixtures/tokenizers/`tokenizer` (if
/// any) in place of the fixture's own.
fn family_project_with(
    name: &str,
    edits: &Value,
    tokenizer: Option<&str>,
    max_seq_len: usize,
) -> (Project, tempfile::TempDir) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let copy = tempfile::tempdir().unwrap();
    let dirs = [
        Some(fixtures.join("families").join(name)),
        tokenizer.map(|t| fixtures.join("tokenizers").join(t)),
    ];
    for dir in dirs.iter().flatten() {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), copy.path().join(e.file_name())).unwrap();
            }
        }
    }
    let cfg_path = copy.path().join("config.json");
    let mut cfg = read_json(&cfg_path);
    for (k, v) in edits.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    let targets = match name {
        "phi3" => r#"["qkv_proj", "down_proj"]"#,
        "gpt2" => r#"["c_attn", "c_fc"]"#,
        "t5" | "flan-t5" => r#"["q", "v"]"#,
        _ => r#"["q_proj", "v_proj", "down_proj"]"#,
    };
    let spec = tiny_lora_spec(copy.path())
        .replace("kind = \"llama\"", "kind = \"pretrained\"")
        .replace(r#"["q_proj", "v_proj", "down_proj"]"#, targets)
        .replace("max_seq_len = 96", &format!("max_seq_len = {max_seq_len}"));
    (Project::new(&spec), copy)
}

/// A LoRA run of the family fixture `name` (at `ctx` tokens), exported as `hf` and `peft`:
/// transformers loads the folder as `class` and PEFT the adapters onto the fixture, and both
/// give morsd's logits and greedy continuations (`extra`: more arguments for
/// scripts/check_export.py). Returns the project, morsd's dump and the fixture's copy.
fn hf_and_peft_agree(
    name: &str,
    class: &str,
    ctx: usize,
    extra: &[&str],
) -> (Project, Value, tempfile::TempDir) {
    eprintln!("{name}:");
    let (p, fixture) = family_project(name, &serde_json::json!({}), ctx);
    let out = p.morsd(&["run", p.spec().to_str().unwrap()]);
    assert!(out.status.success(), "{name}: {}", text(&out));
    let entry = train_entry(&p);
    let x = p.path().join("exports");
    let dump = p.path().join("dump");
    let hf = x.join("hf");
    export_ok(&p, "--run seed=0 --format hf", &hf);
    assert_eq!(
        read_json(&hf.join("config.json"))["architectures"][0],
        class,
        "{name}"
    );
    let ours = morsd_dump(&p, &entry, &TINY_PROMPTS, 12, &dump);
    let got = check_export_with("hf", &hf, None, &dump, 12, extra);
    assert_transformers_agree(&got, &ours, 1e-4, true);
    let pf = x.join("peft");
    export_ok(&p, "--run seed=0 --format peft", &pf);
    let got = check_export_with("peft", &pf, Some(fixture.path()), &dump, 12, extra);
    assert_transformers_agree(&got, &ours, 1e-4, false);
    (p, ours, fixture)
}

/// llama.cpp on the run's GGUF export (f32), at context `n_ctx`: its tokenisation of each prompt
/// is morsd's, and its greedy continuation of morsd's ids is morsd's. Returns the export's output.
fn assert_llama_cpp_agrees(name: &str, p: &Project, ours: &Value, n_ctx: usize) -> String {
    let gg = p.path().join("exports/gguf");
    let o = export_to(p, "--run seed=0 --format gguf --dtype f32", &gg);
    assert!(o.status.success(), "{name}: {}", text(&o));
    let file = only_file(&gg, "gguf");
    let got = llama_cpp_prompts(&file, ours, 12, n_ctx);
    for (i, (g, o)) in got.iter().zip(ours.as_array().unwrap()).enumerate() {
        assert_eq!(g["ids"], o["ids"], "{name} prompt {i}: llama.cpp's tokens");
        assert_eq!(
            g["continuation_ids"], o["continuation_ids"],
            "{name} prompt {i}: llama.cpp's greedy continuation"
        );
    }
    text(&o)
}

#[test]
fn the_llama_style_families_and_phi3_export_to_hf_peft_and_gguf_and_each_consumer_agrees() {
    // Each family's tiny random checkpoint (tests/fixtures/families), LoRA-tuned on the tiny
    // task (Phi-3 on its fused projections), exported: transformers loads the folder as the
    // family's own class, PEFT puts the adapters on the fixture, and both give morsd's logits
    // and greedy continuations; llama.cpp runs the GGUF as morsd does, or the GGUF is refused
    // with what llama.cpp's graph would do otherwise (`why`). A refused fixture is run again
    // as the variant llama.cpp can run (`variant`: config keys replaced), whose GGUF must agree.
    let none = Value::Null;
    for (name, class, why, variant) in [
        ("llama3", "LlamaForCausalLM", None, none.clone()),
        ("qwen2", "Qwen2ForCausalLM", None, none.clone()),
        ("qwen3", "Qwen3ForCausalLM", None, none.clone()),
        (
            "mistral",
            "MistralForCausalLM",
            Some("sliding window"),
            serde_json::json!({"sliding_window": null}),
        ),
        (
            "gemma2",
            "Gemma2ForCausalLM",
            Some("query_pre_attn_scalar"),
            serde_json::json!({"query_pre_attn_scalar": 8}),
        ),
        (
            "gemma3",
            "Gemma3ForCausalLM",
            Some("query_pre_attn_scalar"),
            serde_json::json!({"query_pre_attn_scalar": 8}),
        ),
        (
            "phi3",
            "Phi3ForCausalLM",
            Some("sliding window"),
            // longrope kept, at an original context of 256: llama.cpp pads its context to a
            // multiple of 256 and picks the long factors past the original (below).
            serde_json::json!({
                "sliding_window": null,
                "original_max_position_embeddings": 256,
                "max_position_embeddings": 512
            }),
        ),
    ] {
        // Phi-3's continuations cross its longrope switch (original context 32): compared
        // with transformers' uncached greedy, since its cached generate recomputes the prefix
        // there under a one-row mask (scripts/check_export.py, --no-cache).
        let extra: &[&str] = if name == "phi3" { &["--no-cache"] } else { &[] };
        let (p, ours, _fixture) = hf_and_peft_agree(name, class, 96, extra);
        let x = p.path().join("exports");
        match why {
            None => {
                assert_llama_cpp_agrees(name, &p, &ours, 512);
            }
            Some(why) => {
                // Refused with the reason, nothing written; the variant's GGUF agrees.
                let o = export_to(&p, "--run seed=0 --format gguf", &x.join("gguf"));
                assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
                assert!(text(&o).contains(why), "{name}: {}", text(&o));
                assert!(!x.join("gguf").exists());
                let (pv, _fv) = family_project(name, &variant, 96);
                let out = pv.morsd(&["run", pv.spec().to_str().unwrap()]);
                assert!(out.status.success(), "{name} variant: {}", text(&out));
                let dump = pv.path().join("dump");
                let ours = morsd_dump(&pv, &train_entry(&pv), &TINY_PROMPTS, 12, &dump);
                // llama.cpp picks Phi-3's long or short factors by its context, morsd and
                // transformers by the sequence's length: at a context of 256 (the variant's
                // original) both use the short ones on these prompts.
                let n_ctx = if name == "phi3" { 256 } else { 512 };
                let out = assert_llama_cpp_agrees(&format!("{name} variant"), &pv, &ours, n_ctx);
                if name == "phi3" {
                    assert!(out.contains("note: llama.cpp rotates"), "{out}");
                }
            }
        }
    }
}

#[test]
fn sentencepiece_style_students_export_to_gguf_and_llama_cpp_tokenises_and_continues_as_morsd() {
    // The tokenizers of Llama 2, Mistral and Phi-3-mini (a `▁` before the text) and of Gemma
    // (none): SentencePiece-style BPE with byte fallback, as transformers converts them
    // (tests/fixtures/tokenizers), on the llama fixture and the gemma3 variant llama.cpp runs,
    // with their special ids. transformers tokenises the hf export as morsd does; llama.cpp
    // tokenises each prompt (spaces, byte fallback for "\n" and the characters without a
    // piece, the merges by score) as morsd does and continues as morsd does. The last prompt
    // is one whose pieces come out otherwise when llama.cpp merges in another order (scores
    // reversed, or all equal as llama.cpp's converter writes them from a tokenizer.json).
    let prompts = [
        TINY_PROMPTS[0],
        TINY_PROMPTS[1],
        TINY_PROMPTS[2],
        "Q: Ann hands her answer to the man there.\nA:",
    ];
    for (name, class, tokenizer, edits) in [
        (
            "llama",
            "LlamaForCausalLM",
            "llama-spm",
            serde_json::json!({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}),
        ),
        (
            "gemma3",
            "Gemma3ForCausalLM",
            "gemma-spm",
            serde_json::json!({"query_pre_attn_scalar": 8, "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0}),
        ),
    ] {
        let (p, _fixture) = family_project_with(name, &edits, Some(tokenizer), 96);
        let out = p.morsd(&["run", p.spec().to_str().unwrap()]);
        assert!(out.status.success(), "{name}: {}", text(&out));
        let dump = p.path().join("dump");
        let ours = morsd_dump(&p, &train_entry(&p), &prompts, 12, &dump);
        let hf = p.path().join("exports/hf");
        export_ok(&p, "--run seed=0 --format hf", &hf);
        assert_eq!(
            read_json(&hf.join("config.json"))["architectures"][0],
            class
        );
        let got = check_export("hf", &hf, None, &dump, 12);
        assert_transformers_agree(&got, &ours, 1e-4, true);
        assert_llama_cpp_agrees(&format!("{name} with {tokenizer}"), &p, &ours, 512);
    }
}

#[test]
fn gpt2_and_t5_lora_students_export_to_hf_and_peft_and_gpt2_to_gguf() {
    // GPT-2 (64 positions) and T5 fixtures, LoRA-tuned: transformers loads the folder as
    // GPT2LMHeadModel / T5ForConditionalGeneration and PEFT the adapters, both giving morsd's
    // logits (T5: the decoder's, over its start token and morsd's continuation) and greedy
    // continuations; llama.cpp runs GPT-2's GGUF as morsd does; T5's GGUF is refused.
    for (name, class, ctx) in [
        ("gpt2", "GPT2LMHeadModel", 64),
        ("t5", "T5ForConditionalGeneration", 96),
    ] {
        let (p, ours, _fixture) = hf_and_peft_agree(name, class, ctx, &[]);
        let x = p.path().join("exports");
        if name == "gpt2" {
            assert_llama_cpp_agrees(name, &p, &ours, 512);
        } else {
            let o = export_to(&p, "--run seed=0 --format gguf", &x.join("gguf"));
            assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
            assert!(text(&o).contains("encoder"), "{name}: {}", text(&o));
            assert!(!x.join("gguf").exists());
        }
    }
}

#[test]
fn a_scratch_student_exports_to_a_gpt2_folder_that_transformers_runs() {
    let p = Project::new(common::TINY);
    let out = p.morsd(&["run", p.spec().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let entry = train_entry(&p);
    let hf = p.path().join("gpt2");
    let dump = p.path().join("dump");
    export_ok(&p, "--run seed=0 --format hf", &hf);
    assert_eq!(read_json(&hf.join("config.json"))["model_type"], "gpt2");
    let prompts = ["Q: 3 + 4?\nA:", "Q: 12 + 30?\nA: 12 + 30 = 42."];
    let ours = morsd_dump(&p, &entry, &prompts, 10, &dump);
    let got = check_export("hf", &hf, None, &dump, 10);
    assert_transformers_agree(&got, &ours, 1e-4, true);
    // The formats a scratch student has no exact counterpart in are refused, with the reason.
    let g = p.path().join("g");
    let o = export_to(&p, "--run seed=0 --format gguf", &g);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("GELU"), "{}", text(&o));
    let o = export_to(&p, "--run seed=0 --format peft", &g);
    assert!(text(&o).contains("no LoRA"), "{}", text(&o));
    assert!(!g.exists());
}

/// The pretrained student of the README: SmolLM2-135M-Instruct with LoRA, trained briefly on
/// arithmetic, exported to all three formats.
#[test]
fn a_smollm2_lora_student_exports_to_all_three_formats() {
    let (_, gguf) = common::llama::llama_paths();
    let spec = format!(
        r#"
[experiment]
name = "tiny"
seeds = [0]

[data]
task = "arithmetic"
train = 8
validation = 4
test = 4
steps = [1, 1]

[teacher]
samples = 2

[student]
kind = "llama"
weights = {:?}
format = "qa"
max_seq_len = 96
lora_rank = 8
lora_alpha = 16
lora_targets = ["q_proj", "v_proj"]

[score]
batch_size = 8

[select]
per_question = 1

[train]
steps = 2
batch_size = 4
warmup_steps = 1
eval_every = 2

[eval]
max_new_tokens = 16
batch_size = 4
"#,
        gguf.display().to_string()
    );
    let p = Project::new(&spec);
    let out = p.morsd(&["run", p.spec().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let entry = train_entry(&p);
    let prompts = [
        "Q: Ann has 12 apples and buys 35 more. How many apples does she have?\nA:",
        "Q: 17 + 26?\nA:",
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    ];
    let dump = p.path().join("dump");
    let ours = morsd_dump(&p, &entry, &prompts, 16, &dump);
    let x = p.path().join("exports");
    // hf (f32): transformers.
    let hf = x.join("hf");
    export_ok(&p, "--run seed=0 --format hf", &hf);
    let got = check_export("hf", &hf, None, &dump, 16);
    assert_transformers_agree(&got, &ours, 3e-4, true);
    // The entry holds the adapters only: at least 50× less than the merged f32 model it used
    // to hold (which is what the hf export's model.safetensors is).
    let entry_bytes: u64 = std::fs::read_dir(&entry)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let merged = std::fs::metadata(hf.join("model.safetensors"))
        .unwrap()
        .len();
    assert!(
        entry_bytes * 50 <= merged,
        "LoRA entry {entry_bytes} B vs merged model {merged} B"
    );
    assert!(!entry.join("model.bpk").exists() && !entry.join("tokenizer.json").exists());
    // peft with the base as a Hugging Face folder.
    let pf = x.join("peft");
    export_ok(&p, "--run seed=0 --format peft --with-base", &pf);
    let got = check_export("peft", &pf, Some(&pf.join("base")), &dump, 16);
    assert_transformers_agree(&got, &ours, 3e-4, false);
    // gguf (f16): llama.cpp continues as morsd does on the same file, and as the f32 entry.
    let gg = x.join("gguf");
    export_ok(&p, "--run seed=0 --format gguf", &gg);
    let file = only_file(&gg, "gguf");
    let on_file = morsd_dump(&p, &file, &prompts, 16, &p.path().join("dump-gguf"));
    let cpp = llama_cpp_greedy(&file, &on_file, 16);
    assert_eq!(
        cpp,
        continuations(&on_file),
        "llama.cpp vs morsd on the exported f16 file"
    );
    assert_eq!(
        cpp,
        continuations(&ours),
        "llama.cpp on the f16 export vs morsd's f32 entry"
    );
}
