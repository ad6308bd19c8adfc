//! What this build offers, as one table: served by `GET /api/system/capabilities` and rendered
//! as `docs/current-capabilities.md`. Each row names the tests that prove it.

use serde_json::{Value, json};

/// Whether a capability works today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Works as the contract says.
    Available,
    /// Works, with the caveats in `notes`.
    AvailableWithCaveats,
    /// Not in this build.
    NotYet,
}

impl Status {
    /// The wire literal.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Available => "available",
            Status::AvailableWithCaveats => "available_with_caveats",
            Status::NotYet => "not_yet",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Capability {
    /// Product area.
    pub area: &'static str,
    /// What the capability is.
    pub capability: &'static str,
    /// Whether it works.
    pub status: Status,
    /// Caveats and scope.
    pub notes: &'static str,
    /// Tests that prove it (empty for `not_yet`): `blackbox/<file>.rs::<fn>` for the Rust
    /// black-box suite, `packages/nimbus/test/<file>.test.ts::<title>` for the SDK's Node tests,
    /// or a test program's path (`scripts/docs-run`).
    pub tests: &'static [&'static str],
}

/// Every capability row.
pub const CAPABILITIES: &[Capability] = &[
    Capability {
        area: "storage",
        capability: "tenants",
        status: Status::Available,
        notes: "create, list, delete; one SQLite file per tenant, opened on first use; a broken file fails only its tenant; `_`-prefixed ids reserved; a deletion a crash cut short is finished at the next start (its sessions, services and sandboxes removed, its database file never reused by a new tenant with its id)",
        tests: &[
            "blackbox/tenants.rs::tenant_lifecycle_and_id_rules",
            "blackbox/faults.rs::a_broken_tenant_file_fails_alone",
            "blackbox/tenants.rs::a_new_tenant_never_inherits_what_a_crashed_deletion_left",
        ],
    },
    Capability {
        area: "storage",
        capability: "documents",
        status: Status::Available,
        notes: "insert, get, shallow patch, delete, keyset-paginated list; durable before 2xx",
        tests: &["blackbox/documents.rs::crud_codes_and_bodies", "blackbox/documents.rs::list_pages_while_writing"],
    },
    Capability {
        area: "storage",
        capability: "queries",
        status: Status::Available,
        notes: "eq, neq, gt, gte, lt, lte, in; dot paths; ordering with `_id` tie-break; limit",
        tests: &[
            "blackbox/query.rs::each_operator_on_mixed_documents",
            "blackbox/query.rs::ordering_ties_and_missing_fields",
        ],
    },
    Capability {
        area: "storage",
        capability: "paginated queries",
        status: Status::Available,
        notes: "opaque keyset cursors bound to the query, stable under concurrent writes",
        tests: &["blackbox/query.rs::paginated_query_while_writing"],
    },
    Capability {
        area: "storage",
        capability: "schemas and indexes",
        status: Status::Available,
        notes: "validation of all existing documents on put; single and composite indexes, backfilled, used for equality, `in` and ranges",
        tests: &[
            "blackbox/schema.rs::schema_validation_and_index_backfill",
            "blackbox/schema.rs::indexed_answers_equal_full_scans",
        ],
    },
    Capability {
        area: "storage",
        capability: "access policies",
        status: Status::AvailableWithCaveats,
        notes: "evaluated for the anonymous principal: rules needing authentication or principal claims deny with 403",
        tests: &["blackbox/schema.rs::access_policy_denies_anonymous"],
    },
    Capability {
        area: "storage",
        capability: "journal and bootstrap",
        status: Status::Available,
        notes: "one record per committed transaction with before/after images and SHA-256 integrity; whole history kept (floor 0)",
        tests: &["blackbox/journal.rs::journal_pages_and_bootstrap"],
    },
    Capability {
        area: "storage",
        capability: "durability",
        status: Status::Available,
        notes: "WAL + synchronous=FULL, group commit; acknowledged writes survive kill -9 and a simulated power cut that drops every unsynced write (an LD_PRELOAD undo log); the image store's index is replaced durably; a batch SQLite rolls back (full disk) fails as a whole and the writer recovers when space returns",
        tests: &[
            "blackbox/crash.rs::acknowledged_writes_survive_kill_9",
            "blackbox/powercut.rs::acknowledged_writes_survive_a_power_cut",
            "blackbox/powercut.rs::a_power_cut_drops_exactly_the_writes_no_sync_covers",
            "blackbox/restart.rs::data_survives_restart",
            "blackbox/faults.rs::a_full_disk_fails_whole_batches_and_the_writer_recovers_when_space_returns",
        ],
    },
    Capability {
        area: "server",
        capability: "private files on the host",
        status: Status::Available,
        notes: "data dir 0700; databases with their WAL and SHM, lock, token and discovery files 0600; looser modes from older versions tightened at start",
        tests: &[
            "blackbox/permissions.rs::data_dir_databases_and_token_are_private",
            "blackbox/permissions.rs::looser_modes_of_an_older_version_are_tightened_at_start",
        ],
    },
    Capability {
        area: "server",
        capability: "keep-alive after early answers",
        status: Status::Available,
        notes: "a request answered before its body was read keeps its connection (rest up to 64 KiB drained) or gets `Connection: close` and a lingering read, on every route",
        tests: &[
            "blackbox/keepalive.rs::early_answers_leave_the_connection_usable_on_every_route_family",
            "blackbox/keepalive.rs::one_connection_survives_a_run_of_early_answers",
        ],
    },
    Capability {
        area: "server",
        capability: "auth and origin policy",
        status: Status::Available,
        notes: "admin token file, bearer or header, browser cookie exchange, rotation; loopback-only origins",
        tests: &["blackbox/auth.rs::token_and_origin_rules", "blackbox/auth.rs::rotation_revokes_old_token"],
    },
    Capability {
        area: "server",
        capability: "error envelope and catalog",
        status: Status::Available,
        notes: "every error is an envelope with a catalog code; `GET /errors` and docs/errors.md generated from one enum",
        tests: &[
            "blackbox/errors.rs::every_route_enveloped_on_bad_input",
            "blackbox/errors.rs::errors_route_serves_the_catalog",
        ],
    },
    Capability {
        area: "server",
        capability: "docs and llms.txt",
        status: Status::Available,
        notes: "docs pages compiled into the binary and served; llms.txt and llms-full.txt generated by scripts/gen-llms",
        tests: &["blackbox/system.rs::docs_and_open_routes"],
    },
    Capability {
        area: "realtime",
        capability: "query subscriptions",
        status: Status::AvailableWithCaveats,
        notes: "GET /ws (nimbus.v2): live queries with precise invalidation, coalescing and heartbeats; `realtime/stats` reports the server's commit-to-socket-write latency (p50, p99)",
        tests: &[
            "blackbox/realtime.rs::a_write_is_pushed_and_unsubscribe_stops_pushes",
            "blackbox/realtime.rs::invalidation_is_precise",
            "blackbox/realtime.rs::a_slow_consumer_blocks_neither_writes_nor_other_sockets",
            "blackbox/realtime.rs::two_hundred_subscriptions_on_one_socket_all_get_results",
        ],
    },
    Capability {
        area: "realtime",
        capability: "protocol conformance, heartbeats and no silent drops",
        status: Status::Available,
        notes: "fatal codes with Close 1008, hello timeout, 1009, 4408, 4404; drops for backpressure, results over 16 MiB and access policy changes each reported with `session.subscription_error`",
        tests: &[
            "blackbox/realtime.rs::the_handshake_echoes_the_subprotocol_and_violations_are_fatal_with_1008",
            "blackbox/realtime.rs::no_client_hello_in_time_is_a_retryable_fatal_error",
            "blackbox/realtime.rs::an_inbound_frame_over_1_mib_closes_with_1009",
            "blackbox/realtime.rs::a_silent_peer_is_closed_with_4408",
            "blackbox/realtime.rs::a_socket_over_16_mib_for_the_grace_period_loses_its_subscriptions_with_notice",
            "blackbox/realtime.rs::a_result_over_16_mib_is_dropped_with_result_too_large",
            "blackbox/realtime.rs::a_policy_change_drops_that_tables_subscriptions",
        ],
    },
    Capability {
        area: "realtime",
        capability: "sockets without headers",
        status: Status::Available,
        notes: "for browsers and built-in WebSocket clients (Node >= 22, Deno): an upgrade of `/ws` or `/convex/{t}/ws` without any credential authenticates with a first `Authenticate` frame (Convex's shape, admin token only; anything else, a wrong token or none within 10 s is `auth.unauthorized` with Close 1008, the origin policy applies at the upgrade, the tenant's existence is checked only after the token); the tenant may be named by `?tenant=`",
        tests: &[
            "blackbox/realtime.rs::a_socket_without_headers_authenticates_with_its_first_frame",
            "blackbox/realtime.rs::a_socket_without_headers_is_closed_unless_its_first_frame_authenticates",
            "blackbox/realtime.rs::no_authenticate_frame_in_time_closes_the_socket",
            "blackbox/realtime.rs::the_tenant_may_be_named_by_tenant_in_the_query_string",
            "blackbox/realtime.rs::the_upgrade_checks_run_in_order_as_envelopes",
        ],
    },
    Capability {
        area: "scheduling",
        capability: "jobs and crons",
        status: Status::AvailableWithCaveats,
        notes: "data targets (insert/update/delete) and function targets (mutations effectively once across crashes, actions at least once); a job's result value is its target's (an insert's new id); a job's journal record carries its execution id",
        tests: &[
            "blackbox/scheduling.rs::a_due_job_runs_exactly_once_and_reports_its_result",
            "blackbox/scheduling.rs::crons_fire_on_an_interval_and_record_runs",
            "blackbox/scheduling.rs::crashes_around_a_job_apply_it_exactly_once",
            "blackbox/functions.rs::jobs_scheduled_by_functions_run_their_function_targets",
            "blackbox/functions.rs::a_scheduled_mutation_applies_exactly_once_across_crashes",
            "blackbox/functions.rs::job_results_and_journal_records_name_their_execution",
            "blackbox/functions.rs::a_deploy_warns_about_jobs_and_crons_whose_function_is_gone",
            "blackbox/functions.rs::an_action_job_does_not_hold_up_later_jobs",
        ],
    },
    Capability {
        area: "sdk",
        capability: "TypeScript SDK `@nimbus/nimbus`: data, realtime, scheduling",
        status: Status::Available,
        notes: "packages/nimbus: ESM with types, Node >= 20, `ws` its only dependency; discovery, typed errors generated from the catalog, subscriptions that reconnect and resubscribe",
        tests: &[
            "packages/nimbus/test/client.test.ts::discovery: the running server's server.json and the local token file",
            "packages/nimbus/test/client.test.ts::the generated error classes match the server's GET /errors",
            "packages/nimbus/test/data.test.ts::documents: insert, get, patch, list with cursors, delete",
            "packages/nimbus/test/data.test.ts::paginate and paginateAll walk a query in keyset pages",
            "packages/nimbus/test/realtime.test.ts::a subscription reconnects and resubscribes after the server restarts",
            "packages/nimbus/test/schedule.test.ts::crons: create, get, list, update, runs, delete",
        ],
    },
    Capability {
        area: "sdk",
        capability: "TypeScript SDK `@nimbus/nimbus`: images, sandboxes, services, sessions",
        status: Status::Available,
        notes: "stdio and process attachments read the NDJSON stream and write through the input and resize routes",
        tests: &[
            "packages/nimbus/test/sandboxes.test.ts::a sandbox runs its command, ends with its exit code and keeps its logs",
            "packages/nimbus/test/services.test.ts::a service starts until ready, restarts on a fresh sandbox, stops, and is force-deleted",
            "packages/nimbus/test/sessions.test.ts::exec streams a process: attach, write, eof, wait for the exit",
            "packages/nimbus/test/sessions.test.ts::files: write, read, list, stat, delete, and paths confined to the sandbox",
            "packages/nimbus/test/images.test.ts::an imported archive is stored under its normalized name, idempotently, and listed",
        ],
    },
    Capability {
        area: "cli",
        capability: "CLI over the HTTP API: `nimbus sandbox`, `tenant`, `db`, `image pull`",
        status: Status::Available,
        notes: "through the server `server.json` names (or `--url`); `sandbox run IMAGE -- CMD` streams the output and exits with the workload's code (`--rm`, `-d`, `--label`, `--env`, `--cpus`, `--memory 512m`, `--name`; Ctrl-C stops the sandbox, and `--rm` removes it), `ls`, `get`, `stop`, `rm`, `logs [-f]`, `exec ID -- CMD` through a session (`-i` sends stdin, `-t` a pty with raw mode and window size forwarded), `cp ID:PATH LOCAL` and `cp LOCAL ID:PATH` through the files channel (directories recursively, `-` for stdin or stdout); `image pull REF` through `POST /api/images/pull` (NDJSON progress drawn as a bar); `tenant ls`, `create`, `rm`; `db insert`, `get`, `query`, `rm`; `--json` prints the server's answer; errors as `error[code]: message` with the server's remediation, or its envelope with `--json`",
        tests: &[
            "blackbox/cli_resources.rs::sandbox_run_passes_the_exit_code_through_and_rm_leaves_nothing",
            "blackbox/cli_resources.rs::sandbox_lifecycle_exec_logs_and_errors",
            "blackbox/cli_resources.rs::tenants_and_documents_through_the_cli",
            "blackbox/cli_resources.rs::ctrl_c_on_an_attached_run_stops_the_sandbox_and_rm_removes_it",
            "blackbox/cli_transfer.rs::sandbox_cp_copies_files_and_directories_both_ways",
            "blackbox/cli_transfer.rs::sandbox_exec_sends_stdin_and_allocates_a_tty",
            "blackbox/cli_transfer.rs::sandbox_exec_it_from_a_terminal_restores_it",
            "blackbox/cli_transfer.rs::image_pull_through_the_server_with_progress",
            "scripts/docs-run",
        ],
    },
    Capability {
        area: "api",
        capability: "OpenAPI 3.1 document generated from the route table: `GET /openapi.json`, `docs/openapi.json`",
        status: Status::AvailableWithCaveats,
        notes: "the router and the document are built from one table, so every route is in it; request bodies are the wire types' JSON Schemas (schemars), every error answer the catalog envelope with its codes enumerated; typed success answers (health, tenants, documents, queries, created ids, job ids, token rotation, shutdown) carry their schemas, the others (sandboxes, services, sessions, functions, schedules, images) are described as JSON of any shape, their fields in the docs pages; the committed copy is checked fresh and passes `openapi-spec-validator` in the test suite",
        tests: &["blackbox/openapi.rs::the_document_is_served_committed_and_lists_every_route", "scripts/test"],
    },
    Capability {
        area: "api",
        capability: "every route fuzzed from the OpenAPI document (schemathesis)",
        status: Status::Available,
        notes: "`scripts/fuzz N` runs schemathesis (coverage and fuzzing phases, N examples per operation) against a live server in its own network namespace, aimed at real resources (a document, a running sandbox with a session and a process, a service, a cron, a job, a secret, deployed functions); it fails on any 5xx that is not a catalogued retryable envelope, any error answer that is not a catalog envelope, and any status, content type or body the document does not allow, and checks the server is alive at the end; the test suite runs N = 5, `scripts/fuzz` alone the long campaign (docs/performance.md)",
        tests: &["scripts/fuzz"],
    },
    Capability {
        area: "docs",
        capability: "docs that run",
        status: Status::Available,
        notes: "every curl and SDK example in docs/ is executed against a spawned server by the test suite; SDK examples are type-checked",
        tests: &["scripts/docs-run"],
    },
    Capability {
        area: "mcp",
        capability: "MCP server over streamable HTTP: `/mcp`",
        status: Status::Available,
        notes: "rmcp (the official Rust SDK); behind the admin token and the origin policy like every API route; stateless, one JSON answer per POST (no session, no SSE stream); protocol version negotiated as the specification says; tools answered in process by the server's own router",
        tests: &[
            "packages/nimbus/test/mcp.test.ts::http: initialize, tools with schemas and annotations, resources",
            "packages/nimbus/test/mcp.test.ts::http: protocol version negotiation answers a supported version",
            "packages/nimbus/test/mcp.test.ts::http: /mcp needs the admin token and applies the origin policy",
        ],
    },
    Capability {
        area: "mcp",
        capability: "MCP server over stdio: `nimbus mcp`",
        status: Status::Available,
        notes: "finds the server and its token per request as the SDK does (`--endpoint`, `NIMBUS_ENDPOINT`, `server.json`; `--token`, `NIMBUS_TOKEN`, `NIMBUS_BEARER_TOKEN`, the token file); stdout carries MCP messages only",
        tests: &[
            "packages/nimbus/test/mcp.test.ts::stdio: initialize, tools with schemas and annotations, resources",
            "packages/nimbus/test/mcp.test.ts::stdio: --endpoint and --token are used instead of discovery",
        ],
    },
    Capability {
        area: "mcp",
        capability: "MCP tools and resources",
        status: Status::Available,
        notes: "24 tools with input and output JSON Schemas and read-only/destructive annotations: tenants, documents and keyset queries, schemas, functions, jobs, sandboxes (create with limits and labels, list, get, stop, delete, logs), `sandbox_exec` and sandbox files through a session closed after the call; output bounded at 64 KiB with `truncated`; a failure is a tool error with the catalog code, message and remediation; llms.txt, every docs page, the error catalog and the capabilities table as resources",
        tests: &[
            "packages/nimbus/test/mcp.test.ts::http: tenants, documents, queries, schemas, functions and jobs",
            "packages/nimbus/test/mcp.test.ts::http: a sandbox round trip (create, exec, files, logs, stop, delete)",
            "packages/nimbus/test/mcp.test.ts::stdio: a sandbox round trip (create, exec, files, logs, stop, delete)",
            "packages/nimbus/test/mcp.test.ts::http: a failing call is a tool error with its catalog code and remediation",
            "packages/nimbus/test/mcp.test.ts::http: every tool is called",
            "packages/nimbus/test/mcp.test.ts::stdio: every tool is called",
        ],
    },
    Capability {
        area: "functions",
        capability: "JS/TS queries, mutations, actions",
        status: Status::Available,
        notes: "QuickJS-ng isolates (rquickjs) on dedicated worker threads; TypeScript by type erasure (swc strip-only); deploy with dryRun, warnings and file:line:column errors; memory, CPU and wall-clock limits; mutations run on the tenant's writer (serializable, never conflicting); per-tenant isolate pools; the Convex authoring forms (filter and withIndex builders, one-argument ids, paginatedQuery, returns, v.id, ctx.auth, schema.ts)",
        tests: &[
            "blackbox/functions.rs::typescript_modules_deploy_list_and_every_kind_calls",
            "blackbox/functions.rs::deploy_errors_carry_file_line_and_column",
            "blackbox/functions.rs::concurrent_increments_are_serializable",
            "blackbox/functions.rs::a_throwing_mutation_leaves_no_writes_and_no_jobs",
            "blackbox/functions.rs::internal_functions_and_bad_input_answer_with_envelopes",
            "blackbox/functions.rs::a_runaway_loop_times_out_while_another_tenant_is_served",
            "blackbox/functions.rs::globals_and_module_state_never_cross_tenants",
            "blackbox/functions.rs::the_convex_authoring_forms_work",
            "blackbox/functions.rs::the_wall_clock_limit_ends_a_waiting_action",
            "blackbox/functions.rs::a_deleted_tenants_functions_never_reach_a_new_tenant_with_its_id",
        ],
    },
    Capability {
        area: "functions",
        capability: "function subscriptions",
        status: Status::Available,
        notes: "`functions.v1` over /ws: a query function re-runs only when a commit touches its last run's read set, or after a redeploy; `function_removed` when a redeploy removes it; counters in `realtime/stats`",
        tests: &[
            "blackbox/functions.rs::function_subscriptions_rerun_only_when_their_read_set_changes",
            "packages/nimbus/test/functions.test.ts::a function subscription yields the query's value again after a mutation changes its data",
        ],
    },
    Capability {
        area: "functions",
        capability: "deployment URL and Convex's HTTP client",
        status: Status::Available,
        notes: "`/convex/{t}/query|mutation|action`, `/query/paginated`, `/schedule/*`, `/ws` with `subscribe_named`, and Convex's `/api/query|mutation|action` protocol (560 failures, `errorData` from a thrown ConvexError); `convex_encoded_json` args: `$integer` within 2^53 and finite `$float` decoded, `$bytes` refused",
        tests: &[
            "blackbox/convex.rs::deployment_routes_answer_bare_values_and_refuse_other_kinds",
            "blackbox/convex.rs::the_paginated_route_passes_pagination_opts_and_maps_the_page",
            "blackbox/convex.rs::schedule_routes_create_and_cancel_function_jobs",
            "blackbox/convex.rs::convex_http_protocol_answers_as_convex_does",
            "blackbox/convex.rs::subscribe_named_over_the_deployment_socket_pushes_function_values",
            "packages/nimbus/test/functions.test.ts::ConvexHttpClient calls queries, mutations and actions through /convex/{tenant}/api/*",
            "packages/nimbus/test/functions.test.ts::ConvexHttpClient: a thrown ConvexError arrives as ConvexError.data; other failures as Error",
        ],
    },
    Capability {
        area: "functions",
        capability: "SDK, authoring types and CLI",
        status: Status::Available,
        notes: "`functions.deploy/list/call` and function subscriptions in `@nimbus/nimbus`; `@nimbus/nimbus/server` and `/values` declarations shipped for authors; `nimbus functions deploy DIR` and `nimbus functions call`",
        tests: &[
            "packages/nimbus/test/functions.test.ts::functions.call runs queries, mutations and actions",
            "packages/nimbus/test/authoring.test.ts::the fixture function modules type-check against the shipped declarations; wrong uses do not",
            "blackbox/functions_cli.rs::deploy_a_directory_then_call_a_query_and_a_mutation",
            "blackbox/functions_cli.rs::failures_print_the_code_and_exit_non_zero",
        ],
    },
    Capability {
        area: "sandboxes",
        capability: "image store: pull, import, list, remove",
        status: Status::Available,
        notes: "pulls over the OCI distribution protocol (anonymous or operator credentials; plain http only for loopback registries; one shared pull per image), on a sandbox create or ahead of it through `POST /api/images/pull` (JSON, or NDJSON progress events with `Accept: application/x-ndjson`); OCI-layout and docker-archive tars (gzip allowed) through `POST /api/images/import`; every blob digest verified; each image unpacked once with whiteouts applied and every path confined; layers, images and imported archives bounded as they unpack (expanded bytes with sparse holes, entries, tar metadata; 400 `op.cap_exceeded` naming the bound), a failed unpack leaving no root and recording nothing; `nimbus image import|pull|list|rm`; an image in use cannot be removed",
        tests: &[
            "blackbox/registry.rs::registry_pull_resolves_once_and_reports_missing",
            "blackbox/registry.rs::a_layer_bomb_fails_sandbox_creation_with_its_limit_and_leaves_nothing",
            "blackbox/registry.rs::a_decompression_bomb_fails_its_pull_and_a_good_image_follows",
            "blackbox/registry_auth.rs::pulls_use_operator_credentials",
            "blackbox/images.rs::images_import_list_and_remove",
            "blackbox/images.rs::image_commands_work_offline_and_through_the_server",
            "blackbox/images.rs::bomb_archives_are_refused_with_their_limit_and_leave_nothing",
            "blackbox/cli_transfer.rs::image_pull_through_the_server_with_progress",
            "blackbox/sandboxes.rs::sandbox_runs_from_a_pulled_image_and_reports_its_exit",
        ],
    },
    Capability {
        area: "sandboxes",
        capability: "sandbox API: create, get, list, stop, delete, logs, waitFor",
        status: Status::Available,
        notes: "strict bodies with the bad field named; argv and env redacted; operator maxima and tenant quotas; label and state filters with pagination; long-poll waits; NDJSON logs with tail and follow; tenant fencing",
        tests: &[
            "blackbox/sandboxes.rs::sandbox_runs_from_a_pulled_image_and_reports_its_exit",
            "blackbox/sandboxes.rs::sandbox_lifecycle_listing_waiting_stop_and_fencing",
            "blackbox/sandboxes.rs::sandbox_bad_specs_are_rejected_with_the_field_named",
            "blackbox/sandboxes.rs::sandbox_logs_follow_until_exit_and_carry_binary_output",
            "blackbox/sandboxes.rs::sandbox_tenant_quota_is_enforced",
        ],
    },
    Capability {
        area: "sandboxes",
        capability: "container backend",
        status: Status::AvailableWithCaveats,
        notes: "Linux hosts run as root with cgroups; libcontainer inside a per-sandbox supervisor; user, pid, mount, uts, ipc, cgroup and network namespaces (only `lo`, no routes); each sandbox's ids map onto a host range of its own (`--userns-pool`); overlay root over the shared image, mounted idmapped; seccomp on every process (PID 1, main, exec, probes; x32 and i386 refused), non-dumpable PID 1, no_new_privs, minimal capabilities; memory, pids, CPU and disk limits (the writable root on a sparse ext4 image per sandbox; a free-space reserve on the data directory)",
        tests: &[
            "blackbox/sandboxes.rs::sandbox_network_has_only_loopback_and_cannot_reach_the_host",
            "blackbox/sandboxes.rs::sandbox_limits_contain_memory_hogs_and_fork_bombs",
            "blackbox/sandboxes.rs::sandboxes_from_one_image_do_not_see_each_others_writes",
            "blackbox/sandboxes.rs::sandbox_process_is_confined",
            "blackbox/syscalls.rs::every_process_of_a_sandbox_is_filtered_and_pid_1_is_sealed",
            "blackbox/disk.rs::a_sandbox_disk_stops_at_its_limit_and_the_host_grows_by_at_most_it",
            "blackbox/disk.rs::a_data_dir_short_of_its_reserve_refuses_new_sandboxes",
            "blackbox/userns.rs::a_sandbox_root_is_an_unprivileged_host_id_of_its_own_range",
            "container.rs::exit_codes_and_signals",
            "container.rs::stdin_exec_and_root_dir",
        ],
    },
    Capability {
        area: "sandboxes",
        capability: "inbound: the ports route",
        status: Status::Available,
        notes: "`ANY /api/tenants/{t}/sandboxes/{id}/ports/{port}/{path…}`: HTTP streamed both ways and WebSocket upgrades into a port on the sandbox's loopback, over a socket its supervisor opens inside the namespace, for services' sandboxes too; the admin token is never forwarded; 502 `sandbox.port_unreachable` when nothing (or no HTTP) answers; SDK `sandboxes.fetchPort` and `portUrl`; `status.endpoints` of a running sandbox (GET of one sandbox, and GET of a service for its current sandbox) lists the TCP ports it listens on, each with its route",
        tests: &[
            "blackbox/ports.rs::http_and_websocket_reach_a_sandbox_port_and_garbage_is_refused",
            "blackbox/services.rs::sandbox_service_runs_with_probes_and_owns_its_sandbox",
            "packages/nimbus/test/sandboxes.test.ts::fetchPort reaches a server inside the sandbox: its answers pass through, Nimbus's refusals throw",
            "packages/nimbus/test/network.test.ts::status.endpoints lists the ports a sandbox listens on, never the proxy's",
        ],
    },
    Capability {
        area: "sandboxes",
        capability: "egress: allow-lists through the Nimbus egress proxy",
        status: Status::Available,
        notes: "`spec.network.egress.allow` (names, `*.` wildcards, IP literals; ports default 80 and 443), changed live with generation-checked `PUT …/network`; a proxy listener on each sandbox's loopback (:3128) hands connections to the server's proxy, and the standard proxy variables point at it; `CONNECT` tunnels (the ClientHello's SNI must name the host) and plain-HTTP proxying; names resolved by the proxy, internal addresses refused unless `--egress-allow-internal`; the operator's ceiling `--egress-policy` (403 `sandbox.egress_beyond_policy`); refusals are 403 `sandbox.egress_refused` saying how to allow the host; `localhost` and the sandbox's own names stay inside it for clients that ignore NO_PROXY",
        tests: &[
            "blackbox/egress.rs::allowed_hosts_are_reached_through_the_proxy_and_everything_else_is_refused_and_logged",
            "blackbox/egress.rs::internal_addresses_and_the_operators_ceiling_are_enforced",
            "blackbox/sandboxes.rs::sandbox_names_localhost_and_itself_as_other_runtimes_do",
            "blackbox/egress.rs::a_sandbox_keeps_its_way_out_across_a_server_restart_and_hears_503_while_none_runs",
            "packages/nimbus/test/network.test.ts::egress: rules are echoed, a refused request is logged and followed, updates are generation-checked",
        ],
    },
    Capability {
        area: "sandboxes",
        capability: "egress credentials and tenant secrets",
        status: Status::Available,
        notes: "`spec.network.egress.credentials`: for a credential host the proxy terminates TLS with the server's own CA (`<data-dir>/egress-ca`, added to every sandbox's CA bundle and `SSL_CERT_FILE` & co.), adds `header: prefix + secret` and re-encrypts with verified TLS (`--egress-upstream-ca` adds roots); write-only tenant secrets (`PUT|DELETE /api/tenants/{t}/secrets/{name}`, `GET …/secrets` lists names and times); the value is in no environment, file, log or answer the sandbox or the API shows. HTTP/1.1 only inside intercepted tunnels",
        tests: &[
            "blackbox/egress.rs::allowed_hosts_are_reached_through_the_proxy_and_everything_else_is_refused_and_logged",
            "blackbox/secrets.rs::secrets_are_write_only_and_follow_the_rules",
            "blackbox/secrets.rs::a_tenant_holds_at_most_100_secrets",
            "blackbox/secrets.rs::secrets_survive_a_restart_and_go_with_their_tenant",
            "packages/nimbus/test/secrets.test.ts::secrets: put creates and replaces, list shows no value, delete removes",
        ],
    },
    Capability {
        area: "sandboxes",
        capability: "egress decision log",
        status: Status::AvailableWithCaveats,
        notes: "`GET …/sandboxes/{id}/egress` (NDJSON, `tail`, `follow`): every tunnel and request with host, port, address, decision, rule or reason (`not_allowed`, `internal_address`, `sni_mismatch`, `not_tls`, `ceiling`, `secret_missing`, …), credential name, status and bytes each way; the last 1000 entries per sandbox, in the server's memory (empty after a restart)",
        tests: &[
            "blackbox/egress.rs::allowed_hosts_are_reached_through_the_proxy_and_everything_else_is_refused_and_logged",
        ],
    },
    Capability {
        area: "sandboxes",
        capability: "names inside",
        status: Status::Available,
        notes: "every sandbox gets `/etc/hostname` (its host name: the id's first 63 characters) and `/etc/hosts` naming `localhost` on 127.0.0.1 and ::1 and itself on 127.0.0.1; its root may edit them",
        tests: &["blackbox/sandboxes.rs::sandbox_names_localhost_and_itself_as_other_runtimes_do"],
    },
    Capability {
        area: "sandboxes",
        capability: "restarts: re-adoption and cleanup",
        status: Status::Available,
        notes: "sandboxes outlive the server under their supervisors and are re-adopted before serving; a sandbox whose supervisor died is `server_restart_lost` and its processes, mounts and cgroups are removed",
        tests: &["blackbox/sandboxes.rs::sandboxes_outlive_a_server_restart_and_lost_ones_are_cleaned_up"],
    },
    Capability {
        area: "sandboxes",
        capability: "stuck and orphaned supervisors",
        status: Status::Available,
        notes: "every server-to-supervisor call has a deadline (a stuck supervisor answers 503 `sandbox.unresponsive`; stop and delete kill it and clean up); a supervisor whose state directory disappears tears its sandbox down and exits; `nimbus start --stop-sandboxes-on-exit` stops every sandbox at shutdown",
        tests: &[
            "blackbox/supervisors.rs::a_stuck_supervisor_never_holds_a_call_a_stop_or_a_delete",
            "blackbox/supervisors.rs::a_supervisor_whose_state_directory_disappears_tears_its_sandbox_down",
            "blackbox/supervisors.rs::stop_sandboxes_on_exit_stops_every_sandbox_at_shutdown",
        ],
    },
    Capability {
        area: "sandboxes",
        capability: "krun microVM backend",
        status: Status::NotYet,
        notes: "no usable microVM support on this host; `backend: \"krun\"` fails closed with 501 `sandbox.backend_unavailable` naming the reason (checked in blackbox/sandboxes.rs)",
        tests: &[],
    },
    Capability {
        area: "sessions",
        capability: "leases: open, get, list, close, renew, expiry",
        status: Status::Available,
        notes: "TTL 15 min by default, clamped to 1 h, never extended by use; expiry on every read and by a sweeper every 250 ms; close reasons incl. target_stopped, service_force_deleted, tenant_deleted; records survive restarts",
        tests: &[
            "blackbox/sessions.rs::session_errors_and_lease_rules",
            "blackbox/sessions.rs::session_expiry_closes_streams_and_kills_its_processes",
            "blackbox/sessions.rs::sessions_survive_a_server_restart_unless_their_target_is_lost",
        ],
    },
    Capability {
        area: "sessions",
        capability: "stdio channel: NDJSON stream, WebSocket attach, input, resize",
        status: Status::Available,
        notes: "64 KiB replay on attach; one live attachment per channel (`replaced`); a client that stops reading gets `closed` `backpressure` once 64 KiB is pending, never a silent drop; heartbeats after 15 s",
        tests: &[
            "blackbox/sessions.rs::a_stdio_client_that_stops_reading_is_told_backpressure",
            "blackbox/sessions.rs::session_quickstart_streams_the_main_process_and_writes_its_stdin",
            "blackbox/sessions.rs::session_websocket_carries_frames_input_and_errors",
            "container.rs::attach_to_main_replays_then_streams_then_exits",
            "container.rs::a_stalled_attachment_never_blocks_the_process",
        ],
    },
    Capability {
        area: "sessions",
        capability: "exec channel: processes, streams, signals, ttys, wait form",
        status: Status::Available,
        notes: "runs in the sandbox's namespaces and cgroup; pipes or a pty; 127/126 for commands that cannot run; timeouts; processes die with their session",
        tests: &[
            "blackbox/sessions.rs::session_exec_runs_commands_with_exit_codes_ttys_signals_and_timeouts",
            "container.rs::spawn_with_pipes_tty_and_missing_commands",
            "container.rs::signals_timeouts_stdin_and_owners",
        ],
    },
    Capability {
        area: "sessions",
        capability: "files channel: read, write, delete, list, stat",
        status: Status::Available,
        notes: "binary-safe, 64 MiB per request with ranges; confined with openat2 RESOLVE_IN_ROOT (component walk fallback): `..`, absolute symlinks, loops, /proc/self/root and symlinked directories never leave the sandbox",
        tests: &[
            "blackbox/sessions.rs::session_files_never_reach_outside_the_sandbox",
            "blackbox/sessions.rs::an_upload_into_a_sandbox_that_ends_meanwhile_fails_and_a_stalled_one_times_out",
        ],
    },
    Capability {
        area: "services",
        capability: "definitions with generation preconditions",
        status: Status::Available,
        notes: "create, definition read, PUT and DELETE with generations (412 when stale), redaction, read-only static catalog (`--service-catalog`)",
        tests: &[
            "blackbox/services.rs::service_definitions_are_generation_checked",
            "blackbox/services.rs::static_catalog_services_are_read_only",
        ],
    },
    Capability {
        area: "services",
        capability: "sandbox-backed services: lifecycle, probes, restart policy",
        status: Status::Available,
        notes: "start, stop, restart (sync and fenced with replay); tcp, http and exec probes from inside the sandbox; on_failure/always with maxRestarts and backoff; waitFor; force delete; sandboxes owned by the service; survive restarts",
        tests: &[
            "blackbox/services.rs::sandbox_service_runs_with_probes_and_owns_its_sandbox",
            "blackbox/services.rs::crashing_service_is_restarted_until_max_restarts_then_fails",
            "blackbox/services.rs::running_service_survives_a_server_restart",
            "blackbox/services.rs::sessions_on_a_service_follow_it_and_its_force_delete",
            "container.rs::probes_run_inside_the_sandbox",
        ],
    },
    Capability {
        area: "services",
        capability: "external services: HTTP health loop",
        status: Status::Available,
        notes: "the server probes `GET <url><path>`; healthy/unhealthy after failureThreshold; http tested, https accepted",
        tests: &["blackbox/services.rs::external_service_health_follows_its_endpoint"],
    },
    Capability {
        area: "services",
        capability: "builtIn providers loadBalancer, serviceDiscovery, modelGateway",
        status: Status::NotYet,
        notes: "declared only: definitions validate and store; start/restart answer 501 `service.capability_unavailable`",
        tests: &[],
    },
    Capability {
        area: "browser",
        capability: "browser image (`nimbus image build-browser`)",
        status: Status::Available,
        notes: "Debian's chromium and fonts with mmdebstrap (the Debian archive only), one uncompressed OCI layer, imported as `nimbus/browser:bookworm-1`; idempotent, cached archive; never pulled from a registry",
        tests: &["blackbox/browser_image.rs::build_browser_stores_the_image_once_and_chromium_runs_from_it"],
    },
    Capability {
        area: "browser",
        capability: "builtIn `browser` service",
        status: Status::Available,
        notes: "headless Chromium in a sandbox (limits, deny-by-default egress through the proxy, `--no-sandbox` with the reason in security.md); ready when DevTools answers; restart policy (default on_failure: a killed Chromium is replaced, its sessions end); stop/delete like a sandbox-backed service",
        tests: &[
            "blackbox/browser.rs::browser_sessions_drive_pages_in_contexts_of_their_own",
            "blackbox/browser.rs::a_cdp_socket_sees_only_its_sessions_context_and_a_runaway_page_is_contained",
        ],
    },
    Capability {
        area: "browser",
        capability: "browser sessions: a context each, storage state",
        status: Status::Available,
        notes: "cookies, storage and pages never shared; the context is disposed on close/expiry; Playwright's `storageState` exported (`page/storageState`) and restored at the open",
        tests: &["blackbox/browser.rs::browser_sessions_drive_pages_in_contexts_of_their_own"],
    },
    Capability {
        area: "browser",
        capability: "`cdp` channel (Playwright connectOverCDP, Puppeteer connect)",
        status: Status::Available,
        notes: "raw DevTools over a session WebSocket, confined to the session's context (targets, sessions, contexts and browser-wide commands filtered both ways); 64 MiB messages, 4 sockets per session",
        tests: &["blackbox/browser.rs::a_cdp_socket_sees_only_its_sessions_context_and_a_runaway_page_is_contained"],
    },
    Capability {
        area: "browser",
        capability: "`page` channel (operations for agents)",
        status: Status::Available,
        notes: "open, goto, snapshot (accessibility text with refs), click, type, press, select, evaluate, text, screenshot, pdf, pages, close, storageState; catalogued `browser.*` errors; JavaScript dialogs are not handled (a page that opens one blocks until the timeout)",
        tests: &["blackbox/browser.rs::browser_sessions_drive_pages_in_contexts_of_their_own"],
    },
];

