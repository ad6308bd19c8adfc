//! Reason-specific remediations: what one error instance tells its caller to do, in place of
//! the catalog's default message for its code's action (issue 14, "errors that teach").
//!
//! The catalog ([`crate::catalog`]) gives every code at most one action and a generic message;
//! an instance built by one of [`NimbusError`](crate::NimbusError)'s constructors, or given a
//! remediation with [`NimbusError::with_remediation`](crate::NimbusError::with_remediation),
//! carries the text written here instead, and `envelope()` renders it under the same
//! `remediation: {action, message}`. Every such text lives in this module, so a remediation is
//! still written nowhere outside `nimbus-core`.
//!
//! Texts name routes as `docs/http-api.md` does, with the ids spelled as placeholders
//! (`{tenant_id}`, `{sandbox_id}`, …) and with real values where the error knows them. They
//! never carry secrets, server file system paths or other internals, and they only point to
//! routes and commands this build has.

use serde_json::Value;

use crate::catalog::Action;

/// A remediation one error instance carries in place of the catalog's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remediation {
    /// The action; `None` keeps the catalog's action for the code.
    pub action: Option<Action>,
    /// What to do about this instance.
    pub message: String,
}

impl Remediation {
    /// A remediation with its own action.
    pub fn new(action: Action, message: impl Into<String>) -> Self {
        Self { action: Some(action), message: message.into() }
    }

    /// A message that keeps the catalog's action.
    pub fn message(message: impl Into<String>) -> Self {
        Self { action: None, message: message.into() }
    }
}

/// `session.tenant_not_found`: how to create the tenant. The id is a validated tenant id; it is
/// JSON-quoted all the same.
pub(crate) fn tenant_not_found(tenant_id: &str) -> Remediation {
    let id = Value::from(tenant_id);
    Remediation::new(
        Action::FixRequest,
        format!(
            "Create the tenant with `POST /api/tenants {{\"id\": {id}}}`, or use one that `GET /api/tenants` lists."
        ),
    )
}

/// `op.not_found` for an agents resource: where to list what exists. `None` for a resource with
/// no list route (the catalog's default then applies: none).
pub(crate) fn not_found(resource: &str) -> Option<Remediation> {
    let message = match resource {
        "sandbox" => {
            "List the tenant's sandboxes with `GET /api/tenants/{tenant_id}/sandboxes`, or create one with \
             `POST /api/tenants/{tenant_id}/sandboxes`."
        }
        "service" => {
            "List the tenant's services with `GET /api/tenants/{tenant_id}/services`, or create one with \
             `POST /api/tenants/{tenant_id}/services`."
        }
        "session" => {
            "List the tenant's sessions with `GET /api/sessions?tenantId={tenant_id}`, or open one with \
             `POST /api/sessions`."
        }
        "process" => {
            "List the session's processes with `GET /api/sessions/{session_id}/processes`; a session sees only \
             the processes it started."
        }
        "secret" => {
            "List the tenant's secrets with `GET /api/tenants/{tenant_id}/secrets`, or store one with \
             `PUT /api/tenants/{tenant_id}/secrets/{name}`."
        }
        "cron" => {
            "List the tenant's crons with `GET /api/tenants/{tenant_id}/crons`, or create one with \
             `POST /api/tenants/{tenant_id}/crons`."
        }
        "file" => "List the directory with `GET /api/sessions/{session_id}/files/list?path=<directory>`.",
        _ => return None,
    };
    Some(Remediation::new(Action::FixRequest, message))
}

/// `op.already_exists`: what to do with the existing resource instead. `None` where no better
/// advice than "pick another id" exists.
pub(crate) fn already_exists(resource: &str) -> Option<Remediation> {
    let message = match resource {
        "tenant" => "The tenant already exists: use it as it is, or create one with another id.",
        "service" => {
            "Replace its definition with `PUT /api/tenants/{tenant_id}/services/{service_name}` (sending its \
             current generation), or create the service under another name."
        }
        "cron" => {
            "Change it with `PATCH /api/tenants/{tenant_id}/crons/{cron_name}`, or create the cron under \
             another name."
        }
        _ => return None,
    };
    Some(Remediation::new(Action::FixRequest, message))
}

/// `op.document_not_found`: where the table's documents are. `table` is empty when the caller
/// (a function's `db.get`) named only the id.
pub(crate) fn document_not_found(table: &str) -> Remediation {
    let message = if table.is_empty() {
        "List a table's documents with `GET /api/tenants/{tenant_id}/documents/{table}`, or find them with \
         `POST /api/tenants/{tenant_id}/query`."
            .to_owned()
    } else {
        format!(
            "List the documents of `{table}` with `GET /api/tenants/{{tenant_id}}/documents/{table}`, or find them \
             with `POST /api/tenants/{{tenant_id}}/query`."
        )
    };
    Remediation::new(Action::FixRequest, message)
}

