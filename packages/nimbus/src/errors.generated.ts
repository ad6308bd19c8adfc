// Generated from crates/nimbus-core/src/catalog/table.rs by `scripts/gen-docs`; do not edit
// by hand. A Rust test fails while this file differs from what the catalog renders.
//
// One class per error code, named from the code (`op.not_found` -> NimbusNotFoundError;
// codes outside the op, auth, session and service areas carry their area:
// `function.not_found` -> NimbusFunctionNotFoundError). Every `rate.*` code is a
// NimbusRateLimitedError. `errorFromEnvelope` (errors.ts) builds the class of a code.

import { NimbusError, registerErrorClasses } from "./errors.js";

/** The catalog version these classes were generated from (`GET /errors` `version`). */
export const ERROR_CATALOG_VERSION = "1.0.0";

/** Every code of the error catalog. */
export type ErrorCode =
  | "auth.unauthorized"
  | "auth.forbidden"
  | "auth.permission_denied"
  | "op.invalid_input"
  | "op.method_not_allowed"
  | "op.payload_too_large"
  | "op.cap_exceeded"
  | "op.not_found"
  | "op.document_not_found"
  | "op.scheduled_job_not_found"
  | "op.schema_not_found"
  | "op.already_exists"
  | "op.conflict"
  | "op.precondition_failed"
  | "op.schema_validation"
  | "op.cancelled"
  | "op.wait_timeout"
  | "op.body_timeout"
  | "op.wait_unsatisfiable"
  | "op.failed"
  | "op.missing_index"
  | "op.out_of_retention"
  | "op.historical_read"
  | "session.tenant_not_found"
  | "session.subscription_error"
  | "session.unsubscribe_failed"
  | "rate.resource_exhausted"
  | "rate.overloaded"
  | "rate.committer_full"
  | "rate.rejected_before_execution"
  | "rate.limited"
  | "service.route_not_found"
  | "service.capability_unavailable"
  | "service.unavailable"
  | "service.storage_busy"
  | "service.storage_transient"
  | "service.storage_io"
  | "service.storage_corruption"
  | "service.storage_other"
  | "service.serialization"
  | "service.internal"
  | "service.transport"
  | "protocol.no_overlap"
  | "protocol.hello_timeout"
  | "protocol.invalid_json"
  | "protocol.unsupported_message_type"
  | "protocol.unsupported_version"
  | "protocol.unsupported_binary"
  | "function.not_found"
  | "function.invalid_args"
  | "function.deploy_failed"
  | "function.thrown"
  | "runtime.execution_timeout"
  | "runtime.memory_limit"
  | "runtime.promise_stalled"
  | "runtime.system_timeout"
  | "sandbox.backend_unavailable"
  | "sandbox.unresponsive"
  | "sandbox.port_unreachable"
  | "sandbox.egress_beyond_policy"
  | "sandbox.egress_refused"
  | "sandbox.egress_upstream_failed"
  | "sandbox.image_not_found"
  | "sandbox.image_pull_failed"
  | "browser.unavailable"
  | "browser.page_not_found"
  | "browser.element_not_found"
  | "browser.navigation_failed"
  | "browser.timeout"
  | "browser.evaluation_failed"
  | "browser.page_crashed";

/** What the catalog says about one code; the same fields as `GET /errors` serves. */
export interface ErrorCodeSpec {
  /** HTTP status, or `null` for codes seen only in WebSocket frames. */
  readonly httpStatus: number | null;
  readonly severity: "fatal" | "error" | "warning";
  /** The default; an instance's `retryable` is what the server sent. */
  readonly retryable: boolean;
  /** The remediation action, or `null` when the catalog defines none. */
  readonly action: string | null;
  /** The detail shape: key to JSON type (`?` marks an optional key), or `null`. */
  readonly detail: Readonly<Record<string, string>> | null;
  readonly meaning: string;
  readonly surface: "http" | "ws" | "both";
  /** Catalogued for compatibility, never sent by this server version. */
  readonly reserved: boolean;
  /** The name of the class thrown for this code. */
  readonly className: string;
}

