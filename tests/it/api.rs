//! The agents' API end to end, on the demo's embedded mode (`callahead demo`, one process, the
//! in-process command queue) against both stores (an SQLite file; a fresh PostgreSQL database):
//! every endpoint with every role, including what each role must not see or do; the lifecycle
//! with its audit trail; a claim race between two agents (one wins, the other gets 409 with who
//! holds it); claim expiry; precision per rule after a resolve; the auth-failure limit.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{free_port, http, root};
use crate::serve::PostgresDb;

/// A running demo with its API and a token per role.
pub(crate) struct Demo {
    child: Child,
    pub(crate) address: String,
    pub(crate) tokens: BTreeMap<String, String>,
}

impl Demo {
    pub(crate) fn start(store: Option<&str>, claim_idle_secs: u64) -> Demo {
        Demo::start_with(store, claim_idle_secs, &["--customers", "150"])
    }

    /// A demo with more arguments (e.g. `--input FILE`).
    pub(crate) fn start_with(store: Option<&str>, claim_idle_secs: u64, args: &[&str]) -> Demo {
        let address = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_callahead"));
        cmd.args(["demo", "--show", "0", "--listen", &address])
            .args(args)
            .args(["--claim-idle-secs", &claim_idle_secs.to_string()])
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(url) = store {
            cmd.args(["--store", url]);
        }
        let mut child = cmd.spawn().expect("start callahead demo");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut tokens = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while tokens.len() < 6 {
            assert!(Instant::now() < deadline, "the demo printed no tokens in time");
            let Some(Ok(line)) = lines.next() else {
                panic!("the demo ended before serving: {:?}", child.try_wait())
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() == 3 && words[2].starts_with("cah_") {
                tokens.insert(words[0].to_string(), words[2].to_string());
            }
        }
        // Keep draining stdout so the demo never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Demo { child, address, tokens }
    }

    fn token(&self, name: &str) -> &str {
        &self.tokens[name]
    }

    pub(crate) fn call(
        &self,
        who: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let token = who.map(|w| self.token(w).to_string());
        let (status, _, body) = http(&self.address, method, path, token.as_deref(), body);
        (status, body)
    }

    /// The first open, unassigned task of a queue (as the supervisor sees it).
    fn first_open(&self, queue: &str) -> Value {
        let (s, page) = self.call(
            Some("supervisor"),
            "GET",
            &format!("/api/v1/tasks?queue={queue}&status=open&unassigned=true"),
            None,
        );
        assert_eq!(s, 200, "{page}");
        page["items"][0].clone()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ROLES: [&str; 5] = ["fraud-agent", "care-agent", "supervisor", "admin", "auditor"];

/// Every read endpoint with every role: (path, expected status per role in `ROLES` order).
fn read_matrix(d: &Demo, fraud: &str, care: &str, fraud_customer: &str) {
    let rows: Vec<(String, [u16; 5])> = vec![
        ("/api/v1/me".into(), [200; 5]),
        ("/api/v1/tasks".into(), [200; 5]),
        (format!("/api/v1/tasks/{fraud}"), [200, 404, 200, 200, 200]),
        (format!("/api/v1/tasks/{care}"), [404, 200, 200, 200, 200]),
        (format!("/api/v1/tasks/{fraud}/versions/1"), [200, 404, 200, 200, 200]),
        (format!("/api/v1/customers/{fraud_customer}"), [200; 5]),
        ("/api/v1/rules".into(), [200; 5]),
        ("/api/v1/audit?actor=fraud-agent".into(), [200, 403, 200, 200, 200]),
        ("/api/v1/tasks/tsk_0000000000000000".into(), [404; 5]),
    ];
    for (path, expected) in rows {
        for (role, want) in ROLES.iter().zip(expected) {
            let (got, body) = d.call(Some(role), "GET", &path, None);
            assert_eq!(got, want, "GET {path} as {role}: {body}");
        }
        let (anonymous, body) = d.call(None, "GET", &path, None);
        assert_eq!(anonymous, 401, "GET {path} without a token: {body}");
        assert_eq!(body["status"], 401, "problem+json: {body}");
    }
    // An agent's list holds only their queue; asking for the other reads as empty.
    for (role, queue) in [("fraud-agent", "fraud"), ("care-agent", "care")] {
        let (_, page) = d.call(Some(role), "GET", "/api/v1/tasks?limit=200", None);
        let items = page["items"].as_array().unwrap();
        assert!(!items.is_empty() && items.iter().all(|t| t["queue"] == queue), "{role}: {page}");
        let other = if queue == "fraud" { "care" } else { "fraud" };
        let (_, page) = d.call(Some(role), "GET", &format!("/api/v1/tasks?queue={other}"), None);
        assert_eq!(page["items"].as_array().unwrap().len(), 0, "{role} sees {other}: {page}");
    }
    let (_, page) = d.call(Some("supervisor"), "GET", "/api/v1/tasks?limit=200", None);
    let queues: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|t| t["queue"].as_str().unwrap()).collect();
    assert!(queues.contains(&"fraud") && queues.contains(&"care"), "{queues:?}");
    // Cursor pages of two walk the same list in the same order.
    let all: Vec<Value> = page["items"].as_array().unwrap().iter().map(|t| t["id"].clone()).collect();
    let (mut walked, mut cursor) = (Vec::new(), String::new());
    loop {
        let (s, p) = d.call(Some("supervisor"), "GET", &format!("/api/v1/tasks?limit=2{cursor}"), None);
        assert_eq!(s, 200, "{p}");
        walked.extend(p["items"].as_array().unwrap().iter().map(|t| t["id"].clone()));
        match p["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(walked, all, "cursor pages");
    // Most urgent first.
    let prios: Vec<i64> =
        page["items"].as_array().unwrap().iter().map(|t| t["priority"].as_i64().unwrap()).collect();
    assert!(prios.windows(2).all(|w| w[0] <= w[1]), "{prios:?}");
}

/// The lifecycle of one fraud task through the API, with the roles that may and may not act.
fn lifecycle(d: &Demo) {
    let fraud = d.first_open("fraud");
    let care = d.first_open("care");
    let (fid, cid) = (fraud["id"].as_str().unwrap().to_string(), care["id"].as_str().unwrap().to_string());
    read_matrix(d, &fid, &cid, fraud["customer_id"].as_str().unwrap());
    let post = |who: &str, path: &str, body: Option<&str>| d.call(Some(who), "POST", path, body);
    let task_path = |action: &str| format!("/api/v1/tasks/{fid}/{action}");

    // `next` hands the fraud agent the most urgent unclaimed task, claimed.
    let (s, next) = post("fraud-agent", "/api/v1/queues/fraud/next", None);
    assert_eq!(s, 200, "{next}");
    assert_eq!(
        (next["status"].as_str(), next["work"]["assignee"].as_str()),
        (Some("claimed"), Some("fraud-agent"))
    );
    let nid = next["id"].as_str().unwrap().to_string();
    let (s, body) = post("fraud-agent-2", &format!("/api/v1/tasks/{nid}/claim"), None);
    assert_eq!((s, body["holder"].as_str()), (409, Some("fraud-agent")), "{body}");
    assert_eq!(post("care-agent", "/api/v1/queues/fraud/next", None).0, 404, "no such queue for care");
    assert_eq!(post("auditor", "/api/v1/queues/fraud/next", None).0, 403);
    assert_eq!(post("auditor", &format!("/api/v1/tasks/{nid}/claim"), None).0, 403);
    assert_eq!(post("care-agent", &format!("/api/v1/tasks/{nid}/claim"), None).0, 404);

    // The chosen task: claim, contact, note, snooze, reassign, resolve, reopen.
    let (s, t) = post("fraud-agent", &task_path("claim"), None);
    assert_eq!(s, 200, "{t}");
    let contact = r#"{"channel":"phone","result":"reached","note":"customer answered"}"#;
    let (s, t) = post("fraud-agent", &task_path("contacted"), Some(contact));
    assert_eq!((s, t["status"].as_str()), (200, Some("contacted")), "{t}");
    assert_eq!(
        post("fraud-agent", &task_path("contacted"), Some(r#"{"channel":"pigeon","result":"reached"}"#)).0,
        422
    );
    assert_eq!(post("fraud-agent", &task_path("notes"), Some(r#"{"note":"asked about the trip"}"#)).0, 200);
    assert_eq!(
        post("fraud-agent", &task_path("notes"), Some(r#"{"note":"  "}"#)).0,
        422,
        "a note must say something"
    );
    assert_eq!(post("fraud-agent", &task_path("notes"), Some("{not json")).0, 400);
    let snooze = r#"{"until":"2099-01-01T00:00:00Z","reason":"customer calls back tomorrow"}"#;
    assert_eq!(post("fraud-agent", &task_path("snooze"), Some(snooze)).0, 200);
    let listed = |extra: &str| {
        let (_, page) = d.call(Some("fraud-agent"), "GET", &format!("/api/v1/tasks?limit=200{extra}"), None);
        page["items"].as_array().unwrap().iter().any(|t| t["id"] == fid.as_str())
    };
    assert!(!listed(""), "a snoozed task leaves the queue");
    assert!(listed("&include_snoozed=true"));
    let reassign = r#"{"to":"fraud-agent-2","note":"shift change"}"#;
    assert_eq!(post("fraud-agent", &task_path("reassign"), Some(reassign)).0, 403);
    let (s, t) = post("supervisor", &task_path("reassign"), Some(reassign));
    assert_eq!((s, t["work"]["assignee"].as_str()), (200, Some("fraud-agent-2")), "{t}");
    let legit = r#"{"outcome":"legitimate","note":"customer confirmed the trip"}"#;
    let (s, body) = post("fraud-agent", &task_path("resolve"), Some(legit));
    assert_eq!(
        (s, body["holder"].as_str()),
        (409, Some("fraud-agent-2")),
        "the former holder cannot resolve: {body}"
    );
    assert_eq!(
        post("fraud-agent-2", &task_path("resolve"), Some(r#"{"outcome":"legitimate"}"#)).0,
        422,
        "a resolve needs a note"
    );
    assert_eq!(
        post("fraud-agent-2", &task_path("resolve"), Some(r#"{"outcome":"retained","note":"x"}"#)).0,
        422,
        "a care outcome"
    );
    let (s, t) = post("fraud-agent-2", &task_path("resolve"), Some(legit));
    assert_eq!(
        (s, t["status"].as_str(), t["outcome"].as_str()),
        (200, Some("resolved"), Some("legitimate")),
        "{t}"
    );
    assert!(!listed("&include_snoozed=true"), "a resolved task leaves the queue");
    assert_eq!(post("fraud-agent-2", &task_path("claim"), None).0, 409, "resolved");

    // The audit trail: every change, by whom, before and after.
    let (_, detail) = d.call(Some("auditor"), "GET", &format!("/api/v1/tasks/{fid}"), None);
    let audit = detail["audit"].as_array().unwrap();
    // The outreach sender records its decisions too (an e-mail to the customer); this test is
    // about the agents' changes.
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a["actor"].as_str().unwrap(), a["action"].as_str().unwrap()))
        .filter(|(actor, _)| *actor != "outreach")
        .collect();
    assert_eq!(
        actions,
        [
            ("engine", "opened"),
            ("fraud-agent", "claim"),
            ("fraud-agent", "contacted"),
            ("fraud-agent", "note"),
            ("fraud-agent", "snooze"),
            ("supervisor", "reassign"),
            ("fraud-agent-2", "resolve"),
        ],
        "{detail}"
    );
    let versions: Vec<i64> = audit.iter().map(|a| a["version"].as_i64().unwrap()).collect();
    assert!(versions.windows(2).all(|w| w[1] == w[0] + 1), "one version per change: {versions:?}");
    let reassigned = audit.iter().find(|a| a["action"] == "reassign").unwrap();
    assert_eq!(
        (reassigned["before"]["assignee"].as_str(), reassigned["after"]["assignee"].as_str()),
        (Some("fraud-agent"), Some("fraud-agent-2"))
    );
    assert_eq!(reassigned["role"], "supervisor");
    assert_eq!(
        audit.iter().find(|a| a["action"] == "resolve").unwrap()["reason"],
        "customer confirmed the trip"
    );
    assert_eq!(detail["versions"].as_array().unwrap().len(), audit.len());
    let (s, mine) = d.call(Some("fraud-agent-2"), "GET", "/api/v1/audit?actor=fraud-agent-2", None);
    assert_eq!(s, 200);
    assert!(mine.as_array().unwrap().iter().any(|a| a["action"] == "resolve"));

    // Precision per rule counts the outcome.
    let (_, rules) = d.call(Some("supervisor"), "GET", "/api/v1/rules", None);
    let rule = &detail["task"]["rules"][0];
    let info = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| &r["id"] == rule)
        .expect("the task's rule is listed")
        .clone();
    assert_eq!(
        (info["resolved"].as_i64(), info["confirmed"].as_i64(), info["precision"].as_f64()),
        (Some(1), Some(0), Some(0.0)),
        "{info}"
    );

    // A care agent sees the customer's fraud history in the customer view.
    let customer = fraud["customer_id"].as_str().unwrap();
    let (_, view) = d.call(Some("care-agent"), "GET", &format!("/api/v1/customers/{customer}"), None);
    assert!(
        view["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == fid.as_str() && t["outcome"] == "legitimate"),
        "{view}"
    );
    assert_eq!(view["state_source"], "live");

    // Reopen: supervisors only.
    let note = r#"{"note":"customer called: it was not them after all"}"#;
    assert_eq!(post("fraud-agent-2", &task_path("reopen"), Some(note)).0, 403);
    let (s, t) = post("supervisor", &task_path("reopen"), Some(note));
    assert_eq!((s, t["status"].as_str(), t["outcome"].as_str()), (200, Some("open"), None), "{t}");

    // Rule validation answers file:line errors.
    let (_, v) =
        d.call(Some("auditor"), "POST", "/api/v1/rules/validate?file=mine.toml", Some("[[rule]]\nid = 3\n"));
    assert_eq!(v["valid"], false, "{v}");
    assert!(v["errors"][0].as_str().unwrap().starts_with("mine.toml:"), "{v}");
}

/// Two agents claim the same task at once: exactly one wins.
fn claim_race(d: &Demo) {
    let task = d.first_open("fraud");
    let path = format!("/api/v1/tasks/{}/claim", task["id"].as_str().unwrap());
    let results: Vec<(u16, Value)> = std::thread::scope(|s| {
        let a = s.spawn(|| d.call(Some("fraud-agent"), "POST", &path, None));
        let b = s.spawn(|| d.call(Some("fraud-agent-2"), "POST", &path, None));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let mut statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{results:?}");
    let winner = results.iter().find(|r| r.0 == 200).unwrap().1["work"]["assignee"].clone();
    let loser = results.iter().find(|r| r.0 == 409).unwrap();
    assert_eq!(loser.1["holder"], winner, "the 409 names who holds it");
}

/// Admins manage machine tokens through the API: created with an expiry and shown once, listed
/// without secrets, rotated (the old one stops, the new one works), revoked, expired; others may
/// not; every change is audited.
fn tokens_are_managed_through_the_api(d: &Demo) {
    let bot = r#"{"name":"ingest-bot","role":"auditor","expires_in":"2s"}"#;
    assert_eq!(d.call(Some("supervisor"), "POST", "/api/v1/tokens", Some(bot)).0, 403, "admins only");
    let (status, created) = d.call(Some("admin"), "POST", "/api/v1/tokens", Some(bot));
    assert_eq!(status, 200, "{created}");
    let first = created["token"].as_str().unwrap().to_string();
    let me = |token: &str| http(&d.address, "GET", "/api/v1/me", Some(token), None).0;
    assert_eq!(me(&first), 200);
    let (_, listed) = d.call(Some("admin"), "GET", "/api/v1/tokens", None);
    assert!(listed.as_array().unwrap().iter().any(|t| t["name"] == "ingest-bot" && t["expired"] == false));
    assert!(!listed.to_string().contains(&first) && !listed.to_string().contains("hash"), "{listed}");
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    assert_eq!(me(&first), 401, "an expired token stops working");
    let long = r#"{"name":"ingest-bot","role":"auditor","expires_in":"1d"}"#;
    let second =
        d.call(Some("admin"), "POST", "/api/v1/tokens", Some(long)).1["token"].as_str().unwrap().to_string();
    let (status, rotated) =
        d.call(Some("admin"), "POST", "/api/v1/tokens/ingest-bot/rotate?expires_in=7d", None);
    assert_eq!(status, 200, "{rotated}");
    let third = rotated["token"].as_str().unwrap().to_string();
    assert_eq!((me(&second), me(&third)), (401, 200), "rotation: the old stops, the new works");
    let (status, revoked) = d.call(Some("admin"), "POST", "/api/v1/tokens/ingest-bot/revoke", None);
    assert_eq!((status, revoked["revoked"].as_u64()), (200, Some(1)));
    assert_eq!(me(&third), 401);
    let bad = r#"{"name":"x","role":"auditor","expires_in":"9999d"}"#;
    assert_eq!(d.call(Some("admin"), "POST", "/api/v1/tokens", Some(bad)).0, 422);
    let (_, audit) = d.call(Some("supervisor"), "GET", "/api/v1/audit?actor=admin", None);
    let actions: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|a| a["action"].as_str()).collect();
    assert!(actions.contains(&"token_created") && actions.contains(&"token_revoked"), "{actions:?}");
    assert!(!audit.to_string().contains(&third), "no token in the audit");
}

fn auth_failures_are_limited(d: &Demo) {
    let mut last = 0;
    for _ in 0..12 {
        last = http(&d.address, "GET", "/api/v1/tasks", Some("cah_not_a_token"), None).0;
    }
    assert_eq!(last, 429, "repeated failures from one address are rate-limited");
    // A valid token from the same address is never refused: one guesser does not lock the floor out.
    assert_eq!(d.call(Some("fraud-agent"), "GET", "/api/v1/tasks", None).0, 200);
    // The failures are audited with the address, never the token.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (_, audit) = d.call(Some("supervisor"), "GET", "/api/v1/audit?actor=unknown", None);
    let failed: Vec<&serde_json::Value> =
        audit.as_array().unwrap().iter().filter(|a| a["action"] == "auth_failed").collect();
    assert!(failed.len() >= 10, "{audit}");
    assert!(failed[0]["reason"].as_str().unwrap().contains("from 127.0.0.1"), "{audit}");
    assert!(!audit.to_string().contains("cah_not_a_token"), "{audit}");
    let (s, _, _) = http(&d.address, "GET", "/healthz", None, None);
    assert_eq!(s, 200, "health stays open");
    // A login form posted without the login page's CSRF value (a cross-site form) is refused.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "--data",
            "token=cah_x&csrf=forged",
        ])
        .arg(format!("http://{}/console/login", d.address))
        .output()
        .expect("curl");
    let reply = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(reply.starts_with("303") && reply.ends_with("/console/login?error=expired"), "{reply}");
}

#[test]
fn every_endpoint_and_role_on_sqlite() {
    let d = Demo::start(None, 1_800);
    lifecycle(&d);
    claim_race(&d);
    // Documents served offline.
    let (s, _, doc) = http(&d.address, "GET", "/openapi.json", None, None);
    assert_eq!(s, 200);
    assert!(doc["paths"]["/api/v1/tasks/{id}/claim"]["post"].is_object(), "{doc}");
    assert_eq!(http(&d.address, "GET", "/docs/", None, None).0, 200);
    tokens_are_managed_through_the_api(&d);
    auth_failures_are_limited(&d);
}

#[test]
fn every_endpoint_and_role_on_postgres() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = runtime.block_on(PostgresDb::create());
    let d = Demo::start(Some(&db.url), 1_800);
    lifecycle(&d);
    claim_race(&d);
}

#[test]
fn an_idle_claim_goes_back_to_the_queue() {
    let d = Demo::start(None, 2);
    let task = d.first_open("care");
    let id = task["id"].as_str().unwrap();
    let (s, t) = d.call(Some("care-agent"), "POST", &format!("/api/v1/tasks/{id}/claim"), None);
    assert_eq!((s, t["status"].as_str()), (200, Some("claimed")));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, detail) = d.call(Some("supervisor"), "GET", &format!("/api/v1/tasks/{id}"), None);
        if detail["task"]["status"] == "open" {
            assert_eq!(detail["task"]["work"]["assignee"], Value::Null);
            let last = detail["audit"].as_array().unwrap().last().unwrap().clone();
            assert_eq!(
                (last["action"].as_str(), last["role"].as_str()),
                (Some("expire_claim"), Some("system")),
                "{last}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the claim never expired: {detail}");
        std::thread::sleep(Duration::from_millis(250));
    }
}
