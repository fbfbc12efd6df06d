//! The student: a language model [`Lm`] — either the small decoder-only transformer trained
//! from scratch ([`model`]) or a pretrained checkpoint of one of the [`family`] families
//! ([`llama`] with [`qwen2`], [`qwen3`], [`mistral`], [`gemma2`] and [`gemma3`], [`phi3`],
//! [`gpt2`], [`t5`]) — its tokenizer
//! ([`tokenizer`]), the text format it learns ([`format`]), training ([`train`], with LoRA via
//! [`lora`]), greedy decoding ([`decode`]) and answer scoring for RD ([`score`]). [`load`] turns
//! a train entry back into an [`Lm`].
//!
//! The files stand in layers, none needing one that needs it: the Hugging Face [`readers`],
//! the [`family`] names, the [`tokenizer`], the [`batch`] inputs and the [`rope`] rotations at
//! the bottom; the
//! architectures above them (a Llama-style [`checkpoint`] is read by its own file); [`lm`]
//! (every family as one type) and the dispatch on a checkpoint's family ([`pretrained`]) above
//! those; training, LoRA, decoding, scoring and loading at the top. This file only declares and
//! re-exports.

pub mod batch;
pub mod checkpoint;
pub mod decode;
pub mod family;
pub mod format;
pub mod gemma2;
pub mod gemma3;
pub mod gpt2;
pub mod llama;
pub mod lm;
pub mod load;
pub mod lora;
pub mod mistral;
pub mod model;
pub mod phi3;
pub mod pretrained;
pub mod qwen2;
pub mod qwen3;
pub mod readers;
pub mod rope;
pub mod score;
pub mod t5;
pub mod tokenizer;
pub mod train;

pub use batch::Batch;
pub use family::Family;
pub use gpt2::{Gpt2, Gpt2Config};
pub use llama::{Llama, LlamaConfig};
pub use lm::{INIT_LOCK, Lm, LmConfig, init_student, materialise, model_config};
pub use model::{Student, StudentConfig};
pub use pretrained::{
    Pretrained, context_len, load_checkpoint, load_named, load_named_at_context, load_pretrained,
};
pub use t5::{T5, T5Config};
