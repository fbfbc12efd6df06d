//! morsd's own f32 matmul on flex: the linear layers' `x·W (+ b)` and attention's batched
//! products, each with its two backward products, on the `gemm` crate called directly.
//!
//! burn-flex 0.22.1 builds every matmul output with `FlexTensor::empty`, which zero-fills a
//! `Vec<u8>` and then copies it once more to re-align it (`reference/bench/profile.md`: 18 % of
//! the scratch student's training step). It also keeps a linear layer on `[b, t, d]` as `b`
//! per-sequence products when `t` is a multiple of 32, each repacking the shared weight. Here:
//! - the output is written by gemm into fresh, uninitialised memory (no zero-fill, no copy);
//! - a linear layer is one `[b·t, d] × [d, n]` product, the bias folded into the output before
//!   gemm accumulates onto it, and its backward is `dx = dy·Wᵀ`, `dW = xᵀ·dy`, `db = Σ dy`, each
//!   one gemm call on strided views (no transposed copy);
//! - attention's `[…, t, d] × […, d, s]` runs one single-threaded gemm per matrix, threaded
//!   over the matrices, with the same output handling, forward and backward.
//!
//! gemm picks its AVX-512 kernels at run time (burn's `x86-v4` feature turns them on in gemm).

use super::{from_vec, fused_on};
use burn::backend::DType;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::Shape;
use rayon::prelude::*;

/// Products of at least this many multiply-adds (`m·n·k`) let gemm thread; smaller ones run on
/// one core (burn-flex's threshold).
const THREADED: usize = 192 * 192 * 192;

