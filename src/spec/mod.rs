//! Experiment specs: the raw TOML schema ([`raw`]) and its resolution into runs ([`resolve`]).

pub mod raw;
pub mod resolve;

pub use raw::RawSpec;
pub use resolve::{LoadedSpec, RunSpec, Strategy, TaskKind, load};
