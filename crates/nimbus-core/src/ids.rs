//! Identifier newtypes, validated once at the edge so the rest of the code can trust them.

use std::fmt;
use std::sync::{Mutex, PoisonError};

use crate::error::NimbusError;
use crate::limits::{MAX_DOCUMENT_ID_BYTES, MAX_NAME_CHARS};

/// Checks the name syntax shared by tenants, tables and indexes: 1–128 chars of `[A-Za-z0-9_-]`.
fn check_name(raw: &str, field: &str) -> Result<(), NimbusError> {
    if raw.is_empty() {
        return Err(NimbusError::invalid_input(field, "must not be empty"));
    }
    if raw.chars().count() > MAX_NAME_CHARS {
        return Err(NimbusError::invalid_input(field, format!("must be at most {MAX_NAME_CHARS} characters")));
    }
    if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(NimbusError::invalid_input(field, "may only contain A-Z, a-z, 0-9, '_' and '-'"));
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A tenant id: 1–128 chars of `[A-Za-z0-9_-]`, not starting with `_` (reserved for the system).
    TenantId
);
name_type!(
    /// A table name: 1–128 chars of `[A-Za-z0-9_-]`.
    TableName
);
name_type!(
    /// An index name: 1–128 chars of `[A-Za-z0-9_-]`.
    IndexName
);
name_type!(
    /// A document id as addressed by a client: non-empty, at most 1500 bytes, no `/` and no NUL.
    /// Ids the server mints are lowercase ULIDs; any other well-formed id simply matches nothing.
    DocumentId
);

impl TenantId {
    /// Validates a tenant id; `field` names it in the error (`id` in a body, `tenant_id` in a path).
    pub fn parse(raw: &str, field: &str) -> Result<Self, NimbusError> {
        check_name(raw, field)?;
        if raw.starts_with('_') {
            return Err(NimbusError::invalid_input(field, "ids starting with '_' are reserved for the system"));
        }
        Ok(Self(raw.to_owned()))
    }
}

impl TableName {
    /// Validates a table name.
    pub fn parse(raw: &str, field: &str) -> Result<Self, NimbusError> {
        check_name(raw, field)?;
        Ok(Self(raw.to_owned()))
    }
}

impl IndexName {
    /// Validates an index name.
    pub fn parse(raw: &str, field: &str) -> Result<Self, NimbusError> {
        check_name(raw, field)?;
        Ok(Self(raw.to_owned()))
    }
}

impl DocumentId {
    /// Validates a document id from a path segment.
    pub fn parse(raw: &str, field: &str) -> Result<Self, NimbusError> {
        if raw.is_empty() {
            return Err(NimbusError::invalid_input(field, "must not be empty"));
        }
        if raw.len() > MAX_DOCUMENT_ID_BYTES {
            return Err(NimbusError::invalid_input(field, format!("must be at most {MAX_DOCUMENT_ID_BYTES} bytes")));
        }
        if raw.contains(['/', '\0']) {
            return Err(NimbusError::invalid_input(field, "must not contain '/' or NUL"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Mints a new document id (a lowercase ULID, increasing within this process).
    pub fn mint() -> Self {
        Self(mint_ulid())
    }

    /// Wraps an id read back from storage, which was validated when it was written.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }
}

/// Mints a lowercase ULID. Ids minted by one process strictly increase, even within one
/// millisecond, so their byte order is their creation order.
pub fn mint_ulid() -> String {
    static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);
    let mut guard = GENERATOR.lock().unwrap_or_else(PoisonError::into_inner);
    let generator = guard.get_or_insert_with(ulid::Generator::new);
    // The generator only fails when 2^80 ids were minted in one millisecond; fall back to a
    // fresh random ULID, which is still unique.
    let id = generator.generate().unwrap_or_else(|_| ulid::Ulid::new());
    id.to_string().to_ascii_lowercase()
}

/// Mints a request id: `req_` + lowercase ULID.
pub fn mint_request_id() -> String {
    format!("req_{}", mint_ulid())
}

/// Percent-encodes one URL path segment or query value: everything but RFC 3986's unreserved
/// characters, the form in which the API's clients (the CLI, the MCP tools) send ids.
pub fn path_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(char::from(byte)),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_follow_the_name_rules() {
        assert!(TenantId::parse("demo-1_A", "id").is_ok());
        assert!(TenantId::parse("", "id").is_err());
        assert!(TenantId::parse("_system", "id").is_err());
        assert!(TenantId::parse("a.b", "id").is_err());
        assert!(TenantId::parse(&"x".repeat(128), "id").is_ok());
        assert!(TenantId::parse(&"x".repeat(129), "id").is_err());
        assert!(TableName::parse("_private", "table").is_ok());
    }

    #[test]
    fn minted_ids_are_lowercase_and_increasing() {
        let ids: Vec<String> = (0..1000).map(|_| mint_ulid()).collect();
        assert!(ids.iter().all(|id| id.len() == 26 && id == &id.to_ascii_lowercase()));
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn document_ids_reject_slashes_and_nul() {
        assert!(DocumentId::parse("a/b", "document_id").is_err());
        assert!(DocumentId::parse("a\0b", "document_id").is_err());
        assert!(DocumentId::parse(&"x".repeat(1501), "document_id").is_err());
        assert!(DocumentId::parse("anything-else", "document_id").is_ok());
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(path_segment("acme-1_x.y~"), "acme-1_x.y~");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
        assert_eq!(path_segment("é"), "%C3%A9");
    }
}
