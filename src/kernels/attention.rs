//! Fused attention: `softmax(q·kᵀ · scale + mask)·v` with the heads merged, forward and
//! backward, one task per (sequence, key/value group), the scores never materialised whole.
//!
//! Decomposed, attention writes the `[b, heads, t, s]` scores, reads them back for the softmax,
//! writes the probabilities, reads them for `probs·v`; its backward writes and reads two more
//! such buffers (`d probs`, `d scores`). Here each (sequence, group) task computes one head's
//! `t × s` scores at a time into a buffer that stays in cache:
//! 1. `S = q_h·k_gᵀ` (gemm), 2. the masked, scaled softmax of each row in place, 3. `o_h = P·v_g`
//!    written straight into head h's columns of the merged `[b, t, heads·d]` output.
//!
//! Under autodiff the probabilities are kept (the one `[b, heads, t, s]` buffer, as the
//! decomposed softmax keeps its output) and the backward is, per head:
//! 1. `dv_g += Pᵀ·do_h`, 2. `dP = do_h·v_gᵀ`, 3. `dS = scale · P ⊙ (dP − Σ_row dP ⊙ P)` in place,
//! 4. `dq_h = dS·k_g`, 5. `dk_g += dSᵀ·q_h`.
//!
//! Grouped-query attention is one group's `rep` query heads stacked along the query axis
//! (`q` `[b, g, rep·t, d]`, as Llama computes it). The mask `[b, 1, t, s]` is a constant of the
//! batch (0 or −1e9) and gets no gradient.

use super::matmul::{SendPtr, View, dims4, fused, gemm_into};
use super::softmax::{masked_softmax, softmax_row_backward_in_place, softmax_row_in_place};
use super::{attention_values, batched_matmul, from_vec};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::Shape;
use rayon::prelude::*;

/// The fused attention as a backend op.
#[backend_extension(Flex, Autodiff)]
pub trait FusedAttention: Backend {
    /// See [`attention`].
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        scale: f32,
        rep: usize,
    ) -> FloatTensor<Self>;
}

/// Sizes: batch, groups, query heads per group, queries, keys, key width, value width.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    g: usize,
    r: usize,
    t: usize,
    s: usize,
    d: usize,
    dv: usize,
}

fn dims(q: &FlexTensor, k: &FlexTensor, v: &FlexTensor, mask: &FlexTensor, rep: usize) -> Dims {
    let ((b, g, rt, d), (bk, gk, s, dk), (bv, gv, sv, dv)) = (dims4(q), dims4(k), dims4(v));
    let t = rt / rep.max(1);
    assert!(
        (bk, gk, dk) == (b, g, d) && (bv, gv, sv) == (b, g, s) && rep > 0 && rt == rep * t,
        "fused attention: shapes"
    );
    assert_eq!(
        mask.shape().dims::<4>(),
        [b, 1, t, s],
        "fused attention: the mask is [batch, 1, queries, keys]"
    );
    Dims {
        b,
        g,
        r: rep,
        t,
        s,
        d,
        dv,
    }
}

/// The output `[b, t, heads·dv]` and, when `keep`, the probabilities `[b, g, rep·t, s]`.
fn forward(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    mask: &FlexTensor,
    scale: f32,
    rep: usize,
    keep: bool,
) -> (FlexTensor, Option<FlexTensor>) {
    let Dims {
        b,
        g,
        r,
        t,
        s,
        d,
        dv,
    } = dims(q, k, v, mask, rep);
    let heads = g * r;
    let mask = mask.to_contiguous();
    let mask = mask.as_slice::<f32>().expect("contiguous");
    let mut out = Vec::<f32>::with_capacity(b * t * heads * dv);
    let mut probs = Vec::<f32>::with_capacity(if keep { b * heads * t * s } else { 0 });
    let (out_ptr, probs_ptr) = (SendPtr(out.as_mut_ptr()), SendPtr(probs.as_mut_ptr()));
    (0..b * g).into_par_iter().for_each(|task| {
        let (bi, gi) = (task / g, task % g);
        let mut scratch = if keep { Vec::new() } else { vec![0f32; t * s] };
        let kt = View::sub(k, [bi, gi, 0, 0], 2, 3).t();
        let vg = View::sub(v, [bi, gi, 0, 0], 2, 3);
        for j in 0..r {
            let h = gi * r + j;
            // SAFETY: head h's t × s block of `probs` (or this task's scratch) and its columns
            // of `out` belong to this task alone; gemm writes every element of both before
            // anything reads them, and `s, d ≥ 1` (checked by `attention`).
            unsafe {
                let p = if keep {
                    probs_ptr.get().add((bi * heads + h) * t * s)
                } else {
                    scratch.as_mut_ptr()
                };
                // 1. Scores.
                let qh = View::sub(q, [bi, gi, j * t, 0], 2, 3);
                gemm_into((t, s, d), (p, s), false, qh, kt, false);
                // 2. Masked, scaled softmax, row by row.
                let block = std::slice::from_raw_parts_mut(p, t * s);
                for (ti, row) in block.chunks_exact_mut(s).enumerate() {
                    let m = &mask[(bi * t + ti) * s..(bi * t + ti + 1) * s];
                    softmax_row_in_place(row, m, scale);
                }
                // 3. Values into the merged output.
                let pv = View::rows(p, s);
                let dst = out_ptr.get().add(bi * t * heads * dv + h * dv);
                gemm_into((t, dv, s), (dst, heads * dv), false, pv, vg, false);
            }
        }
    });
    // SAFETY: every element of both was written above.
    unsafe {
        out.set_len(b * t * heads * dv);
        if keep {
            probs.set_len(b * heads * t * s);
        }
    }
    let out = from_vec(out, Shape::new([b, t, heads * dv]));
    let probs = keep.then(|| from_vec(probs, Shape::new([b, g, r * t, s])));
    (out, probs)
}

