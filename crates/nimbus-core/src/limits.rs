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
    /// Largest image config blob a pull accepts; real configs are a few KiB, and the config is
    /// read whole into memory.
    pub const MAX_IMAGE_CONFIG_BYTES: u64 = 16 * 1024 * 1024, "16 MiB";
    /// How long a pull waits, in seconds, to connect to a registry before failing with
    /// retryable `sandbox.image_pull_failed`.
    pub const IMAGE_PULL_CONNECT_TIMEOUT_SECS: u64 = 30, "30 s";
    /// How long a pull waits, in seconds, for the next bytes from a registry before failing;
    /// bounds a stalled transfer without capping a slow but moving one.
    pub const IMAGE_PULL_READ_TIMEOUT_SECS: u64 = 60, "60 s";
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
    /// Default `cpuCount` of a sandbox: one CPU's worth of time. Contract value.
    pub const SANDBOX_DEFAULT_CPUS: u32 = 1, "1";
    /// Operator maximum of `cpuCount` per sandbox. Contract default (sandboxes.md §2).
    pub const SANDBOX_MAX_CPUS: u32 = 4, "4";
    /// Default `memoryLimitBytes` of a sandbox. Contract value.
    pub const SANDBOX_DEFAULT_MEMORY_BYTES: u64 = 512 * 1024 * 1024, "512 MiB";
    /// Smallest `memoryLimitBytes`: below this a runtime cannot even start a shell. Contract value.
    pub const SANDBOX_MIN_MEMORY_BYTES: u64 = 16 * 1024 * 1024, "16 MiB";
    /// Operator maximum of `memoryLimitBytes` per sandbox. Contract default.
    pub const SANDBOX_MAX_MEMORY_BYTES: u64 = 4 * 1024 * 1024 * 1024, "4 GiB";
    /// Default `pidsLimit` of a sandbox. Contract value.
    pub const SANDBOX_DEFAULT_PIDS: u32 = 256, "256";
    /// Smallest `pidsLimit`: the init, a shell and a few children. Contract value.
    pub const SANDBOX_MIN_PIDS: u32 = 8, "8";
    /// Operator maximum of `pidsLimit` per sandbox. Contract default.
    pub const SANDBOX_MAX_PIDS: u32 = 4096, "4096";
    /// Active (not stopped or failed) sandboxes per tenant before 429. Contract default.
    pub const TENANT_MAX_ACTIVE_SANDBOXES: u64 = 64, "64";
    /// Sum of active sandboxes' `cpuCount` per tenant before 429. Contract default.
    pub const TENANT_MAX_SANDBOX_CPUS: u64 = 128, "128";
    /// Sum of active sandboxes' memory limits per tenant before 429. Contract default.
    pub const TENANT_MAX_SANDBOX_MEMORY_BYTES: u64 = 256 * 1024 * 1024 * 1024, "256 GiB";
    /// How long a terminal sandbox's record and logs stay readable (`retainedUntil`). Contract
    /// default (1 h): long enough to collect results, short enough not to pile up.
    pub const SANDBOX_RETENTION_MS: u64 = 60 * 60 * 1000, "1 h";
    /// How often retained terminal sandboxes past `retainedUntil` are removed; reads hide them at
    /// once, so this only bounds how long their files linger.
    pub const SANDBOX_RETENTION_SWEEP_MS: u64 = 60 * 1000, "60 s";
    /// Default stop grace period (SIGTERM, then SIGKILL). Contract value.
    pub const SANDBOX_STOP_GRACE_MS: u64 = 10_000, "10 s";
    /// Largest stop or delete grace period. Contract value.
    pub const SANDBOX_MAX_GRACE_MS: u64 = 60_000, "60 s";
    /// Default `timeoutMs` of a `waitFor` long-poll. Contract value (conventions §9).
    pub const WAIT_DEFAULT_TIMEOUT_MS: u64 = 30_000, "30 s";
    /// Largest `timeoutMs` of a long-poll; larger values are clamped. Contract value.
    pub const WAIT_MAX_TIMEOUT_MS: u64 = 60_000, "60 s";
    /// Largest page of an agents collection (sandboxes, services, sessions); `limit` is clamped
    /// into 1..this. Contract value.
    pub const MAX_RESOURCE_PAGE: usize = 100, "100";
    /// Most labels on one resource. Contract value.
    pub const MAX_LABELS: usize = 64, "64";
    /// Longest label key, in characters. Contract value.
    pub const MAX_LABEL_KEY_CHARS: usize = 128, "128";
    /// Longest label value, in characters. Contract value.
    pub const MAX_LABEL_VALUE_CHARS: usize = 256, "256";
    /// Longest sandbox `displayName`, in characters. Contract value.
    pub const MAX_DISPLAY_NAME_CHARS: usize = 128, "128";
    /// Longest slug part of a sandbox id. Contract value.
    pub const SANDBOX_ID_SLUG_CHARS: usize = 40, "40";
    /// Silence, in ms, after which a followed log stream sends a heartbeat frame. Contract value.
    pub const LOG_HEARTBEAT_MS: u64 = 15_000, "15 s";
    /// How often a followed log stream looks for new output; bounds follow latency without
    /// busy-waiting on the log file.
    pub const LOG_FOLLOW_POLL_MS: u64 = 50, "50 ms";
    /// Largest sandbox output log record, in bytes; longer output without a newline is cut into
    /// several records (never inside a UTF-8 sequence). Contract value (sandboxes.md §6).
    pub const LOG_RECORD_MAX_BYTES: usize = 16 * 1024, "16 KiB";
    /// Size at which a sandbox's `log.ndjson` is rotated to `log.1.ndjson`; two files are kept,
    /// so about 64 MiB of output is retained per sandbox (contract: last 64 MiB).
    pub const LOG_FILE_ROTATE_BYTES: u64 = 32 * 1024 * 1024, "32 MiB";
    /// Quiet time, in ms, after which a partial output line (a prompt) is logged as a record
    /// rather than held for its newline.
    pub const LOG_FLUSH_PARTIAL_MS: u16 = 50, "50 ms";
    /// Time, in ms, a crashed sandbox's killed processes get to leave its cgroup before cleanup
    /// gives up on removing the cgroup (they are SIGKILLed, so this is normally milliseconds).
    pub const SANDBOX_CGROUP_DRAIN_MS: u64 = 5_000, "5 s";
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
