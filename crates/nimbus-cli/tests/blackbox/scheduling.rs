//! Scheduling (scheduling.md): one-shot jobs, crons, and exactly-once effects across crashes.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Dirs, Server, wait_for};

fn schedule(server: &Server, tenant: &str, run_after_ms: u64, mutation: Value) -> String {
    let resp = server.post_json(
        &format!("/api/tenants/{tenant}/schedule"),
        &json!({ "run_after_ms": run_after_ms, "mutation": mutation }),
    );
    resp.expect_status(201);
    resp.json["job_id"].as_str().unwrap_or_else(|| panic!("no job_id: {resp}")).to_owned()
}

fn job(server: &Server, tenant: &str, id: &str) -> Value {
    let resp = server.get(&format!("/api/tenants/{tenant}/schedule/{id}"));
    resp.expect_status(200);
    resp.json["job"].clone()
}

/// Waits (by polling the job) until it reaches a terminal state, and returns it.
fn wait_finished(server: &Server, tenant: &str, id: &str) -> Value {
    wait_for(&format!("job {id} to finish"), || {
        let job = job(server, tenant, id);
        matches!(job["state"].as_str(), Some("completed" | "failed" | "cancelled")).then_some(job)
    })
}

fn count_where(server: &Server, tenant: &str, table: &str, key: &str, value: &Value) -> usize {
    server.list_all(tenant, table).iter().filter(|d| &d[key] == value).count()
}

#[test]
fn a_due_job_runs_exactly_once_and_reports_its_result() {
    let server = Server::start();
    server.create_tenant("s1");
    let id =
        schedule(&server, "s1", 200, json!({ "type": "insert", "table": "tasks", "fields": { "title": "later" } }));
    let pending = job(&server, "s1", &id);
    assert_eq!(pending["state"], "pending");
    assert_eq!(pending["attempts"], 0);
    assert_eq!(pending["started_at"], Value::Null);
    assert_eq!(pending["mutation"]["id"], Value::Null, "an insert without id serializes id: null");
    // Pending jobs are listed; a result does not exist yet.
    let listed = server.get("/api/tenants/s1/schedule");
    listed.expect_status(200);
    assert_eq!(listed.json["jobs"][0]["id"], id.as_str());
    assert_eq!(listed.json["jobs"][0]["run_at"], pending["run_at"]);
    server.get(&format!("/api/tenants/s1/schedule/history/{id}")).expect_error(404, "op.scheduled_job_not_found");

    let done = wait_finished(&server, "s1", &id);
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["attempts"], 1);
    assert!(done["started_at"].as_i64().unwrap() >= done["run_at"].as_i64().unwrap(), "never before run_at: {done}");
    assert_eq!(count_where(&server, "s1", "tasks", "title", &json!("later")), 1);

    let result = server.get(&format!("/api/tenants/s1/schedule/history/{id}"));
    result.expect_status(200);
    let result = &result.json["result"];
    let inserted = server.list_all("s1", "tasks");
    assert_eq!(
        (result["outcome"].as_str(), &result["error"], &result["value"]),
        (Some("completed"), &Value::Null, &inserted[0]["_id"]),
        "an insert's result value is the new id"
    );
    assert_eq!(server.get("/api/tenants/s1/schedule").json["jobs"], json!([]));
}

#[test]
fn jobs_update_delete_and_fail_terminally() {
    let server = Server::start();
    server.create_tenant("s2");
    let doc = server.insert("s2", "items", &json!({ "n": 1 }));
    let patched =
        schedule(&server, "s2", 0, json!({ "type": "update", "table": "items", "id": doc, "patch": { "n": 2 } }));
    assert_eq!(wait_finished(&server, "s2", &patched)["state"], "completed");
    assert_eq!(server.document("s2", "items", &doc)["n"], 2);

    // An explicit id that exists fails with op.already_exists and never overwrites.
    let explicit = json!({ "type": "insert", "table": "items", "id": doc, "fields": { "n": 99 } });
    let clash = schedule(&server, "s2", 0, explicit);
    let failed = wait_finished(&server, "s2", &clash);
    assert_eq!((failed["state"].as_str(), failed["error_code"].as_str()), (Some("failed"), Some("op.already_exists")));
    assert!(failed["error"].is_string());
    assert_eq!(server.document("s2", "items", &doc)["n"], 2);
    let result = server.get(&format!("/api/tenants/s2/schedule/history/{clash}"));
    assert_eq!(result.json["result"]["outcome"], "failed");

    let deleted = schedule(&server, "s2", 0, json!({ "type": "delete", "table": "items", "id": doc }));
    assert_eq!(wait_finished(&server, "s2", &deleted)["state"], "completed");
    server.get(&format!("/api/tenants/s2/documents/items/{doc}")).expect_error(404, "op.document_not_found");

    // Deleting again fails: the document is gone.
    let again = schedule(&server, "s2", 0, json!({ "type": "delete", "table": "items", "id": doc }));
    assert_eq!(wait_finished(&server, "s2", &again)["error_code"], "op.document_not_found");
}

