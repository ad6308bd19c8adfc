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
    /// Unread rest of a request body, in bytes, that the server reads and discards after an
    /// early answer (a 405, a 415, a missing parameter) so that the connection stays open for the
    /// next request: about one socket buffer, cheaper to read than a new connection costs. A
    /// larger rest gets `Connection: close` on the answer instead.
    pub const HTTP_DRAIN_MAX_BYTES: u64 = 64 * 1024, "64 KiB";
    /// How long, in ms, an early answer waits for that rest before it goes out with
    /// `Connection: close` instead: a client sends a small body at once, and a stalled one must
    /// not hold its answer back for long.
    pub const HTTP_DRAIN_TIMEOUT_MS: u64 = 1_000, "1 s";
    /// Rest of a request body, in bytes, still read and discarded after an answer with
    /// `Connection: close` before the connection closes (a lingering close, RFC 9112 §9.6): a
    /// close with unread input makes the kernel reset the connection, which fails the client's
    /// upload and can destroy the answer. As large as a file write (`SESSION_FILE_MAX_BYTES`), so
    /// a refused JSON body or file still gets its answer; a bigger upload refused early (an image
    /// archive) may be reset past it.
    pub const HTTP_LINGER_MAX_BYTES: u64 = 64 * 1024 * 1024, "64 MiB";
    /// How long, in ms, that lingering read may last: bounds what a client that keeps sending
    /// can hold, well inside the shutdown grace.
    pub const HTTP_LINGER_TIMEOUT_MS: u64 = 5_000, "5 s";
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
    /// any sane image while still bounding the staging disk one upload can take. It bounds the
    /// archive as sent (413 `op.payload_too_large`) and as unpacked into staging, holes of sparse
    /// files included (400 `op.cap_exceeded`, `cap: "image_archive_bytes"`), so a gzip archive
    /// cannot expand past it.
    pub const MAX_IMAGE_ARCHIVE_BYTES: u64 = 10 * 1024 * 1024 * 1024, "10 GiB";
    /// Largest image config blob a pull accepts; real configs are a few KiB, and the config is
    /// read whole into memory.
    pub const MAX_IMAGE_CONFIG_BYTES: u64 = 16 * 1024 * 1024, "16 MiB";
    /// Largest expanded size of one image layer as it is unpacked: its uncompressed tar stream,
    /// plus the holes of sparse files (a file counts at its full length, whatever its header
    /// stores). A gzip layer can expand a thousandfold, so its compressed size bounds nothing;
    /// the largest layers of real images (CUDA, ML frameworks) expand to a few GiB. Beyond it a
    /// pull or import fails with 400 `op.cap_exceeded` (`cap: "image_layer_bytes"`).
    pub const MAX_IMAGE_LAYER_EXPANDED_BYTES: u64 = 8 * 1024 * 1024 * 1024, "8 GiB";
    /// Most tar entries in one image layer, and in one imported archive: each costs an inode and
    /// a few system calls even when empty. Real layers hold thousands of entries, a distribution
    /// with a language runtime's packages some hundred thousand. Beyond it 400 `op.cap_exceeded`
    /// (`cap: "image_layer_entries"`, or `"image_archive_entries"` for an archive).
    pub const MAX_IMAGE_LAYER_ENTRIES: u64 = 1_000_000, "1 000 000";
    /// Largest expanded size of all the layers of one image together (as for one layer, holes
    /// of sparse files included): about three times the largest archive accepted, the usual
    /// expansion of a compressed file system, and what one image's root may take on disk.
    /// Beyond it 400 `op.cap_exceeded` (`cap: "image_bytes"`).
    pub const MAX_IMAGE_EXPANDED_BYTES: u64 = 32 * 1024 * 1024 * 1024, "32 GiB";
    /// Largest tar metadata read before one entry of a layer or an imported archive (its
    /// header, pax extended header, GNU long name and link, sparse map): the tar reader holds
    /// it in memory, so an 8 GiB "long name" must fail here, not exhaust memory. Real metadata
    /// is a few KiB. Beyond it 400 `op.cap_exceeded` (`cap: "image_tar_header_bytes"`).
    pub const MAX_IMAGE_TAR_HEADER_BYTES: u64 = 1024 * 1024, "1 MiB";
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
    /// Committed transactions buffered per tenant for realtime observers. The writer never
    /// waits for an observer: one that falls further behind is told it lagged and re-evaluates
    /// every subscription of the tenant instead, so this bounds memory, not correctness.
    pub const REALTIME_COMMIT_BUFFER: usize = 1024, "1024";
    /// How long, in ms, a `/ws` client has to send `client_hello` after the server's `hello`.
    /// Contract value (realtime.md §2).
    pub const WS_HELLO_TIMEOUT_MS: u64 = 10_000, "10 s";
    /// How long, in ms, a `/ws` socket upgraded without a credential has to send its
    /// `Authenticate` frame: it holds a connection unauthenticated, so as briefly as the hello.
    pub const WS_AUTH_TIMEOUT_MS: u64 = 10_000, "10 s";
    /// Interval, in ms, of the server's WebSocket Pings on `/ws` (realtime.md §7).
    pub const WS_PING_INTERVAL_MS: u64 = 15_000, "15 s";
    /// Silence from a `/ws` client, in ms, after which the socket is closed with 4408: three
    /// missed pings (realtime.md §7).
    pub const WS_DEAD_PEER_MS: u64 = 45_000, "45 s";
    /// Largest inbound `/ws` frame; larger ones close the socket with 1009. Contract value.
    pub const WS_MAX_INBOUND_BYTES: usize = 1024 * 1024, "1 MiB";
    /// Initial read buffer of one `/ws` socket. Frames are small and most sockets idle, so a
    /// small buffer (grown on demand) keeps thousands of idle sockets cheap.
    pub const WS_READ_BUFFER_BYTES: usize = 4 * 1024, "4 KiB";
    /// Live subscriptions per `/ws` socket; more are refused with `rate.resource_exhausted`.
    /// Bounds the evaluation work one client can attach to a tenant's commits.
    pub const WS_MAX_SUBSCRIPTIONS: usize = 1024, "1024";
    /// Outbound bytes queued for one `/ws` socket above which it counts as backed up. Results
    /// are coalesced per subscription, so only a client far behind on huge results gets here.
    /// Contract value (realtime.md §5).
    pub const WS_OUTBOUND_HIGH_WATER_BYTES: usize = 16 * 1024 * 1024, "16 MiB";
    /// How long, in ms, a socket may stay above the high-water mark before its subscriptions
    /// are dropped with `session.subscription_error` (`backpressure`). Contract value.
    pub const WS_BACKPRESSURE_GRACE_MS: u64 = 30_000, "30 s";
    /// Largest rendered result of one subscription; a bigger one drops the subscription with
    /// `result_too_large`. Contract value.
    pub const WS_MAX_RESULT_BYTES: usize = 16 * 1024 * 1024, "16 MiB";
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
    /// Default size of a sandbox's writable root (`diskLimitBytes`): room for a package install
    /// or a build; the image itself is shared and not counted. The file system is a sparse
    /// image, so the host spends only what the sandbox writes.
    pub const SANDBOX_DEFAULT_DISK_BYTES: u64 = 4 * 1024 * 1024 * 1024, "4 GiB";
    /// Smallest `diskLimitBytes`: an ext4 file system's own metadata needs a few MiB.
    pub const SANDBOX_MIN_DISK_BYTES: u64 = 64 * 1024 * 1024, "64 MiB";
    /// Default operator maximum of `diskLimitBytes`.
    pub const SANDBOX_MAX_DISK_BYTES: u64 = 64 * 1024 * 1024 * 1024, "64 GiB";
    /// Free space the data directory's file system keeps for the databases: a sandbox create
    /// finding less free is refused (429 `rate.resource_exhausted`, `resource: "data_dir_disk"`),
    /// so sandboxes filling their disks cannot starve tenant writes of space.
    pub const SANDBOX_DISK_RESERVE_BYTES: u64 = 1024 * 1024 * 1024, "1 GiB";
    /// Size of a sandbox's `/dev/shm` (a tmpfs, charged to its memory limit): Docker's default,
    /// enough for the shared-memory segments of browsers and Python multiprocessing.
    pub const SANDBOX_SHM_BYTES: u64 = 64 * 1024 * 1024, "64 MiB";
    /// How long a supervisor waits for a connection to a sandbox's port (the ports route): on
    /// loopback a listener accepts or refuses at once, so only a full backlog takes longer.
    pub const SANDBOX_PORT_CONNECT_MS: u64 = 2_000, "2 s";
    /// How long the ports route waits for a sandbox's server to begin its response (its status
    /// line and headers; the body then streams as long as it takes): 502 past it.
    pub const SANDBOX_PORT_HEADERS_MS: u64 = 30_000, "30 s";
    /// Port of the egress proxy listener on every sandbox's loopback (127.0.0.1 and ::1): the
    /// conventional HTTP proxy port, so it reads as what it is in `HTTP_PROXY`.
    pub const EGRESS_PROXY_PORT: u16 = 3128, "3128";
    /// The egress proxy's name in the RFC 9209 `Proxy-Status` header of its own answers (a
    /// refused or failed request), so a client, a browser service's navigation among them, can
    /// tell them from the upstream's.
    pub const EGRESS_PROXY_STATUS_NAME: &str = "nimbus-egress", "nimbus-egress";
    /// Most `allow` rules in one sandbox's egress rules (and in the operator's policy): a rule
    /// list is scanned per connection, and real allow-lists are a handful of registries and APIs.
    pub const EGRESS_MAX_ALLOW_RULES: usize = 64, "64";
    /// Most `credentials` rules in one sandbox's egress rules: one per API a task talks to.
    pub const EGRESS_MAX_CREDENTIAL_RULES: usize = 16, "16";
    /// Most ports one allow rule names.
    pub const EGRESS_MAX_RULE_PORTS: usize = 16, "16";
    /// Longest `prefix` of a credential rule (`"Bearer "`, `"token "`).
    pub const EGRESS_CREDENTIAL_PREFIX_MAX_CHARS: usize = 256, "256";
    /// Decision-log entries kept per sandbox (the oldest go first): a few pages of an install's
    /// requests, at about 300 bytes each.
    pub const EGRESS_LOG_ENTRIES: usize = 1000, "1000";
    /// Largest request head (request line and headers) the egress proxy reads from a sandbox:
    /// what is read from a sandbox is bounded; real heads are a few KiB.
    pub const EGRESS_MAX_HEAD_BYTES: usize = 64 * 1024, "64 KiB";
    /// How long the egress proxy waits for a sandbox's request head, or for the TLS ClientHello
    /// of a tunnel: a sandbox cannot hold a proxy connection open by saying nothing.
    pub const EGRESS_HEAD_TIMEOUT_MS: u64 = 30_000, "30 s";
    /// How long the egress proxy waits for a name's resolution and then for the upstream's
    /// connection: long enough for a slow resolver, short enough that a client sees its 502.
    pub const EGRESS_CONNECT_TIMEOUT_MS: u64 = 10_000, "10 s";
    /// Open egress connections per sandbox: a package manager opens a few dozen; more is a
    /// sandbox trying to exhaust the server's descriptors. Further connections are closed.
    pub const EGRESS_MAX_CONNECTIONS_PER_SANDBOX: usize = 256, "256";
    /// Largest CA bundle read from an image to add the egress CA to (Debian's is about 220 KiB);
    /// an image's files are not trusted to be small.
    pub const SANDBOX_CA_BUNDLE_MAX_BYTES: u64 = 2 * 1024 * 1024, "2 MiB";
    /// Buffer of each direction of a relayed egress tunnel: a download of package archives moves
    /// in 64 KiB reads (tokio's default 8 KiB makes eight times the system calls), at 128 KiB of
    /// memory per open tunnel.
    pub const EGRESS_RELAY_BUFFER_BYTES: usize = 64 * 1024, "64 KiB";
    /// How long the egress proxy waits for a supervisor's hand-off message once it accepted
    /// its unix connection (a supervisor sends it at once).
    pub const EGRESS_HANDOFF_TIMEOUT_MS: u64 = 5_000, "5 s";
    /// While no server runs, how long a sandbox's proxy listener reads a request before it
    /// answers 503 anyway (reading it first keeps the close from resetting the answer).
    pub const EGRESS_UNAVAILABLE_READ_MS: u64 = 1_000, "1 s";
    /// Most ports `status.endpoints` lists: a sandbox may open any number of listeners; the
    /// report stays small.
    pub const SANDBOX_MAX_ENDPOINTS: usize = 64, "64";
    /// Ids one sandbox's user namespace maps (uids and gids 0..65536 onto a host range of its
    /// own): every id an image's files or `/etc/passwd` commonly use, `nobody` (65534) included.
    pub const SANDBOX_USERNS_IDS: u32 = 65_536, "65,536";
    /// First host id of the default pool sandboxes' id ranges come from (`--userns-pool`): 2^31,
    /// far above any host's own users and the subordinate ids other container tools use.
    pub const SANDBOX_USERNS_POOL_FIRST: u32 = 1 << 31, "2,147,483,648";
    /// Ranges in the default pool: sandboxes that can exist at once (running or retained) on one
    /// server; 4096 ranges of 65,536 ids stay within the 32-bit id space.
    pub const SANDBOX_USERNS_POOL_RANGES: u32 = 4096, "4096";
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
    /// How long, in ms, the server waits for a sandbox supervisor's answer to a control call
    /// (status, spawn, input, signal …; an exec or probe gets its own timeout on top). A
    /// supervisor answers in milliseconds (a spawn in a few hundred, and spawns of one sandbox
    /// queue behind each other); this much silence means it is stuck, and the caller gets 503
    /// instead of hanging.
    pub const SUPERVISOR_ANSWER_MS: u64 = 10_000, "10 s";
    /// How long, in ms, past a stop's grace period the server waits for the supervisor to
    /// report the end: its teardown (container delete, unmount, cgroup removal) takes well
    /// under a second. A supervisor silent past it is killed and the sandbox cleaned up by the
    /// server, so a stop or delete never waits on a stuck supervisor for longer.
    pub const SUPERVISOR_TEARDOWN_MS: u64 = 2_000, "2 s";
    /// How often, in ms, a supervisor checks that its sandbox's state directory still exists;
    /// one whose directory is gone (the data directory was removed) tears its sandbox down and
    /// exits instead of running on with nothing left that knows of it.
    pub const SUPERVISOR_ORPHAN_CHECK_MS: u64 = 1_000, "1 s";
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
    /// Session lease when `requestedTtlMs` is absent, in ms: long enough for an interactive
    /// task, short enough that a forgotten session frees its processes soon. Contract value.
    pub const SESSION_DEFAULT_TTL_MS: u64 = 900_000, "15 min";
    /// Longest session lease one open or renew grants, in ms; longer requests are clamped, so a
    /// lease must be renewed to outlive it. Contract value.
    pub const SESSION_MAX_TTL_MS: u64 = 3_600_000, "1 h";
    /// Open sessions per tenant; beyond this opening answers 429. Contract value.
    pub const TENANT_MAX_OPEN_SESSIONS: usize = 256, "256";
    /// Period of the session sweeper, in ms: expiry and stopped targets are applied within this
    /// of happening (the contract asks for at most 1 s).
    pub const SESSION_SWEEP_MS: u64 = 250, "250 ms";
    /// How long closed and expired sessions stay readable, in ms, before the sweeper forgets
    /// them; bounds the registry's memory without hiding a recent ending from its client.
    pub const SESSION_RETENTION_MS: u64 = 60 * 60 * 1000, "1 h";
    /// Output replayed when a channel or process stream attaches, in bytes. Contract value.
    pub const SESSION_REPLAY_BYTES: usize = 64 * 1024, "64 KiB";
    /// Live output waiting for a stream's client, in bytes, beyond which the stream ends with
    /// `closed` `backpressure` instead of buffering without bound. Contract value.
    pub const SESSION_PENDING_BYTES: usize = 64 * 1024, "64 KiB";
    /// Silence on a session stream, in ms, after which a `heartbeat` frame is sent.
    pub const SESSION_HEARTBEAT_MS: u64 = 15_000, "15 s";
    /// Largest input one call writes to a process's stdin (decoded bytes). Contract value.
    pub const SESSION_MAX_INPUT_BYTES: usize = 1024 * 1024, "1 MiB";
    /// Largest file content one `files` request reads or writes; larger files are read in ranges.
    pub const SESSION_FILE_MAX_BYTES: usize = 64 * 1024 * 1024, "64 MiB";
    /// Longest pause, in ms, between two parts of a `files` upload's body: a client that stops
    /// sending gets 408 `op.body_timeout` instead of holding the request and the sandbox root
    /// it pinned. Any live client sends far more often; a slow but steady one is not cut off.
    pub const SESSION_FILE_BODY_IDLE_MS: u64 = 10_000, "10 s";
    /// Most entries in one `files/list` answer; the rest are cut and `truncated` is set.
    pub const SESSION_FILE_LIST_MAX_ENTRIES: usize = 10_000, "10 000";
    /// Longest `path` of a `files` request, in bytes: Linux's `PATH_MAX`. Contract value.
    pub const SESSION_FILE_MAX_PATH_BYTES: usize = 4096, "4096 bytes";
    /// Running exec processes per session; beyond this exec answers 429. Contract value.
    pub const SESSION_MAX_RUNNING_PROCESSES: usize = 64, "64";
    /// Timeout of an exec with `wait=true` when `timeoutMs` is absent, in ms. Contract value.
    pub const EXEC_WAIT_DEFAULT_TIMEOUT_MS: u64 = 60_000, "60 s";
    /// Longest timeout of an exec with `wait=true`, in ms: the request is held that long.
    /// Contract value.
    pub const EXEC_WAIT_MAX_TIMEOUT_MS: u64 = 600_000, "10 min";
    /// Longest timeout of a background exec, in ms (one day). Contract value.
    pub const EXEC_MAX_TIMEOUT_MS: u64 = 86_400_000, "24 h";
    /// Output of one stream kept in a waited exec's answer, in bytes; the rest is cut and
    /// `truncated` is set. Contract value.
    pub const EXEC_WAIT_MAX_OUTPUT_BYTES: usize = 1024 * 1024, "1 MiB";
    /// Default pty size of an exec with `tty: true` (columns).
    pub const EXEC_DEFAULT_COLS: u16 = 80, "80";
    /// Default pty size of an exec with `tty: true` (rows).
    pub const EXEC_DEFAULT_ROWS: u16 = 24, "24";
    /// Largest pty dimension (columns or rows) a resize or exec accepts. Contract value.
    pub const PTY_MAX_DIMENSION: u16 = 1000, "1000";
    /// Output queued for one attachment to a sandbox process, in bytes as sent (base64), beyond which the
    /// supervisor cuts that attachment off rather than buffer for a client that is not reading
    /// (four replay buffers: room for a replay plus a burst of live output).
    pub const ATTACH_QUEUE_BYTES: usize = 256 * 1024, "256 KiB";
    /// How often, in ms, an idle attachment checks that its client is still connected, so a
    /// vanished client's thread ends without waiting for the process's next output.
    pub const ATTACH_LIVENESS_POLL_MS: u64 = 1_000, "1 s";
    /// Running exec processes per sandbox (all sessions together): a sanity cap on the
    /// supervisor's threads and descriptors; sessions are capped lower, per session.
    pub const SANDBOX_MAX_RUNNING_PROCESSES: usize = 1024, "1024";
    /// Exited exec processes a sandbox's supervisor remembers; beyond this the oldest exited
    /// ones are forgotten, bounding its memory (each keeps up to a replay buffer of output).
    pub const SANDBOX_MAX_EXITED_PROCESSES: usize = 256, "256";
    /// How long, in ms, an exited process's output pipes may stay open (held by a background
    /// child) before its `exit` is reported anyway.
    pub const PROCESS_EXIT_DRAIN_MS: u64 = 200, "200 ms";
    /// Longest service name, in characters. Contract value (services.md §1).
    pub const SERVICE_MAX_NAME_CHARS: usize = 128, "128";
    /// Default readiness probe period (`intervalMs`), in ms. Contract value.
    pub const PROBE_DEFAULT_INTERVAL_MS: u64 = 1_000, "1 s";
    /// Shortest readiness probe period, in ms: keeps a probe loop from busy-spinning a sandbox.
    /// Contract value.
    pub const PROBE_MIN_INTERVAL_MS: u64 = 100, "100 ms";
    /// Longest readiness probe or health check period, in ms (one hour); beyond it a service's
    /// state would say little about the present.
    pub const PROBE_MAX_INTERVAL_MS: u64 = 3_600_000, "1 h";
    /// Default timeout of one readiness probe, in ms. Contract value.
    pub const PROBE_DEFAULT_TIMEOUT_MS: u64 = 1_000, "1 s";
    /// Shortest timeout of one probe or health check, in ms. Contract value.
    pub const PROBE_MIN_TIMEOUT_MS: u64 = 100, "100 ms";
    /// Longest timeout of one probe or health check, in ms. Contract value.
    pub const PROBE_MAX_TIMEOUT_MS: u64 = 60_000, "60 s";
    /// Default consecutive failures before `not_ready`/`unhealthy`. Contract value.
    pub const PROBE_DEFAULT_FAILURE_THRESHOLD: u32 = 3, "3";
    /// Largest `failureThreshold`. Contract value.
    pub const PROBE_MAX_FAILURE_THRESHOLD: u32 = 100, "100";
    /// Default `startTimeoutMs`: time from launch to the first passing probe before the run
    /// ends `failed` (`start_failed`). Contract value.
    pub const SERVICE_DEFAULT_START_TIMEOUT_MS: u64 = 120_000, "120 s";
    /// Shortest `startTimeoutMs`. Contract value.
    pub const SERVICE_MIN_START_TIMEOUT_MS: u64 = 1_000, "1 s";
    /// Longest `startTimeoutMs`. Contract value.
    pub const SERVICE_MAX_START_TIMEOUT_MS: u64 = 3_600_000, "1 h";
    /// Default `maxRestarts` of `on_failure`/`always` services. Contract value.
    pub const SERVICE_DEFAULT_MAX_RESTARTS: u32 = 5, "5";
    /// Largest `maxRestarts`. Contract value.
    pub const SERVICE_MAX_RESTARTS: u32 = 1000, "1000";
    /// First delay before a policy restart, in ms; each further consecutive restart doubles it.
    /// Contract value.
    pub const SERVICE_RESTART_BACKOFF_MS: u64 = 1_000, "1 s";
    /// Cap of the doubling restart delay, in ms. Contract value.
    pub const SERVICE_MAX_RESTART_BACKOFF_MS: u64 = 30_000, "30 s";
    /// Continuous `ready` time, in ms, after which a service's `restartCount` resets to 0, so a
    /// service that crashes once a day is not eventually left `failed`. Contract value.
    pub const SERVICE_RESTART_RESET_MS: u64 = 600_000, "10 min";
    /// How long a fenced restart's receipt is kept for replay by `requestId`, in ms. Contract
    /// value.
    pub const SERVICE_RECEIPT_RETENTION_MS: u64 = 24 * 60 * 60 * 1000, "24 h";
    /// Longest `requestId` of a fenced restart, in characters. Contract value.
    pub const SERVICE_MAX_REQUEST_ID_CHARS: usize = 128, "128";
    /// How long a forced delete waits for a lifecycle operation in progress, in ms, before 429.
    /// Contract value.
    pub const SERVICE_FORCE_DELETE_WAIT_MS: u64 = 30_000, "30 s";
    /// Default period of an external service's health check, in ms. Contract value.
    pub const EXTERNAL_HEALTH_DEFAULT_INTERVAL_MS: u64 = 5_000, "5 s";
    /// Default timeout of one external health check, in ms. Contract value.
    pub const EXTERNAL_HEALTH_DEFAULT_TIMEOUT_MS: u64 = 2_000, "2 s";
    /// Longest external endpoint URL, in bytes; bounds what the server stores and requests.
    pub const EXTERNAL_MAX_URL_BYTES: usize = 2048, "2048 bytes";
    /// Longest tenant secret name, in characters: an identifier named in egress rules and logs.
    pub const SECRET_NAME_MAX_CHARS: usize = 64, "64";
    /// Largest tenant secret value, in bytes: it becomes a header, which servers cap near 8 KiB.
    pub const SECRET_VALUE_MAX_BYTES: usize = 8192, "8192 bytes";
    /// Most secrets of one tenant: every value stays in the server's memory for the egress proxy.
    pub const TENANT_MAX_SECRETS: usize = 100, "100";
    /// Default listen address: loopback only, so a fresh server is never reachable from outside.
    pub const DEFAULT_HOST: &str = "127.0.0.1", "127.0.0.1";
    /// Default listen port.
    pub const DEFAULT_PORT: u16 = 8080, "8080";
    /// Default data directory, relative to the working directory.
    pub const DEFAULT_DATA_DIR: &str = "./data", "./data";
    /// Mode of the data directory and of the token and discovery directories: only the
    /// server's user may list or pass through them (an existing data directory is tightened at
    /// start). Subdirectories keep ordinary modes, so image roots stay usable by sandbox users.
    pub const PRIVATE_DIR_MODE: u32 = 0o700, "0700";
    /// Mode of the databases (SQLite gives their `-wal` and `-shm` files the same mode), the
    /// token file, the lock files and `server.json`: they hold every tenant's data and the admin
    /// token, so no other host user may read them.
    pub const PRIVATE_FILE_MODE: u32 = 0o600, "0600";
    /// Pending scheduled jobs per tenant before 429; bounds the due-job index and the work
    /// one tenant can queue. Contract value (scheduling.md §5).
    pub const MAX_PENDING_JOBS_PER_TENANT: u64 = 100_000, "100 000";
    /// Crons per tenant before 400 `op.cap_exceeded`. Contract value.
    pub const MAX_CRONS_PER_TENANT: u64 = 1_000, "1000";
    /// Largest `run_after_ms` of a one-shot job, in ms (365 days); further out is almost always
    /// a unit mistake.
    pub const MAX_RUN_AFTER_MS: u64 = 31_536_000_000, "365 days";
    /// Longest interval schedule, in seconds (365 days). Contract value.
    pub const MAX_INTERVAL_SECS: u64 = 31_536_000, "365 days";
    /// How long finished and cancelled jobs (and cron execution ids) are kept, in ms, before
    /// they are purged: long enough to inspect a result after a weekend.
    pub const FINISHED_JOB_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000, "7 days";
    /// Runs kept per cron; older runs are dropped as new ones are recorded.
    pub const CRON_RUNS_KEPT: usize = 100, "100";
    /// Default and largest `limit` of a cron's run history page.
    pub const CRON_RUNS_DEFAULT_PAGE: usize = 20, "20";
    /// Longest cron name, in characters. Contract value.
    pub const MAX_CRON_NAME_CHARS: usize = 128, "128";
    /// Due jobs one tenant runs per scheduler pass before the scheduler moves on to the next
    /// tenant, so a tenant with a large backlog cannot starve the others.
    pub const SCHEDULER_JOBS_PER_PASS: usize = 256, "256";
    /// Longest the scheduler sleeps, in ms, when nothing is due; a safety net for wake-ups
    /// that nothing signals (e.g. a clock step).
    pub const SCHEDULER_MAX_SLEEP_MS: u64 = 60_000, "60 s";
    /// Runs of one job that may end in an infrastructure error (storage, a full write queue)
    /// before the job fails with it: such errors are retried (they are not the target's fault),
    /// but a persistent one (a damaged row) must not retry forever.
    pub const SCHEDULER_MAX_INFRA_ATTEMPTS: u32 = 5, "5";
    /// Largest `/etc/passwd` or `/etc/group` read from a sandbox to resolve a `user`: the file is
    /// the sandbox's to forge (a FIFO, `/dev/zero`, a sparse terabyte), so it is read only when
    /// it is a regular file of at most this size. Real account files are a few KiB.
    pub const SANDBOX_ACCOUNT_FILE_MAX_BYTES: u64 = 1024 * 1024, "1 MiB";
    /// Default memory limit of one function isolate (QuickJS runtime limit), in bytes; operator
    /// setting `--function-memory-mb`. Contract default (functions.md §8).
    pub const FUNCTION_MEMORY_BYTES: usize = 64 * 1024 * 1024, "64 MiB";
    /// Default CPU time of one query or mutation invocation, in ms (JavaScript only, host
    /// operations excluded); `--function-cpu-ms`. Contract default.
    pub const FUNCTION_CPU_MS: u64 = 1_000, "1 s";
    /// Default CPU time of one action invocation, in ms; `--action-cpu-ms`. Contract default.
    pub const ACTION_CPU_MS: u64 = 30_000, "30 s";
    /// Default wall-clock limit of any invocation, in ms (host operations and timers included);
    /// `--function-wall-ms`. Contract default.
    pub const FUNCTION_WALL_MS: u64 = 60_000, "60 s";
    /// Deepest call tree of nested `ctx.run*` calls; `--function-max-nested-calls`. Contract
    /// default.
    pub const FUNCTION_MAX_NESTED_CALLS: u32 = 16, "16";
    /// Invocations of one tenant waiting for a slot beyond those running; past it a call gets
    /// 429 `rate.resource_exhausted` (`function_slots`) instead of queueing without bound.
    /// Contract value.
    pub const FUNCTION_QUEUE_PER_TENANT: usize = 256, "256";
    /// Attempts at one mutation before it fails with 409 `op.conflict`: a first attempt whose
    /// buffered inserts cannot be applied as they are runs again on the writer. Contract value.
    pub const FUNCTION_MAX_ATTEMPTS: u32 = 8, "8";
    /// Documents one invocation may read. Contract value.
    pub const FUNCTION_MAX_DOCUMENTS_READ: usize = 16_384, "16 384";
    /// Documents one mutation may write. Contract value.
    pub const FUNCTION_MAX_DOCUMENTS_WRITTEN: usize = 8_192, "8 192";
    /// Largest JSON encoding of a function's return value. Contract value.
    pub const FUNCTION_MAX_RETURN_BYTES: usize = 16 * 1024 * 1024, "16 MiB";
    /// Jobs one invocation may schedule. Contract value (scheduling.md).
    pub const FUNCTION_MAX_SCHEDULED_JOBS: usize = 1_000, "1 000";
    /// Most modules in one deploy. Contract value.
    pub const FUNCTION_MAX_MODULES: usize = 256, "256";
    /// Largest module source, in bytes. Contract value.
    pub const FUNCTION_MAX_MODULE_BYTES: usize = 1024 * 1024, "1 MiB";
    /// Largest deploy (all module sources), in bytes. Contract value.
    pub const FUNCTION_MAX_DEPLOY_BYTES: usize = 8 * 1024 * 1024, "8 MiB";
    /// CPU time of evaluating a deploy's modules to discover their functions, in ms: top-level
    /// code must be cheap and pure. Contract value.
    pub const FUNCTION_DISCOVERY_CPU_MS: u64 = 1_000, "1 s";
    /// Log lines of a failed invocation returned in `detail.logs`. Contract value.
    pub const FUNCTION_LOG_LINES_KEPT: usize = 50, "50";
    /// Longest log line kept for `detail.logs`, in bytes; a longer line is cut, so one
    /// `console.log` of a huge value cannot bloat an error response.
    pub const FUNCTION_LOG_LINE_BYTES: usize = 4096, "4 KiB";
    /// Idle isolates kept per tenant for reuse (each holds its evaluated modules); more are
    /// dropped after their invocation. Two cores here: a few cover the concurrency.
    pub const FUNCTION_IDLE_ISOLATES_PER_TENANT: usize = 4, "4";
    /// JavaScript stack of an isolate, in bytes: deep recursion ends with a RangeError well
    /// before the worker thread's own stack (8 MiB) could overflow.
    pub const FUNCTION_STACK_BYTES: usize = 1024 * 1024, "1 MiB";
    /// How long an idle function worker thread waits for work before it exits, in ms.
    pub const FUNCTION_WORKER_IDLE_MS: u64 = 60_000, "60 s";
    /// Text an MCP tool returns per output (a command's stdout or stderr, a file's content, a
    /// sandbox's log records), in bytes; the rest is cut and the result says `truncated`: an
    /// agent's context window is the scarce resource, and it can read on with `offset` or `tail`.
    pub const MCP_OUTPUT_MAX_BYTES: usize = 64 * 1024, "64 KiB";
    /// Largest server answer one MCP tool call reads (a query page, a listing), in bytes; a
    /// larger one fails the call with `op.cap_exceeded` asking for a smaller `limit`, so one
    /// call cannot flood the agent or the MCP server's memory.
    pub const MCP_ANSWER_MAX_BYTES: usize = 4 * 1024 * 1024, "4 MiB";
    /// Documents per page of the MCP `documents_query` tool when it names no `limit`: enough to
    /// see a table's shape, small enough for an agent's context.
    pub const MCP_QUERY_DEFAULT_LIMIT: usize = 100, "100";
    /// Log records the MCP `sandboxes_logs` tool reads when it names no `tail`: the recent
    /// output an agent usually wants, well inside `MCP_OUTPUT_MAX_BYTES` for ordinary lines.
    pub const MCP_LOGS_DEFAULT_TAIL: usize = 200, "200";
    /// Port Chromium's DevTools endpoint listens on inside a browser service's sandbox (its own
    /// loopback only): the conventional remote-debugging port.
    pub const BROWSER_DEVTOOLS_PORT: u16 = 9222, "9222";
    /// The image a browser service runs when its spec names none, as `nimbus image
    /// build-browser` stores it: the Debian suite, then the recipe revision (bumped whenever the
    /// recipe changes, so an image built by an older Nimbus is never taken for the current one).
    pub const BROWSER_IMAGE_REFERENCE: &str = "nimbus/browser:bookworm-1", "nimbus/browser:bookworm-1";
    /// How often a starting browser service asks Chromium's DevTools endpoint whether it is up,
    /// in ms: Chromium answers within a second or two of starting, and a session waits on it.
    pub const BROWSER_PROBE_INTERVAL_MS: u64 = 200, "200 ms";
    /// Memory of a browser service's sandbox when its spec names none: headless Chromium with a
    /// few pages open fits, and one page cannot take the host down.
    pub const BROWSER_DEFAULT_MEMORY_BYTES: u64 = 1024 * 1024 * 1024, "1 GiB";
    /// Processes of a browser service's sandbox when its spec names none: Chromium runs a
    /// browser, a GPU/utility set and one renderer per site, each with many threads.
    pub const BROWSER_DEFAULT_PIDS: u32 = 1024, "1024";
    /// Largest DevTools message the `cdp` channel relays either way, in bytes (a full-page
    /// screenshot or PDF arrives as one base64 message); a larger one ends the socket.
    pub const BROWSER_CDP_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024, "64 MiB";
    /// `cdp` sockets one session may hold at once: each is its own DevTools connection.
    pub const BROWSER_CDP_MAX_SOCKETS_PER_SESSION: usize = 4, "4";
    /// Pages one browser session may hold at once (`page/open`, `Target.createTarget`): each is a
    /// renderer's memory in the shared service.
    pub const BROWSER_MAX_PAGES_PER_SESSION: usize = 32, "32";
    /// How long a page operation waits when its body names no `timeoutMs`, in ms: a page that
    /// loads slower than this is rarely one an agent should wait on.
    pub const BROWSER_DEFAULT_TIMEOUT_MS: u64 = 30_000, "30 s";
    /// Longest `timeoutMs` a page operation accepts, in ms.
    pub const BROWSER_MAX_TIMEOUT_MS: u64 = 120_000, "120 s";
    /// Longest page text, snapshot or evaluation result a page operation returns, in bytes; the
    /// rest is cut and the answer says `truncated`.
    pub const BROWSER_MAX_TEXT_BYTES: usize = 1024 * 1024, "1 MiB";
    /// Largest screenshot or PDF a page operation returns, in bytes (decoded).
    pub const BROWSER_MAX_CAPTURE_BYTES: usize = 32 * 1024 * 1024, "32 MiB";
    /// Client commands one `cdp` socket may have in flight (sent to Chromium or held behind a
    /// check) before further ones are refused: DevTools clients wait for few replies at once,
    /// and every pending command holds an entry in the proxy's id map.
    pub const BROWSER_CDP_MAX_PENDING: usize = 10_000, "10000";
    /// Targets, sessions and windows one `cdp` socket tracks at most: beyond it the oldest target
    /// or window is forgotten (a later command naming it asks Chromium again) and new sessions
    /// are refused (a new auto-attachment is released as if foreign).
    pub const BROWSER_CDP_MAX_TRACKED: usize = 10_000, "10000";
    /// Width of a browser session's pages when its open names no viewport, in CSS pixels:
    /// Playwright's default, a common laptop screen.
    pub const BROWSER_DEFAULT_VIEWPORT_WIDTH: u32 = 1280, "1280";
    /// Height of a browser session's pages when its open names no viewport, in CSS pixels.
    pub const BROWSER_DEFAULT_VIEWPORT_HEIGHT: u32 = 720, "720";
    /// Largest side of a page's viewport, in CSS pixels (`viewport.width`/`height`).
    pub const BROWSER_MAX_VIEWPORT_PX: u32 = 8192, "8192";
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
