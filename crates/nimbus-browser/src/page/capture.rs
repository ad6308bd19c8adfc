//! The operations that capture the page: `screenshot` (PNG) and `pdf`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use nimbus_core::NimbusError;
use nimbus_core::limits::BROWSER_MAX_CAPTURE_BYTES;
use serde_json::{Value, json};

use super::body::{PdfBody, ScreenshotBody, timeout_ms};
use super::deadline::Deadline;
use super::op::Op;
use super::pages::SessionPages;
use crate::cdp::Connection;

/// Most pixels a full-page screenshot covers: a PNG of incompressible pixels takes about four
/// bytes each, so this keeps the worst case within `BROWSER_MAX_CAPTURE_BYTES` (and its base64
/// within the DevTools message bound). A taller document is captured from its top.
const FULL_PAGE_MAX_PIXELS: f64 = (BROWSER_MAX_CAPTURE_BYTES / 5) as f64;

/// Longest side of a full-page screenshot, in pixels (Chromium's largest texture).
const FULL_PAGE_MAX_SIDE: f64 = 16_384.0;

/// Bytes of a PDF read per `IO.read`.
const PDF_CHUNK_BYTES: u64 = 1024 * 1024;

/// A captured image or document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Capture {
    /// Its media type.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// `screenshot`: a PNG of the viewport, or of the whole document (`fullPage`).
pub(crate) async fn screenshot(
    conn: &Connection,
    pages: &SessionPages,
    body: ScreenshotBody,
) -> Result<Capture, NimbusError> {
    let deadline = Deadline::after("screenshot", timeout_ms(body.timeout_ms)?);
    let op = Op::prepare(conn, pages, body.page_id.as_deref(), deadline).await?;
    let mut params = json!({ "format": "png" });
    if body.full_page.unwrap_or(false) {
        let metrics = op.call("Page.getLayoutMetrics", json!({})).await?;
        let size = metrics.get("cssContentSize").or_else(|| metrics.get("contentSize"));
        let side = |name: &str| size.and_then(|s| s.get(name)).and_then(Value::as_f64).filter(|v| v.is_finite());
        let (width, height) = full_page_clip(side("width").unwrap_or(0.0), side("height").unwrap_or(0.0));
        params["captureBeyondViewport"] = json!(true);
        params["clip"] = json!({ "x": 0, "y": 0, "width": width, "height": height, "scale": 1 });
    }
    let answer = op.call("Page.captureScreenshot", params).await?;
    let bytes = decode(answer.get("data"), "screenshot")?;
    Ok(Capture { content_type: "image/png", bytes })
}

/// The clip of a full-page capture of a `width`×`height` document: whole pixels, at least
/// one, sides and area bounded.
fn full_page_clip(width: f64, height: f64) -> (f64, f64) {
    let width = width.ceil().clamp(1.0, FULL_PAGE_MAX_SIDE);
    let height = height.ceil().clamp(1.0, FULL_PAGE_MAX_SIDE).min((FULL_PAGE_MAX_PIXELS / width).floor().max(1.0));
    (width, height)
}

/// Decodes a base64 capture, refusing one over `BROWSER_MAX_CAPTURE_BYTES` before decoding it.
fn decode(data: Option<&Value>, what: &str) -> Result<Vec<u8>, NimbusError> {
    let data = data.and_then(Value::as_str).ok_or_else(|| {
        tracing::warn!(what, "Chromium's capture has no data");
        NimbusError::internal()
    })?;
    let decoded_size = data.len() / 4 * 3;
    if decoded_size > BROWSER_MAX_CAPTURE_BYTES + 3 {
        return Err(too_large(decoded_size));
    }
    let bytes = BASE64.decode(data).map_err(|error| {
        tracing::warn!(%error, what, "Chromium's capture is not base64");
        NimbusError::internal()
    })?;
    if bytes.len() > BROWSER_MAX_CAPTURE_BYTES {
        return Err(too_large(bytes.len()));
    }
    Ok(bytes)
}

