//! The log subscriber, and the writer behind it.
//!
//! Every request logs a line, so how a line is written is on the hot path: a
//! `write(2)` per line, or waking a writer thread per line, cost a third of a cached
//! introspection (README, "Performance"). Lines are appended to a shared buffer
//! instead, and a thread writes the buffer to standard error every 20 ms. A logger
//! that finds the buffer past 1 MiB (standard error is slower than the lines) writes
//! it out itself, so lines are never dropped and memory stays bounded. [`LogGuard`]
//! writes what is left when the process ends normally; a killed process loses at most
//! the last 20 ms of lines.

use crate::config::LogFormat;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often buffered lines are written.
const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// Past this, the logger that crosses it writes the buffer itself.
const MAX_BUFFERED_BYTES: usize = 1024 * 1024;

/// Lines waiting to be written.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    /// Writes out what is buffered. The lock is held across the write so that lines
    /// keep their order.
    fn flush(&self) {
        let mut pending = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !pending.is_empty() {
            let _ = std::io::stderr().lock().write_all(&pending);
            pending.clear();
        }
    }
}

/// Writes the buffered lines when dropped; hold it until the process ends.
pub struct LogGuard(Buffer);

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.0.flush();
    }
}

/// Installs the log subscriber: one line per event, text or JSON, on standard error.
/// `RUST_LOG` filters. Colours only when standard error is a terminal.
pub fn init_logging(format: LogFormat) -> LogGuard {
    let buffer = Buffer::default();
    let flusher = buffer.clone();
    let spawned = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || loop {
            std::thread::sleep(FLUSH_EVERY);
            flusher.flush();
        });
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match (spawned.is_ok(), format) {
        (true, LogFormat::Json) => {
            let buffer = buffer.clone();
            builder
                .with_writer(move || LineWriter(buffer.clone()))
                .json()
                .try_init()
        }
        (true, LogFormat::Text) => {
            let buffer = buffer.clone();
            builder
                .with_writer(move || LineWriter(buffer.clone()))
                .try_init()
        }
        // Without a writer thread, every line is written at once.
        (false, LogFormat::Json) => builder.with_writer(std::io::stderr).json().try_init(),
        (false, LogFormat::Text) => builder.with_writer(std::io::stderr).try_init(),
    };
    let _ = installed;
    LogGuard(buffer)
}

/// One event's writer: the formatter hands it the whole line at once.
struct LineWriter(Buffer);

impl Write for LineWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut pending = self.0 .0.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend_from_slice(line);
        if pending.len() > MAX_BUFFERED_BYTES {
            std::io::stderr().lock().write_all(&pending)?;
            pending.clear();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
