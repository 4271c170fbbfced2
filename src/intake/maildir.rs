//! The Maildir adapter: lists messages waiting in `new/` (and unread ones in `cur/`, which
//! a mail client may have moved), reads their bytes, and marks them by moving to `cur/`
//! with Maildir flags, as any mail client would (`S` seen, `F` flagged).

use super::{Mailbox, MailboxError, Mark};
use crate::store::{Incoming, Store};
use chrono::{DateTime, FixedOffset};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Maildir {
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// The unique name (the file name without `:2,flags`): stable across moves.
    pub uid: String,
    pub path: PathBuf,
}

impl Maildir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Maildir { path: path.into() }
    }

    pub fn create(&self) -> io::Result<()> {
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir_all(self.path.join(sub))?;
        }
        Ok(())
    }

    /// Every message in `new/` and `cur/`, sorted by name (arrival order for names that
    /// start with a timestamp, as Maildir names do). Whether one is already handled is the
    /// store's to say, not the flags': people may read a message before the daemon does.
    pub fn waiting(&self) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.path.join(sub);
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for ent in rd {
                let ent = ent?;
                let name = ent.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || !ent.file_type()?.is_file() {
                    continue;
                }
                let (uid, _) = split_name(&name);
                out.push(Entry { uid: uid.to_string(), path: ent.path() });
            }
        }
        out.sort_by(|a, b| a.uid.cmp(&b.uid));
        Ok(out)
    }

    /// Finds a message by unique name, wherever it is now.
    pub fn find(&self, uid: &str) -> io::Result<Option<Entry>> {
        let direct = self.path.join("new").join(uid);
        if direct.is_file() {
            return Ok(Some(Entry { uid: uid.into(), path: direct }));
        }
        let cur = self.path.join("cur");
        let rd = match fs::read_dir(&cur) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        for ent in rd {
            let ent = ent?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if split_name(&name).0 == uid {
                return Ok(Some(Entry { uid: uid.into(), path: ent.path() }));
            }
        }
        Ok(None)
    }

    /// Moves the message to `cur/` adding the mark's flag (keeping flags already set),
    /// and syncs the folder.
    pub fn mark(&self, entry: &Entry, mark: Mark) -> io::Result<()> {
        if self.mark_unsynced(entry, mark)?.is_some() {
            sync_dir(&self.path.join("cur"))?;
        }
        Ok(())
    }

    /// [`Maildir::mark`] without the folder sync (see [`Maildir::sync`]); the new path
    /// when the file moved.
    pub fn mark_unsynced(&self, entry: &Entry, mark: Mark) -> io::Result<Option<PathBuf>> {
        let name = entry.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (uid, flags) = split_name(&name);
        let add = match mark {
            Mark::Processed => 'S',
            Mark::Held => 'F',
            Mark::Checked => self.keyword_letter(super::CHECKED_KEYWORD)?,
        };
        let mut f: Vec<char> = flags.chars().filter(|c| c.is_ascii_alphabetic()).collect();
        // Maildir lists flags in ASCII order: capitals (standard flags) before keywords.
        if !f.contains(&add) {
            f.push(add);
        }
        f.sort_unstable();
        f.dedup();
        let target = self.path.join("cur").join(format!("{uid}:2,{}", f.into_iter().collect::<String>()));
        if target == entry.path {
            return Ok(None);
        }
        fs::rename(&entry.path, &target)?;
        Ok(Some(target))
    }

    /// Makes renames into `cur/` durable.
    pub fn sync(&self) -> io::Result<()> {
        sync_dir(&self.path.join("cur"))
    }

    /// The flag letter of a keyword, as Dovecot keeps them: `dovecot-keywords` lists
    /// `N name` lines and letter `a` + N marks the keyword in a file name. Adds the keyword
    /// (written through a temporary file and renamed) when it is not listed yet.
    pub fn keyword_letter(&self, keyword: &str) -> io::Result<char> {
        let path = self.path.join("dovecot-keywords");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut used = Vec::new();
        for line in text.lines() {
            if let Some((n, name)) = line.split_once(' ')
                && let Ok(n) = n.parse::<u32>()
            {
                if name == keyword && n < 26 {
                    return Ok((b'a' + n as u8) as char);
                }
                used.push(n);
            }
        }
        let n = (0..26).find(|n| !used.contains(n)).ok_or_else(|| io::Error::other("no free keyword slot in dovecot-keywords"))?;
        let tmp = self.path.join("tmp").join("dovecot-keywords.esurety");
        fs::write(&tmp, format!("{text}{n} {keyword}\n"))?;
        fs::rename(&tmp, &path)?;
        Ok((b'a' + n as u8) as char)
    }

    /// Delivers a message the way an MDA does: write to `tmp/`, fsync, rename into `new/`,
    /// fsync the folder. `unique` must be unique in this Maildir; delivering a name that is
    /// already there (in `new/` or `cur/`) does nothing, so a retry never delivers twice.
    pub fn deliver(&self, unique: &str, bytes: &[u8]) -> io::Result<bool> {
        if self.find(unique)?.is_some() {
            return Ok(false);
        }
        let tmp = self.path.join("tmp").join(unique);
        {
            use std::io::Write;
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, self.path.join("new").join(unique))?;
        sync_dir(&self.path.join("new"))?;
        Ok(true)
    }
}

