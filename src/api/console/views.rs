//! The console's pages: the queue (with its live rows), a task laid out for a person on the
//! phone (evidence drawn: both places on a world map, weekly activity against the customer's
//! normal, a payment against their usual range), the supervisor's view, and the forms that turn
//! buttons into API calls.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{csrf_ok, forbidden_csrf, secured, Client, Console, Session};
use crate::api::now;
use crate::time::Timestamp;

/// The templates, compiled into the binary; HTML is auto-escaped.
pub fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, source) in [
        ("layout.html", include_str!("templates/layout.html")),
        ("login.html", include_str!("templates/login.html")),
        ("queue.html", include_str!("templates/queue.html")),
        ("rows.html", include_str!("templates/rows.html")),
        ("task.html", include_str!("templates/task.html")),
        ("supervisor.html", include_str!("templates/supervisor.html")),
        ("error.html", include_str!("templates/error.html")),
    ] {
        env.add_template(name, source).expect("console templates are valid");
    }
    env.add_template("world.svg", WORLD).expect("the world map is valid");
    env
}

/// Country outlines (Natural Earth 1:110m, public domain): `WORLD-MAP.md` says how it was made.
const WORLD: &str = include_str!("world.svg");

/// The inside of the world map's `<svg>` element, to draw places over it.
fn world_paths() -> &'static str {
    let start = WORLD.find("<svg").and_then(|i| WORLD[i..].find('>').map(|j| i + j + 1)).unwrap_or(0);
    let end = WORLD.rfind("</svg>").unwrap_or(WORLD.len());
    &WORLD[start..end.max(start)]
}

fn to_login() -> Response {
    secured(Redirect::to("/console/login").into_response())
}

/// Filters of the queue page.
#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    queue: Option<String>,
    status: Option<String>,
    priority: Option<String>,
    overdue: Option<String>,
    mine: Option<String>,
    flash: Option<String>,
}

/// The API path of the queue for these filters.
fn list_path(q: &QueueQuery) -> String {
    let mut path = "/api/v1/tasks?limit=200".to_string();
    let mut add = |k: &str, v: &Option<String>| {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            path.push_str(&format!("&{k}={}", urlencode(v)));
        }
    };
    add("queue", &q.queue);
    add("status", &q.status);
    add("priority", &q.priority);
    add("overdue", &q.overdue.as_ref().map(|_| "true".to_string()));
    add("mine", &q.mine.as_ref().map(|_| "true".to_string()));
    path
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Seconds from now to an RFC 3339 time (negative when past).
fn seconds_left(at: &Value) -> i64 {
    at.as_str().and_then(|t| Timestamp::parse_rfc3339(t).ok()).map_or(0, |t| (t.0 - now().0) / 1000)
}

/// The queue's rows, overdue first (they are the most urgent to act on), then as the API sorts.
async fn rows(c: &Console, s: &Session, q: &QueueQuery) -> Vec<Value> {
    let (_, page) = c.call(s, Method::GET, &list_path(q), None).await;
    let mut items: Vec<Value> = page["items"].as_array().cloned().unwrap_or_default();
    for item in &mut items {
        let left = seconds_left(&item["due_at"]);
        item["due_in_s"] = json!(left);
    }
    items.sort_by_key(|t| !t["overdue"].as_bool().unwrap_or(false));
    items
}

