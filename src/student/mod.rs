//! The student: a language model [`Lm`] — either the small decoder-only transformer trained
//! from scratch ([`model`]) or a pretrained Llama-family checkpoint ([`llama`], loaded by
//! [`checkpoint`]) — its byte-level BPE tokenizer ([`tokenizer`]), the text format it learns
//! ([`format`]), training ([`train`], with LoRA via [`lora`]), greedy decoding ([`decode`]) and
//! answer scoring for RD ([`score`]). [`load`] turns a train entry back into an [`Lm`].

pub mod checkpoint;
pub mod decode;
pub mod format;
pub mod llama;
pub mod load;
pub mod lora;
pub mod model;
pub mod score;
pub mod tokenizer;
pub mod train;

use crate::error::Result;
use crate::spec::raw::StudentSpec;
use burn::prelude::*;
pub use llama::{Llama, LlamaConfig};
pub use model::{Batch, Student, StudentConfig};

/// A student of either family. Training, scoring and decoding take this type; adding a family
/// is one file and one arm here.
#[derive(Module, Debug)]
pub enum Lm {
    /// The scratch GPT-style transformer.
    Scratch(Student),
    /// A Llama-family model.
    Llama(Llama),
}

impl Lm {
    /// Final hidden states `[b, t, d]`.
    pub fn hidden(&self, batch: &Batch) -> Tensor<3> {
        match self {
            Lm::Scratch(m) => m.hidden(batch),
            Lm::Llama(m) => m.hidden(batch),
        }
    }

    /// Logits `[n, vocab]` of hidden states `[n, d]`.
    pub fn logits(&self, h: Tensor<2>) -> Tensor<2> {
        match self {
            Lm::Scratch(m) => m.logits(h),
            Lm::Llama(m) => m.logits(h),
        }
    }

    /// Longest sequence the model is run at.
    pub fn max_seq_len(&self) -> usize {
        match self {
            Lm::Scratch(m) => m.max_seq_len(),
            Lm::Llama(m) => m.max_seq_len(),
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

/// A pretrained Llama-family checkpoint named the way `student.weights` names one (a model
/// name, a `.gguf` file or a Hugging Face folder), run at `max_seq_len` tokens, with its config
/// and tokenizer.
pub fn load_llama(
    weights: &str,
    max_seq_len: usize,
    device: &Device,
) -> Result<(Lm, LlamaConfig, tokenizer::Tok)> {
    let path = crate::models::resolve_weights(weights)?;
    let (m, c, tok) = checkpoint::Checkpoint::load(&path)?.into_llama(max_seq_len, device)?;
    Ok((Lm::Llama(m), c, tok))
}

/// The pretrained checkpoint a `llama` spec names, as a student run at `student.max_seq_len`,
/// with its config and tokenizer.
pub fn load_pretrained(
    spec: &StudentSpec,
    device: &Device,
) -> Result<(Lm, LlamaConfig, tokenizer::Tok)> {
    load_llama(
        spec.weights.as_deref().unwrap_or_default(),
        spec.max_seq_len,
        device,
    )
}
