//! Validator descriptors: the JSON form of the `v.*` validators that functions declare for their
//! arguments and return values (`prelude/ABI.md`, "Validator descriptors"), and the check of a
//! JSON value against one.
//!
//! The prelude only describes; this module decides. [`parse`] turns the descriptor JSON that the
//! prelude's `describe` hook produced into a [`Descriptor`] (rejecting misplaced `optional`s), and
//! [`check`] answers whether a value matches it, with a [`Mismatch`] that names the first offending
//! path (`args.items[2].name`) and says in plain English what was wrong.
//!
//! Recursion is bounded by the depth of the descriptor, which comes from JSON that
//! `serde_json` parsed under its own nesting limit.

use nimbus_core::limits::MAX_DOCUMENT_ID_BYTES;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;

#[cfg(test)]
mod tests;

/// The longest rendering of a value or literal quoted in a [`Mismatch::reason`]; longer ones
/// are cut, so a reason stays one readable line whatever the input.
const MAX_QUOTED_CHARS: usize = 60;

/// One validator, as the prelude describes it (`{"type": ...}` JSON).
///
/// Deserialize with [`parse`] rather than `serde_json::from_value` directly: `parse` also
/// enforces where `optional` may appear and what a record's keys may be.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Descriptor {
    /// `v.string()`: any JSON string.
    String,
    /// `v.number()` and `v.float64()`: any JSON number.
    Number,
    /// `v.boolean()`: `true` or `false`.
    Boolean,
    /// `v.null()`: JSON `null`.
    Null,
    /// `v.any()`: any JSON value.
    Any,
    /// `v.literal(x)`: a value JSON-equal to `value` (numbers compared numerically, object key
    /// order ignored).
    Literal {
        /// The one accepted value.
        value: Value,
    },
    /// `v.id(table)`: a string that is a syntactically valid document id (non-empty, at most
    /// `MAX_DOCUMENT_ID_BYTES` (1500) UTF-8 bytes, no `/`, no NUL). The table is not checked:
    /// neither that a document with that id exists nor that it belongs to `table` (ids are
    /// unique per tenant, not tagged by table), since that needs the database and a validator
    /// is a pure check of the value's shape.
    Id {
        /// The table the id is meant for; reported in reasons, not enforced.
        table: String,
    },
    /// `v.array(item)`: an array whose every element matches `items`.
    Array {
        /// The element validator.
        items: Box<Descriptor>,
    },
    /// `v.object({...})`: an object with exactly these fields. Unknown keys are rejected; a
    /// field is required unless its descriptor is [`Descriptor::Optional`].
    Object {
        /// The fields, in declaration order.
        #[serde(deserialize_with = "deserialize_fields", serialize_with = "serialize_fields")]
        fields: Vec<(String, Descriptor)>,
    },
    /// `v.record(keys, values)`: an object with any keys, every value matching `values`.
    Record {
        /// The key validator: absent or [`Descriptor::String`] (any key), or [`Descriptor::Id`]
        /// (every key a valid document id).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keys: Option<Box<Descriptor>>,
        /// The value validator.
        values: Box<Descriptor>,
    },
    /// `v.optional(x)`: the field may be absent; when present it must match `inner`. Only valid
    /// directly as an [`Descriptor::Object`] field.
    Optional {
        /// The validator of the field when it is present.
        inner: Box<Descriptor>,
    },
    /// `v.union(a, b, ...)`: a value matching at least one member (none: matches nothing).
    Union {
        /// The alternatives.
        members: Vec<Descriptor>,
    },
}

/// Why a value does not match a [`Descriptor`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct Mismatch {
    /// Where in the value: the `path` given to [`check`], then `.field`, `["odd key"]` and
    /// `[index]` steps (`args.items[2].name`).
    pub path: String,
    /// What was wrong, in plain English (`expected a string, got a number`,
    /// `missing required field "channel"`).
    pub reason: String,
}

