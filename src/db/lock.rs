//! Transaction-scoped PostgreSQL advisory locks: the one helper every lock goes through, and
//! the lock ids. The policy (what each lock serialises, in which order they are taken, which
//! are redundant) is written down once, in the `db` module doc.

use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr};

use crate::crypto::sha256;

/// The audit chain's lock id ("vouch_au"). Every PostgreSQL write transaction takes it first.
pub const CHAIN_LOCK: i64 = 0x766f_7563_685f_6175;
/// The signing keys' lock id ("vouch_ke").
const KEYS_LOCK: i64 = 0x766f_7563_685f_6b65;

/// What a lock serialises. The ids are fixed (instances of different versions sharing a
/// database must agree on them): the two global locks have constants, the others are the first
/// 8 bytes of SHA-256 of `vouch:<service>:<scope>:<key>`.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// The audit chain: appends, and (through `Db::begin_write`) every write transaction.
    AuditChain,
    /// Creating, rotating and erasing signing keys.
    SigningKeys,
    /// A billing customer or subscription (`customer`, `subscription`).
    Billing(&'static str),
    /// A verification send's budget, account or destination (`sms-budget`, `account`,
    /// `destination`).
    Verification(&'static str),
}

/// The advisory lock id of `scope` and `key` (`key` is ignored by the global scopes).
pub fn lock_id(scope: Scope, key: &str) -> i64 {
    let named = |service: &str, scope: &str| {
        let digest = sha256(format!("vouch:{service}:{scope}:{key}").as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first)
    };
    match scope {
        Scope::AuditChain => CHAIN_LOCK,
        Scope::SigningKeys => KEYS_LOCK,
        Scope::Billing(scope) => named("billing", scope),
        Scope::Verification(scope) => named("verification", scope),
    }
}

/// Take the advisory lock for `scope` and `key` until the transaction ends (PostgreSQL; SQLite
/// has one writer at a time already, so nothing). Waits at most the session's `lock_timeout`.
pub async fn advisory_lock(
    conn: &impl ConnectionTrait,
    scope: Scope,
    key: &str,
) -> Result<(), DbErr> {
    if conn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    conn.execute_unprepared(&format!(
        "SELECT pg_advisory_xact_lock({})",
        lock_id(scope, key)
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ids are shared with running instances of other versions: they must not change.
    #[test]
    fn lock_ids_are_stable() {
        assert_eq!(lock_id(Scope::AuditChain, ""), 0x766f_7563_685f_6175);
        assert_eq!(lock_id(Scope::SigningKeys, "x"), 0x766f_7563_685f_6b65);
        let digest = sha256(b"vouch:billing:customer:cus_1");
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        assert_eq!(
            lock_id(Scope::Billing("customer"), "cus_1"),
            i64::from_be_bytes(first)
        );
        let digest = sha256(b"vouch:verification:sms-budget:global");
        first.copy_from_slice(&digest[..8]);
        assert_eq!(
            lock_id(Scope::Verification("sms-budget"), "global"),
            i64::from_be_bytes(first)
        );
    }
}
