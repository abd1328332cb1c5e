//! The sender: a worker off the event path that delivers the outbox of e-mail jobs.
//!
//! Every `poll_ms` it takes the jobs that are due, reads the task they belong to (the store's
//! latest version), asks the policy (consent, quiet hours, cap, a recent answer), and sends,
//! defers or suppresses. Every decision is recorded on the task by a command to the engine (one
//! source of truth), and the job's row moves on. A failed delivery is retried with exponential
//! back-off and jitter, and after `max_attempts` the job is `failed` (recorded on the task).
//! An SMTP outage therefore delays e-mails and nothing else: the event loop never waits on SMTP.
//!
//! Nothing lost, nothing doubled: a job exists once per task and template (written with the
//! task version that asked for it); a job is marked sent right after the relay accepted it. A
//! crash in between sends it again on restart, with the same Message-ID (derived from the job),
//! so the duplicate is recognisable; that window is one store write long.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use tracing::warn;

use super::links::{self, LinkFields, LinkKey};
use super::policy::{Decision, Facts, Policy};
use super::templates::{MailContext, Templates};
use crate::api::now;
use crate::bus::CommandBus;
use crate::command::{Action, Actor, Command, Role};
use crate::config::OutreachConfig;
use crate::metrics::Metrics;
use crate::store::{LinkRow, OutreachJob, TaskStore};
use crate::time::{Timestamp, HOUR, SECOND};
use crate::vocab::Queue;

/// Where e-mails go.
#[derive(Clone)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// `.eml` files in a directory (the demo; trials).
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl Transport {
    /// The transport the configuration names. STARTTLS is required when asked for: a relay that
    /// does not offer it is an error, never a fall-back to plain text.
    pub fn from_config(c: &OutreachConfig) -> Result<Transport> {
        if !c.mail_dir.is_empty() {
            std::fs::create_dir_all(&c.mail_dir).with_context(|| format!("cannot create {}", c.mail_dir))?;
            return Ok(Transport::Files(AsyncFileTransport::new(&c.mail_dir)));
        }
        let builder = match c.smtp_tls.as_str() {
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.smtp_host)?,
            "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.smtp_host)?,
            _ => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.smtp_host),
        };
        let mut builder = builder.port(c.smtp_port).timeout(Some(Duration::from_secs(20)));
        if !c.smtp_username.is_empty() {
            builder = builder.credentials(Credentials::new(c.smtp_username.clone(), c.smtp_password.clone()));
        }
        Ok(Transport::Smtp(builder.build()))
    }

    /// Sends one message; an error says whether the relay refused it for good (an SMTP 5xx:
    /// retrying cannot help) and why, without any e-mail address (see [`SendError`]).
    async fn send(&self, message: Message) -> Result<(), SendError> {
        match self {
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| SendError {
                permanent: e.is_permanent(),
                reason: without_addresses(&e.to_string()),
            }),
            Transport::Files(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError { permanent: false, reason: without_addresses(&e.to_string()) }),
        }
    }
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct SendError {
    /// The relay refused it for good (SMTP 5xx): the job fails at once.
    pub permanent: bool,
    /// The relay's words, every e-mail address in them replaced (a relay's refusal often
    /// quotes the recipient: `550 5.1.1 <anna@example.com>: user unknown`).
    pub reason: String,
}

/// `text` with every word that holds an `@` (an e-mail address, in brackets or not) replaced
/// by `<address>`: relay errors go to logs and to the task, which must carry no address.
pub fn without_addresses(text: &str) -> String {
    text.split_inclusive(char::is_whitespace)
        .map(|word| {
            if word.contains('@') {
                let trailing = &word[word.trim_end().len()..];
                format!("<address>{trailing}")
            } else {
                word.to_string()
            }
        })
        .collect()
}

/// RFC 8058 one-click unsubscribe headers.
#[derive(Debug, Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[derive(Debug, Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_string())
    }
}

/// The sender worker.
#[derive(Clone)]
pub struct Sender {
    pub store: TaskStore,
    pub bus: CommandBus,
    pub templates: Arc<Templates>,
    pub policy: Policy,
    pub keys: Arc<Vec<LinkKey>>,
    pub transport: Transport,
    pub config: OutreachConfig,
    pub metrics: Arc<Metrics>,
    /// DKIM signing, when configured.
    pub dkim: Option<Arc<DkimConfig>>,
}