/** The error catalog, by code. */
export const ERROR_CATALOG: { readonly [C in ErrorCode]: ErrorCodeSpec } = {
  "auth.unauthorized": {
    httpStatus: 401, severity: "error", retryable: false, action: "reauthenticate",
    detail: { "reason": "string" },
    meaning: "Credential missing, invalid, revoked, or session cookie expired; also the WS `authenticate` frame.",
    surface: "both", reserved: false, className: "NimbusUnauthorizedError",
  },
  "auth.forbidden": {
    httpStatus: 403, severity: "error", retryable: false, action: "contact_operator",
    detail: { "reason": "string?", "name": "string?", "visibility": "string?" },
    meaning: "Origin not allowed, or an internal function called from outside.",
    surface: "http", reserved: false, className: "NimbusForbiddenError",
  },
  "auth.permission_denied": {
    httpStatus: 403, severity: "error", retryable: false, action: "fix_request",
    detail: { "table": "string", "operation": "string" },
    meaning: "A table access policy denied the operation.",
    surface: "both", reserved: false, className: "NimbusPermissionDeniedError",
  },
  "op.invalid_input": {
    httpStatus: 400, severity: "error", retryable: false, action: "fix_request",
    detail: { "field": "string?", "reason": "string", "cursorFloor": "integer?", "latestSequence": "integer?" },
    meaning: "The request is malformed, has the wrong content type, or breaks a validation rule.",
    surface: "both", reserved: false, className: "NimbusInvalidInputError",
  },
  "op.method_not_allowed": {
    httpStatus: 405, severity: "error", retryable: false, action: "fix_request",
    detail: { "method": "string", "allowed": "array" },
    meaning: "The route exists but not with this method; the `Allow` header lists the methods it has.",
    surface: "http", reserved: false, className: "NimbusMethodNotAllowedError",
  },
  "op.payload_too_large": {
    httpStatus: 413, severity: "error", retryable: false, action: "reduce_request",
    detail: { "limitBytes": "integer", "sizeBytes": "integer?" },
    meaning: "The body or file is larger than the limit.",
    surface: "http", reserved: false, className: "NimbusPayloadTooLargeError",
  },
  "op.cap_exceeded": {
    httpStatus: 400, severity: "error", retryable: false, action: "reduce_request",
    detail: { "cap": "string", "observed": "integer", "limit": "integer" },
    meaning: "A documented cap was exceeded (document size, resources, nested calls...).",
    surface: "both", reserved: false, className: "NimbusCapExceededError",
  },
  "op.not_found": {
    httpStatus: 404, severity: "error", retryable: false, action: null,
    detail: { "resource": "string", "id": "string?", "name": "string?", "path": "string?" },
    meaning: "A sandbox, session, service, process, file or cron is missing (`resource` names which).",
    surface: "http", reserved: false, className: "NimbusNotFoundError",
  },
  "op.document_not_found": {
    httpStatus: 404, severity: "error", retryable: false, action: null,
    detail: { "table": "string", "documentId": "string" },
    meaning: "The document does not exist.",
    surface: "both", reserved: false, className: "NimbusDocumentNotFoundError",
  },
  "op.scheduled_job_not_found": {
    httpStatus: 404, severity: "error", retryable: false, action: null,
    detail: { "jobId": "string", "state": "string?" },
    meaning: "The scheduled job is unknown, or not in a state the operation needs.",
    surface: "http", reserved: false, className: "NimbusScheduledJobNotFoundError",
  },
  "op.schema_not_found": {
    httpStatus: 404, severity: "error", retryable: false, action: null,
    detail: { "table": "string" },
    meaning: "The table has no schema.",
    surface: "http", reserved: false, className: "NimbusSchemaNotFoundError",
  },
  "op.already_exists": {
    httpStatus: 409, severity: "error", retryable: false, action: null,
    detail: { "resource": "string", "id": "string?", "name": "string?" },
    meaning: "A tenant, service, cron or document with this id already exists.",
    surface: "http", reserved: false, className: "NimbusAlreadyExistsError",
  },
  "op.conflict": {
    httpStatus: 409, severity: "error", retryable: false, action: "fix_request",
    detail: { "reason": "string" },
    meaning: "The resource's state forbids the operation; `reason` names it. Retryable only for `transaction_conflict`.",
    surface: "both", reserved: false, className: "NimbusConflictError",
  },
  "op.precondition_failed": {
    httpStatus: 412, severity: "error", retryable: false, action: "refresh_resource",
    detail: { "expectedGeneration": "integer", "currentGeneration": "integer" },
    meaning: "A conditional write named a stale generation.",
    surface: "http", reserved: false, className: "NimbusPreconditionFailedError",
  },
  "op.schema_validation": {
    httpStatus: 422, severity: "error", retryable: false, action: "fix_request",
    detail: { "table": "string", "field": "string?", "reason": "string?", "violationCount": "integer?", "violations": "array?" },
    meaning: "A document or index violates the table's schema.",
    surface: "both", reserved: false, className: "NimbusSchemaValidationError",
  },
  "op.cancelled": {
    httpStatus: 408, severity: "error", retryable: true, action: "retry",
    detail: null,
    meaning: "The request was cancelled before its commit point.",
    surface: "both", reserved: false, className: "NimbusCancelledError",
  },
  "op.wait_timeout": {
    httpStatus: 408, severity: "error", retryable: true, action: "retry",
    detail: { "waitFor": "string", "timeoutMs": "integer", "observed": "object" },
    meaning: "The long-poll deadline passed before the awaited condition held.",
    surface: "http", reserved: false, className: "NimbusWaitTimeoutError",
  },
  "op.body_timeout": {
    httpStatus: 408, severity: "error", retryable: true, action: "retry",
    detail: { "timeoutMs": "integer" },
    meaning: "The request body did not arrive within its deadline.",
    surface: "http", reserved: false, className: "NimbusBodyTimeoutError",
  },
  "op.wait_unsatisfiable": {
    httpStatus: 409, severity: "error", retryable: false, action: "fix_request",
    detail: { "waitFor": "string", "observed": "object" },
    meaning: "The awaited condition can no longer happen.",
    surface: "http", reserved: false, className: "NimbusWaitUnsatisfiableError",
  },
  "op.failed": {
    httpStatus: null, severity: "error", retryable: false, action: null,
    detail: null,
    meaning: "A WebSocket request failed and no more specific code applies.",
    surface: "ws", reserved: false, className: "NimbusFailedError",
  },
  "op.missing_index": {
    httpStatus: 412, severity: "error", retryable: false, action: "create_index",
    detail: { "fields": "array" },
    meaning: "Reserved: the query needs an index.",
    surface: "http", reserved: true, className: "NimbusMissingIndexError",
  },
  "op.out_of_retention": {
    httpStatus: 409, severity: "error", retryable: true, action: "restart_transaction",
    detail: { "retryability": "string" },
    meaning: "Reserved: the read is older than the retention window.",
    surface: "http", reserved: true, className: "NimbusOutOfRetentionError",
  },
  "op.historical_read": {
    httpStatus: 400, severity: "error", retryable: false, action: "fix_request",
    detail: { "historicalReadKind": "string" },
    meaning: "Reserved: historical reads are not supported here.",
    surface: "http", reserved: true, className: "NimbusHistoricalReadError",
  },
  "session.tenant_not_found": {
    httpStatus: 404, severity: "error", retryable: false, action: null,
    detail: { "tenantId": "string" },
    meaning: "The tenant does not exist.",
    surface: "both", reserved: false, className: "NimbusTenantNotFoundError",
  },
  "session.subscription_error": {
    httpStatus: null, severity: "error", retryable: false, action: null,
    detail: { "subscriptionId": "integer", "dropped": "boolean", "reason": "string", "cause": "object?" },
    meaning: "A live subscription failed or was removed.",
    surface: "ws", reserved: false, className: "NimbusSubscriptionError",
  },
  "session.unsubscribe_failed": {
    httpStatus: null, severity: "error", retryable: false, action: "fix_request",
    detail: { "subscriptionId": "integer" },
    meaning: "There is no such subscription.",
    surface: "ws", reserved: false, className: "NimbusUnsubscribeFailedError",
  },
  "rate.resource_exhausted": {
    httpStatus: 429, severity: "error", retryable: true, action: "wait_and_retry",
    detail: { "resource": "string", "limit": "integer", "current": "integer?", "retryAfterMs": "integer?" },
    meaning: "A queue, quota or slot pool is full (writes, function slots, sandboxes, sessions, processes).",
    surface: "both", reserved: false, className: "NimbusRateLimitedError",
  },
  "rate.overloaded": {
    httpStatus: 429, severity: "error", retryable: true, action: "wait_and_retry",
    detail: null,
    meaning: "Reserved: the server is overloaded.",
    surface: "http", reserved: true, className: "NimbusRateLimitedError",
  },
  "rate.committer_full": {
    httpStatus: 429, severity: "error", retryable: true, action: "wait_and_retry",
    detail: { "capacity": "integer" },
    meaning: "Reserved: the committer queue is full.",
    surface: "http", reserved: true, className: "NimbusRateLimitedError",
  },
  "rate.rejected_before_execution": {
    httpStatus: 429, severity: "error", retryable: true, action: "retry",
    detail: null,
    meaning: "Reserved: the request was rejected before it ran.",
    surface: "http", reserved: true, className: "NimbusRateLimitedError",
  },
  "rate.limited": {
    httpStatus: 429, severity: "error", retryable: true, action: "wait_and_retry",
    detail: { "retryAfterMs": "integer" },
    meaning: "Reserved: the caller is rate limited.",
    surface: "http", reserved: true, className: "NimbusRateLimitedError",
  },
  "service.route_not_found": {
    httpStatus: 404, severity: "error", retryable: false, action: "fix_request",
    detail: { "method": "string", "path": "string" },
    meaning: "No route matches the path.",
    surface: "http", reserved: false, className: "NimbusRouteNotFoundError",
  },
  "service.capability_unavailable": {
    httpStatus: 501, severity: "error", retryable: false, action: "upgrade_server",
    detail: { "capability": "string", "reason": "string" },
    meaning: "The feature is declared but not available in this version.",
    surface: "http", reserved: false, className: "NimbusCapabilityUnavailableError",
  },
  "service.unavailable": {
    httpStatus: 503, severity: "error", retryable: true, action: "retry",
    detail: { "storageKind": "string" },
    meaning: "The storage backend is down.",
    surface: "both", reserved: false, className: "NimbusUnavailableError",
  },
  "service.storage_busy": {
    httpStatus: 503, severity: "error", retryable: true, action: "wait_and_retry",
    detail: { "storageKind": "string" },
    meaning: "Storage is busy.",
    surface: "both", reserved: false, className: "NimbusStorageBusyError",
  },
  "service.storage_transient": {
    httpStatus: 503, severity: "error", retryable: true, action: "retry",
    detail: { "storageKind": "string" },
    meaning: "A transient storage failure.",
    surface: "both", reserved: false, className: "NimbusStorageTransientError",
  },
  "service.storage_io": {
    httpStatus: 500, severity: "error", retryable: true, action: "retry",
    detail: { "storageKind": "string" },
    meaning: "A storage I/O error.",
    surface: "both", reserved: false, className: "NimbusStorageIoError",
  },
  "service.storage_corruption": {
    httpStatus: 500, severity: "fatal", retryable: false, action: "contact_operator",
    detail: { "storageKind": "string" },
    meaning: "A storage integrity check failed.",
    surface: "both", reserved: false, className: "NimbusStorageCorruptionError",
  },
  "service.storage_other": {
    httpStatus: 500, severity: "error", retryable: false, action: null,
    detail: { "storageKind": "string" },
    meaning: "Another storage failure.",
    surface: "both", reserved: false, className: "NimbusStorageOtherError",
  },
  "service.serialization": {
    httpStatus: 500, severity: "error", retryable: false, action: null,
    detail: null,
    meaning: "Stored data could not be encoded or decoded.",
    surface: "both", reserved: false, className: "NimbusSerializationError",
  },
  "service.internal": {
    httpStatus: 500, severity: "fatal", retryable: false, action: "contact_operator",
    detail: null,
    meaning: "An internal error; the message is generic, see the server log by `requestId`.",
    surface: "both", reserved: false, className: "NimbusInternalError",
  },
  "service.transport": {
    httpStatus: 503, severity: "error", retryable: true, action: "retry",
    detail: null,
    meaning: "Reserved: a transport failure.",
    surface: "http", reserved: true, className: "NimbusTransportError",
  },
  "protocol.no_overlap": {
    httpStatus: 400, severity: "fatal", retryable: false, action: "upgrade_server",
    detail: { "serverSupports": "array", "clientOffered": "array" },
    meaning: "No common WebSocket subprotocol (answered before the upgrade).",
    surface: "http", reserved: false, className: "NimbusProtocolNoOverlapError",
  },
  "protocol.hello_timeout": {
    httpStatus: null, severity: "fatal", retryable: true, action: "retry",
    detail: { "timeoutMs": "integer" },
    meaning: "No `client_hello` arrived in time.",
    surface: "ws", reserved: false, className: "NimbusProtocolHelloTimeoutError",
  },
  "protocol.invalid_json": {
    httpStatus: null, severity: "fatal", retryable: false, action: "fix_request",
    detail: { "reason": "string?" },
    meaning: "A frame could not be decoded (fatal during the handshake, an error after it).",
    surface: "ws", reserved: false, className: "NimbusProtocolInvalidJsonError",
  },
  "protocol.unsupported_message_type": {
    httpStatus: null, severity: "fatal", retryable: false, action: "fix_request",
    detail: { "receivedType": "string", "expectedType": "string" },
    meaning: "The first frame was not the expected type.",
    surface: "ws", reserved: false, className: "NimbusProtocolUnsupportedMessageTypeError",
  },
  "protocol.unsupported_version": {
    httpStatus: null, severity: "fatal", retryable: false, action: "upgrade_client",
    detail: { "receivedProtocol": "string" },
    meaning: "The client's protocol version is not supported.",
    surface: "ws", reserved: false, className: "NimbusProtocolUnsupportedVersionError",
  },
  "protocol.unsupported_binary": {
    httpStatus: null, severity: "fatal", retryable: false, action: "fix_request",
    detail: null,
    meaning: "A binary frame arrived during the handshake.",
    surface: "ws", reserved: false, className: "NimbusProtocolUnsupportedBinaryError",
  },
  "function.not_found": {
    httpStatus: 404, severity: "error", retryable: false, action: "fix_request",
    detail: { "name": "string" },
    meaning: "No such function in the tenant's function set.",
    surface: "both", reserved: false, className: "NimbusFunctionNotFoundError",
  },
  "function.invalid_args": {
    httpStatus: 400, severity: "error", retryable: false, action: "fix_request",
    detail: { "name": "string", "path": "string", "reason": "string" },
    meaning: "The function's args validator rejected the call.",
    surface: "both", reserved: false, className: "NimbusFunctionInvalidArgsError",
  },
  "function.deploy_failed": {
    httpStatus: 400, severity: "error", retryable: false, action: "fix_function",
    detail: { "errors": "array" },
    meaning: "The deploy was rejected; the previous function set stays live.",
    surface: "http", reserved: false, className: "NimbusFunctionDeployFailedError",
  },
  "function.thrown": {
    httpStatus: 422, severity: "error", retryable: false, action: "fix_function",
    detail: { "name": "string", "errorName": "string", "message": "string", "stack": "string", "data": "any?", "logs": "array", "callPath": "array?", "reason": "string?" },
    meaning: "The function threw.",
    surface: "both", reserved: false, className: "NimbusFunctionThrownError",
  },
  "runtime.execution_timeout": {
    httpStatus: 408, severity: "error", retryable: false, action: "fix_function",
    detail: { "name": "string", "limit": "string", "limitMs": "integer", "logs": "array" },
    meaning: "A CPU or wall-clock limit was hit.",
    surface: "both", reserved: false, className: "NimbusRuntimeExecutionTimeoutError",
  },
  "runtime.memory_limit": {
    httpStatus: 422, severity: "error", retryable: false, action: "fix_function",
    detail: { "name": "string", "limitBytes": "integer", "logs": "array" },
    meaning: "The isolate's memory limit was hit.",
    surface: "both", reserved: false, className: "NimbusRuntimeMemoryLimitError",
  },
  "runtime.promise_stalled": {
    httpStatus: 422, severity: "error", retryable: false, action: "fix_function",
    detail: { "name": "string", "logs": "array" },
    meaning: "The handler's promise can never settle.",
    surface: "both", reserved: false, className: "NimbusRuntimePromiseStalledError",
  },
  "runtime.system_timeout": {
    httpStatus: 408, severity: "error", retryable: false, action: "contact_operator",
    detail: null,
    meaning: "Reserved: a system timeout.",
    surface: "http", reserved: true, className: "NimbusRuntimeSystemTimeoutError",
  },
  "sandbox.backend_unavailable": {
    httpStatus: 501, severity: "error", retryable: false, action: "contact_operator",
    detail: { "backend": "string", "reason": "string" },
    meaning: "The sandbox backend is not usable on this host (e.g. `krun` without microVM support).",
    surface: "http", reserved: false, className: "NimbusSandboxBackendUnavailableError",
  },
  "sandbox.unresponsive": {
    httpStatus: 503, severity: "error", retryable: true, action: "retry",
    detail: { "limitMs": "integer" },
    meaning: "The sandbox's supervisor did not answer within its deadline (it is stuck); stop or delete the sandbox, which the server then cleans up itself.",
    surface: "http", reserved: false, className: "NimbusSandboxUnresponsiveError",
  },
  "sandbox.port_unreachable": {
    httpStatus: 502, severity: "error", retryable: true, action: "retry",
    detail: { "port": "integer", "reason": "string" },
    meaning: "Nothing in the sandbox accepted a connection on that port of its loopback, or what answered is not HTTP; start the server (listening on 127.0.0.1, ::1 or all addresses) and retry.",
    surface: "http", reserved: false, className: "NimbusSandboxPortUnreachableError",
  },
  "sandbox.egress_beyond_policy": {
    httpStatus: 403, severity: "error", retryable: false, action: "contact_operator",
    detail: { "field": "string", "host": "string", "port": "integer?" },
    meaning: "An egress rule asks for a host or port the operator's `--egress-policy` ceiling does not cover; remove the rule, or ask the operator to widen the policy.",
    surface: "http", reserved: false, className: "NimbusSandboxEgressBeyondPolicyError",
  },
  "sandbox.egress_refused": {
    httpStatus: 403, severity: "error", retryable: false, action: "fix_request",
    detail: { "host": "string", "port": "integer", "reason": "string" },
    meaning: "The sandbox's egress proxy refused a connection or request (answered inside the sandbox, and logged in its decision log); add an allow rule for the host with `PUT .../sandboxes/{id}/network`.",
    surface: "http", reserved: false, className: "NimbusSandboxEgressRefusedError",
  },
  "sandbox.egress_upstream_failed": {
    httpStatus: 502, severity: "error", retryable: true, action: "retry",
    detail: { "host": "string", "port": "integer", "reason": "string" },
    meaning: "The egress proxy allowed a request but could not reach the upstream (name unresolvable, connection refused, TLS verification failed); answered inside the sandbox.",
    surface: "http", reserved: false, className: "NimbusSandboxEgressUpstreamFailedError",
  },
  "sandbox.image_not_found": {
    httpStatus: 404, severity: "error", retryable: false, action: "fix_request",
    detail: { "reference": "string", "reason": "string" },
    meaning: "The image or platform variant does not exist.",
    surface: "http", reserved: false, className: "NimbusSandboxImageNotFoundError",
  },
  "sandbox.image_pull_failed": {
    httpStatus: 502, severity: "error", retryable: true, action: "retry",
    detail: { "reference": "string", "registry": "string", "reason": "string", "httpStatus": "integer?" },
    meaning: "The registry was unreachable, refused, or sent bad data.",
    surface: "http", reserved: false, className: "NimbusSandboxImagePullFailedError",
  },
  "browser.unavailable": {
    httpStatus: 503, severity: "error", retryable: true, action: "wait_and_retry",
    detail: { "service": "string", "reason": "string" },
    meaning: "The browser service's Chromium did not answer on its DevTools endpoint (it is starting, restarting or crashed); wait for the service to be `ready` and retry.",
    surface: "http", reserved: false, className: "NimbusBrowserUnavailableError",
  },
  "browser.page_not_found": {
    httpStatus: 404, severity: "error", retryable: false, action: "fix_request",
    detail: { "pageId": "string?" },
    meaning: "No page of this session has that `pageId` (it was closed, or belongs to another session), or the session has no page left; list them with `page/pages` or open one with `page/open`.",
    surface: "http", reserved: false, className: "NimbusBrowserPageNotFoundError",
  },
  "browser.element_not_found": {
    httpStatus: 404, severity: "error", retryable: false, action: "fix_request",
    detail: { "ref": "string?", "selector": "string?", "reason": "string" },
    meaning: "No element matches the `ref` or `selector` on the page (a ref is valid until its element leaves the page); take a new `page/snapshot` and use one of its refs.",
    surface: "http", reserved: false, className: "NimbusBrowserElementNotFoundError",
  },
  "browser.navigation_failed": {
    httpStatus: 502, severity: "error", retryable: false, action: "fix_request",
    detail: { "url": "string", "reason": "string" },
    meaning: "The page could not be loaded: the name did not resolve, the connection failed, or the egress proxy refused the host; check the URL and the service's `network` rules.",
    surface: "http", reserved: false, className: "NimbusBrowserNavigationFailedError",
  },
  "browser.timeout": {
    httpStatus: 504, severity: "error", retryable: true, action: "retry",
    detail: { "operation": "string", "timeoutMs": "integer" },
    meaning: "A page operation did not finish within its `timeoutMs` (a page still loading, an element never actionable); retry with a larger `timeoutMs` or wait for less.",
    surface: "http", reserved: false, className: "NimbusBrowserTimeoutError",
  },
  "browser.evaluation_failed": {
    httpStatus: 422, severity: "error", retryable: false, action: "fix_request",
    detail: { "exception": "string" },
    meaning: "The expression threw in the page, or its result cannot be returned as JSON; `detail.exception` holds the page's error text.",
    surface: "http", reserved: false, className: "NimbusBrowserEvaluationFailedError",
  },
  "browser.page_crashed": {
    httpStatus: 502, severity: "error", retryable: false, action: "fix_request",
    detail: { "pageId": "string" },
    meaning: "The page's renderer died (it ran out of the service's memory, or crashed); close it and open a new page.",
    surface: "http", reserved: false, className: "NimbusBrowserPageCrashedError",
  },
};

