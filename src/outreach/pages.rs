//! The customer's answer pages, reached from the links in an e-mail.
//!
//! Mail scanners (Safe Links, Proofpoint, Mimecast) fetch links and some run scripts, so a GET
//! (or a HEAD) only shows a page with the payment and one button, and only the button's POST
//! acts; the page has no script at all and never submits itself. A forged, altered, expired or
//! reused link gets the same neutral page with the same status, revealing nothing about the
//! customer or the task. Every page is `no-store`, `no-referrer`, with a strict CSP. An answer
//! goes to the engine as a command, like an agent's action (one source of truth).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use super::links::{self, LinkFields, LinkKey};
use crate::api::now;
use crate::bus::CommandBus;
use crate::command::{Action, Actor, Command, Role};
use crate::metrics::Metrics;
use crate::store::{LinkRow, TaskStore};

/// What the pages need.
#[derive(Clone)]
pub struct Pages {
    pub store: TaskStore,
    pub bus: CommandBus,
    pub keys: Arc<Vec<LinkKey>>,
    pub metrics: Arc<Metrics>,
}

/// `/r/{token}` (answers) and `/u/{token}` (unsubscribe).
pub fn routes(pages: Pages) -> Router {
    Router::new()
        .route("/r/{token}", get(show).post(answer))
        .route("/u/{token}", get(show_unsubscribe).post(unsubscribe))
        .with_state(pages)
}

/// The CSP of the pages: nothing may load, forms post only here.
const CSP: &str = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn page(status: StatusCode, lang: &str, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{title}</title></head><body>{body}</body></html>",
        title = escape(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    r
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The one answer to every bad link: the same page, the same status, in both languages.
fn neutral() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "en",
        "Link not valid",
        "<p>This link is not valid, or not any more. If you have a question, call the number on the \
         back of your card or use your bank's app.</p><p lang=\"ru\">Эта ссылка недействительна. Если у вас \
         есть вопрос, позвоните по номеру на обороте карты или воспользуйтесь приложением банка.</p>",
    )
}

/// The link behind a token if it is genuine, unexpired and unused, for `kinds` of answer.
async fn valid(p: &Pages, token: &str, kinds: &[&str]) -> Option<LinkRow> {
    let (_, nonce) = links::parse(token)?;
    let row = p.store.link(nonce).await.ok()??;
    let fields = LinkFields {
        nonce: &row.nonce,
        task_id: &row.task_id,
        customer_id: &row.customer_id,
        answer: &row.answer,
        expires_ms: row.expires_ms,
    };
    let ok = links::verify(&p.keys, token, &fields)
        && row.used_ms.is_none()
        && row.expires_ms > now().0
        && kinds.contains(&row.answer.as_str());
    ok.then_some(row)
}

/// The task's language and the payment in words.
async fn about(p: &Pages, row: &LinkRow) -> (String, String) {
    let body = p.store.task(&row.task_id).await.ok().flatten().map(|(_, b)| b).unwrap_or_default();
    let task: Value = serde_json::from_str(&body).unwrap_or_default();
    let lang = task["context"]["profile"]["language"].as_str().unwrap_or("en");
    let lang = if lang == "ru" { "ru" } else { "en" };
    let zone = task["context"]["profile"]["timezone"].as_str().unwrap_or("UTC");
    let c = super::sender::payment_context(&task, zone);
    let what = if lang == "ru" {
        format!(
            "{} {}, {}, {}, {}, {} в {}",
            c.amount, c.currency, c.merchant, c.city, c.country, c.date, c.local_time
        )
    } else {
        format!(
            "{} {} at {}, {}, {}, on {} at {}",
            c.amount, c.currency, c.merchant, c.city, c.country, c.date, c.local_time
        )
    };
    (lang.to_string(), what)
}

async fn show(State(p): State<Pages>, Path(token): Path<String>) -> Response {
    let Some(row) = valid(&p, &token, &["yes", "no"]).await else { return neutral() };
    let (lang, what) = about(&p, &row).await;
    let (title, question, button) = match (lang.as_str(), row.answer.as_str()) {
        ("ru", "yes") => {
            ("Подтверждение платежа", "Вы подтверждаете, что совершили этот платёж?", "Да, это я")
        }
        ("ru", _) => {
            ("Подтверждение платежа", "Вы сообщаете, что этот платёж совершили НЕ вы?", "Нет, это не я")
        }
        (_, "yes") => ("Confirm a payment", "Do you confirm that you made this payment?", "Yes, that was me"),
        _ => (
            "Confirm a payment",
            "Are you telling us that you did NOT make this payment?",
            "No, it wasn't me",
        ),
    };
    let body = format!(
        "<h1>{}</h1><p><strong>{}</strong></p><p>{}</p><form method=\"post\"><button type=\"submit\">{}</button></form>",
        escape(title),
        escape(&what),
        escape(question),
        escape(button)
    );
    page(StatusCode::OK, &lang, title, &body)
}