/// The DKIM signing configuration of `outreach.dkim_*` (RSA, PKCS#1 PEM key file), or why not.
pub fn dkim(c: &OutreachConfig) -> Result<Option<Arc<DkimConfig>>, String> {
    if c.dkim_key_file.is_empty() {
        return Ok(None);
    }
    let pem = std::fs::read_to_string(&c.dkim_key_file)
        .map_err(|e| format!("cannot read {}: {e}", c.dkim_key_file))?;
    let key = DkimSigningKey::new(&pem, DkimSigningAlgorithm::Rsa)
        .map_err(|e| format!("{} is not an RSA private key in PKCS#1 PEM: {e}", c.dkim_key_file))?;
    let mut headers: Vec<HeaderName> = ["From", "To", "Subject", "Date", "Message-ID"]
        .into_iter()
        .map(HeaderName::new_from_ascii_str)
        .collect();
    headers.push(HeaderName::new_from_ascii_str("MIME-Version"));
    Ok(Some(Arc::new(DkimConfig::new(
        c.dkim_selector.clone(),
        c.dkim_domain.clone(),
        key,
        headers,
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))))
}

impl Sender {
    /// A sender for `config`: its policy, transport and DKIM signing made from it.
    pub fn new(
        store: TaskStore,
        bus: CommandBus,
        templates: Arc<Templates>,
        keys: Arc<Vec<LinkKey>>,
        config: OutreachConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Sender> {
        Ok(Sender {
            policy: Policy::from_config(&config),
            transport: Transport::from_config(&config)?,
            dkim: dkim(&config).map_err(anyhow::Error::msg)?,
            store,
            bus,
            templates,
            keys,
            config,
            metrics,
        })
    }
}

/// Jobs looked at per poll.
const PER_POLL: i64 = 200;

impl Sender {
    /// Runs until the process ends.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.poll_ms.max(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.once().await {
                warn!(error = %e, "outreach poll failed; trying again");
            }
        }
    }

    /// One poll: every due job handled. Returns how many.
    pub async fn once(&self) -> Result<usize> {
        let jobs = self.store.due_jobs(now().0, PER_POLL).await?;
        for job in &jobs {
            if let Err(e) = self.handle(job).await {
                warn!(job = %job.job_id, error = %e, "outreach job could not be handled; retrying later");
            }
        }
        Ok(jobs.len())
    }

    async fn handle(&self, job: &OutreachJob) -> Result<()> {
        let at = now();
        let Some(row) = self.store.task_row(&job.task_id).await? else {
            self.store
                .update_job(&job.job_id, "suppressed", at.0, job.attempts, None, Some("no such task"))
                .await?;
            return Ok(());
        };
        let task: Value = serde_json::from_str(&row.body).unwrap_or_default();
        let profile = &task["context"]["profile"];
        let queue = if row.queue == "care" { Queue::Care } else { Queue::Fraud };
        let (day, week) = Policy::windows(at);
        // One team a day: a fraud e-mail (sent, or queued to go) holds care e-mails for a day;
        // an agent holding a fraud task holds them, looked at again hourly, until it is resolved.
        let fraud_contact_until = if queue == Queue::Care {
            let (last_sent, held) = self.store.fraud_contact(&job.customer_id, at.0).await?;
            let by_mail = last_sent.map(|ms| Timestamp(ms + 24 * HOUR));
            let by_agent = held.then(|| Timestamp(at.0 + HOUR));
            by_mail.into_iter().chain(by_agent).max()
        } else {
            None
        };
        let facts = Facts {
            now: at,
            queue,
            any_hour: job.any_hour,
            task_resolved: row.status == "resolved",
            email: profile["email"].as_str(),
            consent_email: profile["email_consent"].as_bool().unwrap_or(false),
            opted_out: self.store.opted_out(&job.customer_id).await?,
            timezone: profile["timezone"].as_str(),
            sent_last_day: self.store.sent_since(&job.customer_id, day.0).await?,
            sent_last_week: self.store.sent_since(&job.customer_id, week.0).await?,
            answered_recently: self
                .store
                .answered_since(
                    &job.customer_id,
                    &job.template,
                    at.0 - self.policy.answer_quiet_days * 24 * HOUR,
                )
                .await?,
            fraud_contact_until,
        };
        match self.policy.decide(&facts) {
            Decision::Send => self.deliver(job, &task, at).await,
            Decision::Defer { until, reason } => {
                if job.status != "deferred" {
                    self.record(job, "deferred", &reason, at).await;
                    self.metrics.emails.with_label_values(&[&job.template, "deferred"]).inc();
                }
                self.store.update_job(&job.job_id, "deferred", until.0, job.attempts, None, None).await?;
                Ok(())
            }
            Decision::Suppress { code, reason } => {
                self.record(job, "suppressed", &reason, at).await;
                self.metrics.emails.with_label_values(&[&job.template, "suppressed"]).inc();
                self.metrics.emails_suppressed.with_label_values(&[&job.template, code]).inc();
                self.store
                    .update_job(&job.job_id, "suppressed", at.0, job.attempts, None, Some(&reason))
                    .await?;
                Ok(())
            }
        }
    }

    /// Renders, signs links, sends; marks the job sent or schedules a retry.
    async fn deliver(&self, job: &OutreachJob, task: &Value, at: Timestamp) -> Result<()> {
        let profile = &task["context"]["profile"];
        let email = profile["email"].as_str().unwrap_or_default().to_string();
        let mut ctx =
            payment_context(task, profile["timezone"].as_str().unwrap_or(&self.policy.default_timezone));
        ctx.name = profile["name"].as_str().unwrap_or("").to_string();
        ctx.bank_name = self.config.bank_name.clone();
        let expires = at.0 + self.config.link_ttl_hours as i64 * HOUR;
        let answers: &[&str] =
            if job.template.starts_with("care") { &["unsubscribe"] } else { &["yes", "no"] };
        for answer in answers {
            let url = self.link(job, answer, expires).await?;
            match *answer {
                "yes" => ctx.yes_url = url,
                "no" => ctx.no_url = url,
                _ => ctx.unsubscribe_url = url,
            }
        }
        let language = profile["language"].as_str().unwrap_or("en");
        let rendered = self.templates.render(&job.template, language, &ctx).map_err(anyhow::Error::msg)?;
        let to = Mailbox::new(
            (!ctx.name.is_empty()).then(|| ctx.name.clone()),
            email.parse().with_context(|| {
                format!("the profile's e-mail address of {} is not valid", job.customer_id)
            })?,
        );
        // Opaque, and the same on every attempt: a keyed hash of the job (never the task id),
        // then the template's name, which is no secret.
        let key = self.keys.first().context("no link signing key")?;
        let message_id = format!(
            "<{}.{}@{}>",
            links::opaque_id(key, &job.job_id),
            job.template,
            self.config.message_domain
        );
        let mut builder = Message::builder()
            .from(self.config.from.parse().context("outreach.from is not a valid address")?)
            .to(to)
            .subject(rendered.subject.clone())
            .message_id(Some(message_id.clone()));
        if !ctx.unsubscribe_url.is_empty() {
            builder = builder
                .header(ListUnsubscribe(format!("<{}>", ctx.unsubscribe_url)))
                .header(ListUnsubscribePost);
        }
        let mut message =
            builder.multipart(MultiPart::alternative_plain_html(rendered.text, rendered.html))?;
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        match self.transport.send(message).await {
            Ok(()) => {
                self.store
                    .update_job(&job.job_id, "sent", at.0, job.attempts + 1, Some((at.0, &message_id)), None)
                    .await?;
                self.metrics.emails.with_label_values(&[&job.template, "sent"]).inc();
                // The task's first e-mail to the customer (retries included: they delay it).
                if self.store.sent_for_task(&job.task_id).await? == 1 {
                    let opened = task["opened_at"].as_str().and_then(|t| Timestamp::parse_rfc3339(t).ok());
                    let since = job.created_ms.max(opened.map_or(0, |o| o.0));
                    self.metrics.email_first_contact_seconds.observe((at.0 - since).max(0) as f64 / 1000.0);
                }
                let reason = format!("to {} in {} ({message_id})", masked(&email), rendered.language);
                self.record(job, "sent", &reason, at).await;
                Ok(())
            }
            Err(SendError { permanent, reason: e }) => {
                let attempts = job.attempts + 1;
                if permanent || attempts >= self.config.max_attempts {
                    self.metrics.emails.with_label_values(&[&job.template, "failed"]).inc();
                    let reason = if permanent {
                        format!("refused by the relay for good (not retried): {e}")
                    } else {
                        format!("gave up after {attempts} attempts: {e}")
                    };
                    warn!(job = %job.job_id, attempts, error = %e, permanent, "SMTP delivery failed; giving up");
                    self.record(job, "failed", &reason, at).await;
                    self.store.update_job(&job.job_id, "failed", at.0, attempts, None, Some(&e)).await?;
                } else {
                    self.metrics.emails.with_label_values(&[&job.template, "retried"]).inc();
                    let next = at.0 + backoff(attempts);
                    warn!(job = %job.job_id, attempts, error = %e, "SMTP delivery failed; retrying");
                    let status = if job.status == "deferred" { "deferred" } else { "pending" };
                    self.store.update_job(&job.job_id, status, next, attempts, None, Some(&e)).await?;
                }
                Ok(())
            }
        }
    }

    /// Stores a link's fields and returns its URL.
    async fn link(&self, job: &OutreachJob, answer: &str, expires_ms: i64) -> Result<String> {
        let key = self.keys.first().context("no link signing key")?;
        let nonce = links::nonce();
        let fields = LinkFields {
            nonce: &nonce,
            task_id: &job.task_id,
            customer_id: &job.customer_id,
            answer,
            expires_ms,
        };
        let token = links::sign(key, &fields);
        self.store
            .add_link(&LinkRow {
                nonce: nonce.clone(),
                kid: key.kid.clone(),
                job_id: job.job_id.clone(),
                task_id: job.task_id.clone(),
                customer_id: job.customer_id.clone(),
                answer: answer.to_string(),
                expires_ms,
                used_ms: None,
                voided_ms: None,
            })
            .await?;
        let path = if answer == "unsubscribe" { "u" } else { "r" };
        Ok(format!("{}/{path}/{token}", self.config.public_url.trim_end_matches('/')))
    }

    /// Records a decision on the task (a command to the engine that owns the customer).
    async fn record(&self, job: &OutreachJob, decision: &str, reason: &str, at: Timestamp) {
        let command = Command {
            command_id: format!("outreach_{}_{decision}_{}", job.job_id, job.attempts),
            customer_id: job.customer_id.clone(),
            task_id: job.task_id.clone(),
            at,
            actor: Actor { name: "outreach".into(), role: Role::System },
            action: Action::Outreach {
                job: job.job_id.clone(),
                template: job.template.clone(),
                decision: decision.to_string(),
                reason: reason.to_string(),
            },
        };
        if let Err(e) = self.bus.send(&command).await {
            warn!(job = %job.job_id, error = %e, "cannot record an outreach decision on its task");
        }
    }
}

