//! morsd: declarative chain-of-thought distillation experiments with rationale selection.
//!
//! A TOML spec (see [`spec`]) names the task, teacher, student, selection strategy and budget;
//! [`pipeline`] resolves it into a DAG of cached stages ([`stages`], [`cache`]) —
//! generate → score → select → train → eval — and [`report`] writes tables and charts.
//!
//! ## Floors
//!
//! Each module lives on a floor and uses only modules on its own floor or below, so a reader
//! who knows a file's floor knows what it may use. `tests/layers.rs` reads this table and fails
//! on any `crate::`/`super::` path that climbs it. The binary (`main.rs`) is above them all.
//!
//! | floor | modules | why here |
//! |---|---|---|
//! | 0 | `error`, `files`, `malloc`, `invocation`, `device`, `kernels`, `select`, `answer`, `spec` | leaves: the error type, JSON files, the allocator, who ran it, the burn device `MORSD_DEVICE` names, tensor kernels, pure selection, answer parsing, the spec's schema and resolved types |
//! | 1 | `cache`, `models`, `templates`, `task` | stores and texts: the cache and its keys, model weights on disk, prompt/report templates, synthetic tasks |
//! | 2 | `student`, `teacher` | the two models: the student on burn, the teachers that write rationales |
//! | 3 | `data`, `run` | real datasets and recorded rationales, read through the teachers' normalisation; a resolved run, which names its task's data |
//! | 4 | `stages` | generate → score → select → train → eval, one file each; no stage reaches into another |
//! | 5 | `pipeline`, `resolve`, `inspect`, `fuzz` | the DAG over the stages; spec resolution, which validates against every floor below; model inspection; the fuzz entry points |
//! | 6 | `export`, `slurm`, `report` | what reads finished runs: exports, cluster scale-out, tables, charts and the report page |
//! | 7 | `commands` | the CLI's commands, over everything below |

pub mod answer;
pub mod cache;
pub mod commands;
pub mod data;
pub mod device;
pub mod error;
pub mod export;
pub mod files;
pub mod fuzz;
pub mod inspect;
pub mod invocation;
pub mod kernels;
pub mod malloc;
pub mod models;
pub mod pipeline;
pub mod report;
pub mod resolve;
pub mod run;
pub mod select;
pub mod slurm;
pub mod spec;
pub mod stages;
pub mod student;
pub mod task;
pub mod teacher;
pub mod templates;

pub use error::{Error, Result};

pub use device::device_from_env;
