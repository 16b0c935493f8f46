//! Where a journal lives: a sled directory (a path), or a PostgreSQL
//! database named by a `postgres://` or `postgresql://` URL.
//!
//! Invariants: the URL schemes are the only thing that selects PostgreSQL,
//! so every other path stays a sled directory; a location is shown to people
//! only through [`redacted`], which never contains the password.

use std::path::Path;
use std::sync::Arc;

use runjournal_core::{Store, StoreError};
use runjournal_postgres::PostgresStore;
use runjournal_sled::{OpenMode, SledStore};

/// The URL schemes that name a PostgreSQL database.
const POSTGRES_SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

/// The PostgreSQL URL `location` is, if it is one (else it is a sled path).
pub fn postgres_url(location: &Path) -> Option<&str> {
    let text = location.to_str()?;
    POSTGRES_SCHEMES
        .iter()
        .any(|scheme| text.len() >= scheme.len() && text[..scheme.len()].eq_ignore_ascii_case(scheme))
        .then_some(text)
}

/// `location` as it may be shown: a path as it is, a URL without its
/// password (in the user info, or as a `password=` parameter).
pub fn redacted(location: &Path) -> String {
    let Some(url) = postgres_url(location) else {
        return location.display().to_string();
    };
    let scheme_end = url.find("://").map_or(0, |index| index + 3);
    let (head, rest) = url.split_at(scheme_end);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let user_info = &authority[..at];
            let user = user_info.split(':').next().unwrap_or_default();
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{user}{hidden}{}", &authority[at..])
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let parameters: Vec<String> = query
                .split('&')
                .map(|parameter| match parameter.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
                    _ => parameter.to_owned(),
                })
                .collect();
            format!("{path}?{}", parameters.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{head}{authority}{tail}")
}

/// Opens the store at `location`: PostgreSQL for a URL, else sled. With
/// `create`, a missing sled database or PostgreSQL schema is created;
/// without it, a missing one is [`StoreError::Missing`].
pub(crate) fn open_store(location: &Path, create: bool) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(url) = postgres_url(location) {
        let store = if create {
            PostgresStore::open(url)?
        } else {
            PostgresStore::open_existing(url)?
        };
        return Ok(Arc::new(store));
    }
    let mode = if create {
        OpenMode::CreateIfMissing
    } else {
        OpenMode::MustExist
    };
    Ok(Arc::new(SledStore::open(location, mode)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_postgres_schemes_select_postgres() {
        assert!(postgres_url(Path::new("postgres://u@h/db")).is_some());
        assert!(postgres_url(Path::new("PostgreSQL://u@h/db")).is_some());
        assert!(postgres_url(Path::new("./postgres")).is_none());
        assert!(postgres_url(Path::new("/tmp/journal.db")).is_none());
        assert!(postgres_url(Path::new("host=/tmp dbname=x")).is_none());
    }

    #[test]
    fn redacted_urls_never_show_the_password() {
        assert_eq!(
            redacted(Path::new("postgres://alice:s3cret@db.example:5432/journal")),
            "postgres://alice:***@db.example:5432/journal"
        );
        assert_eq!(
            redacted(Path::new("postgresql:///journal?host=/tmp/pg&password=s3cret&user=bob")),
            "postgresql:///journal?host=/tmp/pg&password=***&user=bob"
        );
        assert_eq!(redacted(Path::new("postgres://bob@h/db")), "postgres://bob@h/db");
        assert_eq!(redacted(Path::new("/var/lib/journal.db")), "/var/lib/journal.db");
    }
}
