//! Tenant secrets (networking.md, "Tenant secrets"): write-only named values for the egress
//! proxy. Create, replace, list and delete; name and value rules; the per-tenant cap; unknown
//! tenants; durability across a restart; deletion with their tenant. No answer and no log line
//! may ever carry a value.

use serde_json::{Value, json};

use crate::harness::{Dirs, Resp, Server, enc, is_timestamp};

const TENANT: &str = "vault";
/// The most secrets a tenant holds (`TENANT_MAX_SECRETS`).
const MAX_SECRETS: usize = 100;

fn path(tenant: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("/api/tenants/{tenant}/secrets/{name}"),
        None => format!("/api/tenants/{tenant}/secrets"),
    }
}

/// Every answer a test saw, to check that none carries a value.
#[derive(Default)]
struct Seen(Vec<Resp>);

impl Seen {
    fn keep(&mut self, resp: Resp) -> Resp {
        self.0.push(resp.clone());
        resp
    }

    #[track_caller]
    fn assert_never_shown(&self, values: &[&str], server: &Server) {
        for resp in &self.0 {
            let body = resp.text();
            for value in values {
                assert!(!body.contains(value), "an answer carries a secret value: {resp}");
            }
        }
        let stderr = server.stderr();
        for value in values {
            assert!(!stderr.contains(value), "the server logged a secret value:\n{stderr}");
        }
    }
}

/// The names of a list answer, asserting each item's shape (`{name, createdAt, updatedAt}`).
#[track_caller]
fn names_of(resp: &Resp) -> Vec<String> {
    resp.expect_status(200);
    let items = resp.json["items"].as_array().unwrap_or_else(|| panic!("no items: {resp}"));
    assert_eq!(resp.json.as_object().map(|o| o.len()), Some(1), "a list is only its items: {resp}");
    items.iter().map(|item| secret_name(item, resp)).collect()
}

/// A `Secret` resource's name, asserting its shape.
#[track_caller]
fn secret_name(item: &Value, resp: &Resp) -> String {
    let object = item.as_object().unwrap_or_else(|| panic!("a secret is an object: {resp}"));
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["createdAt", "name", "updatedAt"], "{resp}");
    for time in ["createdAt", "updatedAt"] {
        assert!(is_timestamp(item[time].as_str().unwrap_or("")), "{time} is not RFC 3339 ms: {resp}");
    }
    item["name"].as_str().unwrap_or_else(|| panic!("name: {resp}")).to_owned()
}

#[test]
fn secrets_are_write_only_and_follow_the_rules() {
    // Logging at debug level: not even then may a value reach the log.
    let server = Dirs::new().start_with_env(&[("NIMBUS_LOG", "debug")]);
    server.create_tenant(TENANT);
    let mut seen = Seen::default();
    let (first, second, other) = ("ghp_first-value-7f3a", "ghp_second-value-9c1d", "sk-other-value-42aa");

    // Create (201), with the resource as the answer.
    let created = seen.keep(server.put_json(&path(TENANT, Some("github")), &json!({ "value": first })));
    created.expect_status(201);
    assert_eq!(secret_name(&created.json, &created), "github");
    assert_eq!(created.json["createdAt"], created.json["updatedAt"], "{created}");

    // Replace (200): the creation time stays.
    let replaced = seen.keep(server.put_json(&path(TENANT, Some("github")), &json!({ "value": second })));
    replaced.expect_status(200);
    assert_eq!(replaced.json["name"], "github");
    assert_eq!(replaced.json["createdAt"], created.json["createdAt"], "{replaced}");
    assert!(replaced.json["updatedAt"].as_str() >= created.json["updatedAt"].as_str(), "{replaced}");

    // Names are sorted; every allowed character and the longest name are accepted.
    let longest = "n".repeat(64);
    for name in ["Api.KEY_2-b", "0-openai", longest.as_str()] {
        seen.keep(server.put_json(&path(TENANT, Some(name)), &json!({ "value": other }))).expect_status(201);
    }
    // The longest value is accepted, and any text without control characters.
    let widest = "v".repeat(8192);
    seen.keep(server.put_json(&path(TENANT, Some("wide")), &json!({ "value": widest }))).expect_status(201);
    seen.keep(server.put_json(&path(TENANT, Some("text")), &json!({ "value": "Bearer ünï €" }))).expect_status(201);
    let listed = seen.keep(server.get(&path(TENANT, None)));
    assert_eq!(names_of(&listed), ["0-openai", "Api.KEY_2-b", "github", longest.as_str(), "text", "wide"]);
    assert_eq!(listed.json["items"][2], replaced.json, "the list shows what the put answered");

    // Bad names: 400 naming `name`, before the tenant is looked up (an unknown one too).
    let too_long = "n".repeat(65);
    for tenant in [TENANT, "ghost"] {
        for name in ["_x", ".x", "-x", "a b", "a:b", "é", "a%2Fb", "%20a", too_long.as_str()] {
            let name = if name.contains('%') { name.to_owned() } else { enc(name) };
            let resp = seen.keep(server.put_json(&path(tenant, Some(&name)), &json!({ "value": first })));
            resp.expect_field(400, "op.invalid_input", "name");
            seen.keep(server.delete(&path(tenant, Some(&name)))).expect_field(400, "op.invalid_input", "name");
        }
    }
    // Bad values: 400 naming `value`, and the error never quotes the value.
    let too_wide = format!("{first}{}", "v".repeat(8192));
    for value in ["", "\u{1}", &format!("{first}\n"), &format!("{first}\tx"), &format!("{first}\u{7f}"), &too_wide] {
        let resp = seen.keep(server.put_json(&path(TENANT, Some("bad")), &json!({ "value": value })));
        resp.expect_field(400, "op.invalid_input", "value");
    }
    // The body is strict.
    for (body, field) in [
        (json!({ "value": first, "extra": 1 }), "extra"),
        (json!({ "value": 5 }), "value"),
        (json!({ "value": null }), "value"),
        (json!({}), "value"),
    ] {
        seen.keep(server.put_json(&path(TENANT, Some("bad")), &body)).expect_field(400, "op.invalid_input", field);
    }
    seen.keep(server.authed("PUT", &path(TENANT, Some("bad")), &[], None)).expect_error(400, "op.invalid_input");
    // So are query strings.
    seen.keep(server.get(&format!("{}?limit=1", path(TENANT, None)))).expect_field(400, "op.invalid_input", "limit");
    // Nothing refused was stored.
    assert_eq!(names_of(&seen.keep(server.get(&path(TENANT, None)))).len(), 6);

    // An unknown tenant: the same answer as every tenant route.
    for resp in [
        server.put_json(&path("ghost", Some("github")), &json!({ "value": first })),
        server.get(&path("ghost", None)),
        server.delete(&path("ghost", Some("github"))),
    ] {
        seen.keep(resp).expect_error(404, "session.tenant_not_found");
    }

    // Secrets are per tenant.
    server.create_tenant("neighbour");
    assert!(names_of(&seen.keep(server.get(&path("neighbour", None)))).is_empty());
    seen.keep(server.delete(&path("neighbour", Some("github")))).expect_error(404, "op.not_found");

    // Delete (204), then 404 naming the resource.
    let deleted = seen.keep(server.delete(&path(TENANT, Some("github"))));
    deleted.expect_status(204);
    assert!(deleted.body.is_empty(), "{deleted}");
    let again = seen.keep(server.delete(&path(TENANT, Some("github"))));
    again.expect_error(404, "op.not_found");
    assert_eq!(again.detail()["resource"], "secret", "{again}");
    assert!(!names_of(&seen.keep(server.get(&path(TENANT, None)))).contains(&"github".to_owned()));
    // A deleted name can be created again (201).
    seen.keep(server.put_json(&path(TENANT, Some("github")), &json!({ "value": first }))).expect_status(201);

    seen.assert_never_shown(&[first, second, other, &widest], &server);
}

