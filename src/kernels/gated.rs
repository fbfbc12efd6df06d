//! Fused gates of the gated MLPs, `y = act(g) ⊙ u`, one op for both activations:
//! - SwiGLU (Llama): `act = silu`, `silu(g) = g · σ(g)`; backward
//!   `dg = dy ⊙ u ⊙ σ(g) ⊙ (1 + g ⊙ (1 − σ(g)))`, `du = dy ⊙ silu(g)`;
//! - GeGLU (T5 v1.1): `act = gelu_tanh`, GPT-2's tanh approximation
//!   `gelu_tanh(g) = ½ g (1 + tanh(c (g + 0.044715 g³)))`, `c = √(2/π)` (transformers'
//!   `gelu_new`, burn's `gelu_approximate`); with `th = tanh(c (g + 0.044715 g³))`, backward
//!   `dg = dy ⊙ u ⊙ (½ (1 + th) + ½ g (1 − th²) c (1 + 3·0.044715 g²))`, `du = dy ⊙ gelu_tanh(g)`.
//!
//! burn computes SwiGLU as sigmoid, multiply, multiply (libm's scalar `exp` inside the sigmoid)
//! and the tanh-GELU as some ten elementwise ops (scalar `tanh`), each with its backward ops
//! under `Autodiff`. Here one vectorised pass forward and one backward.

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
use burn::tensor::activation::{gelu_approximate, silu};
use rayon::prelude::*;

/// The gate's activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// `silu` (SwiGLU).
    Silu,
    /// GPT-2's tanh-approximated GELU (GeGLU).
    GeluTanh,
}

impl Gate {
    /// The kernel's name for `MORSD_KERNELS`.
    fn name(self) -> &'static str {
        match self {
            Gate::Silu => "swiglu",
            Gate::GeluTanh => "geglu",
        }
    }

    /// `act(gate) ⊙ up` with burn's ops.
    fn decomposed<const D: usize>(self, gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
        match self {
            Gate::Silu => silu(gate) * up,
            Gate::GeluTanh => gelu_approximate(gate) * up,
        }
    }
}

/// The fused gate as a backend op.
#[backend_extension(Flex, Autodiff)]
pub trait FusedGated: Backend {
    /// `act(gate) ⊙ up` (same shapes).
    fn fused_gated(gate: FloatTensor<Self>, up: FloatTensor<Self>, act: Gate) -> FloatTensor<Self>;
}

/// √(2/π).
const C: f32 = 0.797_884_6;
/// The tanh-GELU's cubic coefficient.
const K: f32 = 0.044_715;

/// tanh(u) = 1 − 2 / (e^{2u} + 1), with the vectorisable `exp` (exact ±1 beyond |u| ≈ 44).
#[inline(always)]
fn tanh(u: f32) -> f32 {
    1.0 - 2.0 / (simd::exp(2.0 * u) + 1.0)
}

multiversion! {
    /// out = silu(g) ⊙ u.
    fn silu_chunk(g: &[f32], u: &[f32], out: &mut [f32]) {
        for ((o, &g), &u) in out.iter_mut().zip(g).zip(u) {
            *o = g / (1.0 + simd::exp(-g)) * u;
        }
    }
}

