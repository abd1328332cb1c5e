//! Rules for their authors: what is loaded (mode, firings on this instance, outcomes and
//! precision from every resolved task in the store), and validation of a rule file before it
//! ships (errors as `file:line: reason`).

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::problem::{Params, Problem, RawBody};
use super::ApiState;
use crate::rules::file::parse_rules;
use crate::rules::Mode;
use crate::task::Outcome;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/rules", get(list_rules)).route("/rules/validate", post(validate))
}

/// A loaded rule and how well it does.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleInfo {
    pub id: String,
    pub queue: String,
    pub severity: String,
    /// `live` or `shadow`.
    pub mode: String,
    pub detector: Option<String>,
    pub file: String,
    pub line: usize,
    /// Times it fired on this instance since it started.
    pub firings: u64,
    /// Resolved tasks it contributed to, by outcome.
    pub outcomes: std::collections::BTreeMap<String, i64>,
    pub resolved: i64,
    /// Resolved tasks whose outcome confirmed the signal.
    pub confirmed: i64,
    /// confirmed ÷ resolved; absent before the first resolved task.
    pub precision: Option<f64>,
}

/// Precision of a rule from its outcome counts: confirmed ÷ resolved.
pub fn precision(outcomes: &[(String, i64)]) -> (i64, i64, Option<f64>) {
    let resolved: i64 = outcomes.iter().map(|(_, n)| n).sum();
    let confirmed: i64 = outcomes
        .iter()
        .filter(|(o, _)| Outcome::ALL.iter().any(|x| x.as_str() == o && x.confirms()))
        .map(|(_, n)| n)
        .sum();
    let p = (resolved > 0).then(|| confirmed as f64 / resolved as f64);
    (resolved, confirmed, p)
}

#[utoipa::path(get, path = "/api/v1/rules", tag = "rules",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Loaded rules with firings, outcomes and precision", body = Vec<RuleInfo>),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_rules(
    State(state): State<ApiState>,
    _principal: Principal,
) -> Result<Json<Vec<RuleInfo>>, Problem> {
    let outcomes = state.store.rule_outcomes().await?;
    let rules = state.rules.read().expect("rules lock poisoned").clone();
    let out = rules
        .rules
        .iter()
        .map(|r| {
            let mode = if r.mode == Mode::Shadow { "shadow" } else { "live" };
            let counts =
                outcomes.iter().find(|o| o.rule == r.id).map(|o| o.outcomes.clone()).unwrap_or_default();
            let (resolved, confirmed, precision) = precision(&counts);
            RuleInfo {
                id: r.id.clone(),
                queue: r.queue.as_str().to_string(),
                severity: serde_json::to_value(r.severity)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                mode: mode.to_string(),
                detector: r
                    .detector_kind()
                    .and_then(|d| serde_json::to_value(d).ok())
                    .and_then(|v| v.as_str().map(str::to_string)),
                file: r.file.clone(),
                line: r.line,
                firings: state.metrics.signals.with_label_values(&[&r.id, mode]).get(),
                outcomes: counts.into_iter().collect(),
                resolved,
                confirmed,
                precision,
            }
        })
        .collect();
    Ok(Json(out))
}

/// Which file the posted text is (for the error messages).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ValidateQuery {
    /// The file's name, e.g. `fraud.toml` (default `posted.toml`).
    pub file: Option<String>,
}

/// The verdict on a rule file.
#[derive(Debug, Serialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    /// Rules the file defines (when valid).
    pub rules: usize,
    /// Every problem, as `file:line: reason`.
    pub errors: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/rules/validate", tag = "rules", params(ValidateQuery),
    request_body(content = String, content_type = "text/plain", description = "The rule file (TOML)"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The verdict", body = Validation),
        (status = 400, description = "Bad request", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid token", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 256 KiB", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn validate(
    _principal: Principal,
    Params(q): Params<ValidateQuery>,
    RawBody(body): RawBody,
) -> Result<Json<Validation>, Problem> {
    let file = q.file.unwrap_or_else(|| "posted.toml".to_string());
    let text = std::str::from_utf8(&body).map_err(|_| Problem::bad_request("the rule file is not UTF-8"))?;
    let (rules, mut errors) = parse_rules(&file, text);
    // Its complaint procedures too (each on its own: the default may be in another file).
    errors.extend(crate::rules::playbook::parse_procedures(&file, text).1);
    Ok(Json(Validation {
        valid: errors.is_empty(),
        rules: if errors.is_empty() { rules.len() } else { 0 },
        errors: errors.iter().map(|e| e.to_string()).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_is_confirmed_over_resolved() {
        let counts = vec![("confirmed_fraud".to_string(), 3), ("legitimate".to_string(), 1)];
        assert_eq!(precision(&counts), (4, 3, Some(0.75)));
        assert_eq!(precision(&[]), (0, 0, None));
        let care = vec![("retained".to_string(), 1), ("unreachable".to_string(), 1)];
        assert_eq!(precision(&care), (2, 1, Some(0.5)));
    }
}