/// `op.schema_not_found`: where the schemas are, and how to set one.
pub(crate) fn schema_not_found(table: &str) -> Remediation {
    Remediation::new(
        Action::FixRequest,
        format!(
            "`GET /api/tenants/{{tenant_id}}/schema` lists the tables that have a schema; set one for `{table}` \
             with `PUT /api/tenants/{{tenant_id}}/schema/{table}`."
        ),
    )
}

/// `op.scheduled_job_not_found`: where jobs are listed, or, for a job that exists in the wrong
/// state, which states the operations need.
pub(crate) fn scheduled_job_not_found(state: Option<&str>) -> Remediation {
    let message = match state {
        None => "`GET /api/tenants/{tenant_id}/schedule` lists the pending jobs; \
                 `GET /api/tenants/{tenant_id}/schedule/{job_id}` reads a job in any state."
            .to_owned(),
        Some(state) => format!(
            "The job is `{state}`: only a pending job can be cancelled, and only a finished one has a result \
             under `/schedule/history/{{job_id}}`. `GET /api/tenants/{{tenant_id}}/schedule/{{job_id}}` shows its \
             state."
        ),
    };
    Remediation::new(Action::FixRequest, message)
}

/// `function.not_found`: where the deployed functions are listed.
pub(crate) fn function_not_found() -> Remediation {
    Remediation::message(
        "`GET /api/tenants/{tenant_id}/functions` lists the deployed functions by `module:export` name; deploy \
         with `PUT /api/tenants/{tenant_id}/functions` (`nimbus functions deploy <dir>`).",
    )
}

/// `op.precondition_failed`: re-read, then retry with the current generation.
pub(crate) fn precondition_failed(current_generation: u64) -> Remediation {
    Remediation::message(format!(
        "The resource changed since it was read: re-read it to see what changed, then send your change again \
         with its current generation ({current_generation})."
    ))
}

/// `op.cap_exceeded`: the cap and its limit, and how to get under it where there is a known way.
pub(crate) fn cap_exceeded(cap: &str, observed: u64, limit: u64) -> Remediation {
    let mut message = format!("`{cap}` may be at most {limit}; this request reached {observed}. Stay within the cap.");
    let how = match cap {
        "tenant_secrets" => {
            " Delete secrets the tenant no longer needs (`DELETE /api/tenants/{tenant_id}/secrets/{name}`) to make room."
        }
        "crons per tenant" => {
            " Delete crons the tenant no longer needs (`DELETE /api/tenants/{tenant_id}/crons/{cron_name}`) to make room."
        }
        "documents_read" | "documents_written" | "scheduled_jobs" => {
            " The cap counts one function call: split the work across several calls."
        }
        "nested_calls" => " Shorten the chain of functions that call functions.",
        "mcp_answer_bytes" => " The cap counts one MCP tool call's answer: ask for less (a smaller `limit` or `tail`).",
        _ => "",
    };
    message.push_str(how);
    Remediation::message(message)
}

