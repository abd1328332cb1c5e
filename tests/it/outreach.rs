//! E-mail to customers against a real SMTP server (aiosmtpd from PyPI, installed and started by
//! `scripts/smtp-sink.sh`), with the demo's engine and store: the relay is down when the demo
//! starts, so the sender retries (events and the API keep working meanwhile), and once the relay
//! is up every e-mail arrives exactly once; the fraud confirmation has the right recipient,
//! language, subject, masked card, a plain-text and an HTML part and a stable Message-ID; its
//! links show a page on GET and HEAD and change nothing, only the button's POST answers; a
//! forged, altered or reused link gets the same neutral page; "yes" resolves the task as
//! legitimate by the customer, "no" makes it priority 1 with a follow-up e-mail; every decision
//! (sent, suppressed with its reason) is on the task. In `serve` (real broker): consent, quiet
//! hours, the contact-fatigue cap and the RFC 8058 unsubscribe, each decision on its task, while
//! an SMTP outage never stops events from opening tasks.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::Demo;
use crate::common::{free_port, http, http_get, root, unique};

/// The SMTP sink, stopped on drop.
struct Sink {
    child: Child,
    dir: std::path::PathBuf,
}

impl Sink {
    fn start(port: u16, dir: &std::path::Path) -> Sink {
        let child = Command::new(root().join("scripts/smtp-sink.sh"))
            .args(["run", &port.to_string(), dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the SMTP sink");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the SMTP sink did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Sink { child, dir: dir.to_path_buf() }
    }

    /// Every message received so far: (headers, plain text, HTML).
    fn messages(&self) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("new")) else { return Vec::new() };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read(e.path()).ok().map(|raw| (e.path(), raw)))
            .map(|(path, raw)| Mail::parse(path, &raw))
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A received e-mail.
#[derive(Debug, Clone)]
struct Mail {
    path: std::path::PathBuf,
    headers: BTreeMap<String, String>,
    text: String,
    html: String,
}

impl Mail {
    fn parse(path: std::path::PathBuf, raw: &[u8]) -> Mail {
        let m = mailparse::parse_mail(raw).expect("a MIME message");
        let headers = m.headers.iter().map(|h| (h.get_key().to_ascii_lowercase(), h.get_value())).collect();
        let (mut text, mut html) = (String::new(), String::new());
        for part in m.subparts.iter().chain(std::iter::once(&m)) {
            match part.ctype.mimetype.as_str() {
                "text/plain" => text = part.get_body().unwrap_or_default(),
                "text/html" => html = part.get_body().unwrap_or_default(),
                _ => {}
            }
        }
        Mail { path, headers, text, html }
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    /// The answer links of the plain-text part, in order.
    fn links(&self) -> Vec<String> {
        self.text.split_whitespace().filter(|w| w.starts_with("http://")).map(str::to_string).collect()
    }
}

fn wait_until<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The path and query of a URL on the demo.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".to_string(), |i| rest[i..].to_string())
}

fn task(d: &Demo, id: &str) -> Value {
    d.call(Some("supervisor"), "GET", &format!("/api/v1/tasks/{id}"), None).1["task"].clone()
}

#[test]
fn customers_are_written_to_once_and_answer_with_one_click() {
    let install =
        Command::new(root().join("scripts/smtp-sink.sh")).arg("install").output().expect("smtp-sink.sh");
    assert!(
        install.status.success(),
        "cannot install aiosmtpd: {}",
        String::from_utf8_lossy(&install.stderr)
    );
    let port = free_port();
    let dir = std::env::temp_dir().join(unique("smtp"));
    std::fs::create_dir_all(&dir).unwrap();
    // A DKIM key for the run (RSA, PKCS#1 PEM) and its public half as DNS would publish it.
    let key = dir.join("dkim.pem");
    let made = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out", key.to_str().unwrap(), "2048"])
        .output();
    assert!(made.is_ok_and(|o| o.status.success()), "openssl genrsa");
    let der = Command::new("openssl")
        .args(["rsa", "-in", key.to_str().unwrap(), "-pubout", "-outform", "DER"])
        .output()
        .expect("openssl rsa");
    use base64::Engine as _;
    let public = base64::engine::general_purpose::STANDARD.encode(&der.stdout);
    // The relay is down as the demo starts: its e-mails wait and are retried.
    let smtp = format!("127.0.0.1:{port}");
    let d = Demo::start_with(
        None,
        1_800,
        &["--customers", "150", "--smtp", &smtp, "--dkim-key", key.to_str().unwrap()],
    );
    wait_until("a retried delivery", Duration::from_secs(60), || {
        let (_, text) = http_get(&d.address, "/metrics").ok()?;
        text.lines()
            .any(|l| l.starts_with("callahead_emails_total") && l.contains("result=\"retried\""))
            .then_some(())
    });
    // Meanwhile the API works.
    assert_eq!(d.call(Some("fraud-agent"), "GET", "/api/v1/tasks?queue=fraud", None).0, 200);
    let sink = Sink::start(port, &dir.join("maildir"));

    // Anna Petrova (s001, Russian): the impossible-travel confirmation.
    let anna = wait_until("Anna's e-mail", Duration::from_secs(90), || {
        sink.messages().into_iter().find(|m| m.header("to").contains("anna.petrova@example.com"))
    });
    assert!(anna.header("subject").contains("45.00 EUR"), "{:?}", anna.headers);
    assert!(anna.header("subject").starts_with("Вы совершали"), "Russian: {}", anna.header("subject"));
    assert!(anna.header("message-id").contains(".fraud_confirmation@"), "{:?}", anna.headers);
    assert!(!anna.header("message-id").contains("tsk_"), "an opaque Message-ID: {:?}", anna.headers);
    assert!(anna.text.contains("…p-k1") && !anna.text.contains("pp-k1"), "the card masked: {}", anna.text);
    assert!(anna.text.contains("Musee d'Orsay") && anna.html.contains("<a href="), "both parts");
    assert!(anna.text.contains("обороте карты"), "the trusted channel");
    assert!(anna.header("dkim-signature").contains("d=callahead.local"), "{:?}", anna.headers);
    let verified = Command::new(root().join("scripts/smtp-sink.sh"))
        .args(["verify-dkim", anna.path.to_str().unwrap(), &public])
        .output()
        .expect("verify-dkim");
    assert!(verified.status.success(), "DKIM: {}", String::from_utf8_lossy(&verified.stdout));
    let links = anna.links();
    assert_eq!(links.len(), 2, "{links:?}");
    let (yes, no) = (path_of(&links[0]), path_of(&links[1]));

    // Every e-mail once, even after retries.
    std::thread::sleep(Duration::from_secs(3));
    let ids: Vec<String> = sink.messages().iter().map(|m| m.header("message-id").to_string()).collect();
    let mut unique_ids = ids.clone();
    unique_ids.sort();
    unique_ids.dedup();
    assert_eq!(ids.len(), unique_ids.len(), "a message arrived twice: {ids:?}");

    // The decision is on the task, and suppressed e-mails say why.
    let (_, page) = d.call(Some("supervisor"), "GET", "/api/v1/tasks?customer_id=s001&status=open", None);
    let id = page["items"][0]["id"].as_str().unwrap().to_string();
    let t = task(&d, &id);
    let sent = t["work"]["outreach"].as_array().unwrap();
    assert!(
        sent.iter()
            .any(|o| o["decision"] == "sent" && o["reason"].as_str().unwrap().contains("a***@example.com")),
        "{sent:?}"
    );
    let (_, all) = d.call(Some("supervisor"), "GET", "/api/v1/tasks?limit=200", None);
    let suppressed: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| {
            task(&d, t["id"].as_str().unwrap())["work"]["outreach"].as_array().cloned().unwrap_or_default()
        })
        .filter(|o| o["decision"] == "suppressed")
        .map(|o| o["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(
        suppressed.iter().any(|r| r.contains("no e-mail address")),
        "profiles never received: {suppressed:?}"
    );

    // GET and HEAD only show; the task does not change.
    let before = task(&d, &id)["version"].clone();
    let (status, headers, _) = http(&d.address, "GET", &yes, None, None);
    assert_eq!(status, 200);
    assert!(
        headers.contains("cache-control: no-store") && headers.contains("referrer-policy: no-referrer"),
        "{headers}"
    );
    assert!(headers.contains("content-security-policy: default-src 'none'"), "{headers}");
    assert_eq!(http(&d.address, "HEAD", &yes, None, None).0, 200);
    assert_eq!(task(&d, &id)["version"], before, "a GET or HEAD changes nothing");

    // Forged, altered and unknown links: one neutral page, one status.
    let mut altered = yes.clone();
    altered.pop();
    altered.push(if yes.ends_with('A') { 'B' } else { 'A' });
    let neutral = |p: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", &format!("http://{}{p}", d.address)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let forged = neutral(&altered);
    assert!(forged.ends_with("404") && !forged.contains("Anna") && !forged.contains("45.00"), "{forged}");
    assert_eq!(neutral("/r/k.AAAA.BBBB"), forged, "every bad link looks the same");

    // "Yes, that was me" by POST: the customer's word (`customer_confirmed`), not an agent's
    // `legitimate`.
    let (status, _, _) = http(&d.address, "POST", &yes, None, Some(""));
    assert_eq!(status, 200);
    let t = wait_until("the answer applied", Duration::from_secs(10), || {
        let t = task(&d, &id);
        (t["status"] == "resolved").then_some(t)
    });
    assert_eq!(
        (t["outcome"].as_str(), t["work"]["resolved_by"].as_str()),
        (Some("customer_confirmed"), Some("customer"))
    );
    assert_eq!(t["work"]["customer_answer"]["answer"], "yes");
    let reused = neutral(&yes);
    assert_eq!(reused, forged, "a used link is neutral");
    // Whoever clicked "yes" may not be the customer: the "no" beside it still reaches a person,
    // on a new priority-1 fraud task that names the closed one.
    assert_eq!(http(&d.address, "POST", &no, None, Some("")).0, 200);
    let reported = wait_until("the later \"no\" on a new task", Duration::from_secs(10), || {
        let (_, page) =
            d.call(Some("supervisor"), "GET", "/api/v1/tasks?customer_id=s001&queue=fraud&status=open", None);
        page["items"]
            .as_array()?
            .iter()
            .find(|t| t["id"] != id.as_str())
            .map(|t| t["id"].as_str().unwrap().to_string())
    });
    let r = task(&d, &reported);
    assert_eq!(r["priority"], 1);
    assert!(r["context"]["earlier_tasks"].as_array().unwrap().iter().any(|e| e["id"] == id.as_str()), "{r}");
    assert_eq!(task(&d, &id)["work"]["customer_answer"]["answer"], "no", "recorded on the closed task too");
    assert_eq!(neutral(&no), forged, "and now used");

    // Ivan Sokolov (s009): "No, it wasn't me" → priority 1, block the card first, a follow-up.
    let ivan = wait_until("Ivan's e-mail", Duration::from_secs(60), || {
        sink.messages().into_iter().find(|m| m.header("to").contains("ivan.sokolov@example.com"))
    });
    let no = path_of(&ivan.links()[1]);
    assert_eq!(http(&d.address, "POST", &no, None, Some("")).0, 200);
    let (_, page) = d.call(Some("supervisor"), "GET", "/api/v1/tasks?customer_id=s009", None);
    let ivan_task = page["items"][0]["id"].as_str().unwrap().to_string();
    let t = wait_until("Ivan's answer applied", Duration::from_secs(10), || {
        let t = task(&d, &ivan_task);
        (t["work"]["customer_answer"]["answer"] == "no").then_some(t)
    });
    assert_eq!(t["priority"], 1);
    assert_eq!(t["context"]["actions"][0], "block_card");
    let follow_up = wait_until("the follow-up", Duration::from_secs(30), || {
        sink.messages().into_iter().find(|m| {
            m.header("message-id").contains(".fraud_followup@")
                && m.header("to").contains("ivan.sokolov@example.com")
        })
    });
    assert!(
        follow_up.text.contains("asked for your card") || follow_up.text.contains("запросили блокировку")
    );
    assert!(
        follow_up.text.contains("специалист") || follow_up.text.contains("specialist"),
        "{}",
        follow_up.text
    );

    let _ = std::fs::remove_dir_all(&dir);
}

/// The policy in `callahead serve` (real broker, SQLite, the SMTP sink): the relay is down at
/// first, so deliveries are retried while events keep opening tasks; once it is up each e-mail
/// arrives exactly once. A fraud confirmation is a service message (sent without consent); a care
/// e-mail without consent is suppressed; one in the customer's quiet hours is deferred, then sent
/// when they end; one over the contact-fatigue cap (1 a day here, across queues) is suppressed;
/// after a one-click unsubscribe (RFC 8058 POST) the next care e-mail is suppressed. Every
/// decision is on its task with its reason, and counted by reason in the metrics.
#[tokio::test(flavor = "multi_thread")]
async fn serve_applies_consent_quiet_hours_and_the_cap_and_survives_an_smtp_outage() {
    use callahead::store::TaskStore;
    use callahead::time::{Timestamp, MINUTE};
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::FutureProducer;

    use crate::common::temp_sqlite;
    use crate::serve::{create_topics, produce_lines, sum, Service};

    let install =
        Command::new(root().join("scripts/smtp-sink.sh")).arg("install").output().expect("smtp-sink.sh");
    assert!(install.status.success(), "aiosmtpd: {}", String::from_utf8_lossy(&install.stderr));
    let dir = std::env::temp_dir().join(unique("smtp-serve"));
    // The default rules, with two care rules that fire on one event (or three) also writing to
    // the customer, so the policy can be driven event by event.
    let rules = dir.join("rules");
    std::fs::create_dir_all(rules.join("outreach")).unwrap();
    for entry in std::fs::read_dir(root().join("rules/outreach")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, rules.join("outreach").join(path.file_name().unwrap())).unwrap();
    }
    std::fs::copy(root().join("rules/fraud.toml"), rules.join("fraud.toml")).unwrap();
    let care = std::fs::read_to_string(root().join("rules/care.toml")).unwrap();
    let mut edited = care.clone();
    for id in ["complaint_escalation", "repeat_contact"] {
        let line = format!("id = \"{id}\"\n");
        edited = edited.replacen(&line, &format!("{line}outreach = {{ template = \"care_callback\" }}\n"), 1);
    }
    assert_ne!(edited, care);
    std::fs::write(rules.join("care.toml"), edited).unwrap();

