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

/// A whole stored record: the hashed fields, then the hash (as 32 integers).
#[derive(Serialize)]
struct Stored<'a> {
    #[serde(flatten)]
    hashed: Hashed<'a>,
    integrity_sha256: [u8; 32],
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
    let digest: [u8; 32] = Sha256::digest(&packed).into();
    let record = Stored { hashed, integrity_sha256: digest };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::WriteOp;

    #[test]
    fn records_verify_and_tampering_is_detected() {
        let doc = crate::document::test_document("01abc", json!({"a": 1}));
        let write = WriteRecord {
            op: WriteOp::Insert,
            table: doc.table.clone(),
            doc_id: doc.id.clone(),
            previous: None,
            current: Some(doc),
        };
        let text = build_record(7, 5, &[write], None).expect("builds");
        let mut record: Value = serde_json::from_str(&text).expect("json");
        assert!(verify_record(&record));
        assert_eq!(record["integrity_sha256"].as_array().map(Vec::len), Some(32));
        record["writes"][0]["current"]["a"] = json!(2);
        assert!(!verify_record(&record));
    }
}