/** `auth.unauthorized` (HTTP 401): Credential missing, invalid, revoked, or session cookie expired; also the WS `authenticate` frame. */
export class NimbusUnauthorizedError extends NimbusError {
  declare readonly detail: { reason: string };
}

/** `auth.forbidden` (HTTP 403): Origin not allowed, or an internal function called from outside. */
export class NimbusForbiddenError extends NimbusError {
  declare readonly detail: { reason?: string; name?: string; visibility?: string };
}

/** `auth.permission_denied` (HTTP 403): A table access policy denied the operation. */
export class NimbusPermissionDeniedError extends NimbusError {
  declare readonly detail: { table: string; operation: string };
}

/** `op.invalid_input` (HTTP 400): The request is malformed, has the wrong content type, or breaks a validation rule. */
export class NimbusInvalidInputError extends NimbusError {
  declare readonly detail: { field?: string; reason: string; cursorFloor?: number; latestSequence?: number };
}

/** `op.method_not_allowed` (HTTP 405): The route exists but not with this method; the `Allow` header lists the methods it has. */
export class NimbusMethodNotAllowedError extends NimbusError {
  declare readonly detail: { method: string; allowed: unknown[] };
}

/** `op.payload_too_large` (HTTP 413): The body or file is larger than the limit. */
export class NimbusPayloadTooLargeError extends NimbusError {
  declare readonly detail: { limitBytes: number; sizeBytes?: number };
}

