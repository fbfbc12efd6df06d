//! Real tasks and recorded teacher rationales, read from a data root (`MORSD_DATA` or
//! `data.root`), upstream formats unchanged; and users' own tasks from their files ([`custom`]).

pub mod cli;
pub mod custom;
pub mod formats;
pub mod registry;
pub mod sources;
pub mod tasks;
