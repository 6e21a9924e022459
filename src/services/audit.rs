//! The audit log: append-only and hash-chained. Each entry's hash covers its own fields and the
//! previous entry's hash, so editing or deleting any row breaks every link after it; each entry's
//! MAC (HMAC-SHA256 of its hash under a key derived from the master key) means nobody without
//! the master key can recompute the tail after an edit. Cutting the newest entries leaves a
//! valid shorter chain, so operators anchor the head outside the database (`vouch audit head`)
//! and check against it (`vouch audit verify --head`).
//!
//! `append` runs inside services that see only a connection; the MAC is added when the write
//! transaction commits (`db::WriteTxn::commit` calls `seal_appended`), to exactly the entries
//! that transaction appended, so nothing written to the table from outside is ever sealed.
//!
//! Chains from before keying stay as they were: at start-up `key_chain` appends one keyed
//! `audit.chain_keyed` entry whose hash covers every earlier entry, once (idempotent).
//!
//! Details an older version wrote that must not stay readable (an exception's category) are
//! rewritten by `rechain`, which cannot keep the old hashes: a hash of details with two
//! possible values tells which one it was to anyone who tries both. So it verifies the chain
//! first (a broken chain is never re-chained: that would launder the break), rewrites, computes
//! every hash and MAC again from the first rewritten entry on, and appends an `audit.resealed`
//! entry recording the previous head by its MAC (not its hash, for the same reason). `verify`
//! then holds for the whole chain, and `verify --head` accepts a head anchored before the
//! re-chaining if it is exactly the head recorded there.

use chrono::{DateTime, SecondsFormat, Utc};
use entities::audit_log;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;

use crate::{
    crypto::{ct_eq, hex, sha256_hex, MasterKey},
    db::lock::{advisory_lock, Scope},
};

const KEY_PURPOSE: &str = "vouch audit chain v1";
/// The entry that keys a chain begun before entries carried a MAC.
pub const CHAIN_KEYED: AuditAction = AuditAction::AuditChainKeyed;

/// The key audit entries are MACed under: derived from the master key, never the key itself.
pub fn chain_key(master: &MasterKey) -> MasterKey {
    master.derive(KEY_PURPOSE)
}

/// Hex HMAC-SHA256 of an entry's hash (which covers its fields and every entry before it).
pub fn entry_mac(key: &MasterKey, row: &audit_log::Model) -> String {
    hex(&key.hmac(format!("{}:{}", row.seq, row.hash).as_bytes()))
}

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain's advisory lock id (`db::lock`, where the lock policy is).
pub use crate::db::lock::CHAIN_LOCK;

