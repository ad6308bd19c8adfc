//! Every catalog code this build can emit is asserted by at least one test (errors.md §1,
//! test 4). Codes no test can cause are listed as such, so a new code must be placed in one list
//! or the other.

use std::collections::BTreeSet;

use nimbus_core::ErrorCode;

/// Codes the storage and server surfaces emit today, each asserted somewhere in this suite.
const EMITTED: &[&str] = &[
    "auth.unauthorized",
    "auth.forbidden",
    "auth.permission_denied",
    "op.invalid_input",
    "op.method_not_allowed",
    "op.payload_too_large",
    "op.cap_exceeded",
    "op.document_not_found",
    "op.schema_not_found",
    "op.already_exists",
    "op.schema_validation",
    "session.tenant_not_found",
    "service.route_not_found",
    "service.serialization",
    "service.storage_corruption",
    "service.storage_busy",
    "sandbox.image_not_found",
    "sandbox.image_pull_failed",
    "sandbox.backend_unavailable",
    "sandbox.unresponsive",
    "sandbox.port_unreachable",
    "sandbox.egress_beyond_policy",
    "sandbox.egress_refused",
    "sandbox.egress_upstream_failed",
    "op.body_timeout",
    "op.not_found",
    "op.conflict",
    "op.wait_timeout",
    "op.wait_unsatisfiable",
    "rate.resource_exhausted",
    "op.precondition_failed",
    "service.capability_unavailable",
    "op.scheduled_job_not_found",
    "function.not_found",
    "function.invalid_args",
    "function.deploy_failed",
    "function.thrown",
    "runtime.execution_timeout",
    "runtime.memory_limit",
    "runtime.promise_stalled",
    "session.unsubscribe_failed",
    "protocol.no_overlap",
    "protocol.hello_timeout",
    "protocol.invalid_json",
    "protocol.unsupported_message_type",
    "protocol.unsupported_version",
    "protocol.unsupported_binary",
    "session.subscription_error",
    "browser.page_not_found",
    "browser.element_not_found",
    "browser.navigation_failed",
    "browser.timeout",
    "browser.evaluation_failed",
    "browser.page_crashed",
];

/// Codes emitted by the engine but only reachable deterministically from a unit test (the
/// writer's queue can be held full there), with the file whose tests assert them.
const UNIT_TESTED: &[(&str, &str)] = &[("browser.unavailable", "nimbus-browser/src/cdp/socket.rs")];

/// Failures with no safe way
/// to cause them here (`op.failed`, `service.unavailable`, storage I/O and transient errors,
/// `service.internal`); and `op.cancelled`, which only ever goes to a caller that already left,
/// so no client can observe it.
const NOT_EMITTED_YET: &[&str] = &[
    "op.cancelled",
    "op.failed",
    "service.unavailable",
    "service.storage_transient",
    "service.storage_io",
    "service.storage_other",
    "service.internal",
];

#[test]
fn every_emitted_code_is_asserted_by_a_test() {
    let catalog: BTreeSet<&str> =
        ErrorCode::ALL.iter().map(|c| c.spec()).filter(|s| !s.reserved).map(|s| s.code).collect();
    let classified: BTreeSet<&str> = EMITTED
        .iter()
        .copied()
        .chain(UNIT_TESTED.iter().map(|(code, _)| *code))
        .chain(NOT_EMITTED_YET.iter().copied())
        .collect();
    assert_eq!(classified, catalog, "classify every non-reserved catalog code exactly once");

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/blackbox");
    let suite: String = std::fs::read_dir(dir)
        .expect("read the suite")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "rs") && !path.ends_with("coverage.rs"))
        .map(|path| std::fs::read_to_string(path).expect("read a test file"))
        .collect();
    for code in EMITTED {
        assert!(suite.contains(&format!("\"{code}\"")), "no black-box test asserts {code}");
    }
    for (code, file) in UNIT_TESTED {
        let source = std::fs::read_to_string(format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"))).expect("read");
        let variant = ErrorCode::from_code(code).map(|c| format!("{c:?}")).expect("catalogued");
        assert!(source.contains(&format!("ErrorCode::{variant}")), "{file} does not assert {code}");
    }
}
