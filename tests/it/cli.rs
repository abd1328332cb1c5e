//! The `callahead` binary end to end: `rules check` on good and broken rule directories,
//! `replay` on a file with good, duplicate and bad lines, and `demo`.

use std::path::Path;
use std::process::{Command, Output};

use callahead::ingest::generator::{generate, StreamSpec};

use crate::common::root;

fn callahead(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callahead"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run callahead")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("callahead-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn rules_check_accepts_the_default_pack() {
    let out = callahead(&["rules", "check", "rules"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("rules OK"), "{}", text(&out.stdout));
}

#[test]
fn rules_check_reports_every_error_with_file_and_line() {
    let dir = temp_dir("bad-rules");
    let good = std::fs::read_to_string(root().join("rules/fraud.toml")).unwrap();
    let broken = good.replacen(r#"severity = "high""#, r#"severity = "urgent""#, 1).replacen(
        "[[rule]]\nid = \"amount_anomaly\"",
        "[[rule]]\nid = \"amount_anomaly\"\nwhen = \"event.country == 42\"",
        1,
    );
    std::fs::write(dir.join("fraud.toml"), &broken).unwrap();
    std::fs::write(
        dir.join("care.toml"),
        "[[rule]]\nid = \"x\"\nqueue = \"care\"\nseverity = \"low\"\ndetector = \"nope\"\n",
    )
    .unwrap();
    let out = callahead(&["rules", "check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let line_of = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let fraud = dir.join("fraud.toml").display().to_string();
    assert!(err.contains(&format!("{fraud}:{}: `severity` is `urgent`", line_of("urgent"))), "{err}");
    assert!(err.contains(&format!("{fraud}:{}: `when`", line_of("event.country == 42"))), "{err}");
    assert!(err.contains("care.toml:5: unknown detector `nope`"), "{err}");
    assert!(err.contains("care.toml:1: missing `title`"), "every error, not just the first: {err}");
}

#[test]
fn replay_writes_tasks_skips_bad_lines_and_is_deterministic() {
    let dir = temp_dir("replay");
    let g = generate(&StreamSpec { customers: 50, days: 64, seed: 5, scenarios: true, noise: true });
    let mut lines = g.lines.clone();
    lines.insert(10, "{not json".to_string());
    lines.insert(
        20,
        r#"{"event_id":"x","type":"teleport","customer_id":"c","ts":"2026-06-01T00:00:00Z"}"#.to_string(),
    );
    lines.insert(
        30,
        r#"{"event_id":"y","type":"card_transaction","customer_id":"c","ts":"2026-06-01T00:00:00Z"}"#
            .to_string(),
    );
    let input = dir.join("events.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let run = |output: &Path| {
        callahead(&[
            "replay",
            "--rules",
            "rules",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ])
    };
    let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    let out = run(&a);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(run(&b).status.success());
    let tasks = std::fs::read(&a).unwrap();
    assert_eq!(tasks, std::fs::read(&b).unwrap(), "byte-identical output");
    let summary = text(&out.stderr);
    assert!(summary.contains("3 invalid (skipped)"), "{summary}");
    assert!(summary.contains("line 11: malformed JSON"), "{summary}");
    assert!(summary.contains("line 21: unknown event type `teleport`"), "{summary}");
    assert!(
        summary.contains("line 31: missing field `card_id` (required for card_transaction)"),
        "{summary}"
    );
    assert!(summary.contains("events/s"), "{summary}");
    let parsed: Vec<serde_json::Value> =
        text(&tasks).lines().map(|l| serde_json::from_str(l).expect("task JSON")).collect();
    assert!(parsed.len() >= 10);
    for t in &parsed {
        for field in [
            "id",
            "customer_id",
            "queue",
            "rules",
            "priority",
            "status",
            "opened_at",
            "due_at",
            "title",
            "explanation",
            "context",
        ] {
            assert!(t.get(field).is_some(), "task lacks `{field}`: {t}");
        }
    }
    assert!(parsed.iter().any(|t| t["rules"].as_array().unwrap().iter().any(|r| r == "impossible_travel")));
}

#[test]
fn replay_to_stdout() {
    let dir = temp_dir("stdout");
    let input = dir.join("one.jsonl");
    std::fs::write(&input, r#"{"event_id":"1","type":"complaint","customer_id":"c1","ts":"2026-06-01T10:00:00+03:00","category":"fees","severity":"high"}"#).unwrap();
    let out = callahead(&["replay", "--input", input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let task: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(task["rules"], serde_json::json!(["complaint_escalation"]));
    assert_eq!(task["opened_at"], "2026-06-01T07:00:00.000Z");
}

#[test]
fn demo_runs_with_no_external_service_and_finds_every_scenario() {
    let dir = temp_dir("demo");
    let emitted = dir.join("demo.jsonl");
    let out = callahead(&[
        "demo",
        "--customers",
        "100",
        "--days",
        "64",
        "--show",
        "3",
        "--no-serve",
        "--emit-events",
        emitted.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(!stdout.contains("MISS"), "{stdout}");
    assert!(stdout.contains("[P1 fraud]"), "{stdout}");
    assert!(std::fs::metadata(&emitted).unwrap().len() > 100_000);
}

#[test]
fn tokens_are_printed_once_and_stored_as_hashes() {
    let dir = temp_dir("tokens");
    let url = format!("sqlite://{}", dir.join("tasks.db").display());
    let tokens = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_callahead"))
            .arg("tokens")
            .args(args)
            .env("CALLAHEAD_STORE_URL", &url)
            .current_dir(root())
            .output()
            .expect("run callahead tokens")
    };
    let out = tokens(&["create", "--role", "care_agent", "--name", "maria"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = text(&out.stdout).trim().to_string();
    assert!(token.starts_with("cah_") && token.len() == 68, "{token}");
    assert!(text(&out.stderr).contains("shown once"));
    let hash = callahead::api::auth::hash_token(&token);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store = runtime.block_on(callahead::store::TaskStore::connect(&url)).unwrap();
    let row = runtime.block_on(store.token(&hash)).unwrap().expect("stored by hash");
    assert_eq!((row.name.as_str(), row.role.as_str(), row.revoked), ("maria", "care_agent", false));
    let raw = std::fs::read(dir.join("tasks.db")).unwrap();
    assert!(!raw.windows(token.len()).any(|w| w == token.as_bytes()), "the token itself is never stored");

    let bad = tokens(&["create", "--role", "pilot", "--name", "x"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("not a role"), "{}", text(&bad.stderr));
    let revoked = tokens(&["revoke", "--name", "maria"]);
    assert!(text(&revoked.stdout).contains("revoked 1"), "{}", text(&revoked.stdout));
    assert!(runtime.block_on(store.token(&hash)).unwrap().unwrap().revoked);
}