/// Exponential back-off with jitter: 2 s, 4 s, 8 s … at most 10 minutes, ±20%.
pub fn backoff(attempts: i64) -> i64 {
    let base = (2 * SECOND).saturating_mul(1 << attempts.clamp(0, 12)).min(10 * 60 * SECOND);
    let jitter = base / 5;
    base - jitter + (fastrand::i64(0..=2 * jitter))
}

/// `a***@example.com`: enough for an agent to recognise the address, no more.
fn masked(email: &str) -> String {
    match email.split_once('@') {
        Some((user, domain)) => format!("{}***@{domain}", user.chars().next().unwrap_or('*')),
        None => "***".into(),
    }
}

/// The payment an e-mail asks about: the newest card payment among the task's evidence, with
/// its time in the customer's zone and the card as its last four characters.
pub fn payment_context(task: &Value, zone: &str) -> MailContext {
    let mut ctx = MailContext::default();
    let events = task["context"]["events"].as_array().cloned().unwrap_or_default();
    let Some(e) = events.iter().rev().find(|e| e["type"] == "card_transaction").or(events.last()) else {
        return ctx;
    };
    ctx.amount = e["money"]["amount"].as_f64().map(|a| format!("{a:.2}")).unwrap_or_default();
    ctx.currency = e["money"]["currency"].as_str().unwrap_or("").to_string();
    ctx.city = e["city"].as_str().unwrap_or("").to_string();
    ctx.country = e["country"].as_str().unwrap_or("").to_string();
    ctx.card = e["card_id"].as_str().map(crate::detect::masked_card).unwrap_or_default();
    // The merchant as the newest signal that names one has it (the evidence line is in the
    // customer's language); else from an English line, "contactless 45.00 EUR at Musee
    // d'Orsay, Paris FR" → "Musee d'Orsay".
    let from_facts = task["signals"].as_array().into_iter().flatten().rev().find_map(|s| {
        let facts = &s["facts"];
        facts["to_merchant"].as_str().or(facts["merchant"].as_str())
    });
    let summary = e["summary"].as_str().unwrap_or("");
    ctx.merchant = match from_facts {
        Some(merchant) => merchant.to_string(),
        None => summary
            .split_once(" at ")
            .map(|(_, rest)| rest.rsplit_once(", ").map_or(rest, |(m, _)| m).to_string())
            .unwrap_or_default(),
    };
    if let Some(at) = e["at"].as_str().and_then(|t| Timestamp::parse_rfc3339(t).ok()) {
        let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
        if let Ok(t) = jiff::Timestamp::from_millisecond(at.0) {
            let local = t.to_zoned(tz);
            ctx.local_time = format!("{:02}:{:02}", local.hour(), local.minute());
            ctx.date = format!("{:04}-{:02}-{:02}", local.year(), local.month(), local.day());
        }
    }
    ctx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_errors_lose_every_address() {
        let e = "permanent error (550): 5.1.1 <anna.petrova@example.com>: Recipient address rejected, \
                 also ivan@example.org.";
        let clean = without_addresses(e);
        assert!(!clean.contains('@') && !clean.contains("anna") && !clean.contains("ivan"), "{clean}");
        assert!(clean.starts_with("permanent error (550): 5.1.1 <address> Recipient"), "{clean}");
    }

    #[test]
    fn the_payment_is_described_in_the_customers_time_and_the_card_masked() {
        let task = serde_json::json!({"context": {"events": [
            {"type": "card_transaction", "at": "2026-07-01T02:00:00.000Z", "summary": "contactless 52173.91 KHR at Riverside Cafe, Phnom Penh KH",
             "money": {"amount": 52173.91, "currency": "KHR"}, "city": "Phnom Penh", "country": "KH", "card_id": "pp-k1"},
            {"type": "card_transaction", "at": "2026-07-01T02:30:00.000Z", "summary": "card_present 45.00 EUR at Musee d'Orsay, Paris FR",
             "money": {"amount": 45.0, "currency": "EUR"}, "city": "Paris", "country": "FR", "card_id": "4000123412341234"}
        ]}});
        let c = payment_context(&task, "Europe/London");
        assert_eq!(
            (c.amount.as_str(), c.currency.as_str(), c.merchant.as_str()),
            ("45.00", "EUR", "Musee d'Orsay")
        );
        assert_eq!((c.local_time.as_str(), c.date.as_str()), ("03:30", "2026-07-01"), "London summer time");
        assert_eq!(c.card, "…1234");
        assert!(!c.card.contains("4000"));
        assert_eq!(masked("anna.petrova@example.com"), "a***@example.com");
    }

    #[test]
    fn back_off_grows_with_jitter_and_a_ceiling() {
        for attempts in 1..20 {
            let b = backoff(attempts);
            let base = (2 * SECOND).saturating_mul(1 << attempts.clamp(0, 12)).min(10 * 60 * SECOND);
            assert!(b >= base * 4 / 5 && b <= base * 6 / 5, "{attempts}: {b}");
        }
        assert!(backoff(30) <= 12 * 60 * SECOND);
    }
}
