//! The change journal: one record per committed transaction that wrote documents, with full
//! before/after images and an integrity hash.

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use nimbus_core::NimbusError;

use crate::reads::serialization_error;
use crate::transaction::WriteRecord;

/// Version of the journal record format.
pub const RECORD_VERSION: u32 = 1;

/// The hashed part of a record, in the field order the contract names.
#[derive(Serialize)]
struct Hashed<'a> {
    version: u32,
    sequence: u64,
    timestamp: i64,
    writes: &'a [Value],
    scheduled_execution_id: Option<&'a str>,
}

/// Renders one write as the journal shows it.
fn write_json(write: &WriteRecord) -> Value {
    json!({
        "table": write.table.as_str(),
        "op_type": write.op.as_str(),
        "doc_id": write.doc_id.as_str(),
        "previous": write.previous.as_ref().map(|d| d.to_json()),
        "current": write.current.as_ref().map(|d| d.to_json()),
    })
}

/// Builds the JSON text of the record for one committed transaction: `integrity_sha256` is the
/// SHA-256 of the MessagePack (named fields) encoding of the other fields.
pub(crate) fn build_record(
    sequence: u64,
    timestamp: i64,
    writes: &[WriteRecord],
    scheduled_execution_id: Option<&str>,
) -> Result<String, NimbusError> {
    let writes: Vec<Value> = writes.iter().map(write_json).collect();
    let hashed = Hashed { version: RECORD_VERSION, sequence, timestamp, writes: &writes, scheduled_execution_id };
    let packed = rmp_serde::to_vec_named(&hashed).map_err(|e| serialization_error("journal record", e))?;
    let digest: Vec<u8> = Sha256::digest(&packed).to_vec();
    let record = json!({
        "version": RECORD_VERSION,
        "sequence": sequence,
        "timestamp": timestamp,
        "writes": writes,
        "scheduled_execution_id": scheduled_execution_id,
        "integrity_sha256": digest,
    });
    serde_json::to_string(&record).map_err(|e| serialization_error("journal record", e))
}

/// Recomputes a stored record's integrity hash; `true` when it matches.
pub fn verify_record(record: &Value) -> bool {
    let (Some(version), Some(sequence), Some(timestamp), Some(writes)) = (
        record["version"].as_u64(),
        record["sequence"].as_u64(),
        record["timestamp"].as_i64(),
        record["writes"].as_array(),
    ) else {
        return false;
    };
    let hashed = Hashed {
        version: version as u32,
        sequence,
        timestamp,
        writes,
        scheduled_execution_id: record["scheduled_execution_id"].as_str(),
    };
    let Ok(packed) = rmp_serde::to_vec_named(&hashed) else { return false };
    let digest: Vec<Value> = Sha256::digest(&packed).iter().map(|b| Value::from(*b)).collect();
    record["integrity_sha256"].as_array() == Some(&digest)
}
