//! `esurety backup --to FILE`: a consistent copy of a SQLite store while its daemon runs,
//! made with SQLite's online backup, carrying the fingerprint of the secret it was written
//! under (never the secret). `store check` (`check.rs`) reads the copy, and the fingerprint
//! tells an operator who restores it whether the secret file beside it is the right one.
//!
//! The copy is one moment of the store: a read transaction is held on the source from the
//! first page to the last, so every step copies from the same snapshot and a write by the
//! daemon meanwhile never restarts the copy (SQLite restarts a backup whose source changed
//! under it). In WAL mode (the store's) a reader never blocks the writer: the daemon goes on
//! committing while pages are copied, in steps of [`PAGES_PER_STEP`]; its commits wait in
//! the WAL until the copy ends. The copy is written beside FILE under another name, made
//! durable, and renamed to FILE only when complete: FILE is never half a backup.
//! PostgreSQL is backed up with its own tools ([`BackupError::Postgres`] says which).

use super::{Result, StoreError};
use crate::config::StoreAt;
use crate::secrets::Secrets;
use std::path::{Path, PathBuf};

/// Pages copied per step (4 MiB at the default page size of 4 KiB).
pub const PAGES_PER_STEP: i32 = 1024;

/// The table a copy carries about itself (absent from a live store that was never restored
/// from a backup). Replaced in each new copy.
pub const META_TABLE: &str = "backup_meta";

/// What a backup made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Backed {
    pub path: PathBuf,
    pub secret_fingerprint: String,
    pub taken_at: String,
    pub schema_version: i64,
    pub pages: i64,
    pub steps: u32,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("esurety backup copies a SQLite store; this store is on PostgreSQL ({0}). Back it up with PostgreSQL's own tools: \
             pg_basebackup with WAL archiving (archive_mode = on, archive_command) for a copy that can be restored to any moment, \
             or pg_dump for a logical copy of one moment; after a restore, `esurety store check` reads it")]
    Postgres(String),
    #[error("{0} exists: give --force to replace it (it is replaced only once the new copy is complete)")]
    Exists(PathBuf),
    #[error("there is no store file {0} to back up")]
    NoStore(PathBuf),
    #[error("{0} is the store itself: a backup goes to another file")]
    SameFile(PathBuf),
    #[error("cannot write the backup {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for BackupError {
    fn from(e: rusqlite::Error) -> BackupError {
        BackupError::Store(e.into())
    }
}

/// Copies the store at `at` to `to`. An existing `to` is refused unless `force`; then it
/// is replaced, atomically, by the complete copy. `taken_at` is written into the copy.
pub fn backup(at: &StoreAt, to: &Path, secrets: &Secrets, force: bool, taken_at: &str) -> std::result::Result<Backed, BackupError> {
    let source = match at {
        StoreAt::Postgres(target) => return Err(BackupError::Postgres(target.to_string())),
        StoreAt::File(path) => path,
    };
    if !source.is_file() {
        return Err(BackupError::NoStore(source.clone()));
    }
    let io = |path: &Path| { let path = path.to_path_buf(); move |source| BackupError::Io { path, source } };
    if let Ok(there) = std::fs::metadata(to) {
        if same_file(&there, source) {
            return Err(BackupError::SameFile(to.to_path_buf()));
        }
        if !force {
            return Err(BackupError::Exists(to.to_path_buf()));
        }
    }
    let name = to.file_name().ok_or_else(|| BackupError::Io { path: to.to_path_buf(), source: std::io::Error::other("not a file name") })?;
    let partial = to.with_file_name(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
    let _ = std::fs::remove_file(&partial);
    let out = copy(source, &partial, secrets, taken_at);
    let out = out.and_then(|backed| {
        std::fs::File::open(&partial).and_then(|f| f.sync_all()).map_err(io(&partial))?;
        std::fs::rename(&partial, to).map_err(io(to))?;
        // The rename lasts once the folder that holds it is on disk.
        let folder = to.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(folder).and_then(|f| f.sync_all()).map_err(io(folder))?;
        let bytes = std::fs::metadata(to).map_err(io(to))?.len();
        Ok(Backed { path: to.to_path_buf(), bytes, ..backed })
    });
    if out.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    out
}

/// The pages of `source`, as of one moment, into a new file `into`, with the copy's own
/// record of itself; one file (rollback journal, not WAL), so it can be moved as it is.
fn copy(source: &Path, into: &Path, secrets: &Secrets, taken_at: &str) -> std::result::Result<Backed, BackupError> {
    let src = super::sqlite::open(source)?;
    // One snapshot for every step (see the head of this file).
    src.execute_batch("BEGIN DEFERRED; SELECT count(*) FROM sqlite_schema;")?;
    let schema_version = super::sqlite::version(&src)?;
    let mut dst = rusqlite::Connection::open(into)?;
    let (pages, steps) = {
        let b = rusqlite::backup::Backup::new(&src, &mut dst)?;
        let mut steps = 0u32;
        loop {
            steps += 1;
            match b.step(PAGES_PER_STEP)? {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                // The copy's own file is ours alone; a busy source (not in WAL mode) is waited for.
                _ => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        }
        (b.progress().pagecount as i64, steps)
    };
    src.execute_batch("COMMIT")?;
    drop(src);
    let _: String = dst.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    dst.pragma_update(None, "synchronous", "FULL")?;
    let fingerprint = secrets.fingerprint();
    let tx = dst.transaction()?;
    tx.execute_batch(&format!(
        "DROP TABLE IF EXISTS {META_TABLE};
         CREATE TABLE {META_TABLE} (taken_at TEXT NOT NULL, source TEXT NOT NULL, schema_version INTEGER NOT NULL,
                                    secret_fingerprint TEXT NOT NULL, esurety TEXT NOT NULL);"))?;
    tx.execute(&format!("INSERT INTO {META_TABLE} VALUES (?1, ?2, ?3, ?4, ?5)"),
        rusqlite::params![taken_at, source.display().to_string(), schema_version, fingerprint, env!("CARGO_PKG_VERSION")])?;
    tx.commit()?;
    drop(dst);
    Ok(Backed { path: into.to_path_buf(), secret_fingerprint: fingerprint, taken_at: taken_at.to_string(), schema_version, pages, steps, bytes: 0 })
}

fn same_file(there: &std::fs::Metadata, store: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(store).is_ok_and(|m| m.dev() == there.dev() && m.ino() == there.ino())
}

/// What a copy says of itself (its [`META_TABLE`]), when the store is one or was restored
/// from one.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupMeta {
    pub taken_at: String,
    pub source: String,
    pub schema_version: i64,
    pub secret_fingerprint: String,
}

pub(super) fn meta(conn: &super::db::Conn) -> Result<Option<BackupMeta>> {
    use super::db::OptionalExtension;
    let present: i64 = match conn.kind() {
        super::Kind::Sqlite => conn.query_row("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1", [META_TABLE], |r| r.get(0))?,
        super::Kind::Postgres => conn.query_row("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?1", [META_TABLE], |r| r.get(0))?,
    };
    if present == 0 {
        return Ok(None);
    }
    conn.query_row(&format!("SELECT taken_at, source, schema_version, secret_fingerprint FROM {META_TABLE} LIMIT 1"), (),
        |r| Ok(BackupMeta { taken_at: r.get(0)?, source: r.get(1)?, schema_version: r.get(2)?, secret_fingerprint: r.get(3)? })).optional()
}
