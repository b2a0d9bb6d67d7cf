//! Bearer tokens that expire: Microsoft Entra access tokens for Azure OpenAI.
//!
//! A token source is read again before the token it gave expires (five minutes ahead, read from
//! the token's own `exp` claim), and a file source again whenever the file changes, so a worker
//! never sends a token it could have known was stale. A token captured once and kept is how
//! fleets end up failing "hourly".

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::credential::CurrentKey;
use crate::env::ProcessEnv;
use crate::fingerprint::Fingerprint;
use crate::model::CredentialSource;
use crate::resolve::{self, Failure, Origin};
use crate::secret::Secret;

/// How long before expiry a token is replaced.
pub const REFRESH_AHEAD: Duration = Duration::from_secs(5 * 60);

/// How long a token whose expiry cannot be read is kept before it is read again.
pub const UNKNOWN_EXPIRY_TTL: Duration = Duration::from_secs(10 * 60);

/// When a JWT expires, from its `exp` claim; `None` for anything that is not a JWT with one.
pub fn jwt_expiry(token: &str) -> Option<SystemTime> {
    let payload = token.trim().split('.').nth(1)?;
    let json = base64url_decode(payload)?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    (exp > 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(exp))
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// What identifies a file's content without reading it.
type Stamp = (SystemTime, u64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len(), metadata.ino()))
}

#[derive(Debug)]
struct Cached {
    key: CurrentKey,
    expires: Option<SystemTime>,
    file: Option<(PathBuf, Option<Stamp>)>,
    fetched: SystemTime,
}

/// A token, and where to get the next one.
#[derive(Debug)]
pub struct TokenSource {
    source: CredentialSource,
    base_dir: PathBuf,
    cached: Mutex<Option<Cached>>,
}

impl TokenSource {
    /// A source read relative to `base_dir`, seeded with a token already read (by `check`).
    pub fn new(
        source: CredentialSource,
        base_dir: PathBuf,
        seed: Option<(Arc<Secret>, Origin)>,
    ) -> Self {
        let cached = seed.map(|(secret, origin)| Self::cache(secret, &origin, &base_dir, 1));
        Self {
            source,
            base_dir,
            cached: Mutex::new(cached),
        }
    }

    fn cache(secret: Arc<Secret>, origin: &Origin, base_dir: &Path, generation: u64) -> Cached {
        let file = match origin {
            Origin::File { path } | Origin::Dotenv { path, .. } => Some(base_dir.join(path)),
            Origin::EnvFile { path, .. } => Some(path.clone()),
            Origin::Env { .. } | Origin::Command { .. } => None,
        }
        .map(|path| {
            let stamp = stamp(&path);
            (path, stamp)
        });
        Cached {
            expires: jwt_expiry(secret.expose()),
            key: CurrentKey {
                fingerprint: Fingerprint::of(secret.expose().trim()),
                secret,
                generation,
            },
            file,
            fetched: SystemTime::now(),
        }
    }

    /// The token held now, if one was ever read.
    pub fn current(&self) -> Option<CurrentKey> {
        self.lock().as_ref().map(|cached| cached.key.clone())
    }

    /// When the token held now expires, if it says.
    pub fn expires(&self) -> Option<SystemTime> {
        self.lock().as_ref().and_then(|cached| cached.expires)
    }

