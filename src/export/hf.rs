//! `--format hf`: a Hugging Face folder transformers loads with `AutoModelForCausalLM` and
//! `AutoTokenizer`: `config.json`, `model.safetensors` (f32, f16 or bf16), `tokenizer.json`,
//! `tokenizer_config.json` (with the base's chat template), `generation_config.json` (greedy,
//! as morsd decodes).
//!
//! - A Llama-style student becomes its family's class (`LlamaForCausalLM`,
//!   `Qwen2ForCausalLM`, `Qwen3ForCausalLM`, `MistralForCausalLM`, `Gemma2ForCausalLM`,
//!   `Gemma3ForCausalLM`), LoRA adapters folded in, with its `rope_scaling`, windows and
//!   Gemma's switches in `config.json` and Gemma's norms written back as `w` of `1 + w`.
//! - A pretrained GPT-2 or T5 student becomes its base's class (`GPT2LMHeadModel`,
//!   `T5ForConditionalGeneration`) with the base's own `config.json`, LoRA adapters folded in.
//! - A scratch student becomes `GPT2LMHeadModel`, which it maps onto exactly: learned
//!   positions, pre-norm LayerNorm blocks with biases, a fused q/k/v projection (GPT-2's
//!   `Conv1D` stores `[in, out]`, burn's `Linear` layout, so nothing is transposed there), the
//!   exact erf GELU (`activation_function = "gelu"`), a final LayerNorm and an untied head
//!   without bias (`tie_word_embeddings = false`).

use super::{Dtype, Loaded, RunInfo, llama_config, llama_weights, phi3_config};
use crate::error::{Error, IoContext, Result};
use crate::student::checkpoint::{is_norm, layer_names};
use crate::student::lora::write_safetensors_typed;
use crate::student::model::{BlockParts, Student, ln_parts};
use crate::student::{Family, LlamaConfig, Lm};
use burn::prelude::*;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

/// One tensor to write: name, shape, f32 values (row-major).
type Named = (String, Vec<usize>, Vec<f32>);

