//! Matmul of a few rows against a weight matrix, for decoding (inference only).
//!
//! A cached decoding step multiplies `b` new positions (the batch, 8 in the bench) by every
//! weight matrix. The `gemm` crate packs the whole weight into its tile layout on every call,
//! so each step read every weight twice and wrote it once; packing was 15 % of a SmolLM2
//! decoding profile. Here the weight is streamed once, unpacked: `y = x·W` by column blocks
//! (each block's `rows × 512` accumulators stay in L1), and `y = x·Eᵀ` (the tied output head,
//! `E` being the `[vocab, d]` embedding) as dot products along `E`'s rows.

use super::simd::{self, multiversion};
use super::{contiguous, from_vec, fused_on, slice};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, TensorMetadata, backend_extension};
use burn::prelude::*;
use rayon::prelude::*;

/// At most this many rows take the small path; more amortise gemm's packing.
pub const MAX_ROWS: usize = 16;

/// Output columns per block of `x·W`.
const BLOCK: usize = 512;

/// The small matmul as a backend op (flex, inference: it has no backward).
#[backend_extension(Flex)]
pub trait SmallMatmul: Backend {
    /// `x·W` for `x` `[m, k]` and `w` `[k, n]`, or `x·Wᵀ` for `w` `[n, k]` when `transposed`.
    fn small_matmul(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        transposed: bool,
    ) -> FloatTensor<Self>;
}

multiversion! {
    /// acc[r, j] = Σ_i x[r, i] · w[i·n + j] over one column block (`acc` is `m × width`), four
    /// rows of `w` at a time so each pass over the accumulators does four FMAs.
    fn block_nn(x: &[f32], k: usize, w: &[f32], n: usize, n0: usize, width: usize, acc: &mut [f32]) {
        let m = acc.len() / width;
        let mut i = 0;
        while i + 4 <= k {
            let row = |d: usize| &w[(i + d) * n + n0..(i + d) * n + n0 + width];
            let (w0, w1, w2, w3) = (row(0), row(1), row(2), row(3));
            for r in 0..m {
                let a = &x[r * k + i..r * k + i + 4];
                let out = &mut acc[r * width..(r + 1) * width];
                for j in 0..width {
                    out[j] = a[3].mul_add(w3[j], a[2].mul_add(w2[j], a[1].mul_add(w1[j], a[0].mul_add(w0[j], out[j]))));
                }
            }
            i += 4;
        }
        for i in i..k {
            let row = &w[i * n + n0..i * n + n0 + width];
            for r in 0..m {
                let a = x[r * k + i];
                for (o, &wv) in acc[r * width..(r + 1) * width].iter_mut().zip(row) {
                    *o = a.mul_add(wv, *o);
                }
            }
        }
    }
}

multiversion! {
    /// out[v·m + r] = x[r, :] · e[v, :] for the rows `v` of `e` given (out is `rows × m`).
    fn rows_nt(x: &[f32], k: usize, e: &[f32], out: &mut [f32]) {
        let m = x.len() / k;
        for (v, erow) in e.chunks_exact(k).enumerate() {
            for r in 0..m {
                out[v * m + r] = simd::dot(&x[r * k..(r + 1) * k], erow);
            }
        }
    }
}

fn forward(x: &FlexTensor, w: &FlexTensor, transposed: bool) -> FlexTensor {
    let [m, k] = x.shape().dims::<2>();
    let [w0, w1] = w.shape().dims::<2>();
    let n = if transposed { w0 } else { w1 };
    assert_eq!(
        k,
        if transposed { w1 } else { w0 },
        "small_matmul: inner dims"
    );
    let (xc, wc) = (contiguous(x), contiguous(w));
    let (xs, ws) = (slice(&xc), slice(&wc));
    let mut y = vec![0f32; m * n];
    if transposed {
        // 1. yᵀ by chunks of E's rows, 2. transposed into y.
        let per = 256;
        let mut yt = vec![0f32; n * m];
        yt.par_chunks_mut(per * m).enumerate().for_each(|(c, out)| {
            let rows = out.len() / m.max(1);
            rows_nt(xs, k, &ws[c * per * k..(c * per + rows) * k], out);
        });
        for v in 0..n {
            for r in 0..m {
                y[r * n + v] = yt[v * m + r];
            }
        }
    } else {
        // 1. Each column block into its own accumulators, 2. copied into y's rows.
        let blocks: Vec<(usize, Vec<f32>)> = (0..n.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let (n0, width) = (b * BLOCK, BLOCK.min(n - b * BLOCK));
                let mut acc = vec![0f32; m * width];
                block_nn(xs, k, ws, n, n0, width, &mut acc);
                (n0, acc)
            })
            .collect();
        for (n0, acc) in blocks {
            let width = acc.len() / m.max(1);
            for r in 0..m {
                y[r * n + n0..r * n + n0 + width].copy_from_slice(&acc[r * width..(r + 1) * width]);
            }
        }
    }
    from_vec(y, burn::tensor::Shape::new([m, n]))
}

impl SmallMatmul for Flex {
    fn small_matmul(x: FlexTensor, w: FlexTensor, transposed: bool) -> FlexTensor {
        forward(&x, &w, transposed)
    }
}

/// Whether `rows` rows on `device` take the small path: inference on flex, at most
/// [`MAX_ROWS`] rows.
pub(crate) fn small(device: &Device, rows: usize) -> bool {
    rows <= MAX_ROWS && !device.is_autodiff() && fused_on(device, "small_matmul")
}

/// The op itself (flex, no autodiff).
pub fn small_matmul(x: Tensor<2>, w: Tensor<2>, transposed: bool) -> Tensor<2> {
    Tensor::from_dispatch(Dispatch::small_matmul(
        x.into_dispatch(),
        w.into_dispatch(),
        transposed,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{assert_close, data, values};

    #[test]
    fn matches_burn_matmul_both_layouts() {
        let device = Device::flex();
        // 8 rows; n not a multiple of the block or the row chunk.
        for (m, k, n) in [(1, 5, 3), (8, 64, 300), (16, 96, 1000)] {
            let x = Tensor::<1>::from_floats(values(m * k, 18, 2.0).as_slice(), &device)
                .reshape([m, k]);
            let w = Tensor::<1>::from_floats(values(k * n, 19, 1.0).as_slice(), &device)
                .reshape([k, n]);
            let want = data(x.clone().matmul(w.clone()));
            assert_close(
                "x·W",
                &data(small_matmul(x.clone(), w.clone(), false)),
                &want,
            );
            let e = w.transpose().into_data();
            let e = Tensor::<2>::from_data(e, &device);
            assert_close("x·Eᵀ", &data(small_matmul(x, e, true)), &want);
        }
    }
}
