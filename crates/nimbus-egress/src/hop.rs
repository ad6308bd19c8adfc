//! Hop-by-hop headers (RFC 9110 §7.6.1): what a proxy never passes on. Shared by the egress proxy
//! and the server's ports route.

use hyper::header::{self, HeaderMap, HeaderValue};

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), besides those the
/// `Connection` header names.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// `headers` without the hop-by-hop ones; with `upgrade`, `Connection: upgrade` and `Upgrade`
/// are kept (they ask the next hop to switch).
pub fn forwarded(headers: &HeaderMap, upgrade: bool) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|name| name.trim().to_ascii_lowercase()))
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name_str = name.as_str();
        if HOP_BY_HOP.contains(&name_str) || named.iter().any(|n| n == name_str) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if upgrade && let Some(protocol) = headers.get(header::UPGRADE) {
        out.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        out.insert(header::UPGRADE, protocol.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderName;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_stay_behind() {
        let sent = headers(&[
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "hop"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic x"),
            ("accept", "text/html"),
            ("x-custom", "kept"),
        ]);
        let out = forwarded(&sent, false);
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["accept", "x-custom"]);
    }

    #[test]
    fn an_upgrade_keeps_asking_the_next_hop_to_switch() {
        let sent = headers(&[("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-key", "k")]);
        let out = forwarded(&sent, true);
        assert_eq!(out.get(header::CONNECTION), Some(&HeaderValue::from_static("upgrade")));
        assert_eq!(out.get(header::UPGRADE), Some(&HeaderValue::from_static("websocket")));
        assert!(out.contains_key("sec-websocket-key"));
        assert!(!forwarded(&sent, false).contains_key(header::UPGRADE), "without an upgrade, no Upgrade goes on");
    }
}