    // Quiet hours (UTC customers) from two hours ago until a minute boundary 75–135 s ahead.
    let now_ms = callahead::api::now().0;
    let minute_of_day = |ms: i64| (ms / MINUTE).rem_euclid(24 * 60);
    let quiet_end_ms = (now_ms + 75_000).div_euclid(MINUTE) * MINUTE + MINUTE;
    let hhmm = |m: i64| format!("{:02}:{:02}", m / 60, m % 60);
    let quiet =
        format!("{}-{}", hhmm(minute_of_day(now_ms - 120 * MINUTE)), hhmm(minute_of_day(quiet_end_ms)));

    let port = free_port();
    let smtp_port = port.to_string();
    let prefix = unique("mailpolicy");
    let topics = create_topics(&prefix).await;
    let store_url = temp_sqlite("mailpolicy");
    const CARE: &str = "cah_test_token_of_cat_care_agent";
    const FRAUD: &str = "cah_test_token_of_fox_fraud_agent";
    let tokens = format!(
        "cat:care_agent:{},fox:fraud_agent:{}",
        callahead::api::auth::hash_token(CARE),
        callahead::api::auth::hash_token(FRAUD)
    );
    let service = Service::start_with(
        crate::common::broker(),
        &topics,
        &prefix,
        &store_url,
        &[
            ("CALLAHEAD_RULES_DIR", rules.to_str().unwrap()),
            ("CALLAHEAD_API_TOKENS", &tokens),
            ("CALLAHEAD_OUTREACH_ENABLED", "true"),
            ("CALLAHEAD_OUTREACH_SMTP_HOST", "127.0.0.1"),
            ("CALLAHEAD_OUTREACH_SMTP_PORT", &smtp_port),
            ("CALLAHEAD_OUTREACH_SMTP_TLS", "none"),
            ("CALLAHEAD_OUTREACH_LINK_KEYS", "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
            ("CALLAHEAD_OUTREACH_QUIET_HOURS", &quiet),
            ("CALLAHEAD_OUTREACH_DEFAULT_TIMEZONE", "UTC"),
            ("CALLAHEAD_OUTREACH_MAX_PER_DAY", "1"),
            ("CALLAHEAD_OUTREACH_POLL_MS", "200"),
        ],
    );
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", crate::common::broker()).create().expect("producer");
    let store = TaskStore::connect(&store_url).await.expect("store");

    // Events, stamped minutes ago.
    let at = |minutes_ago: i64| Timestamp(now_ms - minutes_ago * MINUTE).to_string();
    let mut n = 0;
    let mut event = |customer: &str, minutes_ago: i64, kind: &str, body: Value| -> String {
        n += 1;
        let mut body = body;
        let fields = body.as_object_mut().unwrap();
        fields.insert("event_id".into(), Value::from(format!("{customer}-{n}")));
        fields.insert("type".into(), Value::from(kind));
        fields.insert("customer_id".into(), Value::from(customer));
        fields.insert("ts".into(), Value::from(at(minutes_ago)));
        body.to_string()
    };
    let profile =
        |e: &mut dyn FnMut(&str, i64, &str, Value) -> String, id: &str, consent: bool, zone: &str| {
            e(
                id,
                60,
                "customer_profile",
                serde_json::json!({"name": format!("Customer {id}"), "email": format!("{id}@example.com"),
                "language": "en", "segment": "private", "timezone": zone, "consent": {"email": consent},
                "home": {"country": "FR", "city": "Paris", "lat": 48.86, "lon": 2.35}}),
            )
        };
    let card = |e: &mut dyn FnMut(&str, i64, &str, Value) -> String,
                id: &str,
                ago: i64,
                city: (&str, &str, f64, f64)| {
        e(
            id,
            ago,
            "card_transaction",
            serde_json::json!({"card_id": format!("card-{id}-4242"), "amount": "45.00", "currency": "EUR",
                "channel": "card_present", "status": "approved",
                "merchant": {"name": "Shop", "mcc": "5411", "country": city.0, "city": city.1,
                             "lat": city.2, "lon": city.3}}),
        )
    };
    let paris = ("FR", "Paris", 48.86, 2.35);
    let tokyo = ("JP", "Tokyo", 35.68, 139.69);
    let complaint = |e: &mut dyn FnMut(&str, i64, &str, Value) -> String, id: &str, ago: i64| {
        e(id, ago, "complaint", serde_json::json!({"category": "fees", "severity": "high", "text": "…"}))
    };
    // Customers in a zone where it is not quiet now (UTC-12), apart from `quiet`.
    let far = "Etc/GMT+12";
    let first = vec![
        profile(&mut event, "nocon", false, far),
        card(&mut event, "nocon", 40, paris),
        card(&mut event, "nocon", 10, tokyo),
        complaint(&mut event, "nocon", 5),
        profile(&mut event, "capped", true, far),
        card(&mut event, "capped", 40, paris),
        card(&mut event, "capped", 10, tokyo),
        profile(&mut event, "unsub", true, far),
        complaint(&mut event, "unsub", 5),
        profile(&mut event, "quiet", true, "UTC"),
        complaint(&mut event, "quiet", 5),
    ];
    produce_lines(&producer, &topics.events, &first).await;

    // The relay is down: deliveries are retried, and meanwhile new events still open tasks.
    wait_until("a retried delivery", Duration::from_secs(60), || {
        (sum(&service.metrics(), "callahead_emails_total", Some(("result", "retried"))) > 0.0).then_some(())
    });
    let flow = vec![
        profile(&mut event, "flow", true, far),
        card(&mut event, "flow", 40, paris),
        card(&mut event, "flow", 10, tokyo),
    ];
    produce_lines(&producer, &topics.events, &flow).await;
    let tasks_of = |customer: &'static str| {
        let store = store.clone();
        async move {
            let mut found = Vec::new();
            for (id, _) in store.task_versions().await.expect("tasks") {
                let row = store.task_row(&id).await.expect("task").expect("listed task");
                if row.customer_id == customer {
                    found.push(serde_json::from_str::<Value>(&row.body).unwrap());
                }
            }
            found
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while tasks_of("flow").await.is_empty() {
        assert!(Instant::now() < deadline, "events stopped flowing while the relay was down");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(sum(&service.metrics(), "callahead_emails_total", Some(("result", "sent"))), 0.0);

    let sink = Sink::start(port, &dir.join("maildir"));
    let mail_to = |who: &str| -> Vec<Mail> {
        sink.messages()
            .into_iter()
            .filter(|m| m.header("to").contains(&format!("{who}@example.com")))
            .collect()
    };
    let arrives = |who: &'static str| {
        wait_until(&format!("{who}'s e-mail"), Duration::from_secs(60), || mail_to(who).into_iter().next())
    };
    // A fraud confirmation is a service message: sent without consent.
    let nocon = arrives("nocon");
    assert!(nocon.header("message-id").contains(".fraud_confirmation@"), "{:?}", nocon.headers);
    assert!(nocon.header("list-unsubscribe").is_empty(), "a service message has no unsubscribe");
    arrives("flow");
    let capped = arrives("capped");
    assert!(capped.header("message-id").contains(".fraud_confirmation@"));
    let unsub = arrives("unsub");
    assert!(unsub.header("message-id").contains(".care_callback@"));
    assert_eq!(unsub.header("list-unsubscribe-post"), "List-Unsubscribe=One-Click");

    // The decisions on the tasks.
    let decisions = |tasks: &[Value], queue: &str| -> Vec<(String, String)> {
        tasks
            .iter()
            .filter(|t| t["queue"] == queue)
            .flat_map(|t| t["work"]["outreach"].as_array().cloned().unwrap_or_default())
            .map(|o| (o["decision"].as_str().unwrap().to_string(), o["reason"].as_str().unwrap().to_string()))
            .collect()
    };
    let until = |who: &'static str, queue: &'static str, decision: &'static str| async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let tasks = tasks_of(who).await;
            let found = decisions(&tasks, queue);
            if let Some((_, reason)) = found.iter().find(|(d, _)| d == decision) {
                return reason.clone();
            }
            assert!(Instant::now() < deadline, "{who}: no `{decision}` on the {queue} task: {found:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let reason = until("nocon", "care", "suppressed").await;
    assert!(reason.contains("consent"), "{reason}");
    assert!(until("nocon", "fraud", "sent").await.contains("n***@example.com"));

    // "No, it wasn't me" from flow's e-mail: the page says what was done.
    let flow_mail = mail_to("flow").into_iter().next().unwrap();
    let (status, _, page) =
        crate::common::http_text(&service.http, "POST", &path_of(&flow_mail.links()[1]), None, Some(""));
    assert_eq!(status, 200);
    assert!(page.contains("We have asked for your card to be blocked"), "{page}");

    // nocon's fraud task resolved by an agent: its links are void. The "yes" page says the
    // matter is closed and does nothing; a "no" still reaches a person.
    let fraud_task = tasks_of("nocon").await.into_iter().find(|t| t["queue"] == "fraud").unwrap();
    let fraud_id = fraud_task["id"].as_str().unwrap().to_string();
    for (action, body) in
        [("claim", None), ("resolve", Some(r#"{"outcome":"legitimate","note":"spoke to them"}"#))]
    {
        let (status, _, reply) =
            http(&service.http, "POST", &format!("/api/v1/tasks/{fraud_id}/{action}"), Some(FRAUD), body);
        assert!(status == 200 || status == 202, "{action}: {status} {reply}");
    }
    let nocon_mail = mail_to("nocon").into_iter().next().unwrap();
    let (yes, no) = (path_of(&nocon_mail.links()[0]), path_of(&nocon_mail.links()[1]));
    let closed = wait_until("the links voided", Duration::from_secs(30), || {
        let (status, _, page) = crate::common::http_text(&service.http, "GET", &yes, None, None);
        (status == 200 && page.contains("already been closed")).then_some(page)
    });
    assert!(!closed.contains("<form"), "a closed matter offers no \"yes\": {closed}");
    let (_, _, page) = crate::common::http_text(&service.http, "POST", &yes, None, Some(""));
    assert!(page.contains("already been closed"), "{page}");
    let (_, _, page) = crate::common::http_text(&service.http, "GET", &no, None, None);
    assert!(page.contains("already been closed") && page.contains("<form"), "{page}");
    assert_eq!(http(&service.http, "POST", &no, None, Some("")).0, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    let reported = loop {
        let tasks = tasks_of("nocon").await;
        if let Some(t) = tasks.into_iter().find(|t| t["queue"] == "fraud" && t["id"] != fraud_id.as_str()) {
            break t;
        }
        assert!(Instant::now() < deadline, "the customer's \"no\" on a closed task opened no task");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!((reported["priority"].as_i64(), reported["status"].as_str()), (Some(1), Some("open")));
    let old = tasks_of("nocon").await.into_iter().find(|t| t["id"] == fraud_id.as_str()).unwrap();
    assert_eq!(
        (old["outcome"].as_str(), old["work"]["customer_answer"]["answer"].as_str()),
        (Some("legitimate"), Some("no"))
    );

    // A relay's permanent refusal (550, quoting the address): not retried, and recorded on the
    // task and in the log without the address or the name.
    const BOUNCE: &str = "zelda.quincey@reject.example";
    const NAME: &str = "Zelda Quincey-Marchbanks";
    let bounce = vec![
        event(
            "bounce",
            60,
            "customer_profile",
            serde_json::json!({"name": NAME, "email": BOUNCE, "language": "en", "segment": "private",
                "timezone": far, "consent": {"email": true},
                "home": {"country": "FR", "city": "Paris", "lat": 48.86, "lon": 2.35}}),
        ),
        card(&mut event, "bounce", 40, paris),
        card(&mut event, "bounce", 10, tokyo),
    ];
    produce_lines(&producer, &topics.events, &bounce).await;
    let reason = until("bounce", "fraud", "failed").await;
    assert!(reason.contains("not retried") && reason.contains("550"), "{reason}");
    assert!(!reason.contains("zelda") && !reason.contains("reject.example"), "{reason}");
    let jobs = store.jobs_of_task(tasks_of("bounce").await[0]["id"].as_str().unwrap()).await.unwrap();
    assert_eq!(jobs[0].attempts, 1, "a permanent refusal is tried once");
    let log = service.log_text();
    assert!(log.contains("giving up"), "the failure is logged");
    for secret in ["zelda", "Zelda", "reject.example", "Marchbanks"] {
        assert!(!log.contains(secret), "`{secret}` in the service log");
    }

    // One team a day, in the same second: a fraud and a care e-mail queued by one batch, in
    // both orders (fraud first for `same_f`, care first for `same_c`). The care e-mail never
    // goes beside the fraud one, whichever the sender looks at first.
    let same = vec![
        profile(&mut event, "same_f", true, far),
        card(&mut event, "same_f", 40, paris),
        card(&mut event, "same_f", 10, tokyo),
        complaint(&mut event, "same_f", 5),
        profile(&mut event, "same_c", true, far),
        complaint(&mut event, "same_c", 12),
        card(&mut event, "same_c", 40, paris),
        card(&mut event, "same_c", 10, tokyo),
    ];
    produce_lines(&producer, &topics.events, &same).await;
    for who in ["same_f", "same_c"] {
        arrives(who);
        let deadline = Instant::now() + Duration::from_secs(60);
        let reason = loop {
            assert!(Instant::now() < deadline, "{who}: no decision on the care e-mail");
            let tasks = tasks_of(who).await;
            let found = decisions(&tasks, "care");
            if let Some((d, r)) = found.iter().find(|(d, _)| d != "pending") {
                assert_ne!(d, "sent", "{who}: a care e-mail went beside the fraud one: {r}");
                if d == "suppressed" || d == "deferred" {
                    break r.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert!(reason.contains("one team a day") || reason.contains("contact cap"), "{who}: {reason}");
    }

    // Both blocks are on the actions topic, once each, keyed by customer, with the card's token.
    let reader: rdkafka::consumer::StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", crate::common::broker())
        .set("group.id", unique("card-system"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    rdkafka::consumer::Consumer::subscribe(&reader, &[topics.actions.as_str()]).expect("subscribe");
    let mut seen: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet_until = None;
    // Until both arrived, then three seconds more: a doubled one would show.
    while quiet_until.is_none_or(|t| Instant::now() < t) {
        assert!(Instant::now() < deadline, "the actions topic holds {seen:?}");
        if seen.len() >= 2 && quiet_until.is_none() {
            quiet_until = Some(Instant::now() + Duration::from_secs(3));
        }
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_secs(1), reader.recv()).await {
            use rdkafka::message::{Headers, Message};
            let action: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
            assert_eq!(m.key().unwrap(), action["customer_id"].as_str().unwrap().as_bytes());
            let header = m.headers().unwrap().iter().find(|h| h.key == "action_id").unwrap();
            assert_eq!(header.value.unwrap(), action["action_id"].as_str().unwrap().as_bytes());
            seen.push(action);
        }
    }
    let mut customers: Vec<&str> = seen.iter().map(|a| a["customer_id"].as_str().unwrap()).collect();
    customers.sort();
    assert_eq!(customers, ["flow", "nocon"], "one block each, none doubled: {seen:?}");
    for a in &seen {
        let who = a["customer_id"].as_str().unwrap();
        assert_eq!(a["card_token"], format!("card-{who}-4242"));
        assert_eq!(
            (a["action"].as_str(), a["reason"].as_str()),
            (Some("block_card"), Some("customer_reported_fraud"))
        );
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(root().join("docs/actions.schema.json")).unwrap())
                .unwrap();
        for field in schema["required"].as_array().unwrap() {
            assert!(!a[field.as_str().unwrap()].is_null(), "{field} missing from {a}");
        }
    }
    assert!(sum(&service.metrics(), "callahead_card_actions_total", None) >= 2.0);

    // The cap counts the fraud e-mail already sent today: a care e-mail is one too many.
    produce_lines(&producer, &topics.events, &[complaint(&mut event, "capped", 1)]).await;
    let reason = until("capped", "care", "suppressed").await;
    assert!(reason.contains("contact cap") && reason.contains("24 h"), "{reason}");

    // Unsubscribe by one POST; the next care e-mail (a new incident) is suppressed.
    let url = unsub.header("list-unsubscribe").trim_matches(['<', '>']).to_string();
    assert_eq!(http(&service.http, "POST", &path_of(&url), None, Some("List-Unsubscribe=One-Click")).0, 200);
    let (_, _, customer) = http(&service.http, "GET", "/api/v1/customers/unsub", Some(CARE), None);
    assert_eq!(
        customer["profile"]["email_consent"], false,
        "the consent shown is the current one: {customer}"
    );
    let care_task = tasks_of("unsub").await.into_iter().find(|t| t["queue"] == "care").unwrap();
    let path = format!("/api/v1/tasks/{}/resolve", care_task["id"].as_str().unwrap());
    let (status, _, reply) = http(
        &service.http,
        "POST",
        &path,
        Some(CARE),
        Some(r#"{"outcome":"resolved_issue","note":"fees refunded"}"#),
    );
    assert!(status == 200 || status == 202, "resolve: {status} {reply}");
    let contacts: Vec<String> = (0..3)
        .map(|i| {
            event(
                "unsub",
                3 - i,
                "support_contact",
                serde_json::json!({"channel": "phone", "reason": "card_blocked", "resolved": false, "duration_s": 300}),
            )
        })
        .collect();
    produce_lines(&producer, &topics.events, &contacts).await;
    let reason = until("unsub", "care", "suppressed").await;
    assert!(reason.contains("unsubscribed"), "{reason}");

    // Quiet hours: deferred with the local end time, then sent once they are over.
    let reason = until("quiet", "care", "deferred").await;
    assert!(
        reason.contains("quiet hours") && reason.contains(&hhmm(minute_of_day(quiet_end_ms))),
        "{reason}"
    );
    assert!(mail_to("quiet").is_empty(), "sent in quiet hours");
    let quiet_mail =
        wait_until("the deferred e-mail", Duration::from_secs(200), || mail_to("quiet").into_iter().next());
    assert!(callahead::api::now().0 >= quiet_end_ms, "sent before the quiet hours ended");
    assert!(quiet_mail.header("message-id").contains(".care_callback@"));
    until("quiet", "care", "sent").await;

    // Exactly one message per e-mail that was sent, none for the suppressed ones: one each,
    // and for the two who answered "no", the follow-up once.
    std::thread::sleep(Duration::from_secs(2));
    let all = sink.messages();
    for who in ["nocon", "capped", "unsub", "quiet", "flow", "same_f", "same_c"] {
        let ids: Vec<String> = mail_to(who).iter().map(|m| m.header("message-id").to_string()).collect();
        let follow_ups = ids.iter().filter(|id| id.contains(".fraud_followup@")).count();
        let answered_no = who == "nocon" || who == "flow";
        assert_eq!(
            (ids.len() - follow_ups, follow_ups),
            (1, usize::from(answered_no)),
            "{who}: {:?}",
            all.iter().map(|m| m.header("message-id")).collect::<Vec<_>>()
        );
    }
    let m = service.metrics();
    for reason in ["no_consent", "cap_day", "unsubscribed"] {
        assert!(
            sum(&m, "callahead_emails_suppressed_total", Some(("reason", reason))) >= 1.0,
            "callahead_emails_suppressed_total{{reason=\"{reason}\"}}"
        );
    }
    assert!(sum(&m, "callahead_emails_total", Some(("result", "deferred"))) >= 1.0);
    drop(service);
    let _ = std::fs::remove_dir_all(&dir);
}
