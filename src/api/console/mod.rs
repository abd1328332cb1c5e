//! The agents' console under `/console`: server-rendered HTML (minijinja templates compiled into
//! the binary), one small script and one style sheet, all served by the binary (no CDN: closed
//! bank networks).
//!
//! It uses only the public API: every page is rendered from `/api/v1` answers, and every button
//! is a form that the console turns into the same API call, made in-process through the API's
//! router with the agent's own token (so roles, audit and the command path are exactly the
//! API's). Login exchanges an API token for an `HttpOnly`, `SameSite=Strict` session cookie that
//! holds it; every state change carries a CSRF token derived from it (a page of another site can
//! neither read the cookie nor the page, so it cannot know the CSRF token). Pages send a strict
//! Content-Security-Policy: scripts and styles only from the console itself, no inline code.

mod i18n;
mod views;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower::ServiceExt;

/// The client's address (for the API's per-address failure limit), if the server knows it.
#[derive(Debug, Clone, Copy)]
pub struct Client(pub Option<ConnectInfo<std::net::SocketAddr>>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Client(parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().cloned()))
    }
}

/// The session cookie's name.
const COOKIE: &str = "cah_session";
/// The language cookie's name (`en` or `ru`).
const LANG_COOKIE: &str = "cah_lang";

/// The login form's CSRF cookie (double submit: the form carries the same random value).
const LOGIN_CSRF_COOKIE: &str = "cah_login_csrf";
/// How long a session lasts (seconds): a working day.
const SESSION_SECONDS: u64 = 10 * 3600;

/// The console's shared state: the templates and the API router it calls.
#[derive(Clone)]
pub struct Console {
    api: Router,
    templates: Arc<minijinja::Environment<'static>>,
    access: Access,
}

/// What the console audits logins with: the store, and how the client's address is found.
#[derive(Clone)]
pub struct Access {
    pub store: crate::store::TaskStore,
    pub limiter: Arc<crate::api::auth::FailureLimiter>,
    /// TLS terminates in front (`http.hsts`): the session cookie is `Secure` with the
    /// `__Host-` prefix.
    pub secure: bool,
}

/// A console session ends after this long without a request.
pub const SESSION_IDLE_MS: i64 = 30 * 60 * 1000;

impl Access {
    /// The session cookie's name: `__Host-` prefixed (Secure, host-only, path /) behind TLS.
    fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-cah_session"
        } else {
            COOKIE
        }
    }

    /// The session cookie's attributes (value `value`, lifetime `max_age` seconds).
    fn session_cookie(&self, value: &str, max_age: u64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
            self.cookie_name()
        )
    }
}