/// What an audit entry records, as stored in `audit_log.action`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::IntoStaticStr,
    strum::Display,
    strum::EnumString,
    strum::VariantArray,
)]
pub enum AuditAction {
    #[strum(serialize = "account.created")]
    AccountCreated,
    #[strum(serialize = "account.deleted")]
    AccountDeleted,
    #[strum(serialize = "account.emails_sealed")]
    AccountEmailsSealed,
    #[strum(serialize = "account.reactivated")]
    AccountReactivated,
    #[strum(serialize = "account.suspended")]
    AccountSuspended,
    #[strum(serialize = "account.updated")]
    AccountUpdated,
    #[strum(serialize = "audit.chain_keyed")]
    AuditChainKeyed,
    #[strum(serialize = "audit.resealed")]
    AuditResealed,
    #[strum(serialize = "billing.customer_linked")]
    BillingCustomerLinked,
    #[strum(serialize = "billing.subscription_applied")]
    BillingSubscriptionApplied,
    #[strum(serialize = "client.created")]
    ClientCreated,
    #[strum(serialize = "client.revoked")]
    ClientRevoked,
    #[strum(serialize = "evidence.added")]
    EvidenceAdded,
    #[strum(serialize = "evidence.updated")]
    EvidenceUpdated,
    #[strum(serialize = "exception.approval_recorded")]
    ExceptionApprovalRecorded,
    #[strum(serialize = "exception.approved")]
    ExceptionApproved,
    #[strum(serialize = "exception.denied")]
    ExceptionDenied,
    #[strum(serialize = "exception.expired")]
    ExceptionExpired,
    #[strum(serialize = "exception.retention_held")]
    ExceptionRetentionHeld,
    #[strum(serialize = "exception.retention_released")]
    ExceptionRetentionReleased,
    #[strum(serialize = "exception.revoked")]
    ExceptionRevoked,
    #[strum(serialize = "exception.statement_read")]
    ExceptionStatementRead,
    #[strum(serialize = "exception.statements_purged")]
    ExceptionStatementsPurged,
    #[strum(serialize = "exception.submitted")]
    ExceptionSubmitted,
    #[strum(serialize = "jitsi_key.created")]
    JitsiKeyCreated,
    #[strum(serialize = "jitsi_key.removed")]
    JitsiKeyRemoved,
    #[strum(serialize = "jitsi_key.rotated")]
    JitsiKeyRotated,
    #[strum(serialize = "key.created")]
    KeyCreated,
    #[strum(serialize = "key.removed")]
    KeyRemoved,
    #[strum(serialize = "key.rotated")]
    KeyRotated,
    #[strum(serialize = "token.revoked")]
    TokenRevoked,
    /// Every token of an account issued before a time (`POST /v1/accounts/{id}/tokens/revoke`).
    #[strum(serialize = "tokens.revoked")]
    TokensRevoked,
    #[strum(serialize = "verification.approved")]
    VerificationApproved,
    #[strum(serialize = "verification.canceled")]
    VerificationCanceled,
    #[strum(serialize = "verification.check_failed")]
    VerificationCheckFailed,
    #[strum(serialize = "verification.expired")]
    VerificationExpired,
    #[strum(serialize = "verification.sent")]
    VerificationSent,
    #[strum(serialize = "webhook.created")]
    WebhookCreated,
    #[strum(serialize = "webhook.deleted")]
    WebhookDeleted,
    #[strum(serialize = "webhook.disabled")]
    WebhookDisabled,
    #[strum(serialize = "webhook.secret_rotated")]
    WebhookSecretRotated,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What an audit entry is about, as stored in `audit_log.target_type`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::IntoStaticStr,
    strum::Display,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum AuditTarget {
    Account,
    AuditLog,
    Client,
    Exception,
    JitsiKey,
    SigningKey,
    Webhook,
}

impl AuditTarget {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What happened, to what, by whom. `details` must never hold personal data or secrets.
pub struct Entry<'a> {
    pub actor: &'a str,
    pub action: AuditAction,
    pub target_type: AuditTarget,
    pub target_id: &'a str,
    pub details: Value,
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Stored times lose sub-microsecond precision; hash what will be read back.
fn truncate_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// SHA-256 over the entry's fields (all but `hash`) and the previous entry's hash.
pub fn entry_hash(row: &audit_log::Model) -> String {
    let canonical = serde_json::json!([
        row.seq,
        timestamp(row.at),
        row.actor,
        row.action,
        row.target_type,
        row.target_id,
        row.details,
        row.prev_hash
    ]);
    sha256_hex(canonical.to_string().as_bytes())
}

/// Append one entry; call inside the transaction that makes the change it records.
pub async fn append(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    entry: Entry<'_>,
) -> Result<audit_log::Model, DbErr> {
    advisory_lock(conn, Scope::AuditChain, "").await?; // the lock policy: `db`
    let last = audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Seq)
        .one(conn)
        .await?;
    let (seq, prev_hash) = match last {
        Some(last) => (last.seq + 1, last.hash),
        None => (1, GENESIS.to_owned()),
    };
    let at = truncate_micros(now);
    let mut model = audit_log::Model {
        seq,
        at,
        actor: entry.actor.to_owned(),
        action: entry.action.as_str().to_owned(),
        target_type: entry.target_type.as_str().to_owned(),
        target_id: entry.target_id.to_owned(),
        details: entry.details.to_string(),
        prev_hash,
        hash: String::new(),
        // Added at commit by `seal_appended`, where the key is.
        mac: None,
    };
    model.hash = entry_hash(&model);
    audit_log::Entity::insert(model.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok(model)
}

/// The newest entry's `seq` (0 when empty): a write transaction reads it when it starts, under
/// the chain lock, so that at commit it seals only what it appended.
pub async fn last_seq(conn: &impl ConnectionTrait) -> Result<i64, DbErr> {
    Ok(audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Seq)
        .one(conn)
        .await?
        .map_or(0, |row| row.seq))
}

/// MAC the entries appended after `after` (this transaction's own); called at commit.
pub async fn seal_appended(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    after: i64,
) -> Result<(), DbErr> {
    let rows = audit_log::Entity::find()
        .filter(audit_log::Column::Seq.gt(after))
        .filter(audit_log::Column::Mac.is_null())
        .order_by_asc(audit_log::Column::Seq)
        .all(conn)
        .await?;
    for row in rows {
        let mac = entry_mac(key, &row);
        audit_log::Entity::update_many()
            .col_expr(audit_log::Column::Mac, sea_orm::sea_query::Expr::value(mac))
            .filter(audit_log::Column::Seq.eq(row.seq))
            .exec(conn)
            .await?;
    }
    Ok(())
}

/// Key a chain begun before entries carried a MAC: append one `audit.chain_keyed` entry (sealed
/// at commit) whose hash covers every entry before it. Does nothing when the chain is empty or
/// already keyed, so it runs at every start-up. Returns the number of entries it covered.
pub async fn key_chain(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let keyed = audit_log::Entity::find()
        .filter(audit_log::Column::Mac.is_not_null())
        .one(conn)
        .await?
        .is_some();
    let last = last_seq(conn).await?;
    if keyed || last == 0 {
        return Ok(0);
    }
    let legacy = u64::try_from(last).unwrap_or_default();
    append(
        conn,
        now,
        Entry {
            actor: "system",
            action: CHAIN_KEYED,
            target_type: AuditTarget::AuditLog,
            target_id: "chain",
            details: serde_json::json!({ "legacy_entries": legacy }),
        },
    )
    .await?;
    tracing::warn!(
        legacy_entries = legacy,
        "audit chain keyed: earlier entries are covered by the keyed entry after them"
    );
    Ok(legacy)
}

/// What `rechain` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rechained {
    /// Nothing needed rewriting.
    Nothing,
    /// Entries rewritten, and entries whose hash was computed again (from the first rewritten
    /// one to the old head).
    Done { rewritten: u64, rechained: u64 },
    /// The chain did not verify: nothing was touched.
    Refused(ChainReport),
}

