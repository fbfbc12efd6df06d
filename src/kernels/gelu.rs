//! Fused GELU of the scratch student's MLP: `y = x · Φ(x) = ½ x (1 + erf(x/√2))`.
//!
//! flex evaluates `erf` with libm's scalar `erff`, forward and backward. Here a vectorised
//! `erf` (Abramowitz & Stegun 7.1.26, absolute error ≤ 1.5e-7, the order of f32 rounding near 1)
//! in one pass forward and one backward: `dx = dy ⊙ (Φ(x) + x φ(x))`, `φ(x) = e^{−x²/2}/√(2π)`.

use super::simd::{self, multiversion};
use super::{contiguous, from_vec, fused_on, map_elements, slice};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::prelude::*;

/// The fused GELU as a backend op.
#[backend_extension(Flex, Autodiff)]
pub trait FusedGelu: Backend {
    /// Exact (erf) GELU.
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Φ(x) = ½ (1 + erf(x/√2)) and e^{−x²/2}, by A&S 7.1.26 on |x|/√2 with odd symmetry.
#[inline(always)]
fn cdf_and_gauss(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_72,
        1.421_413_8,
        -1.453_152,
        1.061_405_4,
    ];
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / P.mul_add(z, 1.0);
    let poly = t * A[0] + t * t * (A[1] + t * (A[2] + t * (A[3] + t * A[4])));
    let g = simd::exp(-z * z);
    let erf = 1.0 - poly * g;
    let erf = if x < 0.0 { -erf } else { erf };
    (0.5 * (1.0 + erf), g)
}

multiversion! {
    /// out = x Φ(x).
    fn gelu_chunk(x: &[f32], out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = x * cdf_and_gauss(x).0;
        }
    }
}

multiversion! {
    /// out = dy (Φ(x) + x φ(x)).
    fn gelu_chunk_backward(x: &[f32], dy: &[f32], out: &mut [f32]) {
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        for ((o, &x), &dy) in out.iter_mut().zip(x).zip(dy) {
            let (cdf, g) = cdf_and_gauss(x);
            *o = dy * (x * g).mul_add(INV_SQRT_2PI, cdf);
        }
    }
}

fn forward(x: &FlexTensor) -> FlexTensor {
    let xc = contiguous(x);
    let xs = slice(&xc);
    from_vec(
        map_elements(xs.len(), |r, out| gelu_chunk(&xs[r], out)),
        x.shape(),
    )
}

fn backward(x: &FlexTensor, dy: &FlexTensor) -> FlexTensor {
    let (xc, dy) = (contiguous(x), contiguous(dy));
    let (xs, dys) = (slice(&xc), slice(&dy));
    let dx = map_elements(xs.len(), |r, out| {
        gelu_chunk_backward(&xs[r.clone()], &dys[r], out)
    });
    from_vec(dx, x.shape())
}

impl FusedGelu for Flex {
    fn fused_gelu(x: FlexTensor) -> FlexTensor {
        forward(&x)
    }
}

#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    /// The input x.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        if let Some(node) = node {
            grads.register::<Flex>(node.id, backward(&ops.state, &dy));
        }
    }
}

impl<C: CheckpointStrategy> FusedGelu for Autodiff<Flex, C> {
    fn fused_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        match GeluBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = forward(&x);
                prep.finish(x, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x)),
        }
    }
}

/// Exact GELU, fused on flex, burn's `gelu` elsewhere.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !fused_on(&x.device(), "gelu") {
        return burn::tensor::activation::gelu(x);
    }
    gelu_fused(x)
}

/// The fused op itself (flex devices only).
pub fn gelu_fused<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(Dispatch::fused_gelu(x.into_dispatch()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, data, values};

    /// (y, dx) of Σ w·y, fused or burn's.
    fn run(fused: bool, n: usize) -> [Vec<f32>; 2] {
        let device = Device::flex().autodiff();
        let x = Tensor::<1>::from_floats(values(n, 16, 6.0).as_slice(), &device).require_grad();
        let w = Tensor::<1>::from_floats(values(n, 17, 1.0).as_slice(), &device);
        let y = if fused {
            gelu_fused(x.clone())
        } else {
            burn::tensor::activation::gelu(x.clone())
        };
        let grads = (y.clone() * w).sum().backward();
        [data(y), data(x.grad(&grads).expect("x grad"))]
    }

    #[test]
    fn values_and_gradients_match_burn() {
        for n in [9, 40_003] {
            let (a, b) = (run(true, n), run(false, n));
            assert_close("y", &a[0], &b[0]);
            assert_close("dx", &a[1], &b[1]);
        }
    }
}
