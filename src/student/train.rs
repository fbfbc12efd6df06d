//! Student training: AdamW with a linear warm-up and cosine decay, loss on target tokens only
//! (rationale + answer, never the prompt), and checkpoint choice on the validation split. The
//! budget is a number of optimiser steps or of epochs ([`Budget`]).

use super::Lm;
use super::batch::Batch;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::GradientsAccumulator;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::prelude::*;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// One training sequence: prompt tokens (no loss), context tokens (no loss), then target
/// tokens (loss). An encoder–decoder reads the prompt with its encoder and the context and
/// target with its decoder; a decoder-only student reads them one after the other.
#[derive(Debug, Clone, Default)]
pub struct TrainExample {
    /// Prompt ids.
    pub prompt: Vec<u32>,
    /// Ids between prompt and target that carry no loss (RD's rationale for an
    /// encoder–decoder, whose decoder reads it before the answer); usually empty.
    pub context: Vec<u32>,
    /// Target ids (ending with `<eos>`).
    pub target: Vec<u32>,
}

/// How long training runs (`train.steps` or `train.epochs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// This many optimiser steps, whatever the number of training sequences: the epoch orders
    /// follow one another, so a micro-batch that runs past the end of one epoch takes the rest
    /// of its sequences from the next (freshly shuffled) one.
    Steps(usize),
    /// Every training sequence seen exactly this many times: [`epoch_steps`] optimiser steps
    /// drawing `epochs × sequences` sequences in all. Micro-batches cross epoch boundaries as
    /// with [`Budget::Steps`]; only the last step is cut short: its micro-batches take what is
    /// left (the last one possibly short, fewer than `grad_accum` of them possibly).
    Epochs(usize),
}

impl Budget {
    /// Optimiser steps this budget takes over `sequences` training sequences.
    pub fn steps(self, sequences: usize, batch_size: usize, grad_accum: usize) -> usize {
        match self {
            Budget::Steps(n) => n,
            Budget::Epochs(e) => epoch_steps(e, sequences, batch_size, grad_accum),
        }
    }

    /// The most sequences training draws from `sequences` (none: no cap).
    fn draws(self, sequences: usize) -> Option<usize> {
        match self {
            Budget::Steps(_) => None,
            Budget::Epochs(e) => Some(e.saturating_mul(sequences)),
        }
    }
}

/// Optimiser steps of an `epochs` budget: `ceil(epochs × sequences / (micro-batch × grad_accum))`,
/// where a micro-batch holds `min(batch_size, sequences)` sequences (as [`train`] draws them).
/// 0 without sequences.
pub fn epoch_steps(epochs: usize, sequences: usize, batch_size: usize, grad_accum: usize) -> usize {
    let per_step = batch_size
        .min(sequences)
        .max(1)
        .saturating_mul(grad_accum.max(1));
    epochs.saturating_mul(sequences).div_ceil(per_step)
}

/// Optimisation settings (from `[train]`, or the warm-up settings of `[score]`).
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// How long to train.
    pub budget: Budget,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches whose gradients are summed before each optimiser step (1 = none).
    pub grad_accum: usize,
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
    /// Micro-batches of similar lengths (`train.group_by_length`; see [`epoch_order`]).
    pub group_by_length: bool,
    /// Early stopping (`train.patience`): stop once this many validations in a row have not
    /// beaten the best accuracy so far; `None` trains the whole budget.
    pub patience: Option<usize>,
}

/// Validations after the best one that make a run without `train.patience` count as converged
/// (see [`converged`]).
pub const CONVERGED_AFTER: usize = 3;

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `train.patience` validations in a row without a new best.
    Patience,
    /// The budget (`train.steps` or `train.epochs`) ran out.
    Budget,
}

impl StopReason {
    /// `patience` or `budget`, as the train stage records it.
    pub fn name(self) -> &'static str {
        match self {
            StopReason::Patience => "patience",
            StopReason::Budget => "budget",
        }
    }
}

