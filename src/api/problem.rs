//! Errors as `application/problem+json` (RFC 9457): a type, a title, the status, and a detail
//! that says what was wrong. Bad input is a 4xx; a 5xx is ours (the store did not answer).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (relative: `/problems/<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Who holds a task, when a claim was refused because of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
}

impl Problem {
    /// A problem with a status, a short code and a detail.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("/problems/{code}"),
            title: status.canonical_reason().unwrap_or("error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            holder: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn unauthorized() -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "a valid bearer token is required")
    }

    pub fn conflict(detail: impl Into<String>, holder: Option<String>) -> Problem {
        Problem { holder, ..Problem::new(StatusCode::CONFLICT, "conflict", detail) }
    }

    pub fn unprocessable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        tracing::warn!(error = %e, "API request failed in the task store");
        Problem::unavailable("the task store did not answer; retry shortly")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

/// Turns axum's own rejections (bad JSON, bad query, wrong content type, a body over the limit)
/// into problems.
pub fn rejection(status: StatusCode, detail: String) -> Problem {
    let status = if status.is_client_error() { status } else { StatusCode::BAD_REQUEST };
    let code = match status {
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        StatusCode::PAYLOAD_TOO_LARGE => "too-large",
        _ => "bad-request",
    };
    Problem::new(status, code, detail)
}

/// `axum::Json` whose rejections are problems (400 for bad JSON, 422 for wrong fields or a NUL
/// character in a string, 415 for a wrong content type, 413 for a body over the limit).
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        // The bytes are read first (within the body limit) so they can be checked for NUL below.
        let (parts, body) = req.into_parts();
        let headers = parts.headers.clone();
        let RawBody(bytes) =
            RawBody::from_request(axum::extract::Request::from_parts(parts, body), state).await?;
        let mut again = axum::extract::Request::new(axum::body::Body::from(bytes.clone()));
        *again.headers_mut() = headers;
        match axum::Json::<T>::from_request(again, state).await {
            Ok(axum::Json(v)) if !json_has_nul(&bytes) => Ok(Body(v)),
            Ok(_) => Err(Problem::unprocessable(NUL_DETAIL)),
            Err(e) => Err(rejection(e.status(), e.body_text())),
        }
    }
}

/// Why a NUL character is refused: PostgreSQL cannot store it in text, so a note or a name with
/// one could never be written (SQLite could, and both stores take the same input).
const NUL_DETAIL: &str = "a NUL character (U+0000) is not allowed in the API's input";

/// True if the (valid) JSON text has a NUL character in a string or a key: JSON escapes it as
/// `\u0000`, so only texts with that sequence are parsed again and looked at.
fn json_has_nul(bytes: &[u8]) -> bool {
    fn has_nul(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(has_nul),
            serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
        && serde_json::from_slice::<serde_json::Value>(bytes).is_ok_and(|v| has_nul(&v))
}

/// True if a URL part has a percent-encoded NUL character.
fn has_encoded_nul(text: &str) -> bool {
    text.contains("%00")
}

/// The request body as bytes (within the body limit), whose rejections are problems (413 for a
/// body over the limit).
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RawBody {
    type Rejection = Problem;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| rejection(e.status(), e.body_text()))
    }
}

/// `axum::extract::Query` whose rejections are 400 problems (also for a NUL character).
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(has_encoded_nul) {
            return Err(Problem::bad_request(NUL_DETAIL));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(e) => Err(rejection(StatusCode::BAD_REQUEST, e.body_text())),
        }
    }
}

/// `axum::extract::Path` whose rejections are 400 problems (also for a NUL character).
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S>
    for PathParams<T>
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        if has_encoded_nul(parts.uri.path()) {
            return Err(Problem::bad_request(NUL_DETAIL));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(PathParams(v)),
            Err(e) => Err(rejection(StatusCode::BAD_REQUEST, e.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_found() {
        assert!(json_has_nul(br#"{"note": "a\u0000b"}"#));
        assert!(json_has_nul(br#"{"a\u0000": 1}"#));
        assert!(json_has_nul(br#"[{"x": ["\u0000"]}]"#));
        assert!(!json_has_nul(br#"{"note": "a\\u0000b"}"#), "an escaped backslash, then text");
        assert!(!json_has_nul(br#"{"note": "plain"}"#));
        assert!(has_encoded_nul("/api/v1/tasks/a%00b"));
        assert!(!has_encoded_nul("/api/v1/tasks/a%20b"));
    }
}
