//! Fused CPU kernels for the student's hot ops, each a forward and a hand-written backward,
//! plugged into burn's `flex` backend (plain and under `Autodiff`) through burn's
//! backend-extension API (`#[backend_extension]`).
//!
//! Under `Autodiff<Flex>` burn 0.22.1 has no fused backward for softmax, log-softmax, layer norm
//! or RMSNorm: each falls back to 5–6 separate ops, each with its own pass over memory and its own
//! fresh buffer. Here each is one pass forward and one backward, threaded with rayon by rows:
//! - [`cross_entropy`]: log-softmax + gather of the target (the loss over the loss rows only);
//! - [`masked_softmax`]: attention's `softmax(scores · scale + mask)`, and [`attention`], the
//!   whole `softmax(q·kᵀ · scale + mask)·v` per head with the scores kept in cache;
//! - [`rms_norm`] and [`layer_norm`];
//! - [`matmul`]: the linear layers' `x·W + b` as one product, and attention's batched
//!   products, on the `gemm` crate with outputs written in place (no zero-fill, no copy);
//! - [`small_matmul`]: decoding's few rows against a weight, streamed once (inference only);
//! - [`gated`]: the gated MLPs' `act(g) ⊙ u`, Llama's [`swiglu`] and T5 v1.1's [`geglu`]; and
//!   [`gelu`], the scratch student's.
//!
//! On any other backend (wgpu, tch) these functions compute the same thing with burn's
//! decomposed ops, and `MORSD_KERNELS=burn` forces that path on flex too (or names the kernels to
//! fuse, e.g. `MORSD_KERNELS=rms_norm,cross_entropy`) (for `just bench`'s
//! A/B rows and to check a result). Each kernel is tested against the decomposed ops, values and
//! gradients, on random inputs with masks and padding.

pub mod attention;
pub mod cross_entropy;
pub mod gated;
pub mod gelu;
pub mod layer_norm;
pub mod matmul;
pub mod rms_norm;
pub(crate) mod simd;
pub mod small_matmul;
pub mod softmax;

pub use attention::{attention, attention_softcapped, softcap};
pub use cross_entropy::cross_entropy;
pub use gated::{Gate, gated, geglu, swiglu};
pub use gelu::gelu;
pub use layer_norm::layer_norm;
pub use matmul::{attention_values, batched_matmul, linear, linear_split, matmul, tied_head};
pub use rms_norm::rms_norm;
pub use softmax::masked_softmax;

use burn::backend::DType;
use burn::backend::flex::{FlexTensor, Layout};
use burn::prelude::*;
use std::sync::OnceLock;

/// Whether the fused kernel `name` (its module's name) runs on `device`: on flex (with or
/// without autodiff), unless `MORSD_KERNELS` says otherwise — `burn` for burn's decomposed ops
/// everywhere, or a comma-separated list of the kernels to fuse (for A/B measurements).
pub fn fused_on(device: &Device, name: &str) -> bool {
    static CHOICE: OnceLock<Option<Vec<String>>> = OnceLock::new();
    let choice = CHOICE.get_or_init(|| {
        std::env::var("MORSD_KERNELS")
            .ok()
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
    });
    let wanted = choice
        .as_ref()
        .is_none_or(|list| list.iter().any(|k| k == name));
    wanted && device.clone().inner() == Device::flex()
}

/// Runs `f` on a thread of rayon's pool (directly when already on one) and returns its result.
///
/// Every threaded op of a forward or backward pass (gemm, the kernels here, burn-flex's) hands
/// its work to rayon's pool. Called from a thread outside the pool, each such op injects a job
/// and puts the caller to sleep until it is done: a futex wait and wake per op, hundreds per
/// training step. On a pool thread the op's tasks are forked in place and the caller works on
/// them itself. The student's hot loops (a training step, a scoring forward, a decoding batch)
/// therefore run through here; their results are the same either way.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        // `scope` runs its closure on a pool thread when called from outside the pool.
        rayon::scope(|_| f())
    }
}

/// A contiguous f32 copy of `t` (the tensor itself, no copy, when it already is one).
pub(crate) fn contiguous(t: &FlexTensor) -> FlexTensor {
    assert_eq!(t.dtype(), DType::F32, "fused kernels take f32 tensors");
    t.to_contiguous()
}

/// The f32 elements of a tensor made by [`contiguous`].
pub(crate) fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("contiguous() returns a contiguous tensor")
}

