//! Backtest: what a candidate rule pack would have done on a stream, beside what the current
//! pack does on the same stream, rule by rule. Both packs are replayed by [`crate::replay`];
//! this module only compares their tasks (pure: no I/O, no clock) and renders the comparison
//! as a table for people or a JSON document for machines.
//!
//! Per rule and per pack: the tasks it would open (it is the task's first rule), the tasks that
//! carry its signal, the distinct customers those tasks would page, and how many of its tasks
//! also carry another rule's signal (and which). Against the current pack: whether the rule is
//! new or gone, the tasks it opens in one pack and not the other, and the tasks both packs open
//! (same customer, queue and incident: the same task id) with another priority. With past
//! outcomes from the task store: precision, confirmed ÷ (confirmed + legitimate).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use crate::replay::Summary;
use crate::rules::{Mode, RuleSet};
use crate::task::{Outcome, Task};
use crate::vocab::Severity;

/// Examples of changed priorities kept per rule (the count is always whole).
const MAX_EXAMPLES: usize = 5;

/// One pack's run: its rules, its tasks in their final state, the replay's summary.
pub struct PackRun<'a> {
    pub rules: &'a RuleSet,
    pub tasks: &'a [Task],
    pub summary: &'a Summary,
}

/// Past outcomes per rule id: outcome name → resolved tasks (as the task store counts them).
pub type PastOutcomes = BTreeMap<String, BTreeMap<String, i64>>;

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub input: Input,
    pub current: Totals,
    pub candidate: Totals,
    /// Tasks both packs open with another priority.
    pub priority_changed: usize,
    /// Every rule of either pack, by id.
    pub rules: Vec<RuleReport>,
    /// Whether past outcomes were read (`--store`).
    pub outcomes_read: bool,
}

/// What the input held (from the candidate's replay: both read the same lines).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Input {
    pub lines: u64,
    pub events: u64,
    pub duplicates: u64,
    pub invalid: u64,
    /// `line N: reason` for the first invalid lines.
    pub invalid_lines: Vec<String>,
}

/// One pack's totals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub rules: usize,
    pub tasks: usize,
    pub customers: usize,
}

/// One rule in both packs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleReport {
    pub rule: String,
    /// `new` (only in the candidate), `gone` (only in the current pack) or `kept`.
    pub status: &'static str,
    pub current: Option<RuleStats>,
    pub candidate: Option<RuleStats>,
    /// Tasks it opens with the candidate and not with the current pack.
    pub tasks_new: usize,
    /// Tasks it opens with the current pack and not with the candidate.
    pub tasks_gone: usize,
    /// Tasks it opens in either pack that both packs open with another priority.
    pub priority_changed: usize,
    pub priority_examples: Vec<PriorityChange>,
    /// From past resolved tasks in the store; absent without `--store`.
    pub precision: Option<Precision>,
}

/// What one rule does in one pack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleStats {
    pub queue: &'static str,
    pub severity: &'static str,
    pub mode: &'static str,
    /// Times it fired (a shadow rule's firings page nobody).
    pub firings: u64,
    /// Tasks it opens (the task's first rule).
    pub tasks_opened: usize,
    /// Tasks that carry its signal (opened or enriched by it).
    pub tasks: usize,
    /// Distinct customers of those tasks: the people it would page.
    pub customers: usize,
    /// Of its tasks, those that also carry another rule's signal.
    pub overlap: usize,
    /// The other rules, with the number of its tasks each shares.
    pub overlap_with: BTreeMap<String, usize>,
}

/// A task both packs open, with another priority (1 is the most urgent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriorityChange {
    pub task: String,
    pub customer: String,
    pub current: u8,
    pub candidate: u8,
}

/// Past outcomes of a rule's resolved tasks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Precision {
    /// Outcomes that confirm the signal (`confirmed_fraud`; for care, `retained`, `churned`,
    /// `resolved_issue`).
    pub confirmed: i64,
    /// `legitimate`: the customer did it, the task was a false alarm.
    pub legitimate: i64,
    /// Neither (`unreachable`): left out of the precision.
    pub other: i64,
    /// confirmed ÷ (confirmed + legitimate); absent when both are zero ("no outcomes").
    pub precision: Option<f64>,
}