/// `rate.resource_exhausted`: which resource is full and what frees it. `None` where waiting is
/// all there is to it (the catalog's default then applies).
pub(crate) fn resource_exhausted(resource: &str, limit: u64) -> Option<Remediation> {
    let message = match resource {
        "sandboxes" => format!(
            "The tenant already has the most active sandboxes it may ({limit}). Stop \
             (`POST /api/tenants/{{tenant_id}}/sandboxes/{{sandbox_id}}/stop`) or delete \
             (`DELETE /api/tenants/{{tenant_id}}/sandboxes/{{sandbox_id}}`) sandboxes it no longer needs, or stop \
             services it no longer needs, then retry."
        ),
        "cpu" => format!(
            "The tenant's active sandboxes may hold at most {limit} CPUs together. Stop or delete sandboxes (or \
             stop services) it no longer needs, or ask for fewer (`spec.resources.cpuCount`), then retry."
        ),
        "memory" => format!(
            "The tenant's active sandboxes may hold at most {limit} bytes of memory together. Stop or delete \
             sandboxes (or stop services) it no longer needs, or ask for less (`spec.resources`), then retry."
        ),
        "data_dir_disk" => "The server's data directory is almost out of disk. Delete sandboxes and images \
                            (`DELETE /api/images?reference=`) that are no longer needed, or ask the operator to \
                            free space, then retry."
            .to_owned(),
        "sandbox_id_ranges" => "Every user-namespace id range of this server is held by a sandbox. Delete \
                                sandboxes that are no longer needed \
                                (`DELETE /api/tenants/{tenant_id}/sandboxes/{sandbox_id}`), or ask the operator \
                                for a larger `--userns-pool`, then retry."
            .to_owned(),
        "sandbox_processes" => format!(
            "The sandbox already runs the most exec processes it may ({limit}, all sessions together). Wait for \
             some to exit, or end them (`POST /api/sessions/{{session_id}}/processes/{{process_id}}/signal`), then \
             retry."
        ),
        "processes" => format!(
            "The session already runs the most exec processes it may ({limit}). Wait for some to exit, or end \
             them (`POST /api/sessions/{{session_id}}/processes/{{process_id}}/signal`), then retry."
        ),
        "sessions" => format!(
            "The tenant already has the most open sessions it may ({limit}). Close sessions it no longer needs \
             (`POST /api/sessions/{{session_id}}/close`), or wait for their leases to expire, then retry."
        ),
        "pending scheduled jobs" => format!(
            "The tenant already has the most pending jobs it may ({limit}). Cancel jobs it no longer needs \
             (`DELETE /api/tenants/{{tenant_id}}/schedule/{{job_id}}`), or wait for due jobs to run, then retry."
        ),
        "serviceLifecycleOperation" => "Another start, stop, restart or delete of this service is still \
                                        running: wait for it to finish, then retry."
            .to_owned(),
        "ws_subscriptions" => format!(
            "This socket already has the most live subscriptions it may ({limit}). Remove subscriptions it no \
             longer needs, or open another socket."
        ),
        _ => return None,
    };
    Some(Remediation::message(message))
}

/// `op.payload_too_large`: the limit.
pub(crate) fn payload_too_large(limit_bytes: usize) -> Remediation {
    Remediation::message(format!("Send at most {limit_bytes} bytes in one request."))
}

/// `op.conflict`: what the state named by `reason` needs. `None` where the catalog's default
/// (and the instance's message) say it already.
pub(crate) fn conflict(reason: &str) -> Option<Remediation> {
    let message = match reason {
        "target_stopped" => TARGET_STOPPED,
        "target_not_ready" => {
            "Wait until the target is ready (`GET /api/tenants/{tenant_id}/sandboxes/{sandbox_id}?waitFor=ready`, \
             or `GET /api/tenants/{tenant_id}/services/{service_name}?waitFor=ready`), then open the session again."
        }
        "operation_in_progress" => {
            "Another start, stop, restart or delete of the service is still running: wait for it to finish, then \
             retry."
        }
        "service_active" => {
            "Stop the service first (`POST /api/tenants/{tenant_id}/services/{service_name}/stop`), then retry; a \
             delete may pass `force=true` instead."
        }
        "open_sessions" => {
            "Close the service's sessions (`POST /api/sessions/{session_id}/close`), or delete with `force=true`, \
             which closes them."
        }
        "owned_by_service" => {
            "A service runs this sandbox: stop, restart or change it through the service \
             (`/api/tenants/{tenant_id}/services/{service_name}`)."
        }
        "sandbox_ended" => {
            "An ended sandbox's network cannot change: create a new sandbox with the rules in \
             `spec.network.egress`."
        }
        "image_in_use" => {
            "Delete the sandboxes that use the image (`DELETE /api/tenants/{tenant_id}/sandboxes/{sandbox_id}`), \
             then remove it again."
        }
        "directory_not_empty" => {
            "Empty the directory first, or delete it with everything in it: \
             `DELETE /api/sessions/{session_id}/files?path=<path>&recursive=true`."
        }
        "no_attachment" => {
            "Attach to the channel first (`GET /api/sessions/{session_id}/channels/stdio/stream`, or `…/ws`), then \
             send the input."
        }
        "process_exited" => {
            "The process has exited: `GET /api/sessions/{session_id}/processes/{process_id}` shows how it ended; \
             start another with `POST /api/sessions/{session_id}/exec`."
        }
        "stdin_closed" => "The process's stdin is closed: start another process to send more input.",
        "not_a_tty" => {
            "Only a process with a pty can be resized: exec with `tty: true`, or create the sandbox with \
             `process.terminal: true`."
        }
        "static_definition" => {
            return Some(Remediation::new(
                Action::ContactOperator,
                "The operator's service catalog declares this service; only the operator can change or remove it.",
            ));
        }
        _ => return None,
    };
    Some(Remediation::message(message))
}

