//! The catalog as TypeScript: `packages/nimbus/src/errors.generated.ts`, the error classes of the
//! `@nimbus/nimbus` SDK.
//!
//! One class per code, named `Nimbus<Name>Error` from the code's name (`op.not_found` →
//! `NimbusNotFoundError`). Codes of the generic areas (`op`, `auth`, `session`, `service`) keep
//! their bare name; the others carry their area (`function.not_found` →
//! `NimbusFunctionNotFoundError`), so no two codes share a class. The `rate.*` codes share one
//! class, `NimbusRateLimitedError`: a client handles them all the same way (wait, then retry).

use std::fmt::Write;

use super::{CATALOG_VERSION, CodeSpec, ErrorCode, Surface};

/// The areas whose codes are named without their area prefix.
const BARE_AREAS: &[&str] = &["op", "auth", "session", "service"];
/// The area whose codes all map to [`RATE_CLASS`].
const RATE_AREA: &str = "rate";
/// The one class of every `rate.*` code.
const RATE_CLASS: &str = "NimbusRateLimitedError";

fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The SDK class thrown for `code` (`op.not_found` → `NimbusNotFoundError`).
pub fn typescript_class_name(code: &str) -> String {
    let (area, name) = code.split_once('.').unwrap_or(("", code));
    if area == RATE_AREA {
        return RATE_CLASS.to_owned();
    }
    let name = name.strip_suffix("_error").unwrap_or(name);
    let prefix = if BARE_AREAS.contains(&area) { String::new() } else { pascal(area) };
    format!("Nimbus{prefix}{}Error", pascal(name))
}

/// A catalog detail type (`string`, `integer?`, …) as a TypeScript type.
fn ts_type(ty: &str) -> &'static str {
    match ty.trim_end_matches('?') {
        "string" => "string",
        "integer" | "number" => "number",
        "boolean" => "boolean",
        "array" => "unknown[]",
        "object" => "Record<string, unknown>",
        _ => "unknown",
    }
}

/// The detail shape of a code as a TypeScript object type, or `null`.
fn detail_type(spec: &CodeSpec) -> String {
    if spec.detail.is_empty() {
        return "null".to_owned();
    }
    let fields: Vec<String> = spec
        .detail
        .iter()
        .map(|(key, ty)| {
            let optional = if ty.ends_with('?') { "?" } else { "" };
            format!("{key}{optional}: {}", ts_type(ty))
        })
        .collect();
    format!("{{ {} }}", fields.join("; "))
}

/// The detail shape as the JSON `GET /errors` serves (`{"reason": "string"}` or `null`).
fn detail_json(spec: &CodeSpec) -> String {
    if spec.detail.is_empty() {
        return "null".to_owned();
    }
    let fields: Vec<String> =
        spec.detail.iter().map(|(key, ty)| format!("{}: {}", json_str(key), json_str(ty))).collect();
    format!("{{ {} }}", fields.join(", "))
}

fn json_str(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// Text safe inside a `/** … */` comment.
fn doc_text(text: &str) -> String {
    text.replace("*/", "*\\/")
}

fn surface(spec: &CodeSpec) -> &'static str {
    match spec.surface {
        Surface::Http => "http",
        Surface::Ws => "ws",
        Surface::Both => "both",
    }
}

fn action(spec: &CodeSpec) -> String {
    spec.action
        .and_then(|a| serde_json::to_value(a).ok())
        .and_then(|v| v.as_str().map(json_str))
        .unwrap_or_else(|| "null".to_owned())
}

