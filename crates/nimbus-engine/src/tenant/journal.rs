//! Reading the change journal: pages after a sequence, and bootstrap snapshots.

use nimbus_core::NimbusError;
use nimbus_store::{documents as rows, journal as journal_rows};
use serde_json::{Value, json};

use super::Tenant;
use crate::reads;

/// The oldest sequence a consumer may resume from. Nimbus keeps the whole journal, so the floor
/// stays 0; a future retention policy raises it and consumers below it bootstrap again.
const CURSOR_FLOOR: u64 = 0;

/// One page of journal records.
#[derive(Debug, Clone)]
pub struct JournalPage {
    /// Records in sequence order (their stored JSON).
    pub records: Vec<Value>,
    /// Where to continue (`after` for the next page).
    pub next_cursor: u64,
    /// The newest sequence committed.
    pub latest_sequence: u64,
    /// The oldest sequence still readable.
    pub cursor_floor: u64,
    /// Whether records after this page exist.
    pub has_more: bool,
}

fn cursor_error(field: &str, reason: &str, latest: u64) -> NimbusError {
    with_cursor_bounds(NimbusError::invalid_input(field, reason), latest)
}

/// Adds the journal's bounds to a cursor error's detail, so the consumer knows where to resume.
fn with_cursor_bounds(mut error: NimbusError, latest: u64) -> NimbusError {
    if let Some(Value::Object(detail)) = &mut error.detail {
        detail.insert("cursorFloor".into(), CURSOR_FLOOR.into());
        detail.insert("latestSequence".into(), latest.into());
    }
    error
}

/// Decodes a stored record and checks its integrity hash (500 `service.storage_corruption`
/// when the stored bytes no longer match what was committed).
fn decode_record(sequence: u64, body: &str) -> Result<Value, NimbusError> {
    let record: Value = serde_json::from_str(body).map_err(|e| reads::serialization_error("journal record", e))?;
    if !crate::journal::verify_record(&record) {
        tracing::error!(sequence, "journal record failed its integrity check");
        return Err(NimbusError::new(
            nimbus_core::ErrorCode::ServiceStorageCorruption,
            format!("journal record {sequence} failed its integrity check"),
            Some(json!({ "storageKind": "corruption" })),
        ));
    }
    Ok(record)
}

impl Tenant {
    /// Decorates a journal parameter error with `cursorFloor` and `latestSequence`.
    pub async fn journal_cursor_error(&self, error: NimbusError) -> NimbusError {
        match self.read(|conn| Ok(journal_rows::latest_sequence(conn)?)).await {
            Ok(latest) => with_cursor_bounds(error, latest),
            Err(other) => other,
        }
    }

    /// Records with sequences after `after`, at most `limit` (already range-checked by caller).
    pub async fn journal_page(&self, after: u64, limit: usize) -> Result<JournalPage, NimbusError> {
        self.read(move |conn| {
            let tx = conn
                .transaction()
                .map_err(|e| NimbusError::from(nimbus_store::StoreError::new("reading the journal", e)))?;
            let latest = journal_rows::latest_sequence(&tx)?;
            if after > latest {
                return Err(cursor_error("after", "is above latest_sequence", latest));
            }
            // The floor is 0 while the whole journal is kept, so `after` cannot be below it.
            let rows = journal_rows::page(&tx, after, limit)?;
            let next_cursor = rows.last().map_or(after, |(sequence, _)| *sequence);
            let records = rows
                .into_iter()
                .map(|(sequence, body)| decode_record(sequence, &body))
                .collect::<Result<Vec<Value>, _>>()?;
            Ok(JournalPage {
                records,
                next_cursor,
                latest_sequence: latest,
                cursor_floor: CURSOR_FLOOR,
                has_more: next_cursor < latest,
            })
        })
        .await
    }

    /// A consistent snapshot of every document and schema with the sequence it reflects.
    pub async fn bootstrap(&self) -> Result<Value, NimbusError> {
        self.read(|conn| {
            let tx = conn
                .transaction()
                .map_err(|e| NimbusError::from(nimbus_store::StoreError::new("taking a snapshot", e)))?;
            let latest = journal_rows::latest_sequence(&tx)?;
            let schemas = reads::load_all_schemas(&tx)?;
            let documents = rows::all(&tx)?
                .into_iter()
                .map(|row| reads::decode_document(row).map(|d| d.to_storage_json()))
                .collect::<Result<Vec<Value>, _>>()?;
            let schema: serde_json::Map<String, Value> = schemas
                .into_iter()
                .map(|s| (s.table.clone(), serde_json::to_value(&s).unwrap_or(Value::Null)))
                .collect();
            Ok(json!({
                "snapshot": {
                    "version": crate::journal::RECORD_VERSION,
                    "applied_sequence": latest,
                    "durable_head": latest,
                    "schema": { "tables": schema },
                    "documents": documents,
                    "scheduled_execution_ids": [],
                },
                "resume_after_sequence": latest,
                "bootstrap_cut_sequence": latest,
                "cursor_floor_sequence": CURSOR_FLOOR,
            }))
        })
        .await
    }
}
