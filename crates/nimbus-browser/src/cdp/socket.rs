//! The browser endpoint's WebSocket: `GET /json/version` names it (its path carries a token
//! Chromium made at start-up), then a WebSocket handshake on a second stream opens it.

use std::time::Duration;

use nimbus_core::NimbusError;
use nimbus_core::limits::{BROWSER_CDP_MAX_MESSAGE_BYTES, BROWSER_DEVTOOLS_PORT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::error::unavailable;
use crate::Dial;

/// How long dialing, `GET /json/version` and the WebSocket handshake may take together:
/// Chromium answers them in milliseconds on the sandbox's loopback, so a longer silence means
/// it is not (yet) serving.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest `/json/version` answer read, head and body: Chromium's is under 1 KiB.
const VERSION_MAX_BYTES: usize = 64 * 1024;

/// Opens a WebSocket to Chromium's browser endpoint through `dial`: `GET /json/version` on one
/// dialed stream reads `webSocketDebuggerUrl`, then a handshake on a second stream opens its
/// path, with messages bounded by `BROWSER_CDP_MAX_MESSAGE_BYTES`. Any failure (including
/// taking longer than [`CONNECT_TIMEOUT`]) is `browser.unavailable` with `detail.reason`
/// (`detail.service` is the caller's to add).
pub async fn open_socket(dial: &Dial) -> Result<WebSocketStream<TcpStream>, NimbusError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, open(dial)).await {
        Ok(result) => result.map_err(unavailable),
        Err(_) => {
            Err(unavailable(format!("the DevTools endpoint did not answer within {} ms", CONNECT_TIMEOUT.as_millis())))
        }
    }
}

async fn open(dial: &Dial) -> Result<WebSocketStream<TcpStream>, String> {
    let path = browser_path(dial).await?;
    let stream = dial().await.map_err(|e| format!("cannot connect to the DevTools port: {e}"))?;
    let url = format!("ws://127.0.0.1:{BROWSER_DEVTOOLS_PORT}{path}");
    let config = WebSocketConfig::default()
        .max_message_size(Some(BROWSER_CDP_MAX_MESSAGE_BYTES))
        .max_frame_size(Some(BROWSER_CDP_MAX_MESSAGE_BYTES));
    let (socket, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| format!("the DevTools WebSocket handshake failed: {e}"))?;
    Ok(socket)
}

/// The path of the browser endpoint's WebSocket, from `GET /json/version`.
async fn browser_path(dial: &Dial) -> Result<String, String> {
    let mut stream = dial().await.map_err(|e| format!("cannot connect to the DevTools port: {e}"))?;
    let request = format!(
        "GET /json/version HTTP/1.1\r\nHost: 127.0.0.1:{BROWSER_DEVTOOLS_PORT}\r\nAccept: application/json\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("cannot send GET /json/version: {e}"))?;
    let answer = read_answer(&mut stream).await?;
    let body = version_body(&answer)?;
    debugger_path(body)
}

/// Reads an HTTP answer until its `Content-Length` is complete or the peer closes, refusing
/// one larger than [`VERSION_MAX_BYTES`].
async fn read_answer(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut answer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(total) = complete_length(&answer)
            && answer.len() >= total
        {
            answer.truncate(total);
            return Ok(answer);
        }
        let read = stream.read(&mut chunk).await.map_err(|e| format!("cannot read /json/version: {e}"))?;
        if read == 0 {
            return Ok(answer);
        }
        if answer.len() + read > VERSION_MAX_BYTES {
            return Err(format!("the /json/version answer is larger than {VERSION_MAX_BYTES} bytes"));
        }
        answer.extend_from_slice(&chunk[..read]);
    }
}

/// The answer's total length (head and body) once its head is complete and names a
/// `Content-Length`.
fn complete_length(answer: &[u8]) -> Option<usize> {
    let head_end = find(answer, b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&answer[..head_end]).ok()?;
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok())?
    })?;
    head_end.checked_add(length)
}

