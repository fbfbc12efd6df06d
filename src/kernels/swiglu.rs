//! Fused SwiGLU gate of Llama's MLP: `y = silu(g) ⊙ u` with `silu(g) = g · σ(g)`.
//!
//! burn computes it as sigmoid, multiply, multiply (libm's scalar `exp` inside the sigmoid), and
//! under `Autodiff` as many backward ops. Here one vectorised pass forward and one backward:
//! `dg = dy ⊙ u ⊙ σ(g) ⊙ (1 + g ⊙ (1 − σ(g)))`, `du = dy ⊙ silu(g)`.

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
use burn::tensor::activation::silu;
use rayon::prelude::*;

/// The fused SwiGLU gate as a backend op.
#[backend_extension(Flex, Autodiff)]
pub trait FusedSwiglu: Backend {
    /// `silu(gate) ⊙ up` (same shapes).
    fn fused_swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self>;
}

multiversion! {
    /// out = silu(g) ⊙ u.
    fn swiglu_chunk(g: &[f32], u: &[f32], out: &mut [f32]) {
        for ((o, &g), &u) in out.iter_mut().zip(g).zip(u) {
            *o = g / (1.0 + simd::exp(-g)) * u;
        }
    }
}

multiversion! {
    /// dg, du of one chunk.
    fn swiglu_chunk_backward(g: &[f32], u: &[f32], dy: &[f32], dg: &mut [f32], du: &mut [f32]) {
        for i in 0..dg.len() {
            let s = 1.0 / (1.0 + simd::exp(-g[i]));
            dg[i] = dy[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
            du[i] = dy[i] * g[i] * s;
        }
    }
}

fn forward(gate: &FlexTensor, up: &FlexTensor) -> FlexTensor {
    assert_eq!(
        gate.shape(),
        up.shape(),
        "swiglu: gate and up have one shape"
    );
    let (g, u) = (contiguous(gate), contiguous(up));
    let (gs, us) = (slice(&g), slice(&u));
    let y = map_elements(gs.len(), |r, out| swiglu_chunk(&gs[r.clone()], &us[r], out));
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
            swiglu_chunk_backward(&gs[r.clone()], &us[r.clone()], &dys[r], dg, du);
        });
    (from_vec(dg, gate.shape()), from_vec(du, gate.shape()))
}

impl FusedSwiglu for Flex {
    fn fused_swiglu(gate: FlexTensor, up: FlexTensor) -> FlexTensor {
        forward(&gate, &up)
    }
}

#[derive(Debug)]
struct SwigluBackward;

impl Backward<Flex, 2> for SwigluBackward {
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

impl<C: CheckpointStrategy> FusedSwiglu for Autodiff<Flex, C> {
    fn fused_swiglu(gate: FloatTensor<Self>, up: FloatTensor<Self>) -> FloatTensor<Self> {
        let (g, node_g) = gate.into_parts();
        let (u, node_u) = up.into_parts();
        match SwigluBackward
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

/// `silu(gate) ⊙ up`, fused on flex, burn's ops elsewhere.
pub fn swiglu<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    if !fused_on(&gate.device(), "swiglu") {
        return silu(gate) * up;
    }
    swiglu_fused(gate, up)
}

/// The fused op itself (flex devices only).
pub fn swiglu_fused<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(Dispatch::fused_swiglu(
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
            swiglu_fused(g.clone(), u.clone())
        } else {
            silu(g.clone()) * u.clone()
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
