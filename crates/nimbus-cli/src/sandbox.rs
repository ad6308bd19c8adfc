//! `nimbus sandbox run|ls|get|stop|rm|logs|exec|cp`: a tenant's sandboxes through the running
//! server's `/api/tenants/{t}/sandboxes` routes (sandboxes.md) and, for `exec` and `cp`, a
//! session with the exec or files channel (sessions.md; `cp.rs`, and `interactive.rs` for
//! `exec -i|-t`). The server validates every spec; this file only builds bodies, copies output
//! and maps the workload's end to an exit code.

mod cp;
mod interactive;

use std::io::{BufRead, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use nimbus_core::NimbusError;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use serde_json::{Map, Value, json};

use crate::client::{Live, ServerArgs, TenantArg, connect, segment};
use crate::{EXIT_FAILED, Failure};

/// Exit code of `run` when the sandbox ended without an exit code for a reason other than a
/// start failure (e.g. `server_restart_lost`); Docker's "the run itself failed".
const EXIT_RUN_FAILED: u8 = 125;
/// Exit code of `run` when the command could not be started (not executable, user not found).
const EXIT_CANNOT_INVOKE: u8 = 126;
/// Exit code of `run` when the command is not in the image.
const EXIT_NOT_FOUND: u8 = 127;
/// Sandboxes asked for per list page.
const PAGE: usize = 100;

/// `nimbus sandbox …`.
#[derive(Args)]
pub struct SandboxArgs {
    #[command(subcommand)]
    command: SandboxCommand,
    #[command(flatten)]
    tenant: TenantArg,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The sandbox subcommands.
#[derive(Subcommand)]
enum SandboxCommand {
    /// Create a sandbox from IMAGE, stream its output until it ends and exit with its exit code.
    Run(RunArgs),
    /// List sandboxes: ID, STATE, EXIT, CREATED, LABELS.
    #[command(visible_alias = "list")]
    Ls {
        /// Only sandboxes in this state (starting, ready, stopping, stopped, failed).
        #[arg(long)]
        state: Option<String>,
        /// Only sandboxes with this label (`KEY` or `KEY=VALUE`).
        #[arg(long, short = 'l', value_parser = parse_label_filter)]
        label: Option<(String, Option<String>)>,
    },
    /// Print a sandbox (JSON).
    #[command(visible_alias = "inspect")]
    Get {
        /// The sandbox id.
        id: String,
    },
    /// Stop a sandbox: SIGTERM to its main process, SIGKILL after the grace period.
    Stop {
        /// The sandbox id.
        id: String,
        /// Seconds to wait before SIGKILL (server default 10).
        #[arg(long, short = 't')]
        time: Option<u64>,
    },
    /// Delete a sandbox from any state (a running one is killed at once).
    #[command(visible_alias = "delete")]
    Rm {
        /// The sandbox id.
        id: String,
    },
    /// Print a sandbox's output (stdout to stdout, stderr to stderr).
    Logs {
        /// The sandbox id.
        id: String,
        /// Keep printing until the sandbox ends.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Only the last N records.
        #[arg(long, short = 'n')]
        tail: Option<u64>,
    },
    /// Run a command in a ready sandbox (through a session) and exit with its exit code.
    Exec(ExecArgs),
    /// Copy files or directories between a sandbox and the local filesystem:
    /// `cp SANDBOX:PATH LOCAL` or `cp LOCAL SANDBOX:PATH` (`-`: stdin or stdout, one file).
    Cp(cp::CpArgs),
}

/// `nimbus sandbox run`.
#[derive(Args)]
struct RunArgs {
    /// The image reference (pulled if the store does not have it).
    image: String,
    /// The command line (after `--`); default: the image's Entrypoint and Cmd.
    #[arg(last = true)]
    cmd: Vec<String>,
    /// A label `KEY=VALUE` (repeatable).
    #[arg(long, short = 'l', value_parser = parse_pair)]
    label: Vec<(String, String)>,
    /// An environment variable `KEY=VALUE` (repeatable).
    #[arg(long, short = 'e', value_parser = parse_env)]
    env: Vec<String>,
    /// CPUs (whole number, 1-4).
    #[arg(long)]
    cpus: Option<u32>,
    /// Memory limit in bytes; suffixes k, m, g (binary: 512m = 512 MiB).
    #[arg(long, short = 'm', value_parser = parse_bytes)]
    memory: Option<u64>,
    /// Process limit.
    #[arg(long)]
    pids_limit: Option<u64>,
    /// The display name (the id's prefix).
    #[arg(long)]
    name: Option<String>,
    /// The user: `uid`, `uid:gid`, `name` or `name:group`.
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// The working directory.
    #[arg(long, short = 'w')]
    workdir: Option<String>,
    /// Delete the sandbox once it has ended.
    #[arg(long)]
    rm: bool,
    /// Print the id and return at once; the sandbox keeps running.
    #[arg(long, short = 'd', conflicts_with = "rm")]
    detach: bool,
}

/// `nimbus sandbox exec`.
#[derive(Args)]
struct ExecArgs {
    /// The sandbox id.
    id: String,
    /// The command line (after `--`).
    #[arg(last = true, required = true)]
    cmd: Vec<String>,
    /// An environment variable `KEY=VALUE` (repeatable).
    #[arg(long, short = 'e', value_parser = parse_env)]
    env: Vec<String>,
    /// The user: `uid`, `uid:gid`, `name` or `name:group`.
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// The working directory.
    #[arg(long, short = 'w')]
    workdir: Option<String>,
    /// Keep stdin open and send it to the command (its end closes the command's stdin).
    #[arg(long, short = 'i')]
    interactive: bool,
    /// Give the command a pty (stdout and stderr merged); with a terminal on stdin, raw mode
    /// and window size changes forwarded.
    #[arg(long, short = 't')]
    tty: bool,
}

/// `KEY=VALUE`.
fn parse_pair(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err("must be KEY=VALUE".to_owned()),
    }
}

/// `KEY=VALUE`, kept as one string (the wire form of `env`).
fn parse_env(raw: &str) -> Result<String, String> {
    parse_pair(raw).map(|_| raw.to_owned())
}

/// `KEY` or `KEY=VALUE`.
fn parse_label_filter(raw: &str) -> Result<(String, Option<String>), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), Some(value.to_owned()))),
        None if !raw.is_empty() => Ok((raw.to_owned(), None)),
        _ => Err("must be KEY or KEY=VALUE".to_owned()),
    }
}

