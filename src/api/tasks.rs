//! Tasks and queues: list (filters, most urgent first, cursor pages), read one task with its
//! versions and audit trail, `next` (claim the most urgent unclaimed task), and the lifecycle
//! actions (claim, release, contacted, resolve, note, reassign, reopen, snooze, block_card), each sent to
//! the engine as a command and answered with the task as it is once the result is durable.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::problem::{Body, Params, PathParams, Problem, RawBody};
use super::{now, ApiState};
use crate::command::{Action, Command, CommandResult, Refusal};
use crate::store::{AuditRow, TaskFilter, TaskRow};
use crate::task::{ContactChannel, ContactResult, Outcome};
use crate::time::Timestamp;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/tasks", get(list_tasks))
        .route("/tasks/{id}", get(get_task))
        .route("/tasks/{id}/versions/{version}", get(get_version))
        .route("/tasks/{id}/claim", post(claim))
        .route("/tasks/{id}/release", post(release))
        .route("/tasks/{id}/contacted", post(contacted))
        .route("/tasks/{id}/resolve", post(resolve))
        .route("/tasks/{id}/notes", post(note))
        .route("/tasks/{id}/reassign", post(reassign))
        .route("/tasks/{id}/reopen", post(reopen))
        .route("/tasks/{id}/block_card", post(block_card))
        .route("/tasks/{id}/snooze", post(snooze))
        .route("/queues/{queue}/next", post(next))
        .route("/commands/{id}", get(command_result))
        .route("/audit", get(audit_of_actor))
        .route("/me", get(me))
}

/// A task as listed in a queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskItem {
    pub id: String,
    pub customer_id: String,
    pub queue: String,
    pub status: String,
    pub priority: i64,
    pub version: i64,
    pub title: String,
    pub opened_at: String,
    pub due_at: String,
    /// True when open or claimed past `due_at`.
    pub overdue: bool,
    pub escalated: bool,
    pub assignee: Option<String>,
    pub money_at_risk_eur: f64,
    pub customer_name: Option<String>,
    pub segment: Option<String>,
    pub snoozed_until: Option<String>,
    pub outcome: Option<String>,
}

fn item(row: &TaskRow, now_ms: i64) -> TaskItem {
    let body: serde_json::Value = serde_json::from_str(&row.body).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let profile = &body["context"]["profile"];
    TaskItem {
        id: row.id.clone(),
        customer_id: row.customer_id.clone(),
        queue: row.queue.clone(),
        status: row.status.clone(),
        priority: row.priority,
        version: row.version,
        title: text(&body["title"]).unwrap_or_default(),
        opened_at: text(&body["opened_at"]).unwrap_or_default(),
        due_at: text(&body["due_at"]).unwrap_or_default(),
        overdue: matches!(row.status.as_str(), "open" | "claimed") && row.due_ms < now_ms,
        escalated: body["work"]["escalated"].as_bool().unwrap_or(false),
        assignee: row.assignee.clone(),
        money_at_risk_eur: body["money_at_risk_eur"].as_f64().unwrap_or(0.0),
        customer_name: text(&profile["name"]),
        segment: text(&profile["segment"]),
        snoozed_until: text(&body["work"]["snoozed_until"]),
        outcome: text(&body["outcome"]),
    }
}

/// One page of a queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    pub items: Vec<TaskItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Filters of the task list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `fraud` or `care` (agents see only their own queue).
    #[param(pattern = "^(fraud|care)$")]
    pub queue: Option<String>,
    /// Comma-separated statuses: `open`, `claimed`, `contacted`, `resolved` (default: all but
    /// resolved).
    #[param(pattern = "^ *(open|claimed|contacted|resolved) *(, *(open|claimed|contacted|resolved) *)*$")]
    pub status: Option<String>,
    /// 1 (most urgent) to 4.
    #[param(minimum = 1, maximum = 4)]
    pub priority: Option<i64>,
    pub assignee: Option<String>,
    /// Only tasks held by the caller.
    pub mine: Option<bool>,
    /// Only tasks nobody holds.
    pub unassigned: Option<bool>,
    pub customer_id: Option<String>,
    /// Only overdue tasks (true) or only tasks not overdue (false).
    pub overdue: Option<bool>,
    /// Also list tasks snoozed until later.
    pub include_snoozed: Option<bool>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

const STATUSES: [&str; 4] = ["open", "claimed", "contacted", "resolved"];