pub async fn queue(
    State(c): State<Console>,
    Client(client): Client,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Response {
    let Some(s) = c.session(&headers, client).await else { return to_login() };
    let items = rows(&c, &s, &q).await;
    let rows_query = list_path(&q).replacen("/api/v1/tasks?limit=200", "", 1);
    let ctx = minijinja::context! {
        items => items,
        filters => minijinja::context! {
            queue => q.queue, status => q.status, priority => q.priority,
            overdue => q.overdue.is_some(), mine => q.mine.is_some(),
        },
        rows_query => rows_query,
        flash => q.flash,
    };
    c.render("queue.html", Some(&s), s.lang, ctx)
}

/// Only the rows (the page polls them to stay live without losing the agent's place).
pub async fn queue_rows(
    State(c): State<Console>,
    Client(client): Client,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Response {
    let Some(s) = c.session(&headers, client).await else {
        return secured(StatusCode::UNAUTHORIZED.into_response());
    };
    let items = rows(&c, &s, &q).await;
    c.render("rows.html", Some(&s), s.lang, minijinja::context! { items => items })
}

/// The "next" form.
#[derive(Debug, Deserialize)]
pub struct NextForm {
    #[serde(default)]
    csrf: String,
    queue: String,
}

pub async fn next(
    State(c): State<Console>,
    Client(client): Client,
    headers: HeaderMap,
    Form(f): Form<NextForm>,
) -> Response {
    let Some(s) = c.session(&headers, client).await else { return to_login() };
    if !csrf_ok(&s, &f.csrf) {
        return forbidden_csrf(&c, &s);
    }
    let queue = if f.queue == "care" { "care" } else { "fraud" };
    let (status, task) = c.call(&s, Method::POST, &format!("/api/v1/queues/{queue}/next"), None).await;
    match (status, task["id"].as_str()) {
        (StatusCode::OK, Some(id)) => secured(Redirect::to(&format!("/console/tasks/{id}")).into_response()),
        _ => secured(Redirect::to("/console/queue?flash=queue_empty").into_response()),
    }
}

/// `?flash=` and `?error=` of the task page.
#[derive(Debug, Default, Deserialize)]
pub struct TaskQuery {
    flash: Option<String>,
    error: Option<String>,
}

pub async fn task(
    State(c): State<Console>,
    Client(client): Client,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<TaskQuery>,
) -> Response {
    let Some(s) = c.session(&headers, client).await else { return to_login() };
    let (status, detail) = c.call(&s, Method::GET, &format!("/api/v1/tasks/{}", urlencode(&id)), None).await;
    if status != StatusCode::OK {
        let mut r = c.render(
            "error.html",
            Some(&s),
            s.lang,
            minijinja::context! { code => 404, what => "not_found" },
        );
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    }
    let task = &detail["task"];
    let customer_id = task["customer_id"].as_str().unwrap_or_default();
    let (_, customer) =
        c.call(&s, Method::GET, &format!("/api/v1/customers/{}", urlencode(customer_id)), None).await;
    let ctx = minijinja::context! {
        task => task,
        detail => &detail,
        customer => &customer,
        due_in_s => seconds_left(&task["due_at"]),
        travel => travel(task),
        activity => activity(&customer),
        payment => payment(task),
        flash => q.flash,
        error => q.error,
    };
    c.render("task.html", Some(&s), s.lang, ctx)
}

/// Impossible travel drawn on the world map: both places, the line between, the numbers.
fn travel(task: &Value) -> Option<Value> {
    let signal = task["signals"].as_array()?.iter().rev().find(|s| s["detector"] == "impossible_travel")?;
    let facts = &signal["facts"];
    let points: Vec<(f64, f64, String)> = task["context"]["events"]
        .as_array()?
        .iter()
        .filter_map(|e| {
            Some((e["lon"].as_f64()?, e["lat"].as_f64()?, e["city"].as_str().unwrap_or("").to_string()))
        })
        .collect();
    let places: Vec<&(f64, f64, String)> = [facts["from_city"].as_str(), facts["to_city"].as_str()]
        .iter()
        .filter_map(|city| points.iter().rev().find(|p| Some(p.2.as_str()) == *city))
        .collect();
    if places.len() != 2 {
        return None;
    }
    let xy: Vec<(f64, f64)> = places.iter().map(|p| (p.0 + 180.0, 90.0 - p.1)).collect();
    // A window around both places, 2:1 like the map, at least 60° wide.
    let (x0, x1) = (xy[0].0.min(xy[1].0), xy[0].0.max(xy[1].0));
    let (y0, y1) = (xy[0].1.min(xy[1].1), xy[0].1.max(xy[1].1));
    let w = ((x1 - x0) + 30.0).max((y1 - y0 + 20.0) * 2.0).clamp(60.0, 360.0);
    let h = w / 2.0;
    let cx = ((x0 + x1) / 2.0 - w / 2.0).clamp(0.0, 360.0 - w);
    let cy = ((y0 + y1) / 2.0 - h / 2.0).clamp(0.0, 180.0 - h);
    let r = w / 120.0;
    // A label on the side of its place with more room (the right half of the window: left).
    let label = |x: f64| {
        if x > cx + w / 2.0 {
            (x - r * 1.5, "end")
        } else {
            (x + r * 1.5, "start")
        }
    };
    let (from_lx, from_anchor) = label(xy[0].0);
    let (to_lx, to_anchor) = label(xy[1].0);
    Some(json!({
        "view_box": format!("{cx:.1} {cy:.1} {w:.1} {h:.1}"),
        "from": {"x": xy[0].0, "y": xy[0].1, "city": places[0].2, "lx": from_lx, "anchor": from_anchor},
        "to": {"x": xy[1].0, "y": xy[1].1, "city": places[1].2, "lx": to_lx, "anchor": to_anchor},
        "r": r, "font": r * 3.2, "stroke": r / 2.0,
        "distance_km": facts["distance_km"], "minutes": facts["minutes"], "speed_kmh": facts["speed_kmh"],
        "world": world_paths(),
    }))
}

/// Weekly activity against the customer's normal, with complaints, contacts and transfers
/// marked in their week.
fn activity(customer: &Value) -> Option<Value> {
    let weeks = customer["weekly_activity"].as_array()?;
    if weeks.is_empty() {
        return None;
    }
    let normal = customer["typical_weekly_events"].as_f64();
    let top =
        weeks.iter().filter_map(|w| w["events"].as_f64()).fold(normal.unwrap_or(0.0), f64::max).max(1.0);
    let (width, height, bar) = (480.0, 120.0, 480.0 / weeks.len() as f64);
    let starts: Vec<i64> = weeks
        .iter()
        .map(|w| w["week"].as_str().and_then(|t| Timestamp::parse_rfc3339(t).ok()).map_or(0, |t| t.0))
        .collect();
    let bars: Vec<Value> = weeks
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let n = w["events"].as_f64().unwrap_or(0.0);
            let h = n / top * (height - 20.0);
            json!({"x": i as f64 * bar + 2.0, "y": height - h, "w": bar - 4.0, "h": h, "n": n,
                   "label": w["week"].as_str().unwrap_or("").get(5..10).unwrap_or("")})
        })
        .collect();
    let marks: Vec<Value> = customer["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| matches!(e["type"].as_str(), Some("complaint" | "support_contact" | "transfer")))
        .filter_map(|e| {
            let at = Timestamp::parse_rfc3339(e["at"].as_str()?).ok()?.0;
            let i = starts.iter().rposition(|&s| s <= at)?;
            Some(json!({"x": i as f64 * bar + bar / 2.0, "kind": e["type"], "detail": e["detail"], "at": e["at"]}))
        })
        .collect();
    Some(json!({
        "width": width, "height": height, "bars": bars, "marks": marks,
        "normal_y": normal.map(|n| height - n / top * (height - 20.0)), "normal": normal,
    }))
}

/// An amount anomaly: the payment against the customer's median and usual high.
fn payment(task: &Value) -> Option<Value> {
    let signal = task["signals"].as_array()?.iter().rev().find(|s| s["detector"] == "amount_anomaly")?;
    let f = &signal["facts"];
    let (amount, median, p90) =
        (f["amount_eur"].as_f64()?, f["median_eur"].as_f64()?, f["p90_eur"].as_f64()?);
    let top = amount.max(p90) * 1.1;
    let scale = |v: f64| v / top * 460.0;
    Some(json!({
        "amount": amount, "median": median, "p90": p90,
        "amount_w": scale(amount), "median_x": scale(median) + 10.0, "p90_x": scale(p90) + 10.0,
    }))
}

/// Every field any action form may send.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    outcome: Option<String>,
    note: Option<String>,
    channel: Option<String>,
    result: Option<String>,
    until: Option<String>,
    reason: Option<String>,
    to: Option<String>,
    /// Where to go after a success (`queue` or the task).
    then: Option<String>,
}

