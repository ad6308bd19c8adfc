//! Client → Chromium: the allow-list, context injection, contexts, windows, `Browser.close`.

use serde_json::{Value, json};

use super::{FOREIGN, OWN, Rig, only_chromium, only_client};
use crate::confine::Action;

#[test]
fn browser_wide_commands_are_refused() {
    let mut rig = Rig::new();
    rig.attach_page("S1", "T1");
    for method in [
        "Browser.crash",
        "Browser.crashGpuProcess",
        "Browser.getHistograms",
        "Browser.getBrowserCommandLine",
        "Browser.setDockTile",
        "Browser.executeBrowserCommand",
        "Tracing.start",
        "Tracing.getCategories",
        "SystemInfo.getInfo",
        "SystemInfo.getProcessInfo",
        "Network.enable",
        "Fetch.enable",
        "Security.setIgnoreCertificateErrors",
        "Storage.clearDataForOrigin",
        "IO.read",
        "Runtime.evaluate",
        "Memory.simulatePressureNotification",
        "Extensions.loadUnpacked",
        "PWA.install",
        "Target.attachToBrowserTarget",
        "Target.sendMessageToTarget",
        "Target.exposeDevToolsProtocol",
        "Target.setRemoteLocations",
        "Target.openDevTools",
        "Target.somethingNew",
        "NoDomain",
    ] {
        rig.refuses(json!({"id": 1, "method": method, "params": {"targetId": "T1"}}));
    }
}

#[test]
fn browser_wide_domains_are_refused_on_page_sessions_too() {
    let mut rig = Rig::new();
    rig.attach_page("S1", "T1");
    for method in [
        "Tracing.start",
        "SystemInfo.getInfo",
        "Browser.crash",
        "Browser.getHistograms",
        "Memory.setPressureNotificationsSuppressed",
        "Target.attachToBrowserTarget",
        "Target.exposeDevToolsProtocol",
    ] {
        rig.refuses(json!({"id": 1, "method": method, "sessionId": "S1"}));
    }
}

