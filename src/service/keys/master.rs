//! The master key: 32 random bytes in a file of their own, under which every tenant's
//! private signing key is sealed (AES-256-GCM). It never enters the database, a log or
//! an answer; without it the sealed keys are useless to whoever holds the database.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;

const KEY_BYTES: usize = 32;

/// Why the master key file could not be used; names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} does not hold a master key: expected {KEY_BYTES} bytes in base64 on one line")]
    Malformed { path: String },
    #[error("{path} may be read by every user (mode {mode:04o}): run `chmod 600 {path}` (or `chmod 640 {path}` to share it with the file's group)")]
    Exposed { path: String, mode: u32 },
    #[error("no randomness for a new master key")]
    Random,
}

/// A sealed value that does not open: a wrong master key, or a value bound to
/// something else.
#[derive(Debug, thiserror::Error)]
#[error("the sealed value does not open under this master key")]
pub struct Unopened;

pub struct MasterKey(LessSafeKey);

/// The key's bytes never reach a log line, even through `{:?}`.
impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// The key in `path`; `Ok(None)` when there is no such file. A file that users
    /// other than its owner and group may read is refused: the key would be theirs.
    pub fn read(path: &Path) -> Result<Option<Self>, MasterKeyError> {
        let mut file = match std::fs::File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io_error(path, source)),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file
                .metadata()
                .map_err(|e| io_error(path, e))?
                .permissions()
                .mode();
            if mode & 0o007 != 0 {
                return Err(MasterKeyError::Exposed {
                    path: path.display().to_string(),
                    mode: mode & 0o7777,
                });
            }
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).map_err(|e| io_error(path, e))?;
        let malformed = || MasterKeyError::Malformed {
            path: path.display().to_string(),
        };
        let bytes = STANDARD.decode(text.trim()).map_err(|_| malformed())?;
        if bytes.len() != KEY_BYTES {
            return Err(malformed());
        }
        Self::from_bytes(&bytes).map(Some).ok_or_else(malformed)
    }

    /// A new random key, written to `path` readable by the owner only. When another
    /// instance wrote the file first, its key is the one.
    pub fn generate(path: &Path) -> Result<Self, MasterKeyError> {
        let mut bytes = [0u8; KEY_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| MasterKeyError::Random)?;
        let text = format!("{}\n", STANDARD.encode(bytes));
        match crate::secret_file::create_new(path, text.as_bytes()) {
            Ok(()) => Self::from_bytes(&bytes).ok_or(MasterKeyError::Random),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::read(path)?
                .ok_or_else(|| MasterKeyError::Malformed {
                    path: path.display().to_string(),
                }),
            Err(e) => Err(io_error(path, e)),
        }
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        Some(MasterKey(LessSafeKey::new(key)))
    }

    /// `plaintext` sealed and bound to `context`: a random nonce, then the ciphertext
    /// and its tag. It opens only with this key and the same `context`.
    #[allow(
        clippy::expect_used,
        reason = "without the system's randomness nothing can be sealed safely"
    )]
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system's randomness");
        let mut sealed = nonce.to_vec();
        let mut body = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut body,
            )
            .expect("AES-GCM seals any input under 64 GiB");
        sealed.extend_from_slice(&body);
        sealed
    }

    /// What [`MasterKey::seal`] sealed with `context`.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, Unopened> {
        if sealed.len() < NONCE_LEN {
            return Err(Unopened);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unopened)?;
        let mut body = body.to_vec();
        let plaintext = self
            .0
            .open_in_place(nonce, Aad::from(context), &mut body)
            .map_err(|_| Unopened)?;
        Ok(plaintext.to_vec())
    }
}

fn io_error(path: &Path, source: std::io::Error) -> MasterKeyError {
    MasterKeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_read_back_and_opens_what_it_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/master.key");
        assert!(MasterKey::read(&path).unwrap().is_none());
        let key = MasterKey::generate(&path).unwrap();
        let sealed = key.seal(b"private", b"foo.com");
        let again = MasterKey::read(&path).unwrap().unwrap();
        assert_eq!(again.open(&sealed, b"foo.com").unwrap(), b"private");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_key_every_user_may_read_is_refused_with_the_chmod_that_fixes_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        MasterKey::generate(&path).unwrap();
        let set = |mode| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
        for exposed in [0o644, 0o604, 0o601] {
            set(exposed).unwrap();
            let message = MasterKey::read(&path).unwrap_err().to_string();
            let fix = format!("chmod 600 {}", path.display());
            assert!(message.contains(&fix), "{message}");
            assert!(message.contains(&format!("{exposed:04o}")), "{message}");
        }
        // The group may share it (a Kubernetes Secret mounted 0440).
        for shared in [0o640, 0o440, 0o400] {
            set(shared).unwrap();
            assert!(MasterKey::read(&path).unwrap().is_some(), "{shared:o}");
        }
    }

    #[test]
    fn a_key_written_first_by_another_instance_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let first = MasterKey::generate(&path).unwrap();
        let text = std::fs::read(&path).unwrap();
        let second = MasterKey::generate(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), text);
        let sealed = first.seal(b"private", b"x");
        assert_eq!(second.open(&sealed, b"x").unwrap(), b"private");
    }

    #[test]
    fn another_key_another_context_or_a_changed_byte_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate(&dir.path().join("a")).unwrap();
        let other = MasterKey::generate(&dir.path().join("b")).unwrap();
        let sealed = key.seal(b"private", b"foo.com");
        assert!(other.open(&sealed, b"foo.com").is_err());
        assert!(key.open(&sealed, b"bar.com").is_err());
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 1;
            assert!(key.open(&tampered, b"foo.com").is_err(), "byte {i}");
        }
        assert!(key.open(&sealed[..5], b"foo.com").is_err());
        assert_ne!(key.seal(b"private", b"foo.com"), sealed, "nonces repeat");
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused_without_echoing_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, "c2hvcnQ=\n").unwrap();
        let e = MasterKey::read(&path).unwrap_err().to_string();
        assert!(e.contains("master.key") && !e.contains("c2hvcnQ"), "{e}");
        assert_eq!(
            format!("{:?}", MasterKey::generate(&dir.path().join("m")).unwrap()),
            "MasterKey(..)"
        );
    }
}
