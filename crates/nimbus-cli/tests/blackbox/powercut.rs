//! Durability past the page cache: every acknowledged (2xx) write survives a power cut that
//! drops every write not yet fsync'd (data "Durability").
//!
//! `kill -9` alone cannot show it: the page cache outlives the process, so an acknowledgement
//! sent before the fsync would go unnoticed. Here the server runs with `powercut.c` preloaded,
//! which logs the bytes each write to a file under the data directory replaces and a mark after
//! each fsync; after the kill, [`cut_power`] undoes, file by file, every write its file's last
//! fsync does not cover: what a disk losing its volatile cache at that instant can leave.
//! Directory entries and other metadata are not modelled (docs/data.md says what that leaves out).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::crash::{self, TABLE, Writers};
use crate::harness::{Dirs, wait_for};

const TENANT: &str = "powercut";
/// Even rounds kill the server once this many inserts are acknowledged, wherever it is.
const ACKS_BEFORE_KILL: usize = 40;
/// Odd rounds freeze the tenant's writer before an fsync of its WAL: the first
/// `STALL_AFTER_SYNCS + 4 × round` fsyncs with writes to sync go through (the WAL header's and
/// whole commits), the next one never runs, so that commit's frames are written, unsynced and
/// unacknowledged when the power goes.
const STALL_AFTER_SYNCS: u64 = 3;
const ROUNDS: u64 = 6;

/// `powercut.c`, compiled by the host's C compiler for this test.
struct Shim {
    _dir: TempDir,
    lib: PathBuf,
}

impl Shim {
    fn build() -> Shim {
        let dir = tempfile::Builder::new().prefix("nimbus-powercut-").tempdir().expect("create temp dir");
        let lib = dir.path().join("powercut.so");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/blackbox/powercut.c");
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&lib)
            .arg(&source)
            .arg("-ldl")
            .output()
            .expect("run cc (the host's C compiler builds the power-cut shim)");
        assert!(out.status.success(), "cc: {}", String::from_utf8_lossy(&out.stderr));
        Shim { _dir: dir, lib }
    }

    /// The environment that preloads the shim, tracking the files under `tracked` (a canonical
    /// path: the shim compares it with `/proc/self/fd` links) and logging to `log` (outside it).
    fn env(&self, tracked: &Path, log: &Path) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".to_owned(), path_str(&self.lib)),
            ("NIMBUS_POWERCUT_DIR".to_owned(), path_str(tracked)),
            ("NIMBUS_POWERCUT_LOG".to_owned(), path_str(log)),
        ]
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().unwrap_or_else(|| panic!("non-UTF-8 path {path:?}")).to_owned()
}

// ---------------------------------------------------------------------------------------------
// The cut
// ---------------------------------------------------------------------------------------------

/// `struct record` of `powercut.c`: ten native-endian u64 fields.
const HEADER_BYTES: usize = 80;
const MAGIC: u64 = u64::from_ne_bytes(*b"PCUTREC1");
const KIND_UNDO: u64 = 1;
const KIND_SYNC: u64 = 2;
const KIND_SYNC_FS: u64 = 3;

/// A file's identity: device and inode (what an fsync makes durable, whatever its path).
type FileId = (u64, u64);

/// A write (or truncate) that a cut may undo.
struct Undo {
    /// Byte position of the record in the log.
    at: u64,
    file: FileId,
    offset: u64,
    /// Bytes the write wrote: what undoing it drops.
    len: u64,
    old_size: u64,
    /// Where its old bytes lie in the log.
    old: Range<usize>,
}

/// What one cut undid in one file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Undone {
    records: usize,
    bytes: u64,
}

/// What [`cut_power`] undid.
#[derive(Debug, Default)]
struct Cut {
    files: BTreeMap<PathBuf, Undone>,
    /// Undo records of files no longer in the directory (removed since): nothing to undo, as
    /// directory entries are not modelled.
    gone: usize,
}

