//! The catalog table itself. Add a code here and every generated form follows.

use super::Action::{self, *};
use super::Severity::{self, Error, Fatal};
use super::{CATALOG_VERSION, CodeSpec, Surface};
use serde::{Serialize, Serializer};

/// Starts a catalog entry with an HTTP status, observed over HTTP only.
const fn http(
    status: u16,
    severity: Severity,
    retryable: bool,
    action: Option<Action>,
    detail: &'static [(&'static str, &'static str)],
) -> CodeSpec {
    CodeSpec {
        code: "",
        http_status: Some(status),
        severity,
        retryable,
        action,
        detail,
        meaning: "",
        surface: Surface::Http,
        reserved: false,
        ours: false,
        since: CATALOG_VERSION,
    }
}

/// Starts a catalog entry for a WebSocket-only code.
const fn ws(
    severity: Severity,
    retryable: bool,
    action: Option<Action>,
    detail: &'static [(&'static str, &'static str)],
) -> CodeSpec {
    let mut spec = http(0, severity, retryable, action, detail);
    spec.http_status = None;
    spec.surface = Surface::Ws;
    spec
}

impl CodeSpec {
    /// Marks the code as observable in WebSocket frames as well as HTTP responses.
    const fn both(mut self) -> Self {
        self.surface = Surface::Both;
        self
    }

    /// Marks the code as reserved: catalogued, never emitted by this version.
    const fn reserved(mut self) -> Self {
        self.reserved = true;
        self
    }

    /// Marks the code as a Nimbus addition beyond the public product.
    const fn ours(mut self) -> Self {
        self.ours = true;
        self
    }

    const fn named(mut self, code: &'static str, meaning: &'static str) -> Self {
        self.code = code;
        self.meaning = meaning;
        self
    }
}

const REASON: &[(&str, &str)] = &[("reason", "string")];
const STORAGE: &[(&str, &str)] = &[("storageKind", "string")];
const NONE: &[(&str, &str)] = &[];

macro_rules! catalog {
    ($( $variant:ident = $code:literal, $meaning:literal => $spec:expr; )+) => {
        /// Every error code Nimbus can emit. An error instance is typed by this enum, so an
        /// uncatalogued code cannot be constructed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( #[doc = $meaning] $variant, )+
        }

        impl ErrorCode {
            /// Every code, in catalog order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant ),+ ];

            /// The catalog entry of this code.
            pub fn spec(self) -> &'static CodeSpec {
                match self {
                    $( ErrorCode::$variant => {
                        const SPEC: CodeSpec = $spec.named($code, $meaning);
                        &SPEC
                    } )+
                }
            }
        }
    };
}