fn filter_for(principal: &Principal, q: &ListQuery, now_ms: i64) -> Result<TaskFilter, Problem> {
    let mut queues: Vec<String> = principal.queues().iter().map(|q| q.as_str().to_string()).collect();
    if let Some(queue) = &q.queue {
        if queue != "fraud" && queue != "care" {
            return Err(Problem::bad_request(format!("queue `{queue}` is neither fraud nor care")));
        }
        // Another team's queue reads as an empty one: nothing about it is revealed.
        queues.retain(|x| x == queue);
        if queues.is_empty() {
            queues.push("none".to_string());
        }
    }
    let statuses = match &q.status {
        None => vec!["open".into(), "claimed".into(), "contacted".into()],
        Some(list) => {
            let mut out = Vec::new();
            for s in list.split(',').map(str::trim) {
                if !STATUSES.contains(&s) {
                    return Err(Problem::bad_request(format!(
                        "status `{s}` is not one of open, claimed, contacted, resolved"
                    )));
                }
                out.push(s.to_string());
            }
            out
        }
    };
    if let Some(p) = q.priority {
        if !(1..=4).contains(&p) {
            return Err(Problem::bad_request(format!("priority {p} is not within 1..=4")));
        }
    }
    let assignee = if q.mine == Some(true) { Some(principal.name.clone()) } else { q.assignee.clone() };
    Ok(TaskFilter {
        queues,
        statuses,
        priority: q.priority,
        assignee,
        unassigned: q.unassigned == Some(true),
        customer_id: q.customer_id.clone(),
        overdue: q.overdue,
        include_snoozed: q.include_snoozed == Some(true),
        now_ms,
    })
}

#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Tasks, most urgent first", body = TaskPage),
        (status = 400, description = "Bad filter or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_tasks(
    State(state): State<ApiState>,
    principal: Principal,
    Params(q): Params<ListQuery>,
) -> Result<Json<TaskPage>, Problem> {
    let now_ms = now().0;
    let filter = filter_for(&principal, &q, now_ms)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Problem::bad_request(format!("limit {limit} is not within 1..=200")));
    }
    let cursor = match &q.cursor {
        Some(c) => Some(
            crate::store::Cursor::decode(c)
                .ok_or_else(|| Problem::bad_request("cursor is not one this API gave"))?,
        ),
        None => None,
    };
    let page = state.store.list_tasks(&filter, cursor.as_ref(), limit).await?;
    Ok(Json(TaskPage { items: page.items.iter().map(|r| item(r, now_ms)).collect(), next_cursor: page.next }))
}

/// One version of a task, as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionInfo {
    pub version: i64,
    /// `opened`, `enriched`, `updated`, `resolved`, `reopened`.
    pub change: String,
    pub at: String,
}

/// One record of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub task_id: String,
    pub version: i64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub reason: Option<String>,
    pub command_id: Option<String>,
    /// The audited fields before the change (absent for a new task).
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub after: serde_json::Value,
}

pub fn audit_entry(a: AuditRow) -> AuditEntry {
    AuditEntry {
        task_id: a.task_id,
        version: a.version,
        at: a.at,
        actor: a.actor,
        role: a.role,
        action: a.action,
        reason: a.reason,
        command_id: a.command_id,
        before: a.before.and_then(|b| serde_json::from_str(&b).ok()),
        after: serde_json::from_str(&a.after).unwrap_or_default(),
    }
}

/// A task as the engine wrote it. The README's "Task format" has every field; the schema names
/// the ones clients most rely on (other fields are allowed).
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = Task)]
pub struct TaskDoc {
    id: String,
    version: i64,
    customer_id: String,
    #[schema(pattern = "^(fraud|care)$")]
    queue: String,
    #[schema(pattern = "^(open|claimed|contacted|resolved)$")]
    status: String,
    #[schema(minimum = 1, maximum = 4)]
    priority: i64,
    title: String,
    explanation: String,
    context: TaskContextDoc,
}

/// What the agent needs: the parts described here, and the rest (README, "Task format").
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = TaskContext)]
pub struct TaskContextDoc {
    /// Language of the task's texts: `en` or `ru`.
    language: String,
    /// What the agent can say, in the task's language.
    script: String,
    actions: Vec<String>,
    /// The complaint's procedure (care tasks about a complaint only).
    procedure: Option<ProcedureDoc>,
    /// The customer's open task in the other queue, as of this version (absent in versions
    /// written before the field existed).
    open_in_other_queue: Option<Vec<TaskLinkDoc>>,
}

