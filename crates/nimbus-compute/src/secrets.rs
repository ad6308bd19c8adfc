//! [`Secrets`]: the tenant secrets of one server (networking.md, "Tenant secrets").
//!
//! A secret is a named value a tenant stores for the egress proxy, which adds it to requests
//! as a header; no route ever answers a value. Every secret is a row of the system database
//! (kind `secret`, keyed by tenant and name) and an entry in memory, loaded at open, so that the
//! proxy's reads are cheap and synchronous. A write is on disk before it is answered.
//!
//! Values are never printed: they live in [`SecretValue`], whose `Debug` is `<redacted>`, and
//! nothing here logs one (nor a decoding error, whose message could quote it).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use nimbus_core::NimbusError;
use nimbus_core::limits::{SECRET_NAME_MAX_CHARS, SECRET_VALUE_MAX_BYTES, TENANT_MAX_SECRETS};
use nimbus_core::time::now_ms;
use nimbus_store::connection::open_system;
use nimbus_store::records;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

/// The record kind in the system database.
const KIND: &str = "secret";

/// What a secret is, without its value: all that is ever shown of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMeta {
    /// The name, unique within its tenant.
    pub name: String,
    /// When it was first stored, epoch ms.
    pub created_at_ms: i64,
    /// When its value was last stored (its creation, or the last replacement), epoch ms.
    pub updated_at_ms: i64,
}

/// A secret's value. Its `Debug` prints `<redacted>`, so no record or entry holding one can
/// print it by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
struct SecretValue(String);

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The stored record: its JSON is the row of the system database.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretRecord {
    name: String,
    value: SecretValue,
    created_at_ms: i64,
    updated_at_ms: i64,
}

/// One secret in memory.
#[derive(Debug, Clone)]
struct Entry {
    value: SecretValue,
    created_at_ms: i64,
    updated_at_ms: i64,
}

impl Entry {
    fn meta(&self, name: &str) -> SecretMeta {
        SecretMeta { name: name.to_owned(), created_at_ms: self.created_at_ms, updated_at_ms: self.updated_at_ms }
    }
}

/// Secrets by tenant, then by name (so a tenant's list comes sorted).
type Entries = BTreeMap<String, BTreeMap<String, Entry>>;

/// The secret registry.
pub struct Secrets {
    /// The system database. Held for the whole of every change (the cap check, the row and the
    /// memory update), so changes are serialized and memory always follows the rows; readers use
    /// `entries` alone and never wait on a disk write.
    db: Mutex<Connection>,
    entries: RwLock<Entries>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Secrets")
            .field("tenants", &entries.len())
            .field("secrets", &entries.values().map(BTreeMap::len).sum::<usize>())
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// Opens the registry on the data directory's system database and loads every secret into
    /// memory. A row that cannot be decoded is skipped and logged (by tenant and name only).
    /// Blocking: call it before serving, off the async threads.
    pub fn open(data_dir: &Path) -> Result<Arc<Self>, NimbusError> {
        let db = open_system(&data_dir.join("system.sqlite3"))?;
        let mut entries = Entries::new();
        for row in records::list(&db, KIND)? {
            match serde_json::from_str::<SecretRecord>(&row.record) {
                Ok(record) => {
                    let entry = Entry {
                        value: record.value,
                        created_at_ms: record.created_at_ms,
                        updated_at_ms: record.updated_at_ms,
                    };
                    entries.entry(row.tenant_id).or_default().insert(row.key, entry);
                }
                // Only the error's category and position: its message may quote the value.
                Err(e) => tracing::error!(
                    tenant = row.tenant_id,
                    name = row.key,
                    category = ?e.classify(),
                    line = e.line(),
                    column = e.column(),
                    "cannot decode a stored secret; skipped"
                ),
            }
        }
        Ok(Arc::new(Self { db: Mutex::new(db), entries: RwLock::new(entries) }))
    }