/** `op.cap_exceeded` (HTTP 400): A documented cap was exceeded (document size, resources, nested calls...). */
export class NimbusCapExceededError extends NimbusError {
  declare readonly detail: { cap: string; observed: number; limit: number };
}

/** `op.not_found` (HTTP 404): A sandbox, session, service, process, file or cron is missing (`resource` names which). */
export class NimbusNotFoundError extends NimbusError {
  declare readonly detail: { resource: string; id?: string; name?: string; path?: string };
}

/** `op.document_not_found` (HTTP 404): The document does not exist. */
export class NimbusDocumentNotFoundError extends NimbusError {
  declare readonly detail: { table: string; documentId: string };
}

/** `op.scheduled_job_not_found` (HTTP 404): The scheduled job is unknown, or not in a state the operation needs. */
export class NimbusScheduledJobNotFoundError extends NimbusError {
  declare readonly detail: { jobId: string; state?: string };
}

/** `op.schema_not_found` (HTTP 404): The table has no schema. */
export class NimbusSchemaNotFoundError extends NimbusError {
  declare readonly detail: { table: string };
}

/** `op.already_exists` (HTTP 409): A tenant, service, cron or document with this id already exists. */
export class NimbusAlreadyExistsError extends NimbusError {
  declare readonly detail: { resource: string; id?: string; name?: string };
}

