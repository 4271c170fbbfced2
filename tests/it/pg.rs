//! A real PostgreSQL for the tests: the cluster `tests/run.sh` started (`ESURETY_TEST_PG`,
//! its base URL), or one this test process starts for itself when run alone
//! (`tests/servers/pg.sh`, as the `postgres` user; stopped when the process exits). Each
//! test gets a database of its own. Tests that stop or crash the server start a cluster
//! of their own ([`Cluster::own`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether the suite runs on PostgreSQL (`ESURETY_TEST_STORE=postgres`), else on SQLite files.
pub fn on_postgres() -> bool {
    std::env::var("ESURETY_TEST_STORE").as_deref() == Ok("postgres")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/pg.sh")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A cluster in a directory of its own under /tmp (the postgres user must enter it).
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
}

impl Cluster {
    /// Starts a new cluster (about a second).
    pub fn own() -> Cluster {
        let dir = PathBuf::from(String::from_utf8(Command::new("mktemp").args(["-d", "/tmp/esurety-pg.XXXXXX"]).output().unwrap().stdout).unwrap().trim());
        let port = free_port();
        let out = Command::new(script()).arg("start").arg(&dir).arg(port.to_string()).output().unwrap();
        assert!(out.status.success(), "PostgreSQL did not start: {}", String::from_utf8_lossy(&out.stderr));
        Cluster { dir, port }
    }

    /// A cluster whose TCP clients must use TLS, with the server certificate of `tls` (a
    /// folder made by `tests/servers/ca.sh`); the tests' own client comes by its socket.
    pub fn own_tls(tls: &Path) -> Cluster {
        let dir = PathBuf::from(String::from_utf8(Command::new("mktemp").args(["-d", "/tmp/esurety-pg.XXXXXX"]).output().unwrap().stdout).unwrap().trim());
        let port = free_port();
        let out = Command::new(script()).arg("start").arg(&dir).arg(port.to_string()).arg(tls).output().unwrap();
        assert!(out.status.success(), "PostgreSQL did not start: {}", String::from_utf8_lossy(&out.stderr));
        Cluster { dir, port }
    }

