//! Fused RMSNorm over the last dim: `y = x / √(mean(x²) + ε) · γ` (Llama's norm).
//!
//! burn-nn's `RmsNorm` is five ops (square, mean, add, sqrt, divide) and a multiply, each with
//! its own backward. Here: one pass forward, keeping `1/rms` per row, and one backward,
//! `dx = (1/rms) · (dy⊙γ − x̂ · mean(dy⊙γ⊙x̂))`, `dγ = Σ_rows dy⊙x̂` with `x̂ = x / rms`.

use super::simd::{self, multiversion};
use super::{contiguous, from_vec, fused_on, map_rows, map_rows_summing, slice};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::nn::RmsNorm;
use burn::prelude::*;

/// The fused RMSNorm as a backend op.
#[backend_extension(Flex, Autodiff)]
pub trait FusedRmsNorm: Backend {
    /// RMSNorm of `x` `[…, d]` with scale `gamma` `[d]`.
    fn fused_rms_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self>;
}

multiversion! {
    /// One row: out = x · inv · γ, returning inv = 1/√(mean(x²) + ε).
    fn norm_row(x: &[f32], gamma: &[f32], eps: f32, out: &mut [f32]) -> f32 {
        let inv = 1.0 / (simd::dot(x, x) / x.len() as f32 + eps).sqrt();
        for ((o, &x), &g) in out.iter_mut().zip(x).zip(gamma) {
            *o = x * inv * g;
        }
        inv
    }
}

multiversion! {
    /// One row of the backward: dx into `out`, dγ accumulated into `dgamma`.
    fn norm_row_backward(x: &[f32], dy: &[f32], gamma: &[f32], inv: f32, out: &mut [f32], dgamma: &mut [f32]) {
        let d = x.len() as f32;
        // c = mean(dy ⊙ γ ⊙ x̂), with x̂ = x · inv.
        let mut c = 0f32;
        for ((&x, &dy), &g) in x.iter().zip(dy).zip(gamma) {
            c = (dy * g).mul_add(x * inv, c);
        }
        c /= d;
        for (((o, dg), (&x, &dy)), &g) in out.iter_mut().zip(dgamma.iter_mut()).zip(x.iter().zip(dy)).zip(gamma) {
            let xh = x * inv;
            *o = inv * (dy * g - xh * c);
            *dg = dy.mul_add(xh, *dg);
        }
    }
}

/// Forward: (y, 1/rms per row).
fn forward(x: &FlexTensor, gamma: &FlexTensor, eps: f32) -> (FlexTensor, Vec<f32>) {
    let shape = x.shape();
    let (x, g) = (contiguous(x), contiguous(gamma));
    let (xs, gs) = (slice(&x), slice(&g));
    let d = gs.len();
    let (y, inv) = map_rows(xs.len() / d.max(1), d, |r, out| {
        norm_row(&xs[r * d..(r + 1) * d], gs, eps, out)
    });
    (from_vec(y, shape), inv)
}

/// Backward: (dx, dγ).
fn backward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    inv: &[f32],
    dy: &FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let (shape, gshape) = (x.shape(), gamma.shape());
    let (x, g, dy) = (contiguous(x), contiguous(gamma), contiguous(dy));
    let (xs, gs, dys) = (slice(&x), slice(&g), slice(&dy));
    let d = gs.len();
    let (dx, [dgamma]) = map_rows_summing(xs.len() / d.max(1), d, |r, out, [dg]| {
        let row = r * d..(r + 1) * d;
        norm_row_backward(&xs[row.clone()], &dys[row], gs, inv[r], out, dg);
    });
    (from_vec(dx, shape), from_vec(dgamma, gshape))
}

impl FusedRmsNorm for Flex {
    fn fused_rms_norm(x: FlexTensor, gamma: FlexTensor, eps: f32) -> FlexTensor {
        forward(&x, &gamma, eps).0
    }
}

#[derive(Debug)]
struct RmsNormBackward;

impl Backward<Flex, 2> for RmsNormBackward {
    /// (x, γ, 1/rms per row).
    type State = (FlexTensor, FlexTensor, Vec<f32>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_g] = ops.parents;
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (x, g, inv) = ops.state;
        let (dx, dg) = backward(&x, &g, &inv, &dy);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_g {
            grads.register::<Flex>(node.id, dg);
        }
    }
}

impl<C: CheckpointStrategy> FusedRmsNorm for Autodiff<Flex, C> {
    fn fused_rms_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self> {
        let (x, node_x) = x.into_parts();
        let (g, node_g) = gamma.into_parts();
        match RmsNormBackward
            .prepare::<C>([node_x, node_g])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, inv) = forward(&x, &g, eps);
                prep.finish((x, g, inv), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x, &g, eps).0),
        }
    }
}

/// burn-nn's [`RmsNorm`] module, fused on flex (its own forward elsewhere).
pub fn rms_norm<const D: usize>(norm: &RmsNorm, x: Tensor<D>) -> Tensor<D> {
    if !fused_on(&x.device(), "rms_norm") {
        return norm.forward(x);
    }
    rms_norm_fused(norm, x)
}

/// The fused op itself (flex devices only).
pub fn rms_norm_fused<const D: usize>(norm: &RmsNorm, x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(Dispatch::fused_rms_norm(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.epsilon as f32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, data, values};
    use burn::module::Param;

    /// (y, dx, dγ) of Σ w·y on random x (with a padding row of zeros), fused or burn-nn's.
    fn run(fused: bool, [b, t, d]: [usize; 3]) -> [Vec<f32>; 3] {
        let device = Device::flex().autodiff();
        let norm = RmsNorm {
            gamma: Param::from_tensor(Tensor::<1>::from_floats(
                values(d, 6, 1.5).as_slice(),
                &device,
            )),
            epsilon: 1e-5,
        };
        let mut xv = values(b * t * d, 7, 3.0);
        xv[..d].iter_mut().for_each(|v| *v = 0.0);
        let x = Tensor::<1>::from_floats(xv.as_slice(), &device)
            .reshape([b, t, d])
            .require_grad();
        let w = Tensor::<1>::from_floats(values(b * t * d, 8, 1.0).as_slice(), &device)
            .reshape([b, t, d]);
        let y = if fused {
            rms_norm_fused(&norm, x.clone())
        } else {
            norm.forward(x.clone())
        };
        let grads = (y.clone() * w).sum().backward();
        let dg = norm.gamma.val().grad(&grads).expect("gamma grad");
        [data(y), data(x.grad(&grads).expect("x grad")), data(dg)]
    }

    #[test]
    fn values_and_gradients_match_burn_nn() {
        for shape in [[1, 2, 8], [4, 70, 96]] {
            let (a, b) = (run(true, shape), run(false, shape));
            for (i, what) in ["y", "dx", "dgamma"].iter().enumerate() {
                assert_close(what, &a[i], &b[i]);
            }
        }
    }
}
