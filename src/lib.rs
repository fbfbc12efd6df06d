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
pub mod export;
pub mod fuzz;
pub mod inspect;
pub mod invocation;
pub mod kernels;
pub mod malloc;
pub mod models;
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

/// The burn device: `flex` (pure-Rust CPU) unless `MORSD_DEVICE` names a backend compiled into
/// this build (`wgpu`, `tch`: cargo features). Chosen explicitly, never `Device::default()`,
/// which prefers wgpu whenever it is compiled in.
pub fn device_from_env() -> Result<burn::prelude::Device> {
    let want = std::env::var("MORSD_DEVICE").unwrap_or_else(|_| "flex".into());
    match want.as_str() {
        "flex" | "cpu" => Ok(burn::prelude::Device::flex()),
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(burn::prelude::Device::wgpu(Default::default())),
        #[cfg(feature = "tch")]
        #[allow(deprecated)]
        "tch" => Ok(burn::prelude::Device::libtorch()),
        other => Err(Error::run(format!(
            "MORSD_DEVICE={other}: not a backend compiled into this binary (flex is; wgpu and tch need their cargo features)"
        ))),
    }
}
