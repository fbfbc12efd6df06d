//! Student training: AdamW with a linear warm-up and cosine decay, loss on target tokens only
//! (rationale + answer, never the prompt), and checkpoint choice on the validation split.

use super::model::{Batch, Student};
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// One training sequence: prompt tokens (no loss) then target tokens (loss).
#[derive(Debug, Clone)]
pub struct TrainExample {
    /// Prompt ids.
    pub prompt: Vec<u32>,
    /// Target ids (ending with `<eos>`).
    pub target: Vec<u32>,
}

/// Optimisation settings (from `[train]`, or the warm-up settings of `[score]`).
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Optimiser steps.
    pub steps: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Steps between validation checkpoints.
    pub eval_every: usize,
    /// Shuffling seed.
    pub seed: u64,
}

/// What training produced.
pub struct TrainOutcome {
    /// The chosen checkpoint (best validation accuracy; the last one without validation).
    pub model: Student,
    /// Step of the chosen checkpoint.
    pub best_step: usize,
    /// Its validation accuracy, if validated.
    pub best_val_accuracy: Option<f64>,
    /// (step, mean loss since the previous point).
    pub loss_curve: Vec<(usize, f64)>,
    /// (step, validation accuracy).
    pub val_curve: Vec<(usize, f64)>,
    /// Non-padding tokens processed.
    pub tokens: u64,
}

/// Learning rate at `step` (0-based): linear warm-up to `peak`, cosine decay to 10 % of it.
pub fn lr_at(step: usize, opts: &TrainOptions) -> f64 {
    let peak = opts.lr;
    if step < opts.warmup_steps {
        return peak * (step + 1) as f64 / opts.warmup_steps as f64;
    }
    let span = (opts.steps.saturating_sub(opts.warmup_steps)).max(1) as f64;
    let p = ((step - opts.warmup_steps) as f64 / span).min(1.0);
    0.1 * peak + 0.9 * peak * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
}

/// Mean negative log-likelihood of the masked positions (`targets`, `mask`: `[b, t]`).
pub fn masked_nll(
    model: &Student,
    batch: &Batch,
    targets: Tensor<2, Int>,
    mask: Tensor<2>,
) -> Tensor<1> {
    let logits = model.forward(batch);
    let [b, t, _] = logits.dims();
    let nll = log_softmax(logits, 2)
        .gather(2, targets.reshape([b, t, 1]))
        .reshape([b, t])
        .neg();
    (nll * mask.clone()).sum() / mask.sum().clamp_min(1.0)
}

/// Builds the shifted inputs/targets/mask of a batch of examples (right padding).
pub fn lm_batch(
    examples: &[&TrainExample],
    pad: u32,
    max_len: usize,
    device: &Device,
) -> (Batch, Tensor<2, Int>, Tensor<2>, u64) {
    let mut inputs = Vec::new();
    let mut targets = Vec::new();
    let mut masks = Vec::new();
    let mut tokens = 0u64;
    for ex in examples {
        // 1. prompt ++ target, truncated to the model's length (+1 for the shift).
        let mut seq: Vec<u32> = ex.prompt.iter().chain(&ex.target).copied().collect();
        let mut loss: Vec<f32> = std::iter::repeat_n(0.0, ex.prompt.len())
            .chain(std::iter::repeat_n(1.0, ex.target.len()))
            .collect();
        seq.truncate(max_len + 1);
        loss.truncate(max_len + 1);
        tokens += seq.len() as u64;
        // 2. Input is seq[..n-1], target seq[1..], loss on target positions only.
        inputs.push(seq[..seq.len() - 1].to_vec());
        targets.push(seq[1..].to_vec());
        masks.push(loss[1..].to_vec());
    }
    let batch = Batch::new(&inputs, pad, false, device);
    let [b, t] = batch.ids.dims();
    let mut tg = vec![pad as i64; b * t];
    let mut mk = vec![0f32; b * t];
    for r in 0..b {
        for (j, (&id, &m)) in targets[r].iter().zip(&masks[r]).enumerate() {
            tg[r * t + j] = id as i64;
            mk[r * t + j] = m;
        }
    }
    let tg = Tensor::from_data(TensorData::new(tg, [b, t]), device);
    let mk = Tensor::from_data(TensorData::new(mk, [b, t]), device);
    (batch, tg, mk, tokens)
}

/// Trains `model` (whose parameters live on an autodiff device) on `data`.
///
/// `validate` scores a validation-mode copy; the best-scoring checkpoint is returned
/// (ties go to the later one). Never pass the test split to it.
pub fn train(
    mut model: Student,
    data: &[TrainExample],
    pad: u32,
    opts: &TrainOptions,
    device: &Device,
    validate: Option<&dyn Fn(&Student) -> f64>,
    progress: &ProgressBar,
) -> TrainOutcome {
    let mut optim = AdamWConfig::new()
        .with_weight_decay(opts.weight_decay as f32)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init();
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut order: Vec<usize> = Vec::new();
    let max_len = model.max_seq_len();
    let (mut loss_sum, mut loss_n, mut tokens) = (0.0, 0usize, 0u64);
    let mut out = TrainOutcome {
        model: model.valid(),
        best_step: 0,
        best_val_accuracy: None,
        loss_curve: vec![],
        val_curve: vec![],
        tokens: 0,
    };
    progress.set_length(opts.steps as u64);
    for step in 0..opts.steps {
        // 1. Next batch from a reshuffled epoch order.
        let mut idx = Vec::with_capacity(opts.batch_size);
        while idx.len() < opts.batch_size.min(data.len()) {
            if order.is_empty() {
                order = (0..data.len()).collect();
                order.shuffle(&mut rng);
            }
            idx.push(order.pop().expect("non-empty"));
        }
        let examples: Vec<&TrainExample> = idx.iter().map(|&i| &data[i]).collect();
        let (batch, targets, mask, n) = lm_batch(&examples, pad, max_len, device);
        tokens += n;
        // 2. Forward, backward, AdamW step at the scheduled rate.
        let loss = masked_nll(&model, &batch, targets, mask);
        let loss_value: f32 = loss.clone().into_scalar();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr_at(step, opts), model, grads);
        loss_sum += loss_value as f64;
        loss_n += 1;
        progress.inc(1);
        progress.set_message(format!("loss {loss_value:.3}"));
        // 3. Checkpoint: keep the best on validation.
        let done = step + 1;
        if done % opts.eval_every == 0 || done == opts.steps {
            out.loss_curve.push((done, loss_sum / loss_n as f64));
            (loss_sum, loss_n) = (0.0, 0);
            let candidate = model.valid();
            match validate {
                Some(f) => {
                    let acc = f(&candidate);
                    out.val_curve.push((done, acc));
                    if out.best_val_accuracy.is_none_or(|b| acc >= b) {
                        out.best_val_accuracy = Some(acc);
                        out.best_step = done;
                        out.model = candidate;
                    }
                }
                None => {
                    out.best_step = done;
                    out.model = candidate;
                }
            }
        }
    }
    out.tokens = tokens;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays() {
        let o = TrainOptions {
            steps: 100,
            batch_size: 1,
            lr: 1.0,
            warmup_steps: 10,
            weight_decay: 0.0,
            eval_every: 10,
            seed: 0,
        };
        assert!((lr_at(0, &o) - 0.1).abs() < 1e-9);
        assert!((lr_at(9, &o) - 1.0).abs() < 1e-9);
        assert!(lr_at(50, &o) < 1.0 && lr_at(50, &o) > lr_at(90, &o));
        assert!((lr_at(100, &o) - 0.1).abs() < 1e-9);
    }
}