/// Rewrite the details of the entries from `from_seq` on for which `rewrite` returns new
/// details, then re-chain (module doc). Call in a write transaction made with the audit key;
/// `key` is that key (`chain_key`).
pub async fn rechain(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    from_seq: i64,
    rewrite: impl Fn(&audit_log::Model) -> Option<String>,
    why: &str,
    now: DateTime<Utc>,
) -> Result<Rechained, DbErr> {
    advisory_lock(conn, Scope::AuditChain, "").await?;
    let report = verify(conn, key, None).await?;
    if !report.intact {
        return Ok(Rechained::Refused(report));
    }
    let Some(old_head) = audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Seq)
        .one(conn)
        .await?
    else {
        return Ok(Rechained::Nothing);
    };
    let mut prev_hash = match from_seq {
        ..=1 => GENESIS.to_owned(),
        seq => audit_log::Entity::find_by_id(seq - 1)
            .one(conn)
            .await?
            .map_or_else(|| GENESIS.to_owned(), |row| row.hash),
    };
    let (mut rewritten, mut rechained) = (0u64, 0u64);
    let mut next = from_seq.max(1);
    loop {
        let batch = audit_log::Entity::find()
            .filter(audit_log::Column::Seq.gte(next))
            .filter(audit_log::Column::Seq.lte(old_head.seq))
            .order_by_asc(audit_log::Column::Seq)
            .limit(500)
            .all(conn)
            .await?;
        let Some(last) = batch.last() else { break };
        next = last.seq + 1;
        for mut row in batch {
            if let Some(details) = rewrite(&row) {
                row.details = details;
                rewritten += 1;
            }
            row.prev_hash = prev_hash;
            row.hash = entry_hash(&row);
            // Unkeyed entries from before keying stay unkeyed (`verify` expects that).
            row.mac = row.mac.as_ref().map(|_| entry_mac(key, &row));
            prev_hash = row.hash.clone();
            rechained += 1;
            use sea_orm::sea_query::Expr;
            audit_log::Entity::update_many()
                .col_expr(audit_log::Column::Details, Expr::value(row.details))
                .col_expr(audit_log::Column::PrevHash, Expr::value(row.prev_hash))
                .col_expr(audit_log::Column::Hash, Expr::value(row.hash))
                .col_expr(audit_log::Column::Mac, Expr::value(row.mac))
                .filter(audit_log::Column::Seq.eq(row.seq))
                .exec(conn)
                .await?;
        }
    }
    if rewritten == 0 && rechained == 0 {
        return Ok(Rechained::Nothing);
    }
    append(
        conn,
        now,
        Entry {
            actor: "system",
            action: AuditAction::AuditResealed,
            target_type: AuditTarget::AuditLog,
            target_id: "chain",
            details: serde_json::json!({
                "why": why,
                "from_seq": from_seq,
                "rewritten": rewritten,
                "rechained": rechained,
                "previous_head": {
                    "seq": old_head.seq,
                    "mac": entry_mac(key, &old_head),
                },
            }),
        },
    )
    .await?;
    Ok(Rechained::Done {
        rewritten,
        rechained,
    })
}