#[test]
fn cancel_only_pending_jobs() {
    let server = Server::start();
    server.create_tenant("s3");
    let far = schedule(&server, "s3", 3_600_000, json!({ "type": "insert", "table": "t", "fields": {} }));
    server.delete(&format!("/api/tenants/s3/schedule/{far}")).expect_status(204);
    let cancelled = job(&server, "s3", &far);
    assert_eq!(cancelled["state"], "cancelled");
    assert!(cancelled["finished_at"].is_i64());
    // Cancelling again: 404 with the state, so the caller can tell why.
    let again = server.delete(&format!("/api/tenants/s3/schedule/{far}"));
    again.expect_error(404, "op.scheduled_job_not_found");
    assert_eq!(again.detail(), &json!({ "jobId": far, "state": "cancelled" }));
    // A cancelled job has no result and is not pending.
    server.get(&format!("/api/tenants/s3/schedule/history/{far}")).expect_error(404, "op.scheduled_job_not_found");
    assert_eq!(server.get("/api/tenants/s3/schedule").json["jobs"], json!([]));

    let done = schedule(&server, "s3", 0, json!({ "type": "insert", "table": "t", "fields": {} }));
    wait_finished(&server, "s3", &done);
    let late = server.delete(&format!("/api/tenants/s3/schedule/{done}"));
    late.expect_error(404, "op.scheduled_job_not_found");
    assert_eq!(late.detail()["state"], "completed");

    let unknown = server.delete("/api/tenants/s3/schedule/01jzzzzzzzzzzzzzzzzzzzzzzz");
    unknown.expect_error(404, "op.scheduled_job_not_found");
    assert_eq!(unknown.detail(), &json!({ "jobId": "01jzzzzzzzzzzzzzzzzzzzzzzz" }));
    server.get("/api/tenants/s3/schedule/nope").expect_error(404, "op.scheduled_job_not_found");
    assert_eq!(server.list_all("s3", "t").len(), 1, "only the uncancelled job wrote");
}

#[test]
fn due_jobs_run_in_run_at_then_id_order() {
    let server = Server::start();
    server.create_tenant("s4");
    // Created in reverse of their due order; all due within the same pass.
    let ids: Vec<String> = (0..5u64)
        .map(|i| {
            let mutation = json!({ "type": "insert", "table": "order", "fields": { "i": i } });
            schedule(&server, "s4", 300 - i * 50, mutation)
        })
        .collect();
    for id in &ids {
        assert_eq!(wait_finished(&server, "s4", id)["state"], "completed");
    }
    // Ids are minted in creation order: sorting documents by id gives commit order.
    let committed: Vec<i64> = server.list_all("s4", "order").iter().map(|d| d["i"].as_i64().unwrap()).collect();
    assert_eq!(committed, [4, 3, 2, 1, 0]);
}