/// A Maildir watched as one address's mailbox.
pub struct MaildirBox {
    pub address: String,
    pub side: crate::domain::Side,
    pub dir: Maildir,
    /// Files delivered before this instant are not read (`mail.process_since`).
    pub since: Option<std::time::SystemTime>,
    /// Where each message was last seen, so marking does not search the folder.
    pub seen: std::collections::HashMap<String, PathBuf>,
    /// Marks made since the last [`Mailbox::sync`].
    pub unsynced: bool,
    /// A file larger than this is not read whole: only its head is stored, with its size,
    /// and it gets the "too large" outcome (`limits.max_message_mib`).
    pub max_bytes: usize,
}

impl MaildirBox {
    pub fn new(address: String, side: crate::domain::Side, dir: Maildir, since: Option<std::time::SystemTime>) -> Self {
        MaildirBox { address, side, dir, since, seen: Default::default(), unsynced: false, max_bytes: usize::MAX }
    }
}

/// How much of a message over the size limit is kept: enough for its headers.
pub const HEAD_BYTES: usize = 64 << 10;

/// The message in `path`, whole, or only its first [`HEAD_BYTES`] when it is larger than
/// `max` (checked before reading); with its size on disk.
fn read_bounded(path: &std::path::Path, max: usize) -> io::Result<(Vec<u8>, usize)> {
    use std::io::Read;
    let mut f = fs::File::open(path)?;
    let size = f.metadata()?.len() as usize;
    if size <= max {
        let mut raw = Vec::with_capacity(size);
        f.read_to_end(&mut raw)?;
        return Ok((raw, size));
    }
    let mut head = Vec::with_capacity(HEAD_BYTES);
    f.take(HEAD_BYTES as u64).read_to_end(&mut head)?;
    Ok((head, size))
}

impl Mailbox for MaildirBox {
    fn address(&self) -> &str {
        &self.address
    }