pub async fn act(
    State(c): State<Console>,
    Client(client): Client,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<ActionForm>,
) -> Response {
    let Some(s) = c.session(&headers, client).await else { return to_login() };
    if !csrf_ok(&s, &f.csrf) {
        return forbidden_csrf(&c, &s);
    }
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let (path, body) = match action.as_str() {
        "claim" => ("claim", None),
        "release" => ("release", None),
        "resolve" => ("resolve", Some(json!({"outcome": text(&f.outcome), "note": text(&f.note)}))),
        "notes" => ("notes", Some(json!({"note": text(&f.note)}))),
        "contacted" => (
            "contacted",
            Some(json!({"channel": text(&f.channel), "result": text(&f.result), "note": text(&f.note)})),
        ),
        "snooze" => {
            ("snooze", Some(json!({"until": local_to_rfc3339(&text(&f.until)), "reason": text(&f.reason)})))
        }
        "reassign" => ("reassign", Some(json!({"to": text(&f.to), "note": text(&f.note)}))),
        "reopen" => ("reopen", Some(json!({"note": text(&f.note)}))),
        _ => return secured(StatusCode::NOT_FOUND.into_response()),
    };
    let task_page = format!("/console/tasks/{}", urlencode(&id));
    let (status, answer) =
        c.call(&s, Method::POST, &format!("/api/v1/tasks/{}/{path}", urlencode(&id)), body).await;
    let target = if status.is_success() {
        match f.then.as_deref() {
            Some("queue") => "/console/queue?flash=done".to_string(),
            Some("supervisor") => "/console/supervisor".to_string(),
            _ => format!("{task_page}?flash=done"),
        }
    } else {
        let why = answer["detail"].as_str().unwrap_or("refused").to_string();
        format!("{task_page}?error={}", urlencode(&why))
    };
    secured(Redirect::to(&target).into_response())
}

