//! The element a `ref` or `selector` names, resolved to a remote object in the page's utility
//! world.

use nimbus_core::NimbusError;
use serde_json::{Value, json};

use super::errors::element_not_found;
use super::op::Op;
use crate::cdp::CdpError;

/// What a body names an element by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ElementTarget {
    /// A snapshot ref, `e` and Chromium's backend node id.
    Ref {
        /// The backend node id.
        backend_node_id: i64,
        /// The ref as given.
        text: String,
    },
    /// A CSS selector.
    Selector(String),
}

impl ElementTarget {
    /// Parses a snapshot ref (`e12`).
    pub(crate) fn parse_ref(text: &str) -> Result<Self, NimbusError> {
        let id = text
            .strip_prefix('e')
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<i64>().ok())
            .filter(|id| *id > 0);
        match id {
            Some(backend_node_id) => Ok(Self::Ref { backend_node_id, text: text.to_owned() }),
            None => Err(NimbusError::invalid_input("ref", "is not a snapshot ref (`e` and a number, like \"e12\")")),
        }
    }

    /// The body field that named it.
    pub(crate) fn field(&self) -> &'static str {
        match self {
            Self::Ref { .. } => "ref",
            Self::Selector(_) => "selector",
        }
    }
}

/// Finds the first element matching a selector; `null` when none does.
const QUERY: &str = "function (selector) { return document.querySelector(selector); }";

/// The element itself, or a text node's parent element (a snapshot's `text` lines are text
/// nodes); `null` when the node left the document.
const AS_ELEMENT: &str = "function () {
  const element = this.nodeType === 1 ? this : this.parentElement;
  return element && element.isConnected ? element : null;
}";

/// Resolves `target` to the `objectId` of its element in the page's utility world.
pub(crate) async fn resolve(op: &Op<'_>, target: &ElementTarget) -> Result<String, NimbusError> {
    let world = op.utility_world().await?;
    let node = match target {
        ElementTarget::Ref { backend_node_id, .. } => {
            let params = json!({ "backendNodeId": backend_node_id, "executionContextId": world });
            match op.call_raw("DOM.resolveNode", params).await {
                Ok(answer) => answer.pointer("/object/objectId").and_then(Value::as_str).map(str::to_owned),
                Err(CdpError::Protocol { .. }) => None,
                Err(error) => return Err(op.fail(error)),
            }
            .ok_or_else(|| {
                element_not_found(target, "no element has this ref (it left the page, or it is from another page)")
            })?
        }
        ElementTarget::Selector(selector) => {
            let params = json!({
                "functionDeclaration": QUERY,
                "executionContextId": world,
                "arguments": [{ "value": selector }],
                "returnByValue": false,
            });
            let answer = op.call("Runtime.callFunctionOn", params).await?;
            if answer.get("exceptionDetails").is_some() {
                return Err(NimbusError::invalid_input("selector", "is not a valid CSS selector"));
            }
            answer
                .pointer("/result/objectId")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| element_not_found(target, "no element matches the selector"))?
        }
    };
    let element = op.page().run_on(&node, AS_ELEMENT, &[], false, op.remaining()).await.map_err(|e| op.fail(e))?;
    match element {
        Ok(object) => object
            .get("objectId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| element_not_found(target, "the element is no longer in the page")),
        Err(_) => Err(element_not_found(target, "the element is no longer in the page")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_e_and_a_positive_number() {
        assert_eq!(
            ElementTarget::parse_ref("e12").ok(),
            Some(ElementTarget::Ref { backend_node_id: 12, text: "e12".into() })
        );
        for bad in ["", "e", "12", "E12", "e-1", "e0", "e1x", "e99999999999999999999", "ref=e1"] {
            assert!(ElementTarget::parse_ref(bad).is_err(), "{bad:?}");
        }
    }
}