/// Writes the folder's files into `dir`.
pub fn write(
    entry: &Path,
    loaded: &Loaded,
    info: &RunInfo,
    dtype: Dtype,
    dir: &Path,
) -> Result<()> {
    let tok = &loaded.tok;
    let token = |id: u32| tok.inner.id_to_token(id);
    // 1. Architecture and weights under transformers' names.
    let (config, tensors, context_len) = match &loaded.model {
        Lm::Llama(m) => {
            let c = llama_config(entry, loaded.base.as_ref())?;
            let mut tensors: Vec<Named> = Vec::new();
            let mut w = llama_weights(m);
            let mut take = |canon: &str, name: String| {
                if let Some(mut x) = w.remove(canon) {
                    // Gemma's checkpoints store a norm's scale as `w` of `1 + w`.
                    if c.norm_plus_one && is_norm(canon) {
                        x.data.iter_mut().for_each(|v| *v -= 1.0);
                    }
                    tensors.push((name, x.shape, x.data));
                }
            };
            take("embed", "model.embed_tokens.weight".into());
            take("norm", "model.norm.weight".into());
            take("lm_head", "lm_head.weight".into());
            for l in 0..c.layers {
                for (canon, _, hf) in layer_names(&c) {
                    let (hf, suffix) = match hf.strip_suffix(".bias") {
                        Some(h) => (h, "bias"),
                        None => (hf, "weight"),
                    };
                    take(
                        &format!("L{l}.{canon}"),
                        format!("model.layers.{l}.{hf}.{suffix}"),
                    );
                }
            }
            let mut config = llama_style_config(&c);
            config["eos_token_id"] = json!(tok.eos);
            config["pad_token_id"] = json!(tok.pad);
            config["torch_dtype"] = json!(torch_dtype(dtype));
            (config, tensors, c.max_seq_len)
        }
        Lm::Phi3(m) => {
            let c = phi3_config(entry, loaded.base.as_ref())?;
            let mut config = json!({
                "architectures": ["Phi3ForCausalLM"],
                "model_type": "phi3",
                "vocab_size": c.vocab_size,
                "hidden_size": c.d_model,
                "intermediate_size": c.d_ff,
                "num_hidden_layers": c.layers,
                "num_attention_heads": c.heads,
                "num_key_value_heads": c.kv_heads,
                "max_position_embeddings": c.max_seq_len,
                "rms_norm_eps": c.norm_eps,
                "rope_theta": c.rope_theta,
                "rope_scaling": c.rope_scaling.to_hf(),
                "partial_rotary_factor": c.rotary_dims.map_or(1.0, |r| r as f64 / c.head_dim() as f64),
                "sliding_window": c.sliding_window,
                "hidden_act": "silu",
                "attention_dropout": 0.0,
                "resid_pdrop": 0.0,
                "embd_pdrop": 0.0,
                "tie_word_embeddings": c.tie_embeddings,
                "eos_token_id": tok.eos,
                "pad_token_id": tok.pad,
                "torch_dtype": torch_dtype(dtype),
            });
            if let Some(o) = c.rope_scaling.original_context() {
                config["original_max_position_embeddings"] = json!(o);
            }
            (config, phi3_tensors(m), c.max_seq_len)
        }
        Lm::Gpt2(m) => {
            let tensors = gpt2_model_tensors(m);
            let mut config = base_config(loaded)?;
            let n = config["n_positions"].as_u64().unwrap_or(0) as usize;
            set_tokens(&mut config, tok, dtype);
            (config, tensors, n)
        }
        Lm::T5(m) => {
            let mut config = base_config(loaded)?;
            set_tokens(&mut config, tok, dtype);
            let n = loaded.base.as_ref().map_or(0, |b| b.context_len);
            (config, t5_tensors(m), n)
        }
        Lm::Scratch(s) => {
            let (config, tensors) = gpt2(entry, s, tok)?;
            let n = config["n_positions"].as_u64().unwrap_or(0) as usize;
            let mut config = config;
            config["torch_dtype"] = json!(torch_dtype(dtype));
            (config, tensors, n)
        }
    };
    crate::files::write_json(&dir.join("config.json"), &config)?;
    // 2. The weights, in the asked dtype.
    let bytes: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = tensors
        .into_iter()
        .map(|(n, shape, v)| {
            let (dt, b) = encode(&v, dtype);
            (n, dt, shape, b)
        })
        .collect();
    let mut meta = HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    write_safetensors_typed(
        &dir.join("model.safetensors"),
        bytes
            .iter()
            .map(|(n, dt, s, b)| (n.clone(), *dt, s.clone(), b.as_slice())),
        Some(meta),
    )?;
    // 3. Tokenizer: the student's own tokenizer.json, and the config AutoTokenizer reads.
    let tj = dir.join("tokenizer.json");
    tok.inner
        .save(&tj, false)
        .map_err(|e| Error::run(format!("{}: {e}", tj.display())))?;
    let mut tc = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": token(tok.eos),
        "pad_token": token(tok.pad),
        "bos_token": null,
        "unk_token": null,
        "add_bos_token": false,
        "add_eos_token": false,
        "clean_up_tokenization_spaces": false,
        "model_max_length": context_len,
    });
    if let Some(t) = loaded.base.as_ref().and_then(|b| b.chat_template.as_ref()) {
        tc["chat_template"] = json!(t);
    }
    crate::files::write_json(&dir.join("tokenizer_config.json"), &tc)?;
    let special = json!({"eos_token": token(tok.eos), "pad_token": token(tok.pad)});
    crate::files::write_json(&dir.join("special_tokens_map.json"), &special)?;
    // 4. Greedy decoding, as morsd evaluates.
    let mut generation = json!({
        "do_sample": false,
        "eos_token_id": tok.eos,
        "pad_token_id": tok.pad,
        "max_new_tokens": info.max_new_tokens,
    });
    // An encoder–decoder's decoder starts from its start token.
    if let Some(start) = loaded.model.decoder_start() {
        generation["decoder_start_token_id"] = json!(start);
    }
    crate::files::write_json(&dir.join("generation_config.json"), &generation)?;
    std::fs::metadata(dir.join("model.safetensors")).at(dir)?;
    Ok(())
}

