//! Shared helpers: the default rule pack, a replay of lines, a task's identity.

use std::path::PathBuf;
use std::sync::OnceLock;

use callahead::replay::Replay;
use callahead::rules::RuleSet;
use callahead::task::Task;

/// The repository root (where `rules/` lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The default rule pack, loaded once.
pub fn rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(|| RuleSet::load_dir(&root().join("rules")).expect("default rules are valid"))
}

/// Replays JSON lines through a fresh engine; returns the final tasks.
pub fn replay<S: AsRef<str>>(lines: &[S]) -> Vec<Task> {
    let mut r = Replay::new(rules());
    for (i, line) in lines.iter().enumerate() {
        r.feed(i as u64 + 1, line.as_ref().as_bytes());
    }
    r.into_tasks().0
}

/// What identifies a task's outcome independent of event order: id, customer, queue and the
/// set of rules that contributed.
pub fn identity(tasks: &[Task]) -> Vec<(String, String, &'static str, Vec<String>)> {
    let mut out: Vec<_> = tasks
        .iter()
        .map(|t| {
            let mut rules = t.rules.clone();
            rules.sort();
            (t.id.clone(), t.customer_id.clone(), t.queue.as_str(), rules)
        })
        .collect();
    out.sort();
    out
}

/// The test broker's bootstrap address: `KAFKA_TEST_BOOTSTRAP` (set by `scripts/test.sh`),
/// or a broker started here with `scripts/kafka.sh start` (left running; `scripts/kafka.sh stop`).
pub fn broker() -> &'static str {
    static BROKER: OnceLock<String> = OnceLock::new();
    BROKER.get_or_init(|| {
        if let Ok(b) = std::env::var("KAFKA_TEST_BOOTSTRAP") {
            return b;
        }
        let out = std::process::Command::new(root().join("scripts/kafka.sh"))
            .arg("start")
            .output()
            .expect("run scripts/kafka.sh start");
        assert!(
            out.status.success(),
            "cannot start the test broker: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("address").trim().to_string()
    })
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// An SQLite task store in a new directory of its own (created here).
pub fn temp_sqlite(prefix: &str) -> String {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).expect("temp dir");
    format!("sqlite://{}", dir.join("tasks.db").display())
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A plain HTTP GET on loopback: (status, body).
pub fn http_get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(address)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// A plain HTTP/1.1 request on loopback with an optional bearer token and JSON body:
/// (status, headers in lower case, body as JSON or `Null`).
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String, serde_json::Value) {
    let (status, headers, payload) = http_text(address, method, path, token, body);
    (status, headers, serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null))
}

/// [`http`] with the body as text (an HTML page).
pub fn http_text(
    address: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(address).expect("connect to the API");
    s.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(t) = token {
        request.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = head.to_ascii_lowercase();
    // Bodies come whole (Content-Length) or chunked; undo chunking if present.
    let payload =
        if headers.contains("transfer-encoding: chunked") { dechunk(rest) } else { rest.to_string() };
    (status, headers, payload)
}

fn dechunk(rest: &str) -> String {
    let mut bytes = rest.as_bytes();
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(2).position(|w| w == b"\r\n") {
        let n =
            usize::from_str_radix(std::str::from_utf8(&bytes[..end]).unwrap_or("0").trim(), 16).unwrap_or(0);
        let tail = &bytes[end + 2..];
        if n == 0 || tail.len() < n {
            break;
        }
        out.extend_from_slice(&tail[..n]);
        bytes = tail[n..].strip_prefix(b"\r\n").unwrap_or(&tail[n..]);
    }
    String::from_utf8_lossy(&out).to_string()
}