/// (dq, dk, dv) from `dout` `[b, t, heads·dv]` (any layout), each only when wanted.
#[allow(clippy::too_many_arguments)]
fn backward(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    probs: &FlexTensor,
    dout: &FlexTensor,
    scale: f32,
    rep: usize,
    want: [bool; 3],
) -> [Option<FlexTensor>; 3] {
    let ([b, g, rt, d], [.., s, dv]) = (q.shape().dims::<4>(), v.shape().dims::<4>());
    let (r, t) = (rep, rt / rep);
    let heads = g * r;
    let probs = probs.to_contiguous();
    let ps = probs.as_slice::<f32>().expect("contiguous");
    // dq is written whole; dk and dv accumulate over a group's heads, from zero.
    let mut dq = Vec::<f32>::with_capacity(b * g * rt * d);
    let mut dk = vec![0f32; if want[1] { b * g * s * d } else { 0 }];
    let mut dvv = vec![0f32; b * g * s * dv];
    let (dq_ptr, dk_ptr, dv_ptr) = (
        SendPtr(dq.as_mut_ptr()),
        SendPtr(dk.as_mut_ptr()),
        SendPtr(dvv.as_mut_ptr()),
    );
    (0..b * g).into_par_iter().for_each(|task| {
        let (bi, gi) = (task / g, task % g);
        let mut ds = vec![0f32; t * s];
        let kg = View::sub(k, [bi, gi, 0, 0], 2, 3);
        let vt = View::sub(v, [bi, gi, 0, 0], 2, 3).t();
        for j in 0..r {
            let h = gi * r + j;
            let p = &ps[(bi * heads + h) * t * s..(bi * heads + h + 1) * t * s];
            let pv = View::rows(p.as_ptr(), s);
            let doh = View::sub(dout, [bi, 0, h * dv], 1, 2);
            // SAFETY: group `task`'s blocks of dk and dv, head h's rows of dq and `ds` belong
            // to this task alone; dk/dv are zero-initialised before they accumulate, and gemm
            // writes every element of `ds` and of dq's rows.
            unsafe {
                // 1. dv_g += Pᵀ·do_h.
                let dst = dv_ptr.get().add(task * s * dv);
                gemm_into((s, dv, t), (dst, dv), true, pv.t(), doh, false);
                if !(want[0] || want[1]) {
                    continue;
                }
                // 2. dP = do_h·v_gᵀ, 3. dS in place.
                gemm_into((t, s, dv), (ds.as_mut_ptr(), s), false, doh, vt, false);
            }
            for (prow, row) in p.chunks_exact(s).zip(ds.chunks_exact_mut(s)) {
                softmax_row_backward_in_place(prow, row, scale);
            }
            let dsv = View::rows(ds.as_ptr(), s);
            // SAFETY: as above.
            unsafe {
                // 4. dq_h = dS·k_g.
                if want[0] {
                    let dst = dq_ptr.get().add((task * r + j) * t * d);
                    gemm_into((t, d, s), (dst, d), false, dsv, kg, false);
                }
                // 5. dk_g += dSᵀ·q_h.
                if want[1] {
                    let qh = View::sub(q, [bi, gi, j * t, 0], 2, 3);
                    let dst = dk_ptr.get().add(task * s * d);
                    gemm_into((s, d, t), (dst, d), true, dsv.t(), qh, false);
                }
            }
        }
    });
    let dq = want[0].then(|| {
        // SAFETY: every row of dq was written above when it is wanted.
        unsafe { dq.set_len(b * g * rt * d) };
        from_vec(dq, Shape::new([b, g, rt, d]))
    });
    let dk = want[1].then(|| from_vec(dk, Shape::new([b, g, s, d])));
    let dv = want[2].then(|| from_vec(dvv, Shape::new([b, g, s, dv])));
    [dq, dk, dv]
}