impl Precision {
    /// From one rule's outcome counts.
    pub fn of(outcomes: &BTreeMap<String, i64>) -> Precision {
        let (mut confirmed, mut legitimate, mut other) = (0, 0, 0);
        for (name, n) in outcomes {
            match Outcome::ALL.iter().find(|o| o.as_str() == name) {
                Some(o) if o.confirms() => confirmed += n,
                Some(Outcome::Legitimate) => legitimate += n,
                _ => other += n,
            }
        }
        let judged = confirmed + legitimate;
        let precision = (judged > 0).then(|| confirmed as f64 / judged as f64);
        Precision { confirmed, legitimate, other, precision }
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
    }
}

/// Per-rule statistics of one pack.
fn stats(run: &PackRun<'_>) -> BTreeMap<String, RuleStats> {
    let mut out: BTreeMap<String, RuleStats> = run
        .rules
        .rules
        .iter()
        .map(|r| {
            let shadow = r.mode == Mode::Shadow;
            let hits = if shadow { &run.summary.shadow_hits } else { &run.summary.live_hits };
            let stats = RuleStats {
                queue: r.queue.as_str(),
                severity: severity_name(r.severity),
                mode: if shadow { "shadow" } else { "live" },
                firings: hits.get(&r.id).copied().unwrap_or(0),
                tasks_opened: 0,
                tasks: 0,
                customers: 0,
                overlap: 0,
                overlap_with: BTreeMap::new(),
            };
            (r.id.clone(), stats)
        })
        .collect();
    let mut customers: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for task in run.tasks {
        let rules: BTreeSet<&str> = task.rules.iter().map(String::as_str).collect();
        for (k, rule) in rules.iter().enumerate() {
            // A task may name a rule the pack no longer has (never in a fresh replay).
            let Some(s) = out.get_mut(*rule) else { continue };
            s.tasks += 1;
            if task.rules.first().map(String::as_str) == Some(rule) {
                s.tasks_opened += 1;
            }
            customers.entry(rule).or_default().insert(&task.customer_id);
            if rules.len() > 1 {
                s.overlap += 1;
                for (j, other) in rules.iter().enumerate() {
                    if j != k {
                        *s.overlap_with.entry((*other).to_string()).or_default() += 1;
                    }
                }
            }
        }
    }
    for (rule, set) in customers {
        if let Some(s) = out.get_mut(rule) {
            s.customers = set.len();
        }
    }
    out
}

/// A task as the diff sees it: (the rule that opened it, priority, customer).
type Opened = (String, u8, String);

fn totals(run: &PackRun<'_>) -> Totals {
    let customers: BTreeSet<&str> = run.tasks.iter().map(|t| t.customer_id.as_str()).collect();
    Totals { rules: run.rules.rules.len(), tasks: run.tasks.len(), customers: customers.len() }
}

