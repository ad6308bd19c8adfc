//! The `page` channel's operations (docs/browser.md, "The `page` channel"): plain HTTP
//! operations on a session's pages, made for agents. The server routes
//! `POST /api/sessions/{id}/page/{operation}` to [`run`] with the session's [`SessionPages`].
//!
//! Every operation parses its body (unknown fields refused, bad fields named), checks what
//! serde cannot, finds its page (`pageId`, or the session's default page), and acts under a
//! deadline (`timeoutMs`). Nimbus's own scripts run in an isolated world, so a page's scripts
//! cannot change what a ref, a selector or a read means.
//!
//! # Layout
//! - `pages.rs`: [`SessionPages`], the per-session state (page order, attached sessions).
//! - `body.rs`, `answers.rs`: the wire types; `url.rs`: which URLs may be loaded.
//! - `op.rs`: an operation in progress (its page, its deadline, error mapping);
//!   `deadline.rs`, `errors.rs`: timeouts and the catalogued errors.
//! - `target.rs`: an attached page and the calls every operation makes; creating a page.
//! - `navigate.rs`: navigation and the waits for load and for a commit.
//! - `lifecycle.rs`: `open`, `goto`, `close`, `pages`.
//! - `input.rs` (with `element.rs`, refs and selectors, and `keys.rs`, key definitions):
//!   `click`, `type`, `press`, `select`.
//! - `read.rs` (with `snapshot.rs`, the accessibility tree as text): `snapshot`, `evaluate`,
//!   `text`, `storageState`.
//! - `capture.rs`: `screenshot`, `pdf`.
//! - `chromium_tests.rs`: every operation against a real Chromium (ignored by default).

mod answers;
mod body;
mod capture;
#[cfg(test)]
mod chromium_tests;
pub(crate) mod deadline;
mod element;
mod errors;
mod input;
mod keys;
mod lifecycle;
pub(crate) mod navigate;
mod op;
mod pages;
mod read;
mod snapshot;
pub(crate) mod target;

use nimbus_core::NimbusError;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::Value;

pub use answers::{
    ActionAnswer, CloseAnswer, EvaluateAnswer, GotoAnswer, PageInfo, PagesAnswer, SelectAnswer, SnapshotAnswer,
    TextAnswer,
};
pub use body::{
    ClickBody, EvaluateBody, GotoBody, OpenBody, PageBody, PagesBody, PdfBody, PressBody, ScreenshotBody, SelectBody,
    TextBody, TypeBody,
};
pub use navigate::WaitUntil;
pub use pages::SessionPages;

use crate::cdp::Connection;
use crate::context::StorageState;

/// What an operation answers.
#[derive(Debug, Clone, PartialEq)]
pub enum PageAnswer {
    /// A JSON body (`200 application/json`).
    Json(Value),
    /// A binary body: `image/png` for `screenshot`, `application/pdf` for `pdf`.
    Binary {
        /// The media type.
        content_type: &'static str,
        /// The bytes (at most `BROWSER_MAX_CAPTURE_BYTES`).
        bytes: Vec<u8>,
    },
}

