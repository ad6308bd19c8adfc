//! `nimbus sandbox cp`: files and directories to and from a sandbox, through a session's files
//! channel (`…/files`, `…/files/list`, `…/files/stat`, sessions.md "files").
//!
//! Docker's rules for where a copy lands: onto an existing directory, the source keeps its name
//! inside it; anywhere else, the destination is the copy's path. `-` is stdin or stdout for one
//! file's bytes. Directories are walked: sandbox to host through `files/list`, host to sandbox
//! one `PUT` per file (the files API creates parents, so directories without files are not
//! recreated in the sandbox). Symlinks are copied as links out of a sandbox and skipped (with a
//! warning) into one, which the files API cannot create.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clap::Args;
use nimbus_core::limits::SESSION_FILE_MAX_BYTES;
use nimbus_core::{ErrorCode, NimbusError};
use serde_json::{Value, json};

use super::Session;
use crate::client::{Live, segment};
use crate::{EXIT_USAGE, Failure};

/// `nimbus sandbox cp`.
#[derive(Args)]
pub(super) struct CpArgs {
    /// `SANDBOX:PATH`, a local path, or `-` (stdin, one file's bytes).
    source: String,
    /// `SANDBOX:PATH`, a local path, or `-` (stdout, one file's bytes).
    destination: String,
}

/// One side of a copy.
enum Endpoint {
    /// `SANDBOX:PATH`.
    Sandbox { id: String, path: String },
    /// `-`.
    Stdio,
    /// A local path.
    Local(PathBuf),
}

impl Endpoint {
    /// Docker's reading: `NAME:PATH` where NAME has no `/` names a sandbox (write `./a:b` for a
    /// local path with a colon).
    fn parse(raw: &str) -> Endpoint {
        match raw.split_once(':') {
            _ if raw == "-" => Endpoint::Stdio,
            Some((id, path)) if !id.is_empty() && !id.contains('/') => {
                let path = if path.is_empty() { "/".to_owned() } else { path.to_owned() };
                Endpoint::Sandbox { id: id.to_owned(), path }
            }
            _ => Endpoint::Local(PathBuf::from(raw)),
        }
    }
}

/// What a copy moved, printed with `--json`.
#[derive(Default)]
struct Copied {
    files: u64,
    bytes: u64,
}

/// Runs `cp`: exactly one side is a sandbox.
pub(super) fn run(live: &Live, tenant: &str, args: CpArgs, json: bool) -> Result<(), Failure> {
    let (source, destination) = (Endpoint::parse(&args.source), Endpoint::parse(&args.destination));
    let copied = match (source, destination) {
        (Endpoint::Sandbox { id, path }, to @ (Endpoint::Local(_) | Endpoint::Stdio)) => {
            Session::with(live, tenant, &id, "files", |session| download(live, session, &path, &to))?
        }
        (from @ (Endpoint::Local(_) | Endpoint::Stdio), Endpoint::Sandbox { id, path }) => {
            Session::with(live, tenant, &id, "files", |session| upload(live, session, &from, &path))?
        }
        _ => return Err(usage("one of SOURCE and DESTINATION must be SANDBOX:PATH, the other a local path or `-`")),
    };
    if json {
        let summary = json!({ "source": args.source, "destination": args.destination, "files": copied.files, "bytes": copied.bytes });
        println!("{summary}");
    }
    Ok(())
}

fn usage(message: &str) -> Failure {
    Failure::with(EXIT_USAGE, NimbusError::new(ErrorCode::OpInvalidInput, message, None))
}

/// A local file that is not there, or cannot be read or written.
fn local(action: &str, path: &Path, error: std::io::Error) -> Failure {
    let message = format!("cannot {action} {}: {error}", path.display());
    let detail = json!({ "resource": "local_path", "path": path });
    if error.kind() == std::io::ErrorKind::NotFound {
        return Failure::from(NimbusError::new(ErrorCode::OpNotFound, message, Some(detail)));
    }
    Failure::failed(message)
}

/// The last component of a path (`/` for the root).
fn base_name(path: &str) -> &str {
    path.trim_end_matches('/').rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("/")
}

