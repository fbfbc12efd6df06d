//! Fused gated-GELU of T5 v1.1's MLP: `y = gelu_tanh(g) ⊙ u` with GPT-2's tanh approximation
//! `gelu_tanh(g) = ½ g (1 + tanh(c (g + 0.044715 g³)))`, `c = √(2/π)` (transformers'
//! `gelu_new`, burn's `gelu_approximate`).
//!
//! burn computes it as some ten elementwise ops (powers, scales, tanh, adds, products) and as
//! many backward ops under `Autodiff`. Here one vectorised pass forward and one backward:
//! with `th = tanh(u)`, `u = c (g + 0.044715 g³)`,
//! `dg = dy ⊙ up ⊙ (½ (1 + th) + ½ g (1 − th²) c (1 + 3·0.044715 g²))`, `du = dy ⊙ gelu_tanh(g)`.

use super::simd::{self, multiversion};
use super::{ELEMENTS_PER_TASK as TASK, contiguous, from_vec, fused_on, map_elements, slice};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::activation::gelu_approximate;
use rayon::prelude::*;

/// The fused SwiGLU gate as a backend op.
#[backend_extension(Flex, Autodiff)]
pub trait FusedGeglu: Backend {
    /// `gelu_tanh(gate) ⊙ up` (same shapes).
    fn fused_geglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// √(2/π).
const C: f32 = 0.797_884_6;
/// The cubic term's coefficient.
const K: f32 = 0.044_715;

/// tanh(u) = 1 − 2 / (e^{2u} + 1), with the vectorisable `exp` (exact ±1 beyond |u| ≈ 44).
#[inline(always)]
fn tanh(u: f32) -> f32 {
    1.0 - 2.0 / (simd::exp(2.0 * u) + 1.0)
}

multiversion! {
    /// out = gelu_tanh(g) ⊙ u.
    fn geglu_chunk(g: &[f32], u: &[f32], out: &mut [f32]) {
        for ((o, &g), &u) in out.iter_mut().zip(g).zip(u) {
            let th = tanh(C * (K * g * g).mul_add(g, g));
            *o = 0.5 * g * (1.0 + th) * u;
        }
    }
}

multiversion! {
    /// dg, du of one chunk.
    fn geglu_chunk_backward(g: &[f32], u: &[f32], dy: &[f32], dg: &mut [f32], du: &mut [f32]) {
        for i in 0..dg.len() {
            let x = g[i];
            let th = tanh(C * (K * x * x).mul_add(x, x));
            let dgelu = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * C * (3.0 * K * x).mul_add(x, 1.0);
            dg[i] = dy[i] * u[i] * dgelu;
            du[i] = dy[i] * 0.5 * x * (1.0 + th);
        }
    }
}

fn forward(gate: &FlexTensor, up: &FlexTensor) -> FlexTensor {
    assert_eq!(
        gate.shape(),
        up.shape(),
        "geglu: gate and up have one shape"
    );
    let (g, u) = (contiguous(gate), contiguous(up));
    let (gs, us) = (slice(&g), slice(&u));
    let y = map_elements(gs.len(), |r, out| geglu_chunk(&gs[r.clone()], &us[r], out));
    from_vec(y, gate.shape())
}

fn backward(gate: &FlexTensor, up: &FlexTensor, dy: &FlexTensor) -> (FlexTensor, FlexTensor) {
    let (g, u, dy) = (contiguous(gate), contiguous(up), contiguous(dy));
    let (gs, us, dys) = (slice(&g), slice(&u), slice(&dy));
    let (mut dg, mut du) = (vec![0f32; gs.len()], vec![0f32; gs.len()]);
    dg.par_chunks_mut(TASK)
        .zip(du.par_chunks_mut(TASK))
        .enumerate()
        .for_each(|(c, (dg, du))| {
            let r = c * TASK..c * TASK + dg.len();
            geglu_chunk_backward(&gs[r.clone()], &us[r.clone()], &dys[r], dg, du);
        });
    (from_vec(dg, gate.shape()), from_vec(du, gate.shape()))
}

impl FusedGeglu for Flex {
    fn fused_geglu(gate: FlexTensor, up: FlexTensor) -> FlexTensor {
        forward(&gate, &up)
    }
}

#[derive(Debug)]
struct GegluBackward;

impl Backward<Flex, 2> for GegluBackward {
    /// (gate, up).
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_g, node_u] = ops.parents;
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (g, u) = ops.state;
        let (dg, du) = backward(&g, &u, &dy);
        if let Some(node) = node_g {
            grads.register::<Flex>(node.id, dg);
        }
        if let Some(node) = node_u {
            grads.register::<Flex>(node.id, du);
        }
    }
}

impl<C: CheckpointStrategy> FusedGeglu for Autodiff<Flex, C> {
    fn fused_geglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        let (g, node_g) = gate.into_parts();
        let (u, node_u) = up.into_parts();
        match GegluBackward
            .prepare::<C>([node_g, node_u])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = forward(&g, &u);
                prep.finish((g, u), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&g, &u)),
        }
    }
}

/// `gelu_tanh(gate) ⊙ up`, fused on flex, burn's ops elsewhere.
pub fn geglu<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    if !fused_on(&gate.device(), "geglu") {
        return gelu_approximate(gate) * up;
    }
    geglu_fused(gate, up)
}

/// The fused op itself (flex devices only).
pub fn geglu_fused<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(Dispatch::fused_geglu(
        gate.into_dispatch(),
        up.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, data, values};

    /// (y, dg, du) of Σ w·y, fused or burn's.
    fn run(fused: bool, n: usize) -> [Vec<f32>; 3] {
        let device = Device::flex().autodiff();
        let t = |seed, scale| {
            Tensor::<1>::from_floats(values(n, seed, scale).as_slice(), &device).reshape([2, n / 2])
        };
        let (g, u, w) = (
            t(13, 9.0).require_grad(),
            t(14, 2.0).require_grad(),
            t(15, 1.0),
        );
        let y = if fused {
            geglu_fused(g.clone(), u.clone())
        } else {
            gelu_approximate(g.clone()) * u.clone()
        };
        let grads = (y.clone() * w).sum().backward();
        [
            data(y),
            data(g.grad(&grads).expect("gate grad")),
            data(u.grad(&grads).expect("up grad")),
        ]
    }

    #[test]
    fn values_and_gradients_match_burn() {
        for n in [10, 2 * 40_000 + 6] {
            let (a, b) = (run(true, n), run(false, n));
            for (i, what) in ["y", "dgate", "dup"].iter().enumerate() {
                assert_close(what, &a[i], &b[i]);
            }
        }
    }
}