impl Cut {
    fn of(&self, path: &Path) -> Undone {
        self.files.get(path).copied().unwrap_or_default()
    }

    /// One line: each file (relative to `base`) with its undone records and bytes.
    fn summary(&self, base: &Path) -> String {
        let files: Vec<String> = self
            .files
            .iter()
            .map(|(path, u)| {
                format!("{}: {} records/{} B", path.strip_prefix(base).unwrap_or(path).display(), u.records, u.bytes)
            })
            .collect();
        format!("{} (records of removed files: {})", files.join(", "), self.gone)
    }
}

/// "Cuts the power" after the process writing `log` was killed: undoes, newest first, every
/// logged write that no later sync of its file (or file system) covers: its old bytes go back
/// and the file gets its old size. A record cut short by the kill is ignored: its write never ran.
/// Directory entries stay as the kill left them: a file is found under `tracked` by its identity,
/// so one renamed since its writes (a temporary file renamed into place) loses them too.
fn cut_power(log: &Path, tracked: &Path) -> Cut {
    let bytes = std::fs::read(log).expect("read the power-cut log");
    let field = |at: usize, i: usize| u64::from_ne_bytes(bytes[at + 8 * i..at + 8 * i + 8].try_into().unwrap());
    let mut undos: Vec<Undo> = Vec::new();
    let mut synced: HashMap<FileId, u64> = HashMap::new();
    // Per device; device 0: every file (`sync`).
    let mut fs_synced: HashMap<u64, u64> = HashMap::new();
    let mut at = 0;
    while at + HEADER_BYTES <= bytes.len() {
        assert_eq!(field(at, 0), MAGIC, "power-cut log corrupt at byte {at}");
        let [kind, dev, ino, offset, len, old_size, old_len, covers, path_len] =
            std::array::from_fn(|i| field(at, i + 1));
        let path_at = at + HEADER_BYTES;
        let old_at = path_at + path_len as usize;
        let end = old_at + old_len as usize;
        if end > bytes.len() {
            break;
        }
        match kind {
            KIND_UNDO => undos.push(Undo { at: at as u64, file: (dev, ino), offset, len, old_size, old: old_at..end }),
            KIND_SYNC => {
                let mark = synced.entry((dev, ino)).or_default();
                *mark = (*mark).max(covers);
            }
            KIND_SYNC_FS => {
                let mark = fs_synced.entry(dev).or_default();
                *mark = (*mark).max(covers);
            }
            other => panic!("power-cut log: unknown record kind {other} at byte {at}"),
        }
        at = end;
    }

    let mut current = HashMap::new();
    files_under(tracked, &mut current);
    let mut open: HashMap<FileId, Option<(File, PathBuf)>> = HashMap::new();
    let mut cut = Cut::default();
    for undo in undos.iter().rev() {
        let durable = [synced.get(&undo.file), fs_synced.get(&undo.file.0), fs_synced.get(&0)]
            .into_iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(0);
        if undo.at < durable {
            continue;
        }
        let file = open.entry(undo.file).or_insert_with(|| {
            let path = current.get(&undo.file)?;
            let file = OpenOptions::new().write(true).open(path).unwrap_or_else(|e| panic!("open {path:?}: {e}"));
            Some((file, path.clone()))
        });
        let Some((file, path)) = file else {
            cut.gone += 1;
            continue;
        };
        file.write_all_at(&bytes[undo.old.clone()], undo.offset)
            .unwrap_or_else(|e| panic!("restore old bytes of {path:?}: {e}"));
        file.set_len(undo.old_size).unwrap_or_else(|e| panic!("restore the size of {path:?}: {e}"));
        let undone = cut.files.entry(path.clone()).or_default();
        undone.records += 1;
        undone.bytes += undo.len;
    }
    cut
}

