//! Export of a trained student to files other tools load: a Hugging Face folder ([`hf`]:
//! transformers, vLLM, lm-evaluation-harness), a GGUF file ([`gguf`]: llama.cpp, Ollama) and
//! PEFT adapters ([`peft`]), each with a model card ([`card`]).
//!
//! [`export`] is the one entry point: it checks the output folder, writes everything into a
//! temporary sibling folder and renames it into place only once every file is written, so a
//! failed export leaves nothing half-written and a non-empty `--out` is replaced only with
//! `--force`. Which run to export is chosen by [`runs`].

pub mod card;
pub mod gguf;
pub mod gguf_vocab;
pub mod hf;
pub mod peft;
pub mod runs;

use crate::error::{Error, IoContext, Result};
use crate::student::checkpoint::{LAYER_NAMES, Weight};
use crate::student::load::{BaseMeta, EntryStudent, entry_student, load_student_with_base};
use crate::student::tokenizer::Tok;
use crate::student::{Llama, LlamaConfig, Lm};
use burn::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A Hugging Face folder (config.json, model.safetensors, tokenizer files).
    Hf,
    /// One GGUF file.
    Gguf,
    /// PEFT LoRA adapters (LoRA runs only).
    Peft,
}

impl Format {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Hf => "hf",
            Format::Gguf => "gguf",
            Format::Peft => "peft",
        }
    }

    /// Parses `hf`, `gguf` or `peft`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "hf" => Ok(Format::Hf),
            "gguf" => Ok(Format::Gguf),
            "peft" => Ok(Format::Peft),
            _ => Err(Error::BadArg {
                arg: format!("--format {s}"),
                message: "known: hf, gguf, peft".into(),
            }),
        }
    }
}

/// Storage type of exported weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16 (hf only).
    Bf16,
    /// llama.cpp's 8-bit blocks (gguf only).
    Q8_0,
}

impl Dtype {
    /// Parses a `--dtype` value for `format` (hf: f32, f16, bf16; gguf: f32, f16, q8_0;
    /// peft: f32), or the format's default when `None` (hf f32, gguf f16, peft f32).
    pub fn for_format(s: Option<&str>, format: Format) -> Result<Self> {
        let allowed: &[(&str, Dtype)] = match format {
            Format::Hf => &[
                ("f32", Dtype::F32),
                ("f16", Dtype::F16),
                ("bf16", Dtype::Bf16),
            ],
            Format::Gguf => &[
                ("f16", Dtype::F16),
                ("f32", Dtype::F32),
                ("q8_0", Dtype::Q8_0),
            ],
            Format::Peft => &[("f32", Dtype::F32)],
        };
        match s {
            None => Ok(allowed[0].1),
            Some(s) => allowed
                .iter()
                .find(|(n, _)| *n == s)
                .map(|(_, d)| *d)
                .ok_or_else(|| Error::BadArg {
                    arg: format!("--dtype {s}"),
                    message: format!(
                        "for this format: {}",
                        allowed
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }),
        }
    }

    /// The name as `--dtype` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F16 => "f16",
            Dtype::Bf16 => "bf16",
            Dtype::Q8_0 => "q8_0",
        }
    }
}

/// What the model card says about the run, gathered by [`runs`].
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// The spec file.
    pub spec_path: PathBuf,
    /// Its text.
    pub spec_text: String,
    /// `--set` overrides.
    pub sets: Vec<String>,
    /// Experiment name.
    pub experiment: String,
    /// Run label (`select.strategy=morsd seed=0`).
    pub label: String,
    /// Task name.
    pub task: String,
    /// Selection strategy and rationales per question.
    pub strategy: String,
    /// `select.per_question`.
    pub per_question: usize,
    /// The train entry's key.
    pub train_key: String,
    /// The train stage's metrics (rationales, training tokens, steps …).
    pub train_metrics: serde_json::Value,
    /// The eval stage's metrics (accuracy, correct, total), when evaluated.
    pub eval_metrics: Option<serde_json::Value>,
    /// `eval.max_new_tokens`.
    pub max_new_tokens: usize,
}

/// The pretrained base a student was trained from, loaded again for its metadata.
#[derive(Debug, Clone)]
pub struct BaseInfo {
    /// `student.weights` as the spec named it.
    pub weights: String,
    /// Where it is.
    pub path: PathBuf,
    /// BLAKE3 over its files' sums.
    pub content_hash: String,
    /// Its own context length (not the run's `student.max_seq_len`).
    pub context_len: usize,
    /// Its chat template.
    pub chat_template: Option<String>,
    /// The Hugging Face repository it is known as (known models), for `base_model`.
    pub hub_id: Option<String>,
}

