//! PDFs are read in a separate process: a hostile PDF (a decompression bomb, a deep object
//! tree, a parser bug) can exhaust memory or the stack or loop, and none of that may stop
//! the daemon. The worker (`esurety pdf-worker`) caps its own address space; the daemon
//! gives each PDF a deadline, and kills and restarts the worker when it is missed or when
//! the worker dies. Both sides speak length-prefixed frames on stdin/stdout.

use super::pdf::{self, PdfError, PdfText};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

/// Reads PDFs into text. The daemon uses [`Isolated`]; pure tests and benchmarks may use
/// [`InProcess`].
pub trait PdfReader: Send + Sync {
    fn read(&self, bytes: &[u8]) -> Result<PdfText, PdfError>;
}

pub struct InProcess;

impl PdfReader for InProcess {
    fn read(&self, bytes: &[u8]) -> Result<PdfText, PdfError> {
        std::panic::catch_unwind(|| pdf::read(bytes)).unwrap_or_else(|_| Err(PdfError::Crashed("panic".into())))
    }
}

pub struct Isolated {
    exe: PathBuf,
    timeout: Duration,
    memory_limit: u64,
    limits: pdf::PdfLimits,
    child: Mutex<Option<Worker>>,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    responses: Receiver<Option<Vec<u8>>>,
}

impl Isolated {
    /// `exe` is the esurety binary (usually `std::env::current_exe()`).
    pub fn new(exe: PathBuf, timeout: Duration, memory_limit: u64) -> Self {
        Isolated { exe, timeout, memory_limit, limits: pdf::PdfLimits::default(), child: Mutex::new(None) }
    }

    /// The reader the configuration's `[limits]` ask for.
    pub fn configured(exe: PathBuf, l: &crate::config::Limits) -> Self {
        Isolated {
            exe,
            timeout: Duration::from_secs(l.pdf_seconds),
            memory_limit: l.pdf_memory_mib.saturating_mul(1 << 20),
            limits: pdf::PdfLimits { max_bytes: l.pdf_max_bytes(), max_pages: l.pdf_max_pages },
            child: Mutex::new(None),
        }
    }

    fn spawn(&self) -> std::io::Result<Worker> {
        let mut child = Command::new(&self.exe)
            .arg("pdf-worker")
            .env("ESURETY_PDF_WORKER_MEMORY", self.memory_limit.to_string())
            .env("ESURETY_PDF_WORKER_MAX_BYTES", self.limits.max_bytes.to_string())
            .env("ESURETY_PDF_WORKER_MAX_PAGES", self.limits.max_pages.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || loop {
            let frame = read_frame(&mut stdout, MAX_ANSWER).ok().flatten();
            let end = frame.is_none();
            if tx.send(frame).is_err() || end {
                break;
            }
        });
        Ok(Worker { child, stdin, responses: rx })
    }
}

impl PdfReader for Isolated {
    fn read(&self, bytes: &[u8]) -> Result<PdfText, PdfError> {
        if bytes.len() > self.limits.max_bytes {
            return Err(PdfError::TooLarge(bytes.len()));
        }
        let mut slot = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(self.spawn().map_err(|e| PdfError::Crashed(format!("cannot start the PDF worker: {e}")))?);
        }
        let w = slot.as_mut().expect("a worker");
        let sent = write_frame(&mut w.stdin, bytes);
        let answer = match sent {
            Ok(()) => w.responses.recv_timeout(self.timeout),
            Err(_) => Ok(None),
        };
        let result = match answer {
            Ok(Some(frame)) => serde_json::from_slice::<Result<PdfText, PdfError>>(&frame)
                .unwrap_or_else(|e| Err(PdfError::Crashed(format!("bad answer: {e}")))),
            Ok(None) | Err(RecvTimeoutError::Disconnected) => Err(PdfError::Crashed("the PDF worker stopped".into())),
            Err(RecvTimeoutError::Timeout) => Err(PdfError::Timeout),
        };
        if matches!(result, Err(PdfError::Crashed(_) | PdfError::Timeout)) {
            if let Some(mut w) = slot.take() {
                let _ = w.child.kill();
                let _ = w.child.wait();
            }
            tracing::warn!(event = "pdf_worker_restarted", error = ?result.as_ref().err());
        }
        result
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        if let Some(mut w) = self.child.lock().ok().and_then(|mut s| s.take()) {
            drop(w.stdin);
            let _ = w.child.wait();
        }
    }
}

/// The worker's side: limit our own memory, then answer frames until stdin closes.
pub fn serve() -> std::io::Result<()> {
    let limit: u64 = std::env::var("ESURETY_PDF_WORKER_MEMORY").ok().and_then(|s| s.parse().ok()).unwrap_or(1 << 30);
    // SAFETY: setrlimit with a valid, initialised struct only changes this process's limit.
    unsafe {
        let rl = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
        libc::setrlimit(libc::RLIMIT_AS, &rl);
    }
    let env = |k: &str| std::env::var(k).ok().and_then(|s| s.parse().ok());
    let d = pdf::PdfLimits::default();
    let limits = pdf::PdfLimits { max_bytes: env("ESURETY_PDF_WORKER_MAX_BYTES").unwrap_or(d.max_bytes), max_pages: env("ESURETY_PDF_WORKER_MAX_PAGES").unwrap_or(d.max_pages) };
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    while let Some(req) = read_frame(&mut stdin, limits.max_bytes + (1 << 20))? {
        let result = pdf::read_with(&req, limits);
        let bytes = serde_json::to_vec(&result).unwrap_or_else(|_| b"{\"Err\":{\"Crashed\":\"encode\"}}".to_vec());
        write_frame(&mut stdout, &bytes)?;
    }
    Ok(())
}

/// The largest answer taken from the worker (the text of every page, as JSON).
const MAX_ANSWER: usize = 64 << 20;

fn write_frame(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(&(bytes.len() as u64).to_be_bytes())?;
    w.write_all(bytes)?;
    w.flush()
}

fn read_frame(r: &mut impl Read, max: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 8];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u64::from_be_bytes(len) as usize;
    if len > max {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "frame too large"));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}