/// transformers' `config.json` of a Llama-style student: its family's class and `model_type`,
/// the shared numbers, and what the family adds (Qwen's and Mistral's windows, Gemma's
/// activation, query scale, soft caps, layer types and local RoPE base).
fn llama_style_config(c: &LlamaConfig) -> Value {
    let f = c.family;
    let mut config = json!({
        "architectures": [f.architecture()],
        "model_type": f.model_type(),
        "vocab_size": c.vocab_size,
        "hidden_size": c.d_model,
        "intermediate_size": c.d_ff,
        "num_hidden_layers": c.layers,
        "num_attention_heads": c.heads,
        "num_key_value_heads": c.kv_heads,
        "head_dim": c.head_dim(),
        "max_position_embeddings": c.max_seq_len,
        "rms_norm_eps": c.norm_eps,
        "rope_theta": c.rope_theta,
        "rope_scaling": c.rope_scaling.to_hf(),
        "attention_bias": false,
        "attention_dropout": 0.0,
        "tie_word_embeddings": c.tie_embeddings,
    });
    if let Some(o) = c.rope_scaling.original_context() {
        config["original_max_position_embeddings"] = json!(o);
    }
    let layer_types: Vec<&str> = (0..c.layers)
        .map(|l| match c.window_of(l) {
            Some(_) => "sliding_attention",
            None => "full_attention",
        })
        .collect();
    let set = |config: &mut Value, k: &str, v: Value| config[k] = v;
    match f {
        Family::Gemma2 | Family::Gemma3 => {
            set(&mut config, "hidden_activation", json!("gelu_pytorch_tanh"));
            set(
                &mut config,
                "query_pre_attn_scalar",
                json!(c.query_pre_attn_scalar.unwrap_or(c.head_dim() as f64)),
            );
            set(&mut config, "attn_logit_softcapping", json!(c.attn_softcap));
            set(
                &mut config,
                "final_logit_softcapping",
                json!(c.final_softcap),
            );
            set(&mut config, "sliding_window", json!(c.sliding_window));
            set(&mut config, "layer_types", json!(layer_types));
            if f == Family::Gemma3 {
                set(
                    &mut config,
                    "rope_local_base_freq",
                    json!(c.rope_local_theta.unwrap_or(c.rope_theta)),
                );
            }
        }
        Family::Qwen2 | Family::Qwen3 => {
            set(&mut config, "hidden_act", json!("silu"));
            set(
                &mut config,
                "use_sliding_window",
                json!(c.sliding_window.is_some()),
            );
            set(&mut config, "sliding_window", json!(c.sliding_window));
            set(&mut config, "layer_types", json!(layer_types));
        }
        Family::Mistral => {
            set(&mut config, "hidden_act", json!("silu"));
            set(&mut config, "sliding_window", json!(c.sliding_window));
        }
        _ => {
            set(&mut config, "hidden_act", json!("silu"));
            set(&mut config, "mlp_bias", json!(false));
        }
    }
    config
}

/// A Phi-3 student's tensors under transformers' names (burn `[in, out]` → `[out, in]`).
pub(super) fn phi3_tensors(m: &crate::student::phi3::Phi3) -> Vec<Named> {
    let mut out: Vec<Named> = Vec::new();
    let mut plain = |name: String, t: Tensor<1>| {
        let (s, v) = values(t);
        out.push((name, s, v));
    };
    plain("model.norm.weight".into(), m.norm.gamma.val());
    for (l, b) in m.blocks.iter().enumerate() {
        plain(
            format!("model.layers.{l}.input_layernorm.weight"),
            b.attn_norm.gamma.val(),
        );
        plain(
            format!("model.layers.{l}.post_attention_layernorm.weight"),
            b.mlp_norm.gamma.val(),
        );
    }
    let (s, v) = values(m.embed.weight.val());
    out.push(("model.embed_tokens.weight".into(), s, v));
    let mut lin = |name: String, w: Tensor<2>| {
        let (s, v) = values(w.transpose());
        out.push((name, s, v));
    };
    if let Some(h) = &m.lm_head {
        lin("lm_head.weight".into(), h.weight.val());
    }
    for (l, b) in m.blocks.iter().enumerate() {
        for (name, w) in [
            ("self_attn.qkv_proj", &b.qkv_proj),
            ("self_attn.o_proj", &b.o_proj),
            ("mlp.gate_up_proj", &b.gate_up_proj),
            ("mlp.down_proj", &b.down_proj),
        ] {
            lin(format!("model.layers.{l}.{name}.weight"), w.weight.val());
        }
    }
    out
}

fn torch_dtype(d: Dtype) -> &'static str {
    match d {
        Dtype::F16 => "float16",
        Dtype::Bf16 => "bfloat16",
        _ => "float32",
    }
}

