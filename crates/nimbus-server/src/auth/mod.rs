//! Local security: the admin token, browser session cookies, and the origin policy with CORS.
//!
//! Order on every request: open routes pass; then the origin policy (403 for a foreign
//! `Origin`, answering CORS preflights); then the credential (401 when missing or wrong). Which
//! routes are open, which take the token in their body, and which WebSocket upgrades may leave
//! it to their socket's first frame (`/ws`, `/convex/{t}/ws`; realtime.md §1,
//! [`defers_credential`]), the route table says ([`access`]).

pub mod access;
pub mod token_file;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nimbus_core::NimbusError;
use subtle::ConstantTimeEq;

use crate::envelope::ApiError;
use access::{Access, Exemptions};
use token_file::TokenRecord;

/// How long a browser session cookie lives.
const COOKIE_TTL: Duration = Duration::from_secs(nimbus_core::limits::SESSION_COOKIE_TTL_SECS);
/// The session cookie's name.
pub const COOKIE_NAME: &str = "nimbus_session";

/// The server's view of its credentials.
pub struct AuthState {
    token_path: PathBuf,
    current: RwLock<TokenRecord>,
    /// Tokens replaced by rotations since start-up, to tell `token_revoked` from `invalid_token`.
    revoked: Mutex<Vec<String>>,
    /// Browser sessions: cookie value → expiry. In memory; all revoked by a rotation.
    cookies: Mutex<HashMap<String, Instant>>,
    /// The port the server listens on, for the origin policy.
    port: u16,
}

enum Credential {
    Token(String),
    Cookie(String),
}

impl AuthState {
    /// The server's credentials: the token file's current record, for a server on `port`.
    pub fn new(token_path: PathBuf, record: TokenRecord, port: u16) -> Arc<Self> {
        Arc::new(Self {
            token_path,
            current: RwLock::new(record),
            revoked: Mutex::new(Vec::new()),
            cookies: Mutex::new(HashMap::new()),
            port,
        })
    }

    /// Where the token file is.
    pub fn token_path(&self) -> &std::path::Path {
        &self.token_path
    }

    /// The current admin token, for the requests the server sends to itself (the `/mcp`
    /// endpoint's tools, answered in process by the route table).
    pub(crate) fn current_token(&self) -> String {
        self.current.read().unwrap_or_else(PoisonError::into_inner).token.clone()
    }

    fn token_matches(&self, candidate: &str) -> bool {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        bool::from(current.token.as_bytes().ct_eq(candidate.as_bytes()))
    }

    /// Rotates the token (file first, then memory) and revokes every browser session.
    pub fn rotate(&self) -> Result<u64, NimbusError> {
        let record = token_file::rotate(&self.token_path).map_err(|e| {
            tracing::error!(error = %e, "token rotation failed");
            NimbusError::internal()
        })?;
        let generation = record.generation;
        let old = std::mem::replace(&mut *self.current.write().unwrap_or_else(PoisonError::into_inner), record);
        self.revoked.lock().unwrap_or_else(PoisonError::into_inner).push(old.token);
        self.cookies.lock().unwrap_or_else(PoisonError::into_inner).clear();
        Ok(generation)
    }

    /// Exchanges the token for a new browser session cookie value.
    pub fn open_cookie_session(&self, token: &str) -> Result<String, NimbusError> {
        if !self.token_matches(token) {
            return Err(NimbusError::unauthorized(self.reject_reason(token)));
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| NimbusError::internal())?;
        let value = URL_SAFE_NO_PAD.encode(bytes);
        self.cookies.lock().unwrap_or_else(PoisonError::into_inner).insert(value.clone(), Instant::now() + COOKIE_TTL);
        Ok(value)
    }

    /// The `Set-Cookie` value for a session.
    pub fn cookie_header(value: &str) -> String {
        format!("{COOKIE_NAME}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}", COOKIE_TTL.as_secs())
    }