/// `op.conflict` with `reason: target_stopped`.
const TARGET_STOPPED: &str = "The target sandbox is no longer running: it stopped, failed or was deleted, and does \
                              not start again. Open a new session with `POST /api/sessions` on a running target: a \
                              service (which runs a fresh sandbox when started), or a new sandbox \
                              (`POST /api/tenants/{tenant_id}/sandboxes`).";

/// `op.conflict` with `reason: session_not_open`, for a session that ended with `close_reason`
/// (`status.closeReason`; `None` when it is not known). A caller's own close text is shown
/// JSON-quoted.
pub fn session_not_open(close_reason: Option<&str>) -> Remediation {
    let open_new = "Open a new session with `POST /api/sessions`";
    let message = match close_reason {
        Some("target_stopped") => format!(
            "The session was closed because its target stopped (closeReason `target_stopped`). {open_new} on a \
             running target: a service (which runs a fresh sandbox when started), or a new sandbox \
             (`POST /api/tenants/{{tenant_id}}/sandboxes`)."
        ),
        Some("expired") => format!(
            "The session's lease expired (closeReason `expired`). {open_new}, and renew its lease \
             (`POST /api/sessions/{{session_id}}/renew`) before `expiresAt`."
        ),
        Some("service_force_deleted") => format!(
            "The session was closed because its service was deleted with `force=true` (closeReason \
             `service_force_deleted`). {open_new} on a target that exists."
        ),
        Some("tenant_deleted") => "The session was closed because its tenant was deleted (closeReason \
                                   `tenant_deleted`)."
            .to_owned(),
        Some("channel_open_failed") => {
            format!("The session's channels could not be set up (closeReason `channel_open_failed`). {open_new}.")
        }
        Some(text) => {
            let text = Value::from(text);
            format!(
                "The session was closed with `POST /api/sessions/{{session_id}}/close` (closeReason {text}). {open_new}."
            )
        }
        None => format!("The session is no longer open. {open_new}."),
    };
    Remediation::message(message)
}

/// `sandbox.image_pull_failed` when the registry's name did not resolve (`refused: false`) or it
/// refused the connection (`refused: true`): import the image instead of retrying blindly.
pub fn image_pull_unreachable(registry: &str, reference: &str, refused: bool) -> Remediation {
    let what = if refused {
        format!("The registry `{registry}` refused the connection")
    } else {
        format!("The registry name `{registry}` did not resolve")
    };
    Remediation::message(format!(
        "{what}, so this server cannot pull from it. Import the image instead: export \
         it where the registry is reachable (`docker save`, or an OCI-layout tar), upload it with \
         `nimbus image import <file> --reference {reference}` or `POST /api/images/import?reference={reference}`, \
         then retry."
    ))
}

/// `service.unavailable` from an MCP tool whose server cannot be reached: start one, or point the
/// MCP server at it.
pub fn mcp_server_unreachable() -> Remediation {
    Remediation::message(
        "Start the server with `nimbus start`, or point `nimbus mcp` at a running one with `--endpoint` (or \
         `NIMBUS_ENDPOINT`) and `--token` (or `NIMBUS_TOKEN`); then retry.",
    )
}

/// `sandbox.image_not_found`: check the reference, or import the image.
pub fn image_not_found(reference: &str) -> Remediation {
    Remediation::message(format!(
        "Check the reference `{reference}`: its repository, its tag or digest, and that the image has a linux \
         variant for this host's architecture. `GET /api/images` lists the images already stored; one built or \
         saved elsewhere can be imported with `POST /api/images/import`."
    ))
}

/// `sandbox.image_not_found` for the browser image a browser service runs: it is built here,
/// never pulled.
pub fn browser_image_missing(reference: &str) -> Remediation {
    Remediation::new(
        Action::FixRequest,
        format!(
            "The browser image `{reference}` is not stored on this server, and it is never pulled from a registry. \
             Build and import it with `nimbus image build-browser` (it needs `mmdebstrap`, the Debian archive and \
             about a minute), then start the service again."
        ),
    )
}

/// `service.capability_unavailable` when `nimbus image build-browser` finds no `mmdebstrap`.
pub fn mmdebstrap_missing() -> Remediation {
    Remediation::new(
        Action::FixRequest,
        "Install mmdebstrap (`apt-get install mmdebstrap`) and run `nimbus image build-browser` again; or import a \
         browser image built elsewhere with `nimbus image import <file> --reference nimbus/browser:bookworm-1`.",
    )
}
