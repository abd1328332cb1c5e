//! Every text a task carries is in the task's language, complete: generated streams (every
//! scenario, once as generated and once with every customer's language swapped, so each is seen
//! in English and in Russian) replayed through the default rules with the shadow rules made
//! live; then every rule's title, explanation, script and script variants, and every complaint
//! procedure, rendered again in every supported language against every signal the replay
//! produced. No unfilled placeholder, no `?` for a missing value, no Cyrillic in English, and no
//! Latin letters in Russian except data that came with the events (merchants, cities, names,
//! card and device ids, banks, currency and country codes, a complaint category the playbook
//! does not know).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use callahead::detect::{masked_card, Fact, Signal};
use callahead::incident::{complaint_category, procedure, render_in, render_texts};
use callahead::ingest::generator::{generate, StreamSpec};
use callahead::phrases::{self, LANGUAGES};
use callahead::replay::Replay;
use callahead::rules::{Mode, RuleSet};
use callahead::task::Task;
use serde_json::Value;

use crate::common::rules;

struct Run {
    rules: RuleSet,
    tasks: Vec<Task>,
    /// Data values from the events, longest first.
    data: Vec<String>,
}

/// The default rules with every shadow rule live, so their texts reach tasks too.
fn all_live() -> RuleSet {
    let mut set = rules().clone();
    for rule in &mut set.rules {
        rule.mode = Mode::Live;
    }
    set
}

fn replay(set: &RuleSet, lines: &[String]) -> Vec<Task> {
    let mut r = Replay::new(set);
    for (i, line) in lines.iter().enumerate() {
        r.feed(i as u64 + 1, line.as_bytes());
    }
    r.into_tasks().0
}

/// The same line with the customer's language swapped (English ↔ Russian).
fn swap_language(line: &str) -> String {
    line.replace("\"language\":\"en\"", "\"language\":\"@\"")
        .replace("\"language\":\"ru\"", "\"language\":\"en\"")
        .replace("\"language\":\"@\"", "\"language\":\"ru\"")
}

/// Every value that came with the events and may be shown as it came.
fn data_values(lines: &[String], set: &RuleSet) -> Vec<String> {
    let mut data = BTreeSet::new();
    let add = |data: &mut BTreeSet<String>, v: &Value| {
        if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
            data.insert(s.to_string());
        }
    };
    for line in lines {
        let e: Value = serde_json::from_str(line).unwrap();
        for key in ["customer_id", "name", "card_id", "currency", "device_id", "counterparty_bank"] {
            add(&mut data, &e[key]);
        }
        for place in ["merchant", "geo", "home"] {
            for key in ["name", "city", "country"] {
                add(&mut data, &e[place][key]);
            }
        }
        if let Some(card) = e["card_id"].as_str() {
            data.insert(masked_card(card));
        }
        for c in e["countries"].as_array().into_iter().flatten() {
            add(&mut data, c);
        }
        // Codes nobody has put into words are shown as they came.
        if let Some(category) = e["category"].as_str().filter(|c| !set.playbook.knows(c)) {
            data.insert(category.to_string());
        }
        if let Some(reason) = e["reason"].as_str().filter(|r| !phrases::knows("reason", r)) {
            data.insert(reason.to_string());
        }
        if let Some(product) = e["product"].as_str().filter(|p| !phrases::knows("product", p)) {
            data.insert(product.to_string());
        }
    }
    let mut data: Vec<String> = data.into_iter().collect();
    data.sort_by_key(|d| std::cmp::Reverse(d.chars().count()));
    data
}

fn run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let g = generate(&StreamSpec { customers: 120, days: 75, seed: 31, scenarios: true, noise: true });
        let swapped: Vec<String> = g.lines.iter().map(|l| swap_language(l)).collect();
        let set = all_live();
        let mut tasks = replay(&set, &g.lines);
        tasks.extend(replay(&set, &swapped));
        let data = data_values(&g.lines, &set);
        Run { rules: set, tasks, data }
    })
}