impl FusedAttention for Flex {
    fn fused_attention(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        mask: FlexTensor,
        scale: f32,
        rep: usize,
    ) -> FlexTensor {
        forward(&q, &k, &v, &mask, scale, rep, false).0
    }
}

#[derive(Debug)]
struct AttentionBackward;

impl Backward<Flex, 3> for AttentionBackward {
    /// (q, k, v, probabilities, scale, query heads per group).
    type State = (FlexTensor, FlexTensor, FlexTensor, FlexTensor, f32, usize);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dout: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (q, k, v, probs, scale, rep) = ops.state;
        let want = ops.parents.each_ref().map(Option::is_some);
        let out = backward(&q, &k, &v, &probs, &dout, scale, rep, want);
        for (node, grad) in ops.parents.into_iter().zip(out) {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

impl<C: CheckpointStrategy> FusedAttention for Autodiff<Flex, C> {
    fn fused_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        scale: f32,
        rep: usize,
    ) -> FloatTensor<Self> {
        let (q, node_q) = q.into_parts();
        let (k, node_k) = k.into_parts();
        let (v, node_v) = v.into_parts();
        // The mask is a constant of the batch: no gradient flows to it.
        let (m, _) = mask.into_parts();
        match AttentionBackward
            .prepare::<C>([node_q, node_k, node_v])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, probs) = forward(&q, &k, &v, &m, scale, rep, true);
                let probs = probs.expect("kept when asked");
                prep.finish((q, k, v, probs, scale, rep), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&q, &k, &v, &m, scale, rep, false).0),
        }
    }
}

/// `softmax(q·kᵀ · scale + mask)·v` with the heads merged: `q` `[b, g, rep·t, d]` (the `rep`
/// query heads of key/value group `g` stacked along the query axis; `rep = 1` without
/// grouping), `k` `[b, g, s, d]`, `v` `[b, g, s, dv]`, `mask` `[b, 1, t, s]` → `[b, t, g·rep·dv]`.
/// Fused on flex; elsewhere (and with `MORSD_KERNELS` leaving `attention` out) the matmuls,
/// [`masked_softmax`] and [`attention_values`].
pub fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Tensor<4>,
    scale: f32,
    rep: usize,
) -> Tensor<3> {
    let ([.., rt, d], [.., s, _]) = (q.dims(), k.dims());
    let device = q.device();
    let usable = s > 0 && d > 0 && rep > 0 && rt % rep == 0;
    if !(usable && fused(&device, q.dtype()) && super::fused_on(&device, "attention")) {
        return attention_decomposed(q, k, v, mask, scale, rep);
    }
    Tensor::from_dispatch(Dispatch::fused_attention(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        mask.into_dispatch(),
        scale,
        rep,
    ))
}

/// The same as separate ops: scores, [`masked_softmax`], [`attention_values`].
pub fn attention_decomposed(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Tensor<4>,
    scale: f32,
    rep: usize,
) -> Tensor<3> {
    let ([b, g, rt, _], [.., s, _]) = (q.dims(), k.dims());
    let t = rt / rep.max(1);
    let scores = batched_matmul(q, k.swap_dims(2, 3)).reshape([b, g * rep, t, s]);
    let probs = masked_softmax(scores, mask, scale).reshape([b, g, rt, s]);
    attention_values(probs, v, rep)
}

/// `cap · tanh(x / cap)`: Gemma 2's soft cap, of attention scores and of logits (burn's ops).
pub fn softcap<const D: usize>(x: Tensor<D>, cap: f32) -> Tensor<D> {
    x.div_scalar(cap).tanh().mul_scalar(cap)
}