/** `op.conflict` (HTTP 409): The resource's state forbids the operation; `reason` names it. Retryable only for `transaction_conflict`. */
export class NimbusConflictError extends NimbusError {
  declare readonly detail: { reason: string };
}

/** `op.precondition_failed` (HTTP 412): A conditional write named a stale generation. */
export class NimbusPreconditionFailedError extends NimbusError {
  declare readonly detail: { expectedGeneration: number; currentGeneration: number };
}

/** `op.schema_validation` (HTTP 422): A document or index violates the table's schema. */
export class NimbusSchemaValidationError extends NimbusError {
  declare readonly detail: { table: string; field?: string; reason?: string; violationCount?: number; violations?: unknown[] };
}

/** `op.cancelled` (HTTP 408): The request was cancelled before its commit point. */
export class NimbusCancelledError extends NimbusError {
  declare readonly detail: null;
}

/** `op.wait_timeout` (HTTP 408): The long-poll deadline passed before the awaited condition held. */
export class NimbusWaitTimeoutError extends NimbusError {
  declare readonly detail: { waitFor: string; timeoutMs: number; observed: Record<string, unknown> };
}

/** `op.body_timeout` (HTTP 408): The request body did not arrive within its deadline. */
export class NimbusBodyTimeoutError extends NimbusError {
  declare readonly detail: { timeoutMs: number };
}

