//! Vector building blocks of the fused kernels: a polynomial `exp` that the compiler can
//! vectorise (libm's `expf` is a scalar call), lane-parallel sums and maxima (a plain float
//! reduction is never vectorised, since it would reorder the additions), and [`multiversion!`],
//! which compiles a kernel body for AVX-512 and AVX2 + FMA and picks one at run time, so the
//! binary still runs on any x86-64 (and elsewhere, on the portable body).

/// Lanes of the partial sums: 16 f32 fill one AVX-512 register (two AVX2 ones).
pub const LANES: usize = 16;

/// `e^x` to about 2 ulp over the f32 range (Cephes `expf`): `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`,
/// `e^r` by a degree-6 polynomial, `2^n` through the exponent bits. Inputs below −87.3
/// (masked scores, −1e9) give exactly 0, as libm's does: a tiny normal result there would turn
/// subnormal once a softmax normalises it, and subnormals make the next matmul many times slower.
#[inline(always)]
#[allow(
    clippy::excessive_precision,
    reason = "Cephes' expf coefficients as published; the compiler rounds them to the same f32"
)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    let tiny = x < -87.3;
    let x = x.clamp(-87.3, 88.7);
    let n = (x * LOG2E + 0.5).floor();
    let r = x - n * C1 - n * C2;
    let mut p = 1.987_569_1e-4_f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 5.000_000_1e-1);
    let er = (p * r).mul_add(r, r) + 1.0;
    // 2^n from the bits of n + 127 + 1.5·2^23, whose low mantissa bits hold n + 127 (n is an
    // integer in [−126, 128]): a bit cast, so the loop vectorises (`n as i32` is a saturating
    // conversion that LLVM keeps scalar).
    let biased = (n + (127.0 + 12_582_912.0))
        .to_bits()
        .wrapping_sub(0x4B40_0000);
    let e = er * f32::from_bits(biased << 23);
    if tiny { 0.0 } else { e }
}

/// Σ x, in [`LANES`] partial sums (vectorisable).
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Σ x·y, in [`LANES`] partial sums.
#[inline(always)]
pub fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &y[..n]);
    let (xc, yc) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let tail: f32 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in xc.zip(yc) {
        for i in 0..LANES {
            acc[i] = a[i].mul_add(b[i], acc[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// max x (−∞ for an empty slice), in [`LANES`] partial maxima.
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.max(v);
        }
    }
    acc.iter().fold(tail, |m, &v| m.max(v))
}

/// Defines `fn name(args) -> ret` whose body is compiled three times: for AVX-512, for
/// AVX2 + FMA, and portably; the first the CPU supports runs. The body must only call
/// `#[inline(always)]` helpers (such as this module's), so they are compiled with the same
/// target features.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments, reason = "the copies take exactly the arguments of the kernel they wrap (a backward row takes its slices and scalars: 8 for layer norm)")]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[allow(clippy::too_many_arguments, reason = "the copies take exactly the arguments of the kernel they wrap (a backward row takes its slices and scalars: 8 for layer norm)")]
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(clippy::too_many_arguments, reason = "the copies take exactly the arguments of the kernel they wrap (a backward row takes its slices and scalars: 8 for layer norm)")]
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn v4($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                #[allow(clippy::too_many_arguments, reason = "the copies take exactly the arguments of the kernel they wrap (a backward row takes its slices and scalars: 8 for layer norm)")]
                #[target_feature(enable = "avx2,fma")]
                fn v3($($arg: $ty),*) $(-> $ret)? { body($($arg),*) }
                if $crate::kernels::simd::has_avx512() {
                    // SAFETY: the CPU has AVX-512F/VL (checked at run time).
                    return unsafe { v4($($arg),*) };
                }
                if $crate::kernels::simd::has_avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (checked at run time).
                    return unsafe { v3($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// Whether this CPU runs the AVX-512 versions (cached by the standard library).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

/// Whether this CPU runs the AVX2 + FMA versions.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_to_a_few_ulp() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (a, b) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((a - b) / b).abs());
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp(-1e9), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn reductions_match_the_plain_loops() {
        let x: Vec<f32> = (0..37).map(|i| ((i * 7 % 13) as f32 - 6.0) / 3.0).collect();
        let y: Vec<f32> = (0..37).map(|i| (i as f32 * 0.3).sin()).collect();
        let plain_dot: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
        assert!((sum(&x) - x.iter().sum::<f32>()).abs() < 1e-5);
        assert!((dot(&x, &y) - plain_dot).abs() < 1e-5);
        assert_eq!(max(&x), x.iter().cloned().fold(f32::MIN, f32::max));
        assert_eq!(max(&[]), f32::NEG_INFINITY);
    }
}