/// [`attention`] with the scaled scores soft-capped before the mask (Gemma 2):
/// `softmax(softcap(q·kᵀ · scale) + mask)·v`, always as separate ops (no fused kernel holds
/// the cap); shapes as [`attention`]'s.
pub fn attention_softcapped(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Tensor<4>,
    scale: f32,
    cap: f32,
    rep: usize,
) -> Tensor<3> {
    let ([b, g, rt, _], [.., s, _]) = (q.dims(), k.dims());
    let t = rt / rep.max(1);
    let scores = batched_matmul(q, k.swap_dims(2, 3)).reshape([b, g * rep, t, s]);
    let scores = softcap(scores.mul_scalar(scale), cap);
    let probs = masked_softmax(scores, mask, 1.0).reshape([b, g, rt, s]);
    attention_values(probs, v, rep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::softmax::masked_softmax_decomposed;
    use crate::kernels::testing::{assert_close, data, values};

    /// (output, dq, dk, dv) of Σ w·attention with a causal + key-padding mask, fused or with
    /// burn's own ops; `k` and `v` are swapped-dims views, as the models pass them.
    fn run(
        fused: bool,
        (b, g, rep, t, s, d): (usize, usize, usize, usize, usize, usize),
    ) -> [Vec<f32>; 4] {
        let device = Device::flex().autodiff();
        let tensor = |shape: [usize; 4], seed, scale| {
            let n = shape.iter().product();
            Tensor::<1>::from_floats(values(n, seed, scale).as_slice(), &device).reshape(shape)
        };
        let q = tensor([b, g, rep * t, d], 21, 2.0).require_grad();
        let k = tensor([b, s, g, d], 22, 2.0).require_grad();
        let v = tensor([b, s, g, d], 23, 1.0).require_grad();
        // Query i of sequence n sees keys up to i + (s − t), and the last n keys are padding
        // (except the diagonal, so no row is fully masked).
        let mut m = vec![0f32; b * t * s];
        for n in 0..b {
            for i in 0..t {
                for j in 0..s {
                    if j > i + (s - t) || (j + n >= s && j != i + (s - t)) {
                        m[(n * t + i) * s + j] = -1e9;
                    }
                }
            }
        }
        let mask = Tensor::<1>::from_floats(m.as_slice(), &device).reshape([b, 1, t, s]);
        let w = tensor([b, t, g * rep, d], 24, 1.0).reshape([b, t, g * rep * d]);
        let (kk, vv) = (k.clone().swap_dims(1, 2), v.clone().swap_dims(1, 2));
        let y = if fused {
            attention(q.clone(), kk, vv, mask, 0.25, rep)
        } else {
            // burn's ops only: matmul, scale + mask + softmax, matmul, reshape, swap.
            let scores = q
                .clone()
                .matmul(kk.swap_dims(2, 3))
                .reshape([b, g * rep, t, s]);
            let p = masked_softmax_decomposed(scores, mask, 0.25).reshape([b, g, rep * t, s]);
            p.matmul(vv)
                .reshape([b, g * rep, t, d])
                .swap_dims(1, 2)
                .reshape([b, t, g * rep * d])
        };
        let grads = (y.clone() * w).sum().backward();
        [
            data(y),
            data(q.grad(&grads).expect("dq")),
            data(k.grad(&grads).expect("dk")),
            data(v.grad(&grads).expect("dv")),
        ]
    }

    #[test]
    fn values_and_gradients_match_burns_ops() {
        // Plain heads, grouped-query heads, one query over cached keys (decoding's shape).
        for shape in [(2, 3, 1, 7, 7, 8), (2, 2, 3, 5, 9, 4), (3, 2, 1, 1, 6, 8)] {
            let (a, b) = (run(true, shape), run(false, shape));
            for (i, what) in ["y", "dq", "dk", "dv"].iter().enumerate() {
                assert_close(what, &a[i], &b[i]);
            }
        }
    }

    #[test]
    fn inference_on_plain_flex() {
        let device = Device::flex();
        let t = |shape: [usize; 4], seed| {
            let n = shape.iter().product();
            Tensor::<1>::from_floats(values(n, seed, 1.0).as_slice(), &device).reshape(shape)
        };
        let (q, k, v) = (
            t([2, 2, 4, 8], 31),
            t([2, 2, 6, 8], 32),
            t([2, 2, 6, 8], 33),
        );
        let mask = Tensor::<4>::zeros([2, 1, 4, 6], &device);
        let fused = attention(q.clone(), k.clone(), v.clone(), mask.clone(), 0.3, 1);
        let plain = attention_decomposed(q, k, v, mask, 0.3, 1);
        assert_close("y", &data(fused), &data(plain));
    }
}