/// The convergence rule. A run has converged when the validations after the *first* one that
/// reached its highest accuracy number at least `patience` (`train.patience`, or
/// [`CONVERGED_AFTER`] without it): so many chances to improve went by without a new best.
/// A run stopped by patience meets it by construction; a run whose best accuracy came at one
/// of its last validations was still improving. `val_curve` is (step, accuracy) in order;
/// without validations nothing shows convergence.
pub fn converged(val_curve: &[(usize, f64)], patience: Option<usize>) -> bool {
    let need = patience.unwrap_or(CONVERGED_AFTER).max(1);
    let Some(best) = val_curve.iter().map(|x| x.1).reduce(f64::max) else {
        return false;
    };
    let first = val_curve.iter().position(|x| x.1 >= best).unwrap_or(0);
    val_curve.len() - 1 - first >= need
}

/// Micro-batches per length-sorted window of [`epoch_order`].
const GROUP_WINDOW: usize = 64;

/// One epoch's example order (taken from the end, `batch_size` at a time): a shuffle; with
/// `group_by_length`, 1. the shuffle is cut into windows of [`GROUP_WINDOW`] micro-batches,
/// 2. each window is sorted by length and cut into micro-batches, 3. the micro-batches are
/// shuffled, so each holds sequences of similar lengths and the step order stays random.
pub fn epoch_order(
    data: &[TrainExample],
    batch_size: usize,
    group_by_length: bool,
    rng: &mut StdRng,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.shuffle(rng);
    if !group_by_length {
        return order;
    }
    let b = batch_size.max(1);
    let len = |i: usize| data[i].prompt.len() + data[i].target.len();
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for window in order.chunks(b * GROUP_WINDOW) {
        let mut w = window.to_vec();
        w.sort_by_key(|&i| len(i));
        batches.extend(w.chunks(b).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    // `train` pops from the end: reverse so each micro-batch comes out whole and in order.
    batches.into_iter().flatten().rev().collect()
}

/// What training produced.
pub struct TrainOutcome {
    /// The chosen checkpoint (best validation accuracy; the last one without validation).
    pub model: Lm,
    /// Step of the chosen checkpoint.
    pub best_step: usize,
    /// Optimiser steps run (the budget's; a step whose micro-batches all lack a loss position
    /// counts, though it leaves the weights as they were).
    pub steps: usize,
    /// Its validation accuracy, if validated.
    pub best_val_accuracy: Option<f64>,
    /// (step, mean loss since the previous point).
    pub loss_curve: Vec<(usize, f64)>,
    /// (step, validation accuracy).
    pub val_curve: Vec<(usize, f64)>,
    /// Non-padding tokens processed.
    pub tokens: u64,
    /// The last step run (`steps` unless early stopping ended the run sooner).
    pub stopped_step: usize,
    /// Why training stopped.
    pub stop_reason: StopReason,
}

/// Learning rate at `step` (0-based) of `steps`: linear warm-up to `peak`, cosine decay to 10 %
/// of it. A warm-up as long as the run or longer only ramps up (the rate never decays).
pub fn lr_at(step: usize, steps: usize, opts: &TrainOptions) -> f64 {
    let peak = opts.lr;
    if step < opts.warmup_steps {
        return peak * (step + 1) as f64 / opts.warmup_steps as f64;
    }
    let span = (steps.saturating_sub(opts.warmup_steps)).max(1) as f64;
    let p = ((step - opts.warmup_steps) as f64 / span).min(1.0);
    0.1 * peak + 0.9 * peak * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
}

/// A right-padded training or scoring batch: the model input and, for the positions that
/// carry loss, their flat index into `[b·t]`, their target id and their row.
pub struct LmBatch {
    /// Model input.
    pub batch: Batch,
    /// Flat indices (`row·t + col`) of the loss positions `[n]`.
    pub positions: Tensor<1, Int>,
    /// Target ids at those positions (host side; the fused cross-entropy reads them there).
    pub target_ids: Vec<u32>,
    /// Row of each loss position.
    pub rows: Vec<usize>,
    /// Non-padding tokens in the batch.
    pub tokens: u64,
}

impl LmBatch {
    /// The batch with its loss positions `(row, column, target id)`.
    fn new(batch: Batch, loss_at: &[(usize, usize, u32)], tokens: u64, device: &Device) -> Self {
        let t = batch.ids.dims()[1];
        let pos: Vec<i64> = loss_at
            .iter()
            .map(|&(r, j, _)| (r * t + j) as i64)
            .collect();
        LmBatch {
            batch,
            positions: Tensor::from_data(TensorData::new(pos, [loss_at.len()]), device),
            target_ids: loss_at.iter().map(|&(_, _, id)| id).collect(),
            rows: loss_at.iter().map(|&(r, _, _)| r).collect(),
            tokens,
        }
    }
}

/// Negative log-likelihood `[n]` of each loss position. Only those positions go through the
/// output head, so a 49k-token vocabulary costs `n × vocab`, not `b × t × vocab`.
pub fn position_nll(model: &Lm, lb: &LmBatch) -> Tensor<1> {
    crate::kernels::on_pool(|| {
        let h = model.hidden(&lb.batch);
        let [b, t, d] = h.dims();
        let n = lb.rows.len();
        debug_assert_eq!(lb.target_ids.len(), n);
        let h = h.reshape([b * t, d]).select(0, lb.positions.clone());
        crate::kernels::cross_entropy(model.logits(h), &lb.target_ids)
    })
}

/// Mean negative log-likelihood over the loss positions of a batch.
pub fn masked_nll(model: &Lm, lb: &LmBatch) -> Tensor<1> {
    let n = lb.rows.len().max(1) as f64;
    position_nll(model, lb).sum().div_scalar(n)
}

/// The loss positions of one example once `prompt ++ target` is cut to `max_len + 1` tokens:
/// position `j` of the input predicts token `j + 1`, and carries loss where that is a target.
fn loss_columns(ex: &TrainExample, max_len: usize) -> std::ops::Range<usize> {
    let before = ex.prompt.len() + ex.context.len();
    let len = (before + ex.target.len()).min(max_len + 1);
    before.saturating_sub(1)..len.saturating_sub(1)
}

/// Whether an example keeps at least one loss position within `max_len` (a prompt that fills
/// the whole context leaves none, and such an example can neither train nor be scored).
pub fn has_loss(ex: &TrainExample, max_len: usize) -> bool {
    !loss_columns(ex, max_len).is_empty()
}

/// Builds the shifted inputs and the loss positions of a batch of examples (right padding).
///
/// This is the one place training and scoring batches are built, and the guard that keeps
/// zero-size tensors away from the backend (its matmul kernels do not accept them): `None`
/// when there is no example or no loss position at all. Rows without a loss position are
/// still carried (they are padding for the others).
pub fn lm_batch(
    examples: &[&TrainExample],
    pad: u32,
    max_len: usize,
    device: &Device,
) -> Option<LmBatch> {
    let mut inputs = Vec::new();
    let mut tokens = 0u64;
    let mut loss_at: Vec<(usize, usize, u32)> = Vec::new();
    for (r, ex) in examples.iter().enumerate() {
        // 1. prompt ++ target, truncated to the model's length (+1 for the shift).
        let mut seq: Vec<u32> = ex
            .prompt
            .iter()
            .chain(&ex.context)
            .chain(&ex.target)
            .copied()
            .collect();
        seq.truncate(max_len + 1);
        tokens += seq.len() as u64;
        // 2. Input is seq[..n-1]; position j predicts seq[j+1], with loss where that is a target.
        for j in loss_columns(ex, max_len) {
            loss_at.push((r, j, seq[j + 1]));
        }
        inputs.push(seq[..seq.len().saturating_sub(1).max(1).min(seq.len())].to_vec());
    }
    if loss_at.is_empty() {
        return None;
    }
    let batch = Batch::new(&inputs, pad, false, device);
    Some(LmBatch::new(batch, &loss_at, tokens, device))
}

/// Whether an example has a loss position for `model` (an encoder–decoder truncates its
/// encoder input instead, so only the decoder side counts).
pub fn has_loss_for(model: &Lm, ex: &TrainExample, max_len: usize) -> bool {
    match model.decoder_start() {
        Some(_) => !ex.target.is_empty() && ex.context.len() < max_len,
        None => has_loss(ex, max_len),
    }
}

/// The training or scoring batch of `examples` for `model`: [`lm_batch`] for a decoder-only
/// student, [`seq2seq_batch`] for an encoder–decoder.
pub fn batch_for(
    model: &Lm,
    examples: &[&TrainExample],
    pad: u32,
    max_len: usize,
    device: &Device,
) -> Option<LmBatch> {
    match model {
        Lm::T5(m) => seq2seq_batch(examples, pad, m.decoder_start(), m.eos(), max_len, device),
        _ => lm_batch(examples, pad, max_len, device),
    }
}

/// An encoder–decoder's batch: the prompt (ending in `eos`, its last `max_len` tokens) goes to
/// the encoder; the decoder reads `start ++ context ++ target` shifted by one and predicts
/// `context ++ target`, with loss on the target's positions. Decoder rows are right-padded;
/// `None` when no row has a loss position.
pub fn seq2seq_batch(
    examples: &[&TrainExample],
    pad: u32,
    start: u32,
    eos: u32,
    max_len: usize,
    device: &Device,
) -> Option<LmBatch> {
    let mut enc = Vec::new();
    let mut dec = Vec::new();
    let mut loss_at: Vec<(usize, usize, u32)> = Vec::new();
    let mut tokens = 0u64;
    for (r, ex) in examples.iter().enumerate() {
        // 1. The encoder's input.
        let e = super::decode::with_eos(&ex.prompt, eos);
        let e = e[e.len().saturating_sub(max_len.max(1))..].to_vec();
        // 2. The decoder's: position j reads out[j − 1] (start at 0) and predicts out[j].
        let mut out: Vec<u32> = ex.context.iter().chain(&ex.target).copied().collect();
        out.truncate(max_len);
        for (j, &id) in out.iter().enumerate().skip(ex.context.len()) {
            loss_at.push((r, j, id));
        }
        let mut input = vec![start];
        input.extend(&out[..out.len().saturating_sub(1)]);
        tokens += (e.len() + out.len()) as u64;
        enc.push(e);
        dec.push(input);
    }
    if loss_at.is_empty() {
        return None;
    }
    let mut batch = Batch::new(&dec, pad, false, device);
    batch.encoder = Some(super::batch::EncoderInput::new(&enc, pad, device));
    Some(LmBatch::new(batch, &loss_at, tokens, device))
}

/// The sequences [`train`] draws, step by step: epoch orders ([`epoch_order`]) one after the
/// other, `grad_accum` micro-batches of `min(batch_size, sequences)` per step; under an epoch
/// budget no more than `epochs × sequences` in all, the last step taking what is left.
struct Draws<'a> {
    data: &'a [TrainExample],
    batch_size: usize,
    group_by_length: bool,
    rng: StdRng,
    /// The current epoch order, taken from the end.
    order: Vec<usize>,
    /// Sequences per micro-batch.
    micro_size: usize,
    /// Micro-batches per step.
    accum: usize,
    /// Sequences left to draw (epoch budget; none: no cap).
    left: Option<usize>,
}

impl<'a> Draws<'a> {
    fn new(data: &'a [TrainExample], opts: &TrainOptions) -> Self {
        Draws {
            data,
            batch_size: opts.batch_size,
            group_by_length: opts.group_by_length,
            rng: StdRng::seed_from_u64(opts.seed),
            order: Vec::new(),
            micro_size: opts.batch_size.min(data.len()),
            accum: opts.grad_accum.max(1),
            left: opts.budget.draws(data.len()),
        }
    }

    /// The micro-batches of the next optimiser step (example indices): `accum` of
    /// `micro_size`, or under an epoch budget as many as the sequences left fill (the last one
    /// possibly short; none once they are all drawn).
    fn next_step(&mut self) -> Vec<Vec<usize>> {
        let micro = self.left.map_or(self.accum, |l| {
            l.div_ceil(self.micro_size.max(1)).min(self.accum)
        });
        (0..micro)
            .map(|_| {
                let size = self
                    .left
                    .map_or(self.micro_size, |l| l.min(self.micro_size));
                if let Some(l) = &mut self.left {
                    *l -= size;
                }
                let mut idx = Vec::with_capacity(size);
                while idx.len() < size {
                    if self.order.is_empty() {
                        self.order = epoch_order(
                            self.data,
                            self.batch_size,
                            self.group_by_length,
                            &mut self.rng,
                        );
                    }
                    match self.order.pop() {
                        Some(i) => idx.push(i),
                        None => break, // no data: nothing to draw
                    }
                }
                idx
            })
            .collect()
    }
}

/// Why training could not start.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// No example at all.
    #[error("no training sequence")]
    NoData,
    /// Every example's prompt fills the model's context.
    #[error(
        "none of the {0} training sequences has a target token within the {1}-token context (every prompt fills it: raise student.max_seq_len)"
    )]
    NoTarget(usize, usize),
    /// Validation every 0 steps (`train.eval_every`, or a warm-up's steps, of 0).
    #[error("eval_every is 0: validation needs a step count of at least 1")]
    NoEvalEvery,
}