/// A student loaded for export.
pub struct Loaded {
    /// The model (adapters folded in).
    pub model: Lm,
    /// Its tokenizer.
    pub tok: Tok,
    /// `student.json` of the entry.
    pub family: EntryStudent,
    /// The base checkpoint, for pretrained students.
    pub base: Option<BaseInfo>,
}

/// Loads a train entry for export (on the CPU device).
pub fn load(entry: &Path) -> Result<Loaded> {
    let device = Device::flex();
    let family = entry_student(entry)?;
    let (model, tok, meta) = load_student_with_base(entry, &device)?;
    let base = match &family.base {
        Some(b) => {
            // A LoRA entry's base was read by the loader; a full fine-tune's is read here.
            let meta = match meta {
                Some(m) => m,
                None => BaseMeta::of(b)?,
            };
            Some(BaseInfo {
                weights: b.weights.clone(),
                content_hash: b.content_hash(),
                context_len: meta.context_len,
                chat_template: meta.chat_template,
                hub_id: hub_id(&b.weights),
                path: meta.path,
            })
        }
        None => None,
    };
    Ok(Loaded {
        model,
        tok,
        family,
        base,
    })
}

/// The Hub repository of a model morsd knows by name.
fn hub_id(weights: &str) -> Option<String> {
    (weights == "smollm2-135m").then(|| "HuggingFaceTB/SmolLM2-135M-Instruct".to_string())
}

/// A Llama model's weights under the checkpoint's canonical names, in Hugging Face layout
/// (`[out, in]`), the inverse of [`crate::student::checkpoint::Checkpoint::into_llama`].
pub fn llama_weights(m: &Llama) -> HashMap<String, Weight> {
    let mut out = HashMap::new();
    let plain = |t: Tensor<1>| Weight {
        shape: t.dims().to_vec(),
        data: t.into_data().iter::<f32>().collect(),
    };
    // burn Linear [in, out] → HF [out, in].
    let linear = |t: Tensor<2>| {
        let t = t.transpose();
        Weight {
            shape: t.dims().to_vec(),
            data: t.into_data().iter::<f32>().collect(),
        }
    };
    let e = m.embed.weight.val();
    out.insert(
        "embed".into(),
        Weight {
            shape: e.dims().to_vec(),
            data: e.into_data().iter::<f32>().collect(),
        },
    );
    out.insert("norm".into(), plain(m.norm.gamma.val()));
    if let Some(h) = &m.lm_head {
        out.insert("lm_head".into(), linear(h.weight.val()));
    }
    let vector = |t: Option<Tensor<1>>| t.map(plain);
    for (l, b) in m.blocks.iter().enumerate() {
        let mut put = |canon: &str, w: Option<Weight>| {
            if let Some(w) = w {
                out.insert(format!("L{l}.{canon}"), w);
            }
        };
        for (canon, _, _) in LAYER_NAMES {
            let w = match canon {
                "attn_norm" => plain(b.attn_norm.gamma.val()),
                "mlp_norm" => plain(b.mlp_norm.gamma.val()),
                "q_proj" => linear(b.q_proj.weight.val()),
                "k_proj" => linear(b.k_proj.weight.val()),
                "v_proj" => linear(b.v_proj.weight.val()),
                "o_proj" => linear(b.o_proj.weight.val()),
                "gate_proj" => linear(b.gate_proj.weight.val()),
                "up_proj" => linear(b.up_proj.weight.val()),
                _ => linear(b.down_proj.weight.val()),
            };
            put(canon, Some(w));
        }
        // What the other Llama-style families add (the names of `checkpoint::layer_names`).
        let gamma = |n: &Option<burn::nn::RmsNorm>| n.as_ref().map(|n| n.gamma.val());
        put("post_attn_norm", vector(gamma(&b.post_attn_norm)));
        put("post_mlp_norm", vector(gamma(&b.post_mlp_norm)));
        put("q_norm", vector(gamma(&b.q_norm)));
        put("k_norm", vector(gamma(&b.k_norm)));
        let bias = |lin: &burn::nn::Linear| lin.bias.as_ref().map(|b| b.val());
        put("q_bias", vector(bias(&b.q_proj)));
        put("k_bias", vector(bias(&b.k_proj)));
        put("v_bias", vector(bias(&b.v_proj)));
    }
    out
}

