//! Answer scoring for Rationale Difficulty: mean negative log-likelihood of an answer segment
//! after a context, batched (right padding, so the causal mask alone keeps pads out of view;
//! only the answer positions go through the output head).

use super::Lm;
use super::tokenizer::Tok;
use super::train::{TrainExample, batch_for, position_nll};
use burn::prelude::*;

/// Mean NLL per answer token of `answer` given `context`, for each pair. `exp` of it is the
/// answer's perplexity PPL(a | context).
pub fn answer_nll(
    model: &Lm,
    tok: &Tok,
    pairs: &[(String, String)],
    batch_size: usize,
    device: &Device,
) -> Vec<f64> {
    let limit = model.max_seq_len();
    let examples: Vec<TrainExample> = pairs
        .iter()
        .map(|(ctx, ans)| {
            let target = tok.encode(ans);
            let mut prompt = tok.encode(ctx);
            // Keep the answer whole: cut the context from the left if needed.
            let room = (limit + 1).saturating_sub(target.len());
            if prompt.len() > room {
                prompt.drain(..prompt.len() - room);
            }
            TrainExample {
                prompt,
                target,
                ..Default::default()
            }
        })
        .collect();
    examples_nll(model, tok.pad, &examples, batch_size, device)
}

/// RD's NLLs for `(prompt, context, answer)` triples: the answer's mean NLL after the prompt
/// and the context (the rationale; empty for PPL(a | q)). A decoder-only student reads
/// `prompt ++ context` as one text ([`answer_nll`]); an encoder–decoder reads the prompt with its
/// encoder and the context before the answer with its decoder, so RD is
/// `PPL(a | enc(q), r) / PPL(a | enc(q))`.
pub fn answer_nll_rd(
    model: &Lm,
    tok: &Tok,
    triples: &[(String, String, String)],
    batch_size: usize,
    device: &Device,
) -> Vec<f64> {
    if model.decoder_start().is_none() {
        let pairs: Vec<(String, String)> = triples
            .iter()
            .map(|(p, c, a)| (format!("{p}{c}"), a.clone()))
            .collect();
        return answer_nll(model, tok, &pairs, batch_size, device);
    }
    let limit = model.max_seq_len();
    let examples: Vec<TrainExample> = triples
        .iter()
        .map(|(p, c, a)| {
            let target = tok.encode(a);
            let mut context = tok.encode(c);
            // Keep the answer whole in the decoder: cut the rationale from the left if needed.
            let room = limit.saturating_sub(target.len());
            if context.len() > room {
                context.drain(..context.len() - room);
            }
            TrainExample {
                prompt: tok.encode(p),
                context,
                target,
            }
        })
        .collect();
    examples_nll(model, tok.pad, &examples, batch_size, device)
}

/// Mean NLL over each example's target positions, batched in length order.
fn examples_nll(
    model: &Lm,
    pad: u32,
    examples: &[TrainExample],
    batch_size: usize,
    device: &Device,
) -> Vec<f64> {
    let limit = model.max_seq_len();
    // Batches of similar lengths waste little on padding: score in length order, answer in
    // the caller's order.
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| {
        examples[i].prompt.len() + examples[i].context.len() + examples[i].target.len()
    });
    let mut out = vec![0f64; examples.len()];
    for idx in order.chunks(batch_size.max(1)) {
        let refs: Vec<&TrainExample> = idx.iter().map(|&i| &examples[i]).collect();
        // A batch whose answers are all empty (or cut away) has nothing to score: its rows
        // keep NLL 0, and no empty tensor reaches the model.
        let Some(lb) = batch_for(model, &refs, pad, limit, device) else {
            continue;
        };
        let nll: Vec<f32> = position_nll(model, &lb).into_data().iter::<f32>().collect();
        // Mean over each row's answer positions.
        let mut sum = vec![0f64; idx.len()];
        let mut count = vec![0usize; idx.len()];
        for (&r, x) in lb.rows.iter().zip(nll) {
            sum[r] += x as f64;
            count[r] += 1;
        }
        for (k, &i) in idx.iter().enumerate() {
            out[i] = sum[k] / count[k].max(1) as f64;
        }
    }
    out
}

/// What the field's selection scores are made of, for one response: its tokens' mean NLL and
/// mean rank (1 = the most likely token, clipped at the caller's `rank_clip`) under the model,
/// over the `tokens` target positions that were scored.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ResponseStats {
    /// Mean negative log-likelihood per scored token (natural log).
    pub mean_nll: f64,
    /// Mean rank per scored token, each rank clipped at `rank_clip`.
    pub mean_rank: f64,
    /// Target positions scored (0: nothing was, and the means are 0).
    pub tokens: usize,
}

/// [`ResponseStats`] of each example's target after its prompt, batched in length order (an
/// empty prompt scores the response alone: a decoder-only model then cannot predict the first
/// token, as in Cherry LLM's loss of the output alone; an encoder–decoder reads an empty source).
///
/// Both numbers come from the full logits: per chunk of positions the logits go to the host,
/// where the NLL is `logsumexp − logit(target)` and the rank `1 + #{logits > logit(target)}`.
pub fn response_stats(
    model: &Lm,
    pad: u32,
    examples: &[TrainExample],
    batch_size: usize,
    rank_clip: usize,
    device: &Device,
) -> Vec<ResponseStats> {
    let limit = model.max_seq_len();
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| examples[i].prompt.len() + examples[i].target.len());
    let mut out = vec![ResponseStats::default(); examples.len()];
    for idx in order.chunks(batch_size.max(1)) {
        let refs: Vec<&TrainExample> = idx.iter().map(|&i| &examples[i]).collect();
        let Some(lb) = batch_for(model, &refs, pad, limit, device) else {
            continue;
        };
        // 1. The hidden states of the loss positions, `[n, d]`.
        let h = crate::kernels::on_pool(|| {
            let h = model.hidden(&lb.batch);
            let [b, t, d] = h.dims();
            h.reshape([b * t, d]).select(0, lb.positions.clone())
        });
        let n = lb.rows.len();
        // 2. Their logits, a chunk of positions at a time (a whole batch's logits over a large
        //    vocabulary would not fit), NLL and rank on the host.
        let mut sum = vec![(0f64, 0f64, 0usize); idx.len()];
        let (mut start, mut chunk) = (0, n.min(64));
        while start < n {
            let len = chunk.min(n - start);
            let t = crate::kernels::on_pool(|| model.logits(h.clone().narrow(0, start, len)));
            let vocab = t.dims()[1];
            let logits: Vec<f32> = t.into_data().iter::<f32>().collect();
            for (k, row) in logits.chunks(vocab).enumerate() {
                let p = start + k;
                let target = row[lb.target_ids[p] as usize];
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let lse = max
                    + row
                        .iter()
                        .map(|&x| (x as f64 - max).exp())
                        .sum::<f64>()
                        .ln();
                let rank = 1 + row.iter().filter(|&&x| x > target).count();
                let s = &mut sum[lb.rows[p]];
                s.0 += lse - target as f64;
                s.1 += rank.min(rank_clip.max(1)) as f64;
                s.2 += 1;
            }
            start += len;
            chunk = (4_000_000 / vocab.max(1)).max(1);
        }
        for (k, &i) in idx.iter().enumerate() {
            let (nll, rank, tokens) = sum[k];
            let d = tokens.max(1) as f64;
            out[i] = ResponseStats {
                mean_nll: nll / d,
                mean_rank: rank / d,
                tokens,
            };
        }
    }
    out
}
