//! The student: a small decoder-only transformer in burn ([`model`]), its byte-level BPE
//! tokenizer ([`tokenizer`]), the text format it learns ([`format`]), training ([`train`]),
//! greedy decoding ([`decode`]) and answer scoring for RD ([`score`]).

pub mod decode;
pub mod format;
pub mod model;
pub mod score;
pub mod tokenizer;
pub mod train;

use crate::spec::raw::StudentSpec;
use burn::prelude::*;
pub use model::{Student, StudentConfig};

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
pub fn init_student(config: &StudentConfig, seed: u64, device: &Device) -> Student {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    config.init(device)
}
