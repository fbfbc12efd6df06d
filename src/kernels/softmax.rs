//! Fused masked softmax of attention: `y = softmax(scores · scale + mask)` over the keys.
//!
//! The mask (`[b, 1, q, k]`, 0 where attending is allowed and −1e9 elsewhere, broadcast over the
//! heads) is a constant: it is built from the batch, never learned, and gets no gradient. One
//! pass forward (scale, add, max, exp, normalise) instead of four ops with four buffers, and one
//! backward: `d scores = scale · y ⊙ (dy − Σ_k dy ⊙ y)`.

use super::simd::{self, multiversion};
use super::{contiguous, from_vec, fused_on, map_rows, slice};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::activation::softmax;

/// The fused masked softmax as a backend op.
#[backend_extension(Flex, Autodiff)]
pub trait FusedMaskedSoftmax: Backend {
    /// `softmax(scores · scale + mask, dim 3)` for scores `[b, h, q, k]` and mask `[b, 1, q, k]`.
    fn fused_masked_softmax(
        scores: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self>;
}

/// row = softmax(row): the max, the exponentials, the normalisation.
#[inline(always)]
fn normalise(row: &mut [f32]) {
    let m = simd::max(row);
    for o in row.iter_mut() {
        *o = simd::exp(*o - m);
    }
    let inv = 1.0 / simd::sum(row);
    for o in row.iter_mut() {
        *o *= inv;
    }
}

multiversion! {
    /// One row: out = softmax(x · scale + mask).
    fn softmax_row(x: &[f32], mask: &[f32], scale: f32, out: &mut [f32]) {
        for ((o, &x), &b) in out.iter_mut().zip(x).zip(mask) {
            *o = x.mul_add(scale, b);
        }
        normalise(out);
    }
}

multiversion! {
    /// One row in place: row = softmax(row · scale + mask) (fused attention's scores).
    pub(crate) fn softmax_row_in_place(row: &mut [f32], mask: &[f32], scale: f32) {
        for (o, &b) in row.iter_mut().zip(mask) {
            *o = o.mul_add(scale, b);
        }
        normalise(row);
    }
}

multiversion! {
    /// One row of the backward: out = scale · y ⊙ (dy − Σ dy ⊙ y).
    fn softmax_row_backward(y: &[f32], dy: &[f32], scale: f32, out: &mut [f32]) {
        let dot = simd::dot(dy, y);
        for ((o, &y), &dy) in out.iter_mut().zip(y).zip(dy) {
            *o = scale * y * (dy - dot);
        }
    }
}

multiversion! {
    /// The backward in place: row holds dy and becomes scale · y ⊙ (dy − Σ dy ⊙ y).
    pub(crate) fn softmax_row_backward_in_place(y: &[f32], row: &mut [f32], scale: f32) {
        let dot = simd::dot(row, y);
        for (o, &y) in row.iter_mut().zip(y) {
            *o = scale * y * (*o - dot);
        }
    }
}

fn forward(scores: &FlexTensor, mask: &FlexTensor, scale: f32) -> FlexTensor {
    let [b, h, q, k] = scores.shape().dims::<4>();
    assert_eq!(
        mask.shape().dims::<4>(),
        [b, 1, q, k],
        "attention mask is [batch, 1, queries, keys]"
    );
    let (x, m) = (contiguous(scores), contiguous(mask));
    let (xs, ms) = (slice(&x), slice(&m));
    let (y, _) = map_rows(b * h * q, k, |r, out| {
        // The mask row of query r: its batch's, shared by the heads.
        let mr = (r / (h * q)) * q + r % q;
        softmax_row(
            &xs[r * k..(r + 1) * k],
            &ms[mr * k..(mr + 1) * k],
            scale,
            out,
        );
    });
    from_vec(y, scores.shape())
}

fn backward(y: &FlexTensor, dy: &FlexTensor, scale: f32) -> FlexTensor {
    let shape = y.shape();
    let k = shape[3];
    let (y, dy) = (contiguous(y), contiguous(dy));
    let (ys, dys) = (slice(&y), slice(&dy));
    let (dx, _) = map_rows(ys.len() / k.max(1), k, |r, out| {
        let row = r * k..(r + 1) * k;
        softmax_row_backward(&ys[row.clone()], &dys[row], scale, out);
    });
    from_vec(dx, shape)
}

impl FusedMaskedSoftmax for Flex {
    fn fused_masked_softmax(scores: FlexTensor, mask: FlexTensor, scale: f32) -> FlexTensor {
        forward(&scores, &mask, scale)
    }
}

#[derive(Debug)]
struct MaskedSoftmaxBackward;

impl Backward<Flex, 1> for MaskedSoftmaxBackward {
    /// (the softmax output y, scale).
    type State = (FlexTensor, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (y, scale) = ops.state;
        if let Some(node) = node {
            grads.register::<Flex>(node.id, backward(&y, &dy, scale));
        }
    }
}

impl<C: CheckpointStrategy> FusedMaskedSoftmax for Autodiff<Flex, C> {
    fn fused_masked_softmax(
        scores: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        scale: f32,
    ) -> FloatTensor<Self> {
        let (x, node) = scores.into_parts();
        // The mask is a constant of the batch: no gradient flows to it.
        let (m, _) = mask.into_parts();
        match MaskedSoftmaxBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = forward(&x, &m, scale);
                prep.finish((y.clone(), scale), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x, &m, scale)),
        }
    }
}