/** `op.wait_unsatisfiable` (HTTP 409): The awaited condition can no longer happen. */
export class NimbusWaitUnsatisfiableError extends NimbusError {
  declare readonly detail: { waitFor: string; observed: Record<string, unknown> };
}

/** `op.failed` (WebSocket only): A WebSocket request failed and no more specific code applies. */
export class NimbusFailedError extends NimbusError {
  declare readonly detail: null;
}

/** `op.missing_index` (HTTP 412): Reserved: the query needs an index. Reserved: never sent by this server version. */
export class NimbusMissingIndexError extends NimbusError {
  declare readonly detail: { fields: unknown[] };
}

/** `op.out_of_retention` (HTTP 409): Reserved: the read is older than the retention window. Reserved: never sent by this server version. */
export class NimbusOutOfRetentionError extends NimbusError {
  declare readonly detail: { retryability: string };
}

/** `op.historical_read` (HTTP 400): Reserved: historical reads are not supported here. Reserved: never sent by this server version. */
export class NimbusHistoricalReadError extends NimbusError {
  declare readonly detail: { historicalReadKind: string };
}

/** `session.tenant_not_found` (HTTP 404): The tenant does not exist. */
export class NimbusTenantNotFoundError extends NimbusError {
  declare readonly detail: { tenantId: string };
}

/** `session.subscription_error` (WebSocket only): A live subscription failed or was removed. */
export class NimbusSubscriptionError extends NimbusError {
  declare readonly detail: { subscriptionId: number; dropped: boolean; reason: string; cause?: Record<string, unknown> };
}

/** `session.unsubscribe_failed` (WebSocket only): There is no such subscription. */
export class NimbusUnsubscribeFailedError extends NimbusError {
  declare readonly detail: { subscriptionId: number };
}

/** `service.route_not_found` (HTTP 404): No route matches the path. */
export class NimbusRouteNotFoundError extends NimbusError {
  declare readonly detail: { method: string; path: string };
}

/** `service.capability_unavailable` (HTTP 501): The feature is declared but not available in this version. */
export class NimbusCapabilityUnavailableError extends NimbusError {
  declare readonly detail: { capability: string; reason: string };
}

/** `service.unavailable` (HTTP 503): The storage backend is down. */
export class NimbusUnavailableError extends NimbusError {
  declare readonly detail: { storageKind: string };
}

/** `service.storage_busy` (HTTP 503): Storage is busy. */
export class NimbusStorageBusyError extends NimbusError {
  declare readonly detail: { storageKind: string };
}

/** `service.storage_transient` (HTTP 503): A transient storage failure. */
export class NimbusStorageTransientError extends NimbusError {
  declare readonly detail: { storageKind: string };
}

/** `service.storage_io` (HTTP 500): A storage I/O error. */
export class NimbusStorageIoError extends NimbusError {
  declare readonly detail: { storageKind: string };
}

/** `service.storage_corruption` (HTTP 500): A storage integrity check failed. */
export class NimbusStorageCorruptionError extends NimbusError {
  declare readonly detail: { storageKind: string };
}

/** `service.storage_other` (HTTP 500): Another storage failure. */
export class NimbusStorageOtherError extends NimbusError {
  declare readonly detail: { storageKind: string };
}

/** `service.serialization` (HTTP 500): Stored data could not be encoded or decoded. */
export class NimbusSerializationError extends NimbusError {
  declare readonly detail: null;
}

/** `service.internal` (HTTP 500): An internal error; the message is generic, see the server log by `requestId`. */
export class NimbusInternalError extends NimbusError {
  declare readonly detail: null;
}

/** `service.transport` (HTTP 503): Reserved: a transport failure. Reserved: never sent by this server version. */
export class NimbusTransportError extends NimbusError {
  declare readonly detail: null;
}

/** `protocol.no_overlap` (HTTP 400): No common WebSocket subprotocol (answered before the upgrade). */
export class NimbusProtocolNoOverlapError extends NimbusError {
  declare readonly detail: { serverSupports: unknown[]; clientOffered: unknown[] };
}

/** `protocol.hello_timeout` (WebSocket only): No `client_hello` arrived in time. */
export class NimbusProtocolHelloTimeoutError extends NimbusError {
  declare readonly detail: { timeoutMs: number };
}

/** `protocol.invalid_json` (WebSocket only): A frame could not be decoded (fatal during the handshake, an error after it). */
export class NimbusProtocolInvalidJsonError extends NimbusError {
  declare readonly detail: { reason?: string };
}

/** `protocol.unsupported_message_type` (WebSocket only): The first frame was not the expected type. */
export class NimbusProtocolUnsupportedMessageTypeError extends NimbusError {
  declare readonly detail: { receivedType: string; expectedType: string };
}

