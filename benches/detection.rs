//! Detection quality on streams we did not tune for: recall and false positives per rule (care
//! and fraud), customers paged per look-alike kind, the delay from a stopped income's due date
//! (or a fraud's event) to its task, and state bytes per customer, on the populations of
//! `ingest::variations` (several seeds), through the default rule pack, with the allowed
//! lateness of `variations::LATENESS` (six hours: one principle delivers events hours late).
//!
//! `cargo bench --bench detection` generates the populations, writes each as JSON lines with its
//! labels under `target/detection/` (`variations-SEED.jsonl`, `variations-SEED.labels.json`),
//! runs them through this build's engine and prints the table. With `-- --score-replays DIR`, it
//! also scores the tasks another build's `callahead replay` wrote for the same files
//! (`DIR/tasks-SEED.jsonl`): that is how `scripts/bench-detection.sh` compares against a
//! baseline commit, in one run. (`callahead replay` runs with the engine's default allowed
//! lateness unless it has an option for it: see the script.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use callahead::ingest::variations::{
    firings, generate, score, Firing, Kind, Label, RuleScore, VariationSpec,
};
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

/// Customers of each kind nobody may page, and how many of them some rule paged (after their
/// `quiet_from`), with the rules that did: false positives per kind, each customer once.
#[derive(Default)]
struct Paged {
    customers: usize,
    paged: usize,
    rules: BTreeMap<String, usize>,
}

/// Adds one seed's look-alikes into the running totals per kind.
fn add_paged(totals: &mut BTreeMap<Kind, Paged>, labels: &[Label], firings: &[Firing]) {
    for l in labels.iter().filter(|l| l.rule.is_none()) {
        let t = totals.entry(l.kind).or_default();
        t.customers += 1;
        let mut rules: Vec<&str> = firings
            .iter()
            .filter(|f| f.customer_id == l.customer_id && l.quiet_from.is_none_or(|from| f.at >= from))
            .map(|f| f.rule.as_str())
            .collect();
        rules.sort_unstable();
        rules.dedup();
        if !rules.is_empty() {
            t.paged += 1;
        }
        for r in rules {
            *t.rules.entry(r.to_string()).or_default() += 1;
        }
    }
}

fn print(
    title: &str,
    totals: &BTreeMap<String, RuleScore>,
    paged: &BTreeMap<Kind, Paged>,
    look_alikes: usize,
) {
    println!("\n== {title}");
    println!(
        "{:<33} {:>8} {:>6} {:>7} {:>5}  {:<30} {:>14}",
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
            "{:<33} {:>8} {:>6} {:>6.0}% {:>5}  {:<30} {:>14}",
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
    println!("\n{:<33} {:>9} {:>6}  by rule", "kind nobody may page", "customers", "paged");
    for (kind, p) in paged {
        let by_rule: Vec<String> = p.rules.iter().map(|(r, n)| format!("{r}:{n}")).collect();
        println!("{:<33} {:>9} {:>6}  {}", format!("{kind:?}"), p.customers, p.paged, by_rule.join(","));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let replays =
        args.iter().position(|a| a == "--score-replays").and_then(|i| args.get(i + 1)).map(PathBuf::from);
    let rules = RuleSet::load_dir(Path::new("rules")).expect("default rules in rules/ load");
    let dir = Path::new("target/detection");
    std::fs::create_dir_all(dir).expect("create target/detection");
    let (mut ours, mut theirs) = (BTreeMap::new(), BTreeMap::new());
    let (mut our_paged, mut their_paged) = (BTreeMap::new(), BTreeMap::new());
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
        add_paged(&mut our_paged, &population.labels, &firings);
        if let Some(replays) = &replays {
            let replayed = read_replay(&replays.join(format!("tasks-{seed}.jsonl")));
            add(&mut theirs, score(&population.labels, &replayed));
            add_paged(&mut their_paged, &population.labels, &replayed);
        }
    }
    println!(
        "{} populations (seeds {SEEDS:?}), {events} events, {} customers each",
        SEEDS.len(),
        spec(0).per_kind * spec(0).kinds.len() + spec(0).ordinary
    );
    if let Some(replays) = &replays {
        print(&format!("baseline (tasks from {})", replays.display()), &theirs, &their_paged, look_alikes);
    }
    print("this build", &ours, &our_paged, look_alikes);
    println!("\nstate: {bytes:.0} bytes per customer at the end of a population (mean over seeds)");
}
