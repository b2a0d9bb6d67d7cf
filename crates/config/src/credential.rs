//! A live credential: the current key of one provider, swappable while the process runs.
//!
//! Clients ask it for the current key on every request instead of keeping a copy, so that a
//! rotated key (a re-read file, a fallback key) takes effect on the next request with no client
//! rebuilt. Each swap increments the generation, which status pages report.
//!
//! A credential may also know how to read its source again: when a provider refuses the key, the
//! client asks it for the source's current value, so that a key rotated at the source (a secret
//! file rewritten, a mounted secret updated) is picked up by the very request that found out.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::fingerprint::Fingerprint;
use crate::secret::Secret;

/// The key in use at one moment, with what may be shown about it.
#[derive(Clone, Debug)]
pub struct CurrentKey {
    /// The key itself.
    pub secret: Arc<Secret>,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// How many times the key has been replaced since the process started (1 for the first).
    pub generation: u64,
}

/// Reads a credential's sources again: the keys they hold now, in order of preference (the key,
/// then its fallback), each only if it passes the provider's checks.
pub type Reread = Box<dyn Fn() -> Vec<Arc<Secret>> + Send + Sync>;

/// One provider's key, shared by every client that sends it.
pub struct LiveCredential {
    current: RwLock<CurrentKey>,
    reread: OnceLock<Reread>,
    /// Keys the provider refused in this process, never switched back to after a refusal.
    refused: Mutex<HashSet<Fingerprint>>,
}

impl fmt::Debug for LiveCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCredential")
            .field("current", &self.current())
            .field("rereads", &self.reread.get().is_some())
            .finish()
    }
}

impl LiveCredential {
    /// Starts with `secret` as generation 1.
    pub fn new(secret: Arc<Secret>) -> Self {
        let fingerprint = Fingerprint::of(secret.expose().trim());
        Self {
            current: RwLock::new(CurrentKey {
                secret,
                fingerprint,
                generation: 1,
            }),
            reread: OnceLock::new(),
            refused: Mutex::new(HashSet::new()),
        }
    }

    /// The key to send now.
    pub fn current(&self) -> CurrentKey {
        // A poisoned lock only means a writer panicked mid-swap; the value is still whole.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Replaces the key and returns the new generation. Replacing a key with the same key keeps
    /// the generation, so a periodic re-read does not look like a rotation.
    pub fn replace(&self, secret: Arc<Secret>) -> u64 {
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let fingerprint = Fingerprint::of(secret.expose().trim());
        if fingerprint != current.fingerprint || *current.secret != *secret {
            current.generation += 1;
            current.fingerprint = fingerprint;
            current.secret = secret;
        }
        current.generation
    }

    /// Teaches the credential how to read its source again. Only the first call counts.
    pub fn set_reread(&self, reread: Reread) {
        let _ = self.reread.set(reread);
    }

    /// Whether the provider refused the key with `fingerprint` in this process: a watcher that
    /// finds it at the source again leaves the key in use alone.
    pub fn refused(&self, fingerprint: Fingerprint) -> bool {
        self.refused
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&fingerprint)
    }

    /// Called when the provider refused the key with fingerprint `rejected`: whether there is now
    /// another key worth one more try. That is so when another request already swapped the key,
    /// or when the sources, read again, hold a key that passes its checks and was not refused
    /// before (a key rotated at its source, or the fallback), which then becomes the current key.
    /// Reading sources touches the file system: call it off the async threads.
    pub fn renew_after_rejection(&self, rejected: Fingerprint) -> bool {
        let mut refused = self
            .refused
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        refused.insert(rejected);
        if self.current().fingerprint != rejected {
            return true;
        }
        let Some(reread) = self.reread.get() else {
            return false;
        };
        let fresh = reread()
            .into_iter()
            .find(|secret| !refused.contains(&Fingerprint::of(secret.expose().trim())));
        match fresh {
            Some(secret) => {
                self.replace(secret);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_is_seen_by_the_next_reader_with_a_new_generation() {
        let credential = LiveCredential::new(Arc::new(Secret::new("first".into())));
        let before = credential.current();
        assert_eq!((before.secret.expose(), before.generation), ("first", 1));
        assert_eq!(
            credential.replace(Arc::new(Secret::new("second".into()))),
            2
        );
        let after = credential.current();
        assert_eq!((after.secret.expose(), after.generation), ("second", 2));
        assert_eq!(after.fingerprint, Fingerprint::of("second"));
        // The reader that took the first key keeps it for its in-flight request.
        assert_eq!(before.secret.expose(), "first");
        assert_eq!(
            credential.replace(Arc::new(Secret::new("second".into()))),
            2,
            "same key, same generation"
        );
    }

    #[test]
    fn a_rejected_key_is_renewed_only_when_the_source_changed() {
        let source = Arc::new(RwLock::new("old".to_owned()));
        let credential = LiveCredential::new(Arc::new(Secret::new("old".into())));
        let rejected = Fingerprint::of("old");
        assert!(
            !credential.renew_after_rejection(rejected),
            "no way to read the source again"
        );
        let reader = source.clone();
        credential.set_reread(Box::new(move || {
            let value = reader.read().unwrap().clone();
            (!value.is_empty())
                .then(|| Arc::new(Secret::new(value)))
                .into_iter()
                .collect()
        }));
        assert!(
            !credential.renew_after_rejection(rejected),
            "the source still holds the rejected key"
        );
        *source.write().unwrap() = String::new();
        assert!(
            !credential.renew_after_rejection(rejected),
            "an invalid new value is refused"
        );
        assert_eq!(credential.current().generation, 1);
        *source.write().unwrap() = "new".to_owned();
        assert!(credential.renew_after_rejection(rejected));
        let current = credential.current();
        assert_eq!((current.secret.expose(), current.generation), ("new", 2));
        assert!(
            credential.renew_after_rejection(rejected),
            "a request that sent the old key retries with the one already swapped in"
        );
        assert!(
            !credential.renew_after_rejection(Fingerprint::of("new")),
            "the new key refused too: nothing else to try"
        );
    }

    #[test]
    fn the_fallback_is_tried_after_the_key_and_a_refused_key_is_never_taken_back() {
        let primary = Arc::new(RwLock::new("key1".to_owned()));
        let credential = LiveCredential::new(Arc::new(Secret::new("key1".into())));
        let reader = primary.clone();
        credential.set_reread(Box::new(move || {
            vec![
                Arc::new(Secret::new(reader.read().unwrap().clone())),
                Arc::new(Secret::new("key2".to_owned())),
            ]
        }));
        assert!(credential.renew_after_rejection(Fingerprint::of("key1")));
        assert_eq!(credential.current().secret.expose(), "key2");
        assert!(
            !credential.renew_after_rejection(Fingerprint::of("key2")),
            "key1 was refused already"
        );
        assert!(credential.refused(Fingerprint::of("key1")));
        assert!(!credential.refused(Fingerprint::of("key1-regenerated")));
        *primary.write().unwrap() = "key1-regenerated".to_owned();
        assert!(credential.renew_after_rejection(Fingerprint::of("key2")));
        let current = credential.current();
        assert_eq!(
            (current.secret.expose(), current.generation),
            ("key1-regenerated", 3)
        );
    }
}
