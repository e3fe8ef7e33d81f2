//! The operator console: pages rendered on the server (askama templates under
//! `engine/templates/console`), with htmx (vendored, embedded) refreshing the live parts.
//! Every action is a form that posts and redirects, so all of it works with JavaScript off.
//!
//! Sign-in turns an API key into a session cookie (HttpOnly, SameSite=Strict, Secure when
//! the public URL is https), stored hashed and ended by expiry, sign-out or revoking the
//! key. Every form carries the session's CSRF token; roles are the API's: viewers read,
//! editors and admins act. Responses carry a strict Content-Security-Policy: scripts and
//! styles from this server only, nothing inline.

pub mod assets;
mod catalog;
mod oncall;
mod pages;
mod silences;

use crate::http::AppState;
use crate::store::console::Session;
use crate::store::keys::Role;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie.
const COOKIE: &str = "tocsin_session";
/// How long a session lasts.
const SESSION_HOURS: i64 = 12;
/// Failed sign-ins an address may make per [`SIGN_IN_WINDOW`].
const SIGN_IN_FAILURES: u32 = 10;
/// The window sign-in failures are counted over.
const SIGN_IN_WINDOW: Duration = Duration::from_secs(300);

/// What every console response carries.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes, under `/console`.
pub fn router(core: AppState) -> Router {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/incidents") }),
        )
        .route(
            "/console/sign-in",
            get(pages::sign_in_page).post(pages::sign_in),
        )
        .route("/console/sign-out", post(pages::sign_out))
        .route("/console/incidents", get(pages::incidents))
        .route("/console/incidents/rows", get(pages::incident_rows))
        .route("/console/incidents/{id}", get(pages::incident))
        .route("/console/incidents/{id}/live", get(pages::incident_live))
        .route(
            "/console/incidents/{id}/acknowledge",
            post(pages::acknowledge),
        )
        .route("/console/incidents/{id}/close", post(pages::close))
        .route("/console/incidents/{id}/snooze", post(pages::snooze))
        .route("/console/on-call", get(oncall::on_call))
        .route("/console/alerts", get(catalog::alerts))
        .route("/console/integrations", get(catalog::integrations))
        .route("/console/operators", get(catalog::operators))
        .route(
            "/console/silences",
            get(silences::silences).post(silences::create_silence),
        )
        .route(
            "/console/silences/{id}/expire",
            post(silences::expire_silence),
        )
        .route("/console/static/{file}", get(assets::serve))
        .layer(axum::middleware::map_response(secure))
        .layer(axum::Extension(std::sync::Arc::new(Limiter::default())))
        .with_state(core)
}

async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The signed-in key, as the page header shows it.
#[derive(Debug, Clone)]
pub struct Me {
    /// The key's name.
    pub name: String,
    /// Its role.
    pub role: &'static str,
    /// The session's CSRF token.
    pub csrf: String,
}

/// What the page layout needs: who is signed in, and the static files' versions.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// Who is signed in, if anyone.
    pub me: Option<Me>,
    /// The stylesheet's hash.
    pub css: &'static str,
    /// htmx's hash.
    pub htmx: &'static str,
}

impl Chrome {
    fn new(me: Option<Me>) -> Self {
        Self {
            me,
            css: &assets::CSS.etag,
            htmx: &assets::HTMX.etag,
        }
    }
}

/// A signed-in request: the session and its cookie's hash.
#[derive(Debug)]
pub struct Signed {
    session: Session,
    hash: Vec<u8>,
}

impl Signed {
    /// The layout for this session.
    fn chrome(&self) -> Chrome {
        Chrome::new(Some(Me {
            name: self.session.key_name.clone(),
            role: self.session.role.as_str(),
            csrf: self.session.csrf.clone(),
        }))
    }

    /// The signed-in key as the API's handlers know a caller.
    fn caller(&self) -> crate::http::auth::Caller {
        crate::http::auth::Caller {
            key_id: self.session.key_id.clone(),
            key_name: self.session.key_name.clone(),
            role: self.session.role,
        }
    }

    /// Whether the key may act (acknowledge, close, snooze): editors and admins.
    fn can_act(&self) -> bool {
        matches!(self.session.role, Role::Admin | Role::Editor)
    }

    /// Allows a form's action: the key may act and the form carries the session's token.
    fn allow(&self, csrf: &str) -> Result<(), Refusal> {
        if !same(csrf, &self.session.csrf) {
            return Err(Refusal(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this console: reload the page and try again.".into(),
            ));
        }
        if !self.can_act() {
            return Err(Refusal(
                StatusCode::FORBIDDEN,
                "A viewer key may only look: sign in with an editor or admin key to act.".into(),
            ));
        }
        Ok(())
    }
}

/// Compares two tokens in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0, |d, (x, y)| d | (x ^ y)) == 0
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The session cookie's token, if the request has one.
fn cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, core: &AppState) -> Result<Self, Response> {
        let found = match cookie(parts) {
            None => None,
            Some(token) => {
                let hash = hash(token);
                match core.store.session(&hash, core.clock.now()).await {
                    Ok(session) => session.map(|session| Self { session, hash }),
                    Err(e) => {
                        tracing::error!(error = %e, "could not read a console session");
                        return Err(problem(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "The database did not answer; try again in a moment.",
                        ));
                    }
                }
            }
        };
        found.ok_or_else(|| {
            if parts.method == axum::http::Method::GET {
                let next = parts.uri.path();
                Redirect::to(&format!("/console/sign-in?next={}", encode(next))).into_response()
            } else {
                problem(
                    StatusCode::FORBIDDEN,
                    "You are not signed in (or your session ended): sign in, then try again.",
                )
            }
        })
    }
}

/// `text` as a query string value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Why a request is refused: its status, and what the page tells the user.
#[derive(Debug)]
pub struct Refusal(pub(super) StatusCode, pub(super) String);

impl Refusal {
    /// The database did not answer.
    fn unavailable() -> Self {
        Self(
            StatusCode::SERVICE_UNAVAILABLE,
            "The database did not answer; try again in a moment.".into(),
        )
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        problem(self.0, &self.1)
    }
}

/// An instant as the console's pages show it, to the minute.
fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A page saying what went wrong, with `status`.
fn problem(status: StatusCode, message: &str) -> Response {
    let page = pages::Problem {
        chrome: Chrome::new(None),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        message: message.to_owned(),
    };
    (status, render(&page)).into_response()
}

/// A template as a page (a 500 page if it fails, which a compiled template does not).
fn render(template: &impl askama::Template) -> Response {
    match template.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a console page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page did not render").into_response()
        }
    }
}

/// Failed sign-ins by address, over a sliding window: a guessing address is refused for a
/// while, whatever key it tries. One per server.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Limiter {
    pub(crate) fn blocked(&self, address: IpAddr) -> bool {
        let mut failures = self.failures.lock().expect("limiter lock");
        failures.retain(|_, (since, _)| since.elapsed() < SIGN_IN_WINDOW);
        failures
            .get(&address)
            .is_some_and(|(_, n)| *n >= SIGN_IN_FAILURES)
    }

    pub(crate) fn failed(&self, address: IpAddr) {
        let mut failures = self.failures.lock().expect("limiter lock");
        let entry = failures.entry(address).or_insert((Instant::now(), 0));
        entry.1 += 1;
    }
}
