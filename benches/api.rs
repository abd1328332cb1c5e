//! Latency and throughput of the agents' HTTP API over a full task store.
//!
//! `TASKS` customers each send one high-severity complaint; the default rule pack opens one care
//! task per customer (`complaint_escalation`). The replay's engine, which knows every customer,
//! then serves the API in the embedded mode (`callahead::embedded::serve`: tasks stored, one
//! token per role, commands applied by an in-process loop) on a free loopback port, once per
//! store: SQLite in a temporary directory, PostgreSQL in a database created for the run and
//! dropped after it. A care agent's client, one HTTP/1.1 keep-alive connection, sends one request
//! at a time and times each until its whole answer has arrived:
//!
//! - `list first page`: `GET /api/v1/tasks?queue=care&limit=50`;
//! - `list walk`: following `next_cursor` page after page down to `DEPTH` tasks into the list;
//! - `list deep page`: the page found there, again and again (with its cursor);
//! - `get task`: `GET /api/v1/tasks/{id}` of random tasks (the task, its versions and audit);
//! - `claim`, `resolve`: `POST …/claim` then `POST …/resolve` on a fresh task each time, each
//!   answered 200 once the new version is durable in the store (read-your-writes), and
//!   `claim → resolve`, the pair.
//!
//! On PostgreSQL the bench runs `ANALYZE` once the tasks are stored, as autovacuum would within a
//! minute of such a load in production (without statistics the planner sorts the whole queue for
//! every page); `PG_ANALYZE=0` skips it, for a server without autovacuum. SQLite has no automatic
//! statistics and gets none.
//!
//! For each store it prints how long the setup took (the replay, then storing the tasks until the
//! API answers) and, per operation, p50, p99 and maximum latency and requests per second.
//!
//! `cargo bench --bench api`. Environment: `TASKS` (default 100000), `STORES` (`sqlite
//! postgres`, separated by spaces or commas), `REQUESTS` per read operation (2000),
//! `ROUND_TRIPS` claim → resolve pairs (500), `DEPTH` of the deep page in tasks (default 90% of
//! `TASKS`), `POSTGRES_URL` where the scratch database is created
//! (`postgres://postgres@127.0.0.1:5432/test`), `PG_ANALYZE` (1).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use callahead::replay::Replay;
use callahead::rules::RuleSet;
use callahead::task::Task;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Tasks per listed page.
const PAGE: usize = 50;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .map(|v| v.trim().parse().unwrap_or_else(|_| panic!("{name} must be a number")))
        .unwrap_or(default)
}

