//! Rotary position embeddings, in one place for every Llama-style family: the inverse
//! frequencies of each `rope_scaling` type morsd builds, the cos/sin tables of a batch's
//! positions, and the rotation itself (Hugging Face's "rotate half" layout, over the first
//! `rotary_dims` of each head when the rotation is partial).
//!
//! Types built (transformers' `ROPE_INIT_FUNCTIONS`, `modeling_rope_utils.py`):
//! - `default` (or no `rope_scaling`): `inv_freq[i] = θ^(−2i/d)`;
//! - `linear`: `inv_freq / factor` (Gemma 3's global layers in the 4B+ models);
//! - `llama3` (Llama 3.1/3.2): frequencies whose wavelength is longer than
//!   `original_max_position_embeddings / low_freq_factor` are divided by `factor`, those
//!   shorter than `… / high_freq_factor` kept, and the band between interpolated smoothly;
//! - `longrope` (Phi-3-128k, Phi-3.5/4-mini): frequency `i` divided by `short_factor[i]`, or by
//!   `long_factor[i]` in a forward whose last position lies past
//!   `original_max_position_embeddings` (transformers' `longrope_frequency_update`: chosen per
//!   forward call, so keys already cached keep their rotation), and cos/sin multiplied by
//!   `√(1 + ln(max_position_embeddings / original) / ln(original))` unless the config gives
//!   `attention_factor`.
//!
//! Every other type (`dynamic`, `yarn`, …) is refused by [`RopeScaling::from_hf`] with its
//! name: an approximation would change every logit without saying so.

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// How the inverse frequencies are scaled (`rope_scaling` of a `config.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rope_type", rename_all = "lowercase")]
pub enum RopeScaling {
    /// No scaling.
    #[default]
    Default,
    /// Positions divided by `factor`.
    Linear {
        /// The divisor.
        factor: f64,
    },
    /// Llama 3.1's frequency-dependent scaling.
    Llama3 {
        /// Divisor of the low frequencies.
        factor: f64,
        /// `low_freq_factor`.
        low_freq_factor: f64,
        /// `high_freq_factor`.
        high_freq_factor: f64,
        /// `original_max_position_embeddings`.
        original_max_position_embeddings: f64,
    },
    /// Phi-3's per-frequency divisors, short and long context.
    #[serde(rename = "longrope")]
    LongRope {
        /// Divisors while every position is within the original context.
        short_factor: Vec<f64>,
        /// Divisors past it.
        long_factor: Vec<f64>,
        /// The original context (`original_max_position_embeddings`).
        original_max_position_embeddings: f64,
        /// The cos/sin multiplier.
        attention_factor: f64,
    },
}

impl RopeScaling {
    /// Reads `rope_scaling` of the `config.json` `cfg` (absent or null:
    /// [`RopeScaling::Default`]). `Err` names the type morsd does not build, or the field that is
    /// missing, for the caller to report.
    pub fn from_hf(cfg: &serde_json::Value) -> Result<Self, String> {
        let Some(v) = cfg.get("rope_scaling").filter(|v| !v.is_null()) else {
            return Ok(RopeScaling::Default);
        };
        // transformers accepts the old key `type` as well as `rope_type`.
        let kind = v
            .get("rope_type")
            .or_else(|| v.get("type"))
            .and_then(|t| t.as_str())
            .unwrap_or("default");
        let num = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_f64)
                .ok_or_else(|| format!("`rope_scaling.{k}` is missing (type `{kind}`)"))
        };
        match kind {
            "default" => Ok(RopeScaling::Default),
            "linear" => Ok(RopeScaling::Linear {
                factor: num("factor")?,
            }),
            "llama3" => Ok(RopeScaling::Llama3 {
                factor: num("factor")?,
                low_freq_factor: num("low_freq_factor")?,
                high_freq_factor: num("high_freq_factor")?,
                original_max_position_embeddings: num("original_max_position_embeddings")?,
            }),
            // Phi-3's own ratio of contexts (transformers' `_compute_longrope_parameters`).
            "longrope" | "su" => {
                let list = |k: &str| -> Result<Vec<f64>, String> {
                    v.get(k)
                        .and_then(|x| x.as_array())
                        .and_then(|a| a.iter().map(serde_json::Value::as_f64).collect())
                        .ok_or_else(|| {
                            format!("`rope_scaling.{k}` is missing or not a list of numbers")
                        })
                };
                let (short_factor, long_factor) = (list("short_factor")?, list("long_factor")?);
                let max = cfg
                    .get("max_position_embeddings")
                    .and_then(serde_json::Value::as_f64);
                let (original, factor) = match cfg
                    .get("original_max_position_embeddings")
                    .and_then(serde_json::Value::as_f64)
                {
                    Some(o) => (o, max.unwrap_or(o) / o),
                    None => (max.unwrap_or(2048.0), num("factor")?),
                };
                let attention_factor = match v
                    .get("attention_factor")
                    .and_then(serde_json::Value::as_f64)
                {
                    Some(a) => a,
                    None if factor <= 1.0 => 1.0,
                    None => (1.0 + factor.ln() / original.ln()).sqrt(),
                };
                Ok(RopeScaling::LongRope {
                    short_factor,
                    long_factor,
                    original_max_position_embeddings: original,
                    attention_factor,
                })
            }
            other => Err(format!(
                "`rope_scaling` of type `{other}` is not supported (morsd builds `default`, `linear`, `llama3` and `longrope`)"
            )),
        }
    }
}