/// The matmul ops as backend ops.
#[backend_extension(Flex, Autodiff)]
pub trait FusedMatmul: Backend {
    /// `x·w` for `x` `[m, k]` and `w` `[k, n]`.
    fn fused_matmul(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `x·w + bias` for `x` `[m, k]`, `w` `[k, n]` and `bias` `[n]`.
    fn fused_matmul_bias(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// `a·b` for `a` `[p, q, m, k]` and `b` `[p, q, k, n]` (one product per leading index).
    fn fused_batched_matmul(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Attention's `probs·v` with the heads merged: see [`attention_values`].
    fn fused_attention_values(
        probs: FloatTensor<Self>,
        v: FloatTensor<Self>,
        rep: usize,
    ) -> FloatTensor<Self>;
}

/// A strided f32 matrix inside a tensor's storage: its first element, row and column strides.
#[derive(Clone, Copy)]
pub(crate) struct View {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

// SAFETY: a view only reads, and every view made here points into a tensor that the caller
// borrows (or owns) for longer than any task that uses the view.
unsafe impl Send for View {}
unsafe impl Sync for View {}

impl View {
    /// The matrix `t` (2-D), or the `i`-th matrix of a 4-D `t` (leading indices flattened).
    pub(crate) fn of(t: &FlexTensor, i: usize) -> View {
        if t.shape().num_dims() == 4 {
            let q = t.shape()[1];
            return View::sub(t, [i / q, i % q, 0, 0], 2, 3);
        }
        View::sub(t, [0, 0], 0, 1)
    }

    /// The matrix of `t` whose first element is at index `at`, its rows along dim `row_dim` and
    /// its columns along dim `col_dim` (the other dims fixed at `at`'s values).
    pub(crate) fn sub<const D: usize>(
        t: &FlexTensor,
        at: [usize; D],
        row_dim: usize,
        col_dim: usize,
    ) -> View {
        assert_eq!(t.dtype(), DType::F32, "fused matmul takes f32 tensors");
        let layout = t.layout();
        let s = layout.strides();
        assert_eq!(s.len(), D, "fused matmul: tensor rank");
        let offset = layout.start_offset() as isize
            + at.iter()
                .zip(s)
                .map(|(&i, &st)| i as isize * st)
                .sum::<isize>();
        // SAFETY: the offset is that of an element of the view (flex keeps views in bounds, and
        // `at` indexes within the shape).
        let ptr = unsafe { t.storage::<f32>().as_ptr().offset(offset) };
        View {
            ptr,
            rs: s[row_dim],
            cs: s[col_dim],
        }
    }

    /// A row-major matrix at `ptr` with rows `row_stride` elements apart.
    pub(crate) fn rows(ptr: *const f32, row_stride: usize) -> View {
        View {
            ptr,
            rs: row_stride as isize,
            cs: 1,
        }
    }

    /// The transposed matrix (the same memory, strides swapped).
    pub(crate) fn t(self) -> View {
        View {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// `dst = (accumulate ? dst : 0) + a·b` for `a` `[m, k]`, `b` `[k, n]`, `dst` `[m, n]` with
/// rows `dst_rs` apart (columns adjacent).
///
/// # Safety
/// `dst` must hold an `m × n` matrix of writable elements at that row stride (initialised when
/// `accumulate`), and `a`, `b` must view `m × k` and `k × n` readable elements.
pub(crate) unsafe fn gemm_into(
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs): (*mut f32, usize),
    accumulate: bool,
    a: View,
    b: View,
    threaded: bool,
) {
    let parallelism = if threaded && m.saturating_mul(n).saturating_mul(k) >= THREADED {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: as the caller promises; gemm reads `dst` only when `read_dst` (= accumulate).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            a.ptr,
            a.cs,
            a.rs,
            b.ptr,
            b.cs,
            b.rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// A fresh `m × n` buffer that gemm fills with `a·b` (no zero-fill: gemm writes every element).
fn product(m: usize, n: usize, k: usize, a: View, b: View) -> Vec<f32> {
    if k == 0 {
        return vec![0.0; m * n];
    }
    let mut out = Vec::<f32>::with_capacity(m * n);
    // SAFETY: `out` has room for m·n elements; gemm without `read_dst` writes all of them
    // before any is read, and the length is set only after it has.
    unsafe {
        gemm_into((m, n, k), (out.as_mut_ptr(), n), false, a, b, true);
        out.set_len(m * n);
    }
    out
}

fn dims2(t: &FlexTensor) -> [usize; 2] {
    t.shape().dims::<2>()
}

/// `x·w (+ bias)`.
fn forward(x: &FlexTensor, w: &FlexTensor, bias: Option<&FlexTensor>) -> FlexTensor {
    let ([m, k], [k2, n]) = (dims2(x), dims2(w));
    assert_eq!(k, k2, "fused matmul: inner dims");
    let (xv, wv) = (View::of(x, 0), View::of(w, 0));
    let y = match bias {
        None => product(m, n, k, xv, wv),
        Some(bias) => {
            // 1. Every row starts as the bias, 2. gemm adds x·w onto it.
            let b = bias.to_contiguous();
            let b = b.as_slice::<f32>().expect("contiguous");
            let mut y: Vec<f32> = Vec::with_capacity(m * n);
            for _ in 0..m {
                y.extend_from_slice(b);
            }
            // SAFETY: y holds m·n initialised elements; the views are x's and w's.
            unsafe { gemm_into((m, n, k), (y.as_mut_ptr(), n), true, xv, wv, true) };
            y
        }
    };
    from_vec(y, Shape::new([m, n]))
}

/// `Σ_rows dy` of `dy` `[m, n]`: 1. each block of rows' column sums, threaded, 2. the blocks'
/// sums added in block order, so the result never depends on how rayon split the work (see
/// [`super::map_rows_summing`]).
fn column_sums(dy: &FlexTensor) -> FlexTensor {
    let [_, n] = dims2(dy);
    if n == 0 {
        return from_vec(Vec::new(), Shape::new([0]));
    }
    let dy = dy.to_contiguous();
    let s = dy.as_slice::<f32>().expect("contiguous");
    let per = (16 * 1024 / n.max(1)).max(1);
    let sums = s
        .par_chunks(per * n)
        .map(|rows| {
            let mut acc = vec![0f32; n];
            for row in rows.chunks_exact(n) {
                acc.iter_mut().zip(row).for_each(|(a, v)| *a += v);
            }
            acc
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(vec![0f32; n], |mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        });
    from_vec(sums, Shape::new([n]))
}

/// `dx = dy·wᵀ` and `dw = xᵀ·dy`, each only when wanted.
fn backward(
    x: &FlexTensor,
    w: &FlexTensor,
    dy: &FlexTensor,
    want: (bool, bool),
) -> (Option<FlexTensor>, Option<FlexTensor>) {
    let ([m, k], [_, n]) = (dims2(x), dims2(w));
    let dyv = View::of(dy, 0);
    // The two products are independent: one rayon join, each free to thread inside.
    rayon::join(
        || {
            want.0.then(|| {
                let dx = product(m, k, n, dyv, View::of(w, 0).t());
                from_vec(dx, Shape::new([m, k]))
            })
        },
        || {
            want.1.then(|| {
                let dw = product(k, n, m, View::of(x, 0).t(), dyv);
                from_vec(dw, Shape::new([k, n]))
            })
        },
    )
}

/// The leading sizes `[p, q]` and matrix sizes of a 4-D tensor.
pub(crate) fn dims4(t: &FlexTensor) -> (usize, usize, usize, usize) {
    let [p, q, r, c] = t.shape().dims::<4>();
    (p, q, r, c)
}

/// `out[i] = op(a)[i] · op(b)[i]` for each of the `p·q` matrices, threaded over the matrices
/// (each product single-threaded); `ta`/`tb` transpose the operand.
fn batched(
    a: &FlexTensor,
    ta: bool,
    b: &FlexTensor,
    tb: bool,
    (m, n, k): (usize, usize, usize),
) -> FlexTensor {
    let (p, q, ..) = dims4(a);
    let count = p * q;
    let mut out = Vec::<f32>::with_capacity(count * m * n);
    let base = SendPtr(out.as_mut_ptr());
    (0..count).into_par_iter().for_each(|i| {
        let va = View::of(a, i);
        let vb = View::of(b, i);
        let va = if ta { va.t() } else { va };
        let vb = if tb { vb.t() } else { vb };
        // SAFETY: matrix i owns elements [i·m·n, (i+1)·m·n) of `out`'s capacity; gemm writes
        // them all (or, for k = 0, the zeros are written here).
        unsafe {
            let dst = base.get().add(i * m * n);
            if k == 0 {
                std::ptr::write_bytes(dst, 0, m * n);
            } else {
                gemm_into((m, n, k), (dst, n), false, va, vb, false);
            }
        }
    });
    // SAFETY: every element was written above.
    unsafe { out.set_len(count * m * n) };
    from_vec(out, Shape::new([p, q, m, n]))
}

/// A raw pointer that rayon's tasks may share (each writes its own disjoint range).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: the tasks write disjoint ranges of one allocation that outlives them.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
impl SendPtr {
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

fn batched_forward(a: &FlexTensor, b: &FlexTensor) -> FlexTensor {
    let ((p, q, m, k), (p2, q2, k2, n)) = (dims4(a), dims4(b));
    assert_eq!((p, q, k), (p2, q2, k2), "fused batched matmul: shapes");
    batched(a, false, b, false, (m, n, k))
}

/// Sizes of the attention-values op: batch, key/value groups, query heads per group, query
/// positions, key positions, head width.
struct ValueDims {
    b: usize,
    g: usize,
    r: usize,
    t: usize,
    s: usize,
    d: usize,
}

fn value_dims(probs: &FlexTensor, v: &FlexTensor, rep: usize) -> ValueDims {
    let ((b, g, rt, s), (b2, g2, s2, d)) = (dims4(probs), dims4(v));
    assert!(
        (b, g, s) == (b2, g2, s2) && rep > 0 && rt % rep == 0,
        "fused attention values: shapes"
    );
    ValueDims {
        b,
        g,
        r: rep,
        t: rt / rep,
        s,
        d,
    }
}

/// `out[b, i, g·r + j, :] = Σ_k probs[b, g, j·t + i, k] · v[b, g, k, :]`: one gemm per query
/// head, written straight into its columns of the merged `[b, t, heads·d]` rows.
fn values_forward(probs: &FlexTensor, v: &FlexTensor, rep: usize) -> FlexTensor {
    let ValueDims { b, g, r, t, s, d } = value_dims(probs, v, rep);
    let heads = g * r;
    let mut out = Vec::<f32>::with_capacity(b * t * heads * d);
    let base = SendPtr(out.as_mut_ptr());
    (0..b * heads).into_par_iter().for_each(|i| {
        let (bi, h) = (i / heads, i % heads);
        let (gi, j) = (h / r, h % r);
        let p = View::sub(probs, [bi, gi, j * t, 0], 2, 3);
        let vv = View::sub(v, [bi, gi, 0, 0], 2, 3);
        // SAFETY: head h of batch bi owns columns h·d..(h+1)·d of its t rows (row stride
        // heads·d); gemm writes them all (for s = 0, zeros are written here).
        unsafe {
            let dst = base.get().add(bi * t * heads * d + h * d);
            if s == 0 {
                for row in 0..t {
                    std::ptr::write_bytes(dst.add(row * heads * d), 0, d);
                }
            } else {
                gemm_into((t, d, s), (dst, heads * d), false, p, vv, false);
            }
        }
    });
    // SAFETY: every element was written above.
    unsafe { out.set_len(b * t * heads * d) };
    from_vec(out, Shape::new([b, t, heads, d]))
}

/// `dprobs = dout·vᵀ` per query head and `dv = Σ_j probsⱼᵀ·doutⱼ` per group, from `dout`
/// `[b, t, heads, d]` (any layout).
fn values_backward(
    probs: &FlexTensor,
    v: &FlexTensor,
    rep: usize,
    dout: &FlexTensor,
    want: (bool, bool),
) -> (Option<FlexTensor>, Option<FlexTensor>) {
    let ValueDims { b, g, r, t, s, d } = value_dims(probs, v, rep);
    let heads = g * r;
    let dc = |bi: usize, h: usize| View::sub(dout, [bi, 0, h, 0], 1, 3);
    let dprobs = want.0.then(|| {
        let mut out = Vec::<f32>::with_capacity(b * heads * t * s);
        let base = SendPtr(out.as_mut_ptr());
        (0..b * heads).into_par_iter().for_each(|i| {
            let (bi, h) = (i / heads, i % heads);
            let vt = View::sub(v, [bi, h / r, 0, 0], 2, 3).t();
            // SAFETY: head h's t rows of s scores are block i of `out`; gemm writes them all.
            unsafe {
                let dst = base.get().add(i * t * s);
                if d == 0 {
                    std::ptr::write_bytes(dst, 0, t * s);
                } else {
                    gemm_into((t, s, d), (dst, s), false, dc(bi, h), vt, false);
                }
            }
        });
        // SAFETY: every element was written above.
        unsafe { out.set_len(b * heads * t * s) };
        from_vec(out, Shape::new([b, g, r * t, s]))
    });
    let dv = want.1.then(|| {
        let mut out = vec![0f32; b * g * s * d];
        let base = SendPtr(out.as_mut_ptr());
        (0..b * g).into_par_iter().for_each(|i| {
            let (bi, gi) = (i / g, i % g);
            for j in 0..r {
                let pt = View::sub(probs, [bi, gi, j * t, 0], 2, 3).t();
                // SAFETY: group i's s × d block of `out` (zero-initialised) is this task's.
                unsafe {
                    let dst = base.get().add(i * s * d);
                    gemm_into((s, d, t), (dst, d), true, pt, dc(bi, gi * r + j), false);
                }
            }
        });
        from_vec(out, Shape::new([b, g, s, d]))
    });
    (dprobs, dv)
}

impl FusedMatmul for Flex {
    fn fused_matmul(x: FlexTensor, w: FlexTensor) -> FlexTensor {
        forward(&x, &w, None)
    }
    fn fused_matmul_bias(x: FlexTensor, w: FlexTensor, bias: FlexTensor) -> FlexTensor {
        forward(&x, &w, Some(&bias))
    }
    fn fused_batched_matmul(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        batched_forward(&a, &b)
    }
    fn fused_attention_values(probs: FlexTensor, v: FlexTensor, rep: usize) -> FlexTensor {
        values_forward(&probs, &v, rep)
    }
}

#[derive(Debug)]
struct MatmulBackward;

impl Backward<Flex, 2> for MatmulBackward {
    /// (x, w).
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let [x_id, w_id] = ops.parents.map(|node| node.map(|n| n.id));
        register_linear_grads(grads, &dy, ops.state, [x_id, w_id, None]);
    }
}

/// The gradients of `x·w (+ bias)` from its output's, each registered for the parent that wants
/// it: `dx = dy·wᵀ`, `dw = xᵀ·dy`, `dbias = Σ_rows dy`.
fn register_linear_grads(
    grads: &mut Gradients,
    dy: &FlexTensor,
    (x, w): (FlexTensor, FlexTensor),
    [x_id, w_id, bias_id]: [Option<NodeId>; 3],
) {
    let (dx, dw) = backward(&x, &w, dy, (x_id.is_some(), w_id.is_some()));
    if let Some(id) = bias_id {
        grads.register::<Flex>(id, column_sums(dy));
    }
    if let (Some(id), Some(dx)) = (x_id, dx) {
        grads.register::<Flex>(id, dx);
    }
    if let (Some(id), Some(dw)) = (w_id, dw) {
        grads.register::<Flex>(id, dw);
    }
}

#[derive(Debug)]
struct MatmulBiasBackward;

impl Backward<Flex, 3> for MatmulBiasBackward {
    /// (x, w).
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy: FlexTensor = grads.consume::<Flex>(&ops.node);
        let ids = ops.parents.map(|node| node.map(|n| n.id));
        register_linear_grads(grads, &dy, ops.state, ids);
    }
}

#[derive(Debug)]
struct BatchedBackward;

impl Backward<Flex, 2> for BatchedBackward {
    /// (a, b).
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_a, node_b] = ops.parents;
        let dc: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (a, b) = ops.state;
        let ((_, _, m, k), (.., n)) = (dims4(&a), dims4(&b));
        // dA = dC·Bᵀ, dB = Aᵀ·dC, per matrix.
        if let Some(node) = node_a {
            grads.register::<Flex>(node.id, batched(&dc, false, &b, true, (m, k, n)));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, batched(&a, true, &dc, false, (k, n, m)));
        }
    }
}

#[derive(Debug)]
struct ValuesBackward;

impl Backward<Flex, 2> for ValuesBackward {
    /// (probs, v, query heads per group).
    type State = (FlexTensor, FlexTensor, usize);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_p, node_v] = ops.parents;
        let dout: FlexTensor = grads.consume::<Flex>(&ops.node);
        let (p, v, rep) = ops.state;
        let want = (node_p.is_some(), node_v.is_some());
        let (dp, dv) = values_backward(&p, &v, rep, &dout, want);
        if let (Some(node), Some(dp)) = (node_p, dp) {
            grads.register::<Flex>(node.id, dp);
        }
        if let (Some(node), Some(dv)) = (node_v, dv) {
            grads.register::<Flex>(node.id, dv);
        }
    }
}

impl<C: CheckpointStrategy> FusedMatmul for Autodiff<Flex, C> {
    fn fused_matmul(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, node_x) = x.into_parts();
        let (w, node_w) = w.into_parts();
        match MatmulBackward
            .prepare::<C>([node_x, node_w])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = forward(&x, &w, None);
                prep.finish((x, w), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x, &w, None)),
        }
    }

