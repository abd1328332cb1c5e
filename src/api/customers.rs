//! The customer view: one profile shared by every channel. The profile and what the engine
//! remembers (known places per card, spending and activity baselines, trusted countries and
//! devices, what outcomes taught, open incidents) as of the last checkpoint (or live, in the
//! embedded mode), the customer's recent events, and all their tasks across both queues with
//! outcomes (a care agent sees that fraud called yesterday).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Principal;
use super::problem::{PathParams, Problem};
use super::{now, ApiState};
use crate::detect::masked_card;
use crate::state::{codec, CustomerState, Interner};
use crate::store::TaskFilter;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/customers/{id}", get(customer))
        .route("/customers/{id}/erase", axum::routing::post(erase))
        .route("/customers/{id}/export", get(export))
}

/// What an erasure did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Erased {
    pub customer_id: String,
    /// True once the engine that owns the customer applied it (in order with their events) and
    /// the store deleted their records; false when it was queued and not applied within the
    /// API's wait (it will be: `GET /commands/{command_id}`).
    pub erased: bool,
    pub command_id: String,
}

#[utoipa::path(post, path = "/api/v1/customers/{id}/erase", tag = "customers",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Erased, or queued (`erased: false`)", body = Erased),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a customer id (1 to 200 characters)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The command could not be queued; nothing was changed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
/// Erases a customer (admins): their state in the engine and every stored record of them;
/// the audit keeps that it happened and by whom (`docs/privacy.md`).
pub async fn erase(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Json<Erased>, Problem> {
    if principal.role != crate::command::Role::Admin {
        return Err(Problem::forbidden("only admins erase customers"));
    }
    let command = crate::command::Command {
        command_id: super::tasks::new_command_id(),
        customer_id: id.clone(),
        task_id: "-".into(),
        at: now(),
        actor: principal.actor(),
        action: crate::command::Action::EraseCustomer,
    };
    command.validate().map_err(|e| Problem::unprocessable(e.to_string()))?;
    state.bus.send(&command).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot hand an erasure over");
        Problem::unavailable("the erasure could not be queued; nothing was changed; retry")
    })?;
    let done = state.store.await_command_result(&command.command_id, state.command_wait).await?;
    Ok(Json(Erased { customer_id: id, erased: done.is_some(), command_id: command.command_id }))
}

#[utoipa::path(get, path = "/api/v1/customers/{id}/export", tag = "customers",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Everything stored about the customer (a subject-access report)", body = Object),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Nothing stored about the customer", body = Problem, content_type = "application/problem+json"),
    ))]
/// A subject-access report (admins): every stored record of the customer, as JSON.
pub async fn export(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Json<serde_json::Value>, Problem> {
    if principal.role != crate::command::Role::Admin {
        return Err(Problem::forbidden("only admins export customers' data"));
    }
    match state.store.export_customer(&id).await? {
        Some(report) => Ok(Json(report)),
        None => Err(Problem::not_found(format!("nothing is stored about customer {id}"))),
    }
}

/// A task of the customer, in either queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerTask {
    pub id: String,
    pub queue: String,
    pub status: String,
    pub priority: i64,
    pub title: String,
    pub opened_at: String,
    pub outcome: Option<String>,
    pub assignee: Option<String>,
}

/// What the engine remembers about the customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub customer_id: String,
    /// `live` (embedded mode), `checkpoint` (as of the last checkpoint) or `unknown`.
    pub state_source: String,
    #[schema(value_type = Option<Object>)]
    pub profile: Option<serde_json::Value>,
    /// Per card (masked): recent physical uses.
    #[schema(value_type = Vec<Object>)]
    pub cards: Vec<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub spending: Option<serde_json::Value>,
    pub typical_weekly_events: Option<f64>,
    /// Events per week for the last 12 weeks, oldest first: {`week` (its first day), `events`}.
    #[schema(value_type = Vec<Object>)]
    pub weekly_activity: Vec<serde_json::Value>,
    pub last_activity: Option<String>,
    pub trusted_countries: Vec<String>,
    pub known_devices: usize,
    #[schema(value_type = Option<Object>)]
    pub learned: Option<serde_json::Value>,
    pub open_incidents: Vec<String>,
    /// The customer's most recent events, newest first.
    #[schema(value_type = Vec<Object>)]
    pub timeline: Vec<serde_json::Value>,
    /// Every task of the customer in both queues, most urgent first.
    pub tasks: Vec<CustomerTask>,
}

