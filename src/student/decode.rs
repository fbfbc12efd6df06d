//! Greedy decoding, batched with left padding; stops at `<eos>` or the token budget.

use super::model::{Batch, Student};
use super::tokenizer::Tok;
use burn::prelude::*;

/// Greedy continuations of `prompts` (decoded text of the generated tokens only).
pub fn greedy(
    model: &Student,
    tok: &Tok,
    prompts: &[String],
    max_new: usize,
    batch_size: usize,
    device: &Device,
) -> Vec<String> {
    let mut out = Vec::with_capacity(prompts.len());
    for chunk in prompts.chunks(batch_size.max(1)) {
        // 1. Encode the prompts, keeping room for at least one new token.
        let limit = model.max_seq_len();
        let mut seqs: Vec<Vec<u32>> = chunk
            .iter()
            .map(|p| {
                let ids = tok.encode(p);
                ids[ids.len().saturating_sub(limit - 1)..].to_vec()
            })
            .collect();
        let mut generated: Vec<Vec<u32>> = vec![Vec::new(); chunk.len()];
        let mut done = vec![false; chunk.len()];
        // 2. One forward per new token over the whole (left-padded) batch.
        for _ in 0..max_new {
            if done.iter().all(|d| *d) || seqs.iter().any(|s| s.len() >= limit) {
                break;
            }
            let batch = Batch::new(&seqs, tok.pad, true, device);
            let next: Vec<i64> = model
                .last_logits(&batch)
                .argmax(1)
                .into_data()
                .iter::<i64>()
                .collect();
            for (r, &id) in next.iter().enumerate() {
                if done[r] {
                    continue;
                }
                let id = id as u32;
                if id == tok.eos {
                    done[r] = true;
                } else {
                    generated[r].push(id);
                }
                seqs[r].push(id);
            }
        }
        out.extend(generated.iter().map(|g| tok.decode(g)));
    }
    out
}