    fn fused_matmul_bias(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (x, node_x) = x.into_parts();
        let (w, node_w) = w.into_parts();
        let (b, node_b) = bias.into_parts();
        match MatmulBiasBackward
            .prepare::<C>([node_x, node_w, node_b])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = forward(&x, &w, Some(&b));
                prep.finish((x, w), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x, &w, Some(&b))),
        }
    }

    fn fused_batched_matmul(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        let (a, node_a) = a.into_parts();
        let (b, node_b) = b.into_parts();
        match BatchedBackward
            .prepare::<C>([node_a, node_b])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = batched_forward(&a, &b);
                prep.finish((a, b), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(batched_forward(&a, &b)),
        }
    }

    fn fused_attention_values(
        probs: FloatTensor<Self>,
        v: FloatTensor<Self>,
        rep: usize,
    ) -> FloatTensor<Self> {
        let (p, node_p) = probs.into_parts();
        let (v, node_v) = v.into_parts();
        match ValuesBackward
            .prepare::<C>([node_p, node_v])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = values_forward(&p, &v, rep);
                prep.finish((p, v, rep), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(values_forward(&p, &v, rep)),
        }
    }
}

/// Whether morsd's matmul takes tensors of `dtype` on `device`.
pub(crate) fn fused(device: &Device, dtype: burn::tensor::DType) -> bool {
    dtype == burn::tensor::DType::F32 && fused_on(device, "matmul")
}

