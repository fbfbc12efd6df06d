//! A fault-injecting proxy between morsd and an OpenAI-compatible server (or no server: some
//! faults are canned replies): dropped connections, delays, 429 with Retry-After, 500,
//! truncated bodies, 401, and worse (endless or enormous bodies, trickling bodies, invalid UTF-8,
//! extra choices, `Retry-After: NaN`). Counts what it received and forwarded, and keeps the
//! bodies of the forwarded requests.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Forward to the server unchanged (a placeholder in the queue).
    Pass,
    Drop,
    Delay,
    TooMany,
    Internal,
    Truncate,
    Unauthorized,
    /// 429 with `Retry-After: NaN`.
    TooManyNaN,
    /// 200, `Content-Length` of a terabyte, then bytes as fast as the client takes them.
    Huge,
    /// 200, chunked, a body that never ends.
    Endless,
    /// 200, headers at once, then one body byte per second forever.
    Trickle,
    /// 200, a well-formed completion whose content holds bytes that are not UTF-8.
    BadUtf8,
    /// 200, a canned completion with this many choices more than the request's `n`.
    Answer(usize),
    /// 200, a canned two-stage teacher: a rationale request (one message) gets
    /// [`STAGE_ONE`]; an answer request (three messages) gets " 5." for an even seed and " 6."
    /// for an odd one.
    TwoStage,
}

/// The canned rationale of [`Fault::TwoStage`]: its own answer (4) is not what stage two says.
pub const STAGE_ONE: &str = "First, 2 + 2 = 4. So the answer is 4.";

/// A canned chat completion with one choice of `content`.
pub fn reply_with(content: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": "canned",
        "object": "chat.completion",
        "model": "smollm2-135m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }))
    .unwrap()
}

/// A canned chat completion with `choices` choices.
pub fn completion(choices: usize) -> Vec<u8> {
    let choices: Vec<serde_json::Value> = (0..choices)
        .map(|i| {
            serde_json::json!({
                "index": i,
                "message": {"role": "assistant", "content": format!("Choice {i}: 2 + 2 = 4. The answer is 4.")},
                "finish_reason": "stop",
            })
        })
        .collect();
    let n = choices.len() as u64;
    serde_json::to_vec(&serde_json::json!({
        "id": "canned",
        "object": "chat.completion",
        "model": "smollm2-135m",
        "choices": choices,
        "usage": {"prompt_tokens": 10, "completion_tokens": 5 * n, "total_tokens": 10 + 5 * n},
    }))
    .unwrap()
}

/// Writes `chunk` again and again until the client goes away, `pause` between writes.
pub fn stream_forever(s: &mut TcpStream, chunk: &[u8], pause: Duration) {
    while s.write_all(chunk).is_ok() {
        std::thread::sleep(pause);
    }
}

/// A proxy between morsd and the server that injects the queued faults, then `always` (if set),
/// else forwards.
pub struct Proxy {
    pub port: u16,
    pub faults: Arc<Mutex<VecDeque<Fault>>>,
    pub always: Arc<Mutex<Option<Fault>>>,
    /// Requests forwarded to the server and answered 200.
    pub forwarded: Arc<AtomicUsize>,
    /// Requests received (any fault).
    pub received: Arc<AtomicUsize>,
    /// Connections being served.
    pub active: Arc<AtomicUsize>,
    pub auth: Arc<Mutex<Vec<String>>>,
    /// The JSON body of every request forwarded and answered 200 (and of every
    /// [`Fault::TwoStage`] request), in arrival order.
    pub bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

pub fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf);
        }
    }
}

pub fn forward(req: &[u8], upstream: u16) -> Vec<u8> {
    let end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&req[..end]).to_string();
    let mut new_head: Vec<&str> = head
        .lines()
        .filter(|l| !l.to_lowercase().starts_with("connection:"))
        .collect();
    new_head.push("Connection: close");
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
    up.write_all(format!("{}\r\n\r\n", new_head.join("\r\n")).as_bytes())
        .unwrap();
    up.write_all(&req[end + 4..]).unwrap();
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).unwrap();
    resp
}