/// Bytes with an optional binary suffix: `1048576`, `512k`, `512m`, `1g`, `1GiB`, `2t`.
fn parse_bytes(raw: &str) -> Result<u64, String> {
    let lower = raw.trim().to_ascii_lowercase();
    let number = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &lower[number.len()..];
    let shift = match unit {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("unknown unit `{unit}`: use b, k, m, g or t (e.g. 512m)")),
    };
    let value: u64 =
        number.parse().map_err(|_| "must be a whole number of bytes, e.g. 536870912 or 512m".to_owned())?;
    value.checked_mul(1 << shift).ok_or_else(|| "too large".to_owned())
}

/// Runs a sandbox subcommand.
pub fn run(args: SandboxArgs) -> Result<(), Failure> {
    let tenant = args.tenant.get()?.to_owned();
    let live = connect(args.server.url)?;
    let json = args.server.json;
    let base = format!("/api/tenants/{}/sandboxes", segment(&tenant));
    match args.command {
        SandboxCommand::Run(run) => run_sandbox(&live, &base, run, json),
        SandboxCommand::Ls { state, label } => list(&live, &base, state, label, json),
        SandboxCommand::Get { id } => {
            let answer = live.call("GET", &format!("{base}/{}", segment(&id)), None)?;
            if json {
                println!("{answer}");
            } else {
                println!("{}", serde_json::to_string_pretty(&answer).unwrap_or_default());
            }
            Ok(())
        }
        SandboxCommand::Stop { id, time } => {
            let body = match time {
                Some(secs) => json!({ "gracePeriodMs": secs.saturating_mul(1000) }),
                None => json!({}),
            };
            let answer = live.call_json("POST", &format!("{base}/{}/stop", segment(&id)), &body)?;
            print_id_or_json(&id, &answer, json);
            Ok(())
        }
        SandboxCommand::Rm { id } => {
            live.call("DELETE", &format!("{base}/{}?gracePeriodMs=0", segment(&id)), None)?;
            print_id_or_json(&id, &json!({ "deleted": id }), json);
            Ok(())
        }
        SandboxCommand::Logs { id, follow, tail } => {
            let mut query = vec![];
            if follow {
                query.push("follow=true".to_owned());
            }
            if let Some(n) = tail {
                query.push(format!("tail={n}"));
            }
            let path = format!("{base}/{}/logs?{}", segment(&id), query.join("&"));
            copy_logs(live.stream(&path)?, json)?;
            Ok(())
        }
        SandboxCommand::Exec(exec_args) => exec(&live, &tenant, exec_args, json),
        SandboxCommand::Cp(cp_args) => cp::run(&live, &tenant, cp_args, json),
    }
}

