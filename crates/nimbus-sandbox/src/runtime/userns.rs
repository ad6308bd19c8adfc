//! User namespaces: each sandbox's uid and gid 0..65536 map onto a range of host ids of its own,
//! taken from an operator-set pool, so root in a sandbox is an unprivileged id on the host and
//! no two sandboxes share an id.
//!
//! - [`IdPool`]: the pool (`nimbus start --userns-pool FIRST:RANGES`) and the allocation of a
//!   free range per sandbox, recorded as `idmap.json` in the sandbox's state directory (a range
//!   is free again when that directory is gone).
//! - [`IdMap`]: one sandbox's range, and what the supervisor does with it: an idmapped mount of
//!   the shared image (its files appear with their own owners inside, no copy), the writable
//!   layer's root owned by the range, and ids of files made for the sandbox shifted onto it.

use std::os::fd::AsFd;
use std::path::Path;

use nimbus_core::limits::{SANDBOX_USERNS_IDS, SANDBOX_USERNS_POOL_FIRST, SANDBOX_USERNS_POOL_RANGES};
use serde::{Deserialize, Serialize};

use super::layout::Layout;

/// The host ids one sandbox's ids `0..count` map onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    /// The host id of the sandbox's id 0 (for users and groups alike).
    pub host_first: u32,
    /// How many ids are mapped.
    pub count: u32,
}

impl IdMap {
    /// The host id of the sandbox's `id`; `None` past the range (an id the sandbox cannot use).
    pub fn to_host(self, id: u32) -> Option<u32> {
        (id < self.count).then(|| self.host_first + id)
    }

    /// The host ids of the sandbox's `uid` and `gid`, or an error naming the unmapped one.
    pub fn owner_to_host(self, uid: u32, gid: u32) -> Result<(u32, u32), String> {
        let unmapped = |what: &str, id: u32| format!("{what} {id} is outside the sandbox's {} ids", self.count);
        Ok((
            self.to_host(uid).ok_or_else(|| unmapped("uid", uid))?,
            self.to_host(gid).ok_or_else(|| unmapped("gid", gid))?,
        ))
    }

    /// The map in `/proc/<pid>/{uid,gid}_map` syntax.
    pub fn proc_map(self) -> String {
        format!("0 {} {}", self.host_first, self.count)
    }

    /// Reads the range recorded for the sandbox of `layout`.
    pub fn read(layout: &Layout) -> Result<Self, String> {
        let bytes = std::fs::read(layout.id_map()).map_err(|e| format!("cannot read idmap.json: {e}"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("invalid idmap.json: {e}"))
    }

    /// Bind-mounts `image` (the shared image root, owned by the image's own ids) on `target`
    /// with this map applied: through that mount, a file of the image's uid `n` is owned by
    /// host id `host_first + n`, so the sandbox sees the image's owners and the image stays
    /// shared and untouched.
    pub fn mount_image(self, image: &Path, target: &Path) -> std::io::Result<()> {
        let userns = super::sys::user_namespace(&self.proc_map())?;
        super::sys::idmapped_bind(image, target, userns.as_fd())
    }

    /// Gives the writable layer's root `upper` the owner and mode of the image's root, as the
    /// sandbox will see them (the overlay's root takes its attributes from the upper layer).
    pub fn own_upper(self, upper: &Path, image: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let root = std::fs::metadata(image)?;
        let (uid, gid) = self.owner_to_host(root.uid(), root.gid()).map_err(std::io::Error::other)?;
        std::os::unix::fs::chown(upper, Some(uid), Some(gid))?;
        std::fs::set_permissions(upper, std::fs::Permissions::from_mode(root.mode() & 0o7777))
    }
}

/// The pool of host ids sandboxes get their ranges from: `ranges` ranges of
/// [`SANDBOX_USERNS_IDS`] ids from host id `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdPool {
    first: u32,
    ranges: u32,
}

impl Default for IdPool {
    fn default() -> Self {
        Self::new(SANDBOX_USERNS_POOL_FIRST, SANDBOX_USERNS_POOL_RANGES).expect("the default pool is valid")
    }
}

impl IdPool {
    /// The pool of `ranges` ranges from host id `first`. Refused when it would include host ids
    /// below [`SANDBOX_USERNS_IDS`] (the host's own users) or run past the largest valid id.
    pub fn new(first: u32, ranges: u32) -> Result<Self, String> {
        if first < SANDBOX_USERNS_IDS {
            return Err(format!(
                "the pool must start at or above host id {SANDBOX_USERNS_IDS}, past the host's own users"
            ));
        }
        if ranges == 0 {
            return Err("the pool must hold at least one range".into());
        }
        let end = u64::from(first) + u64::from(ranges) * u64::from(SANDBOX_USERNS_IDS);
        // 2^32 - 1 is the invalid id (-1); the largest usable is one below it.
        if end > u64::from(u32::MAX) {
            return Err(format!(
                "{ranges} ranges of {SANDBOX_USERNS_IDS} ids from {first} run past the largest host id"
            ));
        }
        Ok(Self { first, ranges })
    }

