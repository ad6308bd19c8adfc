//! `nimbus sandbox|tenant|db` (the CLI over the sandbox, session, tenant and document routes,
//! docs/cli.md): each command run against a real server found through the discovery file, the
//! workload's exit code passed through, errors printed with their code and remediation (or the
//! server's envelope with `--json`), and nothing left behind by `--rm`.

use serde_json::Value;

use crate::harness::{CliOutput, Dirs};
use crate::sandboxes::{Fixture, TENANT, assert_nothing_left};

/// Asserts success and returns stdout's JSON document.
pub(crate) fn ok(out: &CliOutput) -> Value {
    assert_eq!(out.code, Some(0), "{out:?}");
    out.json()
}

/// `nimbus sandbox --tenant agents ARGS…` (the flag first: after `--` it would be the command's).
pub(crate) fn sandbox(fx: &Fixture, args: &[&str]) -> CliOutput {
    let mut all = vec!["sandbox", "--tenant", TENANT];
    all.extend_from_slice(args);
    fx.dirs.cli(&all)
}

/// The ids of the tenant's sandboxes, as the server lists them.
fn listed(fx: &Fixture) -> Vec<String> {
    let resp = fx.server().get(&fx.path(""));
    resp.expect_status(200);
    resp.json["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["metadata"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn sandbox_run_passes_the_exit_code_through_and_rm_leaves_nothing() {
    let fx = Fixture::start();
    let image = fx.image.as_str();

    // Attached: stdout and stderr to their streams, the workload's exit code, deleted after.
    let out =
        sandbox(&fx, &["run", "--rm", "--name", "cli task", image, "--", "sh", "-c", "echo hi; echo oops >&2; exit 3"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(out.stdout, "hi\n", "{out:?}");
    assert_eq!(out.stderr, "oops\n", "{out:?}");
    assert!(listed(&fx).is_empty(), "--rm deleted it: {:?}", listed(&fx));

    // Create flags reach the spec; without --rm the ended sandbox stays.
    let out = sandbox(
        &fx,
        &[
            "run",
            "--label",
            "purpose=cli",
            "--label",
            "run=2",
            "--cpus",
            "1",
            "--memory",
            "64m",
            "--env",
            "FOO=bar",
            image,
            "--",
            "sh",
            "-c",
            "echo $FOO",
        ],
    );
    assert_eq!((out.code, out.stdout.as_str()), (Some(0), "bar\n"), "{out:?}");
    let found = ok(&sandbox(&fx, &["ls", "--label", "purpose=cli", "--json"]));
    let items = found["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{found}");
    let id = items[0]["metadata"]["id"].as_str().expect("id").to_owned();
    assert_eq!(items[0]["metadata"]["labels"]["run"], "2");
    assert_eq!(items[0]["spec"]["sandbox"]["resources"]["memoryLimitBytes"], 64 << 20);
    assert_eq!(items[0]["status"]["exitCode"], 0);
    let table = sandbox(&fx, &["ls"]);
    assert!(
        table.stdout.starts_with("ID") && table.stdout.contains(&id) && table.stdout.contains("purpose=cli"),
        "{table:?}"
    );
    assert_eq!(sandbox(&fx, &["rm", &id]).stdout.trim(), id);
    fx.server().get(&fx.path(&format!("/{id}"))).expect_error(404, "op.not_found");
    assert_nothing_left(&id);

    // A command not in the image: no exit code, 127 as Docker does; --rm still deletes.
    let out = sandbox(&fx, &["run", "--rm", image, "--", "no-such-tool"]);
    assert_eq!(out.code, Some(127), "{out:?}");
    assert!(out.stderr.contains("start_failed"), "{out:?}");
    assert!(listed(&fx).is_empty(), "{:?}", listed(&fx));

    // --json: the log records as NDJSON, ending with the exit record.
    let out = sandbox(&fx, &["run", "--rm", "--json", image, "--", "sh", "-c", "echo one; exit 5"]);
    assert_eq!(out.code, Some(5), "{out:?}");
    let records: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).expect("NDJSON")).collect();
    assert_eq!(records[0]["data"], "one\n", "{out:?}");
    assert_eq!(records.last().expect("records")["kind"], "exit");
    assert!(listed(&fx).is_empty());
}

#[test]
fn sandbox_lifecycle_exec_logs_and_errors() {
    let fx = Fixture::start();
    let image = fx.image.as_str();

    let out =
        sandbox(&fx, &["run", "-d", "--name", "sleeper", image, "--", "sh", "-c", "echo started; exec sleep 600"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let id = out.stdout.trim().to_owned();
    assert!(id.starts_with("sleeper-"), "{out:?}");

    let got = ok(&sandbox(&fx, &["get", &id, "--json"]));
    assert_eq!(got["metadata"]["id"], id.as_str());
    let pretty = sandbox(&fx, &["get", &id]);
    assert!(pretty.stdout.lines().count() > 10, "text mode pretty-prints: {pretty:?}");
    let ready = ok(&sandbox(&fx, &["ls", "--state", "ready", "--json"]));
    assert_eq!(ready["items"][0]["metadata"]["id"], id.as_str(), "{ready}");

    // exec: output to its streams, the command's exit code, the session closed after.
    let out = sandbox(&fx, &["exec", &id, "--", "sh", "-c", "echo in; echo err >&2; exit 4"]);
    assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (Some(4), "in\n", "err\n"), "{out:?}");
    let out = sandbox(&fx, &["exec", &id, "--json", "-e", "X=y", "--", "sh", "-c", "echo $X"]);
    let answer = ok(&out);
    assert_eq!((answer["exitCode"].as_i64(), answer["stdout"].as_str()), (Some(0), Some("y\n")), "{answer}");
    let open = fx.server().get(&format!("/api/sessions?tenantId={TENANT}&state=open"));
    assert_eq!(open.json["items"].as_array().map(Vec::len), Some(0), "exec closes its session: {open}");

    // logs (the retained output), stop, then rm; a second rm is the server's 404.
    let logs = sandbox(&fx, &["logs", &id]);
    assert_eq!((logs.code, logs.stdout.as_str()), (Some(0), "started\n"), "{logs:?}");
    let out = sandbox(&fx, &["stop", &id, "-t", "1"]);
    assert_eq!((out.code, out.stdout.trim()), (Some(0), id.as_str()), "{out:?}");
    let stopped = ok(&sandbox(&fx, &["get", &id, "--json"]));
    assert_eq!(stopped["status"]["terminationReason"], "stopped_by_request", "{stopped}");
    let logs = sandbox(&fx, &["logs", &id, "-f", "--json"]);
    assert_eq!(
        logs.stdout.lines().last().map(|l| serde_json::from_str::<Value>(l).unwrap()["kind"].clone()),
        Some("exit".into())
    );
    let out = sandbox(&fx, &["rm", &id, "--json"]);
    assert_eq!(ok(&out)["deleted"], id.as_str());
    fx.server().get(&fx.path(&format!("/{id}"))).expect_error(404, "op.not_found");
    assert_nothing_left(&id);

    let out = sandbox(&fx, &["rm", &id]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let mut lines = out.stderr.lines();
    assert!(lines.next().is_some_and(|l| l.starts_with("error[op.not_found]: ")), "{out:?}");
    assert!(lines.next().is_some_and(|l| l.starts_with("  remediation: ")), "{out:?}");
    let out = sandbox(&fx, &["rm", &id, "--json"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let envelope: Value = serde_json::from_str(out.stderr.trim()).expect("the envelope on stderr");
    assert_eq!(envelope["error"]["code"], "op.not_found", "{envelope}");
    assert!(envelope["error"]["remediation"]["message"].is_string(), "{envelope}");
    assert!(envelope["error"]["requestId"].as_str().is_some_and(|r| r.starts_with("req_")), "{envelope}");

    // exec on an ended sandbox: the session cannot open.
    let out = sandbox(&fx, &["exec", &id, "--", "true"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.starts_with("error[op.not_found]"), "{out:?}");

    // Usage errors: exit 2.
    let out = fx.dirs.cli(&["sandbox", "ls"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("NIMBUS_TENANT"), "{out:?}");
    let out = sandbox(&fx, &["run", "--memory", "lots", image]);
    assert_eq!(out.code, Some(2), "{out:?}");
    let out = sandbox(&fx, &["exec", "x"]);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(listed(&fx).is_empty());
}

#[test]
fn tenants_and_documents_through_the_cli() {
    let dirs = Dirs::new();
    // No server yet: exit 3.
    let out = dirs.cli(&["tenant", "ls"]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.starts_with("error[service.unavailable]: no running server found"), "{out:?}");

    let server = dirs.start();
    assert_eq!(dirs.cli(&["tenant", "create", "clidb"]).stdout, "clidb\n");
    assert_eq!(ok(&dirs.cli(&["tenant", "create", "scratch", "--json"]))["id"], "scratch");
    assert_eq!(dirs.cli(&["tenant", "ls"]).stdout, "clidb\nscratch\n");
    assert_eq!(ok(&dirs.cli(&["tenant", "ls", "--json"]))["tenants"], serde_json::json!(["clidb", "scratch"]));
    let out = dirs.cli(&["tenant", "create", "clidb"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.starts_with("error[op.already_exists]: "), "{out:?}");
    assert!(out.stderr.contains("\n  remediation: "), "{out:?}");
    assert_eq!(dirs.cli(&["tenant", "rm", "scratch"]).code, Some(0));
    server.get("/api/tenants/scratch/documents/x").expect_error(404, "session.tenant_not_found");

    // The tenant from NIMBUS_TENANT.
    let db = |args: &[&str]| {
        let output = dirs.command().arg("db").args(args).env("NIMBUS_TENANT", "clidb").output().expect("run nimbus");
        CliOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    };
    let first = db(&["insert", "tasks", r#"{"title": "write spec", "priority": 2}"#]);
    assert_eq!(first.code, Some(0), "{first:?}");
    let first = first.stdout.trim().to_owned();
    let second = ok(&db(&["insert", "tasks", r#"{"title": "ship it", "priority": 1}"#, "--json"]));
    let second = second["id"].as_str().expect("id").to_owned();
    assert_eq!(server.document("clidb", "tasks", &first)["title"], "write spec");

    let got = ok(&db(&["get", "tasks", &first]));
    assert_eq!((got["_id"].as_str(), got["priority"].as_i64()), (Some(first.as_str()), Some(2)), "{got}");
    assert_eq!(ok(&db(&["get", "tasks", &first, "--json"]))["document"]["_id"], first.as_str());

    let high = db(&["query", "tasks", "--filter", r#"{"field": "priority", "op": "gte", "value": 2}"#]);
    let lines: Vec<Value> =
        high.stdout.lines().map(|l| serde_json::from_str(l).expect("one document a line")).collect();
    assert_eq!(lines.len(), 1, "{high:?}");
    assert_eq!(lines[0]["_id"], first.as_str());
    let ordered = ok(&db(&["query", "tasks", "--order", "priority", "--limit", "1", "--json"]));
    assert_eq!(ordered["data"][0]["_id"], second.as_str(), "{ordered}");
    let out = db(&["query", "tasks", "--filter", r#"{"field": "priority", "op": "near", "value": 1}"#]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.starts_with("error[op.invalid_input]"), "{out:?}");
    let out = db(&["insert", "tasks", "[1]"]);
    assert_eq!(out.code, Some(2), "{out:?}");

    assert_eq!(db(&["rm", "tasks", &first]).stdout.trim(), first);
    let out = db(&["get", "tasks", &first, "--json"]);
    assert_eq!(out.code, Some(1), "{out:?}");
    let envelope: Value = serde_json::from_str(out.stderr.trim()).expect("the envelope on stderr");
    assert_eq!(envelope["error"]["code"], "op.document_not_found", "{envelope}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(server.list_all("clidb", "tasks").len(), 1);
}

#[test]
#[allow(unsafe_code)]
fn ctrl_c_on_an_attached_run_stops_the_sandbox_and_rm_removes_it() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    let fx = Fixture::start();
    let args =
        ["sandbox", "--tenant", TENANT, "run", "--rm", fx.image.as_str(), "--", "sh", "-c", "echo up; exec sleep 1000"];
    let mut child = fx.dirs.command().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    // Attached and running once the workload's first line came through.
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read");
    assert_eq!(line, "up\n");
    let running = listed(&fx);
    assert_eq!(running.len(), 1, "{running:?}");

    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: `kill(2)` has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(rc, 0, "kill -INT {pid}");
    let status = child.wait().expect("wait");
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("stderr");
    // The CLI was not killed by the signal: it stopped the sandbox, saw it end, and removed it.
    assert!(status.code().is_some_and(|code| code != 0), "{status:?} {stderr}");
    assert!(stderr.contains("stopping sandbox-"), "{stderr}");
    assert!(listed(&fx).is_empty(), "--rm removed it after the stop: {:?}", listed(&fx));
    assert_nothing_left(&running[0]);
}
