//! The user-facing spec schema: what a TOML file under `experiments/` may contain.
//!
//! Phase one of two (raw → resolved, see [`super::resolve`]). Every struct denies unknown
//! fields and every field documents its default. These are plain serde structs, never burn
//! `#[derive(Config)]` structs: the model configs are built from them in code.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A whole spec file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    /// Experiment identity, seeds and output folder.
    #[serde(default)]
    pub experiment: ExperimentSpec,
    /// Which task data to use.
    #[serde(default)]
    pub data: DataSpec,
    /// Who writes the rationales.
    #[serde(default)]
    pub teacher: TeacherSpec,
    /// The student model.
    #[serde(default)]
    pub student: StudentSpec,
    /// How rationales are scored.
    #[serde(default)]
    pub score: ScoreSpec,
    /// Which rationales are kept.
    #[serde(default)]
    pub select: SelectSpec,
    /// Student fine-tuning.
    #[serde(default)]
    pub train: TrainSpec,
    /// Student evaluation.
    #[serde(default)]
    pub eval: EvalSpec,
    /// Where runs execute (not part of any stage key).
    #[serde(default)]
    pub executor: ExecutorSpec,
    /// Dotted key → list of values; the cross product (× seeds) is the set of runs.
    /// Default: empty (one run per seed).
    #[serde(default)]
    pub sweep: BTreeMap<String, Vec<toml::Value>>,
}

/// `[experiment]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Name of the experiment: 1 to 64 characters from `A-Z a-z 0-9 . _ -`, not starting with
    /// `.` or `-` (it names folders and Slurm jobs). Default: the spec file's stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Seeds; every sweep point runs once per seed. Default: `[0]`.
    #[serde(default = "d_seeds")]
    pub seeds: Vec<u64>,
    /// Output folder for tables and charts. Default: `results/<name>`.
    #[serde(default)]
    pub output: Option<String>,
}

/// `[executor]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSpec {
    /// `local` (this machine, `--jobs` in parallel) or `slurm` (job arrays). Default: `local`.
    #[serde(default = "d_executor")]
    pub kind: String,
    /// Slurm partition. Default: the cluster's default.
    #[serde(default)]
    pub partition: Option<String>,
    /// Slurm time limit per job, `HH:MM:SS`. Default: the partition's.
    #[serde(default)]
    pub time: Option<String>,
    /// GPUs per run (`--gres=gpu:N`). Default: 0.
    #[serde(default)]
    pub gpus_per_run: u32,
    /// CPUs per run. Default: 1.
    #[serde(default = "d_cpus")]
    pub cpus_per_run: u32,
}