/// Trains `model` (whose parameters live on an autodiff device) on `data`.
///
/// `validate` scores a validation-mode copy; the best-scoring checkpoint is returned
/// (ties go to the later one). Never pass the test split to it.
pub fn train(
    mut model: Lm,
    data: &[TrainExample],
    pad: u32,
    opts: &TrainOptions,
    device: &Device,
    validate: Option<&dyn Fn(&Lm) -> f64>,
    progress: &ProgressBar,
) -> Result<TrainOutcome, TrainError> {
    // 0. Nothing to learn from is an error, never an empty batch. Examples without a loss
    //    position stay in the epoch order (as before this guard, so a run that worked then
    //    computes the same now); a micro-batch made only of them is skipped below.
    let max_len = model.max_seq_len();
    if data.is_empty() {
        return Err(TrainError::NoData);
    }
    if !data.iter().any(|e| has_loss_for(&model, e, max_len)) {
        return Err(TrainError::NoTarget(data.len(), max_len));
    }
    if opts.eval_every == 0 {
        return Err(TrainError::NoEvalEvery);
    }
    let mut optim = AdamWConfig::new()
        .with_weight_decay(opts.weight_decay as f32)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(1.0)))
        .init();
    let (mut loss_sum, mut loss_n, mut tokens) = (0.0, 0usize, 0u64);
    let steps = opts
        .budget
        .steps(data.len(), opts.batch_size, opts.grad_accum);
    let mut draws = Draws::new(data, opts);
    let mut out = TrainOutcome {
        model: model.valid(),
        best_step: 0,
        steps,
        best_val_accuracy: None,
        loss_curve: vec![],
        val_curve: vec![],
        tokens: 0,
        stopped_step: steps,
        stop_reason: StopReason::Budget,
    };
    // Validations since the last strict improvement, and the best accuracy so far.
    let (mut since_best, mut best_so_far) = (0usize, f64::NEG_INFINITY);
    progress.set_length(steps as u64);
    for step in 0..steps {
        // 1. Next micro-batches from a reshuffled epoch order.
        let micro_batches = draws.next_step();
        let micro = micro_batches.len();
        let loss_value;
        // 2–3 run on rayon's pool (`kernels::on_pool`: no sleep and wake per threaded op).
        (model, loss_value) = crate::kernels::on_pool(|| {
            let mut acc = GradientsAccumulator::new();
            let mut loss_value = 0f32;
            let mut accumulated = false;
            for idx in micro_batches {
                let examples: Vec<&TrainExample> = idx.iter().map(|&i| &data[i]).collect();
                let Some(lb) = batch_for(&model, &examples, pad, max_len, device) else {
                    continue;
                };
                accumulated = true;
                tokens += lb.tokens;
                // 2. Forward and backward; the loss is divided by the number of micro-batches
                //    so the summed gradient is that of their mean.
                let loss = masked_nll(&model, &lb).div_scalar(micro as f64);
                loss_value += loss.clone().into_scalar::<f32>();
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                acc.accumulate(&model, grads);
            }
            // 3. AdamW step at the scheduled rate (none when every row lacked a loss position).
            if accumulated {
                model = optim.step(lr_at(step, steps, opts), model, acc.grads());
            }
            (model, loss_value)
        });
        loss_sum += loss_value as f64;
        loss_n += 1;
        progress.inc(1);
        progress.set_message(format!("loss {loss_value:.3}"));
        // 4. Checkpoint: keep the best on validation.
        let done = step + 1;
        if done % opts.eval_every == 0 || done == steps {
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
                    // 5. Early stopping: a tie keeps the later checkpoint (above) but is no
                    //    improvement, so a plateau runs out the patience.
                    if acc > best_so_far {
                        (best_so_far, since_best) = (acc, 0);
                    } else {
                        since_best += 1;
                    }
                    if opts.patience.is_some_and(|p| since_best >= p) {
                        out.stopped_step = done;
                        out.stop_reason = StopReason::Patience;
                        break;
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
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(prompt: usize, target: usize) -> TrainExample {
        TrainExample {
            prompt: (0..prompt as u32).map(|i| 2 + i % 7).collect(),
            target: (0..target as u32).map(|i| 3 + i % 5).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn no_zero_size_batch_is_built() {
        let device = Device::flex();
        // Nothing at all, a prompt that fills the context, an empty example.
        assert!(lm_batch(&[], 0, 8, &device).is_none());
        assert!(lm_batch(&[&ex(9, 3)], 0, 8, &device).is_none());
        assert!(lm_batch(&[&ex(0, 0)], 0, 8, &device).is_none());
        assert!(lm_batch(&[&ex(0, 1)], 0, 8, &device).is_none());
        assert!(!has_loss(&ex(9, 3), 8) && has_loss(&ex(8, 1), 8));
        // A row without loss rides along with one that has some.
        let lb = lm_batch(&[&ex(9, 3), &ex(2, 2)], 0, 8, &device).unwrap();
        assert_eq!(lb.rows, vec![1, 1]);
        assert!(has_loss(&ex(7, 1), 8) && has_loss(&ex(0, 2), 8));
        // Loss columns agree with what the batch builds.
        for (p, t) in [(1, 1), (3, 4), (7, 5), (0, 3), (5, 0)] {
            let e = ex(p, t);
            let n = lm_batch(&[&e], 0, 8, &device).map_or(0, |b| b.rows.len());
            assert_eq!(n, loss_columns(&e, 8).len(), "prompt {p}, target {t}");
        }
    }

    /// A tiny scratch student on an autodiff flex device.
    fn tiny() -> (Lm, Device) {
        let device = Device::flex().autodiff();
        let config = crate::student::model::StudentConfig {
            vocab_size: 16,
            d_model: 8,
            layers: 1,
            heads: 2,
            d_ff: 16,
            max_seq_len: 16,
        };
        (
            crate::student::lm::init_student(&config, 0, &device),
            device,
        )
    }

    /// Trains `tiny()` for 20 steps, validating every 2, where the n-th validation reads
    /// `script[n]`: (steps validated, stopped_step, best_step, stop reason).
    fn scripted(script: &[f64], patience: Option<usize>) -> (Vec<usize>, usize, usize, StopReason) {
        let (model, device) = tiny();
        let calls = std::cell::Cell::new(0usize);
        let validate = |_: &Lm| {
            let n = calls.get();
            calls.set(n + 1);
            script[n.min(script.len() - 1)]
        };
        let mut opts = options(Budget::Steps(20), 1, 1);
        (opts.eval_every, opts.patience) = (2, patience);
        let data = [ex(2, 2), ex(1, 3)];
        let out = train(
            model,
            &data,
            0,
            &opts,
            &device,
            Some(&validate),
            &ProgressBar::hidden(),
        )
        .unwrap();
        let steps = out.val_curve.iter().map(|x| x.0).collect();
        (steps, out.stopped_step, out.best_step, out.stop_reason)
    }

    #[test]
    fn early_stopping_stops_where_the_scripted_curve_says() {
        // Validations at steps 2, 4, 6, …: the best (0.5) at step 4, a tie at step 6 (kept as the
        // checkpoint, but no improvement), then lower: patience 3 stops at step 10.
        let curve = [0.1, 0.5, 0.5, 0.4, 0.45, 0.9, 0.9];
        let (steps, stopped, best, why) = scripted(&curve, Some(3));
        assert_eq!(steps, vec![2, 4, 6, 8, 10]);
        assert_eq!((stopped, best, why), (10, 6, StopReason::Patience));
        // A new best resets the count: patience 4 sees 0.9 at step 12 and goes on; its ties at
        // 14–20 run the patience out exactly at the budget's last step.
        let (_, stopped, best, why) = scripted(&curve, Some(4));
        assert_eq!((stopped, best, why), (20, 20, StopReason::Patience));
        let (_, stopped, _, why) = scripted(&curve, Some(5));
        assert_eq!((stopped, why), (20, StopReason::Budget));
        // Without patience the whole budget runs, whatever the curve.
        let (steps, stopped, best, why) = scripted(&[0.5, 0.1], None);
        assert_eq!(steps.len(), 10);
        assert_eq!((stopped, best, why), (20, 2, StopReason::Budget));
    }

    #[test]
    fn convergence_counts_validations_after_the_first_best() {
        let c = |v: &[f64]| -> Vec<(usize, f64)> {
            v.iter().enumerate().map(|(i, &a)| (i + 1, a)).collect()
        };
        // Best at the last validation: still improving.
        assert!(!converged(&c(&[0.1, 0.2, 0.3]), None));
        // Three validations after the best (without patience): converged.
        assert!(converged(&c(&[0.1, 0.4, 0.3, 0.35, 0.2]), None));
        assert!(!converged(&c(&[0.1, 0.4, 0.3, 0.35]), None));
        // A tie later is no new best: the first time the maximum was reached counts.
        assert!(converged(&c(&[0.4, 0.4, 0.4, 0.4]), None));
        // With patience 2, two validations suffice.
        assert!(converged(&c(&[0.1, 0.4, 0.3, 0.35]), Some(2)));
        assert!(!converged(&[], Some(2)));
    }

    #[test]
    fn eval_every_zero_is_an_error_not_a_panic() {
        // Every caller (the train stage, the score stage's warm-up) goes through `train`, so the
        // check lives here: `done % 0` used to panic.
        let (model, device) = tiny();
        let mut opts = options(Budget::Steps(2), 1, 1);
        opts.eval_every = 0;
        let out = train(
            model,
            &[ex(2, 2)],
            0,
            &opts,
            &device,
            None,
            &ProgressBar::hidden(),
        );
        assert!(
            matches!(out, Err(TrainError::NoEvalEvery)),
            "{:?}",
            out.err()
        );
    }

    #[test]
    fn grouped_epochs_batch_similar_lengths_and_cover_every_example() {
        // 40 examples of lengths 1..=40 in batches of 4.
        let data: Vec<TrainExample> = (1..=40).map(|t| ex(0, t)).collect();
        let mut rng = StdRng::seed_from_u64(3);
        let plain = epoch_order(&data, 4, false, &mut rng);
        let mut rng = StdRng::seed_from_u64(3);
        let grouped = epoch_order(&data, 4, true, &mut rng);
        for o in [&plain, &grouped] {
            let mut s = o.clone();
            s.sort();
            assert_eq!(s, (0..40).collect::<Vec<_>>());
        }
        // Padding of a batch = Σ (longest − own length); taken from the end, as train does.
        let waste = |o: &[usize]| -> usize {
            o.rchunks(4)
                .map(|b| {
                    let l: Vec<usize> = b.iter().map(|&i| data[i].target.len()).collect();
                    l.iter().map(|x| l.iter().max().unwrap() - x).sum::<usize>()
                })
                .sum()
        };
        // Sorted windows: each batch spans 4 consecutive lengths (waste 6), the shuffle far more.
        assert_eq!(waste(&grouped), 10 * 6);
        assert!(waste(&plain) > 3 * waste(&grouped), "{}", waste(&plain));
        // The batches still come in a shuffled order.
        let firsts: Vec<usize> = grouped
            .rchunks(4)
            .map(|b| data[b[0]].target.len())
            .collect();
        assert!(firsts.windows(2).any(|w| w[0] > w[1]));
    }

    #[test]
    fn schedule_warms_up_then_decays() {
        let o = TrainOptions {
            budget: Budget::Steps(100),
            batch_size: 1,
            grad_accum: 1,
            lr: 1.0,
            warmup_steps: 10,
            weight_decay: 0.0,
            eval_every: 10,
            seed: 0,
            group_by_length: false,
            patience: None,
        };
        assert!((lr_at(0, 100, &o) - 0.1).abs() < 1e-9);
        assert!((lr_at(9, 100, &o) - 1.0).abs() < 1e-9);
        assert!(lr_at(50, 100, &o) < 1.0 && lr_at(50, 100, &o) > lr_at(90, 100, &o));
        assert!((lr_at(100, 100, &o) - 0.1).abs() < 1e-9);
        // A run shorter than the warm-up (an epoch budget over few sequences) only ramps up.
        let lr: Vec<f64> = (0..4).map(|s| lr_at(s, 4, &o)).collect();
        assert!(lr.windows(2).all(|w| w[0] < w[1]) && lr[3] < 1.0, "{lr:?}");
    }

    fn options(budget: Budget, batch_size: usize, grad_accum: usize) -> TrainOptions {
        TrainOptions {
            budget,
            batch_size,
            grad_accum,
            lr: 1.0,
            warmup_steps: 2,
            weight_decay: 0.0,
            eval_every: 10,
            seed: 7,
            group_by_length: false,
            patience: None,
        }
    }

    #[test]
    fn epoch_steps_are_the_ceiling_of_the_passes() {
        // ceil(epochs × sequences / (min(batch, sequences) × grad_accum)).
        assert_eq!(epoch_steps(1, 48, 8, 1), 6);
        assert_eq!(epoch_steps(1, 49, 8, 1), 7);
        assert_eq!(epoch_steps(3, 10, 4, 1), 8);
        assert_eq!(epoch_steps(3, 10, 4, 2), 4);
        assert_eq!(
            epoch_steps(2, 5, 16, 1),
            2,
            "a batch larger than the data holds it all"
        );
        assert_eq!(epoch_steps(2, 5, 16, 3), 1);
        assert_eq!(epoch_steps(1, 0, 8, 1), 0);
        assert_eq!(epoch_steps(1, 7, 0, 0), 7, "no division by zero");
        assert_eq!(epoch_steps(usize::MAX, 3, 1, 1), usize::MAX, "saturates");
        assert_eq!(Budget::Epochs(3).steps(10, 4, 2), 4);
        assert_eq!(Budget::Steps(300).steps(10, 4, 2), 300);
    }

    #[test]
    fn an_epoch_budget_draws_every_sequence_exactly_epochs_times() {
        let data: Vec<TrainExample> = (1..=10).map(|t| ex(0, t)).collect();
        // (sequences, batch, accum, epochs, group_by_length)
        for (n, batch, accum, epochs, group) in [
            (10, 4, 1, 3, false),
            (10, 4, 2, 3, false),
            (10, 4, 3, 1, true),
            (10, 5, 1, 2, false),
            (7, 16, 1, 2, false),
            (7, 16, 2, 3, true),
            (1, 4, 1, 5, false),
        ] {
            let data = &data[..n];
            let mut o = options(Budget::Epochs(epochs), batch, accum);
            o.group_by_length = group;
            let steps = o.budget.steps(n, batch, accum);
            let mut draws = Draws::new(data, &o);
            let mut seen = vec![0usize; n];
            let micro = batch.min(n);
            for step in 0..steps {
                let mbs = draws.next_step();
                assert!(!mbs.is_empty() && mbs.len() <= accum);
                let last = step + 1 == steps;
                for (j, mb) in mbs.iter().enumerate() {
                    // Full micro-batches; only the last one of the last step may be short.
                    if !(last && j + 1 == mbs.len()) {
                        assert_eq!(mb.len(), micro, "{n} {batch} {accum} {epochs}: step {step}");
                    }
                    assert!(!mb.is_empty());
                    for &i in mb {
                        seen[i] += 1;
                    }
                }
                if !last {
                    assert_eq!(mbs.len(), accum);
                }
            }
            assert_eq!(seen, vec![epochs; n], "{n} {batch} {accum} {epochs}");
            assert!(draws.next_step().is_empty(), "nothing left past the budget");
        }
    }

    #[test]
    fn a_steps_budget_draws_as_before_epochs_existed() {
        // The draw loop as it was: `accum` micro-batches of min(batch, n) per step, popped from
        // epoch orders one after the other.
        let data: Vec<TrainExample> = (1..=10).map(|t| ex(0, t)).collect();
        for (batch, accum, group) in [(4, 1, false), (4, 3, true), (16, 2, false)] {
            let mut o = options(Budget::Steps(9), batch, accum);
            o.group_by_length = group;
            let mut rng = StdRng::seed_from_u64(o.seed);
            let mut order: Vec<usize> = Vec::new();
            let mut draws = Draws::new(&data, &o);
            for _ in 0..9 {
                let mut before = Vec::new();
                for _ in 0..accum {
                    let mut idx = Vec::new();
                    while idx.len() < batch.min(data.len()) {
                        if order.is_empty() {
                            order = epoch_order(&data, batch, group, &mut rng);
                        }
                        idx.push(order.pop().unwrap());
                    }
                    before.push(idx);
                }
                assert_eq!(draws.next_step(), before);
            }
        }
    }
}