/// The body of a `200` answer.
fn version_body(answer: &[u8]) -> Result<&[u8], String> {
    let head_end = find(answer, b"\r\n\r\n").ok_or("the /json/version answer has no complete head")?;
    let head = std::str::from_utf8(&answer[..head_end]).map_err(|_| "the /json/version head is not text")?;
    let status = head.lines().next().unwrap_or_default();
    let mut parts = status.split(' ');
    let (version, code) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if !version.starts_with("HTTP/1.") || code != "200" {
        return Err(format!("GET /json/version answered {:?}", truncate(status, 80)));
    }
    let chunked = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding") && !value.trim().eq_ignore_ascii_case("identity")
        })
    });
    if chunked {
        return Err("the /json/version answer uses a transfer encoding".to_owned());
    }
    Ok(&answer[head_end + 4..])
}

/// The path of `webSocketDebuggerUrl` (`ws://127.0.0.1:9222/devtools/browser/<id>` →
/// `/devtools/browser/<id>`). Only the path is taken: the stream is always the dialed one.
fn debugger_path(body: &[u8]) -> Result<String, String> {
    let version: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the /json/version answer is not JSON: {e}"))?;
    let url = version
        .get("webSocketDebuggerUrl")
        .and_then(serde_json::Value::as_str)
        .ok_or("the /json/version answer has no webSocketDebuggerUrl")?;
    let rest = url.strip_prefix("ws://").ok_or("webSocketDebuggerUrl is not a ws:// URL")?;
    let path = rest.find('/').map(|at| &rest[at..]).ok_or("webSocketDebuggerUrl has no path")?;
    let well_formed = path.starts_with("/devtools/browser/")
        && path.len() <= 256
        && path.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
    if !well_formed {
        return Err(format!("webSocketDebuggerUrl has an unexpected path {:?}", truncate(path, 80)));
    }
    Ok(path.to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_comes_from_the_debugger_url() {
        let body = r#"{"Browser":"Chrome/156","webSocketDebuggerUrl":"ws://127.0.0.1:9222/devtools/browser/ab-12"}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length:{}\r\nContent-Type:application/json; charset=UTF-8\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(complete_length(answer.as_bytes()), Some(answer.len()));
        assert_eq!(complete_length(&answer.as_bytes()[..20]), None);
        let body = version_body(answer.as_bytes()).expect("a 200 answer");
        assert_eq!(debugger_path(body).as_deref(), Ok("/devtools/browser/ab-12"));
    }

    #[tokio::test]
    async fn nothing_listening_is_browser_unavailable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let dial: Dial = std::sync::Arc::new(move || Box::pin(TcpStream::connect(address)));
        let error = open_socket(&dial).await.expect_err("nothing listens");
        assert_eq!(error.code, nimbus_core::ErrorCode::BrowserUnavailable);
        assert!(error.detail.as_ref().is_some_and(|d| d["reason"].is_string()), "{error:?}");
    }

    #[test]
    fn bad_answers_are_refused() {
        assert!(version_body(b"HTTP/1.1 500 Internal\r\n\r\n{}").is_err());
        assert!(version_body(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n").is_err());
        assert!(version_body(b"HTTP/1.1 200 OK").is_err());
        for body in [
            &br#"{}"#[..],
            br#"{"webSocketDebuggerUrl": 3}"#,
            br#"{"webSocketDebuggerUrl": "http://127.0.0.1:9222/devtools/browser/x"}"#,
            br#"{"webSocketDebuggerUrl": "ws://127.0.0.1:9222/json/list"}"#,
            br#"{"webSocketDebuggerUrl": "ws://127.0.0.1:9222/devtools/browser/a?b"}"#,
            br#"{"webSocketDebuggerUrl": "ws://127.0.0.1:9222"}"#,
            b"not json",
        ] {
            assert!(debugger_path(body).is_err(), "{}", String::from_utf8_lossy(body));
        }
    }
}
