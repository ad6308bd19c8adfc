//! The one way the MCP server reaches Nimbus: an HTTP request to the Nimbus API, answered with a
//! status and a bounded body. The server implements it in process (its own router), the CLI over
//! the network; tools never know which.

use std::future::Future;

use serde_json::Value;

/// An HTTP method of the Nimbus API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    Empty,
    /// A JSON body (`Content-Type: application/json`).
    Json(Value),
    /// Raw bytes (`Content-Type: application/octet-stream`): a file's content.
    Bytes(Vec<u8>),
}

impl Body {
    /// The `Content-Type` this body is sent with, if any.
    pub fn content_type(&self) -> Option<&'static str> {
        match self {
            Body::Empty => None,
            Body::Json(_) => Some("application/json"),
            Body::Bytes(_) => Some("application/octet-stream"),
        }
    }

    /// The body's bytes as sent.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Body::Empty => Vec::new(),
            Body::Json(value) => value.to_string().into_bytes(),
            Body::Bytes(bytes) => bytes,
        }
    }
}

/// One request to the Nimbus HTTP API.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path and query, starting with `/` (segments already percent-encoded).
    pub path: String,
    /// The body.
    pub body: Body,
    /// At most this many bytes of the answer's body are read; the rest is dropped unread and
    /// [`Answer::cut`] says so. Nothing a server answers can make a tool buffer more.
    pub answer_limit: usize,
}

/// The server's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body, at most the request's `answer_limit` bytes.
    pub body: Vec<u8>,
    /// Whether the body was longer than `answer_limit`.
    pub cut: bool,
}

/// Reads an answer's body up to a request's `answer_limit`, chunk by chunk as a backend
/// receives it, so that no backend buffers more than the limit.
#[derive(Debug)]
pub struct Collector {
    body: Vec<u8>,
    limit: usize,
    cut: bool,
}

impl Collector {
    /// A collector keeping at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self { body: Vec::new(), limit, cut: false }
    }

    /// Adds a chunk; `false` once the limit is passed: stop reading, the rest is dropped.
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        let room = self.limit - self.body.len();
        if chunk.len() > room {
            self.body.extend_from_slice(&chunk[..room]);
            self.cut = true;
            return false;
        }
        self.body.extend_from_slice(chunk);
        true
    }

    /// The answer with `status` and what was kept.
    pub fn finish(self, status: u16) -> Answer {
        Answer { status, body: self.body, cut: self.cut }
    }
}

/// The request never got an answer: the server is unreachable, or the connection broke.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// Sends requests to a Nimbus server, admin token attached.
pub trait Backend: Send + Sync + 'static {
    /// Sends `request` and reads at most `request.answer_limit` bytes of the answer.
    fn send(&self, request: Request) -> impl Future<Output = Result<Answer, BackendError>> + Send;
}

pub use nimbus_core::ids::path_segment as segment;

/// A query string (`?a=1&b=2`, or empty) from the pairs whose value is present.
pub fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<String>)>) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if let Some(value) = value {
            serializer.append_pair(name, &value);
        }
    }
    let encoded = serializer.finish();
    if encoded.is_empty() { encoded } else { format!("?{encoded}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded() {
        assert_eq!(query([("path", Some("/tmp/a b".to_owned())), ("offset", None)]), "?path=%2Ftmp%2Fa+b");
        assert_eq!(query([("offset", None)]), "");
    }

    #[test]
    fn a_collector_keeps_the_limit_and_says_when_it_cut() {
        let mut whole = Collector::new(4);
        assert!(whole.push(b"ab") && whole.push(b"cd"));
        let answer = whole.finish(200);
        assert_eq!((answer.body.as_slice(), answer.cut), (&b"abcd"[..], false));
        let mut cut = Collector::new(4);
        assert!(cut.push(b"abc"));
        assert!(!cut.push(b"de"));
        let answer = cut.finish(200);
        assert_eq!((answer.body.as_slice(), answer.cut), (&b"abcd"[..], true));
    }
}