    /// A new database, made through the server's socket: its TCP URL.
    pub fn database_by_socket(&self) -> String {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!("s_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst));
        let mut c = postgres::Client::connect(&format!("host={} port={} user=postgres dbname=postgres", self.dir.display(), self.port), postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        format!("{}/{name}", self.base_url())
    }

    pub fn base_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// `pg_ctl stop -m immediate`: the server crashes as on a power cut of its process.
    pub fn crash(&self) {
        let out = Command::new(script()).arg("stop").arg(&self.dir).arg("immediate").output().unwrap();
        assert!(out.status.success());
    }

    /// A streaming standby of `primary` (`pg_basebackup -R`), on a port of its own. With
    /// `sync`, the primary then waits for it at each commit (`synchronous_standby_names`,
    /// set once it streams: before, the first commit would wait for ever), so what the
    /// primary acknowledged is on the standby too. The standby's own configuration does not
    /// have it: once promoted, it waits for nobody.
    pub fn standby_of(primary: &Cluster, sync: bool) -> Cluster {
        let dir = PathBuf::from(String::from_utf8(Command::new("mktemp").args(["-d", "/tmp/esurety-pg.XXXXXX"]).output().unwrap().stdout).unwrap().trim());
        let port = free_port();
        let out = Command::new(script()).arg("standby").arg(&dir).arg(port.to_string()).arg(primary.port.to_string()).output().unwrap();
        assert!(out.status.success(), "the standby did not start: {}", String::from_utf8_lossy(&out.stderr));
        let standby = Cluster { dir, port };
        let mut c = postgres::Client::connect(&format!("{}/postgres", primary.base_url()), postgres::NoTls).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while c.query_one("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'", &[]).unwrap().get::<_, i64>(0) == 0 {
            assert!(std::time::Instant::now() < deadline, "the standby does not stream");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if sync {
            c.batch_execute("ALTER SYSTEM SET synchronous_standby_names = '*'").unwrap();
            c.batch_execute("SELECT pg_reload_conf()").unwrap();
            while c.query_one("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'", &[]).unwrap().get::<_, i64>(0) == 0 {
                assert!(std::time::Instant::now() < deadline, "the standby is not synchronous");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        standby
    }

    /// The standby becomes a primary (`pg_ctl promote`, waited for).
    pub fn promote(&self) {
        let out = Command::new(script()).arg("promote").arg(&self.dir).output().unwrap();
        assert!(out.status.success(), "the standby was not promoted: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// SIGKILL to the server's main process (its sessions end with it): the machine is gone.
    pub fn kill(&self) {
        let out = Command::new(script()).arg("kill").arg(&self.dir).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn restart(&self) {
        let out = Command::new(script()).arg("restart").arg(&self.dir).arg(self.port.to_string()).output().unwrap();
        assert!(out.status.success(), "PostgreSQL did not start again: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).arg("immediate").output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static PRIVATE: OnceLock<Cluster> = OnceLock::new();

extern "C" fn stop_private() {
    if let Some(c) = PRIVATE.get() {
        let _ = Command::new(script()).arg("stop").arg(&c.dir).arg("immediate").output();
        let _ = std::fs::remove_dir_all(&c.dir);
    }
}

unsafe extern "C" {
    fn atexit(f: extern "C" fn()) -> i32;
}

/// The shared cluster's base URL (`postgres://postgres@127.0.0.1:PORT`).
pub fn shared() -> String {
    if let Ok(url) = std::env::var("ESURETY_TEST_PG") {
        return url.trim_end_matches('/').to_string();
    }
    PRIVATE.get_or_init(|| {
        // SAFETY: registers a plain function with the C library, once.
        unsafe { atexit(stop_private) };
        Cluster::own()
    }).base_url()
}

/// A new empty database on the shared cluster: its URL.
pub fn database() -> String {
    database_on(&shared())
}

pub fn database_on(base: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let name = format!("t_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst));
    let mut c = postgres::Client::connect(&format!("{base}/postgres"), postgres::NoTls).unwrap();
    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
    c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    format!("{base}/{name}")
}

/// The test's view of a store, as any SQL client of it would see it.
pub enum Db {
    Sqlite(rusqlite::Connection, PathBuf),
    Pg(postgres::Client),
}

impl Db {
    pub fn open(store: &esurety::config::StoreAt) -> Db {
        // Made first by esurety if no daemon has yet.
        drop(esurety::store::Store::open(store).unwrap());
        match store {
            esurety::config::StoreAt::File(p) => Db::Sqlite(rusqlite::Connection::open(p).unwrap(), p.clone()),
            esurety::config::StoreAt::Postgres(t) => {
                // Several hosts: the primary, as esurety takes it (a failover's old primary
                // may still answer, read-only).
                let url = if t.url.contains(',') && !t.url.contains("target_session_attrs") {
                    format!("{}{}target_session_attrs=read-write", t.url, if t.url.contains('?') { '&' } else { '?' })
                } else {
                    t.url.clone()
                };
                Db::Pg(postgres::Client::connect(&url, postgres::NoTls).unwrap())
            }
        }
    }

    /// The one integer a query gives (a count).
    pub fn count(&mut self, sql: &str) -> i64 {
        match self {
            Db::Sqlite(c, _) => c.query_row(sql, [], |r| r.get(0)).unwrap(),
            Db::Pg(c) => c.query_one(sql, &[]).unwrap().get(0),
        }
    }

    /// Every row of a query whose columns are text (or null).
    pub fn texts(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self {
            Db::Sqlite(c, _) => {
                let mut st = c.prepare(sql).unwrap();
                let n = st.column_count();
                st.query_map([], |r| (0..n).map(|i| r.get::<_, Option<String>>(i)).collect::<Result<Vec<_>, _>>()).unwrap().map(Result::unwrap).collect()
            }
            Db::Pg(c) => c.query(sql, &[]).unwrap().iter().map(|r| (0..r.len()).map(|i| r.get::<_, Option<String>>(i)).collect()).collect(),
        }
    }

    pub fn execute(&mut self, sql: &str) {
        match self {
            Db::Sqlite(c, _) => c.execute_batch(sql).unwrap(),
            Db::Pg(c) => c.batch_execute(sql).unwrap(),
        }
    }

    /// Where in the store `needle` is found: each table and column that holds it in any
    /// row (text or bytes), and for SQLite the file itself (its deleted pages too, after a
    /// checkpoint). Empty when nowhere.
    pub fn find(&mut self, needle: &str) -> Vec<String> {
        let mut found = Vec::new();
        match self {
            Db::Sqlite(c, path) => {
                let tables: Vec<String> = c.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").unwrap()
                    .query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
                assert!(tables.len() > 10, "{tables:?}");
                for table in &tables {
                    let columns: Vec<String> = c.prepare(&format!("SELECT name FROM pragma_table_info('{table}')")).unwrap()
                        .query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
                    for column in columns {
                        let n: i64 = c.query_row(&format!("SELECT count(*) FROM \"{table}\" WHERE instr(CAST(\"{column}\" AS BLOB), CAST(?1 AS BLOB)) > 0"), [needle], |r| r.get(0)).unwrap();
                        if n > 0 {
                            found.push(format!("{table}.{column}"));
                        }
                    }
                }
                c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
                let file = std::fs::read(&*path).unwrap();
                if file.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push("the store's file".into());
                }
            }
            Db::Pg(c) => {
                let columns = c.query(
                    "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
                     WHERE table_schema = 'public' AND data_type IN ('text', 'bytea')", &[]).unwrap();
                assert!(columns.len() > 30, "{}", columns.len());
                for col in columns {
                    let (table, column, ty): (String, String, String) = (col.get(0), col.get(1), col.get(2));
                    let test = if ty == "bytea" { format!("position(convert_to($1, 'UTF8') in \"{column}\") > 0") } else { format!("strpos(\"{column}\", $1) > 0") };
                    let n: i64 = c.query_one(&format!("SELECT count(*) FROM \"{table}\" WHERE {test}"), &[&needle]).unwrap().get(0);
                    if n > 0 {
                        found.push(format!("{table}.{column}"));
                    }
                }
            }
        }
        found
    }
}
