//! Free disk space as a state of the log, and the debris a full disk leaves in sled's files.
//!
//! Below `LogConfig::min_free_disk` bytes free under the data directory the log refuses writes
//! (`LogError::DiskFull`, RESOURCE_EXHAUSTED over gRPC) and defers checkpoints, while reads go
//! on; it accepts writes again by itself once space returns. The reading is taken with
//! `statvfs(3)` and cached for `FREE_DISK_RECHECK_INTERVAL`, so a write costs one clock read.
//! Opening checks it too (sled 0.34.7 writes on open, even to verify or export), and removes the
//! one piece of debris a full disk is known to leave: an empty `snap.<16 hex>.generating` file,
//! which would make every later open of sled fail although every record is intact.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::error::{LogError, LogResult};
use super::limits::FREE_DISK_RECHECK_INTERVAL;

/// Measures the bytes an unprivileged writer may still use on the file system holding a path.
pub type FreeSpaceProbe = Arc<dyn Fn(&Path) -> io::Result<u64> + Send + Sync>;

/// Bytes available to an unprivileged writer on the file system holding `path` (`statvfs(3)`:
/// available blocks times the fragment size).
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    // SAFETY: `statvfs` is plain data; zeroed is a valid value that the call overwrites.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is a NUL-terminated string and `stats` a valid, writable statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((stats.f_bavail as u64).saturating_mul(stats.f_frsize as u64))
}

/// Parses a size for `serve --min-free-disk`: bytes, or a number with a unit (`K`, `M`, `G`,
/// `KiB`, `MiB`, `GiB`; all powers of 1,024), e.g. `256MiB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (bytes, or a number with K, M or G)"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} (use K, M or G: powers of 1,024)")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// The free-space rule of one open log: the minimum, the probe, and the cached reading.
pub(crate) struct DiskGuard {
    dir: PathBuf,
    minimum: u64,
    probe: FreeSpaceProbe,
    /// The last reading and when it was taken.
    cached: Mutex<Option<(Instant, u64)>>,
    /// Whether a failed measurement was already reported (it is said once, not every round).
    reported: std::sync::atomic::AtomicBool,
}

