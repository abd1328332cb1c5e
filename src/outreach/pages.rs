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
    usable(&p.keys, token, &row, kinds, now().0).then_some(row)
}

/// True if `token` is the genuine token of `row` (under one of `keys`), of one of `kinds`, not
/// used and not expired at `now_ms`. Pure, so expiry, reuse and tampering are unit-tested.
fn usable(keys: &[LinkKey], token: &str, row: &LinkRow, kinds: &[&str], now_ms: i64) -> bool {
    let fields = LinkFields {
        nonce: &row.nonce,
        task_id: &row.task_id,
        customer_id: &row.customer_id,
        answer: &row.answer,
        expires_ms: row.expires_ms,
    };
    links::verify(keys, token, &fields)
        && row.used_ms.is_none()
        && row.expires_ms > now_ms
        && kinds.contains(&row.answer.as_str())
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

/// What the page says when an agent has closed the matter: the number on the card, and for a
/// "no" link, that the customer can still tell us.
fn closed_text(lang: &str, answer: &str) -> &'static str {
    match (lang, answer) {
        ("ru", "no") => "Этот вопрос уже закрыт специалистом. Если этот платёж совершили не вы, нажмите кнопку ниже или позвоните по номеру на обороте карты.",
        ("ru", _) => "Этот вопрос уже закрыт специалистом. Если у вас есть вопрос, позвоните по номеру на обороте карты.",
        (_, "no") => "This matter has already been closed by a specialist. If you did not make this payment, press the button below or call the number on the back of your card.",
        _ => "This matter has already been closed by a specialist. If you have a question, call the number on the back of your card.",
    }
}

async fn show(State(p): State<Pages>, Path(token): Path<String>) -> Response {
    let Some(row) = valid(&p, &token, &["yes", "no"]).await else { return neutral() };
    let (lang, what) = about(&p, &row).await;
    let title = if lang == "ru" { "Подтверждение платежа" } else { "Confirm a payment" };
    let (question, button) = match (lang.as_str(), row.answer.as_str()) {
        ("ru", "yes") => ("Вы подтверждаете, что совершили этот платёж?", "Да, это я"),
        ("ru", _) => ("Вы сообщаете, что этот платёж совершили НЕ вы?", "Нет, это не я"),
        (_, "yes") => ("Do you confirm that you made this payment?", "Yes, that was me"),
        _ => ("Are you telling us that you did NOT make this payment?", "No, it wasn't me"),
    };
    let form = format!("<form method=\"post\"><button type=\"submit\">{}</button></form>", escape(button));
    let body = if row.voided_ms.is_some() {
        let form = if row.answer == "no" { form.as_str() } else { "" };
        format!(
            "<h1>{}</h1><p><strong>{}</strong></p><p>{}</p>{form}",
            escape(title),
            escape(&what),
            escape(closed_text(&lang, &row.answer))
        )
    } else {
        format!(
            "<h1>{}</h1><p><strong>{}</strong></p><p>{}</p>{form}",
            escape(title),
            escape(&what),
            escape(question)
        )
    };
    page(StatusCode::OK, &lang, title, &body)
}

async fn answer(State(p): State<Pages>, Path(token): Path<String>) -> Response {
    let Some(row) = valid(&p, &token, &["yes", "no"]).await else { return neutral() };
    let (lang, _) = about(&p, &row).await;
    let thanks = if lang == "ru" { "Спасибо" } else { "Thank you" };
    if row.voided_ms.is_some() && row.answer == "yes" {
        // Closed by an agent: a "yes" has nothing left to do.
        return page(
            StatusCode::OK,
            &lang,
            thanks,
            &format!("<h1>{thanks}</h1><p>{}</p>", closed_text(&lang, "yes")),
        );
    }
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
    // Wait briefly for the engine, so the page says what was done (it is recorded either way:
    // the command is on the bus, and the engine applies it in order).
    let result =
        p.store.await_command_result(&command.command_id, Duration::from_secs(5)).await.ok().flatten();
    let applied = result.as_ref().is_some_and(|r| r.refusal.is_none());
    let text = match (lang.as_str(), row.answer.as_str(), &result) {
        (_, "yes", Some(r)) if r.refusal.is_some() => closed_text(&lang, "yes"),
        ("ru", "yes", _) => "Спасибо! Мы отметили ваш ответ. Больше ничего делать не нужно.",
        (_, "yes", _) => "Thank you. We have noted your answer. There is nothing more to do.",
        ("ru", _, _) if applied => "Спасибо, что сообщили. Мы запросили блокировку вашей карты; специалист скоро вам позвонит. Если хотите позвонить нам сами, используйте номер на обороте карты.",
        (_, _, _) if applied => "Thank you for telling us. We have asked for your card to be blocked; a specialist will call you shortly. If you want to call us, use the number on the back of your card.",
        ("ru", _, _) => "Спасибо, что сообщили. Мы получили ваш ответ, и специалист скоро вам позвонит. Если хотите позвонить нам сами, используйте номер на обороте карты.",
        _ => "Thank you for telling us. We have received your answer and a specialist will call you shortly. If you want to call us, use the number on the back of your card.",
    };
    page(StatusCode::OK, &lang, thanks, &format!("<h1>{thanks}</h1><p>{}</p>", escape(text)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn link(key: &LinkKey, answer: &str, expires_ms: i64) -> (String, LinkRow) {
        let nonce = links::nonce();
        let fields = LinkFields { nonce: &nonce, task_id: "tsk_1", customer_id: "c1", answer, expires_ms };
        let token = links::sign(key, &fields);
        let row = LinkRow {
            nonce: nonce.clone(),
            kid: key.kid.clone(),
            job_id: "tsk_1.fraud_confirmation".into(),
            task_id: "tsk_1".into(),
            customer_id: "c1".into(),
            answer: answer.into(),
            expires_ms,
            used_ms: None,
            voided_ms: None,
        };
        (token, row)
    }

    #[test]
    fn a_link_is_usable_once_until_it_expires_and_only_as_signed() {
        let key = LinkKey::random("k1");
        let keys = [key.clone()];
        let (token, row) = link(&key, "no", 10_000);
        assert!(usable(&keys, &token, &row, &["yes", "no"], 9_999));
        assert!(!usable(&keys, &token, &row, &["yes", "no"], 10_000), "expired");
        assert!(!usable(&keys, &token, &row, &["unsubscribe"], 0), "another kind of link");
        let replayed = LinkRow { used_ms: Some(5), ..row.clone() };
        assert!(!usable(&keys, &token, &replayed, &["yes", "no"], 0), "used once already");
        let extended = LinkRow { expires_ms: 99_999, ..row.clone() };
        assert!(!usable(&keys, &token, &extended, &["yes", "no"], 20_000), "a stored expiry changed");
        let other = LinkRow { task_id: "tsk_2".into(), ..row.clone() };
        assert!(!usable(&keys, &token, &other, &["yes", "no"], 0), "another task");
        let mut altered = token.clone();
        altered.pop();
        altered.push(if token.ends_with('A') { 'B' } else { 'A' });
        assert!(!usable(&keys, &altered, &row, &["yes", "no"], 0), "an altered token");
        assert!(!usable(&[LinkKey::random("k1")], &token, &row, &["yes", "no"], 0), "another key");
    }
}