fn print_id_or_json(id: &str, answer: &Value, json: bool) {
    if json {
        println!("{answer}");
    } else {
        println!("{id}");
    }
}

/// `run`: create, then (unless detached) follow the logs to the end, delete with `--rm`, and
/// pass the workload's exit code through.
fn run_sandbox(live: &Live, base: &str, args: RunArgs, json: bool) -> Result<(), Failure> {
    let mut process = Map::new();
    if !args.cmd.is_empty() {
        process.insert("argv".into(), json!(args.cmd));
    }
    if !args.env.is_empty() {
        process.insert("env".into(), json!(args.env));
    }
    if let Some(user) = args.user {
        process.insert("user".into(), user.into());
    }
    if let Some(cwd) = args.workdir {
        process.insert("cwd".into(), cwd.into());
    }
    let mut resources = Map::new();
    if let Some(cpus) = args.cpus {
        resources.insert("cpuCount".into(), cpus.into());
    }
    if let Some(memory) = args.memory {
        resources.insert("memoryLimitBytes".into(), memory.into());
    }
    if let Some(pids) = args.pids_limit {
        resources.insert("pidsLimit".into(), pids.into());
    }
    let mut spec = json!({
        "root": { "kind": "oci_image", "source": { "kind": "reference", "reference": args.image } },
        "process": process,
    });
    if !resources.is_empty() {
        spec["resources"] = resources.into();
    }
    if let Some(name) = args.name {
        spec["owner"] = json!({ "kind": "standalone", "displayName": name });
    }
    let labels: Map<String, Value> = args.label.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let created = live.call_json("POST", base, &json!({ "spec": spec, "labels": labels }))?;
    let id = created["metadata"]["id"].as_str().unwrap_or_default().to_owned();
    if args.detach {
        print_id_or_json(&id, &created, json);
        return Ok(());
    }
    let path = format!("{base}/{}", segment(&id));
    stop_on_interrupt(live, &path, &id, json);
    let outcome = attach(live, &path, json);
    if args.rm {
        let deleted = live.call("DELETE", &format!("{path}?gracePeriodMs=0"), None);
        // The workload's outcome (or the attach failure) wins over a failed delete.
        if outcome.is_ok() {
            deleted?;
        }
    }
    outcome
}

/// While attached, Ctrl-C (or SIGTERM) stops the sandbox at `path` the way `docker run` passes
/// the signal on: the log stream then ends with its exit (and `--rm` removes it); a second one
/// leaves at once (exit 130) with the sandbox still stopping. The signals are blocked in every
/// thread and taken by one, so this runs before any other thread starts.
fn stop_on_interrupt(live: &Live, path: &str, id: &str, json: bool) {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    if pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals), None).is_err() {
        return;
    }
    let (live, path, id) = (live.clone(), path.to_owned(), id.to_owned());
    std::thread::spawn(move || {
        if signals.wait().is_err() {
            return;
        }
        eprintln!("stopping {id} (again to leave it stopping and exit)");
        if let Err(failure) = live.call_json("POST", &format!("{path}/stop"), &json!({})) {
            failure.report(json);
        }
        if signals.wait().is_ok() {
            std::process::exit(130);
        }
    });
}

