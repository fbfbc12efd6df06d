//! The student of any family, [`Lm`], and its architecture [`LmConfig`]: one arm per family
//! ([`super::model`]'s scratch student, [`super::llama`], [`super::phi3`], [`super::gpt2`],
//! [`super::t5`]). Also a
//! freshly initialised scratch student ([`init_student`]), made reproducible under
//! [`INIT_LOCK`].

use super::batch::{Batch, KvCache};
use super::family::Family;
use super::gpt2::{Gpt2, Gpt2Config};
use super::llama::{Llama, LlamaConfig};
use super::model::{Student, StudentConfig};
use super::phi3::{Phi3, Phi3Config};
use super::t5::{T5, T5Config};
use crate::spec::raw::StudentSpec;
use burn::prelude::*;
use std::path::Path;

/// A student of any family. Training, scoring and decoding take this type; adding a family
/// is one file and one arm here.
#[derive(Module, Debug)]
pub enum Lm {
    /// The scratch GPT-style transformer.
    Scratch(Student),
    /// A Llama-style decoder: Llama, Qwen2/2.5 or Qwen3 ([`Llama::family`]).
    Llama(Llama),
    /// Phi-3 / Phi-4-mini.
    Phi3(Phi3),
    /// GPT-2.
    Gpt2(Gpt2),
    /// T5 / Flan-T5 (encoder–decoder).
    T5(T5),
}

impl Lm {
    /// Final hidden states `[b, t, d]`.
    pub fn hidden(&self, batch: &Batch) -> Tensor<3> {
        match self {
            Lm::Scratch(m) => m.hidden(batch),
            Lm::Llama(m) => m.hidden(batch),
            Lm::Phi3(m) => m.hidden(batch),
            Lm::Gpt2(m) => m.hidden(batch),
            Lm::T5(m) => m.hidden(batch),
        }
    }

    /// Logits `[n, vocab]` of hidden states `[n, d]`.
    pub fn logits(&self, h: Tensor<2>) -> Tensor<2> {
        match self {
            Lm::Scratch(m) => m.logits(h),
            Lm::Llama(m) => m.logits(h),
            Lm::Phi3(m) => m.logits(h),
            Lm::Gpt2(m) => m.logits(h),
            Lm::T5(m) => m.logits(h),
        }
    }

    /// Longest sequence the model is run at.
    pub fn max_seq_len(&self) -> usize {
        match self {
            Lm::Scratch(m) => m.max_seq_len(),
            Lm::Llama(m) => m.max_seq_len(),
            Lm::Phi3(m) => m.max_seq_len(),
            Lm::Gpt2(m) => m.max_seq_len(),
            Lm::T5(m) => m.max_seq_len(),
        }
    }

    /// The pretrained family (none for the scratch student).
    pub fn family(&self) -> Option<Family> {
        match self {
            Lm::Scratch(_) => None,
            Lm::Llama(m) => Some(m.family()),
            Lm::Phi3(_) => Some(Family::Phi3),
            Lm::Gpt2(_) => Some(Family::Gpt2),
            Lm::T5(_) => Some(Family::T5),
        }
    }

    /// The length at which a cached decoding must compute its whole sequence again (Phi-3's
    /// switch to its long-context rotation, [`Phi3::long_context_switch`]).
    pub fn long_context_switch(&self) -> Option<usize> {
        match self {
            Lm::Phi3(m) => m.long_context_switch(),
            _ => None,
        }
    }

    /// The decoder's first token, for an encoder–decoder student (none for a decoder-only one).
    pub fn decoder_start(&self) -> Option<u32> {
        match self {
            Lm::T5(m) => Some(m.decoder_start()),
            _ => None,
        }
    }

    /// Like [`Lm::hidden`] on new tokens, attending also to (and extending) a key/value
    /// cache; `bias` covers the cached positions followed by the new ones.
    pub fn forward_cached(
        &self,
        ids: Tensor<2, Int>,
        pos: &Tensor<2, Int>,
        bias: Tensor<4>,
        cache: &mut KvCache,
    ) -> Tensor<3> {
        match self {
            Lm::Scratch(m) => m.forward_cached(ids, pos, bias, cache),
            Lm::Llama(m) => m.forward_cached(ids, pos, bias, cache),
            Lm::Phi3(m) => m.forward_cached(ids, pos, bias, cache),
            Lm::Gpt2(m) => m.forward_cached(ids, pos, bias, cache),
            Lm::T5(m) => m.forward_cached(ids, bias, cache),
        }
    }
}

/// The architecture of a pretrained student, as its train entry's `config.json` stores it.
#[derive(Clone, Debug)]
pub enum LmConfig {
    /// A Llama-style decoder (Llama, Qwen2, Qwen3, Mistral, Gemma 2/3).
    Llama(LlamaConfig),
    /// Phi-3.
    Phi3(Phi3Config),
    /// GPT-2.
    Gpt2(Gpt2Config),
    /// T5.
    T5(T5Config),
}

impl LmConfig {
    /// Writes it as JSON to `path`.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        match self {
            LmConfig::Llama(c) => c.save(path),
            LmConfig::Phi3(c) => c.save(path),
            LmConfig::Gpt2(c) => c.save(path),
            LmConfig::T5(c) => c.save(path),
        }
    }

    /// The entry kind it is stored under (`student.json`'s `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            LmConfig::Llama(_) => "llama",
            LmConfig::Phi3(_) => "phi3",
            LmConfig::Gpt2(_) => "gpt2",
            LmConfig::T5(_) => "t5",
        }
    }

    /// Builds the model with fresh weights (the shape a record loads into).
    pub fn init(&self, device: &Device) -> Lm {
        match self {
            LmConfig::Llama(c) => Lm::Llama(c.init(device)),
            LmConfig::Phi3(c) => Lm::Phi3(c.init(device)),
            LmConfig::Gpt2(c) => Lm::Gpt2(c.init(device)),
            LmConfig::T5(c) => Lm::T5(c.init(device)),
        }
    }

    /// The sequence length the student is run at.
    pub fn max_seq_len(&self) -> usize {
        match self {
            LmConfig::Llama(c) => c.max_seq_len,
            LmConfig::Phi3(c) => c.max_seq_len,
            LmConfig::Gpt2(c) => c.max_seq_len,
            LmConfig::T5(c) => c.max_seq_len,
        }
    }
}

/// A lock around "seed the device, then initialise a model": burn's RNG may be global, and
/// parallel runs (`--jobs`) must still get reproducible initial weights.
pub static INIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Converts the user-facing spec into the burn model config.
pub fn model_config(spec: &StudentSpec, vocab_size: usize) -> StudentConfig {
    StudentConfig::new(
        vocab_size,
        spec.d_model,
        spec.layers,
        spec.heads,
        spec.d_ff.unwrap_or(4 * spec.d_model),
        spec.max_seq_len,
    )
}

/// A freshly initialised student, reproducible for a seed.
pub fn init_student(config: &StudentConfig, seed: u64, device: &Device) -> Lm {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let model = Lm::Scratch(config.init(device));
    materialise(&model);
    model
}

/// Draws every lazily initialised parameter now. burn draws a parameter's initial values on its
/// first access, which would otherwise happen in the first training step, outside
/// [`INIT_LOCK`], while a concurrent run (`--jobs`) seeds or draws from the same device RNG:
/// the weights would then depend on the other run's timing.
pub fn materialise(model: &Lm) {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
}