/// The catalog as the TypeScript module `packages/nimbus/src/errors.generated.ts`: the code
/// union, the catalog table, one error class per code, and their registration with the SDK's
/// `errorFromEnvelope`.
pub fn render_typescript() -> String {
    let mut out = String::new();
    out.push_str(
        "// Generated from crates/nimbus-core/src/catalog/table.rs by `scripts/gen-docs`; do not edit\n\
         // by hand. A Rust test fails while this file differs from what the catalog renders.\n\
         //\n\
         // One class per error code, named from the code (`op.not_found` -> NimbusNotFoundError;\n\
         // codes outside the op, auth, session and service areas carry their area:\n\
         // `function.not_found` -> NimbusFunctionNotFoundError). Every `rate.*` code is a\n\
         // NimbusRateLimitedError. `errorFromEnvelope` (errors.ts) builds the class of a code.\n\n",
    );
    out.push_str("import { NimbusError, registerErrorClasses } from \"./errors.js\";\n\n");
    let _ = writeln!(out, "/** The catalog version these classes were generated from (`GET /errors` `version`). */");
    let _ = writeln!(out, "export const ERROR_CATALOG_VERSION = {};\n", json_str(CATALOG_VERSION));

    out.push_str("/** Every code of the error catalog. */\nexport type ErrorCode =\n");
    for code in ErrorCode::ALL {
        let _ = writeln!(out, "  | {}", json_str(code.as_str()));
    }
    out.pop();
    out.push_str(";\n\n");

    out.push_str(
        "/** What the catalog says about one code; the same fields as `GET /errors` serves. */\n\
         export interface ErrorCodeSpec {\n  \
           /** HTTP status, or `null` for codes seen only in WebSocket frames. */\n  \
           readonly httpStatus: number | null;\n  \
           readonly severity: \"fatal\" | \"error\" | \"warning\";\n  \
           /** The default; an instance's `retryable` is what the server sent. */\n  \
           readonly retryable: boolean;\n  \
           /** The remediation action, or `null` when the catalog defines none. */\n  \
           readonly action: string | null;\n  \
           /** The detail shape: key to JSON type (`?` marks an optional key), or `null`. */\n  \
           readonly detail: Readonly<Record<string, string>> | null;\n  \
           readonly meaning: string;\n  \
           readonly surface: \"http\" | \"ws\" | \"both\";\n  \
           /** Catalogued for compatibility, never sent by this server version. */\n  \
           readonly reserved: boolean;\n  \
           /** The name of the class thrown for this code. */\n  \
           readonly className: string;\n\
         }\n\n",
    );

    out.push_str("/** The error catalog, by code. */\nexport const ERROR_CATALOG: { readonly [C in ErrorCode]: ErrorCodeSpec } = {\n");
    for code in ErrorCode::ALL {
        let spec = code.spec();
        let status = spec.http_status.map_or("null".to_owned(), |s| s.to_string());
        let severity = json_str(&format!("{:?}", spec.severity).to_lowercase());
        let _ = writeln!(
            out,
            "  {}: {{\n    httpStatus: {status}, severity: {severity}, retryable: {}, action: {},\n    \
             detail: {},\n    meaning: {},\n    surface: {}, reserved: {}, className: {},\n  }},",
            json_str(spec.code),
            spec.retryable,
            action(spec),
            detail_json(spec),
            json_str(spec.meaning),
            json_str(surface(spec)),
            spec.reserved,
            json_str(&typescript_class_name(spec.code)),
        );
    }
    out.push_str("};\n");

    let mut rate_details: Vec<String> = Vec::new();
    let mut rate_codes: Vec<&str> = Vec::new();
    for code in ErrorCode::ALL {
        let spec = code.spec();
        let class = typescript_class_name(spec.code);
        if class == RATE_CLASS {
            rate_codes.push(spec.code);
            let detail = detail_type(spec);
            if !rate_details.contains(&detail) {
                rate_details.push(detail);
            }
            continue;
        }
        let status = spec.http_status.map_or("WebSocket only".to_owned(), |s| format!("HTTP {s}"));
        let reserved = if spec.reserved { " Reserved: never sent by this server version." } else { "" };
        let _ = write!(
            out,
            "\n/** `{}` ({status}): {}{reserved} */\nexport class {class} extends NimbusError {{\n  \
             declare readonly detail: {};\n}}\n",
            spec.code,
            doc_text(spec.meaning),
            detail_type(spec),
        );
    }
    if !rate_codes.is_empty() {
        let codes: Vec<String> = rate_codes.iter().map(|c| format!("`{c}`")).collect();
        let _ = write!(
            out,
            "\n/** Any `rate.*` code ({}): a queue, quota or limit is full; wait, then retry. */\n\
             export class {RATE_CLASS} extends NimbusError {{\n  declare readonly detail: {};\n}}\n",
            codes.join(", "),
            rate_details.join(" | "),
        );
    }

    out.push_str("\nregisterErrorClasses({\n");
    for code in ErrorCode::ALL {
        let _ = writeln!(out, "  {}: {},", json_str(code.as_str()), typescript_class_name(code.as_str()));
    }
    out.push_str("});\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn class_names_follow_the_rule() {
        assert_eq!(typescript_class_name("op.not_found"), "NimbusNotFoundError");
        assert_eq!(typescript_class_name("op.precondition_failed"), "NimbusPreconditionFailedError");
        assert_eq!(typescript_class_name("session.subscription_error"), "NimbusSubscriptionError");
        assert_eq!(typescript_class_name("function.not_found"), "NimbusFunctionNotFoundError");
        assert_eq!(typescript_class_name("rate.resource_exhausted"), RATE_CLASS);
    }

    #[test]
    fn every_code_outside_rate_has_its_own_class() {
        let mut owners: HashMap<String, &str> = HashMap::new();
        for code in ErrorCode::ALL {
            let class = typescript_class_name(code.as_str());
            assert!(class.starts_with("Nimbus") && class.ends_with("Error"), "{class}");
            assert!(!matches!(class.as_str(), "NimbusError" | "NimbusClientError"), "{class}");
            let is_rate = code.as_str().starts_with("rate.");
            assert_eq!(class == RATE_CLASS, is_rate, "{}", code.as_str());
            if let Some(other) = owners.insert(class.clone(), code.as_str()) {
                assert!(is_rate, "{class} names both {other} and {}", code.as_str());
            }
        }
    }

    #[test]
    fn every_code_is_registered_and_typed() {
        let ts = render_typescript();
        for code in ErrorCode::ALL {
            let code = code.as_str();
            assert!(ts.contains(&format!("  \"{code}\": {},\n", typescript_class_name(code))), "{code}");
            assert!(ts.contains(&format!("  | \"{code}\"")), "{code}");
        }
        assert!(ts.contains("export class NimbusNotFoundError extends NimbusError {"));
        assert!(
            ts.contains("declare readonly detail: { resource: string; id?: string; name?: string; path?: string };")
        );
    }
}