#[test]
fn a_tenant_holds_at_most_100_secrets() {
    let server = Server::start();
    server.create_tenant(TENANT);
    for i in 0..MAX_SECRETS {
        server.put_json(&path(TENANT, Some(&format!("s{i:03}"))), &json!({ "value": "v" })).expect_status(201);
    }
    let refused = server.put_json(&path(TENANT, Some("one-more")), &json!({ "value": "v" }));
    refused.expect_error(400, "op.cap_exceeded");
    assert_eq!(refused.detail()["limit"], MAX_SECRETS, "{refused}");
    assert_eq!(refused.detail()["observed"], MAX_SECRETS + 1, "{refused}");
    // Replacing one at the cap is not a new secret; another tenant has its own cap.
    server.put_json(&path(TENANT, Some("s000")), &json!({ "value": "w" })).expect_status(200);
    server.create_tenant("other");
    server.put_json(&path("other", Some("s000")), &json!({ "value": "v" })).expect_status(201);
    assert_eq!(names_of(&server.get(&path(TENANT, None))).len(), MAX_SECRETS);
    // A delete makes room.
    server.delete(&path(TENANT, Some("s042"))).expect_status(204);
    server.put_json(&path(TENANT, Some("one-more")), &json!({ "value": "v" })).expect_status(201);
}

#[test]
fn secrets_survive_a_restart_and_go_with_their_tenant() {
    let mut server = Server::start();
    let dirs = server.dirs();
    server.create_tenant(TENANT);
    server.create_tenant("bystander");
    for name in ["a", "b", "c"] {
        server.put_json(&path(TENANT, Some(name)), &json!({ "value": format!("value-{name}") })).expect_status(201);
    }
    server.put_json(&path(TENANT, Some("b")), &json!({ "value": "value-b2" })).expect_status(200);
    server.delete(&path(TENANT, Some("c"))).expect_status(204);
    server.put_json(&path("bystander", Some("kept")), &json!({ "value": "v" })).expect_status(201);
    let before = server.get(&path(TENANT, None));
    assert_eq!(names_of(&before), ["a", "b"]);

    server.stop();
    let mut server = Server::start_in(&dirs);
    let after = server.get(&path(TENANT, None));
    assert_eq!(after.json, before.json, "names and times survive a restart");
    // The replaced value survived too: replacing it again is a 200, not a create.
    server.put_json(&path(TENANT, Some("b")), &json!({ "value": "value-b3" })).expect_status(200);

    // Deleting the tenant deletes its secrets, now and after a restart; a new tenant of the
    // same id starts with none.
    server.delete(&format!("/api/tenants/{TENANT}")).expect_status(204);
    server.get(&path(TENANT, None)).expect_error(404, "session.tenant_not_found");
    server.stop();
    let server = Server::start_in(&dirs);
    server.create_tenant(TENANT);
    assert!(names_of(&server.get(&path(TENANT, None))).is_empty(), "a deleted tenant's secrets came back");
    server.put_json(&path(TENANT, Some("a")), &json!({ "value": "fresh" })).expect_status(201);
    assert_eq!(names_of(&server.get(&path("bystander", None))), ["kept"], "another tenant's secrets stay");
}