/// The procedure of a complaint's category, from the complaint playbook, in the task's language.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = Procedure)]
pub struct ProcedureDoc {
    /// The complaint's category as the complaint gave it.
    category: String,
    /// False when the playbook has no procedure for the category (the default one is shown).
    known: bool,
    name: String,
    /// The team that owns the category.
    team: String,
    /// Time to resolve the complaint, in hours.
    sla_hours: f64,
    /// Whether the agent may offer compensation.
    compensation: bool,
    /// The most the agent may offer, in euros (absent: no limit, or no compensation).
    compensation_max_eur: Option<f64>,
    /// What the agent does, in order.
    steps: Vec<String>,
    /// What the agent says.
    script: String,
}

/// Another task of the same customer.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = TaskLink)]
pub struct TaskLinkDoc {
    id: String,
    #[schema(pattern = "^(fraud|care)$")]
    queue: String,
    title: String,
    #[schema(pattern = "^(open|claimed|contacted|resolved)$")]
    status: String,
    #[schema(value_type = String, format = DateTime)]
    opened_at: String,
}

/// A task with its full context, its versions and its audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskDetail {
    /// The task as the engine wrote it (see the README's task format).
    #[schema(value_type = TaskDoc)]
    pub task: serde_json::Value,
    pub overdue: bool,
    pub versions: Vec<VersionInfo>,
    pub audit: Vec<AuditEntry>,
}