/** `protocol.unsupported_version` (WebSocket only): The client's protocol version is not supported. */
export class NimbusProtocolUnsupportedVersionError extends NimbusError {
  declare readonly detail: { receivedProtocol: string };
}

/** `protocol.unsupported_binary` (WebSocket only): A binary frame arrived during the handshake. */
export class NimbusProtocolUnsupportedBinaryError extends NimbusError {
  declare readonly detail: null;
}

/** `function.not_found` (HTTP 404): No such function in the tenant's function set. */
export class NimbusFunctionNotFoundError extends NimbusError {
  declare readonly detail: { name: string };
}

/** `function.invalid_args` (HTTP 400): The function's args validator rejected the call. */
export class NimbusFunctionInvalidArgsError extends NimbusError {
  declare readonly detail: { name: string; path: string; reason: string };
}

/** `function.deploy_failed` (HTTP 400): The deploy was rejected; the previous function set stays live. */
export class NimbusFunctionDeployFailedError extends NimbusError {
  declare readonly detail: { errors: unknown[] };
}

/** `function.thrown` (HTTP 422): The function threw. */
export class NimbusFunctionThrownError extends NimbusError {
  declare readonly detail: { name: string; errorName: string; message: string; stack: string; data?: unknown; logs: unknown[]; callPath?: unknown[]; reason?: string };
}

/** `runtime.execution_timeout` (HTTP 408): A CPU or wall-clock limit was hit. */
export class NimbusRuntimeExecutionTimeoutError extends NimbusError {
  declare readonly detail: { name: string; limit: string; limitMs: number; logs: unknown[] };
}

/** `runtime.memory_limit` (HTTP 422): The isolate's memory limit was hit. */
export class NimbusRuntimeMemoryLimitError extends NimbusError {
  declare readonly detail: { name: string; limitBytes: number; logs: unknown[] };
}

/** `runtime.promise_stalled` (HTTP 422): The handler's promise can never settle. */
export class NimbusRuntimePromiseStalledError extends NimbusError {
  declare readonly detail: { name: string; logs: unknown[] };
}

/** `runtime.system_timeout` (HTTP 408): Reserved: a system timeout. Reserved: never sent by this server version. */
export class NimbusRuntimeSystemTimeoutError extends NimbusError {
  declare readonly detail: null;
}

/** `sandbox.backend_unavailable` (HTTP 501): The sandbox backend is not usable on this host (e.g. `krun` without microVM support). */
export class NimbusSandboxBackendUnavailableError extends NimbusError {
  declare readonly detail: { backend: string; reason: string };
}

/** `sandbox.unresponsive` (HTTP 503): The sandbox's supervisor did not answer within its deadline (it is stuck); stop or delete the sandbox, which the server then cleans up itself. */
export class NimbusSandboxUnresponsiveError extends NimbusError {
  declare readonly detail: { limitMs: number };
}

/** `sandbox.port_unreachable` (HTTP 502): Nothing in the sandbox accepted a connection on that port of its loopback, or what answered is not HTTP; start the server (listening on 127.0.0.1, ::1 or all addresses) and retry. */
export class NimbusSandboxPortUnreachableError extends NimbusError {
  declare readonly detail: { port: number; reason: string };
}

/** `sandbox.egress_beyond_policy` (HTTP 403): An egress rule asks for a host or port the operator's `--egress-policy` ceiling does not cover; remove the rule, or ask the operator to widen the policy. */
export class NimbusSandboxEgressBeyondPolicyError extends NimbusError {
  declare readonly detail: { field: string; host: string; port?: number };
}

/** `sandbox.egress_refused` (HTTP 403): The sandbox's egress proxy refused a connection or request (answered inside the sandbox, and logged in its decision log); add an allow rule for the host with `PUT .../sandboxes/{id}/network`. */
export class NimbusSandboxEgressRefusedError extends NimbusError {
  declare readonly detail: { host: string; port: number; reason: string };
}

/** `sandbox.egress_upstream_failed` (HTTP 502): The egress proxy allowed a request but could not reach the upstream (name unresolvable, connection refused, TLS verification failed); answered inside the sandbox. */
export class NimbusSandboxEgressUpstreamFailedError extends NimbusError {
  declare readonly detail: { host: string; port: number; reason: string };
}

/** `sandbox.image_not_found` (HTTP 404): The image or platform variant does not exist. */
export class NimbusSandboxImageNotFoundError extends NimbusError {
  declare readonly detail: { reference: string; reason: string };
}

/** `sandbox.image_pull_failed` (HTTP 502): The registry was unreachable, refused, or sent bad data. */
export class NimbusSandboxImagePullFailedError extends NimbusError {
  declare readonly detail: { reference: string; registry: string; reason: string; httpStatus?: number };
}

/** `browser.unavailable` (HTTP 503): The browser service's Chromium did not answer on its DevTools endpoint (it is starting, restarting or crashed); wait for the service to be `ready` and retry. */
export class NimbusBrowserUnavailableError extends NimbusError {
  declare readonly detail: { service: string; reason: string };
}

/** `browser.page_not_found` (HTTP 404): No page of this session has that `pageId` (it was closed, or belongs to another session), or the session has no page left; list them with `page/pages` or open one with `page/open`. */
export class NimbusBrowserPageNotFoundError extends NimbusError {
  declare readonly detail: { pageId?: string };
}

/** `browser.element_not_found` (HTTP 404): No element matches the `ref` or `selector` on the page (a ref is valid until its element leaves the page); take a new `page/snapshot` and use one of its refs. */
export class NimbusBrowserElementNotFoundError extends NimbusError {
  declare readonly detail: { ref?: string; selector?: string; reason: string };
}

/** `browser.navigation_failed` (HTTP 502): The page could not be loaded: the name did not resolve, the connection failed, or the egress proxy refused the host; check the URL and the service's `network` rules. */
export class NimbusBrowserNavigationFailedError extends NimbusError {
  declare readonly detail: { url: string; reason: string };
}

