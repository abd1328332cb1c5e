//! The `callahead` binary end to end: `rules check` on good and broken rule directories,
//! `replay` on a file with good, duplicate and bad lines, `demo`, and `backtest` (a candidate pack
//! against `rules/`, with and without past outcomes in a store).

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

/// `--allowed-lateness` is the service's `engine.allowed_lateness`: with six hours, an ATM abroad
/// delivered hours late, behind the customer's own later payments at home, is found for every
/// customer; a value that is not a span is refused, naming the option.
#[test]
fn replay_honours_the_allowed_lateness() {
    use callahead::ingest::variations::{self, Kind, VariationSpec};
    let dir = temp_dir("lateness");
    let input = dir.join("late.jsonl");
    let spec =
        VariationSpec { seed: 5, per_kind: 8, ordinary: 5, days: 40, kinds: vec![Kind::LateAtmAbroad] };
    std::fs::write(&input, variations::generate(&spec).lines.join("\n")).unwrap();
    let travels = |lateness: &str| {
        let out = callahead(&["replay", "--input", input.to_str().unwrap(), "--allowed-lateness", lateness]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).lines().filter(|l| l.contains("\"impossible_travel\"")).count()
    };
    assert_eq!(travels("6h"), 8, "every late ATM found");
    let bad = callahead(&["replay", "--input", input.to_str().unwrap(), "--allowed-lateness", "soon"]);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("--allowed-lateness"), "{}", text(&bad.stderr));
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

/// A candidate pack for `backtest`: a copy of `rules/` without `card_testing`, with
/// `amount_anomaly` raised from medium to high, and the generated input with one bad line.
fn backtest_inputs(name: &str) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let dir = temp_dir(name);
    let next = dir.join("next");
    std::fs::create_dir_all(next.join("outreach")).unwrap();
    for entry in std::fs::read_dir(root().join("rules"))
        .unwrap()
        .chain(std::fs::read_dir(root().join("rules/outreach")).unwrap())
    {
        let path = entry.unwrap().path();
        if path.is_file() {
            let relative = path.strip_prefix(root().join("rules")).unwrap();
            std::fs::copy(&path, next.join(relative)).unwrap();
        }
    }
    let fraud = std::fs::read_to_string(next.join("fraud.toml")).unwrap();
    let (a, b) = (
        fraud.find("[[rule]]\nid = \"card_testing\"").expect("card_testing in rules/fraud.toml"),
        fraud.find("[[rule]]\nid = \"account_takeover\"").expect("account_takeover after it"),
    );
    let anomaly = fraud.find("id = \"amount_anomaly\"").unwrap();
    let mut changed = format!("{}{}", &fraud[..a], &fraud[b..]);
    let severity = anomaly + changed[anomaly..].find("severity = \"medium\"").unwrap();
    changed.replace_range(severity..severity + "severity = \"medium\"".len(), "severity = \"high\"");
    std::fs::write(next.join("fraud.toml"), changed).unwrap();
    let g = generate(&StreamSpec { customers: 300, days: 64, seed: 7, scenarios: true, noise: true });
    let mut lines = g.lines.clone();
    lines.insert(100, "{not json".to_string());
    let input = dir.join("events.jsonl");
    std::fs::write(&input, lines.join("\n")).unwrap();
    (dir, next, input)
}

fn rule_of<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["rules"].as_array().unwrap().iter().find(|r| r["rule"] == id).unwrap_or_else(|| panic!("no {id}"))
}