/// `x·w` for `x` `[m, k]` and `w` `[k, n]`: morsd's matmul on flex, burn's elsewhere.
pub fn matmul(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    if !fused(&x.device(), x.dtype()) || w.dtype() != x.dtype() {
        return x.matmul(w);
    }
    Tensor::from_dispatch(Dispatch::fused_matmul(x.into_dispatch(), w.into_dispatch()))
}

/// `a·b` for `a` `[p, q, m, k]` and `b` `[p, q, k, n]` (attention's products): morsd's matmul
/// on flex, burn's elsewhere (and for broadcast leading dims).
pub fn batched_matmul(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    let ([p, q, ..], [p2, q2, ..]) = (a.dims(), b.dims());
    if (p, q) != (p2, q2) || !fused(&a.device(), a.dtype()) || b.dtype() != a.dtype() {
        return a.matmul(b);
    }
    Tensor::from_dispatch(Dispatch::fused_batched_matmul(
        a.into_dispatch(),
        b.into_dispatch(),
    ))
}

/// Attention's `probs·v` with the heads merged into rows, the input of the output projection:
/// `probs` `[b, g, rep·t, s]` (the `rep` query heads of key/value group `g` stacked along the
/// query axis, as grouped-query attention computes them; `rep = 1` without grouping) and `v`
/// `[b, g, s, d]` give `[b, t, g·rep·d]`. On flex each head's product is written straight into
/// its columns (no `[b, heads, t, d]` intermediate and no transposing copy, forward or
/// backward); elsewhere burn's matmul, reshape and swap.
pub fn attention_values(probs: Tensor<4>, v: Tensor<4>, rep: usize) -> Tensor<3> {
    let ([b, g, rt, _], [.., d]) = (probs.dims(), v.dims());
    let t = rt / rep.max(1);
    if !fused(&probs.device(), probs.dtype()) || v.dtype() != probs.dtype() {
        return probs
            .matmul(v)
            .reshape([b, g * rep, t, d])
            .swap_dims(1, 2)
            .reshape([b, t, g * rep * d]);
    }
    Tensor::<4>::from_dispatch(Dispatch::fused_attention_values(
        probs.into_dispatch(),
        v.into_dispatch(),
        rep,
    ))
    .reshape([b, t, g * rep * d])
}

