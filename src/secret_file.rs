//! Files only their owner may read: the TLS key and the master key.

use std::fs::OpenOptions;
use std::path::Path;

/// Writes `bytes` to `path` (its folder created when missing), readable by the owner
/// only, and flushes it to disk.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    write_with(options, path, bytes)
}

/// [`write`] to a file that must not exist yet: when another process made it first,
/// the error is `AlreadyExists` and its file stays as it is.
pub(crate) fn create_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    write_with(options, path, bytes)
}

fn write_with(mut options: OpenOptions, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    std::io::Write::write_all(&mut file, bytes)?;
    file.sync_all()
}