impl DiskGuard {
    pub(crate) fn new(dir: PathBuf, minimum: u64, probe: FreeSpaceProbe) -> DiskGuard {
        DiskGuard {
            dir,
            minimum,
            probe,
            cached: Mutex::new(None),
            reported: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// `DiskFull` when the last reading (at most FREE_DISK_RECHECK_INTERVAL old) is below the
    /// minimum. A probe that fails does not stop writes: it is reported and the write goes on
    /// (the journal's own error handling still applies).
    pub(crate) fn check(&self) -> LogResult<()> {
        let free = {
            let mut cached = self.cached.lock().expect("disk guard lock");
            match *cached {
                Some((taken, free)) if taken.elapsed() < FREE_DISK_RECHECK_INTERVAL => free,
                _ => {
                    let free = self.measure();
                    *cached = Some((Instant::now(), free));
                    free
                }
            }
        };
        self.judge(free)
    }

    /// [`DiskGuard::check`] with a fresh reading (before opening sled and before a checkpoint).
    pub(crate) fn check_now(&self) -> LogResult<()> {
        let free = self.measure();
        *self.cached.lock().expect("disk guard lock") = Some((Instant::now(), free));
        self.judge(free)
    }

    fn measure(&self) -> u64 {
        match (self.probe)(&self.dir) {
            Ok(free) => free,
            Err(error) => {
                if self.reported.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    return u64::MAX;
                }
                eprintln!(
                    "dipledger: could not measure the free space under {}: {error}",
                    self.dir.display()
                );
                u64::MAX
            }
        }
    }

    fn judge(&self, free: u64) -> LogResult<()> {
        if free < self.minimum {
            return Err(LogError::DiskFull {
                free,
                dir: self.dir.clone(),
                minimum: self.minimum,
            });
        }
        Ok(())
    }
}

/// Whether `name` is an unfinished sled snapshot: `snap.` + 16 hex digits + `.generating`.
fn is_unfinished_snapshot(name: &str) -> bool {
    name.strip_prefix("snap.")
        .and_then(|rest| rest.strip_suffix(".generating"))
        .is_some_and(|lsn| lsn.len() == 16 && lsn.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// Removes the debris sled 0.34.7 leaves when the disk fills while it writes a snapshot: an
/// *empty* `snap.<16 hex>.generating` file in its directory, which sled would pick as its newest
/// snapshot and refuse ("Read corrupted data at file offset None") on every later open. Only
/// empty files with exactly that name are removed (a non-empty one is left for the operator, and
/// the open fails as data loss); each removal is said on standard error. Returns what it removed.
pub(crate) fn remove_snapshot_debris(sled_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(sled_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(removed),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_unfinished_snapshot(name) {
            continue;
        }
        let metadata = entry.metadata()?;
        if metadata.is_file() && metadata.len() == 0 {
            let path = entry.path();
            std::fs::remove_file(&path)?;
            eprintln!(
                "dipledger: removed {}: an empty, unfinished sled snapshot (left by a full disk); \
                 every record is intact",
                path.display()
            );
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        std::fs::File::open(sled_dir)?.sync_all()?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(minimum: u64, free: Arc<std::sync::atomic::AtomicU64>) -> DiskGuard {
        let probe: FreeSpaceProbe =
            Arc::new(move |_: &Path| Ok(free.load(std::sync::atomic::Ordering::SeqCst)));
        DiskGuard::new(PathBuf::from("/data"), minimum, probe)
    }

    #[test]
    fn writes_are_refused_below_the_minimum_and_accepted_at_it() {
        let free = Arc::new(std::sync::atomic::AtomicU64::new(1_000));
        let guard = guard(1_000, free.clone());
        guard.check_now().expect("exactly the minimum free is enough");
        free.store(999, std::sync::atomic::Ordering::SeqCst);
        match guard.check_now() {
            Err(LogError::DiskFull { free, dir, minimum }) => {
                assert_eq!((free, minimum), (999, 1_000));
                assert_eq!(dir, PathBuf::from("/data"));
            }
            other => panic!("expected DiskFull, got {other:?}"),
        }
        let message = guard.check_now().unwrap_err().to_string();
        assert_eq!(
            message,
            "disk full: 999 bytes free under /data, below the minimum of 1000"
        );
    }

    #[test]
    fn the_reading_is_cached_for_the_recheck_interval() {
        let free = Arc::new(std::sync::atomic::AtomicU64::new(10));
        let guard = guard(5, free.clone());
        guard.check().expect("enough space");
        free.store(0, std::sync::atomic::Ordering::SeqCst);
        // Within the interval the cached reading answers (no statvfs per write) ...
        guard.check().expect("the cached reading still says enough");
        // ... and a fresh reading sees the change.
        assert!(matches!(
            guard.check_now(),
            Err(LogError::DiskFull { free: 0, .. })
        ));
        assert!(matches!(guard.check(), Err(LogError::DiskFull { free: 0, .. })));
    }

    #[test]
    fn free_bytes_measures_a_real_file_system() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(free_bytes(dir.path()).expect("statvfs") > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        // `serve --min-free-disk` defaults to "256MiB": the named default.
        assert_eq!(
            parse_size("256MiB"),
            Ok(crate::log::limits::DEFAULT_MIN_FREE_DISK_BYTES)
        );
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0"), Ok(0));
        assert!(parse_size("12TB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn only_empty_unfinished_snapshots_are_debris() {
        assert!(is_unfinished_snapshot("snap.00000000000A3F10.generating"));
        assert!(!is_unfinished_snapshot("snap.00000000000A3F10"));
        assert!(!is_unfinished_snapshot("snap.A3F10.generating"));
        assert!(!is_unfinished_snapshot("snap.00000000000A3F1Z.generating"));
        let dir = tempfile::tempdir().expect("temp dir");
        let empty = dir.path().join("snap.0000000000000010.generating");
        let full = dir.path().join("snap.0000000000000020.generating");
        let other = dir.path().join("snap.0000000000000030");
        std::fs::write(&empty, b"").unwrap();
        std::fs::write(&full, b"not empty").unwrap();
        std::fs::write(&other, b"").unwrap();
        assert_eq!(remove_snapshot_debris(dir.path()).unwrap(), vec![empty.clone()]);
        assert!(!empty.exists());
        assert!(full.exists() && other.exists());
    }
}