/// burn-nn's [`Linear`] on `x` `[…, d]`: see [`linear_with`].
pub fn linear<const D: usize>(lin: &Linear, x: Tensor<D>) -> Tensor<D> {
    linear_with(x, lin.weight.val(), lin.bias.as_ref().map(|b| b.val()))
}

/// `lin` on `x` as `P` products, one per equal block of its output columns: a fused q/k/v
/// projection yields q, k and v without slicing its output, whose backward would build and add
/// three zero-padded copies of the whole `[rows, 3d]` gradient. The weight is read once (one
/// LoRA merge) and sliced as strided views.
pub fn linear_split<const D: usize, const P: usize>(lin: &Linear, x: Tensor<D>) -> [Tensor<D>; P] {
    let w = lin.weight.val();
    let bias = lin.bias.as_ref().map(|b| b.val());
    let n = w.dims()[1] / P.max(1);
    std::array::from_fn(|i| {
        let part_bias = bias.clone().map(|b| b.narrow(0, i * n, n));
        linear_with(x.clone(), w.clone().narrow(1, i * n, n), part_bias)
    })
}

/// `x·w + bias` for `x` `[…, d]` and `w` `[d, n]`: decoding-sized inputs without autodiff take
/// [`super::small_matmul`], other f32 inputs on flex one `[rows, d] × [d, n]` product of
/// morsd's matmul (the bias folded in), and anything else burn's `linear`.
pub fn linear_with<const D: usize>(
    x: Tensor<D>,
    w: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    let mut dims = x.dims();
    let d = dims[D - 1];
    let rows = x.shape().num_elements() / d.max(1);
    dims[D - 1] = w.dims()[1];
    if super::small_matmul::small(&x.device(), rows) {
        let y = super::small_matmul::small_matmul(x.reshape([rows, d]), w, false);
        let y = match bias {
            Some(bias) => y + bias.unsqueeze(),
            None => y,
        };
        return y.reshape(dims);
    }
    if !fused(&x.device(), x.dtype()) || w.dtype() != x.dtype() {
        return burn::tensor::module::linear(x, w, bias);
    }
    let x = x.reshape([rows, d]).into_dispatch();
    let y = match bias {
        Some(bias) => Dispatch::fused_matmul_bias(x, w.into_dispatch(), bias.into_dispatch()),
        None => Dispatch::fused_matmul(x, w.into_dispatch()),
    };
    Tensor::<2>::from_dispatch(y).reshape(dims)
}

