//! The embedded demo: a generated, realistic stream (ordinary customers plus planted incidents
//! and look-alikes) through the same engine, with the tasks it opens printed for a human.
//! No external service is needed.

use std::fmt::Write as _;

use crate::ingest::generator::{Expectation, Generated};
use crate::task::Task;

/// Renders one task the way an agent's queue would show it.
pub fn render_task(task: &Task) -> String {
    let mut out = String::new();
    let who = match &task.context.profile {
        Some(p) => format!(
            "{} ({}, {}, speaks {})",
            p.name.as_deref().unwrap_or("name unknown"),
            p.segment.as_str(),
            p.home.as_ref().map_or("home unknown".to_string(), |h| format!("{} {}", h.city, h.country)),
            p.language
        ),
        None => "profile not received yet".to_string(),
    };
    let _ = writeln!(out, "[P{} {}] {}  {}", task.priority, task.queue, task.id, task.title);
    let _ = writeln!(out, "  customer {}: {who}", task.customer_id);
    let _ =
        writeln!(out, "  opened {} · due {} · rules: {}", task.opened_at, task.due_at, task.rules.join(", "));
    for line in task.explanation.lines() {
        let _ = writeln!(out, "  why: {line}");
    }
    for e in &task.context.events {
        let _ = writeln!(out, "  evidence {}: {}", e.at, e.summary);
    }
    let _ = writeln!(out, "  actions: {}", task.context.actions.join(", "));
    let _ = writeln!(out, "  script ({}): {}", task.context.language, task.context.script);
    if let Some(p) = &task.context.procedure {
        let known = if p.known { "" } else { ", no procedure of its own" };
        let _ = writeln!(out, "  procedure for `{}` ({}{known}): {}", p.category, p.team, p.name);
        for (i, step) in p.steps.iter().enumerate() {
            let _ = writeln!(out, "    {}. {step}", i + 1);
        }
    }
    for other in &task.context.open_in_other_queue {
        let _ = writeln!(
            out,
            "  also open in {}: {} {} ({:?})",
            other.queue, other.id, other.title, other.status
        );
    }
    out
}

/// Checks the planted scenarios against the tasks: one line per scenario, and whether all held.
pub fn check_scenarios(generated: &Generated, tasks: &[Task]) -> (String, bool) {
    let mut out = String::new();
    let mut all_ok = true;
    for Expectation { customer_id, scenario, rule } in &generated.expected {
        let theirs: Vec<&Task> = tasks.iter().filter(|t| &t.customer_id == customer_id).collect();
        let ok = match rule {
            Some(r) => theirs.iter().any(|t| t.rules.iter().any(|x| x == r)),
            None => theirs.is_empty(),
        };
        all_ok &= ok;
        let want = rule.map_or("no task".to_string(), |r| format!("a `{r}` task"));
        let _ =
            writeln!(out, "  {} {customer_id} {scenario}: expected {want}", if ok { "ok  " } else { "MISS" });
    }
    (out, all_ok)
}

/// What a new user needs to try the API: where it is, a token per role, a first `curl`.
pub fn print_api(e: &crate::embedded::Embedded, store: &str, mail: &str) {
    let base = format!("http://{}", e.address);
    println!("\n=== Agents' console and API (Ctrl-C to stop) ===");
    println!("Console:  {base}/console   (log in with a token below)");
    println!("API:      {base}/api/v1   (OpenAPI: {base}/openapi.json, Swagger UI: {base}/docs)");
    println!("Store:    {store}");
    println!("E-mails:  to customers {mail} (answer links point here)");
    println!("Tokens (one per role; shown once):");
    for t in &e.tokens {
        println!("  {:<14} {:<12} {}", t.name, t.role.as_str(), t.token);
    }
    if let Some(t) = e.tokens.first() {
        println!("Try:");
        println!("  export TOKEN={}", t.token);
        println!("  curl -s -H \"Authorization: Bearer $TOKEN\" {base}/api/v1/tasks?queue=fraud");
        println!("  curl -s -X POST -H \"Authorization: Bearer $TOKEN\" {base}/api/v1/queues/fraud/next");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
}