/// Parses a descriptor from the prelude's JSON, rejecting unknown types or keys, `optional`
/// anywhere but directly as an object field, record keys other than `string` or `id`, and an
/// `id` with an empty table name. The error says what and where (`at value.items`).
pub fn parse(json: &Value) -> Result<Descriptor, String> {
    let descriptor = Descriptor::deserialize(json).map_err(|e| format!("invalid validator descriptor: {e}"))?;
    check_structure(&descriptor, json, "value", false)?;
    Ok(descriptor)
}

/// Checks `value` against `desc`; `path` names the value in a [`Mismatch`] (`"args"`,
/// `"returns"`). Returns the first mismatch found, fields in declaration order.
///
/// A [`Descriptor::Optional`] met anywhere but as an object field (which [`parse`] rejects)
/// is treated as its inner validator.
pub fn check(desc: &Descriptor, value: &Value, path: &str) -> Result<(), Mismatch> {
    let mismatch = |reason: String| Err(Mismatch { path: path.to_owned(), reason });
    match desc {
        Descriptor::String if value.is_string() => Ok(()),
        Descriptor::Number if value.is_number() => Ok(()),
        Descriptor::Boolean if value.is_boolean() => Ok(()),
        Descriptor::Null if value.is_null() => Ok(()),
        Descriptor::Any => Ok(()),
        Descriptor::String | Descriptor::Number | Descriptor::Boolean | Descriptor::Null => {
            mismatch(format!("expected {}, got {}", expected_kind(desc), value_kind(value)))
        }
        Descriptor::Literal { value: literal } if json_eq(literal, value) => Ok(()),
        Descriptor::Literal { value: literal } => {
            mismatch(format!("expected the literal {}, got {}", quote(literal), describe_value(value)))
        }
        Descriptor::Id { table } => match value {
            Value::String(id) => match id_problem(id) {
                None => Ok(()),
                Some(problem) => mismatch(format!("expected an id of table \"{table}\", got a string that {problem}")),
            },
            other => mismatch(format!("expected an id of table \"{table}\", got {}", value_kind(other))),
        },
        Descriptor::Array { items } => match value {
            Value::Array(elements) => {
                elements.iter().enumerate().try_for_each(|(i, element)| check(items, element, &format!("{path}[{i}]")))
            }
            other => mismatch(format!("expected an array, got {}", value_kind(other))),
        },
        Descriptor::Object { fields } => match value {
            Value::Object(map) => check_object(fields, map, path),
            other => mismatch(format!("expected an object, got {}", value_kind(other))),
        },
        Descriptor::Record { keys, values } => match value {
            Value::Object(map) => map.iter().try_for_each(|(key, element)| {
                if let Some(keys) = keys
                    && let Descriptor::Id { table } = keys.as_ref()
                    && let Some(problem) = id_problem(key)
                {
                    return mismatch(format!("key {} is not an id of table \"{table}\": it {problem}", quote_str(key)));
                }
                check(values, element, &join_key(path, key))
            }),
            other => mismatch(format!("expected an object, got {}", value_kind(other))),
        },
        Descriptor::Optional { inner } => check(inner, value, path),
        Descriptor::Union { members } => check_union(members, value, path),
    }
}

/// The object case of [`check`]: the declared fields in order (each missing or mismatching),
/// then the keys the descriptor does not declare.
fn check_object(
    fields: &[(String, Descriptor)],
    map: &serde_json::Map<String, Value>,
    path: &str,
) -> Result<(), Mismatch> {
    for (name, field) in fields {
        match (map.get(name), field) {
            (Some(present), field) => check(field, present, &join_key(path, name))?,
            (None, Descriptor::Optional { .. }) => {}
            (None, _) => {
                return Err(Mismatch {
                    path: path.to_owned(),
                    reason: format!("missing required field {}", quote_str(name)),
                });
            }
        }
    }
    match map.keys().find(|key| !fields.iter().any(|(name, _)| name == *key)) {
        Some(unknown) => {
            Err(Mismatch { path: path.to_owned(), reason: format!("unknown field {}", quote_str(unknown)) })
        }
        None => Ok(()),
    }
}

