//! morsd: declarative chain-of-thought distillation experiments with rationale selection.
//!
//! A TOML spec (see [`spec`]) names the task, teacher, student, selection strategy and budget;
//! [`pipeline`] resolves it into a DAG of cached stages ([`stages`], [`cache`]) —
//! generate → score → select → train → eval — and [`report`] writes tables and charts.

pub mod answer;
pub mod cache;
pub mod commands;
pub mod data;
pub mod error;
pub mod pipeline;
pub mod report;
pub mod select;
pub mod slurm;
pub mod spec;
pub mod stages;
pub mod student;
pub mod task;
pub mod teacher;
pub mod templates;

pub use error::{Error, Result};