/// The table as `GET /api/system/capabilities` serves it.
pub fn capabilities_json(backends: [(&str, Result<(), String>); 2]) -> Value {
    let backends: serde_json::Map<String, Value> = backends
        .into_iter()
        .map(|(name, availability)| {
            let value = match availability {
                Ok(()) => json!({ "available": true }),
                Err(reason) => json!({ "available": false, "reason": reason }),
            };
            (name.to_owned(), value)
        })
        .collect();
    let rows: Vec<Value> = CAPABILITIES
        .iter()
        .map(|c| json!({ "area": c.area, "capability": c.capability, "status": c.status.as_str(), "notes": c.notes }))
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "capabilities": rows,
        "host": {
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
            "userNamespaces": std::path::Path::new("/proc/self/ns/user").exists(),
            "sandboxBackends": backends,
        },
    })
}

/// The table as the `current-capabilities` docs page.
pub fn render_markdown() -> String {
    let mut out = String::from(
        "# Current capabilities\n\n\
         What this build of Nimbus does today, and the tests that prove each row. Generated from \
         `crates/nimbus-server/src/capabilities.rs` (`scripts/gen-docs`); the same rows are served \
         at `GET /api/system/capabilities`.\n\n\
         | Area | Capability | Status | Notes | Proving test |\n| --- | --- | --- | --- | --- |\n",
    );
    for c in CAPABILITIES {
        let tests = if c.tests.is_empty() {
            "—".to_owned()
        } else {
            c.tests.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
        };
        out.push_str(&format!("| {} | {} | {} | {} | {} |\n", c.area, c.capability, c.status.as_str(), c.notes, tests));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the test `reference` names exists in the repository.
    fn exists(reference: &str) -> bool {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../");
        let read = |path: &str| std::fs::read_to_string(format!("{root}{path}")).unwrap_or_default();
        match reference.split_once("::") {
            None => std::path::Path::new(&format!("{root}{reference}")).is_file(),
            Some((file, title)) if file.starts_with("packages/") => read(file).contains(&format!("test(\"{title}\"")),
            Some((file, name)) => read(&format!("crates/nimbus-cli/tests/{file}")).contains(&format!("fn {name}(")),
        }
    }

    #[test]
    fn every_named_proving_test_exists() {
        for capability in CAPABILITIES {
            assert_eq!(
                capability.tests.is_empty(),
                capability.status == Status::NotYet,
                "{}: rows that work name their tests; rows that do not, name none",
                capability.capability
            );
            for test in capability.tests {
                assert!(exists(test), "{test} named by '{}' does not exist", capability.capability);
            }
        }
    }
}