fn main() {
    let n = env_num("TASKS", 100_000);
    let requests = env_num("REQUESTS", 2_000);
    let round_trips = env_num("ROUND_TRIPS", 500).min(n);
    let depth = env_num("DEPTH", n / 10 * 9);
    let stores: Vec<String> = std::env::var("STORES")
        .unwrap_or_else(|_| "sqlite postgres".into())
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let admin =
        std::env::var("POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let analyze = env_num("PG_ANALYZE", 1) != 0;
    let plan = Plan { requests, round_trips, depth };
    println!(
        "tasks={n} requests={requests} round_trips={round_trips} deep page at {depth} tasks, one keep-alive connection"
    );
    for kind in &stores {
        // Dropped last (after the runtime), also when the run panics.
        let scratch = Scratch::create(kind, &admin);
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        let stats = runtime.block_on(run(kind, &scratch.url, n, &plan, analyze));
        drop(runtime);
        drop(scratch);
        print_table(kind, &stats);
    }
}

fn print_table(store: &str, stats: &[Stats]) {
    println!(
        "{:<8} {:<18} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "store", "operation", "requests", "p50 ms", "p99 ms", "max ms", "req/s"
    );
    for s in stats {
        println!(
            "{store:<8} {:<18} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>9.0}",
            s.name,
            s.latencies.len(),
            s.quantile(0.50),
            s.quantile(0.99),
            s.quantile(1.0),
            s.rate()
        );
    }
}

/// How many requests of each kind.
struct Plan {
    requests: usize,
    round_trips: usize,
    depth: usize,
}

/// One engine and its tasks: `n` customers, one high-severity complaint each.
fn replay(rules: &RuleSet, n: usize) -> (callahead::engine::Engine, Vec<Task>) {
    let start = 1_767_225_600_000i64; // 2026-01-01T00:00:00Z
    let mut replay = Replay::new(rules);
    for i in 0..n {
        // Spread over time so tasks have distinct due times.
        let ts = callahead::time::Timestamp(start + i as i64 * 1_000).to_string();
        let line = format!(
            r#"{{"event_id":"e{i}","type":"complaint","customer_id":"c{i:07}","ts":"{ts}","category":"fees","severity":"high","text":"charged twice"}}"#
        );
        replay.feed(i as u64 + 1, line.as_bytes());
    }
    let (engine, tasks, summary) = replay.into_parts();
    assert!(summary.invalid.is_empty(), "invalid events: {:?}", summary.invalid_lines);
    assert_eq!(tasks.len(), n, "one task per customer");
    (engine, tasks)
}

async fn run(kind: &str, url: &str, n: usize, plan: &Plan, analyze: bool) -> Vec<Stats> {
    let rules_dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/rules"));
    let rules = RuleSet::load_dir(rules_dir).expect("default rules");
    let started = Instant::now();
    let (engine, tasks) = replay(&rules, n);
    let replayed = started.elapsed();

    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<(SocketAddr, String)>();
    let started = Instant::now();
    let server = callahead::embedded::serve(Arc::new(engine), rules, &tasks, url, "127.0.0.1:0", |e| {
        let token = e.tokens.iter().find(|t| t.name == "care-agent").expect("a care agent's token");
        let _ = ready_tx.send((e.address, token.token.clone()));
    });
    let client = async {
        let (address, token) = ready_rx.await.expect("the API started");
        let stored = started.elapsed();
        println!(
            "{kind}: setup {:.1} s: replay of {n} events {:.1} s, storing {n} tasks until the API answers {:.1} s",
            (replayed + stored).as_secs_f64(),
            replayed.as_secs_f64(),
            stored.as_secs_f64()
        );
        if kind == "postgres" && analyze {
            // What autovacuum does soon after a bulk load (the test server runs without it).
            let t = Instant::now();
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await.expect("PostgreSQL");
            sqlx::query("ANALYZE").execute(&mut conn).await.expect("ANALYZE");
            println!("{kind}: ANALYZE {:.1} s", t.elapsed().as_secs_f64());
        }
        let mut http = Http::connect(address, &token).await;
        measure(&mut http, &tasks, plan).await
    };
    tokio::select! {
        r = server => panic!("the embedded API stopped: {r:?}"),
        stats = client => stats,
    }
}

async fn measure(http: &mut Http, tasks: &[Task], plan: &Plan) -> Vec<Stats> {
    let mut out = Vec::new();
    let first = "/api/v1/tasks?queue=care&limit=50";
    let page = http.get_json(first).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(PAGE.min(tasks.len())), "a full first page");
    out.push(Stats::gets("list first page", http, (0..plan.requests).map(|_| first.to_string())).await);

    // Down to the deep page, one page at a time.
    let mut cursor = page["next_cursor"].as_str().map(str::to_string);
    let mut walk = Stats::new("list walk");
    let started = Instant::now();
    for _ in 1..plan.depth / PAGE {
        let Some(c) = cursor.as_deref() else { break };
        let path = format!("{first}&cursor={c}");
        let t = Instant::now();
        let page = http.get_json(&path).await;
        walk.latencies.push(t.elapsed());
        cursor = page["next_cursor"].as_str().map(str::to_string);
    }
    walk.wall = started.elapsed();
    if !walk.latencies.is_empty() {
        out.push(walk);
    }
    if let Some(c) = cursor {
        let deep = format!("{first}&cursor={c}");
        let page = http.get_json(&deep).await;
        assert_eq!(page["items"].as_array().map(Vec::len), Some(PAGE), "a full deep page");
        out.push(Stats::gets("list deep page", http, (0..plan.requests).map(|_| deep.clone())).await);
    }

    let mut rng = fastrand::Rng::with_seed(7);
    let ids: Vec<String> =
        (0..plan.requests).map(|_| format!("/api/v1/tasks/{}", tasks[rng.usize(..tasks.len())].id)).collect();
    out.push(Stats::gets("get task", http, ids).await);

    // Claim → resolve on distinct tasks, in random order.
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    rng.shuffle(&mut order);
    let (mut claim, mut resolve, mut pair) =
        (Stats::new("claim"), Stats::new("resolve"), Stats::new("claim → resolve"));
    let resolution = r#"{"outcome":"resolved_issue","note":"refunded the double charge"}"#;
    let started = Instant::now();
    for &i in &order[..plan.round_trips] {
        let id = &tasks[i].id;
        let t = Instant::now();
        let claimed = http.post_json(&format!("/api/v1/tasks/{id}/claim"), "").await;
        let c = t.elapsed();
        assert_eq!(claimed["status"], "claimed", "{claimed}");
        let t2 = Instant::now();
        let resolved = http.post_json(&format!("/api/v1/tasks/{id}/resolve"), resolution).await;
        let r = t2.elapsed();
        assert_eq!(resolved["status"], "resolved", "{resolved}");
        claim.latencies.push(c);
        resolve.latencies.push(r);
        pair.latencies.push(t.elapsed());
    }
    let wall = started.elapsed();
    for mut s in [claim, resolve, pair] {
        // Each pair is two requests: claims and resolves each ran half of the wall time.
        s.wall = if s.name == "claim → resolve" { wall } else { wall / 2 };
        out.push(s);
    }
    out
}

