//! Detection quality on streams we did not tune for: recall and false positives per rule, the
//! delay from a stopped income's due date to its task, and state bytes per customer, on the
//! populations of `ingest::variations` (several seeds), through the default rule pack.
//!
//! `cargo bench --bench detection` generates the populations, writes each as JSON lines with its
//! labels under `target/detection/` (`variations-SEED.jsonl`, `variations-SEED.labels.json`),
//! runs them through this build's engine and prints the table. With `-- --score-replays DIR`, it
//! also scores the tasks another build's `callahead replay` wrote for the same files
//! (`DIR/tasks-SEED.jsonl`): that is how `scripts/bench-detection.sh` compares against a
//! baseline commit, in one run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use callahead::ingest::variations::{firings, generate, score, Firing, Label, RuleScore, VariationSpec};
use callahead::rules::RuleSet;
use callahead::time::Timestamp;

const SEEDS: [u64; 3] = [101, 202, 303];

fn spec(seed: u64) -> VariationSpec {
    VariationSpec { seed, per_kind: 25, ordinary: 300, days: 150, ..VariationSpec::default() }
}

/// Firings of this build's engine over `lines`, and the state's bytes per customer at the end.
fn run(rules: &RuleSet, lines: &[String]) -> (Vec<Firing>, f64) {
    let (firings, engine) = firings(rules, lines);
    (firings, engine.state.memory_bytes() as f64 / engine.state.len().max(1) as f64)
}

/// Firings read from another build's `replay` output (one task per line, as JSON).
fn read_replay(path: &Path) -> Vec<Firing> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut firings = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let task: serde_json::Value = serde_json::from_str(line).expect("a task per line");
        let customer = task["customer_id"].as_str().unwrap_or_default().to_string();
        for s in task["signals"].as_array().into_iter().flatten() {
            let at = s["at"].as_str().and_then(|t| Timestamp::parse_rfc3339(t).ok()).unwrap_or_default();
            firings.push(Firing {
                customer_id: customer.clone(),
                rule: s["rule"].as_str().unwrap_or("").to_string(),
                at,
            });
        }
    }
    firings
}

/// Adds one seed's scores into the running totals per rule.
fn add(totals: &mut BTreeMap<String, RuleScore>, scores: Vec<RuleScore>) {
    for s in scores {
        let t = totals
            .entry(s.rule.clone())
            .or_insert_with(|| RuleScore { rule: s.rule.clone(), ..RuleScore::default() });
        t.expected += s.expected;
        t.found += s.found;
        for (kind, n) in s.false_positives {
            match t.false_positives.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, total)) => *total += n,
                None => t.false_positives.push((kind, n)),
            }
        }
        t.delay_hours.extend(s.delay_hours);
    }
}

fn print(title: &str, totals: &BTreeMap<String, RuleScore>, look_alikes: usize) {
    println!("\n== {title}");
    println!(
        "{:<24} {:>8} {:>6} {:>7} {:>5}  {:<30} {:>14}",
        "rule", "expected", "found", "recall", "FP", "FP by kind", "delay h (med/max)"
    );
    for s in totals.values() {
        let by_kind: Vec<String> = s.false_positives.iter().map(|(k, n)| format!("{k:?}:{n}")).collect();
        let mut d = s.delay_hours.clone();
        d.sort_by(f64::total_cmp);
        let delay = if d.is_empty() {
            "-".to_string()
        } else {
            format!("{:.0}/{:.0}", d[d.len() / 2], d[d.len() - 1])
        };
        println!(
            "{:<24} {:>8} {:>6} {:>6.0}% {:>5}  {:<30} {:>14}",
            s.rule,
            s.expected,
            s.found,
            100.0 * s.recall(),
            s.false_positive_total(),
            by_kind.join(","),
            delay
        );
    }
    let fp: usize = totals.values().map(RuleScore::false_positive_total).sum();
    println!("false positives: {fp} pages of {look_alikes} customers who should not be paged");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let replays =
        args.iter().position(|a| a == "--score-replays").and_then(|i| args.get(i + 1)).map(PathBuf::from);
    let rules = RuleSet::load_dir(Path::new("rules")).expect("default rules in rules/ load");
    let dir = Path::new("target/detection");
    std::fs::create_dir_all(dir).expect("create target/detection");
    let (mut ours, mut theirs) = (BTreeMap::new(), BTreeMap::new());
    let (mut bytes, mut look_alikes, mut events) = (0.0, 0usize, 0usize);
    for seed in SEEDS {
        let population = generate(&spec(seed));
        events += population.lines.len();
        look_alikes += population.labels.iter().filter(|l| l.rule.is_none()).count();
        std::fs::write(dir.join(format!("variations-{seed}.jsonl")), population.lines.join("\n") + "\n")
            .expect("write the stream");
        let labels: Vec<&Label> = population.labels.iter().collect();
        std::fs::write(
            dir.join(format!("variations-{seed}.labels.json")),
            serde_json::to_string_pretty(&labels).expect("labels serialize"),
        )
        .expect("write the labels");
        let (firings, per_customer) = run(&rules, &population.lines);
        bytes += per_customer / SEEDS.len() as f64;
        add(&mut ours, score(&population.labels, &firings));
        if let Some(replays) = &replays {
            add(
                &mut theirs,
                score(&population.labels, &read_replay(&replays.join(format!("tasks-{seed}.jsonl")))),
            );
        }
    }
    println!(
        "{} populations (seeds {SEEDS:?}), {events} events, {} customers each",
        SEEDS.len(),
        spec(0).per_kind * spec(0).kinds.len() + spec(0).ordinary
    );
    if let Some(replays) = &replays {
        print(&format!("baseline (tasks from {})", replays.display()), &theirs, look_alikes);
    }
    print("this build", &ours, look_alikes);
    println!("\nstate: {bytes:.0} bytes per customer at the end of a population (mean over seeds)");
}