catalog! {
    AuthUnauthorized = "auth.unauthorized",
        "Credential missing, invalid, revoked, or session cookie expired; also the WS `authenticate` frame."
        => http(401, Error, false, Some(Reauthenticate), REASON).both();
    AuthForbidden = "auth.forbidden",
        "Origin not allowed, or an internal function called from outside."
        => http(403, Error, false, Some(ContactOperator), &[("reason", "string?"), ("name", "string?"), ("visibility", "string?")]);
    AuthPermissionDenied = "auth.permission_denied",
        "A table access policy denied the operation."
        => http(403, Error, false, Some(FixRequest), &[("table", "string"), ("operation", "string")]).both();

    OpInvalidInput = "op.invalid_input",
        "The request is malformed, has the wrong content type, or breaks a validation rule."
        => http(400, Error, false, Some(FixRequest), &[("field", "string?"), ("reason", "string"), ("cursorFloor", "integer?"), ("latestSequence", "integer?")]).both();
    OpMethodNotAllowed = "op.method_not_allowed",
        "The route exists but not with this method; the `Allow` header lists the methods it has."
        => http(405, Error, false, Some(FixRequest), &[("method", "string"), ("allowed", "array")]).ours();
    OpPayloadTooLarge = "op.payload_too_large",
        "The body or file is larger than the limit."
        => http(413, Error, false, Some(ReduceRequest), &[("limitBytes", "integer"), ("sizeBytes", "integer?")]).ours();
    OpCapExceeded = "op.cap_exceeded",
        "A documented cap was exceeded (document size, resources, nested calls...)."
        => http(400, Error, false, Some(ReduceRequest), &[("cap", "string"), ("observed", "integer"), ("limit", "integer")]).both();
    OpNotFound = "op.not_found",
        "A sandbox, session, service, process, file or cron is missing (`resource` names which)."
        => http(404, Error, false, None, &[("resource", "string"), ("id", "string?"), ("name", "string?"), ("path", "string?")]);
    OpDocumentNotFound = "op.document_not_found",
        "The document does not exist."
        => http(404, Error, false, None, &[("table", "string"), ("documentId", "string")]).both();
    OpScheduledJobNotFound = "op.scheduled_job_not_found",
        "The scheduled job is unknown, or not in a state the operation needs."
        => http(404, Error, false, None, &[("jobId", "string"), ("state", "string?")]);
    OpSchemaNotFound = "op.schema_not_found",
        "The table has no schema."
        => http(404, Error, false, None, &[("table", "string")]);
    OpAlreadyExists = "op.already_exists",
        "A tenant, service, cron or document with this id already exists."
        => http(409, Error, false, None, &[("resource", "string"), ("id", "string?"), ("name", "string?")]);
    OpConflict = "op.conflict",
        "The resource's state forbids the operation; `reason` names it. Retryable only for `transaction_conflict`."
        => http(409, Error, false, Some(FixRequest), &[("reason", "string")]).both();
    OpPreconditionFailed = "op.precondition_failed",
        "A conditional write named a stale generation."
        => http(412, Error, false, Some(RefreshResource), &[("expectedGeneration", "integer"), ("currentGeneration", "integer")]);
    OpSchemaValidation = "op.schema_validation",
        "A document or index violates the table's schema."
        => http(422, Error, false, Some(FixRequest), &[("table", "string"), ("field", "string?"), ("reason", "string?"), ("violationCount", "integer?"), ("violations", "array?")]).both();
    OpCancelled = "op.cancelled",
        "The request was cancelled before its commit point."
        => http(408, Error, true, Some(Retry), NONE).both();
    OpWaitTimeout = "op.wait_timeout",
        "The long-poll deadline passed before the awaited condition held."
        => http(408, Error, true, Some(Retry), &[("waitFor", "string"), ("timeoutMs", "integer"), ("observed", "object")]).ours();
    OpBodyTimeout = "op.body_timeout",
        "The request body did not arrive within its deadline."
        => http(408, Error, true, Some(Retry), &[("timeoutMs", "integer")]).ours();
    OpWaitUnsatisfiable = "op.wait_unsatisfiable",
        "The awaited condition can no longer happen."
        => http(409, Error, false, Some(FixRequest), &[("waitFor", "string"), ("observed", "object")]).ours();
    OpFailed = "op.failed",
        "A WebSocket request failed and no more specific code applies."
        => ws(Error, false, None, NONE);
    OpMissingIndex = "op.missing_index",
        "Reserved: the query needs an index."
        => http(412, Error, false, Some(CreateIndex), &[("fields", "array")]).reserved();
    OpOutOfRetention = "op.out_of_retention",
        "Reserved: the read is older than the retention window."
        => http(409, Error, true, Some(RestartTransaction), &[("retryability", "string")]).reserved();
    OpHistoricalRead = "op.historical_read",
        "Reserved: historical reads are not supported here."
        => http(400, Error, false, Some(FixRequest), &[("historicalReadKind", "string")]).reserved();

    SessionTenantNotFound = "session.tenant_not_found",
        "The tenant does not exist."
        => http(404, Error, false, None, &[("tenantId", "string")]).both();
    SessionSubscriptionError = "session.subscription_error",
        "A live subscription failed or was removed."
        => ws(Error, false, None, &[("subscriptionId", "integer"), ("dropped", "boolean"), ("reason", "string"), ("cause", "object?")]);
    SessionUnsubscribeFailed = "session.unsubscribe_failed",
        "There is no such subscription."
        => ws(Error, false, Some(FixRequest), &[("subscriptionId", "integer")]);

    RateResourceExhausted = "rate.resource_exhausted",
        "A queue, quota or slot pool is full (writes, function slots, sandboxes, sessions, processes)."
        => http(429, Error, true, Some(WaitAndRetry), &[("resource", "string"), ("limit", "integer"), ("current", "integer?"), ("retryAfterMs", "integer?")]).both();
    RateOverloaded = "rate.overloaded",
        "Reserved: the server is overloaded."
        => http(429, Error, true, Some(WaitAndRetry), NONE).reserved();
    RateCommitterFull = "rate.committer_full",
        "Reserved: the committer queue is full."
        => http(429, Error, true, Some(WaitAndRetry), &[("capacity", "integer")]).reserved();
    RateRejectedBeforeExecution = "rate.rejected_before_execution",
        "Reserved: the request was rejected before it ran."
        => http(429, Error, true, Some(Retry), NONE).reserved();
    RateLimited = "rate.limited",
        "Reserved: the caller is rate limited."
        => http(429, Error, true, Some(WaitAndRetry), &[("retryAfterMs", "integer")]).reserved();

    ServiceRouteNotFound = "service.route_not_found",
        "No route matches the path."
        => http(404, Error, false, Some(FixRequest), &[("method", "string"), ("path", "string")]);
    ServiceCapabilityUnavailable = "service.capability_unavailable",
        "The feature is declared but not available in this version."
        => http(501, Error, false, Some(UpgradeServer), &[("capability", "string"), ("reason", "string")]).ours();
    ServiceUnavailable = "service.unavailable",
        "The storage backend is down."
        => http(503, Error, true, Some(Retry), STORAGE).both();
    ServiceStorageBusy = "service.storage_busy",
        "Storage is busy."
        => http(503, Error, true, Some(WaitAndRetry), STORAGE).both();
    ServiceStorageTransient = "service.storage_transient",
        "A transient storage failure."
        => http(503, Error, true, Some(Retry), STORAGE).both();
    ServiceStorageIo = "service.storage_io",
        "A storage I/O error."
        => http(500, Error, true, Some(Retry), STORAGE).both();
    ServiceStorageCorruption = "service.storage_corruption",
        "A storage integrity check failed."
        => http(500, Fatal, false, Some(ContactOperator), STORAGE).both();
    ServiceStorageOther = "service.storage_other",
        "Another storage failure."
        => http(500, Error, false, None, STORAGE).both();
    ServiceSerialization = "service.serialization",
        "Stored data could not be encoded or decoded."
        => http(500, Error, false, None, NONE).both();
    ServiceInternal = "service.internal",
        "An internal error; the message is generic, see the server log by `requestId`."
        => http(500, Fatal, false, Some(ContactOperator), NONE).both();
    ServiceTransport = "service.transport",
        "Reserved: a transport failure."
        => http(503, Error, true, Some(Retry), NONE).reserved();

    ProtocolNoOverlap = "protocol.no_overlap",
        "No common WebSocket subprotocol (answered before the upgrade)."
        => http(400, Fatal, false, Some(UpgradeServer), &[("serverSupports", "array"), ("clientOffered", "array")]);
    ProtocolHelloTimeout = "protocol.hello_timeout",
        "No `client_hello` arrived in time."
        => ws(Fatal, true, Some(Retry), &[("timeoutMs", "integer")]);
    ProtocolInvalidJson = "protocol.invalid_json",
        "A frame could not be decoded (fatal during the handshake, an error after it)."
        => ws(Fatal, false, Some(FixRequest), &[("reason", "string?")]);
    ProtocolUnsupportedMessageType = "protocol.unsupported_message_type",
        "The first frame was not the expected type."
        => ws(Fatal, false, Some(FixRequest), &[("receivedType", "string"), ("expectedType", "string")]);
    ProtocolUnsupportedVersion = "protocol.unsupported_version",
        "The client's protocol version is not supported."
        => ws(Fatal, false, Some(UpgradeClient), &[("receivedProtocol", "string")]);
    ProtocolUnsupportedBinary = "protocol.unsupported_binary",
        "A binary frame arrived during the handshake."
        => ws(Fatal, false, Some(FixRequest), NONE);

    FunctionNotFound = "function.not_found",
        "No such function in the tenant's function set."
        => http(404, Error, false, Some(FixRequest), &[("name", "string")]).both().ours();
    FunctionInvalidArgs = "function.invalid_args",
        "The function's args validator rejected the call."
        => http(400, Error, false, Some(FixRequest), &[("name", "string"), ("path", "string"), ("reason", "string")]).both().ours();
    FunctionDeployFailed = "function.deploy_failed",
        "The deploy was rejected; the previous function set stays live."
        => http(400, Error, false, Some(FixFunction), &[("errors", "array")]).ours();
    FunctionThrown = "function.thrown",
        "The function threw."
        => http(422, Error, false, Some(FixFunction), &[("name", "string"), ("errorName", "string"), ("message", "string"), ("stack", "string"), ("data", "any?"), ("logs", "array"), ("callPath", "array?"), ("reason", "string?")]).both();
    RuntimeExecutionTimeout = "runtime.execution_timeout",
        "A CPU or wall-clock limit was hit."
        => http(408, Error, false, Some(FixFunction), &[("name", "string"), ("limit", "string"), ("limitMs", "integer"), ("logs", "array")]).both();
    RuntimeMemoryLimit = "runtime.memory_limit",
        "The isolate's memory limit was hit."
        => http(422, Error, false, Some(FixFunction), &[("name", "string"), ("limitBytes", "integer"), ("logs", "array")]).both().ours();
    RuntimePromiseStalled = "runtime.promise_stalled",
        "The handler's promise can never settle."
        => http(422, Error, false, Some(FixFunction), &[("name", "string"), ("logs", "array")]).both();
    RuntimeSystemTimeout = "runtime.system_timeout",
        "Reserved: a system timeout."
        => http(408, Error, false, Some(ContactOperator), NONE).reserved();

    SandboxBackendUnavailable = "sandbox.backend_unavailable",
        "The sandbox backend is not usable on this host (e.g. `krun` without microVM support)."
        => http(501, Error, false, Some(ContactOperator), &[("backend", "string"), ("reason", "string")]).ours();
    SandboxUnresponsive = "sandbox.unresponsive",
        "The sandbox's supervisor did not answer within its deadline (it is stuck); stop or delete the sandbox, which the server then cleans up itself."
        => http(503, Error, true, Some(Retry), &[("limitMs", "integer")]).ours();
    SandboxPortUnreachable = "sandbox.port_unreachable",
        "Nothing in the sandbox accepted a connection on that port of its loopback, or what answered is not HTTP; start the server (listening on 127.0.0.1, ::1 or all addresses) and retry."
        => http(502, Error, true, Some(Retry), &[("port", "integer"), ("reason", "string")]).ours();
    SandboxEgressBeyondPolicy = "sandbox.egress_beyond_policy",
        "An egress rule asks for a host or port the operator's `--egress-policy` ceiling does not cover; remove the rule, or ask the operator to widen the policy."
        => http(403, Error, false, Some(ContactOperator), &[("field", "string"), ("host", "string"), ("port", "integer?")]).ours();
    SandboxEgressRefused = "sandbox.egress_refused",
        "The sandbox's egress proxy refused a connection or request (answered inside the sandbox, and logged in its decision log); add an allow rule for the host with `PUT .../sandboxes/{id}/network`."
        => http(403, Error, false, Some(FixRequest), &[("host", "string"), ("port", "integer"), ("reason", "string")]).ours();
    SandboxEgressUpstreamFailed = "sandbox.egress_upstream_failed",
        "The egress proxy allowed a request but could not reach the upstream (name unresolvable, connection refused, TLS verification failed); answered inside the sandbox."
        => http(502, Error, true, Some(Retry), &[("host", "string"), ("port", "integer"), ("reason", "string")]).ours();
    SandboxImageNotFound = "sandbox.image_not_found",
        "The image or platform variant does not exist."
        => http(404, Error, false, Some(FixRequest), &[("reference", "string"), ("reason", "string")]).ours();
    SandboxImagePullFailed = "sandbox.image_pull_failed",
        "The registry was unreachable, refused, or sent bad data."
        => http(502, Error, true, Some(Retry), &[("reference", "string"), ("registry", "string"), ("reason", "string"), ("httpStatus", "integer?")]).ours();
    BrowserUnavailable = "browser.unavailable",
        "The browser service's Chromium did not answer on its DevTools endpoint (it is starting, restarting or crashed); wait for the service to be `ready` and retry."
        => http(503, Error, true, Some(WaitAndRetry), &[("service", "string"), ("reason", "string")]).ours();
    BrowserPageNotFound = "browser.page_not_found",
        "No page of this session has that `pageId` (it was closed, or belongs to another session), or the session has no page left; list them with `page/pages` or open one with `page/open`."
        => http(404, Error, false, Some(FixRequest), &[("pageId", "string?")]).ours();
    BrowserElementNotFound = "browser.element_not_found",
        "No element matches the `ref` or `selector` on the page (a ref is valid until its element leaves the page); take a new `page/snapshot` and use one of its refs."
        => http(404, Error, false, Some(FixRequest), &[("ref", "string?"), ("selector", "string?"), ("reason", "string")]).ours();
    BrowserNavigationFailed = "browser.navigation_failed",
        "The page could not be loaded: the name did not resolve, the connection failed, or the egress proxy refused the host; check the URL and the service's `network` rules."
        => http(502, Error, false, Some(FixRequest), &[("url", "string"), ("reason", "string")]).ours();
    BrowserTimeout = "browser.timeout",
        "A page operation did not finish within its `timeoutMs` (a page still loading, an element never actionable); retry with a larger `timeoutMs` or wait for less."
        => http(504, Error, true, Some(Retry), &[("operation", "string"), ("timeoutMs", "integer")]).ours();
    BrowserEvaluationFailed = "browser.evaluation_failed",
        "The expression threw in the page, or its result cannot be returned as JSON; `detail.exception` holds the page's error text."
        => http(422, Error, false, Some(FixRequest), &[("exception", "string")]).ours();
    BrowserPageCrashed = "browser.page_crashed",
        "The page's renderer died (it ran out of the service's memory, or crashed); close it and open a new page."
        => http(502, Error, false, Some(FixRequest), &[("pageId", "string")]).ours();
}

impl ErrorCode {
    /// The stable code string.
    pub fn as_str(self) -> &'static str {
        self.spec().code
    }

    /// Looks a code string up in the catalog.
    pub fn from_code(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == code)
    }

    /// The HTTP status to answer with (500 for a WebSocket-only code, which should not reach HTTP).
    pub fn http_status(self) -> u16 {
        self.spec().http_status.unwrap_or(500)
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