/// The entry's Phi-3 config, with the base's context length.
pub fn phi3_config(
    entry: &Path,
    base: Option<&BaseInfo>,
) -> Result<crate::student::phi3::Phi3Config> {
    let mut c: crate::student::phi3::Phi3Config = entry_config(entry)?;
    if let Some(b) = base {
        c.max_seq_len = b.context_len;
    }
    Ok(c)
}

/// The entry's Llama config (`config.json`), with the base's context length.
pub fn llama_config(entry: &Path, base: Option<&BaseInfo>) -> Result<LlamaConfig> {
    let p = entry.join("config.json");
    let mut c = LlamaConfig::read(&p).map_err(|e| Error::Input {
        path: p.clone(),
        message: e,
    })?;
    if let Some(b) = base {
        c.max_seq_len = b.context_len;
    }
    Ok(c)
}

/// The burn config a train entry stores (`config.json`: the model as it was built).
pub(super) fn entry_config<C: burn::config::Config>(entry: &Path) -> Result<C> {
    let p = entry.join("config.json");
    C::load(&p).map_err(|e| Error::Input {
        path: p.clone(),
        message: e.to_string(),
    })
}

/// Checks `out`: absent, an empty folder, or (with `force`) anything to replace.
fn check_out(out: &Path, force: bool) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        return Err(Error::Input {
            path: out.to_path_buf(),
            message: "exists and is not a folder: --out names the folder to write".into(),
        });
    }
    let empty = std::fs::read_dir(out).at(out)?.next().is_none();
    if !empty && !force {
        return Err(Error::Input {
            path: out.to_path_buf(),
            message: "is not empty: pass --force to replace it".into(),
        });
    }
    Ok(())
}

/// A sibling of `out` named after it.
fn sibling(out: &Path, what: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    out.with_file_name(format!(".{name}.morsd-{what}-{}", std::process::id()))
}

/// Options of one export.
pub struct Options<'a> {
    /// The format.
    pub format: Format,
    /// Weight storage type.
    pub dtype: Dtype,
    /// The folder to write.
    pub out: &'a Path,
    /// Replace a non-empty `out`.
    pub force: bool,
    /// peft: also write the base as a Hugging Face folder under `base/` (for bases
    /// transformers cannot read, such as a GGUF).
    pub with_base: bool,
}