    /// Reads the source again if the token is missing, about to expire, or its file changed,
    /// and returns the token to send. This may run a command: call it off the async runtime.
    /// When reading fails and a token is still held, that token is kept and the error returned.
    pub fn refresh_if_stale(&self) -> Result<CurrentKey, Failure> {
        let mut cached = self.lock();
        let now = SystemTime::now();
        let stale = match cached.as_ref() {
            None => true,
            Some(held) => {
                let expiring = held
                    .expires
                    .is_some_and(|expires| now + REFRESH_AHEAD >= expires);
                let aged = held.expires.is_none()
                    && now.duration_since(held.fetched).unwrap_or_default() > UNKNOWN_EXPIRY_TTL;
                let changed = held
                    .file
                    .as_ref()
                    .is_some_and(|(path, seen)| stamp(path) != *seen);
                let can_change =
                    !matches!(self.source, CredentialSource::Env { .. }) || held.file.is_some();
                can_change && (expiring || aged || changed)
            }
        };
        if !stale && let Some(held) = cached.as_ref() {
            return Ok(held.key.clone());
        }
        let read = resolve::read(&self.source, &self.base_dir, &ProcessEnv)?;
        let generation = match cached.as_ref() {
            Some(held) if Fingerprint::of(read.value.expose().trim()) == held.key.fingerprint => {
                held.key.generation
            }
            Some(held) => held.key.generation + 1,
            None => 1,
        };
        let fresh = Self::cache(
            Arc::new(read.value),
            &read.origin,
            &self.base_dir,
            generation,
        );
        let key = fresh.key.clone();
        *cached = Some(fresh);
        Ok(key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A JWT-shaped token (unsigned) whose `exp` is `exp` seconds after the epoch.
    pub(crate) fn token(exp: u64, tag: &str) -> String {
        fn encode(bytes: &[u8]) -> String {
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let b = [
                    chunk[0],
                    *chunk.get(1).unwrap_or(&0),
                    *chunk.get(2).unwrap_or(&0),
                ];
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                for i in 0..=chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
        let header = encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let payload = encode(
            format!(r#"{{"aud":"https://cognitiveservices.azure.com","exp":{exp},"tag":"{tag}"}}"#)
                .as_bytes(),
        );
        format!("{header}.{payload}.c2lnbmF0dXJl")
    }

    fn seconds_from_now(offset: i64) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        (now as i64 + offset) as u64
    }

    #[test]
    fn expiry_is_read_from_the_token() {
        assert_eq!(
            jwt_expiry(&token(1_700_000_000, "a")),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(jwt_expiry("not-a-jwt"), None);
        assert_eq!(jwt_expiry("a.!!!.c"), None);
    }

    #[test]
    fn a_file_token_is_read_again_when_it_changes_or_nears_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, token(seconds_from_now(3600), "first")).unwrap();
        let source = TokenSource::new(
            CredentialSource::File {
                path: "token".into(),
            },
            dir.path().to_owned(),
            None,
        );
        let first = source.refresh_if_stale().unwrap();
        assert_eq!(first.generation, 1);
        assert_eq!(
            source.refresh_if_stale().unwrap().fingerprint,
            first.fingerprint,
            "fresh and unchanged: kept"
        );

        // Rewritten (a different size, so the stamp differs even within one mtime tick).
        std::fs::write(&path, token(seconds_from_now(7200), "second-longer")).unwrap();
        let second = source.refresh_if_stale().unwrap();
        assert_ne!(second.fingerprint, first.fingerprint);
        assert_eq!(second.generation, 2);
    }

    #[test]
    fn a_command_token_is_run_again_only_when_it_nears_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let counter = dir.path().join("runs");
        let script = format!(
            "echo x >> {runs}; if [ $(wc -l < {runs}) -eq 1 ]; then echo {soon}; else echo {later}; fi",
            runs = counter.display(),
            soon = token(seconds_from_now(60), "soon"),
            later = token(seconds_from_now(3600), "later"),
        );
        let source = TokenSource::new(
            CredentialSource::Command {
                argv: vec!["sh".into(), "-c".into(), script],
            },
            dir.path().to_owned(),
            None,
        );
        let soon = source.refresh_if_stale().unwrap();
        // It expires within REFRESH_AHEAD, so the next request runs the command again.
        let later = source.refresh_if_stale().unwrap();
        assert_ne!(soon.fingerprint, later.fingerprint);
        assert_eq!(later.generation, 2);
        // Now it is good for an hour: no third run.
        source.refresh_if_stale().unwrap();
        assert_eq!(
            std::fs::read_to_string(&counter).unwrap().lines().count(),
            2
        );
    }

    #[test]
    fn a_failing_command_says_so_without_its_output() {
        let source = TokenSource::new(
            CredentialSource::Command {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    "echo secret-ish >&2; exit 3".into(),
                ],
            },
            PathBuf::from("."),
            None,
        );
        let failure = source.refresh_if_stale().unwrap_err();
        assert!(
            failure.what.starts_with("command sh failed"),
            "{}",
            failure.what
        );
        assert!(!failure.what.contains("secret-ish"));
        let missing = TokenSource::new(
            CredentialSource::Command {
                argv: vec!["no-such-token-helper".into()],
            },
            PathBuf::from("."),
            None,
        );
        assert_eq!(
            missing.refresh_if_stale().unwrap_err().code,
            crate::problem::ProblemCode::Missing
        );
    }
}
