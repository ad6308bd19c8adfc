//! `snapshot`: the page's accessibility tree as indented text, one element per line
//! (`- role "name" [states] [ref=e<backendDOMNodeId>]`), with the noise of the raw tree
//! (ignored nodes, unnamed generic containers, inline text boxes) left out so it stays
//! readable.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use nimbus_core::limits::BROWSER_MAX_TEXT_BYTES;
use serde_json::{Value, json};

use super::deadline::Deadline;
use super::target::{Outcome, PageTarget};
use crate::cdp::CdpError;

/// Pages estimated to have more accessibility nodes than this are read node by node instead
/// of in one `Accessibility.getFullAXTree` answer, which could pass the DevTools message bound:
/// Chromium 156 writes 300 to 450 bytes per node, so 100 000 nodes are about 40 MB, well inside
/// `BROWSER_CDP_MAX_MESSAGE_BYTES` (64 MiB). Reading node by node is about twice as slow.
const FULL_TREE_MAX_NODES: u64 = 100_000;

/// Estimates the page's accessibility nodes: one per element, two per non-blank text node (its
/// text and a line box), counting no further than `limit`.
const ESTIMATE_NODES: &str = "function (limit) {
  let nodes = document.getElementsByTagName('*').length;
  const walker = document.createTreeWalker(document, NodeFilter.SHOW_TEXT);
  while (nodes <= limit && walker.nextNode()) {
    if (walker.currentNode.data.trim()) nodes += 2;
  }
  return nodes;
}";

/// Accessibility nodes read node by node at most: more than the text bound can show (a line
/// is at least a dozen bytes).
const INCREMENTAL_MAX_NODES: usize = 200_000;

/// `Accessibility.getChildAXNodes` calls in flight at once when reading node by node.
const INCREMENTAL_IN_FLIGHT: usize = 128;

/// Time kept back from the deadline when reading node by node: what was read by then is
/// rendered (marked truncated) rather than lost to a timeout.
const INCREMENTAL_RESERVE: Duration = Duration::from_millis(500);

/// Longest field value shown in a line (`[value="…"]`), in characters.
const VALUE_MAX_CHARS: usize = 200;

/// Roles whose node and subtree never show: text layout boxes and list bullets repeat what
/// their parent says.
const DROPPED: &[&str] = &["InlineTextBox", "ListMarker", "LineBreak"];

/// Roles that show only when they carry a name: containers without meaning of their own, whose
/// children show in their place.
const TRANSPARENT: &[&str] = &[
    "generic",
    "none",
    "presentation",
    "GenericContainer",
    "LabelText",
    "MenuListPopup",
    "paragraph",
    "Section",
    "Div",
    "Pre",
    "strong",
    "emphasis",
    "code",
    "mark",
    "subscript",
    "superscript",
    "time",
    "deletion",
    "insertion",
    "Abbr",
    "Ruby",
];

/// Roles that are the document itself: their children show at the top level.
const DOCUMENT: &[&str] = &["RootWebArea", "WebArea"];

/// A rendered snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// The text, at most `BROWSER_MAX_TEXT_BYTES`.
    pub text: String,
    /// Whether lines were left out for the bound.
    pub truncated: bool,
}

/// Reads the page's accessibility tree and renders it.
pub(crate) async fn take(page: &PageTarget<'_>, deadline: &Deadline) -> Result<Snapshot, CdpError> {
    let limit = json!(FULL_TREE_MAX_NODES);
    let estimate = match page.run_in_utility(ESTIMATE_NODES, &[limit], deadline.remaining()).await? {
        Outcome::Value(count) => count.as_u64().unwrap_or(0),
        Outcome::Threw(_) => 0,
    };
    if estimate <= FULL_TREE_MAX_NODES {
        let answer = page.call("Accessibility.getFullAXTree", json!({}), deadline.remaining()).await?;
        let nodes = answer.get("nodes").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        return Ok(render(nodes, BROWSER_MAX_TEXT_BYTES));
    }
    page.call("Accessibility.enable", json!({}), deadline.remaining()).await?;
    let read = read_incrementally(page, deadline).await;
    if let Err(error) = page.call("Accessibility.disable", json!({}), deadline.remaining()).await {
        tracing::debug!(%error, "Accessibility.disable failed");
    }
    let (nodes, cut) = read?;
    let mut snapshot = render(&nodes, BROWSER_MAX_TEXT_BYTES);
    snapshot.truncated |= cut;
    Ok(snapshot)
}

