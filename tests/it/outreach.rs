//! E-mail to customers against a real SMTP server (aiosmtpd from PyPI, installed and started by
//! `scripts/smtp-sink.sh`), with the demo's engine and store: the relay is down when the demo
//! starts, so the sender retries (events and the API keep working meanwhile), and once the relay
//! is up every e-mail arrives exactly once; the fraud confirmation has the right recipient,
//! language, subject, masked card, a plain-text and an HTML part and a stable Message-ID; its
//! links show a page on GET and HEAD and change nothing, only the button's POST answers; a
//! forged, altered or reused link gets the same neutral page; "yes" resolves the task as
//! legitimate by the customer, "no" makes it priority 1 with a follow-up e-mail; every decision
//! (sent, suppressed with its reason) is on the task; care e-mails carry a one-click unsubscribe
//! that works by POST.

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

    // "Yes, that was me" by POST: resolved as legitimate, by the customer.
    let (status, _, _) = http(&d.address, "POST", &yes, None, Some(""));
    assert_eq!(status, 200);
    let t = wait_until("the answer applied", Duration::from_secs(10), || {
        let t = task(&d, &id);
        (t["status"] == "resolved").then_some(t)
    });
    assert_eq!(
        (t["outcome"].as_str(), t["work"]["resolved_by"].as_str()),
        (Some("legitimate"), Some("customer"))
    );
    assert_eq!(t["work"]["customer_answer"]["answer"], "yes");
    let reused = neutral(&yes);
    assert_eq!(reused, forged, "a used link is neutral");
    assert_eq!(neutral(&no), forged, "its sibling stops working too");

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
        sink.messages().into_iter().find(|m| m.header("message-id").contains(".fraud_followup@"))
    });
    assert!(follow_up.header("to").contains("ivan.sokolov@example.com"));
    assert!(
        follow_up.text.contains("специалист") || follow_up.text.contains("specialist"),
        "{}",
        follow_up.text
    );

    // A care e-mail (when one was sent: consent and the customer's quiet hours decide) has a
    // one-click unsubscribe that works by POST.
    if let Some(care) =
        sink.messages().into_iter().find(|m| m.header("message-id").contains(".care_callback@"))
    {
        assert_eq!(care.header("list-unsubscribe-post"), "List-Unsubscribe=One-Click");
        let url = care.header("list-unsubscribe").trim_matches(['<', '>']).to_string();
        assert_eq!(http(&d.address, "POST", &path_of(&url), None, Some("List-Unsubscribe=One-Click")).0, 200);
        assert_eq!(neutral(&path_of(&url)), forged, "used once");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