#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "The customer's id (`s001` is a customer of the demo)", example = "s001")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The customer", body = CustomerView),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such customer", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn customer(
    State(state): State<ApiState>,
    _principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Json<CustomerView>, Problem> {
    let (source, customer) = match &state.local_engine {
        Some(engine) => ("live", engine.state.customers.get(id.as_str()).map(|s| (**s).clone())),
        None => {
            let bytes = state.store.customer_state(&state.group_id, &id).await?;
            ("checkpoint", bytes.and_then(|b| codec::decode(&b, &Interner::default()).ok()))
        }
    };
    let filter = TaskFilter {
        customer_id: Some(id.clone()),
        statuses: vec!["open".into(), "claimed".into(), "contacted".into(), "resolved".into()],
        include_snoozed: true,
        now_ms: now().0,
        ..TaskFilter::default()
    };
    let rows = state.store.list_tasks(&filter, None, 200).await?.items;
    if customer.is_none() && rows.is_empty() {
        return Err(Problem::not_found(format!("no customer {id}")));
    }
    let tasks = rows
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            CustomerTask {
                id: r.id.clone(),
                queue: r.queue.clone(),
                status: r.status.clone(),
                priority: r.priority,
                title: body["title"].as_str().unwrap_or_default().to_string(),
                opened_at: body["opened_at"].as_str().unwrap_or_default().to_string(),
                outcome: body["outcome"].as_str().map(str::to_string),
                assignee: r.assignee.clone(),
            }
        })
        .collect();
    let mut view = match customer {
        Some(s) => describe(&id, &s),
        None => empty(&id),
    };
    view.state_source = if view.profile.is_none() && view.cards.is_empty() && view.timeline.is_empty() {
        "unknown".to_string()
    } else {
        source.to_string()
    };
    view.tasks = tasks;
    // The consent shown is the current one: an unsubscribe wins over the profile's flag.
    if state.store.opted_out(&id).await? {
        if let Some(profile) = view.profile.as_mut().and_then(|p| p.as_object_mut()) {
            profile.insert("email_consent".into(), serde_json::Value::Bool(false));
        }
    }
    Ok(Json(view))
}

fn empty(id: &str) -> CustomerView {
    CustomerView {
        customer_id: id.to_string(),
        state_source: "unknown".to_string(),
        profile: None,
        cards: Vec::new(),
        spending: None,
        typical_weekly_events: None,
        weekly_activity: Vec::new(),
        last_activity: None,
        trusted_countries: Vec::new(),
        known_devices: 0,
        learned: None,
        open_incidents: Vec::new(),
        timeline: Vec::new(),
        tasks: Vec::new(),
    }
}

fn describe(id: &str, s: &CustomerState) -> CustomerView {
    let at = s.activity.last.unwrap_or(crate::time::Timestamp(0));
    CustomerView {
        customer_id: id.to_string(),
        state_source: String::new(),
        profile: s.profile.as_ref().and_then(|p| serde_json::to_value(p.profile()).ok()),
        cards: s
            .cards
            .iter()
            .map(|c| {
                serde_json::json!({
                    "card": masked_card(&c.card_id),
                    "last_seen": c.last_seen.to_string(),
                    "places": c.uses.iter().map(|u| serde_json::json!({
                        "at": u.at.to_string(), "city": &*u.city, "country": u.country.as_str(),
                        "lat": u.lat, "lon": u.lon, "channel": u.channel,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
        spending: s.spend.stats().map(|st| {
            serde_json::json!({"samples": st.samples, "median_eur": st.median, "p90_eur": st.p90, "mad_eur": st.mad})
        }),
        typical_weekly_events: s.activity.typical_weekly(at, 4),
        weekly_activity: s
            .activity
            .weekly()
            .into_iter()
            .map(|(week, events)| serde_json::json!({"week": week.to_string(), "events": events}))
            .collect(),
        last_activity: s.activity.last.map(|t| t.to_string()),
        trusted_countries: s.trusted_countries.iter().map(|c| c.as_str().to_string()).collect(),
        known_devices: s.logins.devices.len(),
        learned: s.learned.as_ref().map(|l| {
            serde_json::json!({
                "trusted_places": l.places.len(),
                "confirmed_spend_eur": l.confirmed_spend_eur,
                "care_outcome": l.care_outcome.map(|(at, o)| serde_json::json!({"at": at.to_string(), "outcome": o.as_str()})),
            })
        }),
        open_incidents: s.incidents.as_ref().map(|i| i.open.iter().map(|t| t.id.clone()).collect()).unwrap_or_default(),
        timeline: s
            .history
            .iter_newest_first()
            .map(|h| {
                serde_json::json!({
                    "at": h.at.to_string(), "type": h.kind.as_str(),
                    "money": h.money().map(|m| m.to_string()),
                    "country": h.country().map(|c| c.as_str().to_string()),
                    "detail": h.detail(),
                })
            })
            .collect(),
        tasks: Vec::new(),
    }
}
