//! The model families morsd builds from a pretrained checkpoint, and what each is called where
//! users meet it: Hugging Face's `model_type` and `architectures` (a GGUF's
//! `general.architecture` is the `model_type`), PEFT's LoRA target modules and defaults, and
//! the module path of a layer's weights in a Hugging Face checkpoint.
//!
//! The architectures themselves live one file each: [`super::llama`] (the Llama decoder, which
//! Qwen2, Qwen3, Mistral, Gemma 2 and Gemma 3 switch with [`super::qwen2`]'s q/k/v biases,
//! [`super::qwen3`]'s per-head q/k RMSNorm, [`super::mistral`]'s sliding window and
//! [`super::gemma2`]'s and [`super::gemma3`]'s sandwich norms, GeGLU, soft caps and local
//! layers), [`super::phi3`] (fused projections), [`super::gpt2`] and the encoder–decoder
//! [`super::t5`].

use serde::{Deserialize, Serialize};

/// A pretrained model family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Llama, Llama-2/3, SmolLM2, TinyLlama (`LlamaForCausalLM`).
    #[default]
    Llama,
    /// Qwen2 and Qwen2.5 (`Qwen2ForCausalLM`).
    Qwen2,
    /// Qwen3 (`Qwen3ForCausalLM`).
    Qwen3,
    /// Mistral (`MistralForCausalLM`): Llama with a sliding attention window.
    Mistral,
    /// Gemma 2 (`Gemma2ForCausalLM`).
    Gemma2,
    /// Gemma 3, text only (`Gemma3ForCausalLM`, `model_type` `gemma3_text`: Gemma-3-270M/1B).
    Gemma3,
    /// Phi-3, Phi-3.5-mini, Phi-4-mini (`Phi3ForCausalLM`).
    Phi3,
    /// GPT-2 (`GPT2LMHeadModel`).
    Gpt2,
    /// T5 v1.1, Flan-T5 and original T5 (`T5ForConditionalGeneration`).
    T5,
}

/// One module a LoRA adapter may target: PEFT's name for it (`target_modules`), the field that
/// holds it in morsd's block, and its path inside a Hugging Face layer.
#[derive(Clone, Copy, Debug)]
pub struct LoraModule {
    /// PEFT's name (`q_proj`, `c_attn` …).
    pub peft: &'static str,
    /// The burn block field.
    pub field: &'static str,
    /// Path inside the layer (`self_attn.q_proj`, `attn.c_attn` …).
    pub hf: &'static str,
}

const fn m(peft: &'static str, field: &'static str, hf: &'static str) -> LoraModule {
    LoraModule { peft, field, hf }
}

const LLAMA_MODULES: [LoraModule; 7] = [
    m("q_proj", "q_proj", "self_attn.q_proj"),
    m("k_proj", "k_proj", "self_attn.k_proj"),
    m("v_proj", "v_proj", "self_attn.v_proj"),
    m("o_proj", "o_proj", "self_attn.o_proj"),
    m("gate_proj", "gate_proj", "mlp.gate_proj"),
    m("up_proj", "up_proj", "mlp.up_proj"),
    m("down_proj", "down_proj", "mlp.down_proj"),
];

/// Phi-3's fused projections under PEFT's names.
const PHI3_MODULES: [LoraModule; 4] = [
    m("qkv_proj", "qkv_proj", "self_attn.qkv_proj"),
    m("o_proj", "o_proj", "self_attn.o_proj"),
    m("gate_up_proj", "gate_up_proj", "mlp.gate_up_proj"),
    m("down_proj", "down_proj", "mlp.down_proj"),
];

/// The modules PEFT targets in GPT-2 (`c_proj` names both the attention and the MLP output).
pub const GPT2_MODULES: &[LoraModule] = &[
    LoraModule {
        peft: "c_attn",
        field: "qkv",
        hf: "attn.c_attn",
    },
    LoraModule {
        peft: "c_proj",
        field: "proj",
        hf: "attn.c_proj",
    },
    LoraModule {
        peft: "c_fc",
        field: "up",
        hf: "mlp.c_fc",
    },
    LoraModule {
        peft: "c_proj",
        field: "down",
        hf: "mlp.c_proj",
    },
];

