//! Fused cross-entropy over the loss rows: `nll[r] = logsumexp(logits[r]) − logits[r, target[r]]`.
//!
//! burn's decomposed form (log-softmax, then gather) makes five full-size buffers of
//! `rows × vocab` forward and as many backward; for SmolLM2 (49 152 tokens) one such buffer of a
//! 8 × 256 batch is 400 MB. Here the forward reads the logits once (max, then Σ exp) and keeps
//! only the row's log-sum-exp; the backward writes the gradient in one pass:
//! `d logits[r, j] = g[r] · (softmax(logits[r])_j − [j = target[r]])`.

use super::simd::{self, LANES, multiversion};
use super::{contiguous, from_vec, fused_on, map_rows, rows_per_task, slice};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use rayon::prelude::*;

/// The fused cross-entropy as a backend op (flex, and `Autodiff<Flex>` with its backward).
#[backend_extension(Flex, Autodiff)]
pub trait FusedCrossEntropy: Backend {
    /// NLL `[n]` of `targets` (one class per row) under `logits` `[n, classes]`.
    fn fused_cross_entropy(logits: FloatTensor<Self>, targets: Vec<u32>) -> FloatTensor<Self>;
}

multiversion! {
    /// log Σ_j e^{x_j} of one row (max-shifted).
    fn logsumexp(row: &[f32]) -> f32 {
        let m = simd::max(row);
        let mut acc = [0f32; LANES];
        let chunks = row.chunks_exact(LANES);
        let mut s: f32 = chunks.remainder().iter().map(|&x| simd::exp(x - m)).sum();
        for c in chunks {
            for i in 0..LANES {
                acc[i] += simd::exp(c[i] - m);
            }
        }
        s += acc.iter().sum::<f32>();
        m + s.ln()
    }
}

multiversion! {
    /// out_j = g · e^{x_j − lse} (the softmax row, scaled by the row's upstream gradient).
    fn scaled_softmax(row: &[f32], lse: f32, g: f32, out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(row) {
            *o = g * simd::exp(x - lse);
        }
    }
}

/// Forward: (nll `[n]`, log-sum-exp per row).
fn forward(logits: &FlexTensor, targets: &[u32]) -> (FlexTensor, Vec<f32>) {
    let [n, v] = logits.shape().dims::<2>();
    assert_eq!(n, targets.len(), "one target per row");
    let x = contiguous(logits);
    let xs = slice(&x);
    let mut nll = vec![0f32; n];
    let mut lse = vec![0f32; n];
    let per = rows_per_task(n, v);
    nll.par_chunks_mut(per)
        .zip(lse.par_chunks_mut(per))
        .enumerate()
        .for_each(|(c, (nll, lse))| {
            for (i, (nll, lse)) in nll.iter_mut().zip(lse.iter_mut()).enumerate() {
                let r = c * per + i;
                let row = &xs[r * v..(r + 1) * v];
                let t = targets[r] as usize;
                assert!(t < v, "target id {t} outside the {v} classes");
                *lse = logsumexp(row);
                *nll = *lse - row[t];
            }
        });
    (from_vec(nll, burn::tensor::Shape::new([n])), lse)
}

/// Backward: d logits `[n, v]` for upstream `g` `[n]`.
fn backward(logits: &FlexTensor, lse: &[f32], targets: &[u32], g: &FlexTensor) -> FlexTensor {
    let [n, v] = logits.shape().dims::<2>();
    let (x, g) = (contiguous(logits), contiguous(g));
    let (xs, gs) = (slice(&x), slice(&g));
    let (dx, _) = map_rows(n, v, |r, out| {
        scaled_softmax(&xs[r * v..(r + 1) * v], lse[r], gs[r], out);
        out[targets[r] as usize] -= gs[r];
    });
    from_vec(dx, burn::tensor::Shape::new([n, v]))
}

impl FusedCrossEntropy for Flex {
    fn fused_cross_entropy(logits: FlexTensor, targets: Vec<u32>) -> FlexTensor {
        forward(&logits, &targets).0
    }
}

