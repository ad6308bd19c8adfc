//! The generated forms of the catalog: the `GET /errors` JSON and `docs/errors.md`.

use serde_json::{Map, Value, json};

use super::{Action, CATALOG_VERSION, CodeSpec, ErrorCode, Surface};

fn detail_shape(spec: &CodeSpec) -> Value {
    if spec.detail.is_empty() {
        return Value::Null;
    }
    let shape: Map<String, Value> = spec.detail.iter().map(|(key, ty)| ((*key).to_owned(), Value::from(*ty))).collect();
    Value::Object(shape)
}

fn remediation(action: Option<Action>) -> Value {
    match action {
        Some(action) => json!({ "action": action, "message": action.message() }),
        None => Value::Null,
    }
}

/// The catalog as served by `GET /errors`.
pub fn catalog_json() -> Value {
    let codes: Vec<Value> = ErrorCode::ALL
        .iter()
        .map(|code| {
            let spec = code.spec();
            json!({
                "code": spec.code,
                "httpStatus": spec.http_status,
                "severity": spec.severity,
                "retryable": spec.retryable,
                "remediation": remediation(spec.action),
                "detail": detail_shape(spec),
                "meaning": spec.meaning,
                "surface": spec.surface,
                "reserved": spec.reserved,
                "since": spec.since,
            })
        })
        .collect();
    json!({ "version": CATALOG_VERSION, "codes": codes })
}

/// The catalog as the Markdown page `docs/errors.md`.
pub fn render_markdown() -> String {
    let mut out = String::new();
    out.push_str("# Error catalog\n\n");
    out.push_str(
        "Generated from `crates/nimbus-core/src/catalog/table.rs`; do not edit by hand \
         (`scripts/gen-docs` rewrites it). The same catalog is served as JSON at `GET /errors`.\n\n",
    );
    out.push_str(
        "Every error is an envelope `{\"error\": {code, message, requestId, timestamp, severity, \
         retryable, detail, remediation?}}`. Branch on `code`, `retryable` and `severity`; never on \
         `message`. Codes marked *(ours)* are Nimbus additions; *reserved* codes are catalogued for \
         compatibility and never emitted by this version.\n\n",
    );
    out.push_str("| Code | HTTP | Severity | Retryable | Action | Detail | Surface | Meaning |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for code in ErrorCode::ALL {
        let spec = code.spec();
        let status = spec.http_status.map_or("WS".to_owned(), |s| s.to_string());
        let severity = format!("{:?}", spec.severity).to_lowercase();
        let retryable = if spec.retryable { "yes" } else { "no" };
        let action = spec.action.map_or("—", Action::as_str);
        let detail = if spec.detail.is_empty() {
            "`null`".to_owned()
        } else {
            let keys: Vec<String> = spec.detail.iter().map(|(k, t)| format!("{k}: {t}")).collect();
            format!("`{{{}}}`", keys.join(", "))
        };
        let surface = match spec.surface {
            Surface::Http => "http",
            Surface::Ws => "ws",
            Surface::Both => "both",
        };
        let mut tags = String::new();
        if spec.ours {
            tags.push_str(" *(ours)*");
        }
        if spec.reserved {
            tags.push_str(" *reserved*");
        }
        out.push_str(&format!(
            "| `{}`{tags} | {status} | {severity} | {retryable} | {action} | {detail} | {surface} | {} |\n",
            spec.code, spec.meaning
        ));
    }
    out.push_str("\n## Remediation actions\n\n| Action | Client should |\n| --- | --- |\n");
    for action in Action::ALL {
        out.push_str(&format!("| `{}` | {} |\n", action.as_str(), action.message()));
    }
    out.push_str(
        "\n## Reason-specific remediations\n\n\
         The messages above are each action's default, which `GET /errors` serves. An error \
         instance may carry a remediation written for its reason instead, in the same \
         `remediation: {action, message}` shape: an unknown tenant says how to create it; a \
         missing sandbox, service, session, process, secret, cron, file, document, schema, \
         scheduled job or function names the route that lists what exists; \
         `op.precondition_failed` says to re-read the resource and send its current generation; \
         `op.cap_exceeded` names the cap and its limit; `rate.resource_exhausted` says what frees \
         the resource; a session whose target stopped says so, with its close reason, and how to \
         open a new one; an image pull whose registry does not resolve or refuses the connection \
         points to `POST /api/images/import`. Such an instance keeps its code's action unless its \
         reason calls for another, and a code without one (— in the table) then carries one too.\n",
    );
    out
}