/// Reads the tree breadth first, [`INCREMENTAL_IN_FLIGHT`] nodes' children at a time, until it
/// is read, or [`INCREMENTAL_MAX_NODES`] are, or the deadline is near (then `true`: the deepest
/// parts are missing). Chromium answers a node's children together with the children of those
/// that are ignored, so a node already read is neither kept twice nor asked about again.
async fn read_incrementally(page: &PageTarget<'_>, deadline: &Deadline) -> Result<(Vec<Value>, bool), CdpError> {
    let root = page.call("Accessibility.getRootAXNode", json!({}), deadline.remaining()).await?;
    let Some(root) = root.get("node").cloned() else { return Ok((Vec::new(), false)) };
    let mut seen: HashSet<String> = root.get("nodeId").and_then(Value::as_str).map(str::to_owned).into_iter().collect();
    let mut queue: VecDeque<Value> = VecDeque::from([root.clone()]);
    let mut nodes = vec![root];
    let mut in_flight = FuturesUnordered::new();
    loop {
        while in_flight.len() < INCREMENTAL_IN_FLIGHT && nodes.len() < INCREMENTAL_MAX_NODES {
            let Some(node) = queue.pop_front() else { break };
            let unread = node
                .get("childIds")
                .and_then(Value::as_array)
                .is_some_and(|ids| ids.iter().filter_map(Value::as_str).any(|id| !seen.contains(id)));
            if let Some(id) = expandable(&node).filter(|_| unread) {
                in_flight.push(page.call("Accessibility.getChildAXNodes", json!({ "id": id }), deadline.remaining()));
            }
        }
        let budget = deadline.remaining().saturating_sub(INCREMENTAL_RESERVE);
        let answer = match tokio::time::timeout(budget, in_flight.next()).await {
            Ok(Some(answer)) => answer,
            Ok(None) => return Ok((nodes, !queue.is_empty())),
            Err(_) => return Ok((nodes, true)),
        };
        let answer = match answer {
            Ok(answer) => answer,
            // A node that left the tree meanwhile.
            Err(CdpError::Protocol { .. }) => continue,
            Err(error) => return Err(error),
        };
        for child in answer.get("nodes").and_then(Value::as_array).into_iter().flatten() {
            let Some(id) = child.get("nodeId").and_then(Value::as_str) else { continue };
            if seen.insert(id.to_owned()) {
                queue.push_back(child.clone());
                nodes.push(child.clone());
            }
        }
    }
}

/// The node's id when its children may show (not for text, whose children are layout boxes).
fn expandable(node: &Value) -> Option<String> {
    let role = node.pointer("/role/value").and_then(Value::as_str).unwrap_or_default();
    let has_children = node.get("childIds").and_then(Value::as_array).is_some_and(|ids| !ids.is_empty());
    (has_children && role != "StaticText" && !DROPPED.contains(&role))
        .then(|| node.get("nodeId").and_then(Value::as_str).map(str::to_owned))
        .flatten()
}

/// One accessibility node, read leniently (Chromium's answer is untrusted).
struct Node<'a> {
    ignored: bool,
    role: &'a str,
    name: &'a str,
    value: Option<String>,
    properties: Vec<(&'a str, &'a Value)>,
    children: Vec<&'a str>,
    backend_id: Option<i64>,
}

