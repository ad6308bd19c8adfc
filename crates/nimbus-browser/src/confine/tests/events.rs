//! Chromium → client: target events, sessions, the release of foreign paused targets.

use serde_json::json;

use super::{FOREIGN, OWN, Rig, attached, info, only_client, to_chromium, to_client};

#[test]
fn target_events_reach_the_client_only_for_owned_targets() {
    let mut rig = Rig::new();
    let created = |target: &str, context: &str, kind: &str| json!({"method": "Target.targetCreated", "params": {"targetInfo": info(target, context, kind)}});
    rig.discover_page("T1", OWN);
    assert!(rig.chromium(created("F1", FOREIGN, "page")).is_empty());
    assert!(rig.chromium(created("UI", OWN, "browser_ui")).is_empty());
    let browser = json!({"method": "Target.targetCreated", "params": {"targetInfo": {"targetId": "B", "type": "browser", "attached": true}}});
    assert_eq!(only_client(&rig.chromium(browser.clone())), browser);

    let changed = json!({"method": "Target.targetInfoChanged", "params": {"targetInfo": info("T1", OWN, "page")}});
    assert_eq!(
        only_client(&rig.chromium(changed)),
        json!({"method": "Target.targetInfoChanged", "params": {"targetInfo": info("T1", OWN, "page")}})
    );
    assert!(
        rig.chromium(
            json!({"method": "Target.targetInfoChanged", "params": {"targetInfo": info("F1", FOREIGN, "page")}})
        )
        .is_empty()
    );

    for method in ["Target.targetCrashed", "Target.targetDestroyed"] {
        let event = json!({"method": method, "params": {"targetId": "T1", "status": "crashed", "errorCode": 1}});
        assert_eq!(only_client(&rig.chromium(event.clone())), event);
        assert!(rig.chromium(json!({"method": method, "params": {"targetId": "F1"}})).is_empty());
    }
    // Destroyed: forgotten.
    assert!(rig.chromium(json!({"method": "Target.targetDestroyed", "params": {"targetId": "T1"}})).is_empty());
}

#[test]
fn browser_session_events_pass_only_when_known_safe() {
    let mut rig = Rig::new();
    let download = json!({"method": "Browser.downloadWillBegin", "params": {"frameId": "F", "guid": "g", "url": "https://a.test/x", "suggestedFilename": "x"}});
    assert_eq!(only_client(&rig.chromium(download.clone())), download);
    let detached = json!({"method": "Inspector.detached", "params": {"reason": "Render process gone."}});
    assert_eq!(only_client(&rig.chromium(detached.clone())), detached);
    for method in [
        "Tracing.dataCollected",
        "Target.receivedMessageFromTarget",
        "Network.requestWillBeSent",
        "Target.somethingNew",
    ] {
        assert!(
            rig.chromium(json!({"method": method, "params": {"sessionId": "S", "message": "{}"}})).is_empty(),
            "{method}"
        );
    }
}

#[test]
fn owned_sessions_pass_both_ways_until_detached() {
    let mut rig = Rig::new();
    rig.attach_page("S1", "T1");
    let event = json!({"method": "Page.loadEventFired", "sessionId": "S1", "params": {"timestamp": 1.5}});
    assert_eq!(only_client(&rig.chromium(event.clone())), event);
    let id = rig.passes(json!({"id": 1, "method": "Page.enable", "sessionId": "S1"}));
    let reply = rig.chromium(json!({"id": id, "sessionId": "S1", "result": {}}));
    assert_eq!(only_client(&reply), json!({"id": 1, "sessionId": "S1", "result": {}}));

    let detached = json!({"method": "Target.detachedFromTarget", "params": {"sessionId": "S1", "targetId": "T1"}});
    assert_eq!(only_client(&rig.chromium(detached.clone())), detached);
    assert!(rig.chromium(event).is_empty());
    rig.refuses(json!({"id": 2, "method": "Page.enable", "sessionId": "S1"}));
}