/// Exports the train entry `entry` (the run `info`) as `opts.format` into `opts.out`.
/// Returns a summary for the terminal.
pub fn export(entry: &Path, info: &RunInfo, opts: &Options<'_>) -> Result<String> {
    // 1. Nothing is touched unless the whole export can go through.
    check_out(opts.out, opts.force)?;
    let loaded = load(entry)?;
    refuse(entry, &loaded, opts)?;
    if let Some(parent) = opts.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).at(parent)?;
    }
    // 2. Everything goes into a temporary sibling folder first.
    let tmp = sibling(opts.out, "tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).at(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).at(&tmp)?;
    let written = write_all(entry, info, &loaded, opts, &tmp);
    let files = match written {
        Ok(files) => files,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    // 3. Into place: the old folder (with --force) moves aside, the new one in, the old goes.
    let old = sibling(opts.out, "old");
    let had_old = opts.out.exists();
    if had_old {
        std::fs::rename(opts.out, &old).at(opts.out)?;
    }
    if let Err(e) = std::fs::rename(&tmp, opts.out) {
        if had_old {
            let _ = std::fs::rename(&old, opts.out);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(Error::io(opts.out, e));
    }
    if had_old {
        let _ = std::fs::remove_dir_all(&old);
    }
    let mut text = format!(
        "exported {} ({}) as {} to {}\n",
        info.label,
        &info.train_key[..12.min(info.train_key.len())],
        match opts.format {
            Format::Hf => format!("a Hugging Face folder ({})", opts.dtype.name()),
            Format::Gguf => format!("GGUF ({})", opts.dtype.name()),
            Format::Peft => "PEFT LoRA adapters".to_string(),
        },
        opts.out.display()
    );
    for (name, size) in files {
        text.push_str(&format!("  {name:<28} {size:>12} bytes\n"));
    }
    if let (Format::Gguf, Lm::Phi3(_)) = (opts.format, &loaded.model)
        && let Some(note) = gguf::phi3_note(&phi3_config(entry, loaded.base.as_ref())?)
    {
        text.push_str(&format!("note: {note}\n"));
    }
    Ok(text)
}

/// A GGUF refused: which student, and why llama.cpp would run it differently.
fn gguf_refused(family: &str, why: &str) -> Error {
    Error::BadArg {
        arg: "--format gguf".into(),
        message: format!(
            "this `{family}` student cannot be written as a GGUF that llama.cpp runs as morsd does: {why}; export it with --format hf"
        ),
    }
}

/// What a format cannot take.
fn refuse(entry: &Path, loaded: &Loaded, opts: &Options<'_>) -> Result<()> {
    match (opts.format, &loaded.model) {
        (Format::Peft, _) if loaded.family.lora.is_none() => Err(Error::BadArg {
            arg: "--format peft".into(),
            message: "this run trained no LoRA adapters (a scratch student or full fine-tuning): export it with --format hf or --format gguf".into(),
        }),
        (Format::Gguf, Lm::Scratch(_)) => Err(Error::BadArg {
            arg: "--format gguf".into(),
            message: "a scratch student does not map exactly onto a llama.cpp architecture (its MLP uses the exact erf GELU; llama.cpp's gpt2 uses the tanh approximation): export it with --format hf (a GPT-2 folder) instead".into(),
        }),
        (_, Lm::Llama(m)) if m.partial_rotary() => Err(Error::BadArg {
            arg: format!("--format {}", opts.format.name()),
            message: "a Llama student with a partial rotation (`partial_rotary_factor`) has no transformers or llama.cpp Llama equivalent".into(),
        }),
        (Format::Gguf, Lm::Llama(m)) => {
            match gguf::llama_unsupported(&llama_config(entry, loaded.base.as_ref())?) {
                Some(why) => Err(gguf_refused(&m.family().to_string(), &why)),
                None => Ok(()),
            }
        }
        (Format::Gguf, Lm::Phi3(_)) => {
            match gguf::phi3_unsupported(&phi3_config(entry, loaded.base.as_ref())?) {
                Some(why) => Err(gguf_refused("phi3", &why)),
                None => Ok(()),
            }
        }
        (Format::Gguf, Lm::T5(_)) => Err(Error::BadArg {
            arg: "--format gguf".into(),
            message: "a GGUF of a T5 student is not written: llama.cpp's `t5` architecture is an encoder–decoder with its own tensor layout and encoder API, which morsd does not map; export it with --format hf".into(),
        }),
        (_, Lm::Scratch(_) | Lm::Llama(_) | Lm::Phi3(_) | Lm::Gpt2(_) | Lm::T5(_)) => Ok(()),
    }
}

/// Writes the format's files and the model card into `dir`; returns (file, size) pairs.
fn write_all(
    entry: &Path,
    info: &RunInfo,
    loaded: &Loaded,
    opts: &Options<'_>,
    dir: &Path,
) -> Result<Vec<(String, u64)>> {
    let mut gguf_name = None;
    match opts.format {
        Format::Hf => hf::write(entry, loaded, info, opts.dtype, dir)?,
        Format::Gguf => {
            let arch = match &loaded.model {
                Lm::Llama(m) => gguf::llama_arch_of(
                    &llama_config(entry, loaded.base.as_ref())?,
                    &llama_weights(m),
                )?,
                Lm::Phi3(m) => gguf::phi3_arch_of(
                    &phi3_config(entry, loaded.base.as_ref())?,
                    hf::phi3_tensors(m),
                )?,
                Lm::Gpt2(m) => {
                    gguf::gpt2_arch_of(&entry_config(entry)?, hf::gpt2_model_tensors(m))?
                }
                Lm::Scratch(_) | Lm::T5(_) => {
                    return Err(Error::run(
                        "gguf: no llama.cpp architecture for this student",
                    ));
                }
            };
            let base_gguf = loaded
                .base
                .as_ref()
                .map(|b| b.path.clone())
                .filter(|p| p.is_file());
            let ty = match opts.dtype {
                Dtype::F32 => gguf::GgufType::F32,
                Dtype::Q8_0 => gguf::GgufType::Q8_0,
                _ => gguf::GgufType::F16,
            };
            let name = format!("model-{}.gguf", opts.dtype.name());
            gguf::write(
                arch,
                &loaded.tok,
                loaded
                    .base
                    .as_ref()
                    .and_then(|b| b.chat_template.as_deref()),
                base_gguf.as_deref(),
                ty,
                &dir.join(&name),
            )?;
            gguf_name = Some(name);
        }
        Format::Peft => peft::write(entry, loaded, opts.with_base, dir)?,
    }
    card::write(dir, info, loaded, opts, gguf_name.as_deref())?;
    let mut files = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.map_err(|e| Error::run(format!("{}: {e}", dir.display())))?;
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(dir).unwrap_or(e.path());
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            files.push((rel.display().to_string(), size));
        }
    }
    Ok(files)
}
