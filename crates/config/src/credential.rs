//! A live credential: the current key of one provider, swappable while the process runs.
//!
//! Clients ask it for the current key on every request instead of keeping a copy, so that a
//! rotated key (a re-read file, a fallback key) takes effect on the next request with no client
//! rebuilt. Each swap increments the generation, which status pages report.

use std::sync::{Arc, RwLock};

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

/// One provider's key, shared by every client that sends it.
#[derive(Debug)]
pub struct LiveCredential {
    current: RwLock<CurrentKey>,
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
}