/// `softmax(scores · scale + mask)` over the last dim; scores `[b, h, q, k]`, mask `[b, 1, q, k]`
/// (a constant: it gets no gradient). Fused on flex, decomposed elsewhere.
pub fn masked_softmax(scores: Tensor<4>, mask: Tensor<4>, scale: f32) -> Tensor<4> {
    if !fused_on(&scores.device(), "masked_softmax") {
        return masked_softmax_decomposed(scores, mask, scale);
    }
    masked_softmax_fused(scores, mask, scale)
}

/// The fused op itself (flex devices only).
pub fn masked_softmax_fused(scores: Tensor<4>, mask: Tensor<4>, scale: f32) -> Tensor<4> {
    Tensor::from_dispatch(Dispatch::fused_masked_softmax(
        scores.into_dispatch(),
        mask.into_dispatch(),
        scale,
    ))
}

/// The same with burn's ops.
pub fn masked_softmax_decomposed(scores: Tensor<4>, mask: Tensor<4>, scale: f32) -> Tensor<4> {
    softmax(scores.mul_scalar(scale) + mask, 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, data, values};

    /// (y, d scores) of Σ w·y with a causal + key-padding mask, fused or decomposed.
    fn run(fused: bool, [b, h, q, k]: [usize; 4]) -> (Vec<f32>, Vec<f32>) {
        let device = Device::flex().autodiff();
        let x = Tensor::<1>::from_floats(values(b * h * q * k, 4, 6.0).as_slice(), &device)
            .reshape([b, h, q, k])
            .require_grad();
        // Row r of batch i: causal over the keys, and the last `i` keys are padding.
        let mut m = vec![0f32; b * q * k];
        for i in 0..b {
            for qi in 0..q {
                for ki in 0..k {
                    if ki > qi + (k - q) || (ki + i >= k && ki != qi + (k - q)) {
                        m[(i * q + qi) * k + ki] = -1e9;
                    }
                }
            }
        }
        let m = Tensor::<1>::from_floats(m.as_slice(), &device).reshape([b, 1, q, k]);
        let w = Tensor::<1>::from_floats(values(b * h * q * k, 5, 1.0).as_slice(), &device)
            .reshape([b, h, q, k]);
        let scale = 0.125;
        let y = if fused {
            masked_softmax_fused(x.clone(), m, scale)
        } else {
            masked_softmax_decomposed(x.clone(), m, scale)
        };
        let grads = (y.clone() * w).sum().backward();
        (data(y), data(x.grad(&grads).expect("scores grad")))
    }

    #[test]
    fn values_and_gradients_match_the_decomposed_ops() {
        // Tiny (one task), threaded, and decoding-shaped (one query over cached keys).
        for shape in [[2, 2, 3, 3], [3, 4, 40, 40], [4, 3, 1, 17]] {
            let (a, b) = (run(true, shape), run(false, shape));
            assert_close("y", &a.0, &b.0);
            assert_close("d scores", &a.1, &b.1);
        }
    }
}
