//! Every Prometheus metric of the service, defined in one place with its help text.
//!
//! Names follow Prometheus conventions: `callahead_` prefix, `_total` for counters, base units
//! (`_seconds`, `_bytes`). Labels are bounded sets (topics, event types, reasons, rule ids,
//! queues, priorities), never customer data.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The service's metrics and the registry that exports them.
pub struct Metrics {
    pub registry: Registry,
    pub events_consumed: IntCounterVec,
    pub events_invalid: IntCounterVec,
    pub dead_letters: IntCounter,
    pub duplicates: IntCounter,
    pub stale: IntCounter,
    pub codes_unknown: IntCounterVec,
    pub engine_seconds: Histogram,
    pub signals: IntCounterVec,
    pub task_changes: IntCounterVec,
    pub complaints_without_procedure: IntCounter,
    pub tasks_open: IntGaugeVec,
    pub consumer_lag: IntGaugeVec,
    pub end_to_end_seconds: Histogram,
    pub batch_seconds: HistogramVec,
    pub customers_tracked: IntGauge,
    pub customers_expired: IntCounter,
    pub state_bytes: IntGaugeVec,
    pub rule_reloads: IntCounterVec,
    pub rules_loaded: IntGauge,
    pub store_errors: IntCounter,
    pub publish_errors: IntCounter,
    pub card_actions: IntCounter,
    pub customers_erased: IntCounter,
    pub retention_purged: IntCounterVec,
    pub ready: IntGauge,
    pub build_info: IntGaugeVec,
    pub messages_skipped: IntCounterVec,
    pub checkpoint_seconds: Histogram,
    pub checkpointed_customers: IntCounter,
    pub checkpointed_bytes: IntCounter,
    pub partitions_owned: IntGauge,
    pub partitions_restoring: IntGauge,
    pub restored_customers: IntCounter,
    pub restored_bytes: IntCounter,
    pub restore_seconds: Histogram,
    pub restore_corrupt: IntCounter,
    pub commands: IntCounterVec,
    pub task_outcomes: IntCounterVec,
    pub rule_precision: prometheus::GaugeVec,
    pub tasks_overdue: IntGaugeVec,
    pub api_requests: IntCounterVec,
    pub api_seconds: HistogramVec,
    pub auth_failures: IntCounter,
    pub emails: IntCounterVec,
    pub emails_suppressed: IntCounterVec,
    pub email_first_contact_seconds: Histogram,
    pub customer_answers: IntCounterVec,
    pub answer_seconds: Histogram,
    pub task_step_seconds: HistogramVec,
}

/// Every reason an input or command message is refused with (`DecodeError::reason_code`,
/// `CommandError::reason_code`, and the two key checks of `serve`), exported at zero from the
/// start so that a dashboard or an alert sees each one before the first refusal.
pub const REFUSAL_REASONS: [&str; 10] = [
    "oversized",
    "malformed_json",
    "unknown_type",
    "missing_field",
    "invalid_field",
    "card_number",
    "key_mismatch",
    "missing_key",
    "invalid_command",
    "invalid_command_field",
];

/// Why the outreach policy suppresses an e-mail (`callahead_emails_suppressed_total{reason}`;
/// `outreach::policy::Decision::Suppress`'s codes).
pub const EMAIL_SUPPRESSIONS: [&str; 7] =
    ["no_consent", "unsubscribed", "cap_day", "cap_week", "answered", "no_address", "resolved"];

/// The results an e-mail job is counted under (`callahead_emails_total{result}`).
pub const EMAIL_RESULTS: [&str; 5] = ["sent", "deferred", "suppressed", "retried", "failed"];

/// The steps of a task measured by `callahead_task_step_seconds{step}`.
pub const TASK_STEPS: [&str; 3] = ["claim", "first_contact", "resolve"];

/// The queues (`vocab::Queue`), for the per-queue series exported at zero.
const QUEUES: [&str; 2] = ["fraud", "care"];

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(g.clone())).expect("unique metric");
    g
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets)).expect("valid metric");
    registry.register(Box::new(h.clone())).expect("unique metric");
    h
}