#[test]
fn backtest_reports_gone_rules_changed_priorities_and_counts() {
    let (dir, next, input) = backtest_inputs("backtest");
    let out = callahead(&[
        "backtest",
        "--rules",
        next.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(report["input"]["invalid"], 1);
    assert!(
        report["input"]["invalid_lines"][0].as_str().unwrap().starts_with("line 101: malformed JSON"),
        "{report}"
    );

    let gone = rule_of(&report, "card_testing");
    assert_eq!(gone["status"], "gone");
    assert!(gone["candidate"].is_null());
    assert!(gone["current"]["tasks_opened"].as_u64().unwrap() > 0, "{gone}");
    assert_eq!(gone["tasks_gone"], gone["current"]["tasks_opened"]);

    let anomaly = rule_of(&report, "amount_anomaly");
    assert_eq!(
        (anomaly["current"]["severity"].as_str(), anomaly["candidate"]["severity"].as_str()),
        (Some("medium"), Some("high"))
    );
    assert!(anomaly["priority_changed"].as_u64().unwrap() > 0, "{anomaly}");
    for e in anomaly["priority_examples"].as_array().unwrap() {
        assert!(e["candidate"].as_u64() < e["current"].as_u64(), "more urgent now: {e}");
    }
    assert_eq!(report["priority_changed"], anomaly["priority_changed"]);

    let travel = rule_of(&report, "impossible_travel");
    assert_eq!(travel["status"], "kept");
    assert!(travel["candidate"]["tasks_opened"].as_u64().unwrap() > 0);
    assert!(travel["candidate"]["customers"].as_u64().unwrap() > 0);
    assert_eq!(travel["current"], travel["candidate"], "an unchanged rule does the same");
    let tasks = |pack: &str| report[pack]["tasks"].as_u64().unwrap();
    assert!(tasks("candidate") < tasks("current"), "{report}");
    assert!(report["rules"].as_array().unwrap().iter().all(|r| r["precision"].is_null()), "no --store");

    // The table for people says the same.
    let out = callahead(&["backtest", "--rules", next.to_str().unwrap(), "--input", input.to_str().unwrap()]);
    let table = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(table.lines().any(|l| l.starts_with("card_testing ") && l.contains(" gone ")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("amount_anomaly ") && l.contains("medium→high")), "{table}");

    // A broken candidate is refused with file:line, and nothing is replayed.
    let fraud = std::fs::read_to_string(next.join("fraud.toml")).unwrap();
    std::fs::write(
        dir.join("next/fraud.toml"),
        fraud.replacen("severity = \"high\"", "severity = \"urgent\"", 1),
    )
    .unwrap();
    let out = callahead(&["backtest", "--rules", next.to_str().unwrap(), "--input", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("fraud.toml:"), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("`severity` is `urgent`"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn backtest_reads_precision_from_past_outcomes_in_the_store() {
    use callahead::task::{ChangeKind, Outcome, TaskChange, TaskStatus};
    let (dir, next, input) = backtest_inputs("backtest-store");
    // Past resolved tasks: impossible_travel 2 confirmed, 1 legitimate (and 1 unreachable,
    // left out); amount_anomaly 1 legitimate; nothing for card_testing.
    let rules = callahead::rules::RuleSet::load_dir(&root().join("rules")).unwrap();
    let mut replay = callahead::replay::Replay::new(&rules);
    let g = generate(&StreamSpec { customers: 30, days: 64, seed: 3, scenarios: true, noise: false });
    for (k, line) in g.lines.iter().enumerate() {
        replay.feed(k as u64 + 1, line.as_bytes());
    }
    let (tasks, _) = replay.into_tasks();
    let past = [
        ("impossible_travel", Outcome::ConfirmedFraud),
        ("impossible_travel", Outcome::ConfirmedFraud),
        ("impossible_travel", Outcome::Legitimate),
        ("impossible_travel", Outcome::Unreachable),
        ("amount_anomaly", Outcome::Legitimate),
    ];
    assert!(tasks.len() >= past.len());
    let changes: Vec<TaskChange> = tasks
        .iter()
        .zip(past)
        .map(|(t, (rule, outcome))| {
            let mut t = t.clone();
            t.rules = vec![rule.to_string()];
            t.status = TaskStatus::Resolved;
            t.outcome = Some(outcome);
            t.version += 1;
            TaskChange::by_engine(ChangeKind::Resolved, t, None)
        })
        .collect();
    let url = format!("sqlite://{}", dir.join("tasks.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store = runtime.block_on(callahead::store::TaskStore::connect(&url)).unwrap();
    runtime.block_on(store.write(&changes, &[])).unwrap();
    drop(store);

    let out = callahead(&[
        "backtest",
        "--rules",
        next.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--store",
        &url,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcomes_read"], true);
    let travel = &rule_of(&report, "impossible_travel")["precision"];
    assert_eq!(
        (travel["confirmed"].as_i64(), travel["legitimate"].as_i64(), travel["other"].as_i64()),
        (Some(2), Some(1), Some(1)),
        "{travel}"
    );
    assert!((travel["precision"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9, "{travel}");
    let anomaly = &rule_of(&report, "amount_anomaly")["precision"];
    assert_eq!(anomaly["precision"].as_f64(), Some(0.0), "{anomaly}");
    let testing = &rule_of(&report, "card_testing")["precision"];
    assert!(testing["precision"].is_null() && testing["confirmed"] == 0, "{testing}");

    let out = callahead(&[
        "backtest",
        "--rules",
        next.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--store",
        &url,
    ]);
    let table = text(&out.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("impossible_travel ") && l.ends_with("0.67 (2/3)")),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("card_testing ") && l.ends_with("no outcomes")), "{table}");
}