/// The modules PEFT targets in T5 (`q`, `v` by default; every attention's and feed-forward's).
pub const T5_MODULES: &[LoraModule] = &[
    LoraModule {
        peft: "q",
        field: "q",
        hf: "q",
    },
    LoraModule {
        peft: "k",
        field: "k",
        hf: "k",
    },
    LoraModule {
        peft: "v",
        field: "v",
        hf: "v",
    },
    LoraModule {
        peft: "o",
        field: "o",
        hf: "o",
    },
    LoraModule {
        peft: "wi",
        field: "wi",
        hf: "wi",
    },
    LoraModule {
        peft: "wi_0",
        field: "wi_0",
        hf: "wi_0",
    },
    LoraModule {
        peft: "wi_1",
        field: "wi_1",
        hf: "wi_1",
    },
    LoraModule {
        peft: "wo",
        field: "wo",
        hf: "wo",
    },
];

impl Family {
    /// Every family, in the order `morsd models list` shows them.
    pub const ALL: [Family; 9] = [
        Family::Llama,
        Family::Qwen2,
        Family::Qwen3,
        Family::Mistral,
        Family::Gemma2,
        Family::Gemma3,
        Family::Phi3,
        Family::Gpt2,
        Family::T5,
    ];

    /// Hugging Face's `model_type` (also GGUF's `general.architecture`).
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
            Family::Mistral => "mistral",
            Family::Gemma2 => "gemma2",
            Family::Gemma3 => "gemma3_text",
            Family::Phi3 => "phi3",
            Family::Gpt2 => "gpt2",
            Family::T5 => "t5",
        }
    }

    /// transformers' model class (`architectures`).
    pub fn architecture(self) -> &'static str {
        match self {
            Family::Llama => "LlamaForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
            Family::Qwen3 => "Qwen3ForCausalLM",
            Family::Mistral => "MistralForCausalLM",
            Family::Gemma2 => "Gemma2ForCausalLM",
            Family::Gemma3 => "Gemma3ForCausalLM",
            Family::Phi3 => "Phi3ForCausalLM",
            Family::Gpt2 => "GPT2LMHeadModel",
            Family::T5 => "T5ForConditionalGeneration",
        }
    }

    /// The family a `model_type` names.
    pub fn from_model_type(t: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.model_type() == t)
    }

    /// The family a transformers class names.
    pub fn from_architecture(a: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.architecture() == a)
    }

    /// `llama (LlamaForCausalLM), qwen2 (Qwen2ForCausalLM), …`, for error messages.
    pub fn supported() -> String {
        Family::ALL
            .iter()
            .map(|f| format!("{} ({})", f.model_type(), f.architecture()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The modules LoRA may target in this family.
    pub fn lora_modules(self) -> &'static [LoraModule] {
        match self {
            f if f.is_llama_style() => &LLAMA_MODULES,
            Family::Phi3 => &PHI3_MODULES,
            Family::Gpt2 => GPT2_MODULES,
            _ => T5_MODULES,
        }
    }

    /// PEFT's default `target_modules` for the family
    /// (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`), used when a spec names none.
    pub fn default_lora_targets(self) -> &'static [&'static str] {
        match self {
            f if f.is_llama_style() => &["q_proj", "v_proj"],
            // PEFT has no default for phi3: the fused attention projection, which holds the
            // queries and values that are Llama's defaults.
            Family::Phi3 => &["qkv_proj"],
            Family::Gpt2 => &["c_attn"],
            _ => &["q", "v"],
        }
    }

    /// Whether the family is built by the Llama decoder ([`super::llama`]).
    pub fn is_llama_style(self) -> bool {
        !matches!(self, Family::Gpt2 | Family::T5 | Family::Phi3)
    }

    /// Where a Hugging Face decoder keeps its layers (`model.layers`, `transformer.h`; T5's
    /// two stacks are named by [`super::t5::peft_prefix`]).
    pub fn hf_layers(self) -> &'static str {
        match self {
            Family::Gpt2 => "transformer.h",
            _ => "model.layers",
        }
    }

    /// Whether the family is an encoder–decoder (the question goes to the encoder).
    pub fn is_seq2seq(self) -> bool {
        self == Family::T5
    }

    /// The LoRA module PEFT calls `peft` in this family.
    pub fn lora_module(self, peft: &str) -> Option<LoraModule> {
        self.lora_modules().iter().copied().find(|m| m.peft == peft)
    }

    /// The LoRA module held in the block field `field`.
    pub fn lora_field(self, field: &str) -> Option<LoraModule> {
        self.lora_modules()
            .iter()
            .copied()
            .find(|m| m.field == field)
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.model_type())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_defaults_are_targetable() {
        for f in Family::ALL {
            assert_eq!(Family::from_model_type(f.model_type()), Some(f));
            assert_eq!(Family::from_architecture(f.architecture()), Some(f));
            for t in f.default_lora_targets() {
                assert!(f.lora_module(t).is_some(), "{f}: default target {t}");
            }
        }
        assert_eq!(Family::from_model_type("gemma3"), None);
    }
}
