//! The keys the stand-in accepts: given at start, and read from a keys file that is re-read
//! when it changes, so a test can rotate or revoke a key while requests are in flight.
//!
//! Keys are held as SHA-256 digests, never as text: the server compares digests and reports
//! fingerprints.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use agentfleet_config::Fingerprint;
use sha2::{Digest, Sha256};

/// How often the keys file is looked at for a change.
pub const KEYS_FILE_POLL: Duration = Duration::from_millis(50);

/// What a presented key is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// One of the accepted keys.
    Accepted,
    /// Not one of them.
    Refused,
}

/// The accepted keys.
#[derive(Debug, Default)]
pub struct KeyRing {
    fixed: HashSet<[u8; 32]>,
    from_file: RwLock<HashSet<[u8; 32]>>,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl KeyRing {
    /// Keys given at start (`--key`).
    pub fn new(keys: &[String]) -> Self {
        Self {
            fixed: keys.iter().map(|key| digest(key)).collect(),
            from_file: RwLock::default(),
        }
    }

    /// Whether `key` is accepted now.
    pub fn verdict(&self, key: &str) -> Verdict {
        let digest = digest(key);
        let file = self.from_file.read().unwrap_or_else(|p| p.into_inner());
        if self.fixed.contains(&digest) || file.contains(&digest) {
            Verdict::Accepted
        } else {
            Verdict::Refused
        }
    }

    /// Whether any key is accepted at all.
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty()
            && self
                .from_file
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
    }

    /// Replaces the keys read from the file with the lines of `text` (blank lines and `#`
    /// comments skipped); returns how many there are.
    pub fn load(&self, text: &str) -> usize {
        let keys: HashSet<[u8; 32]> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(digest)
            .collect();
        let count = keys.len();
        *self.from_file.write().unwrap_or_else(|p| p.into_inner()) = keys;
        count
    }
}

/// The fingerprint a presented key is counted under.
pub fn fingerprint(key: &str) -> String {
    Fingerprint::of(key).to_string()
}

/// Reads the keys file now; errors name the file.
pub fn read_keys_file(ring: &KeyRing, path: &Path) -> Result<usize, String> {
    std::fs::read_to_string(path)
        .map(|text| ring.load(&text))
        .map_err(|error| format!("cannot read keys file {}: {}", path.display(), error.kind()))
}

/// What identifies a file's content without reading it: modification time, size, inode.
pub type Stamp = Option<(SystemTime, u64, u64)>;

/// The file's stamp now.
pub fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len(), metadata.ino()))
}

/// Re-reads `path` whenever its modification time, size or identity changes from `last` (an
/// editor's rename, a Kubernetes `..data` swap). `last` must be taken before the first read, so
/// that a change made while the server starts is not missed. An unreadable file keeps the last
/// keys, with a warning.
pub async fn watch_keys_file(ring: Arc<KeyRing>, path: PathBuf, mut last: Stamp) {
    loop {
        tokio::time::sleep(KEYS_FILE_POLL).await;
        let now = stamp(&path);
        if now == last {
            continue;
        }
        last = now;
        match read_keys_file(&ring, &path) {
            Ok(count) => eprintln!(
                "standin: keys file {} re-read: {count} keys",
                path.display()
            ),
            Err(error) => eprintln!("standin: warning: {error}; keeping the previous keys"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_and_file_keys_are_accepted_and_file_keys_can_be_revoked() {
        let ring = KeyRing::new(&["fixed".to_owned()]);
        assert_eq!(ring.verdict("fixed"), Verdict::Accepted);
        assert_eq!(ring.verdict("rotated"), Verdict::Refused);
        assert_eq!(ring.load("# comment\nrotated\n\nother\n"), 2);
        assert_eq!(ring.verdict("rotated"), Verdict::Accepted);
        ring.load("other\n");
        assert_eq!(ring.verdict("rotated"), Verdict::Refused);
        assert_eq!(ring.verdict("fixed"), Verdict::Accepted);
    }
}