/// Follows the logs of the sandbox at `path` until it ends; its exit code as the result.
fn attach(live: &Live, path: &str, json: bool) -> Result<(), Failure> {
    let exit = copy_logs(live.stream(&format!("{path}/logs?follow=true"))?, json)?;
    if let Some(code) = exit.as_ref().and_then(|e| e["code"].as_i64()) {
        return exit_with(code);
    }
    // No exit code in the stream: read why from the ended sandbox.
    let ended = live.call("GET", &format!("{path}?waitFor=stopped&timeoutMs=60000"), None)?;
    let status = &ended["status"];
    if let Some(code) = status["exitCode"].as_i64() {
        return exit_with(code);
    }
    let reason = status["terminationReason"].as_str().unwrap_or("unknown");
    let message = status["message"].as_str().unwrap_or("no exit code");
    eprintln!("nimbus: sandbox {} ended without an exit code ({reason}): {message}", ended["metadata"]["id"]);
    Err(Failure::exit_code(match reason {
        "start_failed" if message.contains("not found") => EXIT_NOT_FOUND,
        "start_failed" => EXIT_CANNOT_INVOKE,
        _ => EXIT_RUN_FAILED,
    }))
}

/// A workload's exit code as the command's result.
fn exit_with(code: i64) -> Result<(), Failure> {
    match u8::try_from(code.clamp(0, 255)).unwrap_or(u8::MAX) {
        0 => Ok(()),
        code => Err(Failure::exit_code(code)),
    }
}