/// `[data]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// Task: a synthetic one (`arithmetic`, `last-letter`, `coin-flip`), a real one under the
    /// data root (`svamp`, `gsm8k`, `multiarith`, ...; `morsd data list` shows them), or
    /// `custom`: your own questions from `questions`, `test_questions` and (optionally)
    /// `validation_questions`. Default: `arithmetic`.
    #[serde(default = "d_task")]
    pub task: String,
    /// `custom` task: JSON-lines file of the training questions, one
    /// `{"id"?, "question", "answer"?, "options"?}` per line (a path relative to the working
    /// directory; its content, not the path, goes into the stage key). Questions without an
    /// `answer` need `score.label = "majority"`. Default: none (required for `custom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub questions: Option<String>,
    /// `custom` task: JSON-lines file of the test questions, same fields, every line with its
    /// gold `answer` (eval reads it). Default: none (required for `custom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_questions: Option<String>,
    /// `custom` task: JSON-lines file of the validation questions (checkpoint choice), every
    /// line with its gold `answer`. Default: none: the last `validation` training questions that
    /// have an answer (at most a fifth of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_questions: Option<String>,
    /// `custom` task: how its answers are read and compared: `number`, `yes-no`, `choice` (a
    /// letter; questions list their `options`), `text` or `date` (`MM/DD/YYYY`). Default: `number`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Data root of the real tasks. Default: the `MORSD_DATA` environment variable.
    #[serde(default)]
    pub root: Option<String>,
    /// Split scheme of a real task (`mcc-kd`, `fine-tune-cot`, `distill-step-by-step`, `gsm8k`).
    /// Default: the task's first (`morsd data list`).
    #[serde(default)]
    pub split: Option<String>,
    /// Real and custom tasks: use at most this many training questions (the first ones). Default: all.
    #[serde(default)]
    pub max_train: Option<usize>,
    /// Real and custom tasks: use at most this many test questions (the first ones). Default: all.
    #[serde(default)]
    pub max_test: Option<usize>,
    /// Real and custom tasks: use at most this many validation questions (the first ones). Where the split
    /// scheme has a dev split of its own (e.g. `mcc-kd`, 150 questions) this is the only cut:
    /// `validation` sizes only a validation set carved from training. Default: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_validation: Option<usize>,
    /// Synthetic tasks: training questions. Default: 300.
    #[serde(default = "d_train")]
    pub train: usize,
    /// Validation questions (checkpoint choice); for a real task without a dev split, the last
    /// this many training questions (at most a fifth of them); for a custom task without
    /// `validation_questions`, the last this many training questions that have an answer (at
    /// most a fifth of those). Default: 60.
    #[serde(default = "d_val")]
    pub validation: usize,
    /// Synthetic tasks: test questions (reported accuracy). Default: 100.
    #[serde(default = "d_test")]
    pub test: usize,
    /// Seed of the task generator. Default: 0.
    #[serde(default)]
    pub seed: u64,
    /// Arithmetic only: reasoning steps per problem, inclusive range. Default: `[2, 3]`.
    #[serde(default = "d_steps")]
    pub steps: [usize; 2],
    /// Real and custom tasks: any rationale row that cannot be parsed or joined to a question is
    /// an error (naming the file and line) instead of being counted and reported. In the
    /// generate key when set (a lenient entry must not answer a strict run). Default: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

