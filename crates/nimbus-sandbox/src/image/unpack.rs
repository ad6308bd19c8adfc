//! Applying image layers to a directory: OCI whiteouts, and every path confined to the root.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::ImageError;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

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

/// Applies one layer (an uncompressed tar stream) on top of `root`.
pub(crate) fn apply_layer(root: &Path, layer: impl Read) -> Result<(), ImageError> {
    let mut archive = tar::Archive::new(layer);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    // Paths this layer wrote: an opaque whiteout hides lower layers only, not its own layer.
    let mut written: HashSet<PathBuf> = HashSet::new();
    let invalid = |e: std::io::Error| ImageError::invalid(format!("layer is not a valid tar: {e}"));
    for entry in archive.entries().map_err(invalid)? {
        let mut entry = entry.map_err(invalid)?;
        let relative = relative_path(&entry.path().map_err(invalid)?)?;
        let Some(name) = relative.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
        let parent = relative.parent().map(Path::to_path_buf).unwrap_or_default();
        if name == OPAQUE_WHITEOUT || name.starts_with(WHITEOUT_PREFIX) {
            if !reachable_without_links(root, &parent) {
                return Err(ImageError::invalid(format!(
                    "whiteout '{}' goes through a symbolic link",
                    relative.display()
                )));
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
            continue;
        }
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            // Device nodes and FIFOs are never taken from images; the runtime provides /dev.
            tracing::debug!(path = %relative.display(), "skipping a special file in an image layer");
            continue;
        }
        // `unpack_in` refuses entries (and link targets) that would land outside `root`.
        if !entry
            .unpack_in(root)
            .map_err(|e| ImageError::invalid(format!("cannot unpack '{}': {e}", relative.display())))?
        {
            return Err(ImageError::invalid(format!("layer entry '{}' leaves the root", relative.display())));
        }
        written.insert(relative);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn whiteouts_remove_lower_layers_only() {
        let root = tempfile::tempdir().expect("tempdir");
        apply_layer(
            root.path(),
            &layer(&[("etc/", None), ("etc/a", Some("1")), ("etc/b", Some("2")), ("opt/", None), ("opt/x", Some("x"))])
                [..],
        )
        .expect("layer 1");
        apply_layer(
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
        assert!(apply_layer(root.path(), &bytes[..]).is_err());
        assert!(!outside.path().join("pwned").exists(), "nothing was written outside the root");

        let whiteout_through_link = layer(&[("escape/.wh.victim", Some(""))]);
        fs::write(outside.path().join("victim"), "keep").expect("victim");
        assert!(apply_layer(root.path(), &whiteout_through_link[..]).is_err());
        assert!(outside.path().join("victim").exists(), "a whiteout never deletes through a link");
    }
}
