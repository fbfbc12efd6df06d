//! What every student family runs on: a padded [`Batch`] of token ids with positions and the
//! attention bias, an encoder–decoder's [`EncoderInput`], the [`KvCache`] decoding extends, and
//! the sliding-window bias of the families with local layers ([`window_bias`]).

use burn::prelude::*;

/// A padded batch of token ids with positions and the attention bias.
pub struct Batch {
    /// Token ids `[b, t]`.
    pub ids: Tensor<2, Int>,
    /// Position ids `[b, t]`.
    pub pos: Tensor<2, Int>,
    /// Additive attention bias `[b, 1, t, t]`: 0 where attending is allowed, -1e9 elsewhere.
    pub bias: Tensor<4>,
    /// An encoder–decoder student's encoder input (then `ids` and `bias` are the decoder's).
    pub encoder: Option<EncoderInput>,
}

/// The encoder's side of a seq2seq batch: right-padded ids, the encoder's self-attention
/// mask (padding keys hidden) and the decoder's cross-attention mask `[b, 1, 1, s]`.
#[derive(Clone, Debug)]
pub struct EncoderInput {
    /// Token ids `[b, s]`.
    pub ids: Tensor<2, Int>,
    /// Self-attention bias `[b, 1, s, s]`.
    pub bias: Tensor<4>,
    /// Cross-attention bias `[b, 1, 1, s]`.
    pub cross: Tensor<4>,
}

impl EncoderInput {
    /// Right-padded encoder input of `seqs` (an empty sequence reads as one padding token).
    pub fn new(seqs: &[Vec<u32>], pad: u32, device: &Device) -> Self {
        let b = seqs.len();
        let s = seqs.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut ids = vec![pad as i64; b * s];
        let mut key = vec![0f32; b * s];
        for (r, q) in seqs.iter().enumerate() {
            for (j, &id) in q.iter().enumerate() {
                ids[r * s + j] = id as i64;
            }
            for j in q.len().max(1)..s {
                key[r * s + j] = -1e9;
            }
        }
        let cross = Tensor::<4>::from_data(TensorData::new(key, [b, 1, 1, s]), device);
        EncoderInput {
            ids: Tensor::from_data(TensorData::new(ids, [b, s]), device),
            bias: cross.clone().repeat_dim(2, s),
            cross,
        }
    }
}

impl Batch {
    /// Builds a batch from sequences, padding on the left (`left = true`, for decoding) or the
    /// right (training and scoring).
    pub fn new(seqs: &[Vec<u32>], pad: u32, left: bool, device: &Device) -> Self {
        let b = seqs.len();
        let t = seqs.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut ids = vec![pad as i64; b * t];
        let mut pos = vec![0i64; b * t];
        let mut bias = vec![0f32; b * t * t];
        for (r, s) in seqs.iter().enumerate() {
            let off = if left { t - s.len() } else { 0 };
            for (j, &id) in s.iter().enumerate() {
                ids[r * t + off + j] = id as i64;
                pos[r * t + off + j] = j as i64;
            }
            for i in 0..t {
                for j in 0..t {
                    let key_is_pad = j < off || j >= off + s.len();
                    if j > i || (key_is_pad && i != j) {
                        bias[r * t * t + i * t + j] = -1e9;
                    }
                }
            }
        }
        Batch {
            ids: Tensor::from_data(TensorData::new(ids, [b, t]), device),
            pos: Tensor::from_data(TensorData::new(pos, [b, t]), device),
            bias: Tensor::from_data(TensorData::new(bias, [b, 1, t, t]), device),
            encoder: None,
        }
    }
}

/// The sliding window as an additive bias `[1, 1, t, s]` for the last `t` of `s` positions:
/// query `i` (position `s − t + i`) may not see key `j` when `s − t + i − j ≥ window`
/// (transformers' `sliding_window_overlay`: `kv_idx > q_idx − sliding_window`). Columns count
/// positions in the padded row, as transformers' `cache_position` does, so a left-padded row's
/// distances are its real ones.
pub fn window_bias(t: usize, s: usize, window: usize, device: &Device) -> Tensor<4> {
    let mut m = vec![0f32; t * s];
    for i in 0..t {
        let q = s - t + i;
        for j in 0..s {
            if q >= j + window {
                m[i * s + j] = -1e9;
            }
        }
    }
    Tensor::from_data(TensorData::new(m, [1, 1, t, s]), device)
}

/// A layer's decoding step: the cached keys and values `[b, kv_heads, T, hd]` (if any) followed
/// by the new ones, which the slot then holds for the next step.
pub(crate) fn extend_cache(
    slot: &mut Option<(Tensor<4>, Tensor<4>)>,
    k: Tensor<4>,
    v: Tensor<4>,
) -> (Tensor<4>, Tensor<4>) {
    let (k, v) = match slot.take() {
        Some((pk, pv)) => (Tensor::cat(vec![pk, k], 2), Tensor::cat(vec![pv, v], 2)),
        None => (k, v),
    };
    *slot = Some((k.clone(), v.clone()));
    (k, v)
}

/// Keys and values of the positions seen so far, per layer: `[b, kv_heads, T, hd]`.
#[derive(Default)]
pub struct KvCache {
    pub(crate) layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    /// An encoder–decoder's encoder input and, once computed, its output.
    pub(crate) encoder: Option<(EncoderInput, Option<Tensor<3>>)>,
}

impl KvCache {
    /// Makes room for `n` layers (an empty cache's first step).
    pub(crate) fn fit(&mut self, n: usize) {
        if self.layers.len() != n {
            self.layers = (0..n).map(|_| None).collect();
        }
    }

    /// Sets an encoder–decoder's encoder input (its output is computed on the first step).
    pub fn set_encoder(&mut self, enc: EncoderInput) {
        self.encoder = Some((enc, None));
    }
}