fn node_of(raw: &Value) -> Option<(&str, Node<'_>)> {
    let id = raw.get("nodeId").and_then(Value::as_str)?;
    let properties = raw
        .get("properties")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p.get("name")?.as_str()?, p.get("value")?.get("value")?)))
        .collect();
    let value = match raw.pointer("/value/value") {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    let node = Node {
        ignored: raw.get("ignored").and_then(Value::as_bool).unwrap_or(false),
        role: raw.pointer("/role/value").and_then(Value::as_str).unwrap_or(""),
        name: raw.pointer("/name/value").and_then(Value::as_str).unwrap_or(""),
        value,
        properties,
        children: raw
            .get("childIds")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect(),
        backend_id: raw.get("backendDOMNodeId").and_then(Value::as_i64),
    };
    Some((id, node))
}

/// Renders `Accessibility.getFullAXTree`'s nodes as the snapshot text, at most `max_bytes`
/// (whole lines only). The root is the first node without a parent.
pub(crate) fn render(raw: &[Value], max_bytes: usize) -> Snapshot {
    let nodes: HashMap<&str, Node<'_>> = raw.iter().filter_map(node_of).collect();
    let root = raw
        .iter()
        .find(|node| node.get("parentId").is_none())
        .and_then(|node| node.get("nodeId"))
        .and_then(Value::as_str);
    let mut out = Snapshot { text: String::new(), truncated: false };
    let Some(root) = root else { return out };
    // Depth-first with an explicit stack (a page may nest deeper than a thread's stack):
    // (node, depth, the nearest shown ancestor).
    let mut stack: Vec<(&str, usize, Option<&Node<'_>>)> = vec![(root, 0, None)];
    let mut visited = HashSet::new();
    while let Some((id, depth, context)) = stack.pop() {
        let Some(node) = nodes.get(id) else { continue };
        if !visited.insert(id) || DROPPED.contains(&node.role) {
            continue;
        }
        let (line, child_depth, child_context) = match line_of(node, context) {
            Some(line) => (Some(line), depth + 1, Some(node)),
            None => (None, depth, context),
        };
        if let Some(line) = line {
            let indent = "  ".repeat(depth);
            if out.text.len() + indent.len() + line.len() + 1 > max_bytes {
                out.truncated = true;
                break;
            }
            out.text.push_str(&indent);
            out.text.push_str(&line);
            out.text.push('\n');
        }
        for child in node.children.iter().rev() {
            stack.push((child, child_depth, child_context));
        }
    }
    out
}

/// The line for `node`, or `None` when it does not show (its children show in its place).
/// `context` is the nearest shown ancestor: text that only repeats its name or value (a
/// heading's words, a text field's contents) is left out.
fn line_of(node: &Node<'_>, context: Option<&Node<'_>>) -> Option<String> {
    if node.ignored || DOCUMENT.contains(&node.role) || node.role.is_empty() {
        return None;
    }
    let name = node.name.trim();
    let role = if node.role == "StaticText" {
        let repeats = context.is_some_and(|shown| {
            shown.name.contains(name) || shown.value.as_deref().is_some_and(|value| value.contains(name))
        });
        if name.is_empty() || repeats {
            return None;
        }
        "text"
    } else {
        if name.is_empty() && TRANSPARENT.contains(&node.role) {
            return None;
        }
        node.role
    };
    let mut line = format!("- {role}");
    if !name.is_empty() {
        line.push(' ');
        line.push_str(&quoted(name));
    }
    for state in states(node) {
        line.push_str(" [");
        line.push_str(&state);
        line.push(']');
    }
    if let Some(id) = node.backend_id {
        line.push_str(&format!(" [ref=e{id}]"));
    }
    Some(line)
}

/// The states a line shows, in a fixed order.
fn states(node: &Node<'_>) -> Vec<String> {
    let property = |name: &str| node.properties.iter().find(|(p, _)| *p == name).map(|(_, v)| *v);
    let is_true =
        |name: &str| matches!(property(name), Some(Value::Bool(true))) || property(name) == Some(&json!("true"));
    let mut states = Vec::new();
    if node.role == "heading"
        && let Some(level) = property("level").and_then(Value::as_u64)
    {
        states.push(format!("level={level}"));
    }
    for tristate in ["checked", "pressed"] {
        match property(tristate) {
            Some(Value::String(value)) if value == "mixed" => states.push(format!("{tristate}=mixed")),
            _ if is_true(tristate) => states.push(tristate.to_owned()),
            _ => {}
        }
    }
    for flag in ["selected", "expanded", "disabled", "required"] {
        if is_true(flag) {
            states.push(flag.to_owned());
        }
    }
    if is_true("invalid") {
        states.push("invalid".to_owned());
    }
    if is_true("focused") {
        states.push("focused".to_owned());
    }
    if let Some(value) = node.value.as_deref().map(str::trim).filter(|v| !v.is_empty() && *v != node.name.trim()) {
        let shown: String = value.chars().take(VALUE_MAX_CHARS).collect();
        let ellipsis = if shown.len() < value.len() { "…" } else { "" };
        states.push(format!("value={}", quoted(&format!("{shown}{ellipsis}"))));
    }
    states
}

/// A name in double quotes, escaped as JSON (so quotes and newlines stay on one line).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Accessibility.getFullAXTree` of a small form page, recorded from Chromium 156
    /// (`fixtures/ax_tree.json`).
    fn fixture() -> Vec<Value> {
        let tree: Value = serde_json::from_str(include_str!("fixtures/ax_tree.json")).expect("the fixture is JSON");
        tree["nodes"].as_array().cloned().expect("nodes")
    }

    #[test]
    fn the_recorded_tree_renders_readably() {
        let snapshot = render(&fixture(), BROWSER_MAX_TEXT_BYTES);
        assert!(!snapshot.truncated);
        let expected = include_str!("fixtures/ax_tree.txt");
        assert_eq!(snapshot.text, expected, "got:\n{}", snapshot.text);
    }

    #[test]
    fn truncation_keeps_whole_lines() {
        let full = render(&fixture(), BROWSER_MAX_TEXT_BYTES).text;
        let cut = render(&fixture(), 120);
        assert!(cut.truncated);
        assert!(cut.text.len() <= 120);
        assert!(full.starts_with(&cut.text));
        assert!(cut.text.ends_with('\n'));
    }

    #[test]
    fn hostile_trees_do_not_hang_or_overflow() {
        // A cycle, a missing child, a node of the wrong shape, and nesting deeper than any stack.
        let mut nodes = vec![
            json!({ "nodeId": "1", "role": { "value": "RootWebArea" }, "childIds": ["2", "404", 7] }),
            json!({ "nodeId": "2", "parentId": "1", "role": { "value": "button" }, "name": { "value": "a\"b\nc" },
                    "backendDOMNodeId": 9, "childIds": ["1", "2"] }),
            json!("not a node"),
        ];
        let depth = 200_000;
        for level in 0..depth {
            let id = format!("d{level}");
            let parent = if level == 0 { "1".to_owned() } else { format!("d{}", level - 1) };
            nodes.push(json!({ "nodeId": id, "parentId": parent, "role": { "value": "group" },
                               "name": { "value": "g" }, "childIds": [format!("d{}", level + 1)] }));
        }
        if let Some(children) = nodes[0]["childIds"].as_array_mut() {
            children.push(json!("d0"));
        }
        let snapshot = render(&nodes, BROWSER_MAX_TEXT_BYTES);
        assert!(snapshot.text.starts_with("- button \"a\\\"b\\nc\" [ref=e9]\n"), "{}", &snapshot.text[..80]);
        assert!(snapshot.truncated, "the deep chain passes the bound");
        assert!(snapshot.text.len() <= BROWSER_MAX_TEXT_BYTES);
        assert_eq!(render(&[], 100), Snapshot { text: String::new(), truncated: false });
    }
}
