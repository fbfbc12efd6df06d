//! Fused LayerNorm over the last dim: `y = (x − μ) / √(σ² + ε) · γ + β` (the scratch student's
//! norm).
//!
//! flex fuses LayerNorm's forward, but under `Autodiff` burn 0.22.1 decomposes it (mean,
//! subtract, square, mean, sqrt, divide, scale, shift: eight ops and their backwards). Here: one
//! pass forward, keeping μ and 1/σ per row, and one backward with `x̂ = (x − μ)/σ`,
//! `dx = (1/σ) · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ ⊙ x̂))`, `dx̂ = dy ⊙ γ`, `dγ = Σ dy ⊙ x̂`, `dβ = Σ dy`.

use super::simd::{self, multiversion};
use super::{contiguous, from_vec, fused_on, map_rows, map_rows_summing, slice};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::nn::LayerNorm;
use burn::prelude::*;

/// ε of the scratch student's LayerNorms (`LayerNormConfig`'s default, which burn keeps private
/// in the module; the test below checks the two agree).
pub const EPS: f32 = 1e-5;

/// The fused LayerNorm as a backend op.
#[backend_extension(Flex, Autodiff)]
pub trait FusedLayerNorm: Backend {
    /// LayerNorm of `x` `[…, d]` with scale `gamma` and shift `beta` `[d]`.
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self>;
}

multiversion! {
    /// One row: out = x̂ · γ + β; returns (μ, 1/σ).
    fn norm_row(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) -> (f32, f32) {
        let d = x.len() as f32;
        let mu = simd::sum(x) / d;
        for (o, &x) in out.iter_mut().zip(x) {
            *o = x - mu;
        }
        let inv = 1.0 / (simd::dot(out, out) / d + eps).sqrt();
        for ((o, &g), &b) in out.iter_mut().zip(gamma).zip(beta) {
            *o = (*o * inv).mul_add(g, b);
        }
        (mu, inv)
    }
}

multiversion! {
    /// One row of the backward: dx into `out`; dγ, dβ accumulated.
    fn norm_row_backward(x: &[f32], dy: &[f32], gamma: &[f32], mu: f32, inv: f32,
                         out: &mut [f32], dgamma: &mut [f32], dbeta: &mut [f32]) {
        let d = x.len() as f32;
        let (mut s1, mut s2) = (0f32, 0f32);
        for ((&x, &dy), &g) in x.iter().zip(dy).zip(gamma) {
            let dxh = dy * g;
            s1 += dxh;
            s2 = dxh.mul_add((x - mu) * inv, s2);
        }
        let (m1, m2) = (s1 / d, s2 / d);
        for (i, o) in out.iter_mut().enumerate() {
            let xh = (x[i] - mu) * inv;
            *o = inv * (dy[i] * gamma[i] - m1 - xh * m2);
            dgamma[i] = dy[i].mul_add(xh, dgamma[i]);
            dbeta[i] += dy[i];
        }
    }
}

/// Forward: (y, μ and 1/σ per row).
fn forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    eps: f32,
) -> (FlexTensor, Vec<(f32, f32)>) {
    let shape = x.shape();
    let (x, g, b) = (contiguous(x), contiguous(gamma), contiguous(beta));
    let (xs, gs, bs) = (slice(&x), slice(&g), slice(&b));
    let d = gs.len();
    let (y, stats) = map_rows(xs.len() / d.max(1), d, |r, out| {
        norm_row(&xs[r * d..(r + 1) * d], gs, bs, eps, out)
    });
    (from_vec(y, shape), stats)
}

/// Backward: (dx, dγ, dβ).
fn backward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    stats: &[(f32, f32)],
    dy: &FlexTensor,
) -> [FlexTensor; 3] {
    let (shape, gshape) = (x.shape(), gamma.shape());
    let (x, g, dy) = (contiguous(x), contiguous(gamma), contiguous(dy));
    let (xs, gs, dys) = (slice(&x), slice(&g), slice(&dy));
    let d = gs.len();
    let (dx, [dgamma, dbeta]) = map_rows_summing(xs.len() / d.max(1), d, |r, out, [dg, db]| {
        let row = r * d..(r + 1) * d;
        let (mu, inv) = stats[r];
        norm_row_backward(&xs[row.clone()], &dys[row], gs, mu, inv, out, dg, db);
    });
    [
        from_vec(dx, shape),
        from_vec(dgamma, gshape.clone()),
        from_vec(dbeta, gshape),
    ]
}

