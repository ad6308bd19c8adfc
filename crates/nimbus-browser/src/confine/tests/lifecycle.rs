//! The end of a socket, hostile input from Chromium, and the bounds on what is tracked.

use serde_json::json;

use super::{OWN, Rig, attached, info, only_chromium, only_client, to_chromium, to_client};
use crate::confine::{Action, MAX_TRACKED};

#[test]
fn teardown_disposes_of_the_created_contexts() {
    let mut rig = Rig::new();
    assert!(rig.confinement.teardown().is_empty());
    assert!(rig.confinement.teardown_finished());

    let mut rig = Rig::new();
    for (id, context) in [(1, "CTX-A"), (2, "CTX-B")] {
        only_chromium(&rig.client(json!({"id": id, "method": "Target.createBrowserContext"})));
        rig.chromium(json!({"id": id, "result": {"browserContextId": context}}));
    }
    let sent: Vec<_> = rig.confinement.teardown().iter().map(|text| super::parse(text)).collect();
    assert_eq!(
        sent,
        [
            json!({"id": 3, "method": "Target.disposeBrowserContext", "params": {"browserContextId": "CTX-A"}}),
            json!({"id": 4, "method": "Target.disposeBrowserContext", "params": {"browserContextId": "CTX-B"}}),
        ]
    );
    assert!(!rig.confinement.teardown_finished());
    assert!(rig.chromium(json!({"id": 3, "result": {}})).is_empty());
    assert!(!rig.confinement.teardown_finished());
    // A failed dispose ends the wait as well (best effort).
    assert!(rig.chromium(json!({"id": 4, "error": {"code": -32000, "message": "x"}})).is_empty());
    assert!(rig.confinement.teardown_finished());
    // Nothing more is taken from the client.
    assert!(rig.client(json!({"id": 9, "method": "Browser.getVersion"})).is_empty());
}

#[test]
fn a_context_still_being_created_at_teardown_is_disposed_when_it_arrives() {
    let mut rig = Rig::new();
    only_chromium(&rig.client(json!({"id": 1, "method": "Target.createBrowserContext"})));
    assert!(rig.confinement.teardown().is_empty());
    assert!(!rig.confinement.teardown_finished());
    let actions = rig.chromium(json!({"id": 1, "result": {"browserContextId": "CTX-LATE"}}));
    assert_eq!(
        only_chromium(&actions),
        json!({"id": 2, "method": "Target.disposeBrowserContext", "params": {"browserContextId": "CTX-LATE"}})
    );
    assert!(!rig.confinement.teardown_finished());
    rig.chromium(json!({"id": 2, "result": {}}));
    assert!(rig.confinement.teardown_finished());
}

#[test]
fn a_command_held_behind_a_check_is_dropped_at_teardown() {
    let mut rig = Rig::new();
    let check = only_chromium(&rig.client(json!({"id": 1, "method": "Target.createTarget", "params": {"url": ""}})));
    assert!(rig.client(json!({"id": 2, "method": "Browser.getVersion"})).is_empty());
    assert!(rig.confinement.teardown().is_empty());
    assert!(rig.chromium(json!({"id": check["id"], "result": {"targetInfos": []}})).is_empty());
}

#[test]
fn hostile_messages_from_chromium_are_dropped() {
    let mut rig = Rig::new();
    rig.attach_page("S1", "T1");
    for text in [
        "not json",
        "[]",
        "7",
        r#"{"id":"1","result":{}}"#,
        r#"{"id":-1,"result":{}}"#,
        r#"{"id":1e99,"result":{}}"#,
        r#"{"id":4294967297,"result":{}}"#,
        r#"{"method":5}"#,
        r#"{"method":"Target.attachedToTarget"}"#,
        r#"{"method":"Target.attachedToTarget","params":{"sessionId":5,"targetInfo":[]}}"#,
        r#"{"method":"Target.targetCreated","params":{"targetInfo":"x"}}"#,
        r#"{"method":"Target.detachedFromTarget","params":null}"#,
        r#"{"method":"Page.loadEventFired","sessionId":["S1"]}"#,
        r#"{"method":"Page.loadEventFired","method":"Page.loadEventFired","sessionId":"S1"}"#,
    ] {
        assert!(rig.confinement.from_chromium(text).is_empty(), "{text}");
    }
    // A reply the proxy cannot read still answers the client, with an error.
    let id = rig.passes(json!({"id": 5, "method": "Page.enable", "sessionId": "S1"}));
    let reply = only_client(&rig.confinement.from_chromium(&format!(r#"{{"id":{id},"sessionId":"S1"}}"#)));
    assert_eq!(reply["id"], json!(5));
    assert_eq!(reply["error"]["code"], json!(-32603));
    // Filters tolerate shapes they do not expect.
    let id = rig.passes(json!({"id": 6, "method": "Target.getTargets"}));
    let reply = only_client(&rig.chromium(json!({"id": id, "result": {"targetInfos": {"not": "a list"}}})));
    assert_eq!(reply["id"], json!(6));
    let id = rig.passes(json!({"id": 7, "method": "Target.getBrowserContexts"}));
    let reply = only_client(&rig.chromium(json!({"id": id, "result": [1]})));
    assert_eq!(reply, json!({"id": 7, "result": [1]}));
}

#[test]
fn sessions_beyond_the_cap_are_released() {
    let mut rig = Rig::new();
    for n in 0..MAX_TRACKED {
        let actions = rig.chromium(attached(&format!("S{n}"), &format!("T{n}"), OWN, "page", false, None));
        assert_eq!(to_client(&actions).len(), 1);
    }
    assert_eq!(rig.confinement.owned.tracked_sessions(), MAX_TRACKED);
    let actions = rig.chromium(attached("ONE-TOO-MANY", "TX", OWN, "page", true, None));
    assert!(to_client(&actions).is_empty());
    assert_eq!(to_chromium(&actions).len(), 2);
    rig.refuses(json!({"id": 1, "method": "Target.attachToTarget", "params": {"targetId": "T1", "flatten": true}}));
    // A detach makes room again.
    rig.chromium(json!({"method": "Target.detachedFromTarget", "params": {"sessionId": "S0"}}));
    let actions = rig.chromium(attached("S-NEW", "T-NEW", OWN, "page", false, None));
    assert_eq!(to_client(&actions).len(), 1);
}

#[test]
fn targets_beyond_the_cap_forget_the_oldest() {
    let mut rig = Rig::new();
    for n in 0..MAX_TRACKED + 5 {
        let event =
            json!({"method": "Target.targetCreated", "params": {"targetInfo": info(&format!("T{n}"), OWN, "page")}});
        assert!(matches!(rig.chromium(event).as_slice(), [Action::ToClient(_)]));
    }
    assert_eq!(rig.confinement.owned.tracked_targets(), MAX_TRACKED);
    rig.passes(
        json!({"id": 1, "method": "Target.activateTarget", "params": {"targetId": format!("T{}", MAX_TRACKED + 4)}}),
    );
    // A forgotten one costs a question to Chromium, not a wrong answer.
    let check =
        only_chromium(&rig.client(json!({"id": 2, "method": "Target.activateTarget", "params": {"targetId": "T0"}})));
    assert_eq!(check["method"], json!("Target.getTargetInfo"));
}