#[test]
fn a_foreign_paused_target_is_released_and_never_shown() {
    let mut rig = Rig::new();
    // Another session opens a page while this client is auto-attached with
    // waitForDebuggerOnStart: Chromium holds it for this connection too.
    let actions = rig.chromium(attached("SF", "TF", FOREIGN, "page", true, None));
    assert!(to_client(&actions).is_empty());
    let sent = to_chromium(&actions);
    assert_eq!(
        sent,
        [
            json!({"id": 1, "method": "Runtime.runIfWaitingForDebugger", "params": {}, "sessionId": "SF"}),
            json!({"id": 2, "method": "Target.detachFromTarget", "params": {"sessionId": "SF"}}),
        ]
    );
    // Everything about it stays hidden: its events, the replies to the release, its detach.
    assert!(
        rig.chromium(json!({"method": "Runtime.executionContextCreated", "sessionId": "SF", "params": {}})).is_empty()
    );
    assert!(rig.chromium(json!({"id": 1, "sessionId": "SF", "result": {}})).is_empty());
    assert!(rig.chromium(json!({"id": 2, "result": {}})).is_empty());
    assert!(
        rig.chromium(json!({"method": "Target.detachedFromTarget", "params": {"sessionId": "SF", "targetId": "TF"}}))
            .is_empty()
    );
    rig.refuses(
        json!({"id": 3, "method": "Runtime.evaluate", "sessionId": "SF", "params": {"expression": "document.cookie"}}),
    );
}

#[test]
fn a_foreign_target_not_waiting_is_only_detached() {
    let mut rig = Rig::new();
    for (kind, context) in [("page", FOREIGN), ("service_worker", FOREIGN), ("browser_ui", OWN), ("other", OWN)] {
        let actions = rig.chromium(attached("SF", "TF", context, kind, false, None));
        assert!(to_client(&actions).is_empty());
        let sent = to_chromium(&actions);
        assert_eq!(sent.len(), 1, "{kind}");
        assert_eq!(sent[0]["method"], json!("Target.detachFromTarget"));
        assert_eq!(sent[0]["params"], json!({"sessionId": "SF"}));
    }
    // An attachment without a context on the browser session (none is the session's) too.
    let event = json!({"method": "Target.attachedToTarget", "params": {"sessionId": "SB", "targetInfo": {"targetId": "B", "type": "page"}, "waitingForDebugger": true}});
    assert_eq!(to_chromium(&rig.chromium(event)).len(), 2);
}

#[test]
fn child_sessions_of_owned_sessions_are_owned() {
    let mut rig = Rig::new();
    rig.attach_page("S1", "T1");
    // An out-of-process iframe and a worker auto-attached on the page's session.
    for child in [attached("S2", "T2", OWN, "iframe", true, Some("S1")), {
        let mut worker = attached("S3", "T3", OWN, "worker", true, Some("S1"));
        worker["params"]["targetInfo"].as_object_mut().map(|info| info.remove("browserContextId"));
        worker
    }] {
        assert_eq!(only_client(&rig.chromium(child.clone())), child);
    }
    rig.passes(json!({"id": 1, "method": "Runtime.runIfWaitingForDebugger", "sessionId": "S2"}));
    rig.passes(json!({"id": 2, "method": "Runtime.runIfWaitingForDebugger", "sessionId": "S3"}));

    // A child in another context is released on the parent session that attached it.
    let actions = rig.chromium(attached("SF", "TF", FOREIGN, "page", true, Some("S1")));
    assert!(to_client(&actions).is_empty());
    let sent = to_chromium(&actions);
    assert_eq!(
        sent[1],
        json!({"id": sent[1]["id"], "method": "Target.detachFromTarget", "params": {"sessionId": "SF"}, "sessionId": "S1"})
    );

    // Detaching the parent forgets the children.
    let detached = json!({"method": "Target.detachedFromTarget", "params": {"sessionId": "S1"}});
    assert_eq!(only_client(&rig.chromium(detached.clone())), detached);
    rig.refuses(json!({"id": 3, "method": "Runtime.evaluate", "sessionId": "S2", "params": {"expression": "1"}}));
}

#[test]
fn attachments_on_foreign_sessions_are_ignored() {
    let mut rig = Rig::new();
    // Not even released: the proxy has no business with a session it does not own.
    assert!(rig.chromium(attached("S2", "T2", OWN, "page", true, Some("NOT-MINE"))).is_empty());
}

#[test]
fn target_events_on_owned_sessions_are_filtered_too() {
    let mut rig = Rig::new();
    rig.attach_page("S1", "T1");
    let foreign = json!({"method": "Target.targetCreated", "sessionId": "S1", "params": {"targetInfo": info("F1", FOREIGN, "page")}});
    assert!(rig.chromium(foreign).is_empty());
    let own =
        json!({"method": "Target.targetCreated", "sessionId": "S1", "params": {"targetInfo": info("T5", OWN, "page")}});
    assert_eq!(only_client(&rig.chromium(own.clone())), own);
}