    fn reject_reason(&self, token: &str) -> &'static str {
        let revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        if revoked.iter().any(|old| bool::from(old.as_bytes().ct_eq(token.as_bytes()))) {
            "token_revoked"
        } else {
            "invalid_token"
        }
    }

    /// Checks a token presented other than in a header (a `/ws` socket's `Authenticate` frame),
    /// with the header's rules and 401 reasons.
    pub fn check_token(&self, token: &str) -> Result<(), NimbusError> {
        self.check(Some(Credential::Token(token.trim().to_owned())))
    }

    fn check(&self, credential: Option<Credential>) -> Result<(), NimbusError> {
        match credential {
            None => Err(NimbusError::unauthorized("missing_credential")),
            Some(Credential::Token(token)) if self.token_matches(&token) => Ok(()),
            Some(Credential::Token(token)) => Err(NimbusError::unauthorized(self.reject_reason(&token))),
            Some(Credential::Cookie(value)) => {
                let mut cookies = self.cookies.lock().unwrap_or_else(PoisonError::into_inner);
                match cookies.get(&value) {
                    Some(expiry) if *expiry > Instant::now() => Ok(()),
                    Some(_) => {
                        cookies.remove(&value);
                        Err(NimbusError::unauthorized("session_expired"))
                    }
                    None => Err(NimbusError::unauthorized("invalid_token")),
                }
            }
        }
    }

    /// Whether an `Origin` value is one of this server's loopback origins.
    fn origin_allowed(&self, origin: &str) -> bool {
        let port = self.port;
        [format!("http://localhost:{port}"), format!("http://127.0.0.1:{port}"), format!("http://[::1]:{port}")]
            .iter()
            .any(|allowed| allowed == origin)
    }
}

fn credential(headers: &HeaderMap) -> Option<Credential> {
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).unwrap_or("");
        return Some(Credential::Token(token.trim().to_owned()));
    }
    if let Some(value) = headers.get("x-nimbus-admin-token").and_then(|v| v.to_str().ok()) {
        return Some(Credential::Token(value.trim().to_owned()));
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| Credential::Cookie(value.to_owned()))
}

/// Whether a request carries a credential (valid or not): a token header or the session cookie.
pub fn carries_credential(headers: &HeaderMap) -> bool {
    credential(headers).is_some()
}

/// Whether the credential check is deferred, on a route marked [`Access::TokenInFirstFrame`]: a
/// WebSocket upgrade carrying no credential at all, which browsers and built-in WebSocket clients
/// cannot set. The socket then authenticates with its first frame (`routes/ws.rs`); the origin
/// policy still applies first, and a credential that is present is checked here as on every
/// route.
fn defers_credential(request: &Request) -> bool {
    let headers = request.headers();
    request.method() == Method::GET
        && headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("websocket")))
        && !carries_credential(headers)
}

fn cors_headers(headers: &mut HeaderMap, origin: &HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("x-request-id"));
}

/// The guard's state: the credentials, and the routes the table exempts.
#[derive(Clone)]
pub struct Guard {
    /// The credentials.
    pub auth: Arc<AuthState>,
    /// The open routes and those that take the token in their body.
    pub exemptions: Arc<Exemptions>,
}

/// Middleware enforcing the origin policy and the admin credential.
pub async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let access = guard.exemptions.access(request.method(), request.uri().path());
    if access == Access::Open {
        return next.run(request).await;
    }
    let auth = guard.auth;
    let origin = request.headers().get(header::ORIGIN).cloned();
    if let Some(origin) = &origin {
        let allowed = origin.to_str().is_ok_and(|o| auth.origin_allowed(o));
        if !allowed {
            return ApiError(NimbusError::forbidden("origin_not_allowed")).into_response();
        }
        if request.method() == Method::OPTIONS {
            let mut response = StatusCode::NO_CONTENT.into_response();
            let headers = response.headers_mut();
            cors_headers(headers, origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                // `convex-client`: Convex's HTTP client names itself on every call
                // (functions.md §10), so a browser's preflight must allow it.
                HeaderValue::from_static(
                    "authorization, content-type, x-nimbus-admin-token, x-tenant-id, convex-client",
                ),
            );
            return response;
        }
    }
    // The cookie exchange carries the token in its body instead of a header; a header-less
    // `/ws` upgrade, in its first frame.
    let exempt = match access {
        Access::TokenInBody => true,
        Access::TokenInFirstFrame => defers_credential(&request),
        Access::Token | Access::Open => false,
    };
    if !exempt && let Err(error) = auth.check(credential(request.headers())) {
        let mut response = ApiError(error).into_response();
        if let Some(origin) = &origin {
            cors_headers(response.headers_mut(), origin);
        }
        return response;
    }
    let mut response = next.run(request).await;
    if let Some(origin) = &origin {
        cors_headers(response.headers_mut(), origin);
    }
    response
}
