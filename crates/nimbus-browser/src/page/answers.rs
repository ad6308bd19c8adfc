//! The operations' JSON answers (the contract's wire types).

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// A page: `open`'s answer and an entry of `pages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    /// The page id (Chromium's target id).
    pub page_id: String,
    /// Its URL.
    pub url: String,
    /// Its title.
    pub title: String,
}

/// `goto`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GotoAnswer {
    /// The page id.
    pub page_id: String,
    /// The URL loaded (after redirects).
    pub url: String,
    /// The document's title.
    pub title: String,
    /// The main response's HTTP status, when the document came over HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// `snapshot`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotAnswer {
    /// The page id.
    pub page_id: String,
    /// Its URL.
    pub url: String,
    /// Its title.
    pub title: String,
    /// The accessibility tree as indented text, one element per line with its ref.
    pub snapshot: String,
    /// Whether lines were left out for the size bound.
    pub truncated: bool,
}

/// `click`, `type` and `press`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionAnswer {
    /// The page id.
    pub page_id: String,
    /// Its URL afterwards (a navigation the action started has committed).
    pub url: String,
}

/// `select`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelectAnswer {
    /// The page id.
    pub page_id: String,
    /// The values of the options now selected.
    pub selected: Vec<String>,
}

/// `evaluate`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateAnswer {
    /// The page id.
    pub page_id: String,
    /// The expression's value as JSON (`null` for `undefined`).
    pub result: Value,
}

/// `text`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TextAnswer {
    /// The page id.
    pub page_id: String,
    /// The rendered text (`innerText`) of the element or the page.
    pub text: String,
    /// Whether it was cut at the size bound.
    pub truncated: bool,
}

/// `pages`' answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PagesAnswer {
    /// The session's open pages, in opening order (pages a `cdp` client opened last).
    pub pages: Vec<PageInfo>,
}

/// `close`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloseAnswer {
    /// The page id.
    pub page_id: String,
    /// Always `true`.
    pub closed: bool,
}