/// `h·Eᵀ` for a tied output head (`E` `[vocab, d]`): the small path for decoding-sized inputs,
/// else morsd's matmul on `E`'s transposed view (no copy).
pub fn tied_head(h: Tensor<2>, embed: Tensor<2>) -> Tensor<2> {
    if super::small_matmul::small(&h.device(), h.dims()[0]) {
        return super::small_matmul::small_matmul(h, embed, true);
    }
    matmul(h, embed.transpose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, data, values};
    use burn::nn::LinearConfig;

    fn tensor<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
        let n = shape.iter().product();
        Tensor::<1>::from_floats(values(n, seed, 1.0).as_slice(), device).reshape(shape)
    }

    /// Values and gradients of `f` (fused) against `g` (burn's ops) for the inputs made by
    /// `inputs`, with a random output gradient (a weighted sum as the loss).
    fn check<const D: usize, const O: usize>(
        what: &str,
        inputs: impl Fn(&Device) -> Vec<Tensor<D>>,
        f: impl Fn(&[Tensor<D>]) -> Tensor<O>,
        g: impl Fn(&[Tensor<D>]) -> Tensor<O>,
    ) {
        let device = Device::flex().autodiff();
        let run = |h: &dyn Fn(&[Tensor<D>]) -> Tensor<O>| {
            let xs: Vec<Tensor<D>> = inputs(&device)
                .into_iter()
                .map(Tensor::require_grad)
                .collect();
            let y = h(&xs);
            let weights = Tensor::<1>::from_floats(
                values(y.shape().num_elements(), 77, 1.0).as_slice(),
                &device,
            )
            .reshape(y.shape());
            let grads = (y.clone() * weights).sum().backward();
            let gs: Vec<Vec<f32>> = xs
                .iter()
                .map(|x| data(x.grad(&grads).expect("a gradient")))
                .collect();
            (data(y), gs)
        };
        let (y, gs) = run(&f);
        let (y2, gs2) = run(&g);
        assert_close(&format!("{what}: value"), &y, &y2);
        for (i, (a, b)) in gs.iter().zip(&gs2).enumerate() {
            assert_close(&format!("{what}: gradient {i}"), a, b);
        }
    }

    #[test]
    fn matmul_values_and_gradients_match_burn() {
        // Shapes on both sides of the threading threshold; a transposed (strided) operand.
        for (m, k, n) in [(1, 1, 1), (7, 5, 3), (300, 64, 200)] {
            check(
                "x·w",
                |d| vec![tensor([m, k], 1, d), tensor([k, n], 2, d)],
                |xs| matmul(xs[0].clone(), xs[1].clone()),
                |xs| xs[0].clone().matmul(xs[1].clone()),
            );
            check(
                "x·(wᵀ)ᵀ",
                |d| vec![tensor([m, k], 3, d), tensor([n, k], 4, d)],
                |xs| matmul(xs[0].clone(), xs[1].clone().transpose()),
                |xs| xs[0].clone().matmul(xs[1].clone().transpose()),
            );
        }
    }

    #[test]
    fn linear_matches_burn_linear_with_and_without_bias() {
        let device = Device::flex().autodiff();
        for bias in [true, false] {
            let lin = LinearConfig::new(24, 40).with_bias(bias).init(&device);
            // 2 × 32 rows: burn keeps these as per-sequence products; ours is one product.
            let x = tensor([2, 32, 24], 5, &device).require_grad();
            let weights = tensor([2, 32, 40], 6, &device);
            let grads_of = |y: Tensor<3>| {
                let g = (y.clone() * weights.clone()).sum().backward();
                let dx = data(x.grad(&g).unwrap());
                let dw = data(lin.weight.val().grad(&g).unwrap());
                let db = lin.bias.as_ref().map(|b| data(b.val().grad(&g).unwrap()));
                (data(y), dx, dw, db)
            };
            let ours = grads_of(linear(&lin, x.clone()));
            let theirs = grads_of(lin.forward(x.clone()));
            assert_close("y", &ours.0, &theirs.0);
            assert_close("dx", &ours.1, &theirs.1);
            assert_close("dW", &ours.2, &theirs.2);
            if let (Some(a), Some(b)) = (ours.3, theirs.3) {
                assert_close("db", &a, &b);
            }
        }
    }

    #[test]
    fn batched_matmul_matches_burn_on_strided_operands() {
        // Attention's shapes: q·kᵀ with k a swapped-dims view, then p·v.
        let (b, h, t, s, hd) = (2, 3, 9, 11, 8);
        check(
            "q·kᵀ",
            |d| vec![tensor([b, h, t, hd], 7, d), tensor([b, s, h, hd], 8, d)],
            |xs| batched_matmul(xs[0].clone(), xs[1].clone().swap_dims(1, 2).swap_dims(2, 3)),
            |xs| {
                xs[0]
                    .clone()
                    .matmul(xs[1].clone().swap_dims(1, 2).swap_dims(2, 3))
            },
        );
        check(
            "p·v",
            |d| vec![tensor([b, h, t, s], 9, d), tensor([b, h, s, hd], 10, d)],
            |xs| batched_matmul(xs[0].clone(), xs[1].clone()),
            |xs| xs[0].clone().matmul(xs[1].clone()),
        );
    }

    #[test]
    fn attention_values_match_matmul_reshape_and_swap() {
        // Plain heads (rep 1) and grouped-query heads (2 query heads per group), with `v` a
        // swapped-dims view as the models pass it.
        let (b, g, t, s, d) = (2, 3, 5, 7, 4);
        for rep in [1, 2] {
            check(
                "probs·v, heads merged",
                |dev| {
                    vec![
                        tensor([b, g, rep * t, s], 13, dev),
                        tensor([b, s, g, d], 14, dev),
                    ]
                },
                |xs| attention_values(xs[0].clone(), xs[1].clone().swap_dims(1, 2), rep),
                |xs| {
                    xs[0]
                        .clone()
                        .matmul(xs[1].clone().swap_dims(1, 2))
                        .reshape([b, g * rep, t, d])
                        .swap_dims(1, 2)
                        .reshape([b, t, g * rep * d])
                },
            );
        }
    }

    #[test]
    fn split_linear_matches_slicing_the_output() {
        let device = Device::flex().autodiff();
        let lin = LinearConfig::new(16, 3 * 8).init(&device);
        let x = tensor([2, 20, 16], 15, &device).require_grad();
        let w = tensor([2, 20, 8], 16, &device);
        let loss = |parts: [Tensor<3>; 3]| {
            let [q, k, v] = parts;
            let y = q * w.clone() + k.mul_scalar(2.0) * w.clone() - v * w.clone();
            let g = y.clone().sum().backward();
            let dw = data(lin.weight.val().grad(&g).unwrap());
            let db = data(lin.bias.as_ref().unwrap().val().grad(&g).unwrap());
            (data(y), data(x.grad(&g).unwrap()), dw, db)
        };
        let ours = loss(linear_split::<3, 3>(&lin, x.clone()));
        let y = lin.forward(x.clone());
        let theirs = loss(std::array::from_fn(|i| y.clone().narrow(2, i * 8, 8)));
        assert_close("y", &ours.0, &theirs.0);
        assert_close("dx", &ours.1, &theirs.1);
        assert_close("dW", &ours.2, &theirs.2);
        assert_close("db", &ours.3, &theirs.3);
    }

    #[test]
    fn plain_flex_forward_matches() {
        // Without autodiff (scoring): the op on the plain backend.
        let device = Device::flex();
        let x = tensor([40, 33], 11, &device);
        let w = tensor([33, 17], 12, &device);
        assert_close(
            "x·w",
            &data(matmul(x.clone(), w.clone())),
            &data(x.matmul(w)),
        );
    }
}