/** `browser.timeout` (HTTP 504): A page operation did not finish within its `timeoutMs` (a page still loading, an element never actionable); retry with a larger `timeoutMs` or wait for less. */
export class NimbusBrowserTimeoutError extends NimbusError {
  declare readonly detail: { operation: string; timeoutMs: number };
}

/** `browser.evaluation_failed` (HTTP 422): The expression threw in the page, or its result cannot be returned as JSON; `detail.exception` holds the page's error text. */
export class NimbusBrowserEvaluationFailedError extends NimbusError {
  declare readonly detail: { exception: string };
}

/** `browser.page_crashed` (HTTP 502): The page's renderer died (it ran out of the service's memory, or crashed); close it and open a new page. */
export class NimbusBrowserPageCrashedError extends NimbusError {
  declare readonly detail: { pageId: string };
}

/** Any `rate.*` code (`rate.resource_exhausted`, `rate.overloaded`, `rate.committer_full`, `rate.rejected_before_execution`, `rate.limited`): a queue, quota or limit is full; wait, then retry. */
export class NimbusRateLimitedError extends NimbusError {
  declare readonly detail: { resource: string; limit: number; current?: number; retryAfterMs?: number } | null | { capacity: number } | { retryAfterMs: number };
}

registerErrorClasses({
  "auth.unauthorized": NimbusUnauthorizedError,
  "auth.forbidden": NimbusForbiddenError,
  "auth.permission_denied": NimbusPermissionDeniedError,
  "op.invalid_input": NimbusInvalidInputError,
  "op.method_not_allowed": NimbusMethodNotAllowedError,
  "op.payload_too_large": NimbusPayloadTooLargeError,
  "op.cap_exceeded": NimbusCapExceededError,
  "op.not_found": NimbusNotFoundError,
  "op.document_not_found": NimbusDocumentNotFoundError,
  "op.scheduled_job_not_found": NimbusScheduledJobNotFoundError,
  "op.schema_not_found": NimbusSchemaNotFoundError,
  "op.already_exists": NimbusAlreadyExistsError,
  "op.conflict": NimbusConflictError,
  "op.precondition_failed": NimbusPreconditionFailedError,
  "op.schema_validation": NimbusSchemaValidationError,
  "op.cancelled": NimbusCancelledError,
  "op.wait_timeout": NimbusWaitTimeoutError,
  "op.body_timeout": NimbusBodyTimeoutError,
  "op.wait_unsatisfiable": NimbusWaitUnsatisfiableError,
  "op.failed": NimbusFailedError,
  "op.missing_index": NimbusMissingIndexError,
  "op.out_of_retention": NimbusOutOfRetentionError,
  "op.historical_read": NimbusHistoricalReadError,
  "session.tenant_not_found": NimbusTenantNotFoundError,
  "session.subscription_error": NimbusSubscriptionError,
  "session.unsubscribe_failed": NimbusUnsubscribeFailedError,
  "rate.resource_exhausted": NimbusRateLimitedError,
  "rate.overloaded": NimbusRateLimitedError,
  "rate.committer_full": NimbusRateLimitedError,
  "rate.rejected_before_execution": NimbusRateLimitedError,
  "rate.limited": NimbusRateLimitedError,
  "service.route_not_found": NimbusRouteNotFoundError,
  "service.capability_unavailable": NimbusCapabilityUnavailableError,
  "service.unavailable": NimbusUnavailableError,
  "service.storage_busy": NimbusStorageBusyError,
  "service.storage_transient": NimbusStorageTransientError,
  "service.storage_io": NimbusStorageIoError,
  "service.storage_corruption": NimbusStorageCorruptionError,
  "service.storage_other": NimbusStorageOtherError,
  "service.serialization": NimbusSerializationError,
  "service.internal": NimbusInternalError,
  "service.transport": NimbusTransportError,
  "protocol.no_overlap": NimbusProtocolNoOverlapError,
  "protocol.hello_timeout": NimbusProtocolHelloTimeoutError,
  "protocol.invalid_json": NimbusProtocolInvalidJsonError,
  "protocol.unsupported_message_type": NimbusProtocolUnsupportedMessageTypeError,
  "protocol.unsupported_version": NimbusProtocolUnsupportedVersionError,
  "protocol.unsupported_binary": NimbusProtocolUnsupportedBinaryError,
  "function.not_found": NimbusFunctionNotFoundError,
  "function.invalid_args": NimbusFunctionInvalidArgsError,
  "function.deploy_failed": NimbusFunctionDeployFailedError,
  "function.thrown": NimbusFunctionThrownError,
  "runtime.execution_timeout": NimbusRuntimeExecutionTimeoutError,
  "runtime.memory_limit": NimbusRuntimeMemoryLimitError,
  "runtime.promise_stalled": NimbusRuntimePromiseStalledError,
  "runtime.system_timeout": NimbusRuntimeSystemTimeoutError,
  "sandbox.backend_unavailable": NimbusSandboxBackendUnavailableError,
  "sandbox.unresponsive": NimbusSandboxUnresponsiveError,
  "sandbox.port_unreachable": NimbusSandboxPortUnreachableError,
  "sandbox.egress_beyond_policy": NimbusSandboxEgressBeyondPolicyError,
  "sandbox.egress_refused": NimbusSandboxEgressRefusedError,
  "sandbox.egress_upstream_failed": NimbusSandboxEgressUpstreamFailedError,
  "sandbox.image_not_found": NimbusSandboxImageNotFoundError,
  "sandbox.image_pull_failed": NimbusSandboxImagePullFailedError,
  "browser.unavailable": NimbusBrowserUnavailableError,
  "browser.page_not_found": NimbusBrowserPageNotFoundError,
  "browser.element_not_found": NimbusBrowserElementNotFoundError,
  "browser.navigation_failed": NimbusBrowserNavigationFailedError,
  "browser.timeout": NimbusBrowserTimeoutError,
  "browser.evaluation_failed": NimbusBrowserEvaluationFailedError,
  "browser.page_crashed": NimbusBrowserPageCrashedError,
});
