//! How Chromium is started in a browser service's sandbox.

use nimbus_core::limits::{BROWSER_DEVTOOLS_PORT, EGRESS_PROXY_PORT};

/// Where Chromium keeps its profile inside the sandbox (its writable layer, gone with it).
const PROFILE_DIR: &str = "/tmp/nimbus-browser";

/// The command line of a browser service's main process: headless Chromium with its DevTools
/// endpoint on the sandbox's own loopback, its traffic through the sandbox's egress proxy.
///
/// - `--no-sandbox`: Chromium's own sandbox needs user namespaces or a setuid helper, which a
///   Nimbus sandbox refuses; the Nimbus sandbox around it is the boundary (docs/security.md).
/// - `--proxy-bypass-list=<-loopback>`: Chromium would otherwise send loopback addresses past
///   the proxy; through it, `localhost` is still the sandbox's own (the proxy serves it there)
///   and every other name is checked against the service's egress rules.
/// - `--disable-dev-shm-usage`: the sandbox's `/dev/shm` is small; shared memory goes to `/tmp`.
pub fn chromium_argv() -> Vec<String> {
    [
        "chromium".to_owned(),
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--no-first-run".to_owned(),
        "--no-default-browser-check".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--metrics-recording-only".to_owned(),
        "--mute-audio".to_owned(),
        format!("--user-data-dir={PROFILE_DIR}"),
        "--remote-debugging-address=127.0.0.1".to_owned(),
        format!("--remote-debugging-port={BROWSER_DEVTOOLS_PORT}"),
        format!("--proxy-server=http://127.0.0.1:{EGRESS_PROXY_PORT}"),
        "--proxy-bypass-list=<-loopback>".to_owned(),
        "about:blank".to_owned(),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chromium_listens_on_loopback_only_and_goes_through_the_proxy() {
        let argv = chromium_argv();
        assert_eq!(argv[0], "chromium");
        assert!(argv.contains(&"--remote-debugging-address=127.0.0.1".to_owned()));
        assert!(argv.contains(&"--remote-debugging-port=9222".to_owned()));
        assert!(argv.contains(&"--proxy-server=http://127.0.0.1:3128".to_owned()));
    }
}