impl RopeScaling {
    /// `rope_scaling` as transformers writes it (`null` for no scaling).
    pub fn to_hf(&self) -> serde_json::Value {
        match self {
            RopeScaling::Default => serde_json::Value::Null,
            RopeScaling::Linear { factor } => {
                serde_json::json!({"rope_type": "linear", "factor": factor})
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => serde_json::json!({
                "rope_type": "llama3",
                "factor": factor,
                "low_freq_factor": low_freq_factor,
                "high_freq_factor": high_freq_factor,
                "original_max_position_embeddings": *original_max_position_embeddings as u64,
            }),
            // Phi-3's config takes exactly these three fields; the attention factor follows
            // from `max_position_embeddings` / `original_max_position_embeddings`.
            RopeScaling::LongRope {
                short_factor,
                long_factor,
                ..
            } => serde_json::json!({
                "type": "longrope",
                "short_factor": short_factor,
                "long_factor": long_factor,
            }),
        }
    }

    /// The original context a `longrope` config needs at top level of `config.json`.
    pub fn original_context(&self) -> Option<usize> {
        match self {
            RopeScaling::LongRope {
                original_max_position_embeddings,
                ..
            } => Some(*original_max_position_embeddings as usize),
            _ => None,
        }
    }

    /// Whether the per-frequency factors fit a rotation of `dims` dimensions.
    pub fn check(&self, dims: usize) -> Result<(), String> {
        if let RopeScaling::LongRope {
            short_factor,
            long_factor,
            ..
        } = self
            && (short_factor.len() != dims / 2 || long_factor.len() != dims / 2)
        {
            return Err(format!(
                "`rope_scaling` has {} short and {} long factors for {} rotated dimensions (want {} each)",
                short_factor.len(),
                long_factor.len(),
                dims,
                dims / 2
            ));
        }
        Ok(())
    }
}

/// The rotation of one kind of attention layer: base, scaling, and how many of each head's
/// dimensions rotate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rope {
    /// Base frequency θ (`rope_theta`).
    pub theta: f64,
    /// Frequency scaling.
    #[serde(default)]
    pub scaling: RopeScaling,
}

impl Rope {
    /// A rotation with base `theta` and no scaling.
    pub fn plain(theta: f64) -> Self {
        Rope {
            theta,
            scaling: RopeScaling::Default,
        }
    }