/// The task if the principal may see it; a 404 otherwise (another queue's task does not exist
/// for an agent).
async fn visible(state: &ApiState, principal: &Principal, id: &str) -> Result<TaskRow, Problem> {
    match state.store.task_row(id).await? {
        Some(row) if principal.sees(&row.queue) => Ok(row),
        _ => Err(Problem::not_found(format!("no task {id}"))),
    }
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The task", body = TaskDetail),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task in the caller's queues", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_task(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Json<TaskDetail>, Problem> {
    let row = visible(&state, &principal, &id).await?;
    let versions = state.store.versions_of(&id).await?;
    let audit = state.store.audit_of_task(&id).await?;
    let mut task: serde_json::Value = serde_json::from_str(&row.body).unwrap_or_default();
    // The consent shown is the current one: an unsubscribe since the task's profile copy wins.
    if state.store.opted_out(&row.customer_id).await? {
        if let Some(profile) = task["context"]["profile"].as_object_mut() {
            profile.insert("email_consent".into(), serde_json::Value::Bool(false));
        }
    }
    Ok(Json(TaskDetail {
        overdue: matches!(row.status.as_str(), "open" | "claimed") && row.due_ms < now().0,
        task,
        versions: versions
            .into_iter()
            .map(|(version, change, at)| VersionInfo { version, change, at })
            .collect(),
        audit: audit.into_iter().map(audit_entry).collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}/versions/{version}", tag = "tasks",
    params(("id" = String, Path), ("version" = i64, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "That version of the task", body = TaskDoc),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such task or version", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_version(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams((id, version)): PathParams<(String, i64)>,
) -> Result<Json<serde_json::Value>, Problem> {
    visible(&state, &principal, &id).await?;
    let body = state
        .store
        .task_version(&id, version)
        .await?
        .ok_or_else(|| Problem::not_found(format!("task {id} has no version {version}")))?;
    Ok(Json(serde_json::from_str(&body).unwrap_or_default()))
}

/// Answered while the engine has not yet applied a command.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pending {
    pub command_id: String,
    /// Where the result will be: `GET` it.
    pub location: String,
}

/// Sends an action on a task and answers with the task as it then is.
async fn act(state: &ApiState, principal: &Principal, id: &str, action: Action) -> Result<Response, Problem> {
    let row = visible(state, principal, id).await?;
    if !principal.may_act() {
        return Err(Problem::forbidden("auditors read; they do not change tasks"));
    }
    let command = Command {
        command_id: new_command_id(),
        customer_id: row.customer_id.clone(),
        task_id: row.id.clone(),
        at: now(),
        actor: principal.actor(),
        action,
    };
    command.validate().map_err(|e| Problem::unprocessable(e.to_string()))?;
    submit(state, &command).await
}

/// A fresh command id.
pub(super) fn new_command_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    format!("cmd_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Sends a command and waits for its result.
async fn submit(state: &ApiState, command: &Command) -> Result<Response, Problem> {
    state.bus.send(command).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot hand a command over");
        Problem::unavailable("the action could not be queued; nothing was changed; retry")
    })?;
    match state.store.await_command_result(&command.command_id, state.command_wait).await? {
        Some(result) => answer(state, result).await,
        None => Ok(pending(&command.command_id)),
    }
}

fn pending(command_id: &str) -> Response {
    let location = format!("/api/v1/commands/{command_id}");
    let body = Pending { command_id: command_id.to_string(), location: location.clone() };
    (StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(body)).into_response()
}

/// The answer for a command's result: the task (200) or the refusal as a problem.
async fn answer(state: &ApiState, result: CommandResult) -> Result<Response, Problem> {
    match result.refusal {
        None => {
            let body = state.store.task(&result.task_id).await?.map(|(_, b)| b).unwrap_or_default();
            let task: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            Ok(Json(task).into_response())
        }
        Some(Refusal::Conflict) => Err(Problem::conflict(result.detail.unwrap_or_default(), result.holder)),
        Some(Refusal::NotFound) => Err(Problem::not_found(result.detail.unwrap_or_default())),
        Some(Refusal::Invalid) => Err(Problem::unprocessable(result.detail.unwrap_or_default())),
    }
}

macro_rules! action_doc {
    ($name:ident, $path:literal, $body:ty, $what:literal) => {
        #[utoipa::path(post, path = $path, tag = "actions", params(("id" = String, Path)),
            request_body(content = $body, content_type = "application/json"),
            security(("bearer" = [])),
            responses(
                (status = 200, description = $what, body = TaskDoc),
                (status = 202, description = "Accepted; the engine has not applied it yet", body = Pending),
                (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
                (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
                (status = 403, description = "The role may not do this", body = Problem, content_type = "application/problem+json"),
                (status = 404, description = "No such task in the caller's queues", body = Problem, content_type = "application/problem+json"),
                (status = 409, description = "The task's state does not allow it (e.g. held by someone else)", body = Problem, content_type = "application/problem+json"),
                (status = 413, description = "Body over 256 KiB", body = Problem, content_type = "application/problem+json"),
                (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
                (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
            ))]
        #[allow(dead_code)]
        fn $name() {}
    };
}

/// No body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Declares a string schema listing the names a domain enum accepts in a body (the domain
/// types carry no schema of their own).
macro_rules! names_schema {
    ($name:ident, $doc:literal, $names:expr) => {
        #[doc = $doc]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some($names))
                    .into()
            }
        }

        impl ToSchema for $name {}
    };
}

names_schema!(ChannelName, "How the customer was contacted.", CHANNELS);
names_schema!(ContactResultName, "How a contact attempt went.", CONTACT_RESULTS);
names_schema!(OutcomeName, "How a task ended.", Outcome::ALL.map(Outcome::as_str));

/// The names of [`ContactChannel`] and [`ContactResult`] (checked against serde in the tests).
const CHANNELS: [&str; 5] = ["phone", "email", "sms", "chat", "branch"];
const CONTACT_RESULTS: [&str; 4] = ["reached", "no_answer", "voicemail", "wrong_number"];

// Claim and release take no body, or `{}`: the body is optional.
action_doc!(claim_doc, "/api/v1/tasks/{id}/claim", Option<Empty>, "Claimed by the caller");
action_doc!(release_doc, "/api/v1/tasks/{id}/release", Option<Empty>, "Back in the queue");
action_doc!(contacted_doc, "/api/v1/tasks/{id}/contacted", ContactedBody, "Attempt recorded");
action_doc!(resolve_doc, "/api/v1/tasks/{id}/resolve", ResolveBody, "Resolved");
action_doc!(note_doc, "/api/v1/tasks/{id}/notes", NoteBody, "Note added");
action_doc!(reassign_doc, "/api/v1/tasks/{id}/reassign", ReassignBody, "Reassigned (supervisors)");
action_doc!(reopen_doc, "/api/v1/tasks/{id}/reopen", NoteBody, "Reopened (supervisors)");
action_doc!(
    block_card_doc,
    "/api/v1/tasks/{id}/block_card",
    NoteBody,
    "The card system is asked to block the task's card (fraud tasks; the holder or a supervisor): an action on the actions topic"
);
action_doc!(snooze_doc, "/api/v1/tasks/{id}/snooze", SnoozeBody, "Snoozed");

/// Parses an optional empty JSON body (`{}`, `null` or nothing).
fn empty_body(bytes: &[u8]) -> Result<(), Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    serde_json::from_slice::<Option<Empty>>(bytes)
        .map(|_| ())
        .map_err(|e| Problem::unprocessable(format!("this action takes no fields: {e}")))
}

pub async fn claim(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    RawBody(body): RawBody,
) -> Result<Response, Problem> {
    empty_body(&body)?;
    act(&state, &principal, &id, Action::Claim).await
}

pub async fn release(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    RawBody(body): RawBody,
) -> Result<Response, Problem> {
    empty_body(&body)?;
    act(&state, &principal, &id, Action::Release).await
}

/// How a contact attempt went.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactedBody {
    /// `phone`, `email`, `sms`, `chat` or `branch`.
    #[schema(value_type = ChannelName, inline, example = "phone")]
    pub channel: ContactChannel,
    /// `reached`, `no_answer`, `voicemail` or `wrong_number`.
    #[schema(value_type = ContactResultName, inline, example = "reached")]
    pub result: ContactResult,
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub note: String,
}

pub async fn contacted(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    Body(b): Body<ContactedBody>,
) -> Result<Response, Problem> {
    act(&state, &principal, &id, Action::Contacted { channel: b.channel, result: b.result, note: b.note })
        .await
}

/// An outcome and the note every resolve needs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// Fraud: `confirmed_fraud`, `legitimate`, `unreachable`; care: `retained`, `churned`,
    /// `resolved_issue`, `unreachable`.
    #[schema(value_type = OutcomeName, inline, example = "legitimate")]
    pub outcome: Outcome,
    /// Required: not blank, at most 2,000 characters.
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub note: String,
}