multiversion! {
    /// dg, du of one chunk of SwiGLU.
    fn silu_chunk_backward(g: &[f32], u: &[f32], dy: &[f32], dg: &mut [f32], du: &mut [f32]) {
        for i in 0..dg.len() {
            let s = 1.0 / (1.0 + simd::exp(-g[i]));
            dg[i] = dy[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
            du[i] = dy[i] * g[i] * s;
        }
    }
}

multiversion! {
    /// out = gelu_tanh(g) ⊙ u.
    fn gelu_tanh_chunk(g: &[f32], u: &[f32], out: &mut [f32]) {
        for ((o, &g), &u) in out.iter_mut().zip(g).zip(u) {
            let th = tanh(C * (K * g * g).mul_add(g, g));
            *o = 0.5 * g * (1.0 + th) * u;
        }
    }
}

multiversion! {
    /// dg, du of one chunk of GeGLU.
    fn gelu_tanh_chunk_backward(g: &[f32], u: &[f32], dy: &[f32], dg: &mut [f32], du: &mut [f32]) {
        for i in 0..dg.len() {
            let x = g[i];
            let th = tanh(C * (K * x * x).mul_add(x, x));
            let slope = 0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * C * (3.0 * K * x).mul_add(x, 1.0);
            dg[i] = dy[i] * u[i] * slope;
            du[i] = dy[i] * 0.5 * x * (1.0 + th);
        }
    }
}

fn forward(gate: &FlexTensor, up: &FlexTensor, act: Gate) -> FlexTensor {
    assert_eq!(
        gate.shape(),
        up.shape(),
        "gated MLP: gate and up have one shape"
    );
    let (g, u) = (contiguous(gate), contiguous(up));
    let (gs, us) = (slice(&g), slice(&u));
    let chunk = match act {
        Gate::Silu => silu_chunk,
        Gate::GeluTanh => gelu_tanh_chunk,
    };
    let y = map_elements(gs.len(), |r, out| chunk(&gs[r.clone()], &us[r], out));
    from_vec(y, gate.shape())
}

fn backward(
    gate: &FlexTensor,
    up: &FlexTensor,
    dy: &FlexTensor,
    act: Gate,
) -> (FlexTensor, FlexTensor) {
    let (g, u, dy) = (contiguous(gate), contiguous(up), contiguous(dy));
    let (gs, us, dys) = (slice(&g), slice(&u), slice(&dy));
    let chunk = match act {
        Gate::Silu => silu_chunk_backward,
        Gate::GeluTanh => gelu_tanh_chunk_backward,
    };
    let (mut dg, mut du) = (vec![0f32; gs.len()], vec![0f32; gs.len()]);
    dg.par_chunks_mut(TASK)
        .zip(du.par_chunks_mut(TASK))
        .enumerate()
        .for_each(|(c, (dg, du))| {
            let r = c * TASK..c * TASK + dg.len();
            chunk(&gs[r.clone()], &us[r.clone()], &dys[r], dg, du);
        });
    (from_vec(dg, gate.shape()), from_vec(du, gate.shape()))
}

impl FusedGated for Flex {
    fn fused_gated(gate: FlexTensor, up: FlexTensor, act: Gate) -> FlexTensor {
        forward(&gate, &up, act)
    }
}

#[derive(Debug)]
struct GatedBackward;

impl Backward<Flex, 2> for GatedBackward {
    /// (gate, up, activation).
    type State = (FlexTensor, FlexTensor, Gate);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_g, node_u] = ops.parents;
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (g, u, act) = ops.state;
        let (dg, du) = backward(&g, &u, &dy, act);
        if let Some(node) = node_g {
            grads.register::<Flex>(node.id, dg);
        }
        if let Some(node) = node_u {
            grads.register::<Flex>(node.id, du);
        }
    }
}

impl<C: CheckpointStrategy> FusedGated for Autodiff<Flex, C> {
    fn fused_gated(gate: FloatTensor<Self>, up: FloatTensor<Self>, act: Gate) -> FloatTensor<Self> {
        let (g, node_g) = gate.into_parts();
        let (u, node_u) = up.into_parts();
        match GatedBackward
            .prepare::<C>([node_g, node_u])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = forward(&g, &u, act);
                prep.finish((g, u, act), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&g, &u, act)),
        }
    }
}

/// `act(gate) ⊙ up`: fused on flex (unless `MORSD_KERNELS` leaves this activation's kernel
/// out), burn's ops elsewhere.
pub fn gated<const D: usize>(gate: Tensor<D>, up: Tensor<D>, act: Gate) -> Tensor<D> {
    if !fused_on(&gate.device(), act.name()) {
        return act.decomposed(gate, up);
    }
    gated_fused(gate, up, act)
}

/// `silu(gate) ⊙ up` (Llama's SwiGLU MLP).
pub fn swiglu<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    gated(gate, up, Gate::Silu)
}

/// `gelu_tanh(gate) ⊙ up` (T5 v1.1's gated-GELU MLP).
pub fn geglu<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    gated(gate, up, Gate::GeluTanh)
}

/// The fused op itself (flex devices only).
pub fn gated_fused<const D: usize>(gate: Tensor<D>, up: Tensor<D>, act: Gate) -> Tensor<D> {
    Tensor::from_dispatch(Dispatch::fused_gated(
        gate.into_dispatch(),
        up.into_dispatch(),
        act,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, data, values};

    /// (y, dg, du) of Σ w·y, fused or burn's.
    fn run(fused: bool, act: Gate, n: usize) -> [Vec<f32>; 3] {
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
            gated_fused(g.clone(), u.clone(), act)
        } else {
            act.decomposed(g.clone(), u.clone())
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
        for act in [Gate::Silu, Gate::GeluTanh] {
            for n in [10, 2 * 40_000 + 6] {
                let (a, b) = (run(true, act, n), run(false, act, n));
                for (i, what) in ["y", "dgate", "dup"].iter().enumerate() {
                    assert_close(&format!("{act:?} {what}"), &a[i], &b[i]);
                }
            }
        }
    }
}