/// The union case of [`check`]. When exactly one member is a container of the value's kind
/// (the only object member for an object...), its own mismatch is the most useful answer;
/// otherwise the reason lists the members.
fn check_union(members: &[Descriptor], value: &Value, path: &str) -> Result<(), Mismatch> {
    if members.iter().any(|member| check(member, value, path).is_ok()) {
        return Ok(());
    }
    let same_kind: Vec<&Descriptor> = members.iter().filter(|member| is_container_for(member, value)).collect();
    if let [only] = same_kind.as_slice() {
        return check(only, value, path);
    }
    let expected = members.iter().map(summary).collect::<Vec<_>>().join(" | ");
    let reason = if members.is_empty() {
        format!("expected nothing (an empty union), got {}", describe_value(value))
    } else {
        format!("expected one of {expected}, got {}", describe_value(value))
    };
    Err(Mismatch { path: path.to_owned(), reason })
}

/// Whether `desc` is an array, object or record validator and `value` has that JSON kind.
fn is_container_for(desc: &Descriptor, value: &Value) -> bool {
    match desc {
        Descriptor::Array { .. } => value.is_array(),
        Descriptor::Object { .. } | Descriptor::Record { .. } => value.is_object(),
        Descriptor::Optional { inner } => is_container_for(inner, value),
        _ => false,
    }
}

/// The structural rules [`parse`] adds to the serde shape; `json` is the JSON that `desc` was
/// read from (serde ignores extra keys beside the tag of a unit variant such as `string`, so
/// they are rejected here). `where_` is a readable position (`value.fields.tags.items`);
/// `as_field` says whether `desc` sits directly in an object's fields, the one place
/// `optional` is allowed.
fn check_structure(desc: &Descriptor, json: &Value, where_: &str, as_field: bool) -> Result<(), String> {
    let child = |key: &str| json.get(key).unwrap_or(&Value::Null);
    match desc {
        Descriptor::String | Descriptor::Number | Descriptor::Boolean | Descriptor::Null | Descriptor::Any => {
            match json.as_object().and_then(|map| map.keys().find(|key| *key != "type")) {
                Some(extra) => Err(format!("unknown field {} (at {where_})", quote_str(extra))),
                None => Ok(()),
            }
        }
        Descriptor::Literal { .. } => Ok(()),
        Descriptor::Id { table } if table.is_empty() => Err(format!("`id` needs a non-empty table name (at {where_})")),
        Descriptor::Id { .. } => Ok(()),
        Descriptor::Array { items } => check_structure(items, child("items"), &format!("{where_}.items"), false),
        Descriptor::Object { fields } => fields.iter().try_for_each(|(name, field)| {
            let field_json = child("fields").get(name).unwrap_or(&Value::Null);
            check_structure(field, field_json, &join_key(&format!("{where_}.fields"), name), true)
        }),
        Descriptor::Record { keys, values } => {
            match keys.as_deref() {
                None | Some(Descriptor::String) | Some(Descriptor::Id { .. }) => {}
                Some(_) => return Err(format!("record keys must be `string` or `id` (at {where_}.keys)")),
            }
            if let Some(keys) = keys {
                check_structure(keys, child("keys"), &format!("{where_}.keys"), false)?;
            }
            check_structure(values, child("values"), &format!("{where_}.values"), false)
        }
        Descriptor::Optional { .. } if !as_field => {
            Err(format!("`optional` is only allowed directly as an object field (at {where_})"))
        }
        Descriptor::Optional { inner } => check_structure(inner, child("inner"), &format!("{where_}.inner"), false),
        Descriptor::Union { members } => members.iter().enumerate().try_for_each(|(i, member)| {
            let member_json = child("members").get(i).unwrap_or(&Value::Null);
            check_structure(member, member_json, &format!("{where_}.members[{i}]"), false)
        }),
    }
}

