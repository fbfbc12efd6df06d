//! GGUF export (placeholder until the writer lands from its branch).

use crate::error::{Error, Result};
use crate::student::LlamaConfig;
use crate::student::checkpoint::Weight;
use crate::student::tokenizer::Tok;
use std::collections::HashMap;
use std::path::Path;

/// Tensor storage type of an exported GGUF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgufType {
    /// f32.
    F32,
    /// f16.
    F16,
    /// q8_0.
    Q8_0,
}

/// Writes a Llama-architecture GGUF file that llama.cpp loads.
pub fn write_llama(
    _config: &LlamaConfig,
    _weights: &HashMap<String, Weight>,
    _tok: &Tok,
    _chat_template: Option<&str>,
    _base_gguf: Option<&Path>,
    _ty: GgufType,
    _out: &Path,
) -> Result<()> {
    Err(Error::run("gguf export is not built yet"))
}
