//! `morsd generate` on a checkpoint folder runs it at the checkpoint's own context when the
//! command sets no `--max-seq-len` (GPT-2's `n_positions`, `max_position_embeddings`, T5's
//! 512), for every family's fixture; a length the checkpoint cannot take is a clear error.

mod common;

use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/families")
        .join(name)
}

#[test]
fn generate_runs_every_family_at_its_own_context() {
    let p = common::Project::new(common::TINY);
    for name in [
        "llama", "llama3", "qwen2", "qwen3", "mistral", "gemma2", "gemma3", "phi3", "gpt2",
        "flan-t5", "t5",
    ] {
        let dir = fixture(name);
        let out = p.morsd(&[
            "generate",
            "--student",
            dir.to_str().unwrap(),
            "--prompt",
            "Q: Tom has 5 apples and buys 4 more.",
            "--max-new-tokens",
            "4",
        ]);
        let text = common::text(&out);
        assert!(out.status.success(), "{name}: {text}");
        assert!(
            text.contains("Q: Tom has 5 apples and buys 4 more."),
            "{name}: {text}"
        );
    }
}

#[test]
fn a_length_past_gpt2s_position_table_or_below_two_is_refused() {
    let p = common::Project::new(common::TINY);
    let gpt2 = fixture("gpt2");
    let run = |len: &str| {
        p.morsd(&[
            "generate",
            "--student",
            gpt2.to_str().unwrap(),
            "--prompt",
            "Q: 3 + 4?",
            "--max-seq-len",
            len,
        ])
    };
    // The fixture has 64 positions.
    let out = run("65");
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("n_positions") && text.contains("64"),
        "{text}"
    );
    assert!(run("64").status.success());
    let out = run("1");
    assert!(!out.status.success());
    assert!(common::text(&out).contains("--max-seq-len 1"));
}
