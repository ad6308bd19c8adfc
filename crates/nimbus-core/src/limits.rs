//! Every limit and default of the data plane in one place.
//!
//! Each value says what it bounds, why it has this default and what range is safe. Code elsewhere
//! names these constants instead of writing numbers; `docs/limits.md` is generated from [`ALL`].

/// One documented limit, for the generated limits table.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Constant name as written in this module.
    pub name: &'static str,
    /// Value rendered for people (with its unit).
    pub value: &'static str,
    /// What the limit bounds and why it has this value.
    pub reason: &'static str,
}

macro_rules! limits {
    ($( $(#[doc = $doc:literal])+ pub const $name:ident : $ty:ty = $value:expr, $shown:literal; )+) => {
        $( $(#[doc = $doc])+ pub const $name: $ty = $value; )+
        /// Every limit of this module, in declaration order.
        pub const ALL: &[Limit] = &[ $( Limit {
            name: stringify!($name),
            value: $shown,
            reason: concat!($($doc, " "),+),
        } ),+ ];
    };
}

limits! {
    /// Largest JSON request body; larger bodies are refused with 413 before parsing, so a client
    /// cannot make the server buffer unbounded input. Contract value (data.md §7).
    pub const MAX_JSON_BODY_BYTES: usize = 16 * 1024 * 1024, "16 MiB";
    /// Largest JSON encoding of one document; keeps a single row well inside SQLite's page cache
    /// and a journal record readable in one response. Contract value.
    pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024, "1 MiB";
    /// Deepest nesting of one document; bounds recursion in validation and comparison.
    pub const MAX_DOCUMENT_DEPTH: usize = 64, "64";
    /// Most values in one `in` filter; bounds the cost of one predicate. Contract value.
    pub const MAX_IN_VALUES: usize = 1000, "1000";
    /// Largest page of a document list or paginated query; bounds one response's size.
    pub const MAX_PAGE_SIZE: usize = 1000, "1000";
    /// Writes queued per tenant before 429; beyond this a client should back off rather than
    /// grow the server's memory. Contract value.
    pub const WRITE_QUEUE_PER_TENANT: usize = 256, "256";
    /// Most transactions folded into one group commit; one fsync then covers them all, while a
    /// bound keeps one batch's latency predictable.
    pub const GROUP_COMMIT_MAX_BATCH: usize = 128, "128";
    /// Advised wait, in ms, before retrying a write refused because the tenant's queue is full:
    /// about one group commit, after which the queue has drained a batch.
    pub const WRITE_QUEUE_RETRY_AFTER_MS: u64 = 50, "50 ms";
    /// How long a SQLite connection waits, in ms, for a lock another process holds before the
    /// request fails with retryable `service.storage_busy`: long enough to ride out a
    /// checkpoint, short enough that a client hears back well within its own timeout.
    pub const STORAGE_BUSY_TIMEOUT_MS: u64 = 5_000, "5 s";
    /// Read-only SQLite connections kept per tenant; WAL lets them read beside the writer.
    /// Two cores here, so a few suffice; extra readers wait for a free connection.
    pub const READ_CONNECTIONS_PER_TENANT: usize = 4, "4";
    /// Largest image archive accepted by `POST /api/images/import`; contract value, far above
    /// any sane image while still bounding the staging disk one upload can take.
    pub const MAX_IMAGE_ARCHIVE_BYTES: u64 = 10 * 1024 * 1024 * 1024, "10 GiB";
    /// Longest tenant, table or index name, in characters. Contract value.
    pub const MAX_NAME_CHARS: usize = 128, "128";
    /// Longest document id path segment, in bytes. Contract value.
    pub const MAX_DOCUMENT_ID_BYTES: usize = 1500, "1500 bytes";
    /// Most fields in one index. Contract value.
    pub const MAX_INDEX_FIELDS: usize = 16, "16";
    /// Most indexes on one table; each one costs a write per document write.
    pub const MAX_INDEXES_PER_TABLE: usize = 32, "32";
    /// Schema violations listed in a 422 answer; the count is always exact.
    pub const MAX_REPORTED_VIOLATIONS: usize = 20, "20";
    /// Default journal page size.
    pub const DEFAULT_JOURNAL_PAGE: usize = 100, "100";
    /// Largest journal page.
    pub const MAX_JOURNAL_PAGE: usize = 1000, "1000";
    /// Lifetime, in seconds, of a browser session cookie from `POST /ui/auth/session`. Contract
    /// value (12 h).
    pub const SESSION_COOKIE_TTL_SECS: u64 = 12 * 60 * 60, "12 h";
    /// Time in-flight requests get to finish on shutdown before the server stops anyway.
    pub const SHUTDOWN_GRACE_MS: u64 = 10_000, "10 s";
    /// Default listen address: loopback only, so a fresh server is never reachable from outside.
    pub const DEFAULT_HOST: &str = "127.0.0.1", "127.0.0.1";
    /// Default listen port.
    pub const DEFAULT_PORT: u16 = 8080, "8080";
    /// Default data directory, relative to the working directory.
    pub const DEFAULT_DATA_DIR: &str = "./data", "./data";
}

/// Renders the limits table as Markdown (the body of `docs/limits.md`).
pub fn render_markdown() -> String {
    let mut out = String::from(
        "# Limits and defaults\n\n\
         Generated from `crates/nimbus-core/src/limits.rs`; do not edit by hand \
         (`scripts/gen-docs` rewrites it).\n\n\
         | Limit | Value | What it bounds and why |\n| --- | --- | --- |\n",
    );
    for limit in ALL {
        out.push_str(&format!("| `{}` | {} | {} |\n", limit.name, limit.value, limit.reason.trim()));
    }
    out
}
