//! A llama-cpp-python OpenAI-compatible server serving SmolLM2-135M-Instruct on a free
//! loopback port, for the openai-teacher tests and the teacher bench (which includes this file).
//! Needs `scripts/setup-llama.sh`: MORSD_LLAMA_PYTHON and MORSD_SMOLLM2_GGUF, or their default
//! places under $HOME/.cache/morsd-llama.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub fn llama_paths() -> (PathBuf, PathBuf) {
    let home = PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/morsd-llama");
    let py = std::env::var_os("MORSD_LLAMA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join("venv/bin/python"));
    let gguf = std::env::var_os("MORSD_SMOLLM2_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join("SmolLM2-135M-Instruct.Q4_1.gguf"));
    assert!(
        py.exists() && gguf.exists(),
        "run scripts/setup-llama.sh first (missing {} or {})",
        py.display(),
        gguf.display()
    );
    (py, gguf)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A llama.cpp server on a free loopback port, stopped on drop.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Server {
    pub fn start() -> Server {
        let (py, gguf) = llama_paths();
        let port = free_port();
        let mut child = Command::new(py)
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(gguf)
            .args([
                "--model_alias",
                "smollm2-135m",
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--n_ctx",
                "2048",
                "--n_threads",
                "1",
            ])
            .env("OMP_WAIT_POLICY", "PASSIVE")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ =
                    s.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                if out.contains("smollm2-135m") {
                    return Server { child, port };
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("llama.cpp server did not come up");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