#[test]
fn bad_job_and_cron_inputs() {
    let server = Server::start();
    server.create_tenant("s5");
    let insert = json!({ "type": "insert", "table": "t", "fields": {} });
    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (json!({ "mutation": insert }), 400, "op.invalid_input", Some("run_after_ms")),
        (json!({ "run_after_ms": -1, "mutation": insert }), 400, "op.invalid_input", Some("run_after_ms")),
        (
            json!({ "run_after_ms": 31_536_000_001u64, "mutation": insert }),
            400,
            "op.invalid_input",
            Some("run_after_ms"),
        ),
        (json!({ "run_after_ms": 0 }), 400, "op.invalid_input", Some("mutation")),
        (
            json!({ "run_after_ms": 0, "mutation": { "type": "upsert" } }),
            400,
            "op.invalid_input",
            Some("mutation.type"),
        ),
        (
            json!({ "run_after_ms": 0, "mutation": { "type": "insert", "table": "bad table", "fields": {} } }),
            400,
            "op.invalid_input",
            Some("mutation.table"),
        ),
        (
            json!({ "run_after_ms": 0, "mutation": { "type": "delete", "table": "t" } }),
            400,
            "op.invalid_input",
            Some("mutation.id"),
        ),
        (
            json!({ "run_after_ms": 0, "mutation": { "type": "function", "name": "emails:send", "args": {} } }),
            404,
            "function.not_found",
            None,
        ),
    ];
    for (body, status, code, field) in cases {
        let resp = server.post_json("/api/tenants/s5/schedule", &body);
        match field {
            Some(field) => resp.expect_field(status, code, field),
            None => resp.expect_error(status, code),
        };
    }
    server
        .post_json("/api/tenants/nobody/schedule", &json!({ "run_after_ms": 0, "mutation": insert }))
        .expect_error(404, "session.tenant_not_found");

    let cron = |name: &str, schedule: Value| json!({ "name": name, "schedule": schedule, "mutation": insert });
    let cron_cases: Vec<(Value, &str)> = vec![
        (cron("", json!({ "type": "interval", "seconds": 1 })), "name"),
        (cron("a/b", json!({ "type": "interval", "seconds": 1 })), "name"),
        (cron(" x", json!({ "type": "interval", "seconds": 1 })), "name"),
        (cron("c", json!({ "type": "interval", "seconds": 0 })), "schedule.seconds"),
        (cron("c", json!({ "type": "interval", "seconds": 31_536_001 })), "schedule.seconds"),
        (cron("c", json!({ "type": "weekly" })), "schedule.type"),
        (cron("c", json!({ "type": "cron", "expression": "0 0 ? * *" })), "schedule.expression"),
        (cron("c", json!({ "type": "cron", "expression": "0 0 L * *" })), "schedule.expression"),
        (cron("c", json!({ "type": "cron", "expression": "* * * *" })), "schedule.expression"),
        (
            cron("c", json!({ "type": "cron", "expression": "0 8 * * *", "timezone": "Mars/Olympus" })),
            "schedule.timezone",
        ),
    ];
    for (body, field) in cron_cases {
        server.post_json("/api/tenants/s5/crons", &body).expect_field(400, "op.invalid_input", field);
    }
    let bad_limit = server.get("/api/tenants/s5/crons/x/runs?limit=0");
    bad_limit.expect_field(400, "op.invalid_input", "limit");
}

