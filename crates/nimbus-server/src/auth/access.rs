//! How each route takes the admin token. The route table marks every operation with its
//! [`Access`]; the guard reads the marks through [`Exemptions`], so the routes the OpenAPI
//! document shows without a credential are exactly the ones the guard lets through.

use axum::http::Method;

/// How an operation is authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Access {
    /// The admin token or a session cookie in a header, after the origin policy.
    #[default]
    Token,
    /// The token in the request body (the cookie exchange), after the origin policy.
    TokenInBody,
    /// A WebSocket upgrade: as [`Access::Token`], except that an upgrade carrying no credential
    /// at all passes and its socket authenticates with its first frame (browsers and built-in
    /// WebSocket clients cannot set headers).
    TokenInFirstFrame,
    /// Neither a credential nor the origin policy: health, the docs, the catalog, the OpenAPI
    /// document.
    Open,
}

/// The operations whose access is not [`Access::Token`], by method and path pattern.
#[derive(Debug, Default)]
pub struct Exemptions(Vec<(Method, Vec<String>, Access)>);

impl Exemptions {
    /// The exemptions among `routes` (method, path pattern in the router's syntax, access).
    pub fn new<'a>(routes: impl IntoIterator<Item = (&'a Method, &'a str, Access)>) -> Self {
        let exempt = routes.into_iter().filter(|(_, _, access)| *access != Access::Token);
        Self(
            exempt
                .map(|(method, path, access)| (method.clone(), path.split('/').map(str::to_owned).collect(), access))
                .collect(),
        )
    }

    /// How a request for `method` and `path` is authenticated.
    pub fn access(&self, method: &Method, path: &str) -> Access {
        let found = self.0.iter().find(|(m, pattern, _)| m == method && matches(pattern, path));
        found.map_or(Access::Token, |(_, _, access)| *access)
    }
}

/// Whether `path` matches a pattern's segments: `{name}` takes one non-empty segment, `{*rest}`
/// all that is left (at least one character), anything else itself.
fn matches(pattern: &[String], path: &str) -> bool {
    let mut segments = path.split('/');
    for part in pattern {
        if part.starts_with("{*") {
            return segments.any(|s| !s.is_empty());
        }
        match segments.next() {
            Some(segment) if part.starts_with('{') && !segment.is_empty() => {}
            Some(segment) if segment == part => {}
            _ => return false,
        }
    }
    segments.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_their_paths_only() {
        let exemptions = Exemptions::new([
            (&Method::GET, "/health", Access::Open),
            (&Method::GET, "/docs/{*page}", Access::Open),
            (&Method::POST, "/ui/auth/session", Access::TokenInBody),
            (&Method::GET, "/api/tenants", Access::Token),
            (&Method::GET, "/x/{id}/y", Access::Open),
        ]);
        assert_eq!(exemptions.access(&Method::GET, "/health"), Access::Open);
        assert_eq!(exemptions.access(&Method::POST, "/health"), Access::Token);
        assert_eq!(exemptions.access(&Method::GET, "/health/more"), Access::Token);
        assert_eq!(exemptions.access(&Method::GET, "/docs/quickstart.md"), Access::Open);
        assert_eq!(exemptions.access(&Method::GET, "/docs/a/b.md"), Access::Open);
        assert_eq!(exemptions.access(&Method::GET, "/docs/"), Access::Token);
        assert_eq!(exemptions.access(&Method::POST, "/ui/auth/session"), Access::TokenInBody);
        assert_eq!(exemptions.access(&Method::GET, "/api/tenants"), Access::Token);
        assert_eq!(exemptions.access(&Method::GET, "/x/1/y"), Access::Open);
        assert_eq!(exemptions.access(&Method::GET, "/x//y"), Access::Token);
        assert_eq!(exemptions.access(&Method::GET, "/x/1/y/z"), Access::Token);
        let sockets = Exemptions::new([(&Method::GET, "/convex/{tenant_id}/ws", Access::TokenInFirstFrame)]);
        assert_eq!(sockets.access(&Method::GET, "/convex/acme/ws"), Access::TokenInFirstFrame);
        assert_eq!(sockets.access(&Method::GET, "/convex/acme/ws/x"), Access::Token);
    }
}