#[test]
fn what_clients_need_on_the_browser_session_passes() {
    let mut rig = Rig::new();
    for command in [
        json!({"id": 1, "method": "Browser.getVersion"}),
        json!({"id": 2, "method": "Target.setDiscoverTargets", "params": {"discover": true, "filter": [{}]}}),
        json!({"id": 3, "method": "Target.setAutoAttach", "params": {"autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true}}),
        json!({"id": 4, "method": "Target.getTargetInfo"}),
        json!({"id": 5, "method": "Target.getTargets"}),
        json!({"id": 6, "method": "Target.getBrowserContexts"}),
    ] {
        rig.passes(command);
    }
}

#[test]
fn page_sessions_pass_page_commands() {
    let mut rig = Rig::new();
    rig.attach_page("S1", "T1");
    for command in [
        json!({"id": 1, "method": "Runtime.evaluate", "sessionId": "S1", "params": {"expression": "1+1"}}),
        json!({"id": 2, "method": "Page.navigate", "sessionId": "S1", "params": {"url": "https://example.com/"}}),
        json!({"id": 3, "method": "Network.enable", "sessionId": "S1"}),
        json!({"id": 4, "method": "Storage.clearDataForOrigin", "sessionId": "S1", "params": {"origin": "https://a.test", "storageTypes": "all"}}),
        json!({"id": 5, "method": "Target.setAutoAttach", "sessionId": "S1", "params": {"autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true}}),
        json!({"id": 6, "method": "Runtime.runIfWaitingForDebugger", "sessionId": "S1"}),
        json!({"id": 7, "method": "Browser.getWindowForTarget", "sessionId": "S1"}),
        json!({"id": 8, "method": "Target.getTargetInfo", "sessionId": "S1"}),
    ] {
        rig.passes(command);
    }
}

#[test]
fn commands_on_sessions_that_are_not_owned_are_refused() {
    let mut rig = Rig::new();
    rig.refuses(json!({"id": 1, "method": "Runtime.evaluate", "sessionId": "NOT-MINE", "params": {"expression": "1"}}));
    rig.refuses(json!({"id": 2, "method": "Target.detachFromTarget", "params": {"sessionId": "NOT-MINE"}}));
    rig.refuses(json!({"id": 3, "method": "Target.detachFromTarget", "params": {"sessionId": 5}}));
    rig.attach_page("S1", "T1");
    rig.passes(json!({"id": 4, "method": "Target.detachFromTarget", "params": {"sessionId": "S1"}}));
}

#[test]
fn only_flat_sessions_are_allowed() {
    let mut rig = Rig::new();
    rig.attach_page("S1", "T1");
    rig.refuses(json!({"id": 1, "method": "Target.setAutoAttach", "params": {"autoAttach": true, "waitForDebuggerOnStart": false}}));
    rig.refuses(json!({"id": 2, "method": "Target.setAutoAttach", "params": {"autoAttach": true, "waitForDebuggerOnStart": false, "flatten": false}}));
    rig.refuses(json!({"id": 3, "method": "Target.attachToTarget", "params": {"targetId": "T1"}}));
    rig.refuses(json!({"id": 4, "method": "Target.attachToTarget", "params": {"targetId": "T1", "flatten": "true"}}));
    rig.passes(json!({"id": 5, "method": "Target.attachToTarget", "params": {"targetId": "T1", "flatten": true}}));
    // Turning auto-attach off attaches nothing.
    rig.passes(json!({"id": 6, "method": "Target.setAutoAttach", "params": {"autoAttach": false, "waitForDebuggerOnStart": false}}));
}

#[test]
fn the_default_context_is_the_sessions() {
    let methods = [
        "Storage.getCookies",
        "Storage.setCookies",
        "Storage.clearCookies",
        "Browser.setDownloadBehavior",
        "Browser.grantPermissions",
        "Browser.resetPermissions",
        "Browser.setPermission",
        "Browser.cancelDownload",
    ];
    for method in methods {
        for session in [None, Some("S1")] {
            let mut rig = Rig::new();
            rig.attach_page("S1", "T1");
            let with = |params: Value| {
                let mut command = json!({"id": 9, "method": method, "params": params});
                if let Some(session) = session {
                    command["sessionId"] = json!(session);
                }
                command
            };
            // Absent or null: the session's context is injected.
            for params in
                [json!({"origin": "https://a.test"}), json!({"origin": "https://a.test", "browserContextId": null})]
            {
                let sent = only_chromium(&rig.client(with(params)));
                assert_eq!(sent["params"], json!({"origin": "https://a.test", "browserContextId": OWN}), "{method}");
                assert_eq!(sent.get("sessionId").and_then(Value::as_str), session);
            }
            // Named: it must be owned.
            rig.passes(with(json!({"browserContextId": OWN})));
            rig.refuses(with(json!({"browserContextId": FOREIGN})));
            rig.refuses(with(json!({"browserContextId": 7})));
        }
    }
}

#[test]
fn created_contexts_are_owned_until_disposed() {
    let mut rig = Rig::new();
    let sent = only_chromium(
        &rig.client(json!({"id": 1, "method": "Target.createBrowserContext", "params": {"disposeOnDetach": false}})),
    );
    // Chromium disposes of it itself when the connection ends.
    assert_eq!(sent, json!({"id": 1, "method": "Target.createBrowserContext", "params": {"disposeOnDetach": true}}));
    let reply = rig.chromium(json!({"id": 1, "result": {"browserContextId": "CTX-NEW"}}));
    assert_eq!(only_client(&reply), json!({"id": 1, "result": {"browserContextId": "CTX-NEW"}}));

    rig.passes(json!({"id": 2, "method": "Storage.getCookies", "params": {"browserContextId": "CTX-NEW"}}));
    let dispose = rig
        .passes(json!({"id": 3, "method": "Target.disposeBrowserContext", "params": {"browserContextId": "CTX-NEW"}}));
    rig.chromium(json!({"id": dispose, "result": {}}));
    rig.refuses(json!({"id": 4, "method": "Storage.getCookies", "params": {"browserContextId": "CTX-NEW"}}));
}

#[test]
fn only_created_contexts_may_be_disposed() {
    let mut rig = Rig::new();
    rig.refuses(json!({"id": 1, "method": "Target.disposeBrowserContext", "params": {"browserContextId": OWN}}));
    rig.refuses(json!({"id": 2, "method": "Target.disposeBrowserContext", "params": {"browserContextId": FOREIGN}}));
    rig.refuses(json!({"id": 3, "method": "Target.disposeBrowserContext"}));
}

#[test]
fn created_contexts_are_capped_at_max_pages_counting_those_in_flight() {
    let mut rig = Rig::with_max_pages(2);
    let create = |id: u64| json!({"id": id, "method": "Target.createBrowserContext"});
    only_chromium(&rig.client(create(1)));
    only_chromium(&rig.client(create(2)));
    rig.refuses(create(3));
    // A failed creation frees its place.
    rig.chromium(json!({"id": 2, "error": {"code": -32000, "message": "Failed"}}));
    only_chromium(&rig.client(create(4)));
}

#[test]
fn created_contexts_may_not_bypass_the_egress_proxy() {
    let mut rig = Rig::new();
    rig.refuses(json!({"id": 1, "method": "Target.createBrowserContext", "params": {"proxyServer": "direct://"}}));
    rig.refuses(
        json!({"id": 2, "method": "Target.createBrowserContext", "params": {"proxyBypassList": "<-loopback>"}}),
    );
    only_chromium(
        &rig.client(json!({"id": 3, "method": "Target.createBrowserContext", "params": {"proxyServer": null}})),
    );
}

#[test]
fn get_browser_contexts_lists_the_created_ones_and_the_session_as_default() {
    let mut rig = Rig::new();
    only_chromium(&rig.client(json!({"id": 1, "method": "Target.createBrowserContext"})));
    rig.chromium(json!({"id": 1, "result": {"browserContextId": "CTX-NEW"}}));
    let id = rig.passes(json!({"id": 2, "method": "Target.getBrowserContexts"}));
    let reply = rig.chromium(json!({"id": id, "result": {
        "browserContextIds": [FOREIGN, "CTX-NEW", OWN], "defaultBrowserContextId": "CTX-DEFAULT"}}));
    assert_eq!(
        only_client(&reply),
        json!({"id": 2, "result": {"browserContextIds": ["CTX-NEW"], "defaultBrowserContextId": OWN}})
    );
}

#[test]
fn windows_must_be_owned() {
    let mut rig = Rig::new();
    rig.attach_page("S1", "T1");
    rig.refuses(json!({"id": 1, "method": "Browser.getWindowBounds", "params": {"windowId": 7}}));
    rig.refuses(json!({"id": 2, "method": "Browser.setWindowBounds", "sessionId": "S1", "params": {"windowId": 7, "bounds": {}}}));
    // The browser session's own target is the browser's: a target must be named there.
    rig.refuses(json!({"id": 3, "method": "Browser.getWindowForTarget"}));
    let id = rig.passes(json!({"id": 4, "method": "Browser.getWindowForTarget", "sessionId": "S1"}));
    rig.chromium(json!({"id": id, "sessionId": "S1", "result": {"windowId": 7, "bounds": {}}}));
    rig.passes(json!({"id": 5, "method": "Browser.getWindowBounds", "sessionId": "S1", "params": {"windowId": 7}}));
    rig.passes(
        json!({"id": 6, "method": "Browser.setWindowBounds", "params": {"windowId": 7, "bounds": {"width": 800}}}),
    );
    rig.refuses(json!({"id": 7, "method": "Browser.setWindowBounds", "params": {"windowId": 8, "bounds": {}}}));
}

#[test]
fn navigation_may_not_open_internal_pages() {
    let mut rig = Rig::new();
    rig.attach_page("S1", "T1");
    for url in [json!("chrome://inspect"), json!(" CHROME://discards"), json!("about:inspect"), json!(5)] {
        rig.refuses(json!({"id": 1, "method": "Page.navigate", "sessionId": "S1", "params": {"url": url}}));
        rig.refuses(json!({"id": 2, "method": "Target.createTarget", "params": {"url": url}}));
    }
    rig.passes(json!({"id": 3, "method": "Page.navigate", "sessionId": "S1", "params": {"url": "file:///tmp/site/index.html"}}));
}

#[test]
fn browser_close_answers_and_closes_only_the_client() {
    let mut rig = Rig::new();
    rig.attach_page("S1", "T1");
    let pending = rig.passes(json!({"id": 1, "method": "Browser.getVersion"}));
    let actions = rig.client(json!({"id": 2, "method": "Browser.close"}));
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(only_client(&actions[..1]), json!({"id": 2, "result": {}}));
    assert_eq!(actions[1], Action::CloseClient);
    // Nothing more reaches the client, nor Chromium on the client's behalf.
    assert!(rig.client(json!({"id": 3, "method": "Browser.getVersion"})).is_empty());
    assert!(rig.chromium(json!({"id": pending, "result": {}})).is_empty());
    assert!(rig.chromium(json!({"method": "Page.loadEventFired", "sessionId": "S1", "params": {}})).is_empty());
}

#[test]
fn browser_close_on_a_page_session_closes_the_client_too() {
    let mut rig = Rig::new();
    rig.attach_page("S1", "T1");
    let actions = rig.client(json!({"id": 2, "method": "Browser.close", "sessionId": "S1"}));
    assert_eq!(actions.last(), Some(&Action::CloseClient));
    assert!(!actions.iter().any(|action| matches!(action, Action::ToChromium(_))));
}