#[test]
fn crons_fire_on_an_interval_and_record_runs() {
    let server = Server::start();
    server.create_tenant("c1");
    let body = json!({
        "name": "tick",
        "schedule": { "type": "interval", "seconds": 1 },
        "mutation": { "type": "insert", "table": "ticks", "fields": { "from": "cron" } },
    });
    let created = server.post_json("/api/tenants/c1/crons", &body);
    created.expect_status(201);
    assert!(created.body.is_empty(), "201 with an empty body");
    server.post_json("/api/tenants/c1/crons", &body).expect_error(409, "op.already_exists");

    let cron = server.get("/api/tenants/c1/crons/tick");
    cron.expect_status(200);
    let cron = &cron.json["cron"];
    assert_eq!(
        cron["next_run"].as_i64(),
        cron["created_at"].as_i64().map(|c| c + 1000),
        "first run at created_at + N s"
    );
    assert_eq!(cron["enabled"], true);
    assert_eq!(cron["last_run"], Value::Null);

    let runs = wait_for("two cron runs", || {
        let resp = server.get("/api/tenants/c1/crons/tick/runs");
        resp.expect_status(200);
        let runs = resp.json["runs"].as_array().cloned().unwrap_or_default();
        (runs.len() >= 2).then_some(runs)
    });
    assert!(runs.iter().all(|r| r["outcome"] == "completed"), "{runs:?}");
    assert!(runs[0]["run_id"].as_str() > runs[1]["run_id"].as_str(), "newest first");
    assert!(runs[0]["scheduled_at"].as_i64() > runs[1]["scheduled_at"].as_i64());
    assert!(count_where(&server, "c1", "ticks", "from", &json!("cron")) >= 2);
    let one = server.get("/api/tenants/c1/crons/tick/runs?limit=1");
    assert_eq!(one.json["runs"].as_array().map(Vec::len), Some(1));

    // Disable: next_run is null and no further runs are recorded.
    let patched = server.patch_json("/api/tenants/c1/crons/tick", &json!({ "enabled": false }));
    patched.expect_status(200);
    assert_eq!(patched.json["cron"]["next_run"], Value::Null);
    assert!(patched.json["cron"]["last_run"].is_i64());
    let listed = server.get("/api/tenants/c1/crons");
    assert_eq!(listed.json["crons"][0]["name"], "tick");
    assert_eq!(listed.json["crons"][0]["enabled"], false);

    server.delete("/api/tenants/c1/crons/tick").expect_status(204);
    server.delete("/api/tenants/c1/crons/tick").expect_status(204);
    let gone = server.get("/api/tenants/c1/crons/tick");
    gone.expect_error(404, "op.not_found");
    assert_eq!(gone.detail(), &json!({ "resource": "cron", "name": "tick" }));
    server.get("/api/tenants/c1/crons/tick/runs").expect_error(404, "op.not_found");
    server.patch_json("/api/tenants/c1/crons/tick", &json!({ "enabled": true })).expect_error(404, "op.not_found");
}

#[test]
fn a_cron_expression_is_validated_and_scheduled_in_its_zone() {
    let server = Server::start();
    server.create_tenant("c2");
    let body = json!({
        "name": "digest: weekdays",
        "schedule": { "type": "cron", "expression": "0 8 * * MON-FRI", "timezone": "Europe/Berlin" },
        "mutation": { "type": "insert", "table": "digests", "fields": {} },
    });
    server.post_json("/api/tenants/c2/crons", &body).expect_status(201);
    let cron = server.get("/api/tenants/c2/crons/digest%3A%20weekdays");
    cron.expect_status(200);
    let cron = &cron.json["cron"];
    assert_eq!(cron["schedule"], body["schedule"]);
    let next = cron["next_run"].as_i64().expect("next_run");
    // 08:00 in Berlin is 06:00 or 07:00 UTC: a whole hour.
    assert_eq!(next % 3_600_000, 0, "{cron}");
    assert!(matches!((next / 3_600_000) % 24, 6 | 7), "{cron}");

    // The timezone defaults to UTC; a 6-field expression every second fires.
    let every_second = json!({
        "name": "fast",
        "schedule": { "type": "cron", "expression": "* * * * * *" },
        "mutation": { "type": "insert", "table": "fast", "fields": {} },
    });
    server.post_json("/api/tenants/c2/crons", &every_second).expect_status(201);
    assert_eq!(server.get("/api/tenants/c2/crons/fast").json["cron"]["schedule"]["timezone"], "UTC");
    wait_for("a cron-expression run", || {
        let runs = server.get("/api/tenants/c2/crons/fast/runs").json["runs"].clone();
        (runs.as_array().is_some_and(|r| !r.is_empty())).then_some(())
    });

    // PATCH validates like create and recomputes next_run.
    let hourly = json!({ "schedule": { "type": "cron", "expression": "@hourly" } });
    let patched = server.patch_json("/api/tenants/c2/crons/fast", &hourly);
    patched.expect_status(200);
    assert_eq!(patched.json["cron"]["next_run"].as_i64().map(|n| n % 3_600_000), Some(0));
    let bad = json!({ "schedule": { "type": "cron", "expression": "0 0 * * 5#3" } });
    server.patch_json("/api/tenants/c2/crons/fast", &bad).expect_field(400, "op.invalid_input", "schedule.expression");
}