    /// The `dims / 2` inverse frequencies (computed in f64; transformers computes them in f32,
    /// which differs by ~1e-7 relative); `long`: a `longrope` rotation's long-context factors.
    pub fn inv_freq(&self, dims: usize, long: bool) -> Vec<f32> {
        // 1. θ^(−2i/d).
        let base = (0..dims / 2).map(|i| self.theta.powf(-((2 * i) as f64) / dims as f64));
        // 2. The scaling of its type.
        base.enumerate()
            .map(|(i, f)| match &self.scaling {
                RopeScaling::Default => f,
                RopeScaling::Linear { factor } => f / factor,
                RopeScaling::LongRope {
                    short_factor,
                    long_factor,
                    ..
                } => {
                    f / if long {
                        long_factor[i]
                    } else {
                        short_factor[i]
                    }
                }
                &RopeScaling::Llama3 {
                    factor,
                    low_freq_factor: low,
                    high_freq_factor: high,
                    original_max_position_embeddings: old,
                } => {
                    let wavelen = 2.0 * PI / f;
                    if wavelen < old / high {
                        f
                    } else if wavelen > old / low {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low) / (high - low);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                }
            } as f32)
            .collect()
    }

    /// `cos`, `sin` of `[b, 1, t, dims]` for a batch's positions `[b, t]` ("rotate half"
    /// layout: the `dims / 2` angles repeated for both halves).
    pub fn tables(&self, pos: &Tensor<2, Int>, dims: usize) -> (Tensor<4>, Tensor<4>) {
        let [b, t] = pos.dims();
        let device = pos.device();
        let half = dims / 2;
        // 1. `longrope`: the long factors when the batch's last position is past the original
        //    context (one read of the positions, only for this type).
        let (long, scale) = match &self.scaling {
            RopeScaling::LongRope {
                original_max_position_embeddings: original,
                attention_factor,
                ..
            } => {
                let last = pos.clone().max().into_scalar::<i64>() as f64;
                (last + 1.0 > *original, *attention_factor as f32)
            }
            _ => (false, 1.0),
        };
        let inv =
            Tensor::<1>::from_data(TensorData::new(self.inv_freq(dims, long), [half]), &device)
                .reshape([1, 1, half]);
        // 2. Angles, repeated for both halves; cos and sin (× the attention factor).
        let angles = pos.clone().float().reshape([b, t, 1]) * inv;
        let freqs = Tensor::cat(vec![angles.clone(), angles], 2).reshape([b, 1, t, dims]);
        let (cos, sin) = (freqs.clone().cos(), freqs.sin());
        if scale == 1.0 {
            (cos, sin)
        } else {
            (cos * scale, sin * scale)
        }
    }
}

