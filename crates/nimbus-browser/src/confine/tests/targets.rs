//! Targets: creating pages under the cap, commands naming targets, filtered target lists.

use serde_json::json;

use super::{FOREIGN, OWN, Rig, info, only_chromium, only_client, to_chromium};

#[test]
fn create_target_counts_the_pages_then_creates_in_the_sessions_context() {
    let mut rig = Rig::new();
    let actions = rig.client(json!({"id": 5, "method": "Target.createTarget", "params": {"url": "about:blank"}}));
    assert_eq!(only_chromium(&actions), json!({"id": 1, "method": "Target.getTargets", "params": {}}));
    let listing = json!({"id": 1, "result": {"targetInfos": [
        info("P1", OWN, "page"), info("F1", FOREIGN, "page"), info("F2", FOREIGN, "page"), info("F3", FOREIGN, "page")]}});
    let sent = only_chromium(&rig.chromium(listing));
    assert_eq!(
        sent,
        json!({"id": 2, "method": "Target.createTarget", "params": {"url": "about:blank", "browserContextId": OWN}})
    );
    let reply = rig.chromium(json!({"id": 2, "result": {"targetId": "P2"}}));
    assert_eq!(only_client(&reply), json!({"id": 5, "result": {"targetId": "P2"}}));
    // The new page is owned: naming it needs no check.
    rig.passes(json!({"id": 6, "method": "Target.closeTarget", "params": {"targetId": "P2"}}));
}

#[test]
fn create_target_is_refused_at_max_pages() {
    let mut rig = Rig::with_max_pages(2);
    only_chromium(&rig.client(json!({"id": 1, "method": "Target.createBrowserContext"})));
    rig.chromium(json!({"id": 1, "result": {"browserContextId": "CTX-NEW"}}));
    let check = only_chromium(&rig.client(json!({"id": 2, "method": "Target.createTarget", "params": {"url": ""}})));
    // Pages of every owned context count; tabs, Chromium's UI and other sessions' pages don't.
    let listing = json!({"id": check["id"], "result": {"targetInfos": [
        info("P1", OWN, "page"), info("P2", "CTX-NEW", "page"), info("TAB", OWN, "tab"),
        info("UI", OWN, "browser_ui"), info("F1", FOREIGN, "page")]}});
    let reply = only_client(&rig.chromium(listing));
    assert_eq!(reply["id"], json!(2));
    assert_eq!(reply["error"]["code"], json!(-32000));
}

#[test]
fn create_target_fails_when_the_pages_cannot_be_counted() {
    let mut rig = Rig::new();
    let check = only_chromium(&rig.client(json!({"id": 2, "method": "Target.createTarget", "params": {"url": ""}})));
    let reply = only_client(&rig.chromium(json!({"id": check["id"], "error": {"code": -32000, "message": "x"}})));
    assert_eq!(reply["error"]["code"], json!(-32000));
}

#[test]
fn create_target_in_another_context_is_refused() {
    let mut rig = Rig::new();
    rig.refuses(json!({"id": 1, "method": "Target.createTarget", "params": {"url": "", "browserContextId": FOREIGN}}));
}

#[test]
fn commands_wait_behind_a_check_and_keep_their_order() {
    let mut rig = Rig::new();
    let check = only_chromium(&rig.client(json!({"id": 1, "method": "Target.createTarget", "params": {"url": ""}})));
    assert!(rig.client(json!({"id": 2, "method": "Browser.getVersion"})).is_empty());
    assert!(
        rig.client(json!({"id": 3, "method": "Target.createBrowserContext", "params": {"proxyServer": "x"}}))
            .is_empty()
    );
    assert!(rig.client(json!({"id": 4, "method": "Target.getTargets"})).is_empty());
    let actions = rig.chromium(json!({"id": check["id"], "result": {"targetInfos": []}}));
    let sent: Vec<_> = to_chromium(&actions).iter().map(|m| m["method"].clone()).collect();
    assert_eq!(sent, [json!("Target.createTarget"), json!("Browser.getVersion"), json!("Target.getTargets")]);
    let refused = super::to_client(&actions);
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["id"], json!(3));
}

#[test]
fn a_queue_stops_at_the_next_check() {
    let mut rig = Rig::new();
    let first = only_chromium(&rig.client(json!({"id": 1, "method": "Target.createTarget", "params": {"url": ""}})));
    assert!(
        rig.client(json!({"id": 2, "method": "Target.activateTarget", "params": {"targetId": "UNKNOWN"}})).is_empty()
    );
    assert!(rig.client(json!({"id": 3, "method": "Browser.getVersion"})).is_empty());
    let actions = rig.chromium(json!({"id": first["id"], "result": {"targetInfos": []}}));
    let sent = to_chromium(&actions);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0]["method"], json!("Target.createTarget"));
    assert_eq!(
        sent[1],
        json!({"id": sent[1]["id"], "method": "Target.getTargetInfo", "params": {"targetId": "UNKNOWN"}})
    );
    let actions = rig.chromium(json!({"id": sent[1]["id"], "result": {"targetInfo": info("UNKNOWN", OWN, "page")}}));
    let sent: Vec<_> = to_chromium(&actions).iter().map(|m| m["method"].clone()).collect();
    assert_eq!(sent, [json!("Target.activateTarget"), json!("Browser.getVersion")]);
}