pub async fn resolve(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    Body(b): Body<ResolveBody>,
) -> Result<Response, Problem> {
    act(&state, &principal, &id, Action::Resolve { outcome: b.outcome, note: b.note }).await
}

/// A note.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// Not blank, at most 2,000 characters.
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub note: String,
}

pub async fn note(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    Body(b): Body<NoteBody>,
) -> Result<Response, Problem> {
    act(&state, &principal, &id, Action::Note { text: b.note }).await
}

/// Who takes the task over, and why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignBody {
    /// The agent's name.
    #[schema(min_length = 1, pattern = "\\S")]
    pub to: String,
    /// Not blank, at most 2,000 characters.
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub note: String,
}

pub async fn reassign(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    Body(b): Body<ReassignBody>,
) -> Result<Response, Problem> {
    if !principal.supervises() {
        visible(&state, &principal, &id).await?;
        return Err(Problem::forbidden("only supervisors reassign"));
    }
    act(&state, &principal, &id, Action::Reassign { to: b.to, note: b.note }).await
}

pub async fn reopen(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    Body(b): Body<NoteBody>,
) -> Result<Response, Problem> {
    if !principal.supervises() {
        visible(&state, &principal, &id).await?;
        return Err(Problem::forbidden("only supervisors reopen"));
    }
    act(&state, &principal, &id, Action::Reopen { note: b.note }).await
}

pub async fn block_card(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    Body(b): Body<NoteBody>,
) -> Result<Response, Problem> {
    act(&state, &principal, &id, Action::BlockCard { note: b.note }).await
}

/// Until when, and why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnoozeBody {
    /// RFC 3339 with an offset, later than now.
    #[schema(value_type = String, format = DateTime, example = "2026-12-01T18:00:00Z")]
    pub until: String,
    /// Not blank, at most 2,000 characters.
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub reason: String,
}

pub async fn snooze(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
    Body(b): Body<SnoozeBody>,
) -> Result<Response, Problem> {
    let until = Timestamp::parse_rfc3339(&b.until).map_err(|e| {
        Problem::unprocessable(format!("until: `{}` is not RFC 3339 with an offset: {e}", b.until))
    })?;
    act(&state, &principal, &id, Action::Snooze { until, reason: b.reason }).await
}

