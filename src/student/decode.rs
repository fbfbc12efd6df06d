//! Greedy decoding, batched with left padding; stops at end of sequence, at the token budget,
//! or when a stop test (e.g. "the answer sentence is complete") holds for the text so far.
//! A pretrained student decodes with its KV cache (one new position per step); the scratch
//! student re-reads the whole sequence each step (it is small and has a short context).

use super::Lm;
use super::batch::{Batch, EncoderInput, KvCache};
use super::tokenizer::Tok;
use burn::prelude::*;

/// How to decode.
pub struct DecodeOptions<'a> {
    /// New tokens at most.
    pub max_new: usize,
    /// Prompts per batch.
    pub batch_size: usize,
    /// Stops a row once this holds for its generated text.
    pub stop: Option<&'a (dyn Fn(&str) -> bool + Sync)>,
}

/// Greedy continuations of `prompts` (decoded text of the generated tokens only).
pub fn greedy(
    model: &Lm,
    tok: &Tok,
    prompts: &[String],
    max_new: usize,
    batch_size: usize,
    device: &Device,
) -> Vec<String> {
    let opts = DecodeOptions {
        max_new,
        batch_size,
        stop: None,
    };
    greedy_with(model, tok, prompts, &opts, device)
}

/// Greedy continuations with explicit options.
pub fn greedy_with(
    model: &Lm,
    tok: &Tok,
    prompts: &[String],
    opts: &DecodeOptions<'_>,
    device: &Device,
) -> Vec<String> {
    greedy_ids(model, tok, prompts, opts, device)
        .iter()
        .map(|g| tok.decode(g))
        .collect()
}

/// Greedy continuations as token ids (end-of-sequence not included).
pub fn greedy_ids(
    model: &Lm,
    tok: &Tok,
    prompts: &[String],
    opts: &DecodeOptions<'_>,
    device: &Device,
) -> Vec<Vec<u32>> {
    let encoded: Vec<Vec<u32>> = prompts.iter().map(|p| tok.encode(p)).collect();
    greedy_encoded(model, tok, &encoded, opts, device)
}

/// Greedy continuations of prompts given as token ids (on rayon's pool, `kernels::on_pool`).
pub fn greedy_encoded(
    model: &Lm,
    tok: &Tok,
    prompts: &[Vec<u32>],
    opts: &DecodeOptions<'_>,
    device: &Device,
) -> Vec<Vec<u32>> {
    crate::kernels::on_pool(|| greedy_on_pool(model, tok, prompts, opts, device))
}

