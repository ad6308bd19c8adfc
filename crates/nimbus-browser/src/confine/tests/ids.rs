//! Id remapping, malformed messages and the bound on commands in flight.

use serde_json::json;

use super::{Rig, only_chromium, only_client, parse};
use crate::confine::{Action, MAX_PENDING};

#[test]
fn client_ids_are_remapped_and_mapped_back() {
    let mut rig = Rig::new();
    // Any integer, repeated ids included: the client's ids never reach Chromium.
    let first = rig.passes(json!({"id": 42, "method": "Browser.getVersion"}));
    let second = rig.passes(json!({"id": 42, "method": "Browser.getVersion"}));
    let huge = rig.passes(json!({"id": u64::MAX, "method": "Browser.getVersion"}));
    let negative = rig.passes(json!({"id": -7, "method": "Browser.getVersion"}));
    assert_eq!((first, second, huge, negative), (1, 2, 3, 4));

    let answer = |id: u64| json!({"id": id, "result": {"product": "Chrome/156"}});
    assert_eq!(only_client(&rig.chromium(answer(negative))), json!({"id": -7, "result": {"product": "Chrome/156"}}));
    assert_eq!(only_client(&rig.chromium(answer(second))), json!({"id": 42, "result": {"product": "Chrome/156"}}));
    assert_eq!(only_client(&rig.chromium(answer(huge)))["id"], json!(u64::MAX));
    // Errors are mapped back too.
    let error = json!({"id": first, "error": {"code": -32601, "message": "'X' wasn't found"}});
    assert_eq!(
        only_client(&rig.chromium(error)),
        json!({"id": 42, "error": {"code": -32601, "message": "'X' wasn't found"}})
    );
    // A reply is delivered once; a second one with the same id, or an unknown id, is dropped.
    assert!(rig.chromium(answer(first)).is_empty());
    assert!(rig.chromium(answer(999)).is_empty());
}

#[test]
fn proxy_ids_stay_in_chromiums_range_and_skip_ids_in_use() {
    let mut rig = Rig::new();
    let held = rig.passes(json!({"id": 1, "method": "Browser.getVersion"}));
    assert_eq!(held, 1);
    rig.confinement.pending.set_next(i32::MAX as u32);
    assert_eq!(rig.passes(json!({"id": 2, "method": "Browser.getVersion"})), i32::MAX as u64);
    // Wraps to 1, which is still pending: skipped.
    assert_eq!(rig.passes(json!({"id": 3, "method": "Browser.getVersion"})), 2);
}

#[test]
fn malformed_client_messages_are_answered_as_chromium_answers_them() {
    let mut rig = Rig::new();
    let cases = [
        ("not json", json!({"error": {"code": -32700, "message": "Message must be in JSON format"}})),
        ("[1,2]", json!({"error": {"code": -32700, "message": "Message must be in JSON format"}})),
        (
            r#"{"method":"Browser.getVersion"}"#,
            json!({"error": {"code": -32600, "message": "Message must have integer 'id' property"}}),
        ),
        (
            r#"{"id":"1","method":"Browser.getVersion"}"#,
            json!({"error": {"code": -32600, "message": "Message must have integer 'id' property"}}),
        ),
        (
            r#"{"id":1.5,"method":"Browser.getVersion"}"#,
            json!({"error": {"code": -32600, "message": "Message must have integer 'id' property"}}),
        ),
        (
            r#"{"id":3}"#,
            json!({"id": 3, "error": {"code": -32600, "message": "Message must have string 'method' property"}}),
        ),
        (
            r#"{"id":3,"method":"Runtime.evaluate","sessionId":7}"#,
            json!({"id": 3, "error": {"code": -32600, "message": "Message must have string 'sessionId' property"}}),
        ),
        (
            r#"{"id":3,"method":"Browser.getVersion","params":[1]}"#,
            json!({"id": 3, "error": {"code": -32602, "message": "Invalid parameters: 'params' must be an object"}}),
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(only_client(&rig.confinement.from_client(text)), expected, "{text}");
    }
}

#[test]
fn only_the_checked_command_reaches_chromium() {
    let mut rig = Rig::new();
    rig.attach_page("S1", "T1");
    // Extra top-level fields are not forwarded, and of duplicate keys the proxy forwards the
    // one it checked, once.
    let text =
        r#"{"id":1,"method":"Target.activateTarget","extra":true,"params":{"targetId":"FOREIGN-T","targetId":"T1"}}"#;
    let actions = rig.confinement.from_client(text);
    let [Action::ToChromium(sent)] = actions.as_slice() else { panic!("{actions:?}") };
    assert_eq!(parse(sent), json!({"id": 1, "method": "Target.activateTarget", "params": {"targetId": "T1"}}));
    assert_eq!(sent.matches("targetId").count(), 1);
}

#[test]
fn commands_in_flight_are_capped() {
    let mut rig = Rig::new();
    for id in 0..MAX_PENDING {
        let actions = rig.client(json!({"id": id, "method": "Browser.getVersion"}));
        assert!(matches!(actions.as_slice(), [Action::ToChromium(_)]));
    }
    rig.refuses(json!({"id": -1, "method": "Browser.getVersion"}));
    // An answer frees a place.
    assert_eq!(only_client(&rig.chromium(json!({"id": 1, "result": {}})))["id"], json!(0));
    only_chromium(&rig.client(json!({"id": -2, "method": "Browser.getVersion"})));
}