/// What is wrong with `text` as a text in `language`, if anything.
fn problem(language: &str, text: &str, data: &[String]) -> Option<String> {
    if text.trim().is_empty() {
        return Some("empty".to_string());
    }
    if text.contains('{') || text.contains('}') {
        return Some("an unfilled placeholder".to_string());
    }
    // A value the signal did not carry renders as a `?` standing alone.
    let chars: Vec<char> = text.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        let before = if i == 0 { ' ' } else { chars[i - 1] };
        if *c == '?' && !(before.is_alphanumeric() || matches!(before, '»' | '"' | ')' | '.')) {
            return Some("a missing value (`?`)".to_string());
        }
    }
    match language {
        "ru" => {
            let rest = data.iter().fold(text.to_string(), |t, d| t.replace(d.as_str(), " "));
            let latin: Vec<&str> =
                rest.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty()).collect();
            (!latin.is_empty()).then(|| format!("Latin words in a Russian text: {latin:?}"))
        }
        "en" => text
            .chars()
            .any(|c| ('\u{400}'..='\u{4ff}').contains(&c))
            .then(|| "Cyrillic in an English text".to_string()),
        other => Some(format!("language `{other}` is not supported")),
    }
}

/// Every text a task carries, with where it is.
fn texts_of(task: &Task) -> Vec<(String, &str)> {
    let c = &task.context;
    let mut texts = vec![
        ("title".to_string(), task.title.as_str()),
        ("explanation".to_string(), task.explanation.as_str()),
        ("script".to_string(), c.script.as_str()),
    ];
    for s in &task.signals {
        texts.push((format!("signal {} explanation", s.rule), s.explanation.as_str()));
    }
    for e in &c.events {
        texts.push((format!("evidence {}", e.at), e.summary.as_str()));
    }
    for h in &c.recent_history {
        texts.push((format!("history {}", h.at), h.summary.as_str()));
    }
    for t in c.earlier_tasks.iter().chain(&c.open_in_other_queue) {
        texts.push((format!("other task {}", t.id), t.title.as_str()));
    }
    if let Some(p) = &c.procedure {
        texts.push(("procedure name".to_string(), p.name.as_str()));
        texts.push(("procedure script".to_string(), p.script.as_str()));
        for (i, step) in p.steps.iter().enumerate() {
            texts.push((format!("procedure step {}", i + 1), step.as_str()));
        }
    }
    texts
}