    /// Stores `value` under `name` for `tenant`, replacing any value it had, and returns the
    /// secret with whether it is new. On disk before it returns. 400 `op.invalid_input` (field
    /// `name` or `value`) for a bad name or value, 400 `op.cap_exceeded` for a new secret past
    /// [`TENANT_MAX_SECRETS`]; the storage error if the row cannot be written (nothing changes
    /// then). Blocking (a durable write).
    pub fn put(&self, tenant: &str, name: &str, value: &str) -> Result<(SecretMeta, bool), NimbusError> {
        validate_name(name)?;
        validate_value(value)?;
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        let (created_at_ms, count) = {
            let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            let own = entries.get(tenant);
            (own.and_then(|o| o.get(name)).map(|e| e.created_at_ms), own.map_or(0, BTreeMap::len))
        };
        let created = created_at_ms.is_none();
        if created && count >= TENANT_MAX_SECRETS {
            return Err(NimbusError::cap_exceeded("tenant_secrets", count as u64 + 1, TENANT_MAX_SECRETS as u64));
        }
        let now = now_ms();
        let created_at_ms = created_at_ms.unwrap_or(now);
        let record = SecretRecord {
            name: name.to_owned(),
            value: SecretValue(value.to_owned()),
            created_at_ms,
            updated_at_ms: now.max(created_at_ms),
        };
        let json = serde_json::to_string(&record).map_err(|e| {
            tracing::error!(category = ?e.classify(), "cannot encode a secret record");
            NimbusError::internal()
        })?;
        records::put(&db, KIND, tenant, name, &json)?;
        let entry = Entry { value: record.value, created_at_ms, updated_at_ms: record.updated_at_ms };
        let meta = entry.meta(name);
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.entry(tenant.to_owned()).or_default().insert(name.to_owned(), entry);
        Ok((meta, created))
    }

    /// A tenant's secrets, sorted by name, without their values.
    pub fn list(&self, tenant: &str) -> Vec<SecretMeta> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.get(tenant).map_or_else(Vec::new, |own| own.iter().map(|(name, e)| e.meta(name)).collect())
    }

    /// Deletes one secret: 404 `op.not_found` (`resource: "secret"`) when `tenant` has none of
    /// that name; the storage error if the row cannot be removed (nothing changes then).
    /// Blocking (a durable write).
    pub fn delete(&self, tenant: &str, name: &str) -> Result<(), NimbusError> {
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.exists(tenant, name) {
            return Err(NimbusError::not_found("secret", name));
        }
        records::delete(&db, KIND, tenant, name)?;
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(own) = entries.get_mut(tenant) {
            own.remove(name);
            if own.is_empty() {
                entries.remove(tenant);
            }
        }
        Ok(())
    }

    /// The value of a secret, for the egress proxy (which adds it to a request as a header).
    /// Never render it in an answer, a log line or an error.
    pub fn value(&self, tenant: &str, name: &str) -> Option<String> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.get(tenant)?.get(name).map(|e| e.value.0.clone())
    }

    /// Whether `tenant` has a secret of that name (egress credential rules must name one).
    pub fn exists(&self, tenant: &str, name: &str) -> bool {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.get(tenant).is_some_and(|own| own.contains_key(name))
    }

    /// The tenants that own a secret (start-up removes those of tenants deleted before a crash).
    pub fn tenant_ids(&self) -> std::collections::BTreeSet<String> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    /// Deletes every secret of a tenant (the tenant is being deleted), in one transaction. They
    /// leave memory at once; a failed write is logged, and the rows it left are removed at the
    /// next start (their tenant is no longer registered). Blocking (a durable write).
    pub fn delete_tenant(&self, tenant: &str) {
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(own) = self.entries.write().unwrap_or_else(PoisonError::into_inner).remove(tenant) else {
            return;
        };
        let removed = (|| -> Result<(), String> {
            let tx = db.unchecked_transaction().map_err(|e| e.to_string())?;
            for name in own.keys() {
                records::delete(&tx, KIND, tenant, name).map_err(|e| e.to_string())?;
            }
            tx.commit().map_err(|e| e.to_string())
        })();
        if let Err(error) = removed {
            tracing::error!(error, tenant, "cannot remove a deleted tenant's secrets");
        }
    }
}

