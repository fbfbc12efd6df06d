//! JSON files read and written with errors that name the path: the one file helper that every
//! floor above needs (cache entries, stage outputs, checkpoints' configs, exports).

use crate::error::{Error, IoContext, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Writes `value` as compact JSON to `path`.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(Error::run)?;
    std::fs::write(path, bytes).at(path)
}

/// Reads a JSON file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).at(path)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::run(format!("{}: {e}", path.display())))
}