fn too_large(size: usize) -> NimbusError {
    NimbusError::cap_exceeded(
        "browser_capture_bytes",
        u64::try_from(size).unwrap_or(u64::MAX),
        u64::try_from(BROWSER_MAX_CAPTURE_BYTES).unwrap_or(u64::MAX),
    )
}

/// `pdf`: the page printed to PDF, read as a stream so its size is bounded as it arrives.
pub(crate) async fn pdf(conn: &Connection, pages: &SessionPages, body: PdfBody) -> Result<Capture, NimbusError> {
    let deadline = Deadline::after("pdf", timeout_ms(body.timeout_ms)?);
    let op = Op::prepare(conn, pages, body.page_id.as_deref(), deadline).await?;
    let params = json!({
        "landscape": body.landscape.unwrap_or(false),
        "printBackground": body.print_background.unwrap_or(false),
        "transferMode": "ReturnAsStream",
    });
    let answer = op.call("Page.printToPDF", params).await?;
    let Some(stream) = answer.get("stream").and_then(Value::as_str).map(str::to_owned) else {
        // A Chromium that ignores the transfer mode sends the document whole.
        let bytes = decode(answer.get("data"), "pdf")?;
        return Ok(Capture { content_type: "application/pdf", bytes });
    };
    let read = read_stream(&op, &stream).await;
    if let Err(error) = op.call_raw("IO.close", json!({ "handle": stream })).await {
        tracing::debug!(%error, "IO.close failed");
    }
    Ok(Capture { content_type: "application/pdf", bytes: read? })
}

async fn read_stream(op: &Op<'_>, stream: &str) -> Result<Vec<u8>, NimbusError> {
    let mut bytes = Vec::new();
    loop {
        let chunk = op.call("IO.read", json!({ "handle": stream, "size": PDF_CHUNK_BYTES })).await?;
        let data = chunk.get("data").and_then(Value::as_str).unwrap_or_default();
        if chunk.get("base64Encoded").and_then(Value::as_bool).unwrap_or(false) {
            let decoded = BASE64.decode(data).map_err(|error| {
                tracing::warn!(%error, "Chromium's PDF chunk is not base64");
                NimbusError::internal()
            })?;
            bytes.extend_from_slice(&decoded);
        } else {
            bytes.extend_from_slice(data.as_bytes());
        }
        if bytes.len() > BROWSER_MAX_CAPTURE_BYTES {
            return Err(too_large(bytes.len()));
        }
        if chunk.get("eof").and_then(Value::as_bool).unwrap_or(true) {
            return Ok(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_page_clips_are_bounded() {
        assert_eq!(full_page_clip(1280.0, 3000.4), (1280.0, 3001.0));
        assert_eq!(full_page_clip(0.0, -5.0), (1.0, 1.0));
        let (width, height) = full_page_clip(1280.0, 1e9);
        assert!(width * height <= FULL_PAGE_MAX_PIXELS);
        assert_eq!(full_page_clip(1e9, 1e9).0, FULL_PAGE_MAX_SIDE);
        assert_eq!(full_page_clip(f64::INFINITY, 10.0).0, FULL_PAGE_MAX_SIDE);
    }

    #[test]
    fn captures_over_the_bound_are_refused_before_decoding() {
        let big = Value::from("A".repeat((BROWSER_MAX_CAPTURE_BYTES / 3 + 2) * 4));
        let error = decode(Some(&big), "test").expect_err("too large");
        assert_eq!(error.code, nimbus_core::ErrorCode::OpCapExceeded);
        assert_eq!(decode(Some(&Value::from("aGk=")), "test").ok(), Some(b"hi".to_vec()));
        assert!(decode(Some(&Value::from("!!")), "test").is_err());
        assert!(decode(None, "test").is_err());
    }
}
