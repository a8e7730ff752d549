//! Where journal segments live: a small file trait, so that the writer and recovery run over
//! real files in production and over a simulated disk (which keeps only what was fdatasynced)
//! in the power-cut tests.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// One preallocated segment file, open for writing.
pub(crate) trait SegmentFile: Send {
    /// Writes `bytes` at `offset` (inside the preallocated size).
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Makes every write so far durable (fdatasync: the size never changes, so no metadata).
    fn sync_data(&mut self) -> io::Result<()>;
}

/// The set of segments: listed, read whole, opened, created pre-zeroed.
pub(crate) trait SegmentStore: Send + Sync {
    /// Ids of the segments that exist, in any order.
    fn list(&self) -> io::Result<Vec<u64>>;
    /// A segment's bytes.
    fn read(&self, id: u64) -> io::Result<Vec<u8>>;
    /// Opens an existing segment for writing.
    fn open(&self, id: u64) -> io::Result<Box<dyn SegmentFile>>;
    /// Creates segment `id` of `bytes` zero bytes, durable (file and directory entry) before it
    /// is returned; a crash during creation leaves no segment behind.
    fn create(&self, id: u64, bytes: u64) -> io::Result<Box<dyn SegmentFile>>;
}

/// Segments as files `<dir>/<id as 16 hex digits>.seg`.
pub(crate) struct FsStore {
    dir: PathBuf,
}

impl FsStore {
    pub(crate) fn open(dir: PathBuf) -> io::Result<FsStore> {
        if !dir.exists() {
            std::fs::create_dir_all(&dir)?;
            if let Some(parent) = dir.parent() {
                File::open(parent)?.sync_all()?;
            }
        }
        Ok(FsStore { dir })
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016x}.seg"))
    }
}

struct FsSegment(File);

impl SegmentFile for FsSegment {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all_at(bytes, offset)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl SegmentStore for FsStore {
    fn list(&self) -> io::Result<Vec<u64>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(hex) = name.strip_suffix(".seg") {
                if let Ok(id) = u64::from_str_radix(hex, 16) {
                    ids.push(id);
                }
            } else if name.ends_with(".seg.tmp") {
                // A creation cut short by a crash: never part of the journal.
                std::fs::remove_file(self.dir.join(name))?;
            }
        }
        Ok(ids)
    }

    fn read(&self, id: u64) -> io::Result<Vec<u8>> {
        std::fs::read(self.path(id))
    }

    fn open(&self, id: u64) -> io::Result<Box<dyn SegmentFile>> {
        let file = File::options().read(true).write(true).open(self.path(id))?;
        Ok(Box::new(FsSegment(file)))
    }

    fn create(&self, id: u64, bytes: u64) -> io::Result<Box<dyn SegmentFile>> {
        let final_path = self.path(id);
        let temporary = self.dir.join(format!("{id:016x}.seg.tmp"));
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = bytes;
        while left > 0 {
            let now = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..now])?;
            left -= now as u64;
        }
        file.sync_all()?;
        std::fs::rename(&temporary, &final_path)?;
        File::open(&self.dir)?.sync_all()?;
        Ok(Box::new(FsSegment(file)))
    }
}

#[cfg(test)]
pub(crate) mod sim {
    //! A simulated disk for power-cut tests: writes land in a volatile image, `sync_data` makes
    //! them durable, and after the cut every operation fails and only durable bytes remain.

    use std::collections::BTreeMap;
    use std::io;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::{Arc, Mutex};

    use super::{SegmentFile, SegmentStore};

    #[derive(Default, Clone)]
    struct Image {
        durable: Vec<u8>,
        volatile: Vec<u8>,
    }

    /// Segments in memory; `operations_left` counts writes and syncs until the power cut
    /// (negative: no cut).
    pub(crate) struct SimStore {
        segments: Mutex<BTreeMap<u64, Image>>,
        operations_left: AtomicI64,
        /// When true, `sync_data` does nothing (to show that the tests catch a missing sync).
        pub(crate) skip_sync: bool,
    }

    impl SimStore {
        pub(crate) fn new(cut_after_operations: Option<i64>) -> Arc<SimStore> {
            Arc::new(SimStore {
                segments: Mutex::new(BTreeMap::new()),
                operations_left: AtomicI64::new(cut_after_operations.unwrap_or(-1)),
                skip_sync: false,
            })
        }

        /// The disk after the power came back: only durable bytes, no cut pending.
        pub(crate) fn after_power_cut(&self) -> Arc<SimStore> {
            let segments = self
                .segments
                .lock()
                .expect("sim lock")
                .iter()
                .map(|(id, image)| {
                    let durable = image.durable.clone();
                    (
                        *id,
                        Image {
                            volatile: durable.clone(),
                            durable,
                        },
                    )
                })
                .collect();
            Arc::new(SimStore {
                segments: Mutex::new(segments),
                operations_left: AtomicI64::new(-1),
                skip_sync: false,
            })
        }

