//! Unpacking tar streams: image layers onto a root (OCI whiteouts, every path confined to the
//! root) and imported archives into staging. Every stream is bounded while it is read: its
//! expanded bytes (the uncompressed stream plus the holes of sparse files), its entries, and the
//! metadata the tar reader holds in memory before each entry ([`UnpackLimits`]).

use std::cell::Cell;
use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use nimbus_core::limits::{
    MAX_IMAGE_ARCHIVE_BYTES, MAX_IMAGE_EXPANDED_BYTES, MAX_IMAGE_LAYER_ENTRIES, MAX_IMAGE_LAYER_EXPANDED_BYTES,
    MAX_IMAGE_TAR_HEADER_BYTES,
};

use super::ImageError;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// The bounds of unpacking (`nimbus_core::limits` by default; tests pass small ones). Each names
/// the `cap` of the 400 `op.cap_exceeded` it fails with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Expanded bytes of one layer (`image_layer_bytes`).
    pub layer_bytes: u64,
    /// Entries of one layer (`image_layer_entries`) or one archive (`image_archive_entries`).
    pub entries: u64,
    /// Expanded bytes of all the layers of one image (`image_bytes`).
    pub image_bytes: u64,
    /// Tar metadata read before one entry (`image_tar_header_bytes`).
    pub header_bytes: u64,
    /// Expanded bytes of an imported archive (`image_archive_bytes`).
    pub archive_bytes: u64,
}

#[cfg(test)]
impl UnpackLimits {
    /// Limits with no bound but those a test sets (1 MiB of metadata per entry).
    pub(crate) fn unbounded() -> Self {
        Self {
            layer_bytes: u64::MAX,
            entries: u64::MAX,
            image_bytes: u64::MAX,
            header_bytes: 1024 * 1024,
            archive_bytes: u64::MAX,
        }
    }
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self {
            layer_bytes: MAX_IMAGE_LAYER_EXPANDED_BYTES,
            entries: MAX_IMAGE_LAYER_ENTRIES,
            image_bytes: MAX_IMAGE_EXPANDED_BYTES,
            header_bytes: MAX_IMAGE_TAR_HEADER_BYTES,
            archive_bytes: MAX_IMAGE_ARCHIVE_BYTES,
        }
    }
}

fn too_large(cap: &'static str, observed: u64, limit: u64) -> ImageError {
    ImageError::TooLarge { cap, observed, limit }
}

/// Which bound the reader of a tar stream stops at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Stop {
    /// The stream's expanded-bytes allowance.
    #[default]
    Bytes,
    /// The metadata window before an entry.
    Header,
}

/// The position of an uncompressed tar stream and where reading it must stop, shared by the
/// reader the tar parser owns and the loop that drives the parser.
#[derive(Debug, Default)]
struct Meter {
    /// Bytes of the stream read so far.
    read: Cell<u64>,
    /// Reading past this many bytes fails.
    stop: Cell<u64>,
    /// What `stop` is.
    kind: Cell<Stop>,
    /// Where the current metadata window began.
    window: Cell<u64>,
    /// Set once a read went past `stop`.
    tripped: Cell<bool>,
}

impl Meter {
    fn arm(&self, stop: u64, kind: Stop) {
        self.stop.set(stop);
        self.kind.set(kind);
        self.window.set(self.read.get());
    }
}

/// A reader that counts what it reads and fails past the meter's stop, so a decompression bomb
/// stops after at most one byte over its allowance.
struct Metered<R> {
    inner: R,
    meter: Rc<Meter>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let meter = &self.meter;
        let read = meter.read.get();
        // One byte past the stop tells a stream that goes on from one that ends exactly there.
        let room = meter.stop.get().saturating_sub(read).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        let read = read + n as u64;
        meter.read.set(read);
        if read > meter.stop.get() {
            meter.tripped.set(true);
            return Err(io::Error::other("the tar stream is larger than its limit"));
        }
        Ok(n)
    }
}