#[test]
fn a_target_the_proxy_has_not_seen_is_asked_about_first() {
    let mut rig = Rig::new();
    // A page the `page` channel opened: its id came from elsewhere.
    let actions =
        rig.client(json!({"id": 7, "method": "Target.attachToTarget", "params": {"targetId": "T9", "flatten": true}}));
    let check = only_chromium(&actions);
    assert_eq!(check, json!({"id": 1, "method": "Target.getTargetInfo", "params": {"targetId": "T9"}}));
    let sent = only_chromium(&rig.chromium(json!({"id": 1, "result": {"targetInfo": info("T9", OWN, "page")}})));
    assert_eq!(
        sent,
        json!({"id": 2, "method": "Target.attachToTarget", "params": {"targetId": "T9", "flatten": true}})
    );
    let reply = rig.chromium(json!({"id": 2, "result": {"sessionId": "S9"}}));
    assert_eq!(only_client(&reply), json!({"id": 7, "result": {"sessionId": "S9"}}));
    // The session is owned, even before (or without) its attachedToTarget event.
    rig.passes(json!({"id": 8, "method": "Runtime.evaluate", "sessionId": "S9", "params": {"expression": "1"}}));
}

#[test]
fn a_target_outside_the_session_is_refused() {
    let answers = [
        json!({"result": {"targetInfo": info("T9", FOREIGN, "page")}}),
        json!({"result": {"targetInfo": info("OTHER", OWN, "page")}}),
        json!({"result": {"targetInfo": info("T9", OWN, "browser_ui")}}),
        json!({"result": {"targetInfo": {"targetId": "T9", "type": "browser"}}}),
        json!({"error": {"code": -32602, "message": "No target with given id found"}}),
        json!({"result": 5}),
    ];
    for answer in answers {
        for method in [
            "Target.attachToTarget",
            "Target.closeTarget",
            "Target.activateTarget",
            "Target.getTargetInfo",
            "Target.autoAttachRelated",
            "Target.detachFromTarget",
            "Browser.getWindowForTarget",
        ] {
            let mut rig = Rig::new();
            let check = only_chromium(
                &rig.client(json!({"id": 3, "method": method, "params": {"targetId": "T9", "flatten": true}})),
            );
            assert_eq!(check["method"], json!("Target.getTargetInfo"));
            let mut answer = answer.clone();
            answer["id"] = check["id"].clone();
            let reply = only_client(&rig.chromium(answer));
            assert_eq!(reply["id"], json!(3));
            assert_eq!(reply["error"]["code"], json!(-32000), "{method}");
        }
    }
}

#[test]
fn known_owned_targets_need_no_check() {
    let mut rig = Rig::new();
    rig.discover_page("T1", OWN);
    for (id, method) in
        ["Target.closeTarget", "Target.activateTarget", "Target.getTargetInfo", "Browser.getWindowForTarget"]
            .into_iter()
            .enumerate()
    {
        rig.passes(json!({"id": id, "method": method, "params": {"targetId": "T1"}}));
    }
    rig.passes(json!({"id": 9, "method": "Target.attachToTarget", "params": {"targetId": "T1", "flatten": true}}));
    rig.passes(json!({"id": 10, "method": "Target.autoAttachRelated", "params": {"targetId": "T1", "waitForDebuggerOnStart": false}}));
}

#[test]
fn target_ids_must_be_strings() {
    let mut rig = Rig::new();
    rig.refuses(json!({"id": 1, "method": "Target.closeTarget", "params": {"targetId": 12}}));
    rig.refuses(json!({"id": 2, "method": "Target.closeTarget", "params": {"targetId": ["T1"]}}));
}

#[test]
fn get_targets_lists_only_owned_targets_and_the_browser() {
    let mut rig = Rig::new();
    only_chromium(&rig.client(json!({"id": 1, "method": "Target.createBrowserContext"})));
    rig.chromium(json!({"id": 1, "result": {"browserContextId": "CTX-NEW"}}));
    for session in [None, Some("S1")] {
        let mut command = json!({"id": 2, "method": "Target.getTargets", "params": {"filter": [{}]}});
        if let Some(session) = session {
            rig.attach_page(session, "T-S1");
            command["sessionId"] = json!(session);
        }
        let id = rig.passes(command);
        let browser = json!({"targetId": "B", "type": "browser", "title": "", "url": "", "attached": true});
        let reply = rig.chromium(json!({"id": id, "result": {"targetInfos": [
            info("P1", OWN, "page"), info("F1", FOREIGN, "page"), info("P2", "CTX-NEW", "page"), browser.clone(),
            info("UI", OWN, "browser_ui"), info("TAB", OWN, "tab"), info("FTAB", FOREIGN, "tab"),
            {"targetId": "X", "type": "page"}]}}));
        assert_eq!(
            only_client(&reply),
            json!({"id": 2, "result": {"targetInfos": [
                info("P1", OWN, "page"), info("P2", "CTX-NEW", "page"), browser, info("TAB", OWN, "tab")]}})
        );
    }
    // What the list showed is known to be owned.
    rig.passes(json!({"id": 3, "method": "Target.activateTarget", "params": {"targetId": "P2"}}));
}
