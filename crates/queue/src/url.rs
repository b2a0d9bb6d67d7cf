//! Queue URLs: which backend, and how to show one without its password.

use crate::error::QueueError;

/// The backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://PATH` (or `sqlite::memory:`).
    Sqlite,
    /// `postgres://...` or `postgresql://...`.
    Postgres,
}

/// Which backend a URL names.
pub fn backend(url: &str) -> Result<Backend, QueueError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(QueueError::InvalidUrl {
            url: mask(url),
            reason: "use sqlite://PATH for one machine or postgres://USER@HOST/DB for many"
                .to_owned(),
        })
    }
}

/// The URL with any password replaced by `****`: how a queue URL appears in every output.
pub fn mask(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let masked_authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:****@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let masked_tail = mask_query_password(tail);
    format!("{scheme}://{masked_authority}{masked_tail}")
}

/// `?password=...` is also a way to pass a password.
fn mask_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=****"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_wherever_they_are() {
        assert_eq!(
            mask("postgres://fleet:s3cret@db:5432/fleet"),
            "postgres://fleet:****@db:5432/fleet"
        );
        assert_eq!(
            mask("postgres://fleet@db/fleet?password=s3cret&sslmode=require"),
            "postgres://fleet@db/fleet?password=****&sslmode=require"
        );
        assert_eq!(mask("sqlite://agentfleet.db"), "sqlite://agentfleet.db");
        assert_eq!(mask("postgresql://u:p%40ss@h/d"), "postgresql://u:****@h/d");
    }

    #[test]
    fn backends_by_scheme() {
        assert_eq!(backend("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(backend("postgresql://h/d").unwrap(), Backend::Postgres);
        let error = backend("mysql://u:secret@h/d").unwrap_err().to_string();
        assert!(
            error.contains("mysql://u:****@h/d") && !error.contains("secret"),
            "{error}"
        );
    }
}