/// Compares the candidate pack with the current one on the same input. `outcomes` are the
/// store's past outcomes per rule, when it was asked.
pub fn compare(current: &PackRun<'_>, candidate: &PackRun<'_>, outcomes: Option<&PastOutcomes>) -> Report {
    let (before, after) = (stats(current), stats(candidate));
    let opener = |t: &Task| t.rules.first().cloned().unwrap_or_default();
    let by_id = |tasks: &[Task]| -> HashMap<String, Opened> {
        tasks.iter().map(|t| (t.id.clone(), (opener(t), t.priority, t.customer_id.clone()))).collect()
    };
    let (old, new) = (by_id(current.tasks), by_id(candidate.tasks));

    let ids: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut reports: BTreeMap<&String, RuleReport> = ids
        .into_iter()
        .map(|id| {
            let (c, n) = (before.get(id).cloned(), after.get(id).cloned());
            let status = match (&c, &n) {
                (None, Some(_)) => "new",
                (Some(_), None) => "gone",
                _ => "kept",
            };
            let precision = outcomes.map(|o| Precision::of(&o.get(id).cloned().unwrap_or_default()));
            let report = RuleReport {
                rule: id.clone(),
                status,
                current: c,
                candidate: n,
                tasks_new: 0,
                tasks_gone: 0,
                priority_changed: 0,
                priority_examples: Vec::new(),
                precision,
            };
            (id, report)
        })
        .collect();

    // Tasks are matched by id: (customer, queue, incident number), and a replay never resolves
    // a task, so the id is the same in both runs for the same customer and queue.
    for (id, (rule, _, _)) in &new {
        if old.get(id).is_none_or(|(r, _, _)| r != rule) {
            if let Some(r) = reports.get_mut(rule) {
                r.tasks_new += 1;
            }
        }
    }
    for (id, (rule, _, _)) in &old {
        if new.get(id).is_none_or(|(r, _, _)| r != rule) {
            if let Some(r) = reports.get_mut(rule) {
                r.tasks_gone += 1;
            }
        }
    }
    let mut changed: Vec<(&String, &Opened, &Opened)> =
        new.iter().filter_map(|(id, n)| old.get(id).filter(|o| o.1 != n.1).map(|o| (id, o, n))).collect();
    changed.sort_by(|a, b| a.0.cmp(b.0));
    for (id, o, n) in &changed {
        let rules: BTreeSet<&String> = [&o.0, &n.0].into_iter().collect();
        for rule in rules {
            if let Some(r) = reports.get_mut(rule) {
                r.priority_changed += 1;
                if r.priority_examples.len() < MAX_EXAMPLES {
                    r.priority_examples.push(PriorityChange {
                        task: (*id).clone(),
                        customer: n.2.clone(),
                        current: o.1,
                        candidate: n.1,
                    });
                }
            }
        }
    }

    let s = candidate.summary;
    Report {
        input: Input {
            lines: s.lines,
            events: s.events,
            duplicates: s.duplicates,
            invalid: s.invalid.values().sum(),
            invalid_lines: s.invalid_lines.clone(),
        },
        current: totals(current),
        candidate: totals(candidate),
        priority_changed: changed.len(),
        rules: reports.into_values().collect(),
        outcomes_read: outcomes.is_some(),
    }
}

impl Report {
    /// The report as an aligned plain-text table (for a terminal).
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let i = &self.input;
        let _ = writeln!(
            out,
            "input: {} lines, {} events, {} duplicates (ignored), {} invalid (skipped)",
            i.lines, i.events, i.duplicates, i.invalid
        );
        for line in &i.invalid_lines {
            let _ = writeln!(out, "  {line}");
        }
        if i.invalid as usize > i.invalid_lines.len() {
            let _ =
                writeln!(out, "  … and {} more invalid lines", i.invalid as usize - i.invalid_lines.len());
        }
        let (c, n) = (&self.current, &self.candidate);
        let _ = writeln!(
            out,
            "current:   {} rules, {} tasks, {} customers paged\ncandidate: {} rules, {} tasks, {} customers paged ({:+} tasks, {} with another priority)\n",
            c.rules,
            c.tasks,
            c.customers,
            n.rules,
            n.tasks,
            n.customers,
            n.tasks as i64 - c.tasks as i64,
            self.priority_changed
        );