/// `[teacher]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherSpec {
    /// Teacher kind: `programmatic` (built-in, synthetic tasks), `file` (recorded rationales
    /// of a real task; of a custom task, `jsonl` files) or `openai` (sampled from a server).
    /// Default: `programmatic`.
    #[serde(default = "d_teacher_kind")]
    pub kind: String,
    /// `file` teacher: registry sources to pool (`morsd data list`). Default: all of the task's.
    #[serde(default)]
    pub sources: Vec<String>,
    /// `file` teacher: generic JSONL files of your own rationales to pool. Default: none.
    #[serde(default)]
    pub jsonl: Vec<String>,
    /// `openai` teacher: base URL(s) of OpenAI-compatible servers (`http://host:port/v1`), one
    /// string or a list; requests are spread over them. Not part of the stage key (a location).
    /// Default: `MORSD_OPENAI_BASE_URL`, else `http://127.0.0.1:8765/v1`.
    #[serde(default)]
    pub base_url: Option<BaseUrls>,
    /// `openai` teacher: model name. Default: `smollm2-135m`.
    #[serde(default = "d_model")]
    pub model: String,
    /// `openai` teacher: environment variable holding the API key (read from the environment
    /// only, never stored). Default: none (no Authorization header).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// `openai` teacher: sampling temperature. Default: 0.7.
    #[serde(default = "d_temperature")]
    pub temperature: f64,
    /// `openai` teacher: nucleus sampling. Default: none (server default).
    #[serde(default)]
    pub top_p: Option<f64>,
    /// `openai` teacher: completion length cap. Default: 256.
    #[serde(default = "d_max_tokens")]
    pub max_tokens: usize,
    /// `openai` teacher: stop sequences. Default: none.
    #[serde(default)]
    pub stop: Vec<String>,
    /// `openai` teacher: prompt template (`zero-shot-cot`, `few-shot-cot` or a `.jinja` path).
    /// Default: `zero-shot-cot`.
    #[serde(default = "d_prompt")]
    pub prompt: String,
    /// `openai` teacher: Kojima et al.'s second, answer-extracting request after each
    /// rationale (the first exchange, then an answer-trigger line per answer type from
    /// `templates/teacher/answer-trigger.jinja`; greedy, `answer_max_tokens` long): `auto` (on
    /// where the prompt is zero-shot: any prompt but `few-shot-cot` and templates that use
    /// `exemplars`), `always` or `never`. With it, `score` reads the answer from the second stage
    /// and the stored rationale is the first stage plus "The answer is X.". Default: `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_stage: Option<String>,
    /// `openai` teacher: `max_tokens` of the second, answer-extracting request. Default: 32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_max_tokens: Option<usize>,
    /// `openai` teacher: `gold` gives the teacher each question's gold answer and asks for the
    /// reasoning that leads to it (rationalization, as STaR does; `templates/teacher/gold-hint.jinja`).
    /// The answer stage then sees the unhinted prompt, so hinted rationales are still judged on
    /// their own text. Default: none (no hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// `openai` teacher: requests in flight. Default: 4.
    #[serde(default = "d_concurrency")]
    pub concurrency: usize,
    /// `openai` teacher: attempts per request before the stage fails. Default: 6.
    #[serde(default = "d_max_retries")]
    pub max_retries: usize,
    /// `openai` teacher: the largest response body accepted, in bytes; a longer one fails that
    /// request with a clear error (and is retried like a truncated body). Not part of the stage
    /// key. Default: 8388608 (8 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    /// `openai` teacher: per-request timeout in seconds, covering the whole response (connect,
    /// headers and every byte of the body). Default: 120.
    #[serde(default = "d_timeout")]
    pub timeout_s: f64,
    /// `openai` teacher: first retry delay in seconds (doubles per attempt, with jitter). Default: 0.5.
    #[serde(default = "d_backoff")]
    pub backoff_s: f64,
    /// `openai` teacher: first ask for a question's samples in one request with `n` (servers
    /// that honour it answer them all); what does not come back is requested one by one with
    /// distinct seeds (llama.cpp returns one choice). Default: false (one request per sample).
    #[serde(default)]
    pub use_n: bool,
    /// `openai` teacher: requests-per-minute limit. Default: none.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// `openai` teacher: tokens-per-minute limit. Default: none.
    #[serde(default)]
    pub tpm: Option<u32>,
    /// `programmatic` and `openai` teachers: rationales per training question. Default: 8.
    #[serde(default = "d_samples")]
    pub samples: usize,
    /// Share of rationales with a wrong step and a wrong final answer. Default: 0.25.
    #[serde(default = "d_wrong")]
    pub wrong_rate: f64,
    /// Share of rationales with a flawed step but the right final answer. Default: 0.1.
    #[serde(default = "d_flawed")]
    pub flawed_rate: f64,
    /// Share of rationales that are near-duplicates of an earlier one. Default: 0.25.
    #[serde(default = "d_dup")]
    pub duplicate_rate: f64,
    /// Seed of the teacher's sampling. Default: 0.
    #[serde(default)]
    pub seed: u64,
    /// `programmatic` and `openai` teachers: sample in rounds where the student needs it
    /// (`[teacher.budget]`; README, "A teacher budget"). The first round asks `samples` of every
    /// question. Unset is left out of the generate stage's key. Default: none (`samples` each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetSpec>,
}

/// `[teacher.budget]`: sampling in rounds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// `uniform`: stop asking for a question once it has `correct` correct rationales;
    /// `prop-difficulty`: after the first round each question wants correct rationales in
    /// proportion to its failure rate in that round, `ceil(correct × f / mean f)` (DART-Math's
    /// Prop2Diff), so harder questions get more samples. Default: `uniform`.
    #[serde(default = "d_budget_kind")]
    pub kind: String,
    /// Correct rationales wanted per question (`prop-difficulty`: on average). Default: 4.
    #[serde(default = "d_budget_correct")]
    pub correct: usize,
    /// Samples per question asked in each later round. Default: 2.
    #[serde(default = "d_budget_round")]
    pub round: usize,
    /// The most samples of one question, all rounds together. Default: 16.
    #[serde(default = "d_budget_max")]
    pub max_per_question: usize,
    /// The most rationale requests in all (questions in order within a round). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<usize>,
}

fn d_budget_kind() -> String {
    "uniform".into()
}
fn d_budget_correct() -> usize {
    4
}
fn d_budget_round() -> usize {
    2
}
fn d_budget_max() -> usize {
    16
}

/// One base URL or several.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BaseUrls {
    /// One server.
    One(String),
    /// Several servers.
    Many(Vec<String>),
}

impl BaseUrls {
    /// As a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            BaseUrls::One(s) => vec![s.clone()],
            BaseUrls::Many(v) => v.clone(),
        }
    }
}