/// Latencies of one operation and the wall time of its requests.
struct Stats {
    name: &'static str,
    latencies: Vec<Duration>,
    wall: Duration,
}

impl Stats {
    fn new(name: &'static str) -> Stats {
        Stats { name, latencies: Vec::new(), wall: Duration::ZERO }
    }

    /// `GET` of each path, one after the other.
    async fn gets(name: &'static str, http: &mut Http, paths: impl IntoIterator<Item = String>) -> Stats {
        let paths: Vec<String> = paths.into_iter().collect();
        let mut s = Stats::new(name);
        let started = Instant::now();
        for path in &paths {
            let t = Instant::now();
            http.get_json(path).await;
            s.latencies.push(t.elapsed());
        }
        s.wall = started.elapsed();
        s
    }

    /// Milliseconds at quantile `q` (nearest rank; 1.0 is the maximum).
    fn quantile(&self, q: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted
            .get(((sorted.len().max(1) - 1) as f64 * q).round() as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// A minimal HTTP/1.1 client on one keep-alive connection: one request at a time, answers with
/// a `Content-Length` (what this API sends).
struct Http {
    stream: TcpStream,
    host: String,
    token: String,
    buf: Vec<u8>,
}

impl Http {
    async fn connect(address: SocketAddr, token: &str) -> Http {
        let stream = TcpStream::connect(address).await.expect("connect to the API");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Http { stream, host: address.to_string(), token: token.to_string(), buf: Vec::with_capacity(1 << 16) }
    }

    async fn get_json(&mut self, path: &str) -> serde_json::Value {
        self.call("GET", path, None).await
    }

    async fn post_json(&mut self, path: &str, body: &str) -> serde_json::Value {
        self.call("POST", path, Some(body)).await
    }

    /// Sends a request and reads its answer; anything but a 200 with JSON stops the bench.
    async fn call(&mut self, method: &str, path: &str, body: Option<&str>) -> serde_json::Value {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n",
            self.host, self.token
        );
        if let Some(b) = body {
            request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
        }
        request.push_str("\r\n");
        request.push_str(body.unwrap_or(""));
        self.stream.write_all(request.as_bytes()).await.expect("send a request");

        self.buf.clear();
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            self.fill().await;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).expect("an ASCII head").to_string();
        let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("{method} {path}: no Content-Length in\n{head}"));
        while self.buf.len() < head_end + length {
            self.fill().await;
        }
        let body = &self.buf[head_end..head_end + length];
        assert_eq!(status, 200, "{method} {path}: {}", String::from_utf8_lossy(body));
        serde_json::from_slice(body).expect("a JSON answer")
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        let read = self.stream.read(&mut chunk).await.expect("read an answer");
        assert!(read > 0, "the API closed the connection");
        self.buf.extend_from_slice(&chunk[..read]);
    }
}

/// Where one store lives for the run; removed when dropped.
struct Scratch {
    url: String,
    dir: Option<PathBuf>,
    database: Option<(String, String)>,
}

impl Scratch {
    fn create(kind: &str, admin: &str) -> Scratch {
        let unique = format!(
            "callahead_api_bench_{}_{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
        );
        match kind {
            "sqlite" => {
                let dir = std::env::temp_dir().join(&unique);
                std::fs::create_dir_all(&dir).expect("temp dir");
                let url = format!("sqlite://{}", dir.join("tasks.db").display());
                Scratch { url, dir: Some(dir), database: None }
            }
            "postgres" => {
                admin_sql(admin, &format!("CREATE DATABASE {unique}"))
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e}"));
                let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
                Scratch {
                    url: format!("{base}/{unique}"),
                    dir: None,
                    database: Some((admin.to_string(), unique)),
                }
            }
            other => panic!("STORES: unknown store `{other}` (sqlite or postgres)"),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((admin, name)) = &self.database {
            if let Err(e) = admin_sql(admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")) {
                eprintln!("cannot drop the scratch database {name}: {e}");
            }
        }
    }
}

/// Runs one statement on the PostgreSQL server (from outside any runtime).
fn admin_sql(admin: &str, sql: &str) -> Result<(), sqlx::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut conn).await?;
        Ok(())
    })
}
