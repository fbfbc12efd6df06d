//! The invocation: one `morsd` process, as recorded in the manifest of every cache entry it
//! builds and in the results folders it writes (`runs.json`'s `invocations` and each run's
//! `built_by`), so that a study run in pieces — several `morsd run` sharing one cache, or the
//! array tasks of a Slurm sweep — can say which piece built what.
//!
//! It is captured once per process ([`current`]; `main` calls it first, so the start time is
//! the process's): a unique id, the command line as typed (argv only: no environment variable,
//! so no `MORSD_*` override and no API key is recorded), the start time, the host name, the
//! morsd version and, when the binary was built with `MORSD_GIT_COMMIT` set, that commit. It is
//! never part of a stage key (see [`crate::cache`]).

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// One `morsd` process that built cache entries or wrote a results folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// Unique id: 12 hex of BLAKE3 over (start time in ns, pid, host).
    pub id: String,
    /// The command line as typed (argv, program first).
    pub argv: Vec<String>,
    /// Start time, unix seconds.
    pub started: u64,
    /// Start time, RFC 3339 in UTC with milliseconds (fixed width, so it sorts by time).
    pub started_at: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// morsd version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// The git commit the binary was built from, when `MORSD_GIT_COMMIT` was set at build time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl Invocation {
    /// The command line as one shell-like string (arguments with spaces or quotes in `'…'`),
    /// the program reduced to its file name.
    pub fn command_line(&self) -> String {
        self.argv
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let a = if i == 0 {
                    std::path::Path::new(a)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| a.clone())
                } else {
                    a.clone()
                };
                if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c))
                {
                    format!("'{}'", a.replace('\'', r"'\''"))
                } else {
                    a
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Captures this process's invocation now.
    fn capture() -> Invocation {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let host = host_name();
        let pid = std::process::id();
        let id = blake3::hash(format!("{}|{pid}|{host}", now.as_nanos()).as_bytes()).to_hex()[..12]
            .to_string();
        Invocation {
            id,
            argv: std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
            started: now.as_secs(),
            started_at: rfc3339(now.as_secs(), now.subsec_millis()),
            host,
            pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            commit: option_env!("MORSD_GIT_COMMIT")
                .filter(|c| !c.is_empty())
                .map(String::from),
        }
    }
}

/// This process's invocation (captured on the first call).
pub fn current() -> &'static Invocation {
    static CURRENT: OnceLock<Invocation> = OnceLock::new();
    CURRENT.get_or_init(Invocation::capture)
}

fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for writes of its whole length, which is what we pass;
        // gethostname writes at most that many bytes and returns non-zero on failure.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let name = String::from_utf8_lossy(&buf[..end]).into_owned();
            if !name.is_empty() {
                return name;
            }
        }
    }
    "unknown".into()
}

/// Unix seconds and milliseconds as RFC 3339 in UTC (`2024-05-01T12:00:00.250Z`).
pub fn rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        millis.min(999)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(rfc3339(1_714_564_800, 250), "2024-05-01T12:00:00.250Z");
    }

    #[test]
    fn captured_once_with_a_short_id() {
        let a = current();
        assert_eq!(a.id.len(), 12);
        assert_eq!(a, current());
        assert_eq!(a.pid, std::process::id());
    }

    #[test]
    fn command_line_quotes_what_a_shell_would_split() {
        let inv = Invocation {
            argv: vec![
                "/x/target/debug/morsd".into(),
                "run".into(),
                "e.toml".into(),
                "--set".into(),
                "experiment.seeds=[0, 1]".into(),
            ],
            ..current().clone()
        };
        assert_eq!(
            inv.command_line(),
            "morsd run e.toml --set 'experiment.seeds=[0, 1]'"
        );
    }
}