/// What one tar stream may cost and how each overrun is reported.
struct Bounds<'a> {
    /// Expanded bytes (stream plus sparse holes).
    bytes: u64,
    /// Entries.
    entries: u64,
    /// Metadata before one entry.
    header_bytes: u64,
    /// `cap` of too many entries.
    entries_cap: &'static str,
    /// The error for `observed` expanded bytes over `bytes`.
    over_bytes: &'a dyn Fn(u64) -> ImageError,
    /// The error for a stream that is not a tar.
    not_tar: &'a dyn Fn(io::Error) -> ImageError,
}

type Archive<R> = tar::Archive<Metered<R>>;

/// Reads a tar stream entry by entry within `bounds`, handing each entry to `visit`; returns
/// the stream's expanded bytes. Every entry is counted and its full size (a sparse file's whole
/// length) checked before `visit` sees it, so an entry that would go over writes nothing; what
/// `visit` leaves unread is read before the next entry, so each metadata window holds metadata
/// only.
fn walk<R: Read>(
    stream: R,
    bounds: &Bounds<'_>,
    setup: impl FnOnce(&mut Archive<R>),
    mut visit: impl FnMut(&mut tar::Entry<'_, Metered<R>>) -> Result<(), ImageError>,
) -> Result<u64, ImageError> {
    let meter = Rc::new(Meter::default());
    let mut archive = tar::Archive::new(Metered { inner: stream, meter: Rc::clone(&meter) });
    setup(&mut archive);
    // Zeros of sparse files that the stream does not hold but the file system gets.
    let mut holes = 0u64;
    let mut count = 0u64;
    // A failure caused by the meter is the bound it stopped at, whatever error it surfaced as.
    let stopped = |holes: u64, other: ImageError| match (meter.tripped.get(), meter.kind.get()) {
        (false, _) => other,
        (true, Stop::Bytes) => (bounds.over_bytes)(meter.read.get().saturating_add(holes)),
        (true, Stop::Header) => {
            too_large("image_tar_header_bytes", meter.read.get() - meter.window.get(), bounds.header_bytes)
        }
    };
    let mut entries = archive.entries().map_err(bounds.not_tar)?;
    loop {
        let allowance = bounds.bytes.saturating_sub(holes);
        let window = meter.read.get().saturating_add(bounds.header_bytes);
        if window < allowance {
            meter.arm(window, Stop::Header);
        } else {
            meter.arm(allowance, Stop::Bytes);
        }
        let Some(entry) = entries.next() else { break };
        let mut entry = entry.map_err(|e| stopped(holes, (bounds.not_tar)(e)))?;
        count += 1;
        if count > bounds.entries {
            return Err(too_large(bounds.entries_cap, count, bounds.entries));
        }
        let expanded = meter.read.get().saturating_add(holes).saturating_add(entry.size());
        if expanded > bounds.bytes {
            return Err((bounds.over_bytes)(expanded));
        }
        meter.arm(allowance, Stop::Bytes);
        let start = meter.read.get();
        visit(&mut entry).map_err(|e| stopped(holes, e))?;
        io::copy(&mut entry, &mut io::sink()).map_err(|e| stopped(holes, (bounds.not_tar)(e)))?;
        holes += entry.size().saturating_sub(meter.read.get() - start);
    }
    Ok(meter.read.get().saturating_add(holes))
}

/// A layer entry's path as a clean relative path, or an error when it tries to leave the root.
fn relative_path(raw: &Path) -> Result<PathBuf, ImageError> {
    let mut clean = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(ImageError::invalid(format!("layer entry '{}' leaves the root", raw.display())));
            }
        }
    }
    Ok(clean)
}

/// Whether `relative` can be reached from `root` without following a symbolic link: whiteouts
/// must never delete through a link that points elsewhere.
fn reachable_without_links(root: &Path, relative: &Path) -> bool {
    let mut current = root.to_path_buf();
    for part in relative.iter() {
        current.push(part);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => return false,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
    true
}

fn remove_path(path: &Path) -> Result<(), ImageError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path).map_err(ImageError::io("applying a whiteout")),
        Ok(_) => fs::remove_file(path).map_err(ImageError::io("applying a whiteout")),
        Err(_) => Ok(()),
    }
}

