//! The open docs routes: `/llms.txt`, `/llms-full.txt` and `/docs/{page}.md`, served from the
//! copies compiled into the binary.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::envelope::{ApiError, route_not_found};

mod bundle {
    include!(concat!(env!("OUT_DIR"), "/docs_bundle.rs"));
}

fn file(name: &str) -> Option<&'static str> {
    bundle::FILES.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

fn text(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// `GET /llms.txt`.
pub async fn llms() -> Response {
    match file("llms.txt") {
        Some(body) => text("text/plain; charset=utf-8", body),
        None => ApiError(route_not_found("GET", "/llms.txt")).into_response(),
    }
}

/// `GET /llms-full.txt`.
pub async fn llms_full() -> Response {
    match file("llms-full.txt") {
        Some(body) => text("text/plain; charset=utf-8", body),
        None => ApiError(route_not_found("GET", "/llms-full.txt")).into_response(),
    }
}

/// `GET /docs/{page}.md` (the page may contain `/`).
pub async fn page(Path(page): Path<String>) -> Response {
    let found = page.strip_suffix(".md").filter(|p| !p.contains("..")).and_then(|p| file(&format!("{p}.md")));
    match found {
        Some(body) => text("text/markdown; charset=utf-8", body),
        None => ApiError(route_not_found("GET", &format!("/docs/{page}"))).into_response(),
    }
}