        let header = [
            "rule",
            "status",
            "severity",
            "mode",
            "firings",
            "opens",
            "in tasks",
            "customers",
            "overlap",
            "+new",
            "-gone",
            "prio±",
            "precision",
        ];
        let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
        // "current → candidate" where the two differ, one value where they agree or one is absent.
        fn both<T: PartialEq + ToString>(a: Option<T>, b: Option<T>) -> String {
            match (a, b) {
                (Some(a), Some(b)) if a == b => a.to_string(),
                (Some(a), Some(b)) => format!("{}→{}", a.to_string(), b.to_string()),
                (Some(a), None) => format!("{}→–", a.to_string()),
                (None, Some(b)) => b.to_string(),
                (None, None) => "–".to_string(),
            }
        }
        for r in &self.rules {
            let (c, n) = (r.current.as_ref(), r.candidate.as_ref());
            let precision = match &r.precision {
                None => "–".to_string(),
                Some(Precision { precision: Some(p), confirmed, legitimate, .. }) => {
                    format!("{:.2} ({confirmed}/{})", p, confirmed + legitimate)
                }
                Some(_) => "no outcomes".to_string(),
            };
            rows.push(vec![
                r.rule.clone(),
                r.status.to_string(),
                both(c.map(|s| s.severity), n.map(|s| s.severity)),
                both(c.map(|s| s.mode), n.map(|s| s.mode)),
                both(c.map(|s| s.firings), n.map(|s| s.firings)),
                both(c.map(|s| s.tasks_opened), n.map(|s| s.tasks_opened)),
                both(c.map(|s| s.tasks), n.map(|s| s.tasks)),
                both(c.map(|s| s.customers), n.map(|s| s.customers)),
                both(c.map(|s| s.overlap), n.map(|s| s.overlap)),
                r.tasks_new.to_string(),
                r.tasks_gone.to_string(),
                r.priority_changed.to_string(),
                precision,
            ]);
        }
        let widths: Vec<usize> = (0..header.len())
            .map(|k| rows.iter().map(|row| row[k].chars().count()).max().unwrap_or(0))
            .collect();
        for row in &rows {
            let mut line = String::new();
            for (k, cell) in row.iter().enumerate() {
                let pad = widths[k] - cell.chars().count();
                // Names left, numbers right.
                if k < 4 {
                    let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
                } else {
                    let _ = write!(line, "{}{cell}  ", " ".repeat(pad));
                }
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }

        let mut notes = String::new();
        for r in &self.rules {
            let stats = r.candidate.as_ref().or(r.current.as_ref());
            if let Some(s) = stats.filter(|s| !s.overlap_with.is_empty()) {
                let with: Vec<String> =
                    s.overlap_with.iter().map(|(rule, k)| format!("{rule} {k}")).collect();
                let _ = writeln!(notes, "  {} shares tasks with: {}", r.rule, with.join(", "));
            }
            for e in &r.priority_examples {
                let _ = writeln!(
                    notes,
                    "  {}: task {} (customer {}) priority {} → {}",
                    r.rule, e.task, e.customer, e.current, e.candidate
                );
            }
        }
        if !notes.is_empty() {
            let _ = writeln!(out, "\n{notes}");
        }
        out.push_str(
            "opens: tasks the rule opens; in tasks: tasks carrying its signal; customers: distinct\n\
             customers of those (paged); overlap: of those, tasks another rule also signals;\n\
             +new/-gone: tasks it opens only with the candidate/current pack; prio±: tasks both packs\n\
             open with another priority; precision: confirmed ÷ (confirmed + legitimate) of past\n\
             resolved tasks in the store; a→b: current → candidate.\n",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::Replay;

    const RULES: &str = r#"
[[rule]]
id = "big"
queue = "fraud"
severity = "high"
on = ["card_transaction"]
when = "event.amount_eur > 100"
title.en = "x"
title.ru = "x"
explanation.en = "x"
explanation.ru = "x"
script.en = "x"
script.ru = "x"
actions = ["block_card"]

[[rule]]
id = "huge"
queue = "fraud"
severity = "high"
on = ["card_transaction"]
when = "event.amount_eur > 1000"
title.en = "x"
title.ru = "x"
explanation.en = "x"
explanation.ru = "x"
script.en = "x"
script.ru = "x"
actions = ["block_card"]

[[rule]]
id = "gripe"
queue = "care"
severity = "medium"
on = ["complaint"]
when = "true"
title.en = "x"
title.ru = "x"
explanation.en = "x"
explanation.ru = "x"
script.en = "x"
script.ru = "x"
actions = ["call_customer"]
"#;

    fn set(text: &str) -> RuleSet {
        RuleSet::from_sources(&[("t.toml".to_string(), text.to_string())]).expect("valid rules")
    }

    fn pay(id: &str, customer: &str, minute: u32, amount: u32) -> String {
        format!(
            r#"{{"event_id":"{id}","type":"card_transaction","customer_id":"{customer}","ts":"2026-06-01T10:{minute:02}:00Z","card_id":"k{customer}","amount":{amount},"currency":"EUR","channel":"ecommerce","status":"approved","merchant":{{"name":"Shop","mcc":"5999","country":"FR","city":"Paris","lat":48.85,"lon":2.35}}}}"#
        )
    }

    fn complaint(id: &str, customer: &str) -> String {
        format!(
            r#"{{"event_id":"{id}","type":"complaint","customer_id":"{customer}","ts":"2026-06-01T11:00:00Z","category":"fees","severity":"high"}}"#
        )
    }

    fn lines() -> Vec<String> {
        vec![
            pay("1", "a", 0, 5_000), // big and huge, one task
            pay("2", "b", 1, 500),   // big only
            pay("3", "c", 2, 200),   // big only
            complaint("4", "a"),
            "{not json".to_string(),
        ]
    }

    fn run(rules: &RuleSet) -> (Vec<Task>, Summary) {
        let mut replay = Replay::new(rules);
        for (k, line) in lines().iter().enumerate() {
            replay.feed(k as u64 + 1, line.as_bytes());
        }
        replay.into_tasks()
    }

    fn compare_texts(current: &str, candidate: &str, outcomes: Option<&PastOutcomes>) -> Report {
        let (c, n) = (set(current), set(candidate));
        let ((ct, cs), (nt, ns)) = (run(&c), run(&n));
        compare(
            &PackRun { rules: &c, tasks: &ct, summary: &cs },
            &PackRun { rules: &n, tasks: &nt, summary: &ns },
            outcomes,
        )
    }

    fn rule<'a>(r: &'a Report, id: &str) -> &'a RuleReport {
        r.rules.iter().find(|x| x.rule == id).unwrap_or_else(|| panic!("no {id}"))
    }