    /// Parses `FIRST:RANGES` (the `--userns-pool` flag).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (first, ranges) = text.split_once(':').ok_or("expected FIRST:RANGES, e.g. 2147483648:4096")?;
        let number = |s: &str, what: &str| s.trim().parse::<u32>().map_err(|_| format!("{what} `{s}` is not a number"));
        Self::new(number(first, "FIRST")?, number(ranges, "RANGES")?)
    }

    /// The number of ranges.
    pub fn ranges(&self) -> u32 {
        self.ranges
    }

    fn range(&self, index: u32) -> IdMap {
        IdMap { host_first: self.first + index * SANDBOX_USERNS_IDS, count: SANDBOX_USERNS_IDS }
    }

    /// Takes the lowest range no sandbox under `state_root` holds and records it in `layout`
    /// (a state directory under `state_root`). `None`: every range is taken. Callers make one
    /// allocation at a time per state root.
    pub fn allocate(&self, state_root: &Path, layout: &Layout) -> std::io::Result<Option<IdMap>> {
        let mut taken = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(state_root)?.flatten() {
            if let Ok(map) = IdMap::read(&Layout::new(entry.path())) {
                taken.insert(map.host_first);
            }
        }
        let Some(map) = (0..self.ranges).map(|index| self.range(index)).find(|map| !taken.contains(&map.host_first))
        else {
            return Ok(None);
        };
        // Not synced: a power cut ends the sandbox with the machine, and its state is then
        // removed, range and all. Callers allocate one at a time, so no scan sees it half written.
        std::fs::write(layout.id_map(), serde_json::to_vec(&map).map_err(std::io::Error::other)?)?;
        Ok(Some(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_must_stay_clear_of_host_users_and_within_the_id_space() {
        assert!(IdPool::new(1000, 1).is_err());
        assert!(IdPool::new(SANDBOX_USERNS_IDS, 0).is_err());
        // The last usable host id is 2^32 - 2 (2^32 - 1 is the invalid id).
        assert!(IdPool::new(u32::MAX - SANDBOX_USERNS_IDS + 1, 1).is_err());
        assert!(IdPool::new(u32::MAX - SANDBOX_USERNS_IDS, 1).is_ok());
        assert!(IdPool::parse("65536").is_err());
        assert!(IdPool::parse("x:1").is_err());
        assert_eq!(IdPool::parse("131072:3").expect("valid").ranges(), 3);
    }

    #[test]
    fn ranges_are_taken_lowest_first_never_twice_and_free_again_when_their_sandbox_is_gone() {
        let root = tempfile::tempdir().expect("tempdir");
        let pool = IdPool::new(SANDBOX_USERNS_IDS, 2).expect("pool");
        let sandbox = |name: &str| {
            let layout = Layout::new(root.path().join(name));
            std::fs::create_dir(&layout.dir).expect("state dir");
            layout
        };
        let (a, b, c) = (sandbox("a"), sandbox("b"), sandbox("c"));
        let first = pool.allocate(root.path(), &a).expect("scan").expect("a range");
        let second = pool.allocate(root.path(), &b).expect("scan").expect("a range");
        assert_eq!(first, IdMap { host_first: SANDBOX_USERNS_IDS, count: SANDBOX_USERNS_IDS });
        assert_eq!(second.host_first, 2 * SANDBOX_USERNS_IDS);
        assert_eq!(IdMap::read(&b).expect("recorded"), second);
        assert_eq!(pool.allocate(root.path(), &c).expect("scan"), None, "both ranges are taken");
        std::fs::remove_dir_all(&a.dir).expect("remove a");
        assert_eq!(pool.allocate(root.path(), &c).expect("scan"), Some(first), "a's range is free again");
    }

    #[test]
    fn ids_shift_onto_the_range_and_unmapped_ones_are_refused() {
        let map = IdMap { host_first: 200_000, count: 65_536 };
        assert_eq!(map.to_host(0), Some(200_000));
        assert_eq!(map.owner_to_host(1000, 100), Ok((201_000, 200_100)));
        assert_eq!(map.to_host(70_000), None);
        assert!(map.owner_to_host(0, 70_000).expect_err("unmapped gid").contains("gid 70000"));
        assert_eq!(map.proc_map(), "0 200000 65536");
    }
}