#[derive(Debug)]
struct CrossEntropyBackward;

impl Backward<Flex, 1> for CrossEntropyBackward {
    /// (logits, log-sum-exp per row, targets).
    type State = (FlexTensor, Vec<f32>, Vec<u32>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let g: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (logits, lse, targets) = ops.state;
        if let Some(node) = node {
            grads.register::<Flex>(node.id, backward(&logits, &lse, &targets, &g));
        }
    }
}

impl<C: CheckpointStrategy> FusedCrossEntropy for Autodiff<Flex, C> {
    fn fused_cross_entropy(logits: FloatTensor<Self>, targets: Vec<u32>) -> FloatTensor<Self> {
        let (x, node) = logits.into_parts();
        match CrossEntropyBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (nll, lse) = forward(&x, &targets);
                prep.finish((x, lse, targets), nll)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x, &targets).0),
        }
    }
}

/// NLL `[n]` of `targets` under `logits` `[n, classes]` (fused on flex, decomposed elsewhere).
pub fn cross_entropy(logits: Tensor<2>, targets: &[u32]) -> Tensor<1> {
    if !fused_on(&logits.device(), "cross_entropy") {
        return cross_entropy_decomposed(logits, targets);
    }
    cross_entropy_fused(logits, targets)
}

/// The fused op itself (flex devices only).
pub fn cross_entropy_fused(logits: Tensor<2>, targets: &[u32]) -> Tensor<1> {
    Tensor::from_dispatch(Dispatch::fused_cross_entropy(
        logits.into_dispatch(),
        targets.to_vec(),
    ))
}

/// The same with burn's ops: `−log_softmax(logits).gather(targets)`.
pub fn cross_entropy_decomposed(logits: Tensor<2>, targets: &[u32]) -> Tensor<1> {
    let n = targets.len();
    let ids: Vec<i64> = targets.iter().map(|&t| t as i64).collect();
    let t = Tensor::<1, Int>::from_data(TensorData::new(ids, [n]), &logits.device());
    log_softmax(logits, 1)
        .gather(1, t.reshape([n, 1]))
        .reshape([n])
        .neg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, data, values};

    /// (nll, d logits) of Σ w·nll for random logits, fused or decomposed.
    fn run(fused: bool, n: usize, v: usize) -> (Vec<f32>, Vec<f32>) {
        let device = Device::flex().autodiff();
        let mut x = values(n * v, 1, 8.0);
        // A masked-out class (−1e9) and a large logit, as real logits can have.
        x[3] = -1e9;
        x[v + 1] = 60.0;
        let x = Tensor::<1>::from_floats(x.as_slice(), &device)
            .reshape([n, v])
            .require_grad();
        let targets: Vec<u32> = (0..n).map(|r| ((r * 7 + 1) % v) as u32).collect();
        let w = Tensor::<1>::from_floats(values(n, 2, 1.0).as_slice(), &device);
        let nll = if fused {
            cross_entropy_fused(x.clone(), &targets)
        } else {
            cross_entropy_decomposed(x.clone(), &targets)
        };
        let grads = (nll.clone() * w).sum().backward();
        (data(nll), data(x.grad(&grads).expect("logits grad")))
    }

    #[test]
    fn values_and_gradients_match_the_decomposed_ops() {
        // Small (one task) and large (threaded, uneven last task) shapes.
        for (n, v) in [(5, 7), (37, 1031)] {
            let (a, b) = (run(true, n, v), run(false, n, v));
            assert_close("nll", &a.0, &b.0);
            assert_close("d logits", &a.1, &b.1);
        }
    }

    #[test]
    fn inference_on_plain_flex() {
        let device = Device::flex();
        let x = Tensor::<1>::from_floats(values(12, 3, 4.0).as_slice(), &device).reshape([3, 4]);
        let t = [0u32, 3, 1];
        assert_close(
            "nll",
            &data(cross_entropy_fused(x.clone(), &t)),
            &data(cross_entropy_decomposed(x, &t)),
        );
    }
}