fn greedy_on_pool(
    model: &Lm,
    tok: &Tok,
    prompts: &[Vec<u32>],
    opts: &DecodeOptions<'_>,
    device: &Device,
) -> Vec<Vec<u32>> {
    // 1. Keep room for at least one new token, and decode in length order, so a batch's
    //    prompts are of similar lengths and little of its prefill is padding; the outputs come
    //    back in the caller's order.
    //    (An encoder–decoder's encoder reads its last `limit` tokens: the new ones are the
    //    decoder's.)
    let limit = model.max_seq_len();
    let keep = if model.decoder_start().is_some() {
        limit
    } else {
        limit - 1
    };
    let encoded: Vec<Vec<u32>> = prompts
        .iter()
        .map(|ids| ids[ids.len().saturating_sub(keep)..].to_vec())
        .collect();
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.sort_by_key(|&i| encoded[i].len());
    let mut out = vec![Vec::new(); prompts.len()];
    for idx in order.chunks(opts.batch_size.max(1)) {
        let seqs: Vec<Vec<u32>> = idx.iter().map(|&i| encoded[i].clone()).collect();
        let generated = match model {
            Lm::Llama(_) | Lm::Phi3(_) | Lm::Gpt2(_) | Lm::T5(_) => {
                let mut cache = KvCache::default();
                // An encoder–decoder reads the prompts with its encoder (ending in `</s>`, as
                // its tokenizer writes them) and decodes from its start token.
                let seqs = match model.decoder_start() {
                    Some(start) => {
                        let enc: Vec<Vec<u32>> =
                            seqs.iter().map(|s| with_eos(s, tok.eos)).collect();
                        cache.set_encoder(EncoderInput::new(&enc, tok.pad, device));
                        vec![vec![start]; enc.len()]
                    }
                    None => seqs,
                };
                let mut state = Rows::new(seqs, tok, opts);
                // 2. Prefill: the whole left-padded prompt batch, cache filled.
                let batch = Batch::new(&state.seqs, tok.pad, true, device);
                let t = batch.ids.dims()[1];
                let mut valid: Vec<Vec<bool>> = state
                    .seqs
                    .iter()
                    .map(|s| (0..t).map(|j| j >= t - s.len()).collect())
                    .collect();
                let h = model.forward_cached(batch.ids, &batch.pos, batch.bias, &mut cache);
                let mut next = argmax_last(model, h);
                // 3. One cached step per new token (Phi-3 with `longrope`: the step that takes the
                //    sequence past its original context runs the whole sequence again, uncached,
                //    at the long-context rotation, as transformers does).
                let switch = model.long_context_switch();
                while state.push(&next, limit, true) {
                    if switch == Some(valid[0].len()) && model.decoder_start().is_none() {
                        cache = KvCache::default();
                        let batch = Batch::new(&state.seqs, tok.pad, true, device);
                        let t = batch.ids.dims()[1];
                        valid = state
                            .seqs
                            .iter()
                            .map(|s| (0..t).map(|j| j >= t - s.len()).collect())
                            .collect();
                        let h = model.forward_cached(batch.ids, &batch.pos, batch.bias, &mut cache);
                        next = argmax_last(model, h);
                        continue;
                    }
                    let b = state.seqs.len();
                    for v in &mut valid {
                        v.push(true);
                    }
                    let total = valid[0].len();
                    let ids: Vec<i64> = state
                        .seqs
                        .iter()
                        .map(|s| *s.last().unwrap_or(&tok.pad) as i64)
                        .collect();
                    // A finished row gets padding at its last position, never past the
                    // context (GPT-2's position table ends there); its output is not used.
                    let pos: Vec<i64> = state
                        .seqs
                        .iter()
                        .map(|s| s.len().min(limit) as i64 - 1)
                        .collect();
                    let bias: Vec<f32> = valid
                        .iter()
                        .flat_map(|v| v.iter().map(|&ok| if ok { 0.0 } else { -1e9 }))
                        .collect();
                    let h = model.forward_cached(
                        Tensor::from_data(TensorData::new(ids, [b, 1]), device),
                        &Tensor::from_data(TensorData::new(pos, [b, 1]), device),
                        Tensor::from_data(TensorData::new(bias, [b, 1, 1, total]), device),
                        &mut cache,
                    );
                    next = argmax_last(model, h);
                }
                state.generated
            }
            Lm::Scratch(_) => {
                let mut state = Rows::new(seqs, tok, opts);
                // 2. One full forward per new token over the whole (left-padded) batch.
                loop {
                    let batch = Batch::new(&state.seqs, tok.pad, true, device);
                    let next = argmax_last(model, model.hidden(&batch));
                    if !state.push(&next, limit, false) {
                        break;
                    }
                }
                state.generated
            }
        };
        for (&i, g) in idx.iter().zip(generated) {
            out[i] = g;
        }
    }
    out
}

/// An encoder input ends with the end-of-sequence token, as T5's tokenizer writes it.
pub fn with_eos(ids: &[u32], eos: u32) -> Vec<u32> {
    let mut v = ids.to_vec();
    if v.last() != Some(&eos) {
        v.push(eos);
    }
    v
}

/// Greedy next token of each row from hidden states `[b, t, d]` (last position).
fn argmax_last(model: &Lm, h: Tensor<3>) -> Vec<u32> {
    let [b, t, d] = h.dims();
    model
        .logits(h.narrow(1, t - 1, 1).reshape([b, d]))
        .argmax(1)
        .into_data()
        .iter::<i64>()
        .map(|x| x as u32)
        .collect()
}

/// Per-row decoding state.
struct Rows<'a> {
    seqs: Vec<Vec<u32>>,
    generated: Vec<Vec<u32>>,
    done: Vec<bool>,
    steps: usize,
    tok: &'a Tok,
    opts: &'a DecodeOptions<'a>,
}

impl<'a> Rows<'a> {
    fn new(seqs: Vec<Vec<u32>>, tok: &'a Tok, opts: &'a DecodeOptions<'a>) -> Self {
        let n = seqs.len();
        Rows {
            seqs,
            generated: vec![Vec::new(); n],
            done: vec![opts.max_new == 0; n],
            steps: 0,
            tok,
            opts,
        }
    }

    /// Appends each row's next token (finished rows get padding when `keep_aligned`, as a
    /// KV cache needs); false when decoding should end.
    fn push(&mut self, next: &[u32], limit: usize, keep_aligned: bool) -> bool {
        for (r, &id) in next.iter().enumerate() {
            if self.done[r] {
                if keep_aligned {
                    self.seqs[r].push(self.tok.pad);
                }
                continue;
            }
            self.seqs[r].push(id);
            if id == self.tok.eos {
                self.done[r] = true;
                continue;
            }
            self.generated[r].push(id);
            if let Some(stop) = self.opts.stop
                && stop(&self.tok.decode(&self.generated[r]))
            {
                self.done[r] = true;
            }
        }
        self.steps += 1;
        // A row that fills the context is finished alone: it does not cut its neighbours short
        // (with a KV cache every row has the same length, so they finish together).
        for (s, d) in self.seqs.iter().zip(self.done.iter_mut()) {
            if s.len() >= limit {
                *d = true;
            }
        }
        !(self.done.iter().all(|d| *d) || self.steps >= self.opts.max_new)
    }
}
