//! The manual as MCP resources: `llms.txt`, every docs page it links, the error catalog and the
//! capabilities table, each read through the route that serves it over HTTP.
//!
//! | URI | Route | MIME type |
//! | --- | --- | --- |
//! | `nimbus://docs/llms.txt` | `GET /llms.txt` | `text/markdown` |
//! | `nimbus://docs/llms-full.txt` | `GET /llms-full.txt` | `text/markdown` |
//! | `nimbus://docs/<page>.md` | `GET /docs/<page>.md` | `text/markdown` |
//! | `nimbus://errors` | `GET /errors` | `application/json` |
//! | `nimbus://capabilities` | `GET /api/system/capabilities` | `application/json` |

use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};

/// The docs index, the resource to start from.
pub const INDEX_URI: &str = "nimbus://docs/llms.txt";
/// Docs pages: `nimbus://docs/<page>.md`.
const DOCS_PREFIX: &str = "nimbus://docs/";

/// Where a resource is read from.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// The route's path.
    pub path: String,
    /// The MIME type of its text.
    pub mime_type: &'static str,
}

/// Every resource: the fixed ones, then each page `llms.txt` (its text: `index`) links to, with
/// the link's title and description.
pub fn list(index: &str) -> Vec<Resource> {
    let mut resources = vec![
        Resource::new(INDEX_URI, "llms.txt")
            .with_title("Nimbus docs index (llms.txt)")
            .with_description("Every docs page with a one-line description: start here")
            .with_mime_type("text/markdown"),
        Resource::new("nimbus://docs/llms-full.txt", "llms-full.txt")
            .with_title("Every Nimbus docs page in one file")
            .with_mime_type("text/markdown"),
        Resource::new("nimbus://errors", "errors")
            .with_title("Error catalog")
            .with_description("Every error code: status, retryability, remediation, detail shape (GET /errors)")
            .with_mime_type("application/json"),
        Resource::new("nimbus://capabilities", "capabilities")
            .with_title("Capabilities")
            .with_description("What this build and host offer (GET /api/system/capabilities)")
            .with_mime_type("application/json"),
    ];
    resources.extend(index.lines().filter_map(page_link).map(|(title, page, description)| {
        let resource = Resource::new(format!("{DOCS_PREFIX}{page}.md"), format!("{page}.md"))
            .with_title(title)
            .with_mime_type("text/markdown");
        match description {
            Some(description) => resource.with_description(description),
            None => resource,
        }
    }));
    resources
}

/// A docs page link of `llms.txt`: `- [Title](/docs/<page>.md): description`.
fn page_link(line: &str) -> Option<(&str, &str, Option<&str>)> {
    let rest = line.strip_prefix("- [")?;
    let (title, rest) = rest.split_once("](/docs/")?;
    let (page, rest) = rest.split_once(".md)")?;
    let description = rest.strip_prefix(": ").map(str::trim).filter(|d| !d.is_empty());
    Some((title, page, description))
}

/// The template of docs pages.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{DOCS_PREFIX}{{page}}.md"), "docs-page")
            .with_title("A Nimbus docs page")
            .with_description("One page of the manual; nimbus://docs/llms.txt lists them")
            .with_mime_type("text/markdown"),
    ]
}

/// The route a resource URI is read from; `None` for a URI that names no resource.
pub fn resolve(uri: &str) -> Option<Target> {
    let target = |path: &str, mime_type| Some(Target { path: path.to_owned(), mime_type });
    match uri {
        "nimbus://errors" => return target("/errors", "application/json"),
        "nimbus://capabilities" => return target("/api/system/capabilities", "application/json"),
        "nimbus://docs/llms.txt" => return target("/llms.txt", "text/markdown"),
        "nimbus://docs/llms-full.txt" => return target("/llms-full.txt", "text/markdown"),
        _ => {}
    }
    let page = uri.strip_prefix(DOCS_PREFIX)?.strip_suffix(".md")?;
    let valid = !page.is_empty()
        && page.split('/').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        });
    valid.then(|| Target { path: format!("/docs/{page}.md"), mime_type: "text/markdown" })
}

/// A read's answer: the route's text under the URI asked for.
pub fn contents(uri: &str, target: &Target, text: String) -> ReadResourceResult {
    ReadResourceResult::new(vec![ResourceContents::text(text, uri).with_mime_type(target.mime_type)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_come_from_the_index_links() {
        let index = "# Nimbus\n\n## Start here\n\n- [Getting started](/docs/getting-started.md): start the server\n\
                     - [Errors](/docs/errors.md)\nplain text\n";
        let uris: Vec<String> = list(index).into_iter().map(|r| r.uri).collect();
        assert_eq!(
            uris,
            [
                "nimbus://docs/llms.txt",
                "nimbus://docs/llms-full.txt",
                "nimbus://errors",
                "nimbus://capabilities",
                "nimbus://docs/getting-started.md",
                "nimbus://docs/errors.md",
            ]
        );
    }

    #[test]
    fn uris_resolve_to_routes_and_nothing_else() {
        assert_eq!(resolve("nimbus://docs/data.md").map(|t| t.path), Some("/docs/data.md".to_owned()));
        assert_eq!(resolve("nimbus://errors").map(|t| t.path), Some("/errors".to_owned()));
        assert_eq!(resolve("nimbus://capabilities").map(|t| t.path), Some("/api/system/capabilities".to_owned()));
        for bad in
            ["nimbus://docs/../api/tenants.md", "nimbus://docs/.md", "nimbus://docs/a?b.md", "file:///etc/passwd"]
        {
            assert_eq!(resolve(bad), None, "{bad}");
        }
    }
}