impl Proxy {
    /// Waits (up to a minute) until no request is in flight through the proxy, e.g. those a
    /// killed run left behind.
    pub fn drain(&self) {
        let t = std::time::Instant::now();
        while self.active.load(Ordering::SeqCst) > 0 && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = Proxy {
            port,
            faults: Arc::default(),
            always: Arc::default(),
            forwarded: Arc::default(),
            received: Arc::default(),
            active: Arc::default(),
            auth: Arc::default(),
            bodies: Arc::default(),
        };
        let (faults, always, forwarded, auth) = (
            p.faults.clone(),
            p.always.clone(),
            p.forwarded.clone(),
            p.auth.clone(),
        );
        let (active, received, bodies) = (p.active.clone(), p.received.clone(), p.bodies.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { continue };
                let (faults, always, forwarded, auth, active, received, bodies) = (
                    faults.clone(),
                    always.clone(),
                    forwarded.clone(),
                    auth.clone(),
                    active.clone(),
                    received.clone(),
                    bodies.clone(),
                );
                active.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    struct Done(Arc<AtomicUsize>);
                    impl Drop for Done {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    let _done = Done(active);
                    let Some(req) = read_request(&mut s) else {
                        return;
                    };
                    received.fetch_add(1, Ordering::SeqCst);
                    let head = String::from_utf8_lossy(&req).to_string();
                    if let Some(a) = head
                        .lines()
                        .find(|l| l.to_lowercase().starts_with("authorization:"))
                    {
                        auth.lock().unwrap().push(a.to_string());
                    }
                    let fault = faults
                        .lock()
                        .unwrap()
                        .pop_front()
                        .or_else(|| *always.lock().unwrap());
                    let reply = |s: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
                        let _ = s.write_all(format!("HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes());
                        let _ = s.write_all(body);
                    };
                    let head_200 = |s: &mut TcpStream, extra: &str| {
                        s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}Connection: close\r\n\r\n").as_bytes())
                    };
                    // The `n` the client asked for.
                    let asked = || -> usize {
                        let end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
                        serde_json::from_slice::<serde_json::Value>(&req[end + 4..])
                            .ok()
                            .and_then(|v| v["n"].as_u64())
                            .unwrap_or(1) as usize
                    };
                    match fault {
                        Some(Fault::TooManyNaN) => reply(
                            &mut s,
                            "429 Too Many Requests",
                            "Retry-After: NaN\r\n",
                            b"{\"error\":\"slow down\"}",
                        ),
                        Some(Fault::Huge) => {
                            if head_200(&mut s, "Content-Length: 1000000000000\r\n").is_ok() {
                                let mut body = b"{\"choices\": [".to_vec();
                                body.resize(64 << 10, b' ');
                                stream_forever(&mut s, &body, Duration::ZERO);
                            }
                        }
                        Some(Fault::Endless) => {
                            if head_200(&mut s, "Transfer-Encoding: chunked\r\n").is_ok()
                                && s.write_all(b"d\r\n{\"choices\": [\r\n").is_ok()
                            {
                                let mut chunk = b"10000\r\n".to_vec();
                                chunk.resize(chunk.len() + 0x10000, b' ');
                                chunk.extend_from_slice(b"\r\n");
                                stream_forever(&mut s, &chunk, Duration::ZERO);
                            }
                        }
                        Some(Fault::Trickle) => {
                            if head_200(&mut s, "Content-Length: 1000000\r\n").is_ok()
                                && s.write_all(b"{").is_ok()
                            {
                                stream_forever(&mut s, b" ", Duration::from_secs(1));
                            }
                        }
                        Some(Fault::BadUtf8) => {
                            // Well-formed JSON whose content has `\xFF\x80` (not UTF-8) for "+".
                            let mut body = completion(asked());
                            let at = body.windows(5).position(|w| w == b"2 + 2").unwrap() + 2;
                            body.splice(at..at + 1, [0xFF, 0x80]);
                            reply(&mut s, "200 OK", "", &body)
                        }
                        Some(Fault::TwoStage) => {
                            let end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
                            let v: serde_json::Value =
                                serde_json::from_slice(&req[end + 4..]).unwrap_or_default();
                            bodies.lock().unwrap().push(v.clone());
                            let content = match v["messages"].as_array().map(Vec::len) {
                                Some(3) if v["seed"].as_u64().unwrap_or(0).is_multiple_of(2) => {
                                    " 5."
                                }
                                Some(3) => " 6.",
                                _ => STAGE_ONE,
                            };
                            reply(&mut s, "200 OK", "", &reply_with(content))
                        }
                        Some(Fault::Answer(extra)) => {
                            reply(&mut s, "200 OK", "", &completion(asked() + extra))
                        }
                        Some(Fault::Drop) => drop(s),
                        Some(Fault::TooMany) => reply(
                            &mut s,
                            "429 Too Many Requests",
                            "Retry-After: 1\r\n",
                            b"{\"error\":\"slow down\"}",
                        ),
                        Some(Fault::Internal) => reply(
                            &mut s,
                            "500 Internal Server Error",
                            "",
                            b"{\"error\":\"boom\"}",
                        ),
                        Some(Fault::Unauthorized) => reply(
                            &mut s,
                            "401 Unauthorized",
                            "",
                            b"{\"error\":{\"message\":\"invalid api key\"}}",
                        ),
                        Some(Fault::Truncate) => {
                            let resp = forward(&req, upstream);
                            let cut = resp.len()
                                - (resp.len()
                                    - resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap())
                                    / 2;
                            let _ = s.write_all(&resp[..cut]);
                        }
                        Some(Fault::Pass | Fault::Delay) | None => {
                            if matches!(fault, Some(Fault::Delay)) {
                                std::thread::sleep(Duration::from_millis(1500));
                            }
                            let resp = forward(&req, upstream);
                            if resp.starts_with(b"HTTP/1.1 200") {
                                let end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
                                if let Ok(v) = serde_json::from_slice(&req[end + 4..]) {
                                    bodies.lock().unwrap().push(v);
                                }
                                forwarded.fetch_add(1, Ordering::SeqCst);
                            }
                            let _ = s.write_all(&resp);
                        }
                    }
                });
            }
        });
        p
    }
}

/// Starts `morsd run SPEC --until generate` in `p` and kills it once `ready` holds for the
/// request log's text at `log` (or it ends by itself, or `limit` passes).
pub fn kill_generate_when(
    p: &super::Project,
    log: &std::path::Path,
    ready: impl Fn(&str) -> bool,
    limit: Duration,
) {
    let mut child = p
        .cmd()
        .args(["run", p.spec().to_str().unwrap(), "--until", "generate"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while t.elapsed() < limit {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if ready(&text) || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    let _ = child.wait();
}
