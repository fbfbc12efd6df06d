//! Export of a trained student to files other tools load (Hugging Face folder, GGUF, PEFT adapters).

pub mod gguf;