    /// Stores what is new in batches (one commit for up to [`crate::store::BATCH`]
    /// messages or 64 MB).
    fn fetch_new(&mut self, store: &mut Store, now: DateTime<FixedOffset>) -> Result<usize, MailboxError> {
        let path = self.dir.path.clone();
        let unavailable = move |e: io::Error| MailboxError::Unavailable(format!("Maildir {}: {e}", path.display()));
        let waiting = self.dir.waiting().map_err(&unavailable)?;
        self.seen = waiting.iter().map(|e| (e.uid.clone(), e.path.clone())).collect();
        let mut fresh = Vec::new();
        for entry in waiting {
            if store.known(&self.address, &entry.uid)?.is_some() {
                continue;
            }
            if let Some(since) = self.since
                && fs::metadata(&entry.path).and_then(|m| m.modified()).is_ok_and(|t| t < since)
            {
                continue; // older than process_since: left to people
            }
            fresh.push(entry);
        }
        let mut n = 0;
        let mut rest = fresh.as_slice();
        while !rest.is_empty() {
            let address = &self.address;
            let side = self.side;
            let max_bytes = self.max_bytes;
            rest = store.batch(|store| -> Result<&[Entry], MailboxError> {
                let (mut count, mut bytes) = (0, 0);
                let budget = crate::store::Budget::start();
                let mut rest = rest;
                while let Some((entry, tail)) = rest.split_first() {
                    if budget.spent(count) || bytes > 64 << 20 {
                        break;
                    }
                    rest = tail;
                    let (raw, size) = match read_bounded(&entry.path, max_bytes) {
                        Ok(read) => read,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // moved by a client meanwhile
                        Err(e) => return Err(unavailable(e)),
                    };
                    count += 1;
                    bytes += raw.len();
                    let message_id = super::letter::message_id(&raw);
                    let incoming = Incoming { mailbox: address.clone(), side, source_uid: entry.uid.clone(), raw, size };
                    if store.record_incoming(&incoming, message_id.as_deref(), now)?.is_some() {
                        tracing::info!(event = "received", mailbox = %address, message_id = message_id.as_deref().unwrap_or(""), uid = %entry.uid);
                        n += 1;
                    }
                }
                Ok(rest)
            })?;
        }
        Ok(n)
    }

    fn mark(&mut self, source_uid: &str, mark: Mark) -> Result<(), MailboxError> {
        let unavailable = |e: io::Error| MailboxError::Unavailable(format!("Maildir {}: {e}", self.dir.path.display()));
        let entry = match self.seen.get(source_uid).filter(|p| p.is_file()) {
            Some(path) => Some(Entry { uid: source_uid.to_string(), path: path.clone() }),
            None => self.dir.find(source_uid).map_err(unavailable)?,
        };
        let Some(entry) = entry else {
            return Ok(()); // deleted or moved away by a person: nothing to mark
        };
        let moved = self.dir.mark_unsynced(&entry, mark).map_err(unavailable)?;
        if let Some(path) = moved {
            self.seen.insert(source_uid.to_string(), path);
            self.unsynced = true;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), MailboxError> {
        if std::mem::take(&mut self.unsynced) {
            self.dir.sync().map_err(|e| MailboxError::Unavailable(format!("Maildir {}: {e}", self.dir.path.display())))?;
        }
        Ok(())
    }
}

/// `1700000000.M1P2.host:2,FS` → (`1700000000.M1P2.host`, `FS`).
pub fn split_name(name: &str) -> (&str, &str) {
    match name.rsplit_once(":2,") {
        Some((uid, flags)) => (uid, flags),
        None => (name, ""),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_list_mark_and_deliver_again() {
        let t = crate::testing::tempdir().unwrap();
        let md = Maildir::new(t.path().join("a@b.example"));
        md.create().unwrap();
        assert!(md.deliver("100.x", b"one").unwrap());
        assert!(md.deliver("200.y", b"two").unwrap());
        let w = md.waiting().unwrap();
        assert_eq!(w.iter().map(|e| e.uid.as_str()).collect::<Vec<_>>(), ["100.x", "200.y"]);
        md.mark(&w[0], Mark::Processed).unwrap();
        md.mark(&w[1], Mark::Held).unwrap();
        assert!(t.path().join("a@b.example/cur/100.x:2,S").is_file());
        assert!(t.path().join("a@b.example/cur/200.y:2,F").is_file());
        assert_eq!(md.waiting().unwrap().len(), 2, "marking moves, never removes");
        let checked = md.find("100.x").unwrap().unwrap();
        md.mark(&checked, Mark::Checked).unwrap();
        assert!(t.path().join("a@b.example/cur/100.x:2,Sa").is_file());
        assert_eq!(fs::read_to_string(t.path().join("a@b.example/dovecot-keywords")).unwrap(), "0 esurety-checked\n");
        assert!(!md.deliver("100.x", b"again").unwrap(), "a second delivery of the same name is a no-op");
        assert_eq!(fs::read(md.find("100.x").unwrap().unwrap().path).unwrap(), b"one");
    }
}