/// `[student]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentSpec {
    /// Student kind: `scratch` (a small decoder-only transformer trained from scratch),
    /// `pretrained` (the checkpoint named by `weights`, whose family morsd reads from it), or a
    /// family name (`llama`, `qwen2`, `qwen3`, `mistral`, `gemma2`, `gemma3_text`, `gpt2`, `t5`:
    /// its `model_type`): a pretrained checkpoint that must be of
    /// that family. Default: `pretrained` when `weights` is set, else `scratch`.
    #[serde(default = "d_student_kind")]
    pub kind: String,
    /// Pretrained students only: a model name from `morsd models list` (e.g. `smollm2-135m`, fetched with
    /// `morsd models fetch`), a `.gguf` file, or a Hugging Face folder (`config.json`,
    /// `*.safetensors`, `tokenizer.json`). The files' content, not this string, goes into stage
    /// keys. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
    /// Pretrained students only: LoRA rank; unset or 0 fine-tunes every weight. Default: unset
    /// (full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora_rank: Option<usize>,
    /// Pretrained students only: LoRA scale numerator (adapters are scaled by `alpha / rank`).
    /// Default: 16 (PEFT's is 8; morsd keeps 16 so cached LoRA runs keep their meaning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora_alpha: Option<f64>,
    /// Pretrained students only: modules that get LoRA adapters, by PEFT's names for the
    /// family (the Llama-style ones: `q_proj`, `k_proj`, `v_proj`, `o_proj`, `gate_proj`,
    /// `up_proj`, `down_proj`; GPT-2: `c_attn`, `c_proj`, `c_fc`; T5: `q`, `k`, `v`, `o`, `wi`,
    /// `wi_0`, `wi_1`, `wo`). Default: PEFT's default for the family (`["q_proj", "v_proj"]`,
    /// GPT-2 `["c_attn"]`, T5 `["q", "v"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora_targets: Option<Vec<String>>,
    /// Model width. Default: 128.
    #[serde(default = "d_dmodel")]
    pub d_model: usize,
    /// Transformer blocks. Default: 2.
    #[serde(default = "d_layers")]
    pub layers: usize,
    /// Attention heads (must divide `d_model`). Default: 4.
    #[serde(default = "d_heads")]
    pub heads: usize,
    /// MLP hidden width. Default: 4 × `d_model`.
    #[serde(default)]
    pub d_ff: Option<usize>,
    /// Longest sequence in tokens (prompt + target); longer examples are truncated. Default: 160.
    #[serde(default = "d_seq")]
    pub max_seq_len: usize,
    /// Student format: a template in `templates/student/` (`qa`, `fine-tune-cot`, `chat` — the
    /// ChatML turns SmolLM2-Instruct was tuned on, `seq2seq` — the question for a T5 encoder,
    /// rationale and answer for its decoder) or a path to a
    /// `.jinja` file with blocks `prompt`, `rationale`, `answer`. Default: `qa`.
    #[serde(default = "d_format")]
    pub format: String,
    /// Vocabulary size of the byte-level BPE tokenizer trained on the experiment's text. Default: 768.
    #[serde(default = "d_vocab")]
    pub vocab_size: usize,
}

impl StudentSpec {
    /// Whether the student is a pretrained checkpoint (any `kind` but `scratch`).
    pub fn is_pretrained(&self) -> bool {
        self.kind != "scratch"
    }
}