/// The stored form of a session id.
fn session_hash(id: &str) -> String {
    Sha256::digest(format!("callahead-console-session\0{id}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Access {
    /// The client of a request (behind the trusted proxies).
    fn client(
        &self,
        client: Option<ConnectInfo<std::net::SocketAddr>>,
        headers: &HeaderMap,
    ) -> std::net::IpAddr {
        let peer = client.map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        self.limiter.client(peer, headers)
    }
}

/// The console's routes. `api` is the `/api/v1` router the pages are rendered from.
pub fn routes(api: Router, access: Access) -> Router {
    let console = Console { api, templates: Arc::new(views::templates()), access };
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/queue") }))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/queue", get(views::queue))
        .route("/console/queue/rows", get(views::queue_rows))
        .route("/console/next", post(views::next))
        .route("/console/tasks/{id}", get(views::task))
        .route("/console/tasks/{id}/{action}", post(views::act))
        .route("/console/supervisor", get(views::supervisor))
        .route("/console/assets/{file}", get(asset))
        .with_state(console)
}

/// The Content-Security-Policy of every console response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the console's security headers.
fn secured(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// An HTML page.
fn html(status: StatusCode, body: String) -> Response {
    secured((status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response())
}

/// The CSRF token of a session: derived from its id, so any instance can check it.
pub fn csrf_of(id: &str) -> String {
    let digest = Sha256::digest(format!("callahead-console-csrf\0{id}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// One cookie's value from the request headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A logged-in agent: the session's opaque id (from the cookie), who they are, their language.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub name: String,
    pub role: String,
    pub queues: Vec<String>,
    pub csrf: String,
    pub lang: &'static str,
    /// The client's address, forwarded to the API (its failure limit is per address).
    pub client: Option<ConnectInfo<std::net::SocketAddr>>,
}

impl Session {
    /// True for supervisors and admins.
    pub fn supervises(&self) -> bool {
        self.role == "supervisor" || self.role == "admin"
    }
}

/// The language of the console's own words: the `cah_lang` cookie, else the browser's first
/// preference, else English.
fn language(headers: &HeaderMap) -> &'static str {
    let chosen = cookie(headers, LANG_COOKIE).or_else(|| {
        headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map(|v| v.get(..2).unwrap_or(""))
    });
    match chosen {
        Some("ru") => "ru",
        _ => "en",
    }
}

impl Console {
    /// Calls the API in-process as the session's holder (a `ConsoleCaller` in the request's
    /// extensions, which only in-process calls can set): (status, JSON body).
    pub async fn call(
        &self,
        session: &Session,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = Request::builder().method(method).uri(path);
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
        let mut request = request.body(body).expect("a valid request");
        if let Some(client) = session.client {
            request.extensions_mut().insert(client);
        }
        if let Some(role) = crate::command::Role::parse(&session.role) {
            let principal = crate::api::auth::Principal { name: session.name.clone(), role };
            request.extensions_mut().insert(crate::api::auth::ConsoleCaller(principal));
        }
        let response = match self.api.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await.unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    /// The session of a request: the cookie's id, found (by its hash) in the store, neither
    /// idle past [`SESSION_IDLE_MS`] nor older than [`SESSION_SECONDS`]; `None` otherwise (the
    /// page then redirects to the login).
    pub async fn session(
        &self,
        headers: &HeaderMap,
        client: Option<ConnectInfo<std::net::SocketAddr>>,
    ) -> Option<Session> {
        let id = cookie(headers, self.access.cookie_name())?.to_string();
        let hash = session_hash(&id);
        let row = self.access.store.session(&hash).await.ok()??;
        let now = crate::api::now().0;
        if now - row.last_ms > SESSION_IDLE_MS || now - row.created_ms > SESSION_SECONDS as i64 * 1000 {
            let _ = self.access.store.end_session(&hash).await;
            return None;
        }
        if now - row.last_ms > 60_000 {
            let _ = self.access.store.touch_session(&hash, now).await;
        }
        let role = crate::command::Role::parse(&row.role)?;
        let queues = crate::api::auth::Principal { name: row.name.clone(), role }
            .queues()
            .iter()
            .map(|q| q.as_str().to_string())
            .collect();
        Some(Session {
            csrf: csrf_of(&id),
            id,
            name: row.name,
            role: row.role,
            queues,
            lang: language(headers),
            client,
        })
    }

    /// Who holds an API token, as `/api/v1/me` says; the API's status when it refuses it.
    async fn holder_of(
        &self,
        token: &str,
        client: Option<ConnectInfo<std::net::SocketAddr>>,
    ) -> Result<(String, String), StatusCode> {
        let mut request = Request::builder()
            .method(Method::GET)
            .uri("/api/v1/me")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .expect("a valid request");
        if let Some(client) = client {
            request.extensions_mut().insert(client);
        }
        let response = match self.api.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status();
        if status != StatusCode::OK {
            return Err(status);
        }
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
        let me: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        let text = |k: &str| me[k].as_str().unwrap_or_default().to_string();
        Ok((text("name"), text("role")))
    }

    /// Renders a template with the session's words and language.
    pub fn render(
        &self,
        name: &str,
        session: Option<&Session>,
        lang: &'static str,
        ctx: minijinja::Value,
    ) -> Response {
        let base = minijinja::context! {
            t => i18n::words(lang),
            lang => lang,
            me => session.map(|s| minijinja::context! {
                name => s.name.clone(), role => s.role.clone(), queues => s.queues.clone(),
                supervises => s.supervises(), csrf => s.csrf.clone(),
            }),
        };
        let ctx = minijinja::context! { ..ctx, ..base };
        match self.templates.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(body) => html(StatusCode::OK, body),
            Err(e) => {
                tracing::error!(template = name, error = %e, "console template failed");
                html(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<!doctype html><title>error</title><p>The page could not be drawn.".into(),
                )
            }
        }
    }
}

/// Checks a form's CSRF token against the session's (constant time).
pub fn csrf_ok(session: &Session, presented: &str) -> bool {
    bool::from(session.csrf.as_bytes().ct_eq(presented.as_bytes()))
}

/// The login page, in the browser's language (or `?lang=`).
async fn login_page(
    State(c): State<Console>,
    headers: HeaderMap,
    query: axum::extract::Query<LangQuery>,
) -> Response {
    let lang = match query.lang.as_deref() {
        Some("ru") => "ru",
        Some("en") => "en",
        _ => language(&headers),
    };
    // A fresh random value in a cookie and in the form: a cross-site form cannot know it, so
    // nobody can log a browser in to an account of theirs.
    let csrf = crate::outreach::links::nonce();
    let mut response = c.render(
        "login.html",
        None,
        lang,
        minijinja::context! { error => query.error.clone(), login_csrf => csrf.clone() },
    );
    set_cookie(
        &mut response,
        &format!("{LOGIN_CSRF_COOKIE}={csrf}; Path=/console/login; HttpOnly; SameSite=Strict; Max-Age=1800"),
    );
    if query.lang.is_some() {
        set_cookie(
            &mut response,
            &format!("{LANG_COOKIE}={lang}; Path=/console; SameSite=Strict; Max-Age=31536000"),
        );
    }
    response
}

/// `?lang=` and `?error=` of the login page.
#[derive(Debug, Deserialize)]
struct LangQuery {
    lang: Option<String>,
    error: Option<String>,
}

/// The login form.
#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    csrf: String,
}

/// Exchanges an API token for a session cookie (after the API accepted it).
async fn login(
    State(c): State<Console>,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return secured(Redirect::to("/console/login?error=expired").into_response());
    }
    let token = form.token.trim().to_string();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return secured(Redirect::to("/console/login?error=bad_token").into_response());
    }
    let ip = c.access.client(client, &headers);
    let (name, role) = match c.holder_of(&token, client).await {
        Ok(holder) => holder,
        Err(status) => {
            let why = if status == StatusCode::TOO_MANY_REQUESTS { "too_many" } else { "bad_token" };
            c.access.store.audit_access_later(
                "login_failed",
                "unknown".into(),
                String::new(),
                format!("console login refused ({why}) from {ip}"),
            );
            return secured(Redirect::to(&format!("/console/login?error={why}")).into_response());
        }
    };
    // A session of our own: an opaque random id in the cookie (never the API token), its hash
    // in the store.
    let id = format!("{}{}", crate::outreach::links::nonce(), crate::outreach::links::nonce());
    if c.access.store.create_session(&session_hash(&id), &name, &role, crate::api::now().0).await.is_err() {
        return secured(Redirect::to("/console/login?error=unavailable").into_response());
    }
    c.access.store.audit_access_later(
        "login",
        name,
        role,
        format!("console login from {ip}; session started"),
    );
    let mut response = Redirect::to("/console/queue").into_response();
    set_cookie(&mut response, &c.access.session_cookie(&id, SESSION_SECONDS));
    secured(response)
}

/// The logout form (with its CSRF token).
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// Ends the session: the cookie is cleared.
async fn logout(
    State(c): State<Console>,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Some(s) = c.session(&headers, client).await {
        if !csrf_ok(&s, &form.csrf) {
            return forbidden_csrf(&c, &s);
        }
        let ip = c.access.client(client, &headers);
        // Ended here, server-side: the cookie's id is worth nothing from now on.
        let _ = c.access.store.end_session(&session_hash(&s.id)).await;
        c.access.store.audit_access_later(
            "logout",
            s.name.clone(),
            s.role.clone(),
            format!("console logout from {ip}; session ended"),
        );
    }
    let mut response = Redirect::to("/console/login").into_response();
    set_cookie(&mut response, &c.access.session_cookie("", 0));
    secured(response)
}

/// The answer to a state change without a valid CSRF token.
pub fn forbidden_csrf(c: &Console, s: &Session) -> Response {
    let mut r = c.render("error.html", Some(s), s.lang, minijinja::context! { code => 403, what => "csrf" });
    *r.status_mut() = StatusCode::FORBIDDEN;
    r
}

fn set_cookie(response: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The console's static files, compiled into the binary.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind): (&'static str, &str) = match file.as_str() {
        "console.css" => (include_str!("console.css"), "text/css; charset=utf-8"),
        "console.js" => (include_str!("console.js"), "text/javascript; charset=utf-8"),
        _ => return secured((StatusCode::NOT_FOUND, "no such file").into_response()),
    };
    secured(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "public, max-age=300")],
            body,
        )
            .into_response(),
    )
}