/// Whether `head` was the head of the chain when it was re-chained (an `audit.resealed` entry
/// recorded its MAC).
async fn head_before_reseal(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    head: &Head,
) -> Result<bool, DbErr> {
    let resealed = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq(AuditAction::AuditResealed.as_str()))
        .filter(audit_log::Column::Seq.gt(head.seq))
        .all(conn)
        .await?;
    let expected = hex(&key.hmac(format!("{}:{}", head.seq, head.hash).as_bytes()));
    Ok(resealed.iter().any(|row| {
        serde_json::from_str::<Value>(&row.details).is_ok_and(|d| {
            d["previous_head"]["seq"].as_i64() == Some(head.seq)
                && d["previous_head"]["mac"]
                    .as_str()
                    .is_some_and(|mac| ct_eq(mac.as_bytes(), expected.as_bytes()))
        })
    }))
}

/// The newest entry, as `<seq>:<hash>`: keep it outside the database and pass it to
/// `verify --head` later to prove no entry up to it was cut.
pub async fn head(conn: &impl ConnectionTrait) -> Result<Option<String>, DbErr> {
    Ok(audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Seq)
        .one(conn)
        .await?
        .map(|row| format!("{}:{}", row.seq, row.hash)))
}

/// A head recorded earlier (`<seq>:<hash>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

