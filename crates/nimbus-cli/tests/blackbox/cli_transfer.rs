//! `nimbus sandbox cp`, `nimbus sandbox exec -i|-t` and `nimbus image pull` (docs/cli.md),
//! against a real server and sandboxes from the loopback registry: bytes checked exactly both
//! ways, the pull's NDJSON progress stream, and every session closed after.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};

use crate::cli_resources::{ok, sandbox};
use crate::harness::CliOutput;
use crate::registry::sha256_hex;
use crate::sandboxes::{Fixture, TENANT};

/// Bytes that are not UTF-8 (every byte value, twice, in a shuffled order).
fn binary() -> Vec<u8> {
    (0..512u32).map(|i| (i.wrapping_mul(167) % 256) as u8).collect()
}

/// `nimbus sandbox --tenant agents ARGS…` with `input` on stdin: exit code, raw stdout, stderr.
fn piped(fx: &Fixture, args: &[&str], input: &[u8]) -> (Option<i32>, Vec<u8>, String) {
    let mut child = fx
        .dirs
        .command()
        .args(["sandbox", "--tenant", TENANT])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nimbus");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("nimbus ran");
    writer.join().expect("writer").expect("stdin written");
    (output.status.code(), output.stdout, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A ready sandbox that sleeps; its id.
fn sleeper(fx: &Fixture) -> String {
    let out = sandbox(fx, &["run", "-d", fx.image.as_str(), "--", "sleep", "600"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    out.stdout.trim().to_owned()
}

/// No session of the tenant is left open.
fn assert_sessions_closed(fx: &Fixture) {
    let open = fx.server().get(&format!("/api/sessions?tenantId={TENANT}&state=open"));
    assert_eq!(open.json["items"].as_array().map(Vec::len), Some(0), "the CLI closes its sessions: {open}");
}

fn assert_failed_with(out: &CliOutput, exit: i32, code: &str) {
    assert_eq!(out.code, Some(exit), "{out:?}");
    assert!(out.stderr.starts_with(&format!("error[{code}]: ")), "{out:?}");
}

#[test]
fn sandbox_cp_copies_files_and_directories_both_ways() {
    let fx = Fixture::start();
    let id = sleeper(&fx);
    let root = fx.dirs.root();

    // A tree with a binary file, an executable one and a nested directory.
    let tree = root.join("tree");
    fs::create_dir_all(tree.join("nested/deeper")).unwrap();
    fs::write(tree.join("bin.dat"), binary()).unwrap();
    fs::write(tree.join("run.sh"), "#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(tree.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(tree.join("nested/deeper/note.txt"), "deep\n").unwrap();

    // One file onto a new path, then checked inside the sandbox by its digest.
    let out = sandbox(&fx, &["cp", tree.join("bin.dat").to_str().unwrap(), &format!("{id}:/tmp/one.dat")]);
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), ""), "{out:?}");
    let inside = sandbox(&fx, &["exec", &id, "--", "busybox", "sha256sum", "/tmp/one.dat"]);
    assert_eq!(inside.stdout.split_whitespace().next(), Some(sha256_hex(&binary()).as_str()), "{inside:?}");

    // A directory into an existing one keeps its name; the executable bit comes along.
    let out = sandbox(&fx, &["cp", "--json", tree.to_str().unwrap(), &format!("{id}:/tmp")]);
    let summary = ok(&out);
    assert_eq!((summary["files"].as_u64(), summary["bytes"].as_u64()), (Some(3), Some(512 + 19 + 5)), "{summary}");
    let ran = sandbox(&fx, &["exec", &id, "--", "/tmp/tree/run.sh"]);
    assert_eq!((ran.code, ran.stdout.as_str()), (Some(0), "ran\n"), "{ran:?}");

    // Back out to a path that does not exist: it becomes the copy, byte for byte.
    let back = root.join("back");
    let out = sandbox(&fx, &["cp", &format!("{id}:/tmp/tree"), back.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    for file in ["bin.dat", "run.sh", "nested/deeper/note.txt"] {
        assert_eq!(fs::read(back.join(file)).unwrap(), fs::read(tree.join(file)).unwrap(), "{file}");
    }
    assert_eq!(fs::metadata(back.join("run.sh")).unwrap().permissions().mode() & 0o777, 0o755);
    // Into an existing directory: under the source's name.
    let out = sandbox(&fx, &["cp", &format!("{id}:/tmp/one.dat"), back.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fs::read(back.join("one.dat")).unwrap(), binary());

    // `-`: stdin to a sandbox file, and a sandbox file to stdout.
    let (code, _, stderr) = piped(&fx, &["cp", "-", &format!("{id}:/tmp/from-stdin")], &binary());
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stdout, stderr) = piped(&fx, &["cp", &format!("{id}:/tmp/from-stdin"), "-"], b"");
    assert_eq!((code, stdout), (Some(0), binary()), "{stderr}");

    // Errors: a missing path, a missing sandbox, a missing local file, no sandbox side.
    assert_failed_with(&sandbox(&fx, &["cp", &format!("{id}:/tmp/nope"), back.to_str().unwrap()]), 1, "op.not_found");
    let out = sandbox(&fx, &["cp", "--json", &format!("{id}:/tmp/nope"), "-"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let envelope: Value = serde_json::from_str(out.stderr.trim()).expect("the envelope on stderr");
    assert_eq!(envelope["error"]["detail"]["path"], "/tmp/nope", "{envelope}");
    assert_failed_with(&sandbox(&fx, &["cp", "no-such-box:/tmp/x", back.to_str().unwrap()]), 1, "op.not_found");
    let missing = root.join("missing");
    assert_failed_with(&sandbox(&fx, &["cp", missing.to_str().unwrap(), &format!("{id}:/tmp/x")]), 1, "op.not_found");
    assert_failed_with(&sandbox(&fx, &["cp", "a", "b"]), 2, "op.invalid_input");
    assert!(!Path::new(&missing).exists());

    assert_sessions_closed(&fx);
    fx.delete(&id);
}

#[test]
fn sandbox_exec_sends_stdin_and_allocates_a_tty() {
    let fx = Fixture::start();
    let id = sleeper(&fx);

    // -i: stdin reaches the command (binary included) and its end ends `cat`.
    let (code, stdout, stderr) = piped(&fx, &["exec", "-i", &id, "--", "cat"], &binary());
    assert_eq!((code, stdout), (Some(0), binary()), "{stderr}");
    let (code, stdout, stderr) = piped(&fx, &["exec", "-i", &id, "--", "sh", "-c", "wc -c; exit 7"], b"hello\n");
    assert_eq!((code, String::from_utf8_lossy(&stdout).trim()), (Some(7), "6"), "{stderr}");
    // Without -i the command's stdin is empty.
    let (code, stdout, _) = piped(&fx, &["exec", &id, "--", "wc", "-c"], b"ignored");
    assert_eq!((code, String::from_utf8_lossy(&stdout).trim()), (Some(0), "0"));

    // -t: a pty (80x24 without a terminal to copy the size from); without it, none.
    let out = sandbox(&fx, &["exec", "-t", &id, "--", "sh", "-c", "test -t 0 && busybox tty && busybox stty size"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("/dev/pts/") && out.stdout.contains("24 80"), "{out:?}");
    let out = sandbox(&fx, &["exec", &id, "--", "sh", "-c", "test -t 0"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    // -it with piped input, and the exit code through; --json streams the frames.
    let (code, stdout, stderr) =
        piped(&fx, &["exec", "-it", &id, "--", "sh", "-c", "read x; echo got $x; exit 3"], b"it\n");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(String::from_utf8_lossy(&stdout).contains("got it"), "{stderr}");
    let out = sandbox(&fx, &["exec", "-t", "--json", &id, "--", "true"]);
    let frames: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).expect("NDJSON")).collect();
    assert!(frames.iter().any(|f| f["kind"] == "exit" && f["code"] == 0), "{out:?}");

    assert_sessions_closed(&fx);
    fx.delete(&id);
}

#[test]
fn image_pull_through_the_server_with_progress() {
    let fx = Fixture::start();
    let url = format!("http://127.0.0.1:{}", fx.server().port);
    let pull = |args: &[&str]| {
        let mut all = vec!["image", "pull", "--url", url.as_str()];
        all.extend_from_slice(args);
        fx.dirs.cli(&all)
    };

    // The streamed form: progress events up to the whole size, then the image.
    let body = json!({ "reference": fx.image }).to_string();
    let resp = fx.server().authed(
        "POST",
        "/api/images/pull",
        &[("Accept", "application/x-ndjson"), ("Content-Type", "application/json")],
        Some(body.as_bytes()),
    );
    resp.expect_status(200);
    assert_eq!(resp.header("content-type"), Some("application/x-ndjson"));
    let events: Vec<Value> = resp.text().lines().map(|l| serde_json::from_str(l).expect("NDJSON")).collect();
    let (last, progress) = events.split_last().expect("events");
    assert!(!progress.is_empty() && progress.iter().all(|e| e["event"] == "progress"), "{events:?}");
    let bytes: Vec<u64> = progress.iter().map(|e| e["bytes"].as_u64().expect("bytes")).collect();
    assert!(bytes.windows(2).all(|w| w[0] <= w[1]), "{events:?}");
    let total = progress.last().unwrap()["totalBytes"].as_u64().expect("totalBytes");
    assert!(total > 0 && bytes.last() == Some(&total), "{events:?}");
    assert!(progress.iter().any(|e| e["layer"].as_str().is_some_and(|l| l.starts_with("sha256:"))), "{events:?}");
    assert_eq!((last["event"].as_str(), last["image"]["digest"].as_str()), (Some("done"), Some(fx.digest.as_str())));
    assert_eq!(last["image"]["source"], "pull");

    // The CLI: --json prints the image; already stored, it is answered from the store.
    let image = ok(&pull(&[&fx.image, "--json"]));
    assert_eq!(image["digest"], fx.digest.as_str(), "{image}");
    assert!(image["references"].as_array().unwrap().iter().any(|r| r == fx.image.as_str()), "{image}");
    let out = pull(&[&fx.image]);
    assert_eq!(out.stdout.trim(), format!("{}  {}", fx.image, fx.digest), "{out:?}");
    // A new tag of the same image (the plain JSON form of the route): its blobs are reused.
    fx.registry.push_busybox("nimbus-test/busybox:2");
    let second = format!("{}/nimbus-test/busybox:2", fx.registry.host());
    let resp = fx.server().post_json("/api/images/pull", &json!({ "reference": second }));
    resp.expect_status(200);
    assert_eq!(resp.json["digest"], fx.digest.as_str(), "{}", resp.json);
    let listed = ok(&fx.dirs.cli(&["image", "list", "--url", &url, "--json"]));
    let names: Vec<&Value> =
        listed["items"].as_array().unwrap().iter().flat_map(|i| i["references"].as_array().unwrap()).collect();
    assert!(names.contains(&&json!(second)) && names.contains(&&json!(fx.image)), "{listed}");

    // An image the registry does not have: the catalog code, in the stream as in the CLI.
    let missing = format!("{}/nimbus-test/none:1", fx.registry.host());
    assert_failed_with(&pull(&[&missing]), 1, "sandbox.image_not_found");
    let out = pull(&[&missing, "--json"]);
    let envelope: Value = serde_json::from_str(out.stderr.trim()).expect("the envelope on stderr");
    assert_eq!(envelope["error"]["code"], "sandbox.image_not_found", "{out:?}");
    let body = json!({ "reference": missing }).to_string();
    let resp = fx.server().authed(
        "POST",
        "/api/images/pull",
        &[("Accept", "application/x-ndjson"), ("Content-Type", "application/json")],
        Some(body.as_bytes()),
    );
    let last: Value = serde_json::from_str(resp.text().lines().last().expect("a line")).expect("NDJSON");
    assert_eq!(
        (last["event"].as_str(), last["error"]["code"].as_str()),
        (Some("error"), Some("sandbox.image_not_found"))
    );
    fx.server().post_json("/api/images/pull", &json!({ "reference": "" })).expect_field(
        400,
        "op.invalid_input",
        "reference",
    );
    fx.server().post_json("/api/images/pull", &json!({ "ref": "x" })).expect_status(400);
}

/// `-it` from a terminal (util-linux `script` gives the CLI one): keys reach the command, the
/// exit code comes through, and the terminal leaves raw mode (`icanon` again) after.
#[test]
fn sandbox_exec_it_from_a_terminal_restores_it() {
    let fx = Fixture::start();
    let id = sleeper(&fx);
    let inner = format!(
        "{} sandbox --tenant {TENANT} exec -it {id} -- sh -c 'read x; echo got $x; exit 5'; \
         echo cli=$?; stty -a | grep -o -- '-*icanon'",
        env!("CARGO_BIN_EXE_nimbus")
    );
    let quoted = inner.replace('"', "\\\"").replace('$', "\\$");
    let mut child = std::process::Command::new("sh")
        .envs(fx.dirs.command().get_envs().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))))
        .args(["-c", &format!("script -qec \"{quoted}\" /dev/null")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    child.stdin.take().expect("stdin").write_all(b"hello\n").expect("typed");
    let output = child.wait_with_output().expect("script ran");
    let text = String::from_utf8_lossy(&output.stdout).replace('\r', "");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"got hello") && lines.contains(&"cli=5"), "{text:?}");
    assert_eq!(lines.last(), Some(&"icanon"), "the terminal is cooked again: {text:?}");
    assert_sessions_closed(&fx);
    fx.delete(&id);
}