/// Copies an NDJSON log stream: `stdout` records to stdout, `stderr` records to stderr (with
/// `--json`, every record as is on stdout). Returns the `exit` record, if one came.
fn copy_logs(reader: impl BufRead, json: bool) -> Result<Option<Value>, Failure> {
    let mut exit = None;
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr());
    for line in reader.lines() {
        let line = line.map_err(|e| Failure::failed(format!("the log stream broke: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if json {
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        } else if let Some(data) = record["data"].as_str() {
            let bytes = if record["encoding"] == "base64" {
                STANDARD.decode(data).unwrap_or_default()
            } else {
                data.as_bytes().to_vec()
            };
            let _ = match record["kind"].as_str() {
                Some("stdout") => stdout.write_all(&bytes).and_then(|()| stdout.flush()),
                Some("stderr") => stderr.write_all(&bytes).and_then(|()| stderr.flush()),
                _ => Ok(()),
            };
        }
        if record["kind"] == "exit" {
            exit = Some(record);
        }
    }
    Ok(exit)
}

/// `ls`: every page, as one `{"items": [...]}` with `--json`.
fn list(
    live: &Live,
    base: &str,
    state: Option<String>,
    label: Option<(String, Option<String>)>,
    json: bool,
) -> Result<(), Failure> {
    let mut query = vec![format!("limit={PAGE}")];
    if let Some(state) = state {
        query.push(format!("status={}", segment(&state)));
    }
    if let Some((key, value)) = label {
        query.push(format!("labelKey={}", segment(&key)));
        if let Some(value) = value {
            query.push(format!("labelValue={}", segment(&value)));
        }
    }
    let mut items = vec![];
    let mut token: Option<String> = None;
    loop {
        let page_token = token.as_ref().map(|t| format!("&pageToken={}", segment(t))).unwrap_or_default();
        let page = live.call("GET", &format!("{base}?{}{page_token}", query.join("&")), None)?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["metadata"]["nextPageToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    if json {
        println!("{}", json!({ "items": items }));
        return Ok(());
    }
    let rows: Vec<[String; 5]> = items
        .iter()
        .map(|item| {
            let labels = item["metadata"]["labels"].as_object().map(|labels| {
                labels.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect::<Vec<_>>()
            });
            [
                item["metadata"]["id"].as_str().unwrap_or_default().to_owned(),
                item["status"]["lifecycleState"].as_str().unwrap_or_default().to_owned(),
                item["status"]["exitCode"].as_i64().map_or("-".to_owned(), |c| c.to_string()),
                item["metadata"]["createdAt"].as_str().unwrap_or_default().to_owned(),
                labels.map_or(String::new(), |l| l.join(",")),
            ]
        })
        .collect();
    let header = ["ID", "STATE", "EXIT", "CREATED", "LABELS"].map(str::to_owned);
    let mut widths = [0; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row.iter().zip(widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(())
}

/// An open session on a sandbox, `/api/sessions/{id}` as `path`.
struct Session {
    path: String,
}

impl Session {
    /// Opens a session on sandbox `id` with one `channel`, runs `work` in it and closes it; the
    /// work's failure wins over a failed close.
    fn with<T>(
        live: &Live,
        tenant: &str,
        id: &str,
        channel: &str,
        work: impl FnOnce(&Session) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        let open = json!({ "tenantId": tenant, "target": { "sandbox": { "id": id } }, "channels": [channel] });
        let opened = live.call_json("POST", "/api/sessions", &open)?;
        let session = Session {
            path: format!("/api/sessions/{}", segment(opened["metadata"]["id"].as_str().unwrap_or_default())),
        };
        let result = work(&session);
        let closed = live.call_json("POST", &format!("{}/close", session.path), &json!({ "reason": "cli done" }));
        let value = result?;
        closed?;
        Ok(value)
    }
}

/// `exec`: open a session with the exec channel, run the command to completion, print its
/// output (as it comes with `-i` or `-t`), close the session, pass its exit code through.
fn exec(live: &Live, tenant: &str, args: ExecArgs, json: bool) -> Result<(), Failure> {
    let mut body = json!({ "argv": args.cmd });
    if !args.env.is_empty() {
        body["env"] = json!(args.env);
    }
    if let Some(user) = args.user {
        body["user"] = user.into();
    }
    if let Some(cwd) = args.workdir {
        body["cwd"] = cwd.into();
    }
    let attach = interactive::Attach { interactive: args.interactive, tty: args.tty };
    if attach.interactive || attach.tty {
        let ended = Session::with(live, tenant, &args.id, "exec", |session| {
            interactive::run(live, session, body, &attach, json)
        })?;
        return exit_of(&ended);
    }
    let answer = Session::with(live, tenant, &args.id, "exec", |session| {
        live.call_json("POST", &format!("{}/exec?wait=true", session.path), &body)
    })?;
    if json {
        println!("{answer}");
    } else {
        let _ = std::io::stdout().write_all(answer["stdout"].as_str().unwrap_or_default().as_bytes());
        let _ = std::io::stdout().flush();
        eprint!("{}", answer["stderr"].as_str().unwrap_or_default());
        if answer["truncated"] == true {
            eprintln!("nimbus: the output was cut at 1 MiB per stream");
        }
    }
    exit_of(&answer)
}

/// A process's end (`{"exitCode", "signal"}`) as the command's result: its exit code, or 128 +
/// the signal's number.
fn exit_of(answer: &Value) -> Result<(), Failure> {
    if let Some(code) = answer["exitCode"].as_i64() {
        return exit_with(code);
    }
    match answer["signal"].as_str().and_then(signal_number) {
        Some(signal) => exit_with(128 + signal),
        None => Err(Failure::with(EXIT_FAILED, NimbusError::internal())),
    }
}

/// The number of a signal named as the server names them (`"SIGTERM"`).
fn signal_number(name: &str) -> Option<i64> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES.iter().position(|n| *n == name).map(|i| i as i64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_take_binary_suffixes() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("64k"), Ok(64 << 10));
        assert!(parse_bytes("12x").is_err());
        assert!(parse_bytes("m").is_err());
        assert!(parse_bytes("-1").is_err());
    }

    #[test]
    fn pairs_and_signals() {
        assert_eq!(parse_pair("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_pair("=b").is_err() && parse_pair("ab").is_err());
        assert_eq!(parse_label_filter("k"), Ok(("k".into(), None)));
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("SIGKILL"), Some(9));
    }
}
