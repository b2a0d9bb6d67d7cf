//! `Secret`: a credential value that cannot be printed, serialized or left in memory.
//!
//! The type is the guarantee: there is no `Display`, no `Serialize`, `Debug` prints a fixed
//! placeholder, and the bytes are zeroized on drop. The one way to read the value is
//! [`Secret::expose`], so every place that touches a key can be found with `grep expose(`.

use std::fmt;

use zeroize::Zeroize;

/// A credential value (an API key, a token, a password).
///
/// Deliberately not `Clone`: share one through an `Arc` so that there is one copy to zeroize.
pub struct Secret {
    value: String,
}

impl Secret {
    /// Wraps a value. The caller gives up its copy.
    pub fn new(value: String) -> Self {
        Self { value }
    }

    /// The value itself, for the one place that must send it (an HTTP header, a child's pipe).
    ///
    /// Never format, log or store what this returns.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The number of bytes in the value; safe to show.
    pub fn len(&self) -> usize {
        self.value.len()
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(<redacted>)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl PartialEq for Secret {
    /// Compares in time independent of where the first difference is, so that a comparison
    /// against a known key (as the stand-in server does) does not leak a prefix by timing.
    fn eq(&self, other: &Self) -> bool {
        let left = self.value.as_bytes();
        let right = other.value.as_bytes();
        if left.len() != right.len() {
            return false;
        }
        left.iter()
            .zip(right)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("sk-canary-0123456789".to_owned());
        let shown = format!("{secret:?} {:#?}", secret);
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn debug_of_a_containing_struct_stays_redacted() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Holder {
            key: Secret,
        }
        let holder = Holder {
            key: Secret::new("sk-canary-0123456789".to_owned()),
        };
        assert!(!format!("{holder:#?}").contains("canary"));
    }

    #[test]
    fn expose_returns_the_value_and_equality_compares_it() {
        let secret = Secret::new("abc".to_owned());
        assert_eq!(secret.expose(), "abc");
        assert_eq!(secret.len(), 3);
        assert_eq!(secret, Secret::new("abc".to_owned()));
        assert_ne!(secret, Secret::new("abd".to_owned()));
        assert_ne!(secret, Secret::new("abcd".to_owned()));
    }
}