/// A `datetime-local` value (no offset) taken as UTC; anything else passed on for the API to
/// judge.
fn local_to_rfc3339(value: &str) -> String {
    if value.len() == 16 && value.as_bytes().get(10) == Some(&b'T') {
        format!("{value}:00Z")
    } else {
        value.to_string()
    }
}

pub async fn supervisor(State(c): State<Console>, Client(client): Client, headers: HeaderMap) -> Response {
    let Some(s) = c.session(&headers, client).await else { return to_login() };
    if !s.supervises() {
        let mut r = c.render(
            "error.html",
            Some(&s),
            s.lang,
            minijinja::context! { code => 403, what => "forbidden_view" },
        );
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    let (_, page) = c.call(&s, Method::GET, "/api/v1/tasks?limit=200", None).await;
    let items: Vec<Value> = page["items"].as_array().cloned().unwrap_or_default();
    let mut queues = Vec::new();
    for queue in ["fraud", "care"] {
        let of_queue: Vec<&Value> = items.iter().filter(|t| t["queue"] == queue).collect();
        let overdue = of_queue.iter().filter(|t| t["overdue"] == true).count();
        let held = of_queue.iter().filter(|t| !t["assignee"].is_null()).count();
        queues.push(json!({"queue": queue, "open": of_queue.len(), "overdue": overdue, "held": held}));
    }
    let at_risk: Vec<Value> = items
        .iter()
        .filter(|t| t["overdue"] == false && matches!(t["status"].as_str(), Some("open" | "claimed")))
        .filter(|t| (0..=1800).contains(&seconds_left(&t["due_at"])))
        .cloned()
        .collect();
    let mut held: Vec<Value> = items.iter().filter(|t| !t["assignee"].is_null()).cloned().collect();
    held.sort_by(|a, b| a["assignee"].as_str().cmp(&b["assignee"].as_str()));
    let (_, rules) = c.call(&s, Method::GET, "/api/v1/rules", None).await;
    let ctx = minijinja::context! { queues => queues, at_risk => at_risk, held => held, rules => rules };
    c.render("supervisor.html", Some(&s), s.lang, ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_compile_and_the_map_has_outlines() {
        templates();
        assert!(world_paths().contains("<path") || WORLD.len() < 200, "the world map has country paths");
    }

    #[test]
    fn travel_is_drawn_from_both_places() {
        let task = json!({
            "signals": [{"detector": "impossible_travel", "facts": {"from_city": "Phnom Penh", "to_city": "Paris",
                "distance_km": 9941.0, "minutes": 30.0, "speed_kmh": 19881.0}}],
            "context": {"events": [
                {"city": "Phnom Penh", "lat": 11.55, "lon": 104.92},
                {"city": "Paris", "lat": 48.86, "lon": 2.34}]}
        });
        let t = travel(&task).expect("drawn");
        assert_eq!(t["from"]["city"], "Phnom Penh");
        assert!((t["to"]["x"].as_f64().unwrap() - 182.34).abs() < 0.01);
        assert_eq!(t["distance_km"], 9941.0);
    }

    #[test]
    fn a_local_time_is_taken_as_utc() {
        assert_eq!(local_to_rfc3339("2026-12-01T18:30"), "2026-12-01T18:30:00Z");
        assert_eq!(local_to_rfc3339("2026-12-01T18:30:00+02:00"), "2026-12-01T18:30:00+02:00");
    }
}