#[utoipa::path(post, path = "/api/v1/queues/{queue}/next", tag = "actions",
    params(("queue" = String, Path, description = "`fraud` or `care`", pattern = "^(fraud|care)$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The most urgent unclaimed task, now claimed by the caller", body = TaskDoc),
        (status = 204, description = "No unclaimed task in the queue"),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The role may not do this", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such queue for the caller", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn next(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(queue): PathParams<String>,
) -> Result<Response, Problem> {
    if !principal.sees(&queue) {
        return Err(Problem::not_found(format!("no queue {queue}")));
    }
    if !principal.may_act() {
        return Err(Problem::forbidden("auditors read; they do not claim tasks"));
    }
    let now_ms = now().0;
    let filter = TaskFilter {
        queues: vec![queue.clone()],
        statuses: vec!["open".into()],
        unassigned: true,
        now_ms,
        ..TaskFilter::default()
    };
    // Another agent may take a candidate first: their claim wins and this one tries the next.
    let candidates = state.store.list_tasks(&filter, None, 10).await?;
    for row in &candidates.items {
        let command = Command {
            command_id: new_command_id(),
            customer_id: row.customer_id.clone(),
            task_id: row.id.clone(),
            at: now(),
            actor: principal.actor(),
            action: Action::Claim,
        };
        match submit(&state, &command).await {
            Err(p) if p.status == 409 || p.status == 404 => continue,
            other => return other,
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/api/v1/commands/{id}", tag = "actions",
    params(("id" = String, Path, description = "As in a 202's `command_id`", pattern = "^[A-Za-z0-9_.:-]{1,200}$")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Applied: the task as it then was", body = TaskDoc),
        (status = 202, description = "Not applied yet (or no such command yet)", body = Pending),
        (status = 400, description = "Not a command id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Refused: no such task", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Refused: conflict", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Refused: invalid", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn command_result(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Response, Problem> {
    if !is_command_id(&id) {
        return Err(Problem::bad_request(format!("`{id}` is not a command id")));
    }
    match state.store.command_result(&id).await? {
        Some(r) => {
            visible(&state, &principal, &r.task_id).await?;
            answer(&state, r).await
        }
        // Unknown ids and ids not yet applied look alike: a client polls until it knows.
        None => Ok(pending(&id)),
    }
}

/// True if `id` can be a command id: 1 to 200 ASCII letters, digits, `_`, `-`, `.` or `:` (what
/// the API and the engine's tickers make). Anything else could not even be echoed back in the
/// `Location` of a 202.
fn is_command_id(id: &str) -> bool {
    (1..=200).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// Whose actions to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// An agent's name (`engine`, `sla`, `customer` for the others). Agents may ask only for
    /// themselves.
    pub actor: String,
    /// Only records before this time (milliseconds since the epoch): the next page.
    pub before_ms: Option<i64>,
    /// 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The actor's changes, newest first", body = Vec<AuditEntry>),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Agents see only their own record", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn audit_of_actor(
    State(state): State<ApiState>,
    principal: Principal,
    Params(q): Params<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, Problem> {
    let reads_all = principal.supervises() || principal.role == crate::command::Role::Auditor;
    if !reads_all && q.actor != principal.name {
        return Err(Problem::forbidden("agents see only their own audit record"));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_request(format!("limit {limit} is not within 1..=500")));
    }
    let rows = state.store.audit_of_actor(&q.actor, q.before_ms, limit).await?;
    Ok(Json(rows.into_iter().map(audit_entry).collect()))
}

/// Who the token belongs to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub name: String,
    pub role: String,
    pub queues: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = Me),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn me(principal: Principal) -> Json<Me> {
    Json(Me {
        name: principal.name.clone(),
        role: principal.role.as_str().to_string(),
        queues: principal.queues().iter().map(|q| q.as_str().to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_names_are_the_domain_names() {
        for name in CHANNELS {
            let c: ContactChannel = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(serde_json::to_value(c).unwrap(), name);
        }
        for name in CONTACT_RESULTS {
            let r: ContactResult = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(serde_json::to_value(r).unwrap(), name);
        }
    }

    #[test]
    fn command_ids_are_checked() {
        assert!(is_command_id("cmd_0123456789abcdef0123456789abcdef"));
        assert!(is_command_id("sla_tsk_5395d2b59f473d8a_3"));
        assert!(!is_command_id(""));
        assert!(!is_command_id("cmd\u{1c}\u{11}"));
        assert!(!is_command_id("cmd/1"));
        assert!(!is_command_id(&"a".repeat(201)));
    }
}