#[test]
fn pending_jobs_and_crons_survive_a_restart() {
    let dirs = Dirs::new();
    let id = {
        let mut server = dirs.start();
        server.create_tenant("r1");
        let id =
            schedule(&server, "r1", 1_500, json!({ "type": "insert", "table": "t", "fields": { "k": "restart" } }));
        server.stop();
        id
    };
    let server = dirs.start();
    assert_eq!(wait_finished(&server, "r1", &id)["state"], "completed");
    assert_eq!(count_where(&server, "r1", "t", "k", &json!("restart")), 1);
}

/// `kill -9`-like ends between a job's claim and its commit, and between its commit and its
/// completion, leave the target applied exactly once after recovery.
#[test]
fn crashes_around_a_job_apply_it_exactly_once() {
    let dirs = Dirs::new();
    {
        let server = dirs.start();
        server.create_tenant("k1");
    }
    for round in 0..5u64 {
        let fault = if round % 2 == 0 { "crash_after_claim" } else { "crash_after_commit" };
        let mut crashing = dirs.start_with_env(&[("NIMBUS_TEST_FAULT", fault)]);
        let mutation = json!({ "type": "insert", "table": "once", "fields": { "round": round } });
        let id = schedule(&crashing, "k1", 0, mutation);
        let status = crashing.wait_exit();
        assert_eq!(status.signal(), Some(libc::SIGABRT), "round {round}: {status:?}; stderr:\n{}", crashing.stderr());

        let mut server = dirs.start();
        let done = wait_finished(&server, "k1", &id);
        assert_eq!(done["state"], "completed", "round {round}: {done}");
        assert_eq!(done["attempts"], 2, "round {round}: one interrupted attempt, one recovered");
        assert_eq!(count_where(&server, "k1", "once", "round", &json!(round)), 1, "round {round} ({fault})");
        server.stop();
    }
}

/// The pending-job and cron caps, and the purge of finished jobs past their retention. The
/// tenant file is filled to the caps behind the server's back (100,000 jobs through HTTP would
/// take minutes), then the server is started on it again.
#[test]
fn the_caps_hold_and_finished_jobs_past_retention_are_purged() {
    const MAX_PENDING: i64 = 100_000;
    const MAX_CRONS: i64 = 1_000;
    const DAY_MS: i64 = 86_400_000;
    let dirs = Dirs::new();
    let mut server = dirs.start();
    server.create_tenant("caps");
    let insert = json!({ "type": "insert", "table": "t", "fields": { "k": 1 } });
    let seed = schedule(&server, "caps", DAY_MS as u64, insert.clone());
    let (old, recent) = (schedule(&server, "caps", 0, insert.clone()), schedule(&server, "caps", 0, insert.clone()));
    wait_finished(&server, "caps", &old);
    wait_finished(&server, "caps", &recent);
    let cron =
        |name: &str| json!({ "name": name, "schedule": { "type": "interval", "seconds": 86_400 }, "mutation": insert });
    server.post_json("/api/tenants/caps/crons", &cron("c0")).expect_status(201);
    server.stop();

    {
        let conn = rusqlite::Connection::open(dirs.data().join("tenants/caps.sqlite3")).expect("open");
        let copies = conn
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
                 INSERT INTO scheduled_jobs (id, run_at, state, mutation, created_at, started_at, finished_at, \
                 attempts, error, error_code, value) \
                 SELECT printf('copy%06d', i), run_at, state, mutation, created_at, started_at, finished_at, \
                 attempts, error, error_code, value FROM n, scheduled_jobs WHERE id = ?2",
                rusqlite::params![MAX_PENDING - 1, seed],
            )
            .expect("fill pending jobs");
        assert_eq!(copies as i64, MAX_PENDING - 1);
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             INSERT INTO crons (name, schedule, mutation, enabled, last_run, next_run, created_at) \
             SELECT printf('copy%04d', i), schedule, mutation, enabled, last_run, next_run, created_at \
             FROM n, crons WHERE name = 'c0'",
            [MAX_CRONS - 2],
        )
        .expect("fill crons");
        let aged = conn
            .execute(
                "UPDATE scheduled_jobs SET finished_at = finished_at - 8 * ?1 WHERE id = ?2",
                rusqlite::params![DAY_MS, old],
            )
            .expect("age a finished job");
        assert_eq!(aged, 1);
    }
    let server = dirs.start();

    // Finished more than 7 days ago: purged at start-up; the recent one stays.
    server.get(&format!("/api/tenants/caps/schedule/{old}")).expect_error(404, "op.scheduled_job_not_found");
    assert_eq!(job(&server, "caps", &recent)["state"], "completed");

    let body = json!({ "run_after_ms": DAY_MS, "mutation": insert });
    let full = server.post_json("/api/tenants/caps/schedule", &body);
    full.expect_error(429, "rate.resource_exhausted");
    assert_eq!(full.detail()["limit"], MAX_PENDING, "{full}");
    server.delete(&format!("/api/tenants/caps/schedule/{seed}")).expect_status(204);
    server.post_json("/api/tenants/caps/schedule", &body).expect_status(201);

    server.post_json("/api/tenants/caps/crons", &cron("last")).expect_status(201);
    let over = server.post_json("/api/tenants/caps/crons", &cron("one-too-many"));
    over.expect_error(400, "op.cap_exceeded");
    assert_eq!(over.detail()["limit"], MAX_CRONS, "{over}");
}