/// `[score]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreSpec {
    /// Model that computes RD: `warmup` (a scratch student briefly trained on a slice of the
    /// training rationales, then discarded), `untrained` (the freshly initialised scratch
    /// student) or `pretrained` (a `llama` student's checkpoint as loaded, before distillation,
    /// as in the paper). Default: `warmup` for `scratch`, `pretrained` for `llama`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rd_model: Option<String>,
    /// RD transfer: a pretrained checkpoint (model name, `.gguf` file or Hugging Face folder)
    /// that computes RD instead of the student — e.g. SmolLM2's RD for a scratch student (the
    /// paper's "RD from a larger model"). Implies `rd_model = "pretrained"`. Default: unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rd_weights: Option<String>,
    /// The label accuracy and RD are measured against: `gold` (the task's answers) or
    /// `majority` (the majority answer over a question's teacher samples, self-consistency as in
    /// Wang et al. 2023, for questions without gold; ties and questions with too few answered
    /// samples are reported and skipped). Eval still needs gold answers on validation and test.
    /// Default: `gold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `label = "majority"`: the fewest samples with a readable answer a question needs to get a
    /// majority label (ignored with `gold`, so a sweep over `score.label` may set it). Default: 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub majority_min_votes: Option<usize>,
    /// Optimiser steps of the warm-up student. Default: 300 (fewer leave RD close to noise).
    #[serde(default = "d_warm_steps")]
    pub warmup_steps: usize,
    /// Share of training questions whose rationales the warm-up student sees. Default: 0.5.
    #[serde(default = "d_warm_share")]
    pub warmup_share: f64,
    /// n of the word n-grams used for the diversity score. Default: 3.
    #[serde(default = "d_ngram")]
    pub ngram: usize,
    /// Batch size of RD scoring. Default: 32.
    #[serde(default = "d_score_batch")]
    pub batch_size: usize,
    /// Seed of the warm-up student. Default: 0.
    #[serde(default)]
    pub seed: u64,
}

/// `[select]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectSpec {
    /// Strategy: `all`, `random`, `correct`, `dedup`, `rd-min`, `rd-max`, `morsd`, `ifd`,
    /// `superfilter`, `grape`, `rsr`, `shortest`, `longest` or `answer-only` (README,
    /// "Selection strategies"). Default: `morsd`.
    #[serde(default = "d_strategy")]
    pub strategy: String,
    /// Rationales kept per question (ignored by `all`). Default: 6.
    #[serde(default = "d_k")]
    pub per_question: usize,
    /// Optional cap on the total number of rationales kept. Default: none.
    #[serde(default)]
    pub max_total: Option<usize>,
    /// n-gram Jaccard similarity at or above which two rationales are near-duplicates. Default: 0.7.
    #[serde(default = "d_dedup_thr")]
    pub dedup_threshold: f64,
    /// n of the word n-grams for near-duplicate detection. Default: 3.
    #[serde(default = "d_ngram")]
    pub dedup_ngram: usize,
    /// Whether `ifd`, `superfilter`, `grape`, `rsr`, `shortest`, `longest` and `answer-only`
    /// rank only rationales with a correct answer (as MoRSD's accuracy filter does). Unset is
    /// left out of the select stage's key. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correct_only: Option<bool>,
}

/// `[train]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// The training budget in optimiser steps: the same compute whatever the selection keeps.
    /// The alternative to `epochs`; setting both is an error. Default: 300 when `epochs` is
    /// unset (filled in by resolution, so every stage sees it), else unset.
    ///
    /// Unset is serialized as `null`, not skipped, so `train.steps` stays a sweepable key of a
    /// spec that does not write it; the train stage's key holds the budget in use, never the
    /// `null` ([`crate::stages::train_key`]).
    #[serde(default)]
    pub steps: Option<usize>,
    /// The training budget in epochs, a positive integer: every selected training sequence (one
    /// per selected rationale) is seen exactly this many times, so a selection that keeps fewer
    /// rationales trains for fewer optimiser steps: `ceil(epochs × sequences / (min(batch_size,
    /// sequences) × grad_accum))`, the last step's micro-batches cut short to what is left. The
    /// warm-up, the cosine decay and `eval_every` count those steps. The alternative to `steps`;
    /// setting both is an error. Default: unset (a `steps` budget).
    ///
    /// Unset is serialized as `null` like `steps`, and left out of the train stage's key, so a
    /// steps-budgeted spec keeps the keys it had before this field existed.
    #[serde(default)]
    pub epochs: Option<usize>,
    /// Sequences per micro-batch. Default: 16.
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Micro-batches per optimiser step (gradient accumulation; the effective batch is
    /// `batch_size × grad_accum`). Default: 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_accum: Option<usize>,
    /// Recompute memory-bound activations in the backward pass (burn's balanced gradient
    /// checkpointing): less memory, a little more compute. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradient_checkpointing: Option<bool>,
    /// Peak learning rate of AdamW. Default: 0.003.
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// Linear warm-up steps before the cosine decay. Default: 20.
    #[serde(default = "d_lr_warm")]
    pub warmup_steps: usize,
    /// AdamW weight decay. Default: 0.01.
    #[serde(default = "d_wd")]
    pub weight_decay: f64,
    /// Steps between validation checkpoints (the best on validation is kept). Default: 100.
    #[serde(default = "d_eval_every")]
    pub eval_every: usize,
    /// Early stopping: stop once this many validations in a row (every `eval_every` steps)
    /// have not beaten the best validation accuracy so far; `train.steps` or `train.epochs`
    /// is then the most it may train. A positive integer. A run counts as converged when as many
    /// validations followed its first best (3 without patience): see the README's "Reading a
    /// verdict". Default: unset (the whole budget).
    ///
    /// Unset is serialized as `null` (so it can be swept) and left out of the train stage's
    /// key, so a spec without it keeps its keys.
    #[serde(default)]
    pub patience: Option<usize>,
    /// Batch sequences of similar lengths, so little of a batch is padding (Hugging Face's
    /// `group_by_length`): each epoch's shuffled order is cut into windows of 64 micro-batches,
    /// each window sorted by length and cut into micro-batches, taken in a shuffled order. It
    /// changes which sequences share a batch, so results differ beyond rounding. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by_length: Option<bool>,
}