    #[test]
    fn counts_tasks_customers_and_overlap_per_rule() {
        let r = compare_texts(RULES, RULES, None);
        assert_eq!((r.input.lines, r.input.events, r.input.invalid), (5, 4, 1));
        assert_eq!(r.input.invalid_lines.len(), 1);
        assert!(r.input.invalid_lines[0].starts_with("line 5:"), "{:?}", r.input.invalid_lines);
        assert_eq!((r.current.tasks, r.current.customers), (4, 3));
        let big = rule(&r, "big").candidate.clone().unwrap();
        assert_eq!((big.tasks_opened, big.tasks, big.customers, big.overlap), (3, 3, 3, 1));
        assert_eq!(big.overlap_with, BTreeMap::from([("huge".to_string(), 1)]));
        let huge = rule(&r, "huge").candidate.clone().unwrap();
        assert_eq!((huge.tasks_opened, huge.tasks, huge.customers, huge.overlap), (0, 1, 1, 1));
        assert_eq!(huge.firings, 1);
        let gripe = rule(&r, "gripe").candidate.clone().unwrap();
        assert_eq!((gripe.tasks_opened, gripe.customers, gripe.overlap, gripe.queue), (1, 1, 0, "care"));
        // The same pack on both sides: no difference.
        assert!(r.rules.iter().all(|x| x.status == "kept" && x.tasks_new == 0 && x.tasks_gone == 0));
        assert_eq!(r.priority_changed, 0);
        assert!(r.rules.iter().all(|x| x.precision.is_none()) && !r.outcomes_read);
    }

    #[test]
    fn a_removed_rule_is_gone_and_its_tasks_move() {
        // Without `big`, `huge` opens a's task and b's and c's are not opened at all.
        let start = RULES.find("[[rule]]\nid = \"big\"").unwrap();
        let end = RULES.find("[[rule]]\nid = \"huge\"").unwrap();
        let candidate = format!("{}{}", &RULES[..start], &RULES[end..]);
        let r = compare_texts(RULES, &candidate, None);
        let big = rule(&r, "big");
        assert_eq!(big.status, "gone");
        assert!(big.candidate.is_none());
        assert_eq!((big.tasks_gone, big.tasks_new), (3, 0));
        let huge = rule(&r, "huge");
        assert_eq!((huge.status, huge.tasks_new, huge.tasks_gone), ("kept", 1, 0));
        assert_eq!(huge.candidate.as_ref().unwrap().overlap, 0);
        assert_eq!((r.current.tasks, r.candidate.tasks), (4, 2));
        // Reversed, it is new.
        let r = compare_texts(&candidate, RULES, None);
        assert_eq!((rule(&r, "big").status, rule(&r, "big").tasks_new), ("new", 3));
    }