/// What is wrong with `id` as a document id (the rules of `nimbus_core::ids::DocumentId`),
/// phrased to follow "a string that", or `None`.
fn id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        Some("is empty".to_owned())
    } else if id.len() > MAX_DOCUMENT_ID_BYTES {
        Some(format!("is longer than {MAX_DOCUMENT_ID_BYTES} bytes"))
    } else if id.contains('/') {
        Some("contains \"/\"".to_owned())
    } else if id.contains('\0') {
        Some("contains a NUL character".to_owned())
    } else {
        None
    }
}

/// JSON equality as the data contract defines it: numbers numerically (`1` equals `1.0`),
/// object key order ignored.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(x), Some(y), _, _) => x == y,
            (_, _, Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(key, x)| y.get(key).is_some_and(|y| json_eq(x, y)))
        }
        _ => a == b,
    }
}

/// "a string", "a number"... for the value-kind validators.
fn expected_kind(desc: &Descriptor) -> &'static str {
    match desc {
        Descriptor::String => "a string",
        Descriptor::Number => "a number",
        Descriptor::Boolean => "a boolean",
        _ => "null",
    }
}

/// The JSON kind of `value` with its article ("a number", "null").
fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A scalar quoted (`"closed"`, `3`, `true`), a container by kind (`an object`).
fn describe_value(value: &Value) -> String {
    match value {
        Value::Array(_) | Value::Object(_) => value_kind(value).to_owned(),
        scalar => quote(scalar),
    }
}

/// A short type name for a union member in a reason.
fn summary(desc: &Descriptor) -> String {
    match desc {
        Descriptor::String => "string".to_owned(),
        Descriptor::Number => "number".to_owned(),
        Descriptor::Boolean => "boolean".to_owned(),
        Descriptor::Null => "null".to_owned(),
        Descriptor::Any => "any".to_owned(),
        Descriptor::Literal { value } => quote(value),
        Descriptor::Id { table } => format!("id(\"{table}\")"),
        Descriptor::Array { .. } => "array".to_owned(),
        Descriptor::Object { .. } => "object".to_owned(),
        Descriptor::Record { .. } => "record".to_owned(),
        Descriptor::Optional { inner } => summary(inner),
        Descriptor::Union { members } => members.iter().map(summary).collect::<Vec<_>>().join(" | "),
    }
}

/// `value`'s JSON text, cut to [`MAX_QUOTED_CHARS`] characters.
fn quote(value: &Value) -> String {
    truncate(value.to_string())
}

/// A string as a JSON string literal, cut to [`MAX_QUOTED_CHARS`] characters.
fn quote_str(text: &str) -> String {
    truncate(Value::from(text).to_string())
}

fn truncate(text: String) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// `path.key` for identifier-like keys, else `path["key"]` (JSON-escaped).
fn join_key(path: &str, key: &str) -> String {
    let mut chars = key.chars();
    let identifier = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    match (identifier, path.is_empty()) {
        (true, true) => key.to_owned(),
        (true, false) => format!("{path}.{key}"),
        (false, _) => format!("{path}[{}]", Value::from(key)),
    }
}

/// Reads an object's `fields` in declaration order, rejecting a key given twice.
fn deserialize_fields<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<(String, Descriptor)>, D::Error> {
    struct FieldsVisitor;
    impl<'de> Visitor<'de> for FieldsVisitor {
        type Value = Vec<(String, Descriptor)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of field descriptors")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut fields: Vec<(String, Descriptor)> = Vec::new();
            while let Some((name, field)) = map.next_entry::<String, Descriptor>()? {
                if fields.iter().any(|(earlier, _)| *earlier == name) {
                    return Err(serde::de::Error::custom(format!("field \"{name}\" is declared twice")));
                }
                fields.push((name, field));
            }
            Ok(fields)
        }
    }
    deserializer.deserialize_map(FieldsVisitor)
}

/// Writes an object's `fields` as a JSON object, in declaration order.
fn serialize_fields<S: Serializer>(fields: &[(String, Descriptor)], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_map(fields.iter().map(|(name, field)| (name, field)))
}