impl FusedLayerNorm for Flex {
    fn fused_layer_norm(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        eps: f32,
    ) -> FlexTensor {
        forward(&x, &gamma, &beta, eps).0
    }
}

#[derive(Debug)]
struct LayerNormBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    /// (x, γ, μ and 1/σ per row).
    type State = (FlexTensor, FlexTensor, Vec<(f32, f32)>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_g, node_b] = ops.parents;
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (x, g, stats) = ops.state;
        let [dx, dg, db] = backward(&x, &g, &stats, &dy);
        for (node, grad) in [(node_x, dx), (node_g, dg), (node_b, db)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

impl<C: CheckpointStrategy> FusedLayerNorm for Autodiff<Flex, C> {
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f32,
    ) -> FloatTensor<Self> {
        let (x, node_x) = x.into_parts();
        let (g, node_g) = gamma.into_parts();
        let (b, node_b) = beta.into_parts();
        match LayerNormBackward
            .prepare::<C>([node_x, node_g, node_b])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, stats) = forward(&x, &g, &b, eps);
                prep.finish((x, g, stats), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x, &g, &b, eps).0),
        }
    }
}

/// burn-nn's [`LayerNorm`] module (built with the default ε, [`EPS`]), fused on flex (its own
/// forward elsewhere, or when it has no shift β).
pub fn layer_norm<const D: usize>(norm: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    match &norm.beta {
        Some(beta) if fused_on(&x.device(), "layer_norm") => layer_norm_fused(norm, beta, x),
        _ => norm.forward(x),
    }
}

/// The fused op itself (flex devices only), with the module's shift `beta`.
pub fn layer_norm_fused<const D: usize>(
    norm: &LayerNorm,
    beta: &burn::module::Param<Tensor<1>>,
    x: Tensor<D>,
) -> Tensor<D> {
    Tensor::from_dispatch(Dispatch::fused_layer_norm(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        beta.val().into_dispatch(),
        EPS,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, data, values};
    use burn::module::Param;
    use burn::nn::LayerNormConfig;

    /// (y, dx, dγ, dβ) of Σ w·y (a constant padding row included), fused or burn-nn's.
    fn run(fused: bool, [b, t, d]: [usize; 3]) -> [Vec<f32>; 4] {
        let device = Device::flex().autodiff();
        let mut norm = LayerNormConfig::new(d).init(&device);
        norm.gamma = Param::from_tensor(Tensor::<1>::from_floats(
            values(d, 9, 1.5).as_slice(),
            &device,
        ));
        norm.beta = Some(Param::from_tensor(Tensor::<1>::from_floats(
            values(d, 10, 0.5).as_slice(),
            &device,
        )));
        let mut xv = values(b * t * d, 11, 3.0);
        xv[..d].iter_mut().for_each(|v| *v = 0.25);
        let x = Tensor::<1>::from_floats(xv.as_slice(), &device)
            .reshape([b, t, d])
            .require_grad();
        let w = Tensor::<1>::from_floats(values(b * t * d, 12, 1.0).as_slice(), &device)
            .reshape([b, t, d]);
        let y = if fused {
            layer_norm_fused(&norm, norm.beta.as_ref().expect("beta"), x.clone())
        } else {
            norm.forward(x.clone())
        };
        let grads = (y.clone() * w).sum().backward();
        let dg = norm.gamma.val().grad(&grads).expect("gamma grad");
        let db = norm
            .beta
            .as_ref()
            .expect("beta")
            .val()
            .grad(&grads)
            .expect("beta grad");
        [
            data(y),
            data(x.grad(&grads).expect("x grad")),
            data(dg),
            data(db),
        ]
    }

    #[test]
    fn values_and_gradients_match_burn_nn() {
        for shape in [[1, 2, 8], [4, 70, 128]] {
            let (a, b) = (run(true, shape), run(false, shape));
            for (i, what) in ["y", "dx", "dgamma", "dbeta"].iter().enumerate() {
                assert_close(what, &a[i], &b[i]);
            }
        }
    }
}