        /// Whether the cut has happened.
        pub(crate) fn is_cut(&self) -> bool {
            self.operations_left.load(Ordering::SeqCst) == 0
        }

        fn operation(&self) -> io::Result<()> {
            let left = self.operations_left.load(Ordering::SeqCst);
            if left == 0 {
                return Err(io::Error::other("simulated power cut"));
            }
            if left > 0 {
                self.operations_left.fetch_sub(1, Ordering::SeqCst);
            }
            Ok(())
        }

        /// Overwrites durable bytes of a segment directly (damage on the platter).
        pub(crate) fn damage(&self, id: u64, offset: usize, bytes: &[u8]) {
            let mut segments = self.segments.lock().expect("sim lock");
            let image = segments.get_mut(&id).expect("segment exists");
            image.durable[offset..offset + bytes.len()].copy_from_slice(bytes);
            image.volatile[offset..offset + bytes.len()].copy_from_slice(bytes);
        }
    }

    struct SimSegment {
        store: Arc<SimStore>,
        id: u64,
    }

    impl SegmentFile for SimSegment {
        fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
            self.store.operation()?;
            let mut segments = self.store.segments.lock().expect("sim lock");
            let image = segments.get_mut(&self.id).expect("segment exists");
            let offset = offset as usize;
            image.volatile[offset..offset + bytes.len()].copy_from_slice(bytes);
            Ok(())
        }
        fn sync_data(&mut self) -> io::Result<()> {
            self.store.operation()?;
            if self.store.skip_sync {
                return Ok(());
            }
            let mut segments = self.store.segments.lock().expect("sim lock");
            let image = segments.get_mut(&self.id).expect("segment exists");
            image.durable.clone_from(&image.volatile);
            Ok(())
        }
    }

    /// The store behind an `Arc`, as the journal holds it.
    pub(crate) struct Shared(pub(crate) Arc<SimStore>);

    impl SegmentStore for Shared {
        fn list(&self) -> io::Result<Vec<u64>> {
            Ok(self
                .0
                .segments
                .lock()
                .expect("sim lock")
                .keys()
                .copied()
                .collect())
        }
        fn read(&self, id: u64) -> io::Result<Vec<u8>> {
            Ok(self.0.segments.lock().expect("sim lock")[&id].volatile.clone())
        }
        fn open(&self, id: u64) -> io::Result<Box<dyn SegmentFile>> {
            Ok(Box::new(SimSegment {
                store: self.0.clone(),
                id,
            }))
        }
        fn create(&self, id: u64, bytes: u64) -> io::Result<Box<dyn SegmentFile>> {
            self.0.operation()?;
            let zeros = vec![0; bytes as usize];
            self.0.segments.lock().expect("sim lock").insert(
                id,
                Image {
                    durable: zeros.clone(),
                    volatile: zeros,
                },
            );
            Ok(Box::new(SimSegment {
                store: self.0.clone(),
                id,
            }))
        }
    }
}

#[cfg(any(test, feature = "test-hooks"))]
pub(crate) mod faulty {
    //! Test hook: a store that fails the next journal write or fdatasync with an injected error
    //! (`Log::inject_fault`), around the real one.

    use std::io;
    use std::sync::Arc;

    use super::{SegmentFile, SegmentStore};
    use crate::log::{FaultPoint, FaultSlot};

    pub(crate) struct FaultyStore {
        pub(crate) inner: Arc<dyn SegmentStore>,
        pub(crate) faults: Arc<FaultSlot>,
    }

    struct FaultySegment {
        inner: Box<dyn SegmentFile>,
        faults: Arc<FaultSlot>,
    }

    impl SegmentFile for FaultySegment {
        fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
            self.faults.fail(FaultPoint::JournalWrite)?;
            self.inner.write_at(offset, bytes)
        }
        fn sync_data(&mut self) -> io::Result<()> {
            self.faults.fail(FaultPoint::JournalSync)?;
            self.inner.sync_data()
        }
    }

    impl SegmentStore for FaultyStore {
        fn list(&self) -> io::Result<Vec<u64>> {
            self.inner.list()
        }
        fn read(&self, id: u64) -> io::Result<Vec<u8>> {
            self.inner.read(id)
        }
        fn open(&self, id: u64) -> io::Result<Box<dyn SegmentFile>> {
            Ok(Box::new(FaultySegment {
                inner: self.inner.open(id)?,
                faults: self.faults.clone(),
            }))
        }
        fn create(&self, id: u64, bytes: u64) -> io::Result<Box<dyn SegmentFile>> {
            Ok(Box::new(FaultySegment {
                inner: self.inner.create(id, bytes)?,
                faults: self.faults.clone(),
            }))
        }
    }
}
