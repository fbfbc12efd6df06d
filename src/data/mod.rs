//! Real tasks and recorded teacher rationales, read from a data root (`MORSD_DATA` or
//! `data.root`), upstream formats unchanged.

pub mod cli;
pub mod formats;
pub mod registry;
pub mod sources;
pub mod tasks;
