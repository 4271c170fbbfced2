//! What the tests and benchmarks share that the product does not need: a directory that is
//! removed when dropped. Only in a test build or one with the `test-hooks` feature (which
//! `cargo test` and `cargo bench` turn on), so the test build compiles no crate the
//! binary's build did not.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh directory under the system's temp dir, removed with everything in it on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new [`TempDir`] whose name starts with `prefix`.
pub fn tempdir_in_named(prefix: &str) -> std::io::Result<TempDir> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let path = std::env::temp_dir().join(format!("{prefix}{}-{}-{nanos}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir(&path)?;
    Ok(TempDir(path))
}

/// A new [`TempDir`].
pub fn tempdir() -> std::io::Result<TempDir> {
    tempdir_in_named("esurety-test-")
}