/// A tensor owning `v` (no copy).
pub(crate) fn from_vec(v: Vec<f32>, shape: burn::tensor::Shape) -> FlexTensor {
    FlexTensor::new(
        burn::backend::Bytes::from_elems(v),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// Rows per rayon task for rows of `d` elements: about 16K elements a task, and one task in all
/// when the whole tensor is under 32K elements (threads would cost more than they save).
pub(crate) fn rows_per_task(rows: usize, d: usize) -> usize {
    if rows * d < 32 * 1024 {
        rows.max(1)
    } else {
        (16 * 1024 / d.max(1)).clamp(1, rows.max(1))
    }
}

/// Elements per rayon task of an elementwise kernel.
pub(crate) const ELEMENTS_PER_TASK: usize = 16 * 1024;

/// The output of an elementwise kernel over `n` elements: `f(range, out)` fills the chunk of
/// the output at `range`, threaded by chunks of [`ELEMENTS_PER_TASK`].
pub(crate) fn map_elements(
    n: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync,
) -> Vec<f32> {
    use rayon::prelude::*;
    let mut y = vec![0f32; n];
    y.par_chunks_mut(ELEMENTS_PER_TASK)
        .enumerate()
        .for_each(|(c, out)| {
            let start = c * ELEMENTS_PER_TASK;
            f(start..start + out.len(), out)
        });
    y
}

/// The forward of a row-wise kernel: `out[r] = f(r, out row r)` for the `rows` rows of `d`
/// elements, threaded by rows; returns the output and each row's statistic.
pub(crate) fn map_rows<S: Copy + Default + Send>(
    rows: usize,
    d: usize,
    f: impl Fn(usize, &mut [f32]) -> S + Sync,
) -> (Vec<f32>, Vec<S>) {
    use rayon::prelude::*;
    let mut y = vec![0f32; rows * d];
    let mut stats = vec![S::default(); rows];
    let per = rows_per_task(rows, d);
    y.par_chunks_mut(per * d)
        .zip(stats.par_chunks_mut(per))
        .enumerate()
        .for_each(|(c, (out, stats))| {
            for (i, (out, st)) in out.chunks_mut(d).zip(stats.iter_mut()).enumerate() {
                *st = f(c * per + i, out);
            }
        });
    (y, stats)
}

/// The backward of a row-wise kernel with `P` parameter vectors of length `d`:
/// `f(r, dx row r, partial sums)` fills row `r` of dx and adds the row's share of each
/// parameter gradient to the task's partial sums, which are added at the end in task order.
/// Not with rayon's `reduce`: it adds the partial sums in whatever tree the work stealing made,
/// so the same training run gave weights that differed by float rounding from one invocation
/// to the next (RD by up to 0.16 % between two identical `morsd run`s).
pub(crate) fn map_rows_summing<const P: usize>(
    rows: usize,
    d: usize,
    f: impl Fn(usize, &mut [f32], &mut [Vec<f32>; P]) + Sync,
) -> (Vec<f32>, [Vec<f32>; P]) {
    use rayon::prelude::*;
    let mut dx = vec![0f32; rows * d];
    let per = rows_per_task(rows, d);
    let zero = || std::array::from_fn(|_| vec![0f32; d]);
    let sums = dx
        .par_chunks_mut(per * d)
        .enumerate()
        .map(|(c, out)| {
            let mut acc: [Vec<f32>; P] = zero();
            for (i, out) in out.chunks_mut(d).enumerate() {
                f(c * per + i, out, &mut acc);
            }
            acc
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold(zero(), |mut a, b| {
            for (a, b) in a.iter_mut().zip(&b) {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            }
            a
        });
    (dx, sums)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Shared checks of the kernel tests: random inputs and relative error.
    use burn::prelude::*;

    /// Deterministic pseudo-random values in [-scale, scale].
    pub fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    /// The elements of a tensor.
    pub fn data<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().iter::<f32>().collect()
    }

    /// Asserts `|a − b| ≤ 1e-4 · max(1, |b|)` elementwise (relative error ≤ 1e-4).
    pub fn assert_close(what: &str, a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            let tol = 1e-4 * y.abs().max(1.0);
            assert!(
                (x - y).abs() <= tol,
                "{what}[{i}]: fused {x} vs decomposed {y}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_gradient_sums_add_the_tasks_in_order() {
        // 64 tasks of 256 rows × d = 64, each row adding values of mixed magnitude, so the order
        // of the additions shows in the last bits. The sums must equal the tasks' partial sums
        // added left to right, bit for bit, every time: rayon's `reduce` (what this replaced)
        // adds them in a tree, which gives other bits.
        let (rows, d) = (64 * 256, 64);
        let per = rows_per_task(rows, d);
        assert_eq!(per, 256);
        let v = testing::values(rows * d, 7, 1.0);
        let row = |r: usize, acc: &mut [Vec<f32>; 1]| {
            for (j, a) in acc[0].iter_mut().enumerate() {
                *a += v[r * d + j] * if r.is_multiple_of(3) { 1e4 } else { 1e-3 };
            }
        };
        let mut want = vec![0f32; d];
        for task in 0..rows / per {
            let mut acc = [vec![0f32; d]];
            (task * per..(task + 1) * per).for_each(|r| row(r, &mut acc));
            want.iter_mut().zip(&acc[0]).for_each(|(w, a)| *w += a);
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        for _ in 0..8 {
            let (_, [got]) = pool.install(|| map_rows_summing(rows, d, |r, _, acc| row(r, acc)));
            assert_eq!(
                got.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}