/// An infrastructure error (here a stored document damaged behind the server's back) is not the
/// target's fault, so the job is retried; a persistent one fails it after the limit of runs.
#[test]
fn a_persistent_storage_error_fails_a_job_after_its_retries() {
    const MAX_INFRA_ATTEMPTS: i64 = 5;
    let server = Server::start();
    server.create_tenant("infra");
    let doc = server.insert("infra", "items", &json!({ "n": 1 }));
    let conn = rusqlite::Connection::open(server.dirs().data().join("tenants/infra.sqlite3")).expect("open");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    conn.execute("UPDATE documents SET fields = '{not json' WHERE id = ?1", [&doc]).expect("corrupt");

    let id =
        schedule(&server, "infra", 0, json!({ "type": "update", "table": "items", "id": doc, "patch": { "n": 2 } }));
    let job = wait_finished(&server, "infra", &id);
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["error_code"], "service.serialization", "{job}");
    assert_eq!(job["attempts"], MAX_INFRA_ATTEMPTS, "{job}");
}

/// The names of the server's tenant writer threads (`writer-<tenant>`): a tenant has one once
/// its database is open.
fn open_tenants(server: &Server) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).expect("the server's threads");
    let mut names: Vec<String> = tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter_map(|comm| comm.trim().strip_prefix("writer-").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Start-up recovery opens only the tenants that hold scheduled work, and a tenant deleted and
/// created again is tracked again from its first job.
#[test]
fn start_up_opens_only_tenants_with_scheduled_work() {
    let dirs = Dirs::new();
    let insert = json!({ "type": "insert", "table": "t", "fields": {} });
    {
        let mut server = dirs.start();
        for tenant in ["sw", "sx", "sy", "sz"] {
            server.create_tenant(tenant);
        }
        schedule(&server, "sw", 86_400_000, insert.clone());
        let cron =
            json!({ "name": "daily", "schedule": { "type": "interval", "seconds": 86_400 }, "mutation": insert });
        server.post_json("/api/tenants/sx/crons", &cron).expect_status(201);
        server.insert("sy", "t", &json!({ "n": 1 }));
        // sz: a job, then the tenant deleted and created again with a job of its own.
        schedule(&server, "sz", 86_400_000, insert.clone());
        server.delete("/api/tenants/sz").expect_status(204);
        server.create_tenant("sz");
        schedule(&server, "sz", 86_400_000, insert.clone());
        server.stop();
    }
    let mut server = dirs.start();
    assert_eq!(open_tenants(&server), ["sw", "sx", "sz"]);
    assert_eq!(server.get("/api/tenants/sz/schedule").json["jobs"].as_array().map(Vec::len), Some(1));

    // A tenant whose crons are all gone is looked at once more, found empty and dropped from the
    // index: the start after that does not open it.
    server.delete("/api/tenants/sx/crons/daily").expect_status(204);
    server.stop();
    let mut server = dirs.start();
    assert_eq!(open_tenants(&server), ["sw", "sx", "sz"]);
    server.stop();
    let server = dirs.start();
    assert_eq!(open_tenants(&server), ["sw", "sz"]);
}