/// Checks a secret name: 1–[`SECRET_NAME_MAX_CHARS`] characters of `A–Z a–z 0–9 _ . -`,
/// starting with a letter or digit (400 `op.invalid_input`, field `name`).
pub fn validate_name(name: &str) -> Result<(), NimbusError> {
    const FIELD: &str = "name";
    let Some(first) = name.chars().next() else {
        return Err(NimbusError::invalid_input(FIELD, "must not be empty"));
    };
    if name.chars().count() > SECRET_NAME_MAX_CHARS {
        return Err(NimbusError::invalid_input(FIELD, format!("is longer than {SECRET_NAME_MAX_CHARS} characters")));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(NimbusError::invalid_input(FIELD, "may hold only letters, digits, '_', '.' and '-'"));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(NimbusError::invalid_input(FIELD, "must start with a letter or a digit"));
    }
    Ok(())
}

/// Checks a secret value: 1–[`SECRET_VALUE_MAX_BYTES`] bytes of text without control
/// characters, since it becomes a header value (400 `op.invalid_input`, field `value`). The
/// reasons never quote the value.
fn validate_value(value: &str) -> Result<(), NimbusError> {
    const FIELD: &str = "value";
    if value.is_empty() {
        return Err(NimbusError::invalid_input(FIELD, "must not be empty"));
    }
    if value.len() > SECRET_VALUE_MAX_BYTES {
        return Err(NimbusError::invalid_input(FIELD, format!("is longer than {SECRET_VALUE_MAX_BYTES} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(NimbusError::invalid_input(FIELD, "must not contain control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_core::ErrorCode;

    fn field_of(error: &NimbusError) -> (ErrorCode, Option<String>) {
        let field = error.detail.as_ref().and_then(|d| d["field"].as_str().map(str::to_owned));
        (error.code, field)
    }

    fn invalid(field: &str) -> (ErrorCode, Option<String>) {
        (ErrorCode::OpInvalidInput, Some(field.to_owned()))
    }

    #[test]
    fn names_follow_the_contract() {
        for good in ["a", "GITHUB_TOKEN", "0day", "api.v2-key_1", &"n".repeat(SECRET_NAME_MAX_CHARS)] {
            assert!(validate_name(good).is_ok(), "{good:?} is a good name");
        }
        for bad in ["", "_x", ".x", "-x", "a b", "a/b", "a:b", "é", "a\u{0}", &"n".repeat(SECRET_NAME_MAX_CHARS + 1)] {
            let error = validate_name(bad).expect_err(bad);
            assert_eq!(field_of(&error), invalid("name"), "{bad:?}");
        }
    }

    #[test]
    fn values_follow_the_contract_and_are_never_quoted() {
        for good in ["x", "Bearer abc.def", "ünïcödé", &"v".repeat(SECRET_VALUE_MAX_BYTES)] {
            assert!(validate_value(good).is_ok(), "{good:?} is a good value");
        }
        // Multi-byte characters count in bytes: 4097 two-byte characters are over the limit.
        let wide = "é".repeat(SECRET_VALUE_MAX_BYTES / 2 + 1);
        for bad in [
            "",
            "a\tb",
            "a\nb",
            "a\rb",
            "a\u{0}b",
            "a\u{7f}b",
            "a\u{85}b",
            &"v".repeat(SECRET_VALUE_MAX_BYTES + 1),
            &wide,
        ] {
            let error = validate_value(bad).expect_err(bad);
            assert_eq!(field_of(&error), invalid("value"), "{bad:?}");
            let shown = format!("{} {:?}", error.message, error.detail);
            assert!(bad.is_empty() || !shown.contains(bad), "the error quotes the value: {shown}");
        }
    }

    #[test]
    fn put_creates_then_replaces_and_lists_without_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = Secrets::open(dir.path()).expect("open");
        let (meta, created) = secrets.put("t1", "b", "one").expect("put");
        assert!(created);
        assert_eq!(meta.created_at_ms, meta.updated_at_ms);
        let (again, created) = secrets.put("t1", "b", "two").expect("replace");
        assert!(!created);
        assert_eq!(again.created_at_ms, meta.created_at_ms, "a replacement keeps the creation time");
        assert!(again.updated_at_ms >= meta.updated_at_ms);
        secrets.put("t1", "a", "three").expect("put");
        secrets.put("t2", "b", "other tenant").expect("put");
        assert_eq!(secrets.list("t1").iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(secrets.value("t1", "b").as_deref(), Some("two"));
        assert_eq!(secrets.value("t2", "b").as_deref(), Some("other tenant"));
        assert_eq!(secrets.value("t3", "b"), None);
        assert!(secrets.exists("t1", "a") && !secrets.exists("t2", "a"));
        assert!(secrets.list("t3").is_empty());
        // A refused put changes nothing.
        secrets.put("t1", "b", "bad\nvalue").expect_err("control character");
        secrets.put("t1", "-b", "fine").expect_err("bad name");
        assert_eq!(secrets.value("t1", "b").as_deref(), Some("two"));
        assert_eq!(secrets.list("t1").len(), 2);
    }

    #[test]
    fn secrets_survive_reopening_and_deletes_are_durable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, kept) = {
            let secrets = Secrets::open(dir.path()).expect("open");
            let (first, _) = secrets.put("t1", "keep", "v1").expect("put");
            secrets.put("t1", "keep", "v2").expect("replace");
            secrets.put("t1", "gone", "x").expect("put");
            secrets.put("t2", "other", "y").expect("put");
            secrets.put("t3", "doomed", "z").expect("put");
            secrets.delete("t1", "gone").expect("delete");
            secrets.delete_tenant("t3");
            (first, secrets.list("t1"))
        };
        let secrets = Secrets::open(dir.path()).expect("reopen");
        assert_eq!(secrets.list("t1"), kept);
        assert_eq!(kept[0].created_at_ms, first.created_at_ms);
        assert_eq!(secrets.value("t1", "keep").as_deref(), Some("v2"));
        assert_eq!(secrets.value("t2", "other").as_deref(), Some("y"));
        assert!(!secrets.exists("t1", "gone"));
        assert!(secrets.list("t3").is_empty());
        assert_eq!(secrets.tenant_ids().into_iter().collect::<Vec<_>>(), ["t1", "t2"]);
    }

    #[test]
    fn delete_of_an_unknown_secret_is_not_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = Secrets::open(dir.path()).expect("open");
        secrets.put("t1", "a", "v").expect("put");
        for (tenant, name) in [("t1", "b"), ("t2", "a")] {
            let error = secrets.delete(tenant, name).expect_err("absent");
            assert_eq!(error.code, ErrorCode::OpNotFound);
            assert_eq!(error.detail, Some(serde_json::json!({ "resource": "secret", "id": name })));
        }
        secrets.delete("t1", "a").expect("delete");
        assert_eq!(secrets.delete("t1", "a").expect_err("deleted").code, ErrorCode::OpNotFound);
        assert!(secrets.tenant_ids().is_empty(), "a tenant without secrets is not listed");
        secrets.delete_tenant("t1");
    }

    #[test]
    fn a_tenant_holds_at_most_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = Secrets::open(dir.path()).expect("open");
        for i in 0..TENANT_MAX_SECRETS {
            secrets.put("t1", &format!("s{i:03}"), "v").expect("under the cap");
        }
        let error = secrets.put("t1", "one-more", "v").expect_err("over the cap");
        assert_eq!(error.code, ErrorCode::OpCapExceeded);
        let limit = TENANT_MAX_SECRETS as u64;
        assert_eq!(
            error.detail,
            Some(serde_json::json!({ "cap": "tenant_secrets", "observed": limit + 1, "limit": limit }))
        );
        assert!(!secrets.exists("t1", "one-more"));
        // Replacing one at the cap is fine; so is another tenant's first.
        assert!(!secrets.put("t1", "s000", "w").expect("replace at the cap").1);
        secrets.put("t2", "s000", "v").expect("another tenant");
        // A delete makes room.
        secrets.delete("t1", "s001").expect("delete");
        secrets.put("t1", "one-more", "v").expect("room again");
    }

    #[test]
    fn debug_never_prints_a_value() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secrets = Secrets::open(dir.path()).expect("open");
        secrets.put("t1", "token", "hunter2-very-secret").expect("put");
        let entries = secrets.entries.read().expect("lock").clone();
        let record = SecretRecord {
            name: "token".into(),
            value: SecretValue("hunter2-very-secret".into()),
            created_at_ms: 0,
            updated_at_ms: 0,
        };
        for shown in [format!("{secrets:?}"), format!("{entries:?}"), format!("{record:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        assert!(format!("{record:?}").contains("<redacted>"));
    }
}
