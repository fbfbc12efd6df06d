//! Experiment specs, the part every floor reads: the raw TOML schema ([`raw`]) and the closed
//! vocabularies it names ([`kinds`]: task families, selection strategies). Resolving a file
//! into runs validates against every part of morsd, so it lives high up, in `crate::resolve`;
//! the runs it makes are `crate::run`.

pub mod kinds;
pub mod raw;

pub use kinds::{Strategy, TaskKind};
pub use raw::RawSpec;