impl Head {
    pub fn parse(text: &str) -> Option<Head> {
        let (seq, hash) = text.trim().split_once(':')?;
        let seq = seq.parse::<i64>().ok().filter(|s| *s >= 1)?;
        let ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| Head {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub action: Option<String>,
    pub actor: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// Entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Entries before this time.
    pub until: Option<DateTime<Utc>>,
}

/// Newest first; `before` is the `seq` of the last entry already seen.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &Filter,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<audit_log::Model>, DbErr> {
    let mut q = audit_log::Entity::find().order_by_desc(audit_log::Column::Seq);
    if let Some(a) = &filter.action {
        q = q.filter(audit_log::Column::Action.eq(a.as_str()));
    }
    if let Some(a) = &filter.actor {
        q = q.filter(audit_log::Column::Actor.eq(a.as_str()));
    }
    if let Some(t) = &filter.target_type {
        q = q.filter(audit_log::Column::TargetType.eq(t.as_str()));
    }
    if let Some(t) = &filter.target_id {
        q = q.filter(audit_log::Column::TargetId.eq(t.as_str()));
    }
    if let Some(since) = filter.since {
        q = q.filter(audit_log::Column::At.gte(since));
    }
    if let Some(until) = filter.until {
        q = q.filter(audit_log::Column::At.lt(until));
    }
    if let Some(b) = before {
        q = q.filter(audit_log::Column::Seq.lt(b));
    }
    q.limit(limit).all(conn).await
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ChainReport {
    /// Entries checked.
    pub entries: u64,
    /// Whether every link holds.
    pub intact: bool,
    /// The first entry whose link is broken.
    pub first_broken_seq: Option<i64>,
    pub problem: Option<String>,
}

/// Walk the whole chain from the start and report the first broken link: a missing entry, a
/// broken hash link, a MAC that does not match (or is missing where one is due), and, with
/// `head`, a chain that no longer reaches that head or holds another entry in its place.
pub async fn verify(
    conn: &impl ConnectionTrait,
    key: &MasterKey,
    head: Option<&Head>,
) -> Result<ChainReport, DbErr> {
    // A head anchored before a re-chaining no longer appears in the chain; the resealed entry
    // vouches for it (by MAC) and the chain after it is checked as a whole.
    let head = match head {
        Some(h) if head_before_reseal(conn, key, h).await? => None,
        other => other,
    };
    let mut prev_hash = GENESIS.to_owned();
    let mut expected_seq = 1i64;
    let mut entries = 0u64;
    // Unkeyed entries may only open the chain, before its first keyed entry.
    let mut keyed = false;
    loop {
        let batch = audit_log::Entity::find()
            .filter(audit_log::Column::Seq.gte(expected_seq))
            .order_by_asc(audit_log::Column::Seq)
            .limit(1000)
            .all(conn)
            .await?;
        if batch.is_empty() {
            break;
        }
        for row in batch {
            let broken = |problem: String| ChainReport {
                entries,
                intact: false,
                first_broken_seq: Some(row.seq),
                problem: Some(problem),
            };
            if row.seq != expected_seq {
                return Ok(broken(format!("entry {expected_seq} is missing")));
            }
            if row.prev_hash != prev_hash {
                return Ok(broken("does not link to the previous entry".into()));
            }
            if entry_hash(&row) != row.hash {
                return Ok(broken("its content does not match its hash".into()));
            }
            match &row.mac {
                Some(mac) => {
                    if !ct_eq(mac.as_bytes(), entry_mac(key, &row).as_bytes()) {
                        return Ok(broken(
                            "its MAC does not match (edited, or written without the master key)"
                                .into(),
                        ));
                    }
                    if !keyed && row.seq > 1 && row.action != CHAIN_KEYED.as_str() {
                        return Ok(broken(format!(
                            "the first keyed entry after unkeyed ones must be {CHAIN_KEYED}"
                        )));
                    }
                    keyed = true;
                }
                None if keyed => {
                    return Ok(broken("it has no MAC (not written by Vouch)".into()));
                }
                None => {}
            }
            if let Some(head) = head.filter(|h| h.seq == row.seq) {
                if head.hash != row.hash {
                    return Ok(broken("it is not the entry recorded as the head".into()));
                }
            }
            entries += 1;
            prev_hash = row.hash;
            expected_seq += 1;
        }
    }
    if entries > 0 && !keyed {
        return Ok(ChainReport {
            entries,
            intact: false,
            first_broken_seq: Some(1),
            problem: Some(
                "the chain has no keyed entry yet: start the service once with the master key"
                    .into(),
            ),
        });
    }
    if let Some(head) = head.filter(|h| h.seq >= expected_seq) {
        return Ok(ChainReport {
            entries,
            intact: false,
            first_broken_seq: Some(expected_seq),
            problem: Some(format!(
                "the chain ends at entry {}, before the recorded head {}: entries were cut",
                expected_seq - 1,
                head.seq
            )),
        });
    }
    Ok(ChainReport {
        entries,
        intact: true,
        first_broken_seq: None,
        problem: None,
    })
}

#[cfg(test)]
mod tests {
    use strum::VariantArray;

    use super::*;

    #[test]
    fn actions_and_targets_are_stored_as_the_strings_the_log_has_always_held() {
        for &action in AuditAction::VARIANTS {
            let stored = action.as_str();
            assert_eq!(stored.parse::<AuditAction>().unwrap(), action);
            let (subject, verb) = stored.split_once('.').unwrap();
            assert!(!subject.is_empty() && !verb.is_empty() && !verb.contains('.'));
        }
        assert_eq!(AuditAction::AccountDeleted.as_str(), "account.deleted");
        assert_eq!(CHAIN_KEYED.as_str(), "audit.chain_keyed");
        for &target in AuditTarget::VARIANTS {
            assert_eq!(target.as_str().parse::<AuditTarget>().unwrap(), target);
        }
        assert_eq!(AuditTarget::SigningKey.as_str(), "signing_key");
    }

    #[test]
    fn heads_parse_strictly() {
        let hash = "ab".repeat(32);
        assert_eq!(
            Head::parse(&format!("12:{hash}")),
            Some(Head {
                seq: 12,
                hash: hash.clone()
            })
        );
        assert_eq!(Head::parse(&format!("0:{hash}")), None);
        assert_eq!(Head::parse("12:abc"), None);
        assert_eq!(Head::parse(&hash), None);
    }
}