/// f32 values as little-endian bytes of `dtype`.
fn encode(v: &[f32], dtype: Dtype) -> (safetensors::Dtype, Vec<u8>) {
    match dtype {
        Dtype::F16 => (
            safetensors::Dtype::F16,
            v.iter()
                .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                .collect(),
        ),
        Dtype::Bf16 => (
            safetensors::Dtype::BF16,
            v.iter()
                .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                .collect(),
        ),
        _ => (
            safetensors::Dtype::F32,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
    }
}

fn values<const D: usize>(t: Tensor<D>) -> (Vec<usize>, Vec<f32>) {
    (t.dims().to_vec(), t.into_data().iter::<f32>().collect())
}

/// The scratch student as GPT-2: its config and tensors.
fn gpt2(
    entry: &Path,
    s: &Student,
    tok: &crate::student::tokenizer::Tok,
) -> Result<(Value, Vec<Named>)> {
    let c: crate::student::StudentConfig = super::entry_config(entry)?;
    let parts = s.parts();
    let mut out = gpt2_tensors(parts.tok, parts.pos, parts.blocks, parts.norm);
    // nn.Linear stores [out, in]; burn's head is [in, out].
    let (shape, v) = values(parts.head.transpose());
    out.push(("lm_head.weight".into(), shape, v));
    let config = json!({
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": c.vocab_size,
        "n_positions": c.max_seq_len,
        "n_ctx": c.max_seq_len,
        "n_embd": c.d_model,
        "n_layer": c.layers,
        "n_head": c.heads,
        "n_inner": c.d_ff,
        "activation_function": "gelu",
        "layer_norm_epsilon": parts.eps,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "scale_attn_weights": true,
        "scale_attn_by_inverse_layer_idx": false,
        "reorder_and_upcast_attn": false,
        "tie_word_embeddings": false,
        "bos_token_id": tok.eos,
        "eos_token_id": tok.eos,
        "pad_token_id": tok.pad,
    });
    Ok((config, out))
}

/// A pretrained GPT-2 student's tensors: `transformer.*` only, since GPT-2's head is its token
/// embedding (transformers ties `lm_head` to `wte`).
pub(super) fn gpt2_model_tensors(m: &crate::student::gpt2::Gpt2) -> Vec<Named> {
    gpt2_tensors(
        m.wte.weight.val(),
        m.wpe.weight.val(),
        m.blocks.iter().map(BlockParts::of).collect(),
        ln_parts(&m.ln_f),
    )
}

/// GPT-2's `transformer.*` tensors: the token and position embeddings, the blocks (`Conv1D`
/// stores `[in, out]`, burn's `Linear` layout: nothing is transposed) and the final LayerNorm.
fn gpt2_tensors(
    wte: Tensor<2>,
    wpe: Tensor<2>,
    blocks: Vec<BlockParts>,
    ln_f: (Tensor<1>, Tensor<1>),
) -> Vec<Named> {
    let mut out: Vec<Named> = Vec::new();
    let mut push = |name: String, (shape, v): (Vec<usize>, Vec<f32>)| out.push((name, shape, v));
    push("transformer.wte.weight".into(), values(wte));
    push("transformer.wpe.weight".into(), values(wpe));
    for (i, b) in blocks.into_iter().enumerate() {
        let h = |n: &str| format!("transformer.h.{i}.{n}");
        push(h("ln_1.weight"), values(b.ln1.0));
        push(h("ln_1.bias"), values(b.ln1.1));
        push(h("attn.c_attn.weight"), values(b.qkv.0));
        push(h("attn.c_attn.bias"), values(b.qkv.1));
        push(h("attn.c_proj.weight"), values(b.proj.0));
        push(h("attn.c_proj.bias"), values(b.proj.1));
        push(h("ln_2.weight"), values(b.ln2.0));
        push(h("ln_2.bias"), values(b.ln2.1));
        push(h("mlp.c_fc.weight"), values(b.up.0));
        push(h("mlp.c_fc.bias"), values(b.up.1));
        push(h("mlp.c_proj.weight"), values(b.down.0));
        push(h("mlp.c_proj.bias"), values(b.down.1));
    }
    push("transformer.ln_f.weight".into(), values(ln_f.0));
    push("transformer.ln_f.bias".into(), values(ln_f.1));
    out
}

/// A T5 student's tensors under transformers' names (`T5ForConditionalGeneration`): the
/// inverse of [`crate::student::t5::load_hf`]. burn's `Linear` `[in, out]` → `[out, in]`; the
/// relative-position tables live in block 0 of each stack; a tied head is not written
/// (transformers ties `lm_head` to `shared`).
fn t5_tensors(m: &crate::student::t5::T5) -> Vec<Named> {
    use crate::student::t5::{Attention, FeedForward};
    let mut out: Vec<Named> = Vec::new();
    let plain = |out: &mut Vec<Named>, name: String, t: Tensor<1>| {
        let (s, v) = values(t);
        out.push((name, s, v));
    };
    let lin = |out: &mut Vec<Named>, name: String, l: &burn::nn::Linear| {
        let (s, v) = values(l.weight.val().transpose());
        out.push((format!("{name}.weight"), s, v));
    };
    let attn = |out: &mut Vec<Named>, p: &str, a: &Attention| {
        for (n, l) in [("q", &a.q), ("k", &a.k), ("v", &a.v), ("o", &a.o)] {
            lin(out, format!("{p}.{n}"), l);
        }
    };
    let ff = |out: &mut Vec<Named>, p: &str, f: &FeedForward| {
        for (n, l) in [("wi", &f.wi), ("wi_0", &f.wi_0), ("wi_1", &f.wi_1)] {
            if let Some(l) = l {
                lin(out, format!("{p}.{n}"), l);
            }
        }
        lin(out, format!("{p}.wo"), &f.wo);
    };
    let (s, v) = values(m.shared.weight.val());
    out.push(("shared.weight".into(), s, v));
    for (l, b) in m.encoder.iter().enumerate() {
        let p = format!("encoder.block.{l}.layer");
        attn(&mut out, &format!("{p}.0.SelfAttention"), &b.attn);
        plain(
            &mut out,
            format!("{p}.0.layer_norm.weight"),
            b.norm1.gamma.val(),
        );
        ff(&mut out, &format!("{p}.1.DenseReluDense"), &b.ff);
        plain(
            &mut out,
            format!("{p}.1.layer_norm.weight"),
            b.norm2.gamma.val(),
        );
    }
    for (l, b) in m.decoder.iter().enumerate() {
        let p = format!("decoder.block.{l}.layer");
        attn(&mut out, &format!("{p}.0.SelfAttention"), &b.attn);
        plain(
            &mut out,
            format!("{p}.0.layer_norm.weight"),
            b.norm1.gamma.val(),
        );
        attn(&mut out, &format!("{p}.1.EncDecAttention"), &b.cross);
        plain(
            &mut out,
            format!("{p}.1.layer_norm.weight"),
            b.norm2.gamma.val(),
        );
        ff(&mut out, &format!("{p}.2.DenseReluDense"), &b.ff);
        plain(
            &mut out,
            format!("{p}.2.layer_norm.weight"),
            b.norm3.gamma.val(),
        );
    }
    plain(
        &mut out,
        "encoder.final_layer_norm.weight".into(),
        m.encoder_norm.gamma.val(),
    );
    plain(
        &mut out,
        "decoder.final_layer_norm.weight".into(),
        m.decoder_norm.gamma.val(),
    );
    let rel = "layer.0.SelfAttention.relative_attention_bias.weight";
    for (stack, e) in [("encoder", &m.encoder_bias), ("decoder", &m.decoder_bias)] {
        let (s, v) = values(e.weight.val());
        out.push((format!("{stack}.block.0.{rel}"), s, v));
    }
    if let Some(h) = &m.lm_head {
        lin(&mut out, "lm_head".into(), h);
    }
    out
}

/// The base checkpoint's own `config.json` (a pretrained GPT-2 or T5 folder): fine-tuning
/// changes no architecture number, so transformers gets the base's config as it was.
fn base_config(loaded: &Loaded) -> Result<Value> {
    let base = loaded
        .base
        .as_ref()
        .ok_or_else(|| Error::run("hf: a pretrained student without its base checkpoint"))?;
    let p = base.path.join("config.json");
    crate::files::read_json(&p)
}

/// The student's end-of-sequence and padding ids and the weights' dtype, in `config`.
fn set_tokens(config: &mut Value, tok: &crate::student::tokenizer::Tok, dtype: Dtype) {
    config["eos_token_id"] = json!(tok.eos);
    config["pad_token_id"] = json!(tok.pad);
    config["torch_dtype"] = json!(torch_dtype(dtype));
}
