//! Answer scoring for Rationale Difficulty: mean negative log-likelihood of an answer segment
//! after a context, batched (right padding, so the causal mask alone keeps pads out of view).

use super::model::Student;
use super::tokenizer::Tok;
use super::train::{TrainExample, lm_batch};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// Mean NLL per answer token of `answer` given `context`, for each pair. `exp` of it is the
/// answer's perplexity PPL(a | context).
pub fn answer_nll(
    model: &Student,
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
            TrainExample { prompt, target }
        })
        .collect();
    let mut out = Vec::with_capacity(pairs.len());
    for chunk in examples.chunks(batch_size.max(1)) {
        let refs: Vec<&TrainExample> = chunk.iter().collect();
        let (batch, targets, mask, _) = lm_batch(&refs, tok.pad, limit, device);
        let logits = model.forward(&batch);
        let [b, t, _] = logits.dims();
        let nll = log_softmax(logits, 2)
            .gather(2, targets.reshape([b, t, 1]))
            .reshape([b, t])
            .neg();
        let per_row = (nll * mask.clone()).sum_dim(1).reshape([b])
            / mask.sum_dim(1).reshape([b]).clamp_min(1.0);
        out.extend(per_row.into_data().iter::<f32>().map(|x| x as f64));
    }
    out
}
