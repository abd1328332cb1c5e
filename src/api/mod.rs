//! The HTTP edge: the agents' API under `/api/v1` (tasks, queues, customers, rules, audit),
//! its OpenAPI document at `/openapi.json` and an offline Swagger UI at `/docs`, the agents'
//! console under `/console` (built on the API alone), and the ops endpoints `/metrics`,
//! `/healthz` and `/readyz`.
//!
//! The API never writes a task: it reads the store's projection and sends commands through the
//! [`CommandBus`] to the engine that owns the customer, then waits (bounded) for the command's
//! result to be durable and answers with the task as it now is (read-your-writes), or 202 with
//! where to look if the engine is slow. Every route but the ops endpoints and the docs needs a
//! bearer token ([`auth`]).

pub mod auth;
pub mod console;
mod customers;
mod openapi;
pub mod problem;
mod rules;
mod tasks;
mod tokens;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::bus::CommandBus;
use crate::command::Role;
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::rules::SharedRules;
use crate::store::TaskStore;

/// What the ops endpoints read.
#[derive(Clone)]
pub struct Health {
    pub metrics: Arc<Metrics>,
    pub ready: Arc<AtomicBool>,
}

/// What the API's handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub store: TaskStore,
    pub bus: CommandBus,
    pub rules: SharedRules,
    pub metrics: Arc<Metrics>,
    /// Tokens provisioned from configuration: (name, role, SHA-256 hex).
    pub provisioned: Arc<Vec<(String, Role, String)>>,
    pub limiter: Arc<auth::FailureLimiter>,
    /// How long an action waits for its result.
    pub command_wait: Duration,
    /// The consumer group whose checkpoints hold customers' state.
    pub group_id: String,
    /// In the embedded mode, the engine itself (customers' live state); in `serve`, state is
    /// read from the last checkpoint.
    pub local_engine: Option<Arc<Engine>>,
    /// TLS terminates in front of the service (`http.hsts`): console cookies are `Secure`.
    pub secure_cookies: bool,
}

/// Largest request body accepted (a rule file to validate is the largest thing sent).
pub const MAX_BODY: usize = 256 * 1024;

/// The ops endpoints alone.
pub fn ops_router(health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(health)
}

/// Everything: ops endpoints, the API, its document and the Swagger UI.
pub fn router(health: Health, api: ApiState) -> Router {
    let metrics = api.metrics.clone();
    let access = console::Access {
        store: api.store.clone(),
        limiter: api.limiter.clone(),
        secure: api.secure_cookies,
    };
    let v1 = Router::new()
        .merge(tasks::routes())
        .merge(customers::routes())
        .merge(rules::routes())
        .merge(tokens::routes())
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(api)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(metrics, observe));
    let console = console::routes(Router::new().nest("/api/v1", v1.clone()), access);
    ops_router(health)
        .nest("/api/v1", v1)
        .merge(openapi::routes())
        .merge(console)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(|| async { problem::Problem::not_found("no such route") })
}

/// A known path asked with a method it does not take: a 405 problem (axum adds `Allow`).
async fn method_not_allowed(method: axum::http::Method) -> problem::Problem {
    problem::Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        format!("this path does not take {method}; see the Allow header"),
    )
}

/// Counts and times API requests by route (the matched pattern, never the ids in the path).
async fn observe(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map_or("unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.api_seconds.with_label_values(&[&route]).observe(started.elapsed().as_secs_f64());
    metrics.api_requests.with_label_values(&[&route, response.status().as_str()]).inc();
    response
}

async fn metrics(State(h): State<Health>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], h.metrics.render())
}

async fn readyz(State(h): State<Health>) -> (StatusCode, &'static str) {
    if h.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Precision of a rule from its outcome counts: (resolved, confirmed, confirmed ÷ resolved).
pub fn rules_precision(outcomes: &[(String, i64)]) -> (i64, i64, Option<f64>) {
    rules::precision(outcomes)
}

/// Wall-clock time now, for commands and overdue checks (the edge reads the clock, not the core).
pub fn now() -> crate::time::Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    crate::time::Timestamp(ms)
}

/// Longest a request may take: past it the client gets a 503 problem, so a stuck store or a
/// slow handler does not hold connections for ever.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves `router` on `listener` (HTTP/1.1) with client addresses (for the auth failure limit),
/// a request's header bounded by [`HEADER_READ_TIMEOUT`], every request bounded by
/// [`REQUEST_TIMEOUT`], and with `hsts` the `Strict-Transport-Security`
/// header on every answer (set it where TLS terminates in front of the service).
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    router: Router,
    hsts: bool,
) -> std::io::Result<()> {
    let router = router
        .layer(axum::middleware::from_fn(move |request: Request, next: Next| guard(request, next, hsts)));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, a reset before accept: wait a moment, keep serving.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = router.clone();
        let service =
            hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                let app = app.clone();
                async move {
                    use tower::ServiceExt;
                    app.oneshot(request.map(axum::body::Body::new)).await
                }
            });
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
            let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
        });
    }
}

/// Longest a client may take to send a request's header (a slow-loris client is cut off).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The request timeout and the HSTS header.
async fn guard(request: Request, next: Next, hsts: bool) -> Response {
    use axum::response::IntoResponse;
    let mut response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => problem::Problem::unavailable("the request took too long; retry").into_response(),
    };
    if hsts {
        response.headers_mut().insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            axum::http::HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}