#[test]
fn every_text_of_every_task_is_in_the_tasks_language() {
    let run = run();
    let languages: BTreeSet<&str> = run.tasks.iter().map(|t| t.context.language.as_str()).collect();
    assert_eq!(languages, LANGUAGES.into_iter().collect(), "both languages occur");
    let mut problems = Vec::new();
    for task in &run.tasks {
        for (what, text) in texts_of(task) {
            if let Some(p) = problem(&task.context.language, text, &run.data) {
                problems.push(format!(
                    "{} ({}, {}) {what}: {p}\n    {text}",
                    task.id, task.customer_id, task.context.language
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

/// A task's signal as the detector gave it (its facts, as the task keeps them).
fn signal_of(record: &callahead::task::SignalRecord) -> Signal {
    let facts = record
        .facts
        .iter()
        .filter_map(|(name, v)| match v {
            Value::Number(n) => Some((*name, Fact::Num(n.as_f64()?))),
            Value::String(s) => Some((*name, Fact::Text(s.clone()))),
            _ => None,
        })
        .collect();
    Signal { at: record.at, facts, evidence: Vec::new(), money_at_risk_eur: 0.0 }
}

#[test]
fn every_rule_and_procedure_renders_in_every_language_for_every_signal() {
    let run = run();
    let mut problems = Vec::new();
    let mut rendered = BTreeSet::new();
    let mut check = |language: &str, what: String, text: &str| {
        if let Some(p) = problem(language, text, &run.data) {
            problems.push(format!("{what} [{language}]: {p}\n    {text}"));
        }
    };
    for task in &run.tasks {
        let profile = task.context.profile.as_ref();
        for record in &task.signals {
            let rule = run.rules.rules.iter().find(|r| r.id == record.rule).expect("the rule of a signal");
            rendered.insert(rule.id.as_str());
            let signal = signal_of(record);
            for language in LANGUAGES {
                let customer = |name: &str| match name {
                    "customer_name" => Some(
                        profile
                            .and_then(|p| p.name.clone())
                            .unwrap_or_else(|| phrases::code("word", "customer", language)),
                    ),
                    "customer_id" => Some(task.customer_id.clone()),
                    "segment" => Some(phrases::code(
                        "segment",
                        profile.map_or("unknown", |p| p.segment.as_str()),
                        language,
                    )),
                    _ => None,
                };
                let at = format!("rule {} on {} ({})", rule.id, task.id, task.customer_id);
                let texts = render_texts(rule, &run.rules.playbook, &signal, language, &customer);
                check(language, format!("{at}: title"), &texts.title);
                check(language, format!("{at}: explanation"), &texts.explanation);
                check(language, format!("{at}: script"), &texts.script);
                for (i, variant) in rule.matching_variants(&signal).into_iter().enumerate() {
                    let text = render_in(&run.rules.playbook, variant, &signal, language, &customer);
                    check(language, format!("{at}: script variant {}", i + 1), &text);
                }
                check(
                    language,
                    format!("{at}: fallback script"),
                    &render_in(&run.rules.playbook, &rule.script, &signal, language, &customer),
                );
                if let Some(category) = complaint_category(&signal.facts) {
                    let p =
                        procedure(&run.rules.playbook, category, language, &customer).expect("a playbook");
                    check(language, format!("{at}: procedure name"), &p.name);
                    check(language, format!("{at}: procedure script"), &p.script);
                    for step in &p.steps {
                        check(language, format!("{at}: procedure step"), step);
                    }
                }
            }
        }
    }
    let never: Vec<&str> =
        run.rules.rules.iter().map(|r| r.id.as_str()).filter(|id| !rendered.contains(id)).collect();
    assert!(never.is_empty(), "rules no generated case fires (add a scenario to the generator): {never:?}");
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn every_procedure_renders_in_every_language() {
    let run = run();
    let playbook = &run.rules.playbook;
    let categories: Vec<&str> = playbook.categories().chain(["branch_closure"]).collect();
    assert!(categories.len() >= 5, "{categories:?}");
    let customer = |name: &str| (name == "customer_name").then(|| "Anna Petrova".to_string());
    let data: Vec<String> = run.data.iter().cloned().chain(["Anna Petrova".to_string()]).collect();
    for category in categories {
        for language in LANGUAGES {
            let p = procedure(playbook, category, language, &customer).unwrap();
            assert_eq!(p.known, category != "branch_closure", "{category}");
            assert!(!p.steps.is_empty() && !p.team.is_empty() && p.sla_hours > 0.0, "{p:?}");
            for text in p.steps.iter().chain([&p.name, &p.script]) {
                assert_eq!(problem(language, text, &data), None, "{category} [{language}]: {text}");
            }
        }
    }
}

#[test]
fn the_scripts_fit_the_case() {
    let run = run();
    let mut churn = 0;
    for task in &run.tasks {
        let language = task.context.language.as_str();
        let name = |category: &str| run.rules.playbook.name_of(category, language);
        for record in task.signals.iter().filter(|s| s.rule == "churn_risk") {
            churn += 1;
            let rule = run.rules.rules.iter().find(|r| r.id == "churn_risk").unwrap();
            let signal = signal_of(record);
            let said =
                render_texts(rule, &run.rules.playbook, &signal, language, &|_| Some("X".to_string())).script;
            let facts = &record.facts;
            let complained = facts.get("complaint_category").and_then(Value::as_str);
            let moved_while_active = facts["moved_eur"].as_f64() > Some(0.0)
                && facts["silent"] == 0.0
                && facts["activity_drop"] == 0.0;
            if let Some(category) = complained {
                assert!(
                    said.contains(&name(category)),
                    "{}: complained about {category}: {said}",
                    task.customer_id
                );
            } else if moved_while_active {
                assert!(
                    !said.contains("not been using") && !said.contains("реже пользоваться"),
                    "{}: moved money while active, yet told they stopped using the account: {said}",
                    task.customer_id
                );
                assert!(said.contains("EUR"), "{said}");
            }
        }
    }
    assert!(churn >= 4, "both churn scenarios, in both languages");
    // A complaint about fees hears about fees.
    let fees: Vec<&Task> = run
        .tasks
        .iter()
        .filter(|t| t.rules.first().is_some_and(|r| r == "complaint_escalation"))
        .filter(|t| t.context.procedure.as_ref().is_some_and(|p| p.category == "fees"))
        .collect();
    assert!(fees.len() >= 2, "the fees scenario, in both languages");
    for task in fees {
        let fee = if task.context.language == "ru" { "комисси" } else { "fee" };
        assert!(task.context.script.contains(fee), "{}: {}", task.customer_id, task.context.script);
    }
}