/// The expanded bytes the layers of one image have taken so far, against its limits.
pub(crate) struct ImageBudget {
    limits: UnpackLimits,
    used: u64,
}

impl ImageBudget {
    pub(crate) fn new(limits: UnpackLimits) -> Self {
        Self { limits, used: 0 }
    }
}

/// Applies one layer (an uncompressed tar stream) on top of `root`, within what `budget` has left.
pub(crate) fn apply_layer(root: &Path, layer: impl Read, budget: &mut ImageBudget) -> Result<(), ImageError> {
    let (limits, used) = (budget.limits, budget.used);
    let remaining = limits.image_bytes.saturating_sub(used);
    // The tighter bound is the one reported: this layer's own, or what the image has left.
    let over_bytes = |observed: u64| {
        if limits.layer_bytes <= remaining {
            too_large("image_layer_bytes", observed, limits.layer_bytes)
        } else {
            too_large("image_bytes", used.saturating_add(observed), limits.image_bytes)
        }
    };
    let not_tar = |e: io::Error| ImageError::invalid(format!("layer is not a valid tar: {e}"));
    let bounds = Bounds {
        bytes: limits.layer_bytes.min(remaining),
        entries: limits.entries,
        header_bytes: limits.header_bytes,
        entries_cap: "image_layer_entries",
        over_bytes: &over_bytes,
        not_tar: &not_tar,
    };
    let setup = |archive: &mut Archive<_>| {
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.set_preserve_mtime(true);
        archive.set_unpack_xattrs(false);
        archive.set_overwrite(true);
    };
    // Paths this layer wrote: an opaque whiteout hides lower layers only, not its own layer.
    let mut written: HashSet<PathBuf> = HashSet::new();
    let expanded = walk(layer, &bounds, setup, |entry| apply_entry(root, entry, &mut written, &not_tar))?;
    budget.used = used.saturating_add(expanded);
    Ok(())
}

/// Applies one entry of a layer: a whiteout, a skipped special file, or a file system object.
fn apply_entry<R: Read>(
    root: &Path,
    entry: &mut tar::Entry<'_, R>,
    written: &mut HashSet<PathBuf>,
    not_tar: &dyn Fn(io::Error) -> ImageError,
) -> Result<(), ImageError> {
    let relative = relative_path(&entry.path().map_err(not_tar)?)?;
    let Some(name) = relative.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { return Ok(()) };
    let parent = relative.parent().map(Path::to_path_buf).unwrap_or_default();
    if name == OPAQUE_WHITEOUT || name.starts_with(WHITEOUT_PREFIX) {
        if !reachable_without_links(root, &parent) {
            return Err(ImageError::invalid(format!("whiteout '{}' goes through a symbolic link", relative.display())));
        }
        if name == OPAQUE_WHITEOUT {
            if let Ok(children) = fs::read_dir(root.join(&parent)) {
                for child in children.flatten() {
                    let child_relative = parent.join(child.file_name());
                    if !written.contains(&child_relative) {
                        remove_path(&child.path())?;
                    }
                }
            }
        } else {
            remove_path(&root.join(&parent).join(&name[WHITEOUT_PREFIX.len()..]))?;
        }
        return Ok(());
    }
    let kind = entry.header().entry_type();
    if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
        // Device nodes and FIFOs are never taken from images; the runtime provides /dev.
        tracing::debug!(path = %relative.display(), "skipping a special file in an image layer");
        return Ok(());
    }
    // `unpack_in` refuses entries (and link targets) that would land outside `root`.
    if !entry
        .unpack_in(root)
        .map_err(|e| ImageError::invalid(format!("cannot unpack '{}': {e}", relative.display())))?
    {
        return Err(ImageError::invalid(format!("layer entry '{}' leaves the root", relative.display())));
    }
    written.insert(relative);
    Ok(())
}

