//! [`ReadSet`]: what one evaluation read (documents by id, query ranges), so that an observer
//! can tell whether a later commit could change its result.

use nimbus_core::ids::TableName;

use crate::query::Query;
use crate::transaction::WriteRecord;

/// One read.
#[derive(Debug, Clone)]
enum Read {
    /// A document looked up by table and id (found or not).
    Document { table: TableName, id: String },
    /// A document looked up by id alone, in whichever table holds it (found or not).
    AnyTable { id: String },
    /// A query: the range of its table its filters select (limit and order ignored, so a
    /// write that moves a document into or out of the filtered range counts).
    Range(Query),
}

/// The reads of one evaluation. A commit touches the set when one of its writes could change
/// what any of the reads returned.
#[derive(Debug, Clone, Default)]
pub struct ReadSet {
    reads: Vec<Read>,
}

impl ReadSet {
    /// Records a lookup of one document by table and id.
    pub fn document(&mut self, table: &TableName, id: &str) {
        self.reads.push(Read::Document { table: table.clone(), id: id.to_owned() });
    }

    /// Records a lookup by id alone.
    pub fn any_table(&mut self, id: &str) {
        self.reads.push(Read::AnyTable { id: id.to_owned() });
    }

    /// Records a query's range.
    pub fn range(&mut self, query: &Query) {
        self.reads.push(Read::Range(query.clone()));
    }

    /// Adds another evaluation's reads to this one.
    pub fn extend(&mut self, other: ReadSet) {
        self.reads.extend(other.reads);
    }

    /// How many reads were recorded.
    pub fn len(&self) -> usize {
        self.reads.len()
    }

    /// Whether nothing was read.
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty()
    }

    /// Whether `write` could change the result of any recorded read: the same document, or a
    /// before or after image inside a recorded range.
    pub fn touched_by(&self, write: &WriteRecord) -> bool {
        self.reads.iter().any(|read| match read {
            Read::Document { table, id } => write.table == *table && write.doc_id.as_str() == id,
            Read::AnyTable { id } => write.doc_id.as_str() == id,
            Read::Range(query) => {
                write.table == query.table
                    && (write.previous.as_ref().is_some_and(|d| query.matches(d))
                        || write.current.as_ref().is_some_and(|d| query.matches(d)))
            }
        })
    }

    /// Whether a change to `table`'s schema or access policy could change a recorded read.
    pub fn reads_table(&self, table: &TableName) -> bool {
        self.reads.iter().any(|read| match read {
            Read::Document { table: t, .. } => t == table,
            Read::Range(query) => query.table == *table,
            Read::AnyTable { .. } => true,
        })
    }
}
