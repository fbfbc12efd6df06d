//! Real tasks and recorded teacher rationales, read from a data root (`MORSD_DATA` or
//! `data.root`), upstream formats unchanged.

pub mod formats;
