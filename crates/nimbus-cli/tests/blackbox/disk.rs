//! `resources.diskLimitBytes` from inside a real sandbox: writes past the limit get `ENOSPC`,
//! the host spends at most the limit, and nothing (image, loop device) is left after a delete;
//! a data directory without its free-space reserve refuses new sandboxes.

use std::os::unix::fs::MetadataExt;

use serde_json::json;

use crate::faults::SmallFilesystem;
use crate::harness::{Dirs, Server};
use crate::sandboxes::{Fixture, TENANT, id_of};
use crate::syscalls::exec;

/// Loop devices whose backing file names `needle`.
fn loop_devices_backed_by(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("loop/backing_file")).ok())
        .filter(|backing| backing.contains(needle))
        .collect()
}

#[test]
fn a_sandbox_disk_stops_at_its_limit_and_the_host_grows_by_at_most_it() {
    let fx = Fixture::start();
    const LIMIT: u64 = 64 * 1024 * 1024;
    let created = fx.create(&["sleep", "100000"], json!({ "spec": { "resources": { "diskLimitBytes": LIMIT } } }));
    let id = id_of(&created);
    assert_eq!(created["spec"]["sandbox"]["resources"]["diskLimitBytes"], LIMIT, "{created}");
    fx.server().get(&fx.path(&format!("/{id}?waitFor=ready&timeoutMs=60000"))).expect_status(200);
    let body = json!({ "tenantId": TENANT, "target": { "sandbox": { "id": id } }, "channels": ["exec"] });
    let opened = fx.server().post_json("/api/sessions", &body);
    opened.expect_status(201);
    let session = opened.json["metadata"]["id"].as_str().expect("session id").to_owned();

    // Four times the limit into the writable root: the kernel says no space.
    let filled = exec(&fx, &session, &["sh", "-c", "dd if=/dev/zero of=/fill bs=1M count=256; echo dd=$?"]);
    let out =
        format!("{}{}", filled["stdout"].as_str().unwrap_or_default(), filled["stderr"].as_str().unwrap_or_default());
    assert!(out.contains("No space left on device"), "{out}");
    assert!(out.contains("dd=1"), "{out}");
    let image = fx.dirs.data().join("sandboxes").join(&id).join("disk.img");
    let meta = std::fs::metadata(&image).expect("the disk image");
    assert_eq!(meta.len(), LIMIT, "the image is the limit's size");
    assert!(meta.blocks() * 512 <= LIMIT, "the host spent {} bytes for a {LIMIT}-byte limit", meta.blocks() * 512);
    assert_eq!(loop_devices_backed_by(&id).len(), 1, "one loop device backs the sandbox's disk");
    // After the space is freed, writing works again.
    let freed = exec(&fx, &session, &["sh", "-c", "rm /fill && echo ok > /after && cat /after"]);
    assert_eq!(freed["stdout"], "ok\n", "{freed}");

    fx.delete(&id);
    assert!(!image.exists());
    assert!(loop_devices_backed_by(&id).is_empty(), "the loop device detached");

    // The default, and the bounds.
    let plain = fx.create(&["true"], json!({}));
    assert_eq!(plain["spec"]["sandbox"]["resources"]["diskLimitBytes"], 4u64 << 30, "{plain}");
    fx.delete(&id_of(&plain));
    let base = json!({ "root": fx.root(), "process": { "argv": ["true"] } });
    let mut small = base.clone();
    small["resources"] = json!({ "diskLimitBytes": 1024 });
    fx.server().post_json(&fx.path(""), &json!({ "spec": small })).expect_error(400, "op.invalid_input");
    let mut huge = base;
    huge["resources"] = json!({ "diskLimitBytes": 1u64 << 40 });
    let refused = fx.server().post_json(&fx.path(""), &json!({ "spec": huge }));
    refused.expect_error(400, "op.cap_exceeded");
    assert_eq!(refused.detail()["limit"], 64u64 << 30);
}

#[test]
fn a_data_dir_short_of_its_reserve_refuses_new_sandboxes() {
    let dirs = Dirs::new();
    // Declared before the fixture, so unmounted after its server stopped.
    let disk = SmallFilesystem::mount(&dirs.data(), "256m");
    let fx = Fixture::on(dirs, Server::start_in);

    let body = json!({ "spec": { "root": fx.root(), "process": { "argv": ["true"] } } });
    let refused = fx.server().post_json(&fx.path(""), &body);
    refused.expect_error(429, "rate.resource_exhausted");
    assert_eq!(refused.detail()["resource"], "data_dir_disk", "{refused}");
    assert_eq!(refused.detail()["limit"], 1u64 << 30, "the reserve: {refused}");
    assert!(refused.detail()["current"].as_u64().is_some_and(|free| free <= 256 << 20), "{refused}");
    // The tenant's own writes still go through: the reserve is theirs.
    fx.server().insert(TENANT, "notes", &json!({ "text": "still writable" }));

    disk.grow("2g");
    let admitted = id_of(&fx.create(&["true"], json!({})));
    fx.wait_stopped(&admitted);
    fx.delete(&admitted);
}