async fn answer(State(p): State<Pages>, Path(token): Path<String>) -> Response {
    let Some(row) = valid(&p, &token, &["yes", "no"]).await else { return neutral() };
    let at = now();
    match p.store.use_link(&row.nonce, &row.job_id, at.0).await {
        Ok(true) => {}
        _ => return neutral(),
    }
    let command = Command {
        command_id: format!("answer_{}", row.nonce),
        customer_id: row.customer_id.clone(),
        task_id: row.task_id.clone(),
        at,
        actor: Actor { name: "customer".into(), role: Role::Customer },
        action: Action::CustomerAnswer { answer: row.answer.clone() },
    };
    if p.bus.send(&command).await.is_err() {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "en",
            "Please try again",
            "<p>We could not record your answer just now. Please call the number on the back of your card.</p>",
        );
    }
    p.metrics.customer_answers.with_label_values(&[&row.answer]).inc();
    if let Ok(jobs) = p.store.jobs_of_task(&row.task_id).await {
        if let Some(sent) = jobs.iter().find(|j| j.job_id == row.job_id).and_then(|j| j.sent_ms) {
            p.metrics.answer_seconds.observe((at.0 - sent).max(0) as f64 / 1000.0);
        }
    }
    // Wait briefly for the engine, so the page can say it is done (it is recorded either way).
    let _ = p.store.await_command_result(&command.command_id, Duration::from_secs(5)).await;
    let (lang, _) = about(&p, &row).await;
    let text = match (lang.as_str(), row.answer.as_str()) {
        ("ru", "yes") => "Спасибо! Мы отметили, что платёж совершили вы. Больше ничего делать не нужно.",
        ("ru", _) => "Спасибо, что сообщили. Мы блокируем карту, и специалист скоро вам позвонит. Если хотите позвонить нам сами, используйте номер на обороте карты.",
        (_, "yes") => "Thank you. We have noted that you made this payment. There is nothing more to do.",
        _ => "Thank you for telling us. We are blocking the card and a specialist will call you shortly. If you want to call us, use the number on the back of your card.",
    };
    let title = if lang == "ru" { "Спасибо" } else { "Thank you" };
    page(StatusCode::OK, &lang, title, &format!("<h1>{title}</h1><p>{}</p>", escape(text)))
}

async fn show_unsubscribe(State(p): State<Pages>, Path(token): Path<String>) -> Response {
    let Some(row) = valid(&p, &token, &["unsubscribe"]).await else { return neutral() };
    let (lang, _) = about(&p, &row).await;
    let (title, text, button) = if lang == "ru" {
        ("Отписка", "Больше не получать от нас писем о заботе о клиентах?", "Отписаться")
    } else {
        ("Unsubscribe", "Stop receiving customer-care e-mails from us?", "Unsubscribe")
    };
    let body = format!(
        "<h1>{title}</h1><p>{text}</p><form method=\"post\"><button type=\"submit\">{button}</button></form>"
    );
    page(StatusCode::OK, &lang, title, &body)
}

/// One-click unsubscribe (RFC 8058: the mail client POSTs `List-Unsubscribe=One-Click`).
async fn unsubscribe(State(p): State<Pages>, Path(token): Path<String>) -> Response {
    let Some(row) = valid(&p, &token, &["unsubscribe"]).await else { return neutral() };
    let at = now();
    if !matches!(p.store.use_link(&row.nonce, &row.job_id, at.0).await, Ok(true)) {
        return neutral();
    }
    if p.store.opt_out(&row.customer_id, &at.to_string()).await.is_err() {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "en",
            "Please try again",
            "<p>Please try again later.</p>",
        );
    }
    p.metrics.customer_answers.with_label_values(&["unsubscribe"]).inc();
    let (lang, _) = about(&p, &row).await;
    let (title, text) = if lang == "ru" {
        ("Готово", "Вы отписаны от писем о заботе о клиентах. Важные сообщения о безопасности карты мы по-прежнему будем присылать.")
    } else {
        ("Done", "You will not receive customer-care e-mails any more. We will still write about the security of your card.")
    };
    page(StatusCode::OK, &lang, title, &format!("<h1>{title}</h1><p>{text}</p>"))
}
