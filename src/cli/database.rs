//! Which database a command opens, and how: named on stderr (passwords redacted), a SQLite file
//! created only by `serve` and `migrate`, opened read-only by the commands that only read, and
//! the readers' check that the schema is there before they query it.

use std::path::PathBuf;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use secrecy::{ExposeSecret, SecretString};
use vouch::{config::Settings, db::Db};

use super::CliResult;

/// How a command may open its database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `serve`, `migrate`: a missing SQLite file is created.
    Create,
    /// Commands that write to a database that must already exist.
    Existing,
    /// Commands that only read: an existing database, opened read-only (SQLite).
    ReadOnly,
}

/// Say which database the command uses, refuse a missing SQLite file unless `access` may
/// create it, and connect (read-only for readers). Readers also find the schema in place.
pub async fn open(settings: &Settings, access: Access) -> Result<Db, Box<dyn std::error::Error>> {
    let url = settings.database_url.expose_secret();
    let file = sqlite_file(url);
    match &file {
        Some(file) => say!(
            "vouch: database {} ({})",
            redacted(url),
            absolute(file).display()
        ),
        None => say!("vouch: database {}", redacted(url)),
    }
    let mut settings = settings.clone();
    if let Some(file) = &file {
        if access != Access::Create && !file.exists() {
            return Err(format!(
                "no database at {}; run `vouch migrate` first (or start `vouch serve`, which \
                 creates it)",
                absolute(file).display()
            )
            .into());
        }
        let mode = match access {
            Access::Create => "rwc",
            Access::Existing => "rw",
            Access::ReadOnly => "ro",
        };
        settings.database_url = SecretString::from(with_mode(url, mode));
    }
    let db = Db::connect(&settings).await?;
    if access == Access::ReadOnly {
        check_schema(&db).await?;
    }
    Ok(db)
}

/// A reader's schema check: every migration this binary knows is applied, so a query cannot
/// fail with "no such table" (a file that is not Vouch's, or a database never migrated) or
/// miss a column (a database of an older version).
async fn check_schema(db: &Db) -> CliResult<()> {
    let exists = match db.backend() {
        DatabaseBackend::Sqlite => {
            "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'seaql_migrations'"
        }
        _ => {
            "SELECT 1 AS found FROM information_schema.tables \
             WHERE table_name = 'seaql_migrations' AND table_schema = current_schema()"
        }
    };
    let conn = db.conn();
    let backend = db.backend();
    if conn
        .query_one_raw(Statement::from_string(backend, exists))
        .await?
        .is_none()
    {
        return Err("the database has no Vouch schema; run `vouch migrate` first".into());
    }
    let applied: Vec<String> = conn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT version FROM seaql_migrations",
        ))
        .await?
        .iter()
        .map(|row| row.try_get::<String>("", "version"))
        .collect::<Result<_, _>>()?;
    let pending = Migrator::migrations()
        .iter()
        .filter(|m| !applied.iter().any(|a| a == m.name()))
        .count();
    if pending > 0 {
        return Err(format!(
            "the database lacks {pending} migration(s) of this version of vouch; run `vouch \
             migrate` first"
        )
        .into());
    }
    Ok(())
}

/// The file a SQLite URL names (percent-decoded, as sqlx reads it); `None` for PostgreSQL and
/// in-memory databases.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory =
        path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory");
    (!in_memory).then(|| PathBuf::from(percent_decode(path)))
}

fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The SQLite URL with its `mode` parameter set to `mode` (sqlx: `ro`, `rw`, `rwc`); the other
/// parameters are kept. Only the last `mode` counts, and `rw` after `rwc` would not undo the
/// create flag, so any earlier one is removed.
fn with_mode(url: &str, mode: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("mode="))
        .collect();
    let mode = format!("mode={mode}");
    params.push(&mode);
    format!("{base}?{}", params.join("&"))
}

/// `url` as it may be shown: a password in the user info or in a `password` parameter becomes
/// `***`. Everything else (user, host, database, other parameters) stays, to say which
/// database this is.
pub fn redacted(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{user}:***@{host}"),
                    None => authority.to_owned(),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_and_nothing_else() {
        for (url, shown) in [
            (
                "postgres://vouch:s3cr%40t@db.internal:5432/vouch?sslmode=require",
                "postgres://vouch:***@db.internal:5432/vouch?sslmode=require",
            ),
            (
                "postgres://vouch@db/vouch?password=s3cret&application_name=x",
                "postgres://vouch@db/vouch?password=***&application_name=x",
            ),
            ("postgres://:pw@db", "postgres://:***@db"),
            ("postgresql://db/vouch", "postgresql://db/vouch"),
            ("sqlite://vouch.db?mode=rwc", "sqlite://vouch.db?mode=rwc"),
            ("sqlite:/tmp/a@b:c/vouch.db", "sqlite:/tmp/a@b:c/vouch.db"),
        ] {
            assert_eq!(redacted(url), shown, "{url}");
        }
        // An `@` in the password itself: the host is after the last one.
        assert_eq!(
            redacted("postgres://u:p@ss@host/db"),
            "postgres://u:***@host/db"
        );
    }

    #[test]
    fn sqlite_files_are_found_as_sqlx_reads_them() {
        assert_eq!(
            sqlite_file("sqlite://vouch.db?mode=rwc"),
            Some(PathBuf::from("vouch.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:///var/lib/vouch/my%20db.sqlite"),
            Some(PathBuf::from("/var/lib/vouch/my db.sqlite"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://?mode=memory"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }

    #[test]
    fn the_mode_is_replaced_not_appended() {
        assert_eq!(
            with_mode("sqlite://v.db?mode=rwc&cache=private", "ro"),
            "sqlite://v.db?cache=private&mode=ro"
        );
        assert_eq!(with_mode("sqlite://v.db", "rw"), "sqlite://v.db?mode=rw");
    }
}