/// `[eval]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSpec {
    /// Most tokens generated per answer (greedy). Default: 64.
    #[serde(default = "d_max_new")]
    pub max_new_tokens: usize,
    /// Questions decoded at once. Default: 64.
    #[serde(default = "d_eval_batch")]
    pub batch_size: usize,
}

fn d_seeds() -> Vec<u64> {
    vec![0]
}
fn d_executor() -> String {
    "local".into()
}
fn d_cpus() -> u32 {
    1
}
fn d_task() -> String {
    "arithmetic".into()
}
fn d_train() -> usize {
    300
}
fn d_val() -> usize {
    60
}
fn d_test() -> usize {
    100
}
fn d_steps() -> [usize; 2] {
    [2, 3]
}
fn d_teacher_kind() -> String {
    "programmatic".into()
}
fn d_samples() -> usize {
    8
}
fn d_wrong() -> f64 {
    0.25
}
fn d_flawed() -> f64 {
    0.1
}
fn d_dup() -> f64 {
    0.25
}
fn d_student_kind() -> String {
    "scratch".into()
}
fn d_model() -> String {
    "smollm2-135m".into()
}
fn d_temperature() -> f64 {
    0.7
}
fn d_max_tokens() -> usize {
    256
}
fn d_prompt() -> String {
    "zero-shot-cot".into()
}
fn d_concurrency() -> usize {
    4
}
fn d_max_retries() -> usize {
    6
}
fn d_timeout() -> f64 {
    120.0
}
fn d_backoff() -> f64 {
    0.5
}
fn d_dmodel() -> usize {
    128
}
fn d_format() -> String {
    "qa".into()
}
fn d_layers() -> usize {
    2
}
fn d_heads() -> usize {
    4
}
fn d_seq() -> usize {
    160
}
fn d_vocab() -> usize {
    768
}
fn d_warm_steps() -> usize {
    300
}
fn d_warm_share() -> f64 {
    0.5
}
fn d_ngram() -> usize {
    3
}
fn d_score_batch() -> usize {
    32
}
fn d_strategy() -> String {
    "morsd".into()
}
fn d_k() -> usize {
    6
}
fn d_dedup_thr() -> f64 {
    0.7
}
/// `train.steps` when neither `train.steps` nor `train.epochs` is set.
pub const DEFAULT_TRAIN_STEPS: usize = 300;
fn d_batch() -> usize {
    16
}
fn d_lr() -> f64 {
    3e-3
}
fn d_lr_warm() -> usize {
    20
}
fn d_wd() -> f64 {
    0.01
}
fn d_eval_every() -> usize {
    100
}
fn d_max_new() -> usize {
    64
}
fn d_eval_batch() -> usize {
    64
}

macro_rules! default_from_serde {
    ($($t:ty),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                serde_json::from_value(serde_json::json!({})).expect("all fields have defaults")
            }
        }
    )*};
}
default_from_serde!(
    ExecutorSpec,
    ExperimentSpec,
    DataSpec,
    TeacherSpec,
    StudentSpec,
    ScoreSpec,
    SelectSpec,
    TrainSpec,
    EvalSpec
);
