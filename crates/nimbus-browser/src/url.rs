//! Which URLs Chromium may be told to load (a `cdp` client's `Target.createTarget` and
//! `Page.navigate`, the `page` channel's `open` and `goto`): a browser-initiated navigation may
//! open Chromium's internal pages (`chrome://inspect`, `chrome://discards`, …) that list every
//! page of the browser, other sessions' included. A page's own script cannot reach them; only
//! these commands can.

/// Schemes a navigation may use. `about:` only for `blank` and `srcdoc`: Chromium rewrites other
/// `about:` pages to `chrome://` ones.
const SCHEMES: [&str; 6] = ["http", "https", "file", "data", "blob", "about"];

/// Whether a client may navigate to `url`. The scheme is read as Chromium's URL parser reads it
/// (surrounding spaces and control characters trimmed, tabs and newlines removed, case folded),
/// so no spelling of a refused scheme gets through. An empty URL is `about:blank`.
pub(crate) fn allowed(url: &str) -> bool {
    let trimmed = url.trim_matches(|c: char| c <= ' ');
    if trimmed.is_empty() {
        return true;
    }
    let cleaned: String = trimmed.chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    let Some((scheme, rest)) = cleaned.split_once(':') else { return false };
    let mut chars = scheme.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !well_formed {
        return false;
    }
    let scheme = scheme.to_ascii_lowercase();
    if !SCHEMES.contains(&scheme.as_str()) {
        return false;
    }
    if scheme == "about" {
        let page = rest.split(['?', '#']).next().unwrap_or_default();
        return page.eq_ignore_ascii_case("blank") || page.eq_ignore_ascii_case("srcdoc");
    }
    true
}

#[cfg(test)]
mod tests {
    use super::allowed;

    #[test]
    fn web_file_data_and_blank_pages_are_allowed() {
        for url in [
            "",
            "about:blank",
            "about:blank#x",
            "ABOUT:BLANK",
            "about:srcdoc",
            "http://example.com/",
            "https://example.com/a?b#c",
            "HTTPS://example.com",
            "  https://example.com  ",
            "file:///tmp/site/index.html",
            "data:text/html,<p>hi</p>",
            "blob:https://example.com/1234",
        ] {
            assert!(allowed(url), "{url:?} should be allowed");
        }
    }

    #[test]
    fn internal_pages_are_refused_however_spelt() {
        for url in [
            "chrome://inspect",
            "CHROME://inspect",
            " chrome://discards",
            "chr\tome://inspect",
            "chrome\n://inspect",
            "\u{1}chrome://version",
            "chrome-untrusted://x",
            "devtools://devtools/bundled/inspector.html",
            "chrome-extension://abc/page.html",
            "view-source:chrome://inspect",
            "about:inspect",
            "about:version",
            "javascript:alert(1)",
            "localhost:9222/json",
            "example.com",
            "1http://x",
        ] {
            assert!(!allowed(url), "{url:?} should be refused");
        }
    }
}
