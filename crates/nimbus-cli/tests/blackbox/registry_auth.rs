//! Operator registry credentials (images.md, "Registry credentials"): a registry that requires
//! HTTP Basic auth refuses the server's anonymous pulls, and pulls with the credentials from
//! `<data-dir>/registries.json` (read at start-up) after a restart. Runs as root (sandboxes).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::harness::{Dirs, Server};
use crate::registry::Registry;
use crate::sandboxes::assert_nothing_left;

const TENANT: &str = "agents";
const USER: &str = "nimbus-bot";
const PASSWORD: &str = "s3cret-pull-password";

/// The server on `dirs`; on drop (also when the test fails) it is killed, then every sandbox it
/// left is swept, as `sandboxes.rs`'s `Fixture` does.
struct Guard {
    server: Option<Server>,
    dirs: Arc<Dirs>,
}

impl Guard {
    fn server(&self) -> &Server {
        self.server.as_ref().expect("server running")
    }

    /// Stops the server gracefully and starts another on the same directories.
    fn restart(&mut self) {
        self.server.as_mut().expect("server running").stop();
        self.server = Some(Server::start_in(&self.dirs));
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        drop(self.server.take());
        crate::sandboxes::sweep_sandboxes(&self.dirs);
    }
}

fn sandboxes(rest: &str) -> String {
    format!("/api/tenants/{TENANT}/sandboxes{rest}")
}

fn spec(image: &str) -> Value {
    json!({ "spec": {
        "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": image } },
        "process": { "argv": ["true"] },
    } })
}

#[test]
fn pulls_use_operator_credentials() {
    let registry = Registry::start_with_basic_auth(USER, PASSWORD);
    let digest = registry.push_busybox("nimbus-test/busybox:1");
    let image = format!("{}/nimbus-test/busybox:1", registry.host());
    let dirs = Dirs::new();
    let mut guard = Guard { server: Some(Server::start_in(&dirs)), dirs: dirs.clone() };
    guard.server().create_tenant(TENANT);

    // Without registries.json the pull is anonymous and the registry refuses it: 502, retryable,
    // with the registry's 401.
    let refused = guard.server().post_json(&sandboxes(""), &spec(&image));
    refused.expect_error(502, "sandbox.image_pull_failed");
    assert_eq!(refused.json["error"]["retryable"], true, "{refused}");
    let detail = refused.detail();
    assert_eq!(detail["httpStatus"], 401, "{refused}");
    assert_eq!(detail["reference"], image.as_str());
    assert_eq!(detail["registry"], registry.host().as_str());
    assert!(detail["reason"].as_str().is_some_and(|r| !r.is_empty()), "{refused}");

    // The operator's credentials, read when the server starts.
    let file = dirs.data().join("registries.json");
    let credentials = json!({ "registries": { registry.host(): { "username": USER, "password": PASSWORD } } });
    std::fs::write(&file, credentials.to_string()).expect("write registries.json");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod registries.json");
    }
    guard.restart();

    let created = guard.server().post_json(&sandboxes(""), &spec(&image));
    created.expect_status(201);
    assert_eq!(created.json["status"]["image"]["digest"], digest.as_str(), "{created}");
    assert_eq!(created.json["status"]["image"]["reference"], image.as_str(), "{created}");
    let id = created.json["metadata"]["id"].as_str().expect("metadata.id").to_owned();
    let ended = guard.server().get(&sandboxes(&format!("/{id}?waitFor=stopped&timeoutMs=60000")));
    ended.expect_status(200);
    assert_eq!(
        (ended.json["status"]["lifecycleState"].as_str(), ended.json["status"]["exitCode"].as_i64()),
        (Some("stopped"), Some(0)),
        "{ended}"
    );
    guard.server().delete(&sandboxes(&format!("/{id}"))).expect_status(204);
    assert_nothing_left(&id);

    // The password is never logged.
    assert!(!guard.server().stderr().contains(PASSWORD), "the server logged the registry password");
}