/// Renders a JSON Schema into a generator, which collects its named definitions.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// What an operation answers, for the OpenAPI document.
#[derive(Debug, Clone, Copy)]
pub enum AnswerDoc {
    /// JSON of this schema.
    Json(SchemaFn),
    /// A binary body of this media type.
    Binary(&'static str),
}

/// One operation as the OpenAPI document describes it.
#[derive(Debug, Clone, Copy)]
pub struct PageOperation {
    /// The `{operation}` path segment.
    pub name: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// Its body's schema.
    pub body: SchemaFn,
    /// Its answer.
    pub answer: AnswerDoc,
}

/// Every operation, in the docs' order.
pub const OPERATIONS: &[PageOperation] = &[
    PageOperation {
        name: "open",
        summary: "Open a new page (blank, or loading `url`).",
        body: schema_of::<OpenBody>,
        answer: AnswerDoc::Json(schema_of::<PageInfo>),
    },
    PageOperation {
        name: "goto",
        summary: "Load a URL in the page and wait for it.",
        body: schema_of::<GotoBody>,
        answer: AnswerDoc::Json(schema_of::<GotoAnswer>),
    },
    PageOperation {
        name: "snapshot",
        summary: "The page's accessibility tree as text, each element with a ref.",
        body: schema_of::<PageBody>,
        answer: AnswerDoc::Json(schema_of::<SnapshotAnswer>),
    },
    PageOperation {
        name: "click",
        summary: "Click an element (by ref or selector) with real mouse events.",
        body: schema_of::<ClickBody>,
        answer: AnswerDoc::Json(schema_of::<ActionAnswer>),
    },
    PageOperation {
        name: "type",
        summary: "Focus an element and insert text as typed input.",
        body: schema_of::<TypeBody>,
        answer: AnswerDoc::Json(schema_of::<ActionAnswer>),
    },
    PageOperation {
        name: "press",
        summary: "Press a key (with modifiers), optionally on an element.",
        body: schema_of::<PressBody>,
        answer: AnswerDoc::Json(schema_of::<ActionAnswer>),
    },
    PageOperation {
        name: "select",
        summary: "Select options of a <select> by value or label.",
        body: schema_of::<SelectBody>,
        answer: AnswerDoc::Json(schema_of::<SelectAnswer>),
    },
    PageOperation {
        name: "evaluate",
        summary: "Evaluate JavaScript in the page and answer its JSON value.",
        body: schema_of::<EvaluateBody>,
        answer: AnswerDoc::Json(schema_of::<EvaluateAnswer>),
    },
    PageOperation {
        name: "text",
        summary: "The rendered text of an element or the page.",
        body: schema_of::<TextBody>,
        answer: AnswerDoc::Json(schema_of::<TextAnswer>),
    },
    PageOperation {
        name: "screenshot",
        summary: "A PNG of the viewport or the whole page.",
        body: schema_of::<ScreenshotBody>,
        answer: AnswerDoc::Binary("image/png"),
    },
    PageOperation {
        name: "pdf",
        summary: "The page printed to PDF.",
        body: schema_of::<PdfBody>,
        answer: AnswerDoc::Binary("application/pdf"),
    },
    PageOperation {
        name: "pages",
        summary: "The session's open pages in opening order.",
        body: schema_of::<PagesBody>,
        answer: AnswerDoc::Json(schema_of::<PagesAnswer>),
    },
    PageOperation {
        name: "close",
        summary: "Close the page.",
        body: schema_of::<PageBody>,
        answer: AnswerDoc::Json(schema_of::<CloseAnswer>),
    },
    PageOperation {
        name: "storageState",
        summary: "The session's cookies and localStorage in Playwright's storageState shape.",
        body: schema_of::<PageBody>,
        answer: AnswerDoc::Json(schema_of::<StorageState>),
    },
];

/// The body schema of `operation`, rendered into `generator`; `None` for an unknown operation.
pub fn body_schema(operation: &str, generator: &mut SchemaGenerator) -> Option<Schema> {
    OPERATIONS.iter().find(|op| op.name == operation).map(|op| (op.body)(generator))
}

/// Runs the page operation `operation` with its JSON `body` (`{}` or `null` when the request
/// had none) on the session whose pages are `pages`, over `conn`. Every body but `pages`' takes
/// `timeoutMs` (default `BROWSER_DEFAULT_TIMEOUT_MS`, at most `BROWSER_MAX_TIMEOUT_MS`) and, but
/// `open`'s, `pageId`.
///
/// An unknown operation is 404 `op.not_found` (`resource: "page operation"`); a bad body is
/// 400 `op.invalid_input` naming the field; the other failures are the `browser.*` codes of the
/// docs, `rate.resource_exhausted` for `open` past `BROWSER_MAX_PAGES_PER_SESSION` and
/// `op.cap_exceeded` for a capture over `BROWSER_MAX_CAPTURE_BYTES`.
pub async fn run(
    conn: &Connection,
    pages: &SessionPages,
    operation: &str,
    body: Value,
) -> Result<PageAnswer, NimbusError> {
    match operation {
        "open" => json(lifecycle::open(conn, pages, body::parse(body)?).await),
        "goto" => json(lifecycle::goto(conn, pages, body::parse(body)?).await),
        "snapshot" => json(read::snapshot(conn, pages, body::parse(body)?).await),
        "click" => json(input::click(conn, pages, body::parse(body)?).await),
        "type" => json(input::type_text(conn, pages, body::parse(body)?).await),
        "press" => json(input::press(conn, pages, body::parse(body)?).await),
        "select" => json(input::select(conn, pages, body::parse(body)?).await),
        "evaluate" => json(read::evaluate(conn, pages, body::parse(body)?).await),
        "text" => json(read::text(conn, pages, body::parse(body)?).await),
        "screenshot" => binary(capture::screenshot(conn, pages, body::parse(body)?).await),
        "pdf" => binary(capture::pdf(conn, pages, body::parse(body)?).await),
        "pages" => json(lifecycle::list(conn, pages, body::parse(body)?).await),
        "close" => json(lifecycle::close(conn, pages, body::parse(body)?).await),
        "storageState" => json(read::storage_state(conn, pages, body::parse(body)?).await),
        _ => Err(NimbusError::not_found("page operation", operation)),
    }
}

fn json<T: Serialize>(answer: Result<T, NimbusError>) -> Result<PageAnswer, NimbusError> {
    let answer = answer?;
    serde_json::to_value(answer).map(PageAnswer::Json).map_err(|error| {
        tracing::warn!(%error, "a page answer did not serialise");
        NimbusError::internal()
    })
}

fn binary(answer: Result<capture::Capture, NimbusError>) -> Result<PageAnswer, NimbusError> {
    let capture = answer?;
    Ok(PageAnswer::Binary { content_type: capture.content_type, bytes: capture.bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server awaits these in request handlers, which must be `Send`.
    #[allow(dead_code)]
    fn futures_are_send(conn: &Connection, pages: &SessionPages) {
        fn send<T: Send>(_: &T) {}
        send(&run(conn, pages, "open", Value::Null));
        send(&crate::context::create(conn, crate::context::Viewport::default(), None));
        send(&crate::context::storage_state(conn, "c"));
        send(&crate::context::dispose(conn, "c"));
        let dial: crate::Dial = std::sync::Arc::new(|| Box::pin(tokio::net::TcpStream::connect("127.0.0.1:9")));
        send(&Connection::connect(&dial));
    }

    #[test]
    fn every_operation_has_a_body_schema_and_names_are_unique() {
        let mut generator = SchemaGenerator::default();
        let mut names: Vec<&str> = OPERATIONS.iter().map(|op| op.name).collect();
        for name in &names {
            let schema = body_schema(name, &mut generator).expect("a schema");
            assert!(schema.as_value().is_object(), "{name}");
        }
        assert!(body_schema("nope", &mut generator).is_none());
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 14);
    }

    #[test]
    fn bodies_refuse_unknown_fields_in_their_schema() {
        let mut generator = SchemaGenerator::default();
        let schema = body_schema("click", &mut generator).expect("a schema");
        let value = schema.as_value();
        let definition = match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.rsplit('/').next().unwrap_or_default();
                generator.definitions().get(name).cloned().unwrap_or_default()
            }
            None => value.clone(),
        };
        assert_eq!(definition["additionalProperties"], Value::Bool(false), "{definition}");
        assert!(definition["properties"].get("ref").is_some());
        assert!(definition["properties"].get("timeoutMs").is_some());
    }
}