/// Latency buckets from 10 µs to 10 s, fine between 1 and 50 ms where the service's
/// end-to-end target (p99 under 25 ms) lies.
fn latency_buckets() -> Vec<f64> {
    vec![
        1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3, 8e-3, 1e-2, 1.2e-2, 1.5e-2, 2e-2, 2.5e-2,
        3e-2, 4e-2, 5e-2, 7.5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
    ]
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let batch_seconds = HistogramVec::new(
            HistogramOpts::new(
                "callahead_batch_stage_seconds",
                "Time per batch in each pipeline stage: decode and engine (per worker share), store, publish (the outbox relay).",
            )
                .buckets(latency_buckets()),
            &["stage"],
        )
        .expect("valid metric");
        r.register(Box::new(batch_seconds.clone())).expect("unique metric");
        let api_seconds = HistogramVec::new(
            HistogramOpts::new("callahead_api_request_seconds", "Time to answer an API request, by route.")
                .buckets(latency_buckets()),
            &["route"],
        )
        .expect("valid metric");
        r.register(Box::new(api_seconds.clone())).expect("unique metric");
        let rule_precision = prometheus::GaugeVec::new(
            Opts::new(
                "callahead_rule_precision",
                "Per rule: resolved tasks whose outcome confirmed the signal, divided by resolved tasks (from the store).",
            ),
            &["rule"],
        )
        .expect("valid metric");
        r.register(Box::new(rule_precision.clone())).expect("unique metric");
        let task_step_seconds = HistogramVec::new(
            HistogramOpts::new(
                "callahead_task_step_seconds",
                "Time from a task opening (its first signal) to a step, by queue and step: claim (taken by an agent while nobody held it), first_contact (the customer first reached) and resolve.",
            )
            .buckets(vec![
                60.0,
                300.0,
                900.0,
                1800.0,
                3600.0,
                2.0 * 3600.0,
                4.0 * 3600.0,
                8.0 * 3600.0,
                86400.0,
                3.0 * 86400.0,
                7.0 * 86400.0,
            ]),
            &["queue", "step"],
        )
        .expect("valid metric");
        r.register(Box::new(task_step_seconds.clone())).expect("unique metric");
        let m = Metrics {
            task_step_seconds,
            api_seconds,
            rule_precision,
            commands: counter_vec(
                &r,
                "callahead_commands_total",
                "Commands on tasks applied by this instance's engine, by action and result (applied, not_found, conflict, invalid).",
                &["action", "result"],
            ),
            task_outcomes: counter_vec(
                &r,
                "callahead_task_outcomes_total",
                "Tasks resolved by this instance's engine, by rule and outcome.",
                &["rule", "outcome"],
            ),
            tasks_overdue: gauge_vec(
                &r,
                "callahead_tasks_overdue",
                "Open or claimed tasks past their due time, by queue (from the store, each SLA tick).",
                &["queue"],
            ),
            api_requests: counter_vec(
                &r,
                "callahead_api_requests_total",
                "API requests, by route and status code.",
                &["route", "status"],
            ),
            emails: counter_vec(
                &r,
                "callahead_emails_total",
                "E-mails to customers by template and result (sent, deferred, suppressed, retried, failed).",
                &["template", "result"],
            ),
            emails_suppressed: counter_vec(
                &r,
                "callahead_emails_suppressed_total",
                "E-mails the policy suppressed, by template and reason (no_consent, unsubscribed, cap_day, cap_week, answered, no_address, resolved).",
                &["template", "reason"],
            ),
            email_first_contact_seconds: histogram(
                &r,
                "callahead_email_first_contact_seconds",
                "Time from a task opening to its first e-mail being accepted by the SMTP relay.",
                vec![1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4.0 * 3600.0, 12.0 * 3600.0, 86400.0],
            ),
            customer_answers: counter_vec(
                &r,
                "callahead_customer_answers_total",
                "Customers' one-click answers, by answer (yes, no, unsubscribe).",
                &["answer"],
            ),
            answer_seconds: histogram(
                &r,
                "callahead_customer_answer_seconds",
                "Time from an e-mail being sent to the customer's answer.",
                vec![60.0, 300.0, 900.0, 3600.0, 4.0 * 3600.0, 12.0 * 3600.0, 86400.0, 3.0 * 86400.0],
            ),
            auth_failures: counter(
                &r,
                "callahead_api_auth_failures_total",
                "API requests refused for a missing, unknown or revoked token.",
            ),
            events_consumed: counter_vec(
                &r,
                "callahead_events_consumed_total",
                "Input events consumed, by topic and event type.",
                &["topic", "type"],
            ),
            events_invalid: counter_vec(
                &r,
                "callahead_events_invalid_total",
                "Input messages refused, by reason.",
                &["reason"],
            ),
            dead_letters: counter(
                &r,
                "callahead_dead_letters_total",
                "Messages written to the dead-letter topic.",
            ),
            duplicates: counter(
                &r,
                "callahead_events_duplicate_total",
                "Redelivered events ignored (event id already applied).",
            ),
            stale: counter(
                &r,
                "callahead_events_stale_total",
                "Events older than their customer's de-duplication horizon (62 days before the customer's newest event): not applied, since a resend could not be told from a first delivery.",
            ),
            codes_unknown: counter_vec(
                &r,
                "callahead_codes_unknown_total",
                "Events whose contact reason or complaint category (in normal form, after aliases) is a code the rule pack does not know: counted as itself; add it, or an alias, to the rules' `[[code]]` table. By field (reason, category), never by value.",
                &["field"],
            ),
            engine_seconds: histogram(
                &r,
                "callahead_engine_seconds",
                "Engine time per event (decode excluded): the mean over each engine worker's share of a batch.",
                latency_buckets(),
            ),
            signals: counter_vec(
                &r,
                "callahead_signals_total",
                "Rule firings, by rule and mode (live or shadow).",
                &["rule", "mode"],
            ),
            task_changes: counter_vec(
                &r,
                "callahead_task_changes_total",
                "Tasks opened or enriched, by queue, rule and priority.",
                &["change", "queue", "rule", "priority"],
            ),
            complaints_without_procedure: counter(
                &r,
                "callahead_complaints_without_procedure_total",
                "Complaints that opened or enriched a care task in a category the complaint playbook has no procedure for (the default procedure was shown; the category is logged, and is the task's context.procedure.category).",
            ),
            tasks_open: gauge_vec(
                &r,
                "callahead_tasks_open",
                "Open tasks held by the engine, by queue.",
                &["queue"],
            ),
            consumer_lag: gauge_vec(
                &r,
                "callahead_consumer_lag_messages",
                "Messages behind the partition's high watermark.",
                &["topic", "partition"],
            ),
            end_to_end_seconds: histogram(
                &r,
                "callahead_end_to_end_seconds",
                "From the event's broker timestamp to its task changes being durable (the outbox relay then publishes them).",
                latency_buckets(),
            ),
            batch_seconds,
            customers_tracked: gauge(&r, "callahead_customers_tracked", "Customers with state in memory."),
            customers_expired: counter(
                &r,
                "callahead_customers_expired_total",
                "Customers forgotten after state.expire_after without an event (memory and checkpoints).",
            ),
            state_bytes: gauge_vec(
                &r,
                "callahead_state_bytes_estimate",
                "Bytes of per-customer state: in memory (measured from the capacities of a sample of customers, scaled to all, with the map and the interner) and as stored (customers x the mean size of the customers last checkpointed).",
                &["form"],
            ),
            rule_reloads: counter_vec(
                &r,
                "callahead_rule_reloads_total",
                "Rule set reloads, by result (ok or refused).",
                &["result"],
            ),
            rules_loaded: gauge(&r, "callahead_rules_loaded", "Rules in the running rule set."),
            store_errors: counter(&r, "callahead_store_errors_total", "Failed task-store writes (retried)."),
            publish_errors: counter(
                &r,
                "callahead_publish_errors_total",
                "Failed publishes to the tasks, actions or dead-letter topic (retried).",
            ),
            customers_erased: counter(
                &r,
                "callahead_customers_erased_total",
                "Customers erased (state, tasks, versions, e-mail records, command results).",
            ),
            retention_purged: counter_vec(
                &r,
                "callahead_retention_purged_total",
                "Rows deleted by the retention purge, by kind (resolved_tasks, audit, outreach).",
                &["kind"],
            ),
            card_actions: counter(
                &r,
                "callahead_card_actions_total",
                "Requests to the card system (blocks) published on the actions topic.",
            ),
            ready: gauge(
                &r,
                "callahead_ready",
                "1 when consuming normally, 0 while starting or when a dependency is down.",
            ),
            build_info: gauge_vec(
                &r,
                "callahead_build_info",
                "Build information; the value is always 1.",
                &["version"],
            ),
            messages_skipped: counter_vec(
                &r,
                "callahead_messages_skipped_total",
                "Input messages not processed: already in the restored state, or from a partition no longer owned.",
                &["reason"],
            ),
            checkpoint_seconds: histogram(
                &r,
                "callahead_state_checkpoint_seconds",
                "Time to write one partition's state checkpoint.",
                latency_buckets(),
            ),
            checkpointed_customers: counter(
                &r,
                "callahead_state_checkpointed_customers_total",
                "Customer states written to checkpoints.",
            ),
            checkpointed_bytes: counter(
                &r,
                "callahead_state_checkpointed_bytes_total",
                "Bytes of customer state written to checkpoints.",
            ),
            partitions_owned: gauge(&r, "callahead_partitions_owned", "Input partitions this instance owns."),
            partitions_restoring: gauge(
                &r,
                "callahead_partitions_restoring",
                "Partitions whose state is being restored (not processed until done).",
            ),
            restored_customers: counter(
                &r,
                "callahead_state_restored_customers_total",
                "Customer states restored from checkpoints.",
            ),
            restored_bytes: counter(
                &r,
                "callahead_state_restored_bytes_total",
                "Bytes of customer state restored from checkpoints.",
            ),
            restore_seconds: histogram(
                &r,
                "callahead_state_restore_seconds",
                "Time to restore one partition's state.",
                vec![0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0],
            ),
            restore_corrupt: counter(
                &r,
                "callahead_state_restore_corrupt_total",
                "Stored customer states that could not be decoded (those customers start afresh).",
            ),
            registry: r,
        };
        m.build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        m.export_known_labels();
        m
    }

    /// Creates, at zero, the series of every label value known without configuration, so that
    /// they are scraped before their first event: a rate over them is then 0, not absent.
    fn export_known_labels(&self) {
        for reason in REFUSAL_REASONS {
            self.events_invalid.with_label_values(&[reason]);
        }
        for field in ["reason", "category"] {
            self.codes_unknown.with_label_values(&[field]);
        }
        for result in ["ok", "refused"] {
            self.rule_reloads.with_label_values(&[result]);
        }
        for answer in ["yes", "no", "unsubscribe"] {
            self.customer_answers.with_label_values(&[answer]);
        }
        for reason in ["already_applied", "not_owned"] {
            self.messages_skipped.with_label_values(&[reason]);
        }
        for stage in ["engine", "store", "publish"] {
            self.batch_seconds.with_label_values(&[stage]);
        }
        for form in ["memory", "stored"] {
            self.state_bytes.with_label_values(&[form]);
        }
        // What the alerts on SLA breaches and expired claims count.
        for action in ["escalate", "expire_claim"] {
            for result in ["applied", "conflict"] {
                self.commands.with_label_values(&[action, result]);
            }
        }
        for queue in QUEUES {
            self.tasks_open.with_label_values(&[queue]);
            self.tasks_overdue.with_label_values(&[queue]);
            for step in TASK_STEPS {
                self.task_step_seconds.with_label_values(&[queue, step]);
            }
        }
    }

    /// Creates, at zero, the series that depend on the rule set: firings of each rule in its mode
    /// (`live` or `shadow`), each outcome a rule's tasks can end with, and every result of each
    /// e-mail template the rules use. Called when a rule set is loaded; series of rules since
    /// removed stay (a counter never goes back).
    pub fn export_rule_labels<'a>(
        &self,
        rules: impl IntoIterator<Item = (&'a str, &'a str)>,
        outcomes: impl IntoIterator<Item = (&'a str, &'a str)>,
        templates: impl IntoIterator<Item = &'a str>,
    ) {
        for (rule, mode) in rules {
            self.signals.with_label_values(&[rule, mode]);
        }
        for (rule, outcome) in outcomes {
            self.task_outcomes.with_label_values(&[rule, outcome]);
        }
        for template in templates {
            for result in EMAIL_RESULTS {
                self.emails.with_label_values(&[template, result]);
            }
            for reason in EMAIL_SUPPRESSIONS {
                self.emails_suppressed.with_label_values(&[template, reason]);
            }
        }
    }

    /// Queues the per-queue gauges are exported for.
    pub fn queues() -> &'static [&'static str] {
        &QUEUES
    }

    /// The text exposition format for `/metrics`.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("encoding to memory cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric_with_help() {
        let m = Metrics::new();
        m.events_consumed.with_label_values(&["t", "login"]).inc();
        m.events_invalid.with_label_values(&["malformed_json"]).inc();
        let text = m.render();
        for name in
            ["callahead_events_consumed_total", "callahead_build_info", "callahead_end_to_end_seconds"]
        {
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
        assert!(text.contains(r#"callahead_events_invalid_total{reason="malformed_json"} 1"#));
    }

    #[test]
    fn known_label_values_are_exported_at_zero() {
        let m = Metrics::new();
        m.export_rule_labels(
            [("impossible_travel", "live"), ("trial", "shadow")],
            [("impossible_travel", "legitimate")],
            ["fraud_confirmation"],
        );
        let text = m.render();
        for line in [
            r#"callahead_events_invalid_total{reason="missing_key"} 0"#,
            r#"callahead_rule_reloads_total{result="refused"} 0"#,
            r#"callahead_customer_answers_total{answer="no"} 0"#,
            r#"callahead_tasks_overdue{queue="care"} 0"#,
            r#"callahead_task_step_seconds_count{queue="fraud",step="first_contact"} 0"#,
            r#"callahead_signals_total{mode="shadow",rule="trial"} 0"#,
            r#"callahead_emails_total{result="failed",template="fraud_confirmation"} 0"#,
            r#"callahead_task_outcomes_total{outcome="legitimate",rule="impossible_travel"} 0"#,
            r#"callahead_commands_total{action="expire_claim",result="applied"} 0"#,
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn refusal_reasons_cover_what_decoding_refuses() {
        let bad: [&[u8]; 6] = [
            &[b' '; crate::event::MAX_EVENT_BYTES + 1],
            br#"{"event_id":"e","type":"card_transaction","customer_id":"c","ts":"2026-06-01T00:00:00Z","card_id":"4111111111111111","amount":1,"currency":"EUR","channel":"ecommerce","status":"approved","merchant":{"name":"m","country":"FR","city":"Paris"}}"#,
            b"{not json",
            br#"{"event_id":"e","type":"teleport","customer_id":"c","ts":"2026-06-01T00:00:00Z"}"#,
            br#"{"event_id":"e","type":"login","customer_id":"c","ts":"2026-06-01T00:00:00Z"}"#,
            br#"{"event_id":"e","type":"complaint","customer_id":"c","ts":"yesterday","category":"x","severity":"low"}"#,
        ];
        for bytes in bad {
            let reason = crate::event::decode(bytes).expect_err("refused").reason_code();
            assert!(REFUSAL_REASONS.contains(&reason), "{reason}");
        }
        for bytes in [&b"{"[..], br#"{"command_id":""}"#] {
            let reason = crate::command::decode(bytes).expect_err("refused").reason_code();
            assert!(REFUSAL_REASONS.contains(&reason), "{reason}");
        }
    }
}