    #[test]
    fn a_severity_change_shows_as_changed_priority() {
        let candidate = RULES.replacen(r#"severity = "high""#, r#"severity = "low""#, 1);
        let r = compare_texts(RULES, &candidate, None);
        let big = rule(&r, "big");
        assert_eq!(big.current.as_ref().unwrap().severity, "high");
        assert_eq!(big.candidate.as_ref().unwrap().severity, "low");
        // b's and c's tasks (big alone) get a lower priority; a's task also carries `huge`.
        assert!(big.priority_changed >= 2, "{big:#?}");
        assert_eq!(r.priority_changed, big.priority_changed);
        assert!(big.priority_examples.iter().all(|e| e.candidate > e.current), "{big:#?}");
        // On a's task the high `huge` now comes first: it opens that task instead of `big`.
        assert_eq!((big.tasks_new, big.tasks_gone), (0, 1));
        assert_eq!((rule(&r, "huge").tasks_new, rule(&r, "huge").tasks_gone), (1, 0));
        assert_eq!(rule(&r, "gripe").priority_changed, 0);
        let table = r.render_table();
        assert!(table.contains("high→low"), "{table}");
    }

    #[test]
    fn precision_is_confirmed_over_confirmed_and_legitimate() {
        let outcomes: PastOutcomes = BTreeMap::from([
            (
                "big".to_string(),
                BTreeMap::from([
                    ("confirmed_fraud".to_string(), 3),
                    ("legitimate".to_string(), 1),
                    ("unreachable".to_string(), 5),
                ]),
            ),
            ("gripe".to_string(), BTreeMap::from([("retained".to_string(), 2)])),
            ("huge".to_string(), BTreeMap::from([("unreachable".to_string(), 1)])),
        ]);
        let r = compare_texts(RULES, RULES, Some(&outcomes));
        assert!(r.outcomes_read);
        let big = rule(&r, "big").precision.clone().unwrap();
        assert_eq!((big.confirmed, big.legitimate, big.other, big.precision), (3, 1, 5, Some(0.75)));
        assert_eq!(rule(&r, "gripe").precision.as_ref().unwrap().precision, Some(1.0));
        assert_eq!(rule(&r, "huge").precision.as_ref().unwrap().precision, None);
        let table = r.render_table();
        assert!(table.contains("0.75 (3/4)"), "{table}");
        assert!(table.contains("no outcomes"), "{table}");
    }

    #[test]
    fn the_table_is_aligned_and_the_json_has_every_rule() {
        let r = compare_texts(RULES, RULES, None);
        let table = r.render_table();
        let rows: Vec<&str> =
            table.lines().skip_while(|l| !l.starts_with("rule ")).take_while(|l| !l.is_empty()).collect();
        assert_eq!(rows.len(), 4, "a header and three rules: {table}");
        // Numbers are right-aligned: each ends where its header ends.
        for header in ["firings", "customers", "prio±"] {
            let end = rows[0][..rows[0].find(header).unwrap()].chars().count() + header.chars().count();
            for row in &rows[1..] {
                let chars: Vec<char> = row.chars().collect();
                assert!(chars[end - 1].is_ascii_digit() && chars[end] == ' ', "{header}: {row:?}\n{table}");
            }
        }
        let json = serde_json::to_value(&r).unwrap();
        let ids: Vec<&str> =
            json["rules"].as_array().unwrap().iter().map(|x| x["rule"].as_str().unwrap()).collect();
        assert_eq!(ids, vec!["big", "gripe", "huge"]);
        assert_eq!(json["rules"][0]["candidate"]["tasks_opened"], 3);
    }
}
