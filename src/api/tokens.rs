//! API tokens for machines, managed by admins through the API: create (shown once, with an
//! expiry), list (never a token or its hash), rotate (a new token; the name's other tokens are
//! revoked) and revoke. Every change is audited (`token_created`, `token_revoked`). People log
//! in to the console with a token today; tokens stay for machines and the demo.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{new_token, Principal};
use super::problem::{Body, Params, PathParams, Problem};
use super::{now, ApiState};
use crate::command::Role;
use crate::time::{Span, Timestamp};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{name}/rotate", post(rotate))
        .route("/tokens/{name}/revoke", post(revoke))
}

/// A new token's holder, role and lifetime.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Who holds it (the actor in the audit trail), 1 to 100 characters.
    pub name: String,
    /// `fraud_agent`, `care_agent`, `supervisor`, `admin` or `auditor`.
    pub role: String,
    /// How long it works: `90d`, `12h`, `30m`, `45s` (default `90d`, at most `730d`).
    #[serde(default)]
    pub expires_in: Option<String>,
}

/// How long a token may be made to live, at most.
const LONGEST: i64 = 730 * crate::time::DAY;

/// A token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    pub name: String,
    pub role: String,
    /// The token: store it now, it is not shown again (only its SHA-256 is kept).
    pub token: String,
    pub expires_at: String,
}

/// A stored token, without the token or its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenInfo {
    pub name: String,
    pub role: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked: bool,
    pub expired: bool,
}

/// How many tokens were revoked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    pub name: String,
    pub revoked: u64,
}

fn admin(principal: &Principal) -> Result<(), Problem> {
    if principal.role == Role::Admin {
        Ok(())
    } else {
        Err(Problem::forbidden("only admins manage tokens"))
    }
}

async fn issue(
    state: &ApiState,
    by: &Principal,
    name: &str,
    role: Role,
    expires_in: &str,
) -> Result<Created, Problem> {
    let span = Span::parse(expires_in).map_err(Problem::unprocessable)?;
    if span.0 <= 0 || span.0 > LONGEST {
        return Err(Problem::unprocessable("expires_in must be more than 0 and at most 730d"));
    }
    let (token, hash) = new_token();
    let at = now();
    let expires = Timestamp(at.0 + span.0);
    state.store.add_token(&hash, name, role.as_str(), &at.to_string(), Some(expires.0)).await?;
    state
        .store
        .audit_access(
            "token_created",
            &by.name,
            by.role.as_str(),
            format!("token for {name} ({}), expires {expires}", role.as_str()),
        )
        .await?;
    Ok(Created {
        name: name.to_string(),
        role: role.as_str().to_string(),
        token,
        expires_at: expires.to_string(),
    })
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    request_body(content = NewToken, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token, shown once", body = Created),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
    ))]
/// Creates a token (admins).
pub async fn create(
    State(state): State<ApiState>,
    principal: Principal,
    Body(b): Body<NewToken>,
) -> Result<Json<Created>, Problem> {
    admin(&principal)?;
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.contains('\0') {
        return Err(Problem::unprocessable("name must be 1 to 100 characters"));
    }
    let Some(role) = Role::parse(&b.role).filter(|r| Role::TOKEN_ROLES.contains(r)) else {
        return Err(Problem::unprocessable(
            "role must be fraud_agent, care_agent, supervisor, admin or auditor",
        ));
    };
    Ok(Json(issue(&state, &principal, name, role, b.expires_in.as_deref().unwrap_or("90d")).await?))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored tokens, newest first (never a token or its hash)", body = Vec<TokenInfo>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
/// Lists stored tokens (admins).
pub async fn list(
    State(state): State<ApiState>,
    principal: Principal,
) -> Result<Json<Vec<TokenInfo>>, Problem> {
    admin(&principal)?;
    let at = now().0;
    let rows = state.store.list_tokens().await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| TokenInfo {
                expired: r.expires_ms.is_some_and(|e| e <= at),
                expires_at: r.expires_ms.map(|e| Timestamp(e).to_string()),
                name: r.name,
                role: r.role,
                created_at: r.created_at,
                revoked: r.revoked,
            })
            .collect(),
    ))
}

/// A rotation's lifetime for the new token.
#[derive(Debug, Deserialize, utoipa::IntoParams, Default)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Rotation {
    /// How long the new token works (default `90d`).
    #[serde(default)]
    pub expires_in: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/tokens/{name}/rotate", tag = "tokens",
    params(("name" = String, Path), Rotation),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new token, shown once; the name's other tokens are revoked", body = Created),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No live stored token of that name", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid lifetime", body = Problem, content_type = "application/problem+json"),
    ))]
/// Rotates the stored tokens of a name (admins): a new one with the same role, the others revoked.
pub async fn rotate(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(name): PathParams<String>,
    Params(q): Params<Rotation>,
) -> Result<Json<Created>, Problem> {
    admin(&principal)?;
    let at = now().0;
    let live = state
        .store
        .list_tokens()
        .await?
        .into_iter()
        .find(|r| r.name == name && !r.revoked && r.expires_ms.is_none_or(|e| e > at));
    let Some(role) = live.and_then(|r| Role::parse(&r.role)) else {
        return Err(Problem::not_found(format!("no live stored token of {name}")));
    };
    let expires_in = q.expires_in.unwrap_or_else(|| "90d".into());
    Span::parse(&expires_in).map_err(Problem::unprocessable)?; // checked before anything is revoked
    let revoked = state.store.revoke_tokens(&name).await?;
    state.store.end_sessions_of(&name).await?;
    state
        .store
        .audit_access(
            "token_revoked",
            &principal.name,
            principal.role.as_str(),
            format!("{revoked} token(s) of {name}, rotated"),
        )
        .await?;
    Ok(Json(issue(&state, &principal, &name, role, &expires_in).await?))
}

#[utoipa::path(post, path = "/api/v1/tokens/{name}/revoke", tag = "tokens",
    params(("name" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Revoked (and the name's console sessions ended)", body = Revoked),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    ))]
/// Revokes every stored token of a name and ends their console sessions (admins).
pub async fn revoke(
    State(state): State<ApiState>,
    principal: Principal,
    PathParams(name): PathParams<String>,
) -> Result<Json<Revoked>, Problem> {
    admin(&principal)?;
    let revoked = state.store.revoke_tokens(&name).await?;
    state.store.end_sessions_of(&name).await?;
    state
        .store
        .audit_access(
            "token_revoked",
            &principal.name,
            principal.role.as_str(),
            format!("{revoked} token(s) of {name}"),
        )
        .await?;
    Ok(Json(Revoked { name, revoked }))
}