/// `x·cos + rotate_half(x)·sin` over the first `cos.dims()[3]` dimensions of each head of `x`
/// `[b, heads, t, hd]` (all of them unless the rotation is partial), with
/// `rotate_half([x1, x2]) = [−x2, x1]`; the remaining dimensions pass through.
pub fn apply(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let hd = x.dims()[3];
    let rot = cos.dims()[3];
    let (x, pass) = if rot < hd {
        (
            x.clone().narrow(3, 0, rot),
            Some(x.narrow(3, rot, hd - rot)),
        )
    } else {
        (x, None)
    };
    let x1 = x.clone().narrow(3, 0, rot / 2);
    let x2 = x.clone().narrow(3, rot / 2, rot / 2);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    let y = x * cos.clone() + rotated * sin.clone();
    match pass {
        Some(p) => Tensor::cat(vec![y, p], 3),
        None => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn llama3_scaling_keeps_high_divides_low_and_blends_between() {
        // hd 8, θ 10⁴: wavelengths 2π·θ^(2i/8) ≈ 6.3, 62.8, 628, 6283. With an original
        // context of 64, low 1, high 4: 6.3 < 16 kept; 62.8 in [16, 64] blended; the rest / 8.
        let r = Rope {
            theta: 1e4,
            scaling: RopeScaling::from_hf(&json!({"rope_scaling": {
                "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 64
            }}))
            .unwrap(),
        };
        let plain = Rope::plain(1e4).inv_freq(8, false);
        let got = r.inv_freq(8, false);
        assert_eq!(got[0], plain[0]);
        let wavelen = 2.0 * PI / plain[1] as f64;
        let smooth = (64.0 / wavelen - 1.0) / 3.0;
        let want = (1.0 - smooth) * plain[1] as f64 / 8.0 + smooth * plain[1] as f64;
        assert!((got[1] as f64 - want).abs() < 1e-7, "{} vs {want}", got[1]);
        assert!(got[1] < plain[1] && got[1] > plain[1] / 8.0);
        for i in 2..4 {
            assert!((got[i] - plain[i] / 8.0).abs() < 1e-9);
        }
    }

    #[test]
    fn unknown_types_and_missing_fields_are_refused_by_name() {
        let of = |v: serde_json::Value| json!({ "rope_scaling": v });
        for (v, want) in [
            (json!({"rope_type": "yarn", "factor": 4.0}), "`yarn`"),
            (json!({"type": "dynamic", "factor": 2.0}), "`dynamic`"),
            (
                json!({"rope_type": "longrope"}),
                "rope_scaling.short_factor",
            ),
            (json!({"rope_type": "linear"}), "rope_scaling.factor"),
        ] {
            let e = RopeScaling::from_hf(&of(v)).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        assert_eq!(
            RopeScaling::from_hf(&of(serde_json::Value::Null)),
            Ok(RopeScaling::Default)
        );
        assert_eq!(
            RopeScaling::from_hf(&of(json!({"type": "linear", "factor": 2.0}))),
            Ok(RopeScaling::Linear { factor: 2.0 })
        );
        // What an export writes reads back as the same scaling.
        let l3 = json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        let s = RopeScaling::from_hf(&of(l3.clone())).unwrap();
        assert_eq!(s.to_hf(), l3);
        assert_eq!(RopeScaling::from_hf(&of(s.to_hf())), Ok(s));
    }

    #[test]
    fn longrope_takes_phi3s_context_ratio_and_switches_factors_past_the_original_context() {
        // Phi-3-mini-128k's shape: 131072 / 4096 = 32, attention factor √(1 + ln 32 / ln 4096).
        let cfg = json!({"max_position_embeddings": 131072, "original_max_position_embeddings": 4096,
            "rope_scaling": {"type": "longrope", "short_factor": [1.0, 2.0], "long_factor": [4.0, 8.0]}});
        let s = RopeScaling::from_hf(&cfg).unwrap();
        let RopeScaling::LongRope {
            attention_factor, ..
        } = &s
        else {
            panic!("{s:?}")
        };
        let want = (1.0 + 32f64.ln() / 4096f64.ln()).sqrt();
        assert!((attention_factor - want).abs() < 1e-12);
        assert!(s.check(4).is_ok() && s.check(6).is_err());
        let r = Rope {
            theta: 1e4,
            scaling: s,
        };
        let plain = Rope::plain(1e4).inv_freq(4, false);
        assert_eq!(r.inv_freq(4, false), vec![plain[0], plain[1] / 2.0]);
        assert_eq!(r.inv_freq(4, true), vec![plain[0] / 4.0, plain[1] / 8.0]);
        // The tables: short factors up to position 4095, long ones once a position passes it;
        // cos²+sin² is the attention factor squared.
        let device = Device::flex();
        let at = |p: i64| {
            let pos = Tensor::<2, Int>::from_data(TensorData::new(vec![0i64, p], [1, 2]), &device);
            let (c, s) = r.tables(&pos, 4);
            let c: Vec<f32> = c.into_data().iter::<f32>().collect();
            let s: Vec<f32> = s.into_data().iter::<f32>().collect();
            (c, s)
        };
        let a = want as f32;
        for (p, inv) in [(4095i64, plain[1] / 2.0), (4096, plain[1] / 8.0)] {
            let (c, s) = at(p);
            // Row 1 (position p), frequency 1: element 4 + 1.
            let angle = p as f32 * inv;
            assert!((c[5] - angle.cos() * a).abs() < 1e-3, "{p}: cos {}", c[5]);
            assert!((s[5] - angle.sin() * a).abs() < 1e-3, "{p}: sin {}", s[5]);
            assert!((c[0] * c[0] + s[0] * s[0] - a * a).abs() < 1e-5);
        }
    }
}
