//! Typed errors of the library, with the path context a user needs to fix the input.
//!
//! `main` maps them to exit codes: [`Error::is_user_error`] → 2 (bad spec or bad input),
//! [`Error::NotCurrent`] → 3 (`morsd report --check`: the folder is out of date), everything
//! else → 1 (a failure while running).

use std::path::PathBuf;

/// Every error the library returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec file is not valid TOML or does not match the schema (message has line/column).
    #[error("{file}: {message}")]
    SpecSyntax { file: PathBuf, message: String },
    /// A field has a bad value; `key` is the dotted path into the spec.
    #[error("{file}: `{key}`: {message}")]
    SpecField {
        file: PathBuf,
        key: String,
        message: String,
    },
    /// A `--set KEY=VALUE` argument is malformed.
    #[error("--set {arg}: {message}")]
    BadOverride { arg: String, message: String },
    /// Another command-line argument (`--run …`, `--format …`) has a bad value; `arg` is the
    /// argument as given.
    #[error("{arg}: {message}")]
    BadArg { arg: String, message: String },
    /// A file the user named could not be read.
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    /// A stage failed while running.
    #[error("stage {stage} ({key}) failed: {message}")]
    Stage {
        stage: String,
        key: String,
        message: String,
    },
    /// An I/O error on a path we manage (cache, results).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Anything else that went wrong while running (model, tables, charts).
    #[error("{0}")]
    Run(String),
    /// `morsd report --check`: the results folder is not what the spec computes today
    /// (`report` says, run by run, which stage keys moved and why). Exit code 3.
    #[error("{dir} is not what {spec} computes today:\n{report}")]
    NotCurrent {
        dir: PathBuf,
        spec: PathBuf,
        report: String,
    },
}

impl Error {
    /// True for errors caused by the user's input (exit code 2).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::SpecSyntax { .. }
                | Error::SpecField { .. }
                | Error::BadOverride { .. }
                | Error::BadArg { .. }
                | Error::Input { .. }
        )
    }

    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A running failure with a message.
    pub fn run(msg: impl std::fmt::Display) -> Self {
        Error::Run(msg.to_string())
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds path context to `std::io::Result`.
pub trait IoContext<T> {
    /// Attaches `path` to the error.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