/// A child path inside the sandbox.
fn child(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// The octal `mode` of a files API entry.
fn mode_of(entry: &Value) -> Option<u32> {
    entry["mode"].as_str().and_then(|m| u32::from_str_radix(m, 8).ok())
}

/// Sandbox to host (or stdout).
fn download(live: &Live, session: &Session, path: &str, to: &Endpoint) -> Result<Copied, Failure> {
    let info = live.call("GET", &session.files("/stat", path), None)?;
    let mut copied = Copied::default();
    let Endpoint::Local(local) = to else {
        if info["type"] != "file" {
            return Err(usage("only a file can be copied to stdout"));
        }
        copy_out(live, session, path, &mut std::io::stdout().lock(), &mut copied)?;
        return Ok(copied);
    };
    let target = if local.is_dir() { local.join(base_name(path)) } else { local.clone() };
    fetch(live, session, path, &info, &target, &mut copied)?;
    Ok(copied)
}

/// Copies the sandbox entry `path` (described by `info`) to `target`, recursively.
fn fetch(
    live: &Live,
    session: &Session,
    path: &str,
    info: &Value,
    target: &Path,
    copied: &mut Copied,
) -> Result<(), Failure> {
    match info["type"].as_str() {
        Some("dir") => {
            if !target.is_dir() {
                fs::create_dir(target).map_err(|e| local("create", target, e))?;
            }
            let listed = live.call("GET", &session.files("/list", path), None)?;
            if listed["truncated"] == true {
                return Err(Failure::failed(format!("{path} has too many entries to list; copy its parts")));
            }
            for entry in listed["entries"].as_array().into_iter().flatten() {
                let name = entry["name"].as_str().unwrap_or_default();
                let entry_path = child(path, name);
                // A symlink's target is in its stat, not in the listing.
                let entry = if entry["type"] == "symlink" {
                    live.call("GET", &session.files("/stat", &entry_path), None)?
                } else {
                    entry.clone()
                };
                fetch(live, session, &entry_path, &entry, &target.join(name), copied)?;
            }
        }
        Some("file") => {
            let mut file = fs::File::create(target).map_err(|e| local("create", target, e))?;
            copy_out(live, session, path, &mut file, copied)?;
        }
        Some("symlink") => {
            let link = info["target"].as_str().unwrap_or_default();
            let _ = fs::remove_file(target);
            std::os::unix::fs::symlink(link, target).map_err(|e| local("create", target, e))?;
            return Ok(());
        }
        _ => {
            eprintln!("nimbus: skipped {path}: not a file, directory or symlink");
            return Ok(());
        }
    }
    if let Some(mode) = mode_of(info) {
        fs::set_permissions(target, fs::Permissions::from_mode(mode)).map_err(|e| local("chmod", target, e))?;
    }
    Ok(())
}

/// Streams one sandbox file into `out`, in parts of at most the per-request limit.
fn copy_out(
    live: &Live,
    session: &Session,
    path: &str,
    out: &mut dyn Write,
    copied: &mut Copied,
) -> Result<(), Failure> {
    let part = SESSION_FILE_MAX_BYTES as u64;
    let mut offset = 0;
    loop {
        let query = format!("{}&offset={offset}&length={part}", session.files("", path));
        let mut body = live.stream(&query)?;
        let n = std::io::copy(&mut body, out).map_err(|e| Failure::failed(format!("copying {path}: {e}")))?;
        offset += n;
        if n < part {
            break;
        }
    }
    out.flush().map_err(|e| Failure::failed(format!("copying {path}: {e}")))?;
    copied.files += 1;
    copied.bytes += offset;
    Ok(())
}

/// Host (or stdin) to sandbox.
fn upload(live: &Live, session: &Session, from: &Endpoint, path: &str) -> Result<Copied, Failure> {
    // Onto an existing directory the source keeps its name; a missing path is the copy's own.
    let existing = match live.call("GET", &session.files("/stat", path), None) {
        Ok(info) => Some(info),
        Err(failure) if failure.error.as_ref().is_some_and(|e| e.code == ErrorCode::OpNotFound) => None,
        Err(failure) => return Err(failure),
    };
    let into_dir = existing.is_some_and(|info| info["type"] == "dir");
    let mut copied = Copied::default();
    let Endpoint::Local(local_path) = from else {
        if into_dir {
            return Err(usage("stdin is one file's bytes: name the file, not a directory"));
        }
        put(live, session, path, &mut std::io::stdin().lock(), None, &mut copied)?;
        return Ok(copied);
    };
    let name = local_path.file_name().map(|n| n.to_string_lossy().into_owned());
    let target = match (into_dir, name) {
        (true, Some(name)) => child(path, &name),
        _ => path.to_owned(),
    };
    send(live, session, local_path, &target, &mut copied)?;
    Ok(copied)
}

/// Copies the local entry `source` to the sandbox path `target`, recursively.
fn send(live: &Live, session: &Session, source: &Path, target: &str, copied: &mut Copied) -> Result<(), Failure> {
    let metadata = fs::symlink_metadata(source).map_err(|e| local("read", source, e))?;
    let mode = metadata.permissions().mode() & 0o7777;
    if metadata.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(source)
            .map_err(|e| local("read", source, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| local("read", source, e))?;
        entries.sort_by_key(fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            send(live, session, &entry.path(), &child(target, &name), copied)?;
        }
    } else if metadata.is_file() {
        let mut file = fs::File::open(source).map_err(|e| local("read", source, e))?;
        put(live, session, target, &mut file, Some(mode), copied)?;
    } else {
        eprintln!("nimbus: skipped {}: only files and directories can be copied into a sandbox", source.display());
    }
    Ok(())
}

/// One `PUT …/files`: `reader`'s bytes become the file at `path` (at most the per-request limit).
fn put(
    live: &Live,
    session: &Session,
    path: &str,
    reader: &mut dyn Read,
    mode: Option<u32>,
    copied: &mut Copied,
) -> Result<(), Failure> {
    let mut query = session.files("", path);
    if let Some(mode) = mode {
        query.push_str(&format!("&mode={mode:04o}"));
    }
    let written = live.call("PUT", &query, Some(("application/octet-stream", reader)))?;
    copied.files += 1;
    copied.bytes += written["size"].as_u64().unwrap_or(0);
    Ok(())
}

impl Session {
    /// `…/files{route}?path=PATH` of this session.
    fn files(&self, route: &str, path: &str) -> String {
        format!("{}/files{route}?path={}", self.path, segment(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_read_as_docker_reads_them() {
        assert!(matches!(Endpoint::parse("-"), Endpoint::Stdio));
        assert!(
            matches!(Endpoint::parse("box:/tmp/a"), Endpoint::Sandbox { id, path } if id == "box" && path == "/tmp/a")
        );
        assert!(matches!(Endpoint::parse("box:"), Endpoint::Sandbox { path, .. } if path == "/"));
        assert!(matches!(Endpoint::parse("./a:b"), Endpoint::Local(_)));
        assert!(matches!(Endpoint::parse("/abs/path"), Endpoint::Local(_)));
        assert_eq!((base_name("/tmp/dir/"), base_name("/"), base_name("a")), ("dir", "/", "a"));
        assert_eq!(child("/", "x"), "/x");
    }
}