/// Every regular file under `dir` (symbolic links not followed), by identity.
fn files_under(dir: &Path, found: &mut HashMap<FileId, PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {dir:?}: {e}")) {
        let entry = entry.unwrap_or_else(|e| panic!("list {dir:?}: {e}"));
        let meta = entry.metadata().unwrap_or_else(|e| panic!("stat {:?}: {e}", entry.path()));
        if meta.is_dir() {
            files_under(&entry.path(), found);
        } else if meta.is_file() {
            found.insert((meta.dev(), meta.ino()), entry.path());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// The control: `dd` under the shim, then a cut. What `dd` synced stays, byte for byte; every
/// write after a file's last sync goes (an overwrite gets its old bytes back, an extension and a
/// new file's content their old size), also in a file renamed since; a file outside the tracked
/// directory is left alone.
#[test]
fn a_power_cut_drops_exactly_the_writes_no_sync_covers() {
    let shim = Shim::build();
    let work = tempfile::Builder::new().prefix("nimbus-powercut-").tempdir().expect("create temp dir");
    let root = work.path().canonicalize().expect("canonical temp dir");
    let disk = root.join("disk");
    std::fs::create_dir(&disk).expect("create the tracked dir");
    let log = root.join("powercut.log");
    let dd = |of: &Path, args: &[&str]| {
        let out = Command::new("dd")
            .arg(format!("of={}", of.display()))
            .args(["bs=4096", "status=none"])
            .args(args)
            .envs(shim.env(&disk, &log))
            .output()
            .expect("run dd");
        assert!(out.status.success(), "dd {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let unsynced = disk.join("unsynced");
    let fsynced = disk.join("fsynced");
    let fdatasynced = disk.join("fdatasynced");
    let outside = root.join("outside");
    let staged = disk.join("staged");
    let renamed = disk.join("renamed");
    dd(&unsynced, &["if=/dev/zero", "count=4"]);
    dd(&fsynced, &["if=/dev/zero", "count=4", "conv=fsync"]);
    dd(&fdatasynced, &["if=/dev/zero", "count=4", "conv=fdatasync"]);
    dd(&outside, &["if=/dev/zero", "count=4"]);
    // Written, never synced, renamed into place: the rename stays, the content goes.
    dd(&staged, &["if=/dev/zero", "count=1"]);
    std::fs::rename(&staged, &renamed).expect("rename");
    // After the syncs: overwrite two blocks and append one, unsynced.
    for synced in [&fsynced, &fdatasynced] {
        dd(synced, &["if=/dev/urandom", "seek=1", "count=2", "conv=notrunc"]);
        dd(synced, &["if=/dev/urandom", "seek=4", "count=1", "conv=notrunc"]);
        let before = std::fs::read(synced).expect("read");
        assert_eq!(before.len(), 5 * 4096, "the page cache has every write before the cut");
        assert_ne!(before[4096..12288], [0u8; 8192], "the overwrite is there before the cut");
    }

    let cut = cut_power(&log, &disk);

    assert_eq!(std::fs::metadata(&unsynced).expect("stat").len(), 0, "a never-synced file loses its content");
    assert_eq!(cut.of(&unsynced).bytes, 4 * 4096, "{cut:?}");
    for synced in [&fsynced, &fdatasynced] {
        assert_eq!(std::fs::read(synced).expect("read"), vec![0u8; 4 * 4096], "{synced:?}: exactly its synced bytes");
        assert_eq!(cut.of(synced), Undone { records: 3, bytes: 3 * 4096 }, "{synced:?}: {cut:?}");
    }
    assert_eq!(std::fs::metadata(&renamed).expect("stat").len(), 0, "a renamed file loses its unsynced writes");
    assert_eq!(cut.of(&renamed).bytes, 4096, "{cut:?}");
    assert_eq!(std::fs::metadata(&outside).expect("stat").len(), 4 * 4096, "untracked files are left alone");
    assert_eq!(cut.files.len(), 4, "{cut:?}");
    assert_eq!(cut.gone, 0, "{cut:?}");
}

/// Rounds of concurrent inserts under the shim, `kill -9`, a power cut, and a restart without the
/// shim: every insert acknowledged in any round is there with exactly its fields, a query finds
/// the round's documents, and a new insert works.
#[test]
fn acknowledged_writes_survive_a_power_cut() {
    let shim = Shim::build();
    let dirs = Dirs::new();
    // Canonical: the shim compares the data dir with `/proc/self/fd` links.
    let root = dirs.root().canonicalize().expect("canonical root");
    let data = root.join("data");
    let log = root.join("powercut.log");
    let stall_mark = root.join("powercut.stalled");
    let wal = data.join("tenants").join(format!("{TENANT}.sqlite3-wal"));
    let mut acknowledged: HashMap<String, Value> = HashMap::new();

    for round in 0..ROUNDS {
        let stall = round % 2 == 1;
        let mut env = shim.env(&data, &log);
        if stall {
            env.extend([
                ("NIMBUS_POWERCUT_STALL_PATH".to_owned(), path_str(&wal)),
                ("NIMBUS_POWERCUT_STALL_AFTER".to_owned(), (STALL_AFTER_SYNCS + 4 * round).to_string()),
                ("NIMBUS_POWERCUT_STALL_MARK".to_owned(), path_str(&stall_mark)),
            ]);
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let server = dirs.start_with_env(&env);
        if round == 0 {
            // Under the shim too: the tenant is an acknowledged write like any other.
            server.create_tenant(TENANT);
        }
        let writers = Writers::start(server, TENANT, round);
        if stall {
            wait_for("the shim to freeze the writer before a WAL fsync", || {
                (stall_mark.exists() || writers.stopped()).then_some(())
            });
        } else {
            writers.wait_for_acks(ACKS_BEFORE_KILL);
        }
        let round_acks = writers.kill9();
        let cut = cut_power(&log, &data);
        std::fs::remove_file(&log).expect("remove the power-cut log");
        eprintln!("round {round} ({} acks): cut {}", round_acks.len(), cut.summary(&data));
        if stall {
            std::fs::remove_file(&stall_mark).expect("remove the stall mark");
            // The frozen commit had written its frames: the cut must have dropped them.
            assert!(cut.of(&wal).records > 0, "round {round}: nothing unsynced in the WAL to drop: {cut:?}");
        } else {
            assert!(round_acks.len() >= ACKS_BEFORE_KILL, "round {round}: only {} acks", round_acks.len());
        }
        let round_ids: HashSet<String> = round_acks.iter().map(|(id, _)| id.clone()).collect();
        for (id, fields) in round_acks {
            assert!(acknowledged.insert(id.clone(), fields).is_none(), "id {id} acknowledged twice");
        }

        // Back on the same disk, without the shim: every acknowledged write is there, and the
        // server answers normally.
        let mut server = dirs.start();
        crash::verify(&server, TENANT, &acknowledged, &format!("round {round}, after kill -9 and a power cut"));
        let filter = json!({ "table": TABLE, "filters": [{ "field": "round", "op": "eq", "value": round }] });
        let found: HashSet<String> = server
            .query(TENANT, &filter)
            .iter()
            .map(|doc| {
                assert_eq!(doc["round"], round, "round {round}: the query answered another round's document: {doc}");
                doc["_id"].as_str().expect("_id").to_owned()
            })
            .collect();
        assert!(found.is_superset(&round_ids), "round {round}: the query misses acknowledged documents");
        let fields = json!({ "round": round, "after": "power cut" });
        let id = server.insert(TENANT, TABLE, &fields);
        assert_eq!(server.document(TENANT, TABLE, &id)["after"], "power cut");
        acknowledged.insert(id, fields);
        // The image store's index, rewritten at every start, survives the cut whole.
        server.get("/api/images").expect_status(200);
        assert!(server.stop().success(), "graceful stop after round {round}; stderr:\n{}", server.stderr());
    }
}