/// Unpacks an imported archive (an uncompressed tar stream) into `staging`, within the archive
/// bounds of `limits`. Device nodes and FIFOs are skipped (a FIFO named like a blob would block
/// the import that opens it); entries that would leave `staging` are skipped, as tar does.
pub(crate) fn extract_archive(staging: &Path, archive: impl Read, limits: &UnpackLimits) -> Result<(), ImageError> {
    let over_bytes = |observed: u64| too_large("image_archive_bytes", observed, limits.archive_bytes);
    let not_tar = |e: io::Error| ImageError::invalid(format!("not a readable tar archive: {e}"));
    let bounds = Bounds {
        bytes: limits.archive_bytes,
        entries: limits.entries,
        header_bytes: limits.header_bytes,
        entries_cap: "image_archive_entries",
        over_bytes: &over_bytes,
        not_tar: &not_tar,
    };
    let setup = |archive: &mut Archive<_>| archive.set_preserve_permissions(false);
    walk(archive, &bounds, setup, |entry| {
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            return Ok(());
        }
        let unpacked = entry.unpack_in(staging).map_err(not_tar)?;
        if unpacked && kind.is_dir() {
            // Staging is only read by the import: a read-only directory must not keep later
            // entries out of it (tar defers directories for the same reason).
            let path = staging.join(relative_path(&entry.path().map_err(not_tar)?)?);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                    .map_err(ImageError::io("staging an import"))?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const MIB: u64 = 1024 * 1024;

    /// A header with the numeric fields real archives carry.
    fn header() -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header
    }

    /// Builds a tar from `(path, content)` pairs; `None` content makes a directory.
    fn layer(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content) in entries {
            let mut header = header();
            match content {
                Some(text) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(text.len() as u64);
                    header.set_mode(0o644);
                    builder.append_data(&mut header, path, text.as_bytes()).expect("append file");
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    header.set_mode(0o755);
                    builder.append_data(&mut header, path, &[][..]).expect("append dir");
                }
            }
        }
        builder.into_inner().expect("finish tar")
    }

    fn apply(root: &Path, layer: impl Read) -> Result<(), ImageError> {
        apply_layer(root, layer, &mut ImageBudget::new(UnpackLimits::default()))
    }

    fn apply_within(root: &Path, layer: impl Read, limits: UnpackLimits) -> Result<(), ImageError> {
        apply_layer(root, layer, &mut ImageBudget::new(limits))
    }

    /// `(cap, observed, limit)` of a limit error.
    fn refusal(result: Result<(), ImageError>) -> (&'static str, u64, u64) {
        match result {
            Err(ImageError::TooLarge { cap, observed, limit }) => (cap, observed, limit),
            other => panic!("expected a limit error, got {other:?}"),
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).expect("gzip");
        encoder.finish().expect("gzip")
    }

    fn gunzip(bytes: &[u8]) -> flate2::read::GzDecoder<&[u8]> {
        flate2::read::GzDecoder::new(bytes)
    }

    /// A layer holding one file of `size` zeros.
    fn zeros(path: &str, size: u64) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut file = header();
        file.set_entry_type(tar::EntryType::Regular);
        file.set_size(size);
        file.set_mode(0o644);
        builder.append_data(&mut file, path, io::repeat(0).take(size)).expect("append zeros");
        builder.into_inner().expect("finish tar")
    }

    /// A layer holding a GNU sparse file `length` bytes long that stores none of them.
    fn sparse(path: &str, length: u64) -> Vec<u8> {
        let mut file = header();
        file.set_entry_type(tar::EntryType::GNUSparse);
        file.set_path(path).expect("path");
        file.set_size(0);
        file.set_mode(0o644);
        let gnu = file.as_gnu_mut().expect("a GNU header");
        gnu.set_real_size(length);
        gnu.sparse[0].set_offset(length);
        gnu.sparse[0].set_length(0);
        file.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&file, &[][..]).expect("append sparse");
        builder.into_inner().expect("finish tar")
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_layer_limit_before_writing() {
        let bomb = gzip(&zeros("bomb", 16 * MIB));
        assert!(bomb.len() < 64 * 1024, "a small blob: {} bytes", bomb.len());
        let limits = UnpackLimits { layer_bytes: MIB, ..UnpackLimits::unbounded() };
        let root = tempfile::tempdir().expect("tempdir");
        let (cap, observed, limit) = refusal(apply_within(root.path(), gunzip(&bomb), limits));
        assert_eq!((cap, limit), ("image_layer_bytes", MIB));
        assert_eq!(observed, 512 + 16 * MIB, "its header's size counts before any data is read");
        assert!(!root.path().join("bomb").exists(), "nothing was written");

        // The bound, not anything else, stopped it: unbounded, the same layer unpacks.
        apply_within(root.path(), gunzip(&bomb), UnpackLimits::unbounded()).expect("unbounded");
        assert_eq!(fs::metadata(root.path().join("bomb")).expect("bomb").len(), 16 * MIB);
    }

    #[test]
    fn whiteouts_remove_lower_layers_only() {
        let root = tempfile::tempdir().expect("tempdir");
        apply(
            root.path(),
            &layer(&[("etc/", None), ("etc/a", Some("1")), ("etc/b", Some("2")), ("opt/", None), ("opt/x", Some("x"))])
                [..],
        )
        .expect("layer 1");
        apply(
            root.path(),
            &layer(&[("etc/.wh.a", Some("")), ("opt/new", Some("n")), ("opt/.wh..wh..opq", Some(""))])[..],
        )
        .expect("layer 2");
        assert!(!root.path().join("etc/a").exists(), "whiteout removed etc/a");
        assert_eq!(fs::read_to_string(root.path().join("etc/b")).expect("etc/b"), "2");
        assert!(!root.path().join("opt/x").exists(), "opaque whiteout hid the lower opt/x");
        assert_eq!(fs::read_to_string(root.path().join("opt/new")).expect("opt/new"), "n", "same-layer entry kept");
        assert!(!root.path().join("etc/.wh.a").exists() && !root.path().join("opt/.wh..wh..opq").exists());
    }

    #[test]
    fn entries_cannot_leave_the_root() {
        let outside = tempfile::tempdir().expect("tempdir");
        let root = tempfile::tempdir().expect("tempdir");
        // A symlink to a host directory, then a file written "through" it.
        let mut builder = tar::Builder::new(Vec::new());
        let mut link = header();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder.append_link(&mut link, "escape", outside.path()).expect("append link");
        let mut file = header();
        file.set_entry_type(tar::EntryType::Regular);
        file.set_size(3);
        builder.append_data(&mut file, "escape/pwned", &b"bad"[..]).expect("append file");
        let bytes = builder.into_inner().expect("finish");
        assert!(apply(root.path(), &bytes[..]).is_err());
        assert!(!outside.path().join("pwned").exists(), "nothing was written outside the root");

        let whiteout_through_link = layer(&[("escape/.wh.victim", Some(""))]);
        fs::write(outside.path().join("victim"), "keep").expect("victim");
        assert!(apply(root.path(), &whiteout_through_link[..]).is_err());
        assert!(outside.path().join("victim").exists(), "a whiteout never deletes through a link");
    }

    #[test]
    fn every_byte_of_the_stream_counts_exactly() {
        let files = layer(&[("etc/", None), ("etc/a", Some("hello")), ("etc/b", Some("world"))]);
        // The stream as read: everything up to the first of the two end-of-archive blocks.
        let read = files.len() as u64 - 512;
        let root = tempfile::tempdir().expect("tempdir");
        apply_within(root.path(), &files[..], UnpackLimits { layer_bytes: read, ..UnpackLimits::unbounded() })
            .expect("at the limit");
        let over =
            apply_within(root.path(), &files[..], UnpackLimits { layer_bytes: read - 1, ..UnpackLimits::unbounded() });
        assert_eq!(refusal(over), ("image_layer_bytes", read, read - 1));
    }

    #[test]
    fn sparse_and_lying_headers_count_their_full_size() {
        const TIB: u64 = 1024 * 1024 * MIB;
        let root = tempfile::tempdir().expect("tempdir");
        // A sparse file: one 512-byte header (and the end of the archive) that unpacks to a
        // 1 TiB file.
        let bomb = sparse("hole", TIB);
        assert_eq!(bomb.len(), 512 + 1024);
        let limit = MAX_IMAGE_LAYER_EXPANDED_BYTES;
        assert_eq!(refusal(apply(root.path(), &bomb[..])), ("image_layer_bytes", 512 + TIB, limit));
        assert!(!root.path().join("hole").exists(), "nothing was written");
        apply_within(root.path(), &bomb[..], UnpackLimits::unbounded()).expect("unbounded");
        assert_eq!(fs::metadata(root.path().join("hole")).expect("hole").len(), TIB, "the bomb is real");

        // A header that declares 1 TiB over a stream that ends at once: refused for what it
        // declares, before any of its data is read.
        let mut lying = header();
        lying.set_entry_type(tar::EntryType::Regular);
        lying.set_path("liar").expect("path");
        lying.set_size(TIB);
        lying.set_mode(0o644);
        lying.set_cksum();
        let mut stream = lying.as_bytes().to_vec();
        stream.extend_from_slice(b"abc");
        assert_eq!(refusal(apply(root.path(), &stream[..])), ("image_layer_bytes", 512 + TIB, limit));
        assert!(!root.path().join("liar").exists(), "nothing was written");
    }

    #[test]
    fn entries_are_counted_whatever_they_are() {
        // A directory, a file, a whiteout, a FIFO (skipped) and the root itself (skipped): five.
        let mut three = layer(&[("./", None), ("etc/", None), ("etc/a", Some("1"))]);
        three.truncate(three.len() - 1024);
        let mut builder = tar::Builder::new(three);
        let mut fifo = header();
        fifo.set_entry_type(tar::EntryType::Fifo);
        fifo.set_size(0);
        fifo.set_mode(0o644);
        builder.append_data(&mut fifo, "etc/pipe", &[][..]).expect("fifo");
        let mut whiteout = header();
        whiteout.set_entry_type(tar::EntryType::Regular);
        whiteout.set_size(0);
        whiteout.set_mode(0o644);
        builder.append_data(&mut whiteout, "etc/.wh.gone", &[][..]).expect("whiteout");
        let five = builder.into_inner().expect("finish");
        let root = tempfile::tempdir().expect("tempdir");
        apply_within(root.path(), &five[..], UnpackLimits { entries: 5, ..UnpackLimits::unbounded() })
            .expect("five entries");
        let over = apply_within(root.path(), &five[..], UnpackLimits { entries: 4, ..UnpackLimits::unbounded() });
        assert_eq!(refusal(over), ("image_layer_entries", 5, 4));
    }

    #[test]
    fn metadata_before_an_entry_is_bounded() {
        // A GNU long name of 256 KiB, which the tar reader would hold in memory whole.
        let long = "d/".repeat(128 * 1024) + "f";
        let mut builder = tar::Builder::new(Vec::new());
        let mut file = header();
        file.set_entry_type(tar::EntryType::Regular);
        file.set_size(1);
        file.set_mode(0o644);
        builder.append_data(&mut file, &long, &b"x"[..]).expect("append");
        let bytes = builder.into_inner().expect("finish");
        let root = tempfile::tempdir().expect("tempdir");
        let limits = UnpackLimits { header_bytes: 64 * 1024, ..UnpackLimits::unbounded() };
        let (cap, observed, limit) = refusal(apply_within(root.path(), &bytes[..], limits));
        assert_eq!((cap, limit), ("image_tar_header_bytes", 64 * 1024));
        assert_eq!(observed, 64 * 1024 + 1, "reading stopped one byte past the window");
    }

    #[test]
    fn the_layers_of_one_image_share_its_budget() {
        let one = layer(&[("a", Some("aaaa"))]);
        let read = one.len() as u64 - 512;
        let limits = UnpackLimits { layer_bytes: read, image_bytes: read + read / 2, ..UnpackLimits::unbounded() };
        let root = tempfile::tempdir().expect("tempdir");
        let mut budget = ImageBudget::new(limits);
        apply_layer(root.path(), &one[..], &mut budget).expect("first layer");
        let (cap, observed, limit) = refusal(apply_layer(root.path(), &one[..], &mut budget));
        assert_eq!((cap, limit), ("image_bytes", read + read / 2));
        assert!(observed > limit && observed <= 2 * read, "{observed}");
    }
}
