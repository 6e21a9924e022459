//! Email and phone verification: sending a code (with its limits, in one transaction with the
//! outbox row that delivers it), checking a code, and approval into evidence.
//!
//! Codes are stored only as HMACs bound to their verification; each check is counted in its
//! own committed write before the comparison, and approval is a conditional update, so
//! concurrent checks can neither exceed the attempt limit nor approve twice. Limits are counted
//! in the database: SQLite has one writer, and on PostgreSQL advisory locks on the destination,
//! the account and (for SMS) the global budget serialise the count-then-insert.
//!
//! SMS carries the toll-fraud limits of Twilio Verify's Fraud Guard and Geo Permissions: an
//! hourly budget per country, a velocity limit per number prefix, a lifetime cap per account,
//! and for young accounts a smaller hourly limit and a shared pool of the global budget. Every
//! SMS send holds the global budget lock, so the shared counts (country, prefix, young pool)
//! need no lock of their own; the lifetime counter lives on the account, under its lock.

use crate::error::ErrorCode;
use crate::services::audit::{AuditAction, AuditTarget};
use chrono::{DateTime, Duration, Utc};
use entities::{account, outbox_message, verification, verification_send, verified_phone};
use sea_orm::{
    sea_query::{Expr, ExprTrait},
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select,
};
use serde_json::json;

use super::{
    accounts,
    audit::{self, Entry},
    decisions,
    evidence::{self, EvidenceChange},
    outbox,
};
use crate::{
    config::VerificationSettings,
    crypto::{ct_eq, hex, MasterKey},
    db::Db,
    delivery::locale::Locale,
    domain::{
        account::{AccountId, AccountStatus, Email},
        evidence::{EvidenceKind, EvidenceStatus},
        ids::{looks_like, new_id},
        phone::PhoneNumber,
        policy::Policy,
        verification::{Channel, Code, VerificationStatus},
    },
    error::ApiError,
};

pub const ID_PREFIX: &str = "ver";

const CODE_KEY: &str = "vouch/verification-code/v1";
const DESTINATION_KEY: &str = "vouch/verification-destination/v1";
const PREFIX_KEY: &str = "vouch/verification-prefix/v1";

/// The region of numbers that belong to no country (libphonenumber's name for satellite and
/// international shared-cost or premium ranges): one bucket for the country budget.
pub const NON_GEOGRAPHIC_REGION: &str = "001";

/// An hour: the window of every SMS budget and velocity limit.
const HOUR: u64 = 3600;

/// Whom a code goes to: where, and in which language the message is written.
#[derive(Debug, Clone)]
pub struct Addressee {
    pub destination: Destination,
    pub locale: Locale,
}

/// Where a code goes: a parsed email address or phone number.
#[derive(Debug, Clone)]
pub enum Destination {
    Email(Email),
    Phone(PhoneNumber),
}

impl Destination {
    pub fn channel(&self) -> Channel {
        match self {
            Destination::Email(_) => Channel::Email,
            Destination::Phone(_) => Channel::Sms,
        }
    }

    /// What the message is sent to.
    pub fn address(&self) -> &str {
        match self {
            Destination::Email(e) => e.as_str(),
            Destination::Phone(p) => p.e164(),
        }
    }

    pub fn masked(&self) -> String {
        match self {
            Destination::Email(e) => e.masked(),
            Destination::Phone(p) => p.masked(),
        }
    }

    /// The keyed hash that identifies the destination for limits and reuse; addresses that
    /// differ only in case are one destination.
    pub fn hash(&self, master: &MasterKey) -> String {
        let normalised = match self {
            Destination::Email(e) => format!("email:{}", e.as_str().to_lowercase()),
            Destination::Phone(p) => format!("sms:{}", p.e164()),
        };
        hex(&master.derive(DESTINATION_KEY).hmac(normalised.as_bytes()))
    }
}

/// The country an SMS is counted against.
fn sms_region(phone: &PhoneNumber) -> String {
    phone
        .region()
        .map_or_else(|| NON_GEOGRAPHIC_REGION.to_owned(), str::to_ascii_uppercase)
}

/// The keyed hash of the first `digits` digits of the number (country code included): pumping
/// walks through one premium range, and the log must not hold the digits themselves.
fn prefix_hash(master: &MasterKey, phone: &PhoneNumber, digits: u32) -> String {
    let all = phone.e164().trim_start_matches('+');
    let n = usize::try_from(digits).map_or(all.len(), |d| d.min(all.len()));
    let prefix = all.get(..n).unwrap_or(all);
    hex(&master
        .derive(PREFIX_KEY)
        .hmac(format!("sms-prefix:{prefix}").as_bytes()))
}

fn code_hash(master: &MasterKey, verification_id: &str, code: &Code) -> String {
    let mut data = Vec::with_capacity(verification_id.len() + 1 + code.expose().len());
    data.extend_from_slice(verification_id.as_bytes());
    data.push(0);
    data.extend_from_slice(code.expose().as_bytes());
    hex(&master.derive(CODE_KEY).hmac(&data))
}

fn not_found() -> ApiError {
    ApiError::not_found(
        ErrorCode::VerificationNotFound,
        "no verification with this id",
    )
}

fn phone_in_use(max: u32) -> ApiError {
    ApiError::conflict(
        ErrorCode::PhoneInUse,
        format!("this phone number already backs the phone verification of {max} accounts"),
    )
}

/// The status as callers see it: a pending verification past its expiry is expired, and one
/// whose attempts are used up is closed, whether or not that was written yet.
pub fn effective_status(
    row: &verification::Model,
    now: DateTime<Utc>,
) -> Result<VerificationStatus, DbErr> {
    Ok(match super::stored("verification status", &row.status)? {
        VerificationStatus::Pending if row.attempts >= row.max_attempts => {
            VerificationStatus::MaxAttemptsReached
        }
        VerificationStatus::Pending if now >= row.expires_at => VerificationStatus::Expired,
        status => status,
    })
}

pub fn attempts_remaining(row: &verification::Model) -> u32 {
    u32::try_from(row.max_attempts.saturating_sub(row.attempts)).unwrap_or(0)
}

/// A transaction-scoped PostgreSQL advisory lock (the lock policy: `db`).
async fn lock(conn: &impl ConnectionTrait, scope: &'static str, value: &str) -> Result<(), DbErr> {
    crate::db::lock::advisory_lock(conn, crate::db::lock::Scope::Verification(scope), value).await
}

/// 429 `rate_limited` when `sends` (already narrowed to one destination, account or channel)
/// holds `limit` or more rows inside the window; `Retry-After` says when a slot frees.
async fn enforce(
    conn: &impl ConnectionTrait,
    sends: Select<verification_send::Entity>,
    limit: u32,
    window_seconds: u64,
    now: DateTime<Utc>,
    which: &'static str,
    detail: &'static str,
) -> Result<(), ApiError> {
    let window = Duration::seconds(i64::try_from(window_seconds).unwrap_or(i64::MAX / 1000));
    let in_window = sends.filter(verification_send::Column::SentAt.gt(now - window));
    let count = in_window.clone().count(conn).await?;
    if count < u64::from(limit) {
        return Ok(());
    }
    // The send whose ageing out brings the count below the limit.
    let freeing = in_window
        .order_by_asc(verification_send::Column::SentAt)
        .offset(count - u64::from(limit))
        .one(conn)
        .await?;
    let retry_after = freeing
        .map(|s| (s.sent_at + window - now).num_milliseconds())
        // A concurrent send may carry a time later than this request's `now` (taken before it
        // waited for the lock); a slot still frees within one window.
        .map(|ms| {
            u64::try_from((ms + 999) / 1000)
                .unwrap_or(1)
                .clamp(1, std::cmp::max(window_seconds, 1))
        })
        .unwrap_or(std::cmp::max(window_seconds, 1));
    tracing::info!(limit = which, retry_after, "verification send rate limited");
    let mut err = ApiError::new(
        actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        detail,
    )
    .with("limit", which)
    .with("retry_after", retry_after);
    err.retry_after = Some(retry_after);
    Err(err)
}

/// A limit that applies only until `until` (a young account's): the caller may retry then,
/// if that comes before a slot frees.
fn no_later_than(mut err: ApiError, until: DateTime<Utc>, now: DateTime<Utc>) -> ApiError {
    let left = std::cmp::max(
        u64::try_from(((until - now).num_milliseconds() + 999) / 1000).unwrap_or(1),
        1,
    );
    if err.retry_after.is_some_and(|r| r > left) {
        err.retry_after = Some(left);
        err = err.with("retry_after", left);
    }
    err
}

/// 429 for an account that has been sent every SMS it may ever be sent: time does not help,
/// so there is no `Retry-After`.
fn lifetime_spent() -> ApiError {
    tracing::info!(limit = "sms_lifetime", "verification send rate limited");
    ApiError::new(
        actix_web::http::StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        "this account has been sent the most SMS codes an account may ever be sent; \
         this limit does not reset (verify by email or another way, or ask the operator)",
    )
    .with("limit", "sms_lifetime")
}

/// Accounts other than `account_id` whose phone evidence rests on this number.
async fn other_accounts_with_phone(
    conn: &impl ConnectionTrait,
    phone_hash: &str,
    account_id: &str,
) -> Result<u64, DbErr> {
    verified_phone::Entity::find()
        .filter(verified_phone::Column::PhoneHash.eq(phone_hash))
        .filter(verified_phone::Column::AccountId.ne(account_id))
        .count(conn)
        .await
}

/// What one send is counted by, under the locks `start` takes.
struct Send<'a> {
    account_id: &'a str,
    channel: Channel,
    destination_hash: String,
    /// SMS only: the number's country and the keyed hash of its prefix.
    sms: Option<(String, String)>,
    /// Whether the account is young (SMS only), and until when.
    young: bool,
    young_until: DateTime<Utc>,
}

/// Start a verification: enforce the limits, cancel the account's pending verification for the
/// same destination, store the new one with its code's HMAC, log the send and queue the message
/// in the addressee's language.
#[tracing::instrument(skip_all, fields(account_id = %account_id, channel = addressee.destination.channel().as_str()))]
pub async fn start(
    conn: &impl ConnectionTrait,
    actor: &str,
    master: &MasterKey,
    settings: &VerificationSettings,
    account_id: &AccountId,
    addressee: &Addressee,
    now: DateTime<Utc>,
) -> Result<verification::Model, ApiError> {
    let account_id = account_id.as_str();
    let destination = &addressee.destination;
    let channel = destination.channel();
    let destination_hash = destination.hash(master);
    let sms = sms_counts(master, settings, destination);
    // In the order of the lock policy (`db`). The budget lock also covers the country, prefix and young-account counts: every SMS
    // send holds it.
    if channel == Channel::Sms {
        lock(conn, "sms-budget", "global").await?;
    }
    lock(conn, "account", account_id).await?;
    lock(conn, "destination", &destination_hash).await?;

    let account = sendable_account(conn, account_id).await?;
    let young_until = account.created_at
        + Duration::seconds(
            i64::try_from(settings.young_account_seconds).unwrap_or(i64::MAX / 1000),
        );
    let send = Send {
        account_id,
        channel,
        destination_hash,
        sms,
        young: channel == Channel::Sms && now < young_until,
        young_until,
    };
    enforce_limits(conn, settings, &account, &send, now).await?;
    let superseded = supersede_pending(conn, &send, now).await?;
    let (row, code) = store(conn, master, settings, destination, &send, now).await?;
    log_send(conn, settings, send, now).await?;
    let message = outbox::enqueue(
        conn,
        master,
        &row,
        destination.address(),
        &code,
        addressee.locale,
        now,
    )
    .await?;
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: AuditAction::VerificationSent,
            target_type: AuditTarget::Account,
            target_id: account_id,
            details: json!({
                "verification_id": row.id,
                "channel": row.channel,
                "expires_at": row.expires_at,
                "message_id": message.id,
                "superseded": superseded,
            }),
        },
    )
    .await?;
    Ok(row)
}

/// What the SMS limits count a send by: the number's country and the keyed hash of its prefix.
fn sms_counts(
    master: &MasterKey,
    settings: &VerificationSettings,
    destination: &Destination,
) -> Option<(String, String)> {
    match destination {
        Destination::Phone(phone) => Some((
            sms_region(phone),
            prefix_hash(master, phone, settings.sms_prefix_digits),
        )),
        Destination::Email(_) => None,
    }
}

/// The account, if codes may be sent for it (it exists and is active).
async fn sendable_account(
    conn: &impl ConnectionTrait,
    account_id: &str,
) -> Result<account::Model, ApiError> {
    let account = accounts::require(conn, account_id).await?;
    if super::stored::<AccountStatus>("account status", &account.status)? != AccountStatus::Active {
        return Err(ApiError::conflict(
            ErrorCode::AccountSuspended,
            "codes are not sent for a suspended account",
        ));
    }
    Ok(account)
}

/// Every limit on this send, the lifetime cap first (it is the one no waiting lifts).
async fn enforce_limits(
    conn: &impl ConnectionTrait,
    settings: &VerificationSettings,
    account: &account::Model,
    send: &Send<'_>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    if send.channel == Channel::Sms
        && account.sms_sent_total >= i64::from(settings.sms_account_lifetime_limit)
    {
        return Err(lifetime_spent());
    }
    // Per account and destination: another account's sends to this destination (a stranger
    // typing someone else's number) never count against this account.
    let of_account = || {
        verification_send::Entity::find()
            .filter(verification_send::Column::AccountId.eq(send.account_id))
    };
    enforce(
        conn,
        of_account()
            .filter(verification_send::Column::DestinationHash.eq(send.destination_hash.as_str())),
        settings.per_destination_limit,
        settings.per_destination_window_seconds,
        now,
        "destination",
        "this account has asked for too many codes to this destination; retry later",
    )
    .await?;
    enforce(
        conn,
        of_account(),
        settings.per_account_limit,
        settings.per_account_window_seconds,
        now,
        "account",
        "too many codes were sent for this account; retry later",
    )
    .await?;
    if let Some((region, prefix)) = &send.sms {
        enforce_sms_limits(conn, settings, send, region, prefix, now).await?;
    }
    Ok(())
}

/// The toll-fraud limits of an SMS send, and the number's account cap.
async fn enforce_sms_limits(
    conn: &impl ConnectionTrait,
    settings: &VerificationSettings,
    send: &Send<'_>,
    region: &str,
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let sms_sends = || {
        verification_send::Entity::find()
            .filter(verification_send::Column::Channel.eq(Channel::Sms.as_str()))
    };
    let young_only = |e| no_later_than(e, send.young_until, now);
    if send.young {
        enforce(
            conn,
            sms_sends().filter(verification_send::Column::AccountId.eq(send.account_id)),
            settings.young_account_sms_hourly_limit,
            HOUR,
            now,
            "young_account",
            "a new account may be sent only a few SMS codes per hour; retry later",
        )
        .await
        .map_err(young_only)?;
    }
    enforce_sms_budgets(conn, settings, send, region, prefix, now).await?;
    // Checked again, under the same lock, at approval; this spares an SMS that could never
    // lead anywhere.
    let others = other_accounts_with_phone(conn, &send.destination_hash, send.account_id).await?;
    if others >= u64::from(settings.phone_max_accounts) {
        return Err(phone_in_use(settings.phone_max_accounts));
    }
    Ok(())
}

/// The shared SMS budgets: per number prefix, per country, for young accounts, and overall.
async fn enforce_sms_budgets(
    conn: &impl ConnectionTrait,
    settings: &VerificationSettings,
    send: &Send<'_>,
    region: &str,
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let sms_sends = || {
        verification_send::Entity::find()
            .filter(verification_send::Column::Channel.eq(Channel::Sms.as_str()))
    };
    enforce(
        conn,
        sms_sends().filter(verification_send::Column::PrefixHash.eq(prefix)),
        settings.sms_prefix_hourly_limit,
        HOUR,
        now,
        "sms_prefix",
        "too many SMS codes went to numbers starting like this one; retry later",
    )
    .await?;
    enforce(
        conn,
        sms_sends().filter(verification_send::Column::Region.eq(region)),
        settings.country_budget(region),
        HOUR,
        now,
        "sms_country",
        "the hourly SMS budget for this country is spent; retry later",
    )
    .await?;
    if send.young {
        enforce(
            conn,
            sms_sends().filter(verification_send::Column::YoungAccount.eq(true)),
            settings.young_accounts_sms_hourly_budget,
            HOUR,
            now,
            "young_accounts_budget",
            "the hourly SMS budget for new accounts is spent; retry later",
        )
        .await
        .map_err(|e| no_later_than(e, send.young_until, now))?;
    }
    enforce(
        conn,
        sms_sends(),
        settings.sms_hourly_budget,
        HOUR,
        now,
        "sms_budget",
        "the service's hourly SMS budget is spent; retry later",
    )
    .await
}

/// A new code replaces the account's pending one for the same destination. Returns the ids of
/// the verifications it canceled.
async fn supersede_pending(
    conn: &impl ConnectionTrait,
    send: &Send<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<String>, ApiError> {
    let superseded: Vec<String> = verification::Entity::find()
        .filter(verification::Column::AccountId.eq(send.account_id))
        .filter(verification::Column::DestinationHash.eq(send.destination_hash.as_str()))
        .filter(verification::Column::Status.eq(VerificationStatus::Pending.as_str()))
        .all(conn)
        .await?
        .into_iter()
        .map(|v| v.id)
        .collect();
    if !superseded.is_empty() {
        verification::Entity::update_many()
            .col_expr(
                verification::Column::Status,
                Expr::value(VerificationStatus::Canceled.as_str()),
            )
            .col_expr(verification::Column::UpdatedAt, Expr::value(now))
            .filter(verification::Column::Id.is_in(superseded.iter().map(String::as_str)))
            .filter(verification::Column::Status.eq(VerificationStatus::Pending.as_str()))
            .exec(conn)
            .await?;
        outbox::cancel_for(conn, &superseded, now).await?;
    }
    Ok(superseded)
}

/// Store a new pending verification with a fresh code's HMAC. Returns it and the code (for the
/// message only; it is never stored).
async fn store(
    conn: &impl ConnectionTrait,
    master: &MasterKey,
    settings: &VerificationSettings,
    destination: &Destination,
    send: &Send<'_>,
    now: DateTime<Utc>,
) -> Result<(verification::Model, Code), DbErr> {
    let ttl = match send.channel {
        Channel::Email => settings.email_code_ttl_seconds,
        Channel::Sms => settings.sms_code_ttl_seconds,
    };
    let id = new_id(ID_PREFIX);
    let code = Code::generate();
    let row = verification::Model {
        code_hash: code_hash(master, &id, &code),
        id,
        account_id: send.account_id.to_owned(),
        channel: send.channel.as_str().to_owned(),
        destination_hash: send.destination_hash.clone(),
        to_masked: destination.masked(),
        status: VerificationStatus::Pending.as_str().to_owned(),
        attempts: 0,
        max_attempts: i32::try_from(settings.max_attempts).unwrap_or(i32::MAX),
        expires_at: now + Duration::seconds(i64::try_from(ttl).unwrap_or(600)),
        created_at: now,
        updated_at: now,
        approved_at: None,
    };
    verification::Entity::insert(row.clone().into_active_model().reset_all())
        .exec_without_returning(conn)
        .await?;
    Ok((row, code))
}

/// Count the send: in the account's lifetime SMS total, and in the log the limits count.
async fn log_send(
    conn: &impl ConnectionTrait,
    settings: &VerificationSettings,
    send: Send<'_>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    if send.channel == Channel::Sms {
        // Conditional, so the cap holds even without the account lock (it is held anyway).
        let counted = account::Entity::update_many()
            .col_expr(
                account::Column::SmsSentTotal,
                Expr::col(account::Column::SmsSentTotal).add(1),
            )
            .filter(account::Column::Id.eq(send.account_id))
            .filter(
                account::Column::SmsSentTotal.lt(i64::from(settings.sms_account_lifetime_limit)),
            )
            .exec(conn)
            .await?;
        if counted.rows_affected != 1 {
            return Err(lifetime_spent());
        }
    }
    let (region, prefix_hash) = send.sms.unzip();
    verification_send::Entity::insert(verification_send::ActiveModel {
        seq: NotSet,
        account_id: Set(send.account_id.to_owned()),
        channel: Set(send.channel.as_str().to_owned()),
        destination_hash: Set(send.destination_hash),
        sent_at: Set(now),
        region: Set(region),
        prefix_hash: Set(prefix_hash),
        young_account: Set(send.young),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<verification::Model>, DbErr> {
    if !looks_like(ID_PREFIX, id) {
        return Ok(None);
    }
    verification::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await
}

pub async fn require(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<verification::Model, ApiError> {
    get(conn, id).await?.ok_or_else(not_found)
}

/// What a check did.
#[derive(Debug)]
pub struct CheckOutcome {
    pub verification: verification::Model,
    /// This check approved it (as opposed to finding it approved already).
    pub approved_now: bool,
}

/// Check a code. Three steps, each its own transaction: count the attempt (committed before
/// the comparison, so no number of concurrent checks gets more than `max_attempts`
/// comparisons), compare in constant time, then either record the failure or approve with a
/// conditional update that only one check can win.
/// An approval reconciles the account's decision in its transaction (`policy`), so the
/// entitlement it may grant is announced with it.
#[tracing::instrument(skip_all, fields(verification_id = %id))]
#[allow(clippy::too_many_arguments)]
pub async fn check(
    db: &Db,
    actor: &str,
    master: &MasterKey,
    settings: &VerificationSettings,
    policy: &Policy,
    id: &str,
    code: &Code,
    now: DateTime<Utc>,
) -> Result<CheckOutcome, ApiError> {
    let txn = db.begin_write().await?;
    let attempt = count_attempt(&*txn, actor, id, now).await?;
    txn.commit().await?;
    let row = match attempt {
        Attempt::Closed(row) => {
            return Ok(CheckOutcome {
                verification: row,
                approved_now: false,
            })
        }
        Attempt::Counted(row) => row,
    };

    let matches = ct_eq(
        code_hash(master, &row.id, code).as_bytes(),
        row.code_hash.as_bytes(),
    );
    let txn = db.begin_write().await?;
    if !matches {
        let row = record_failure(&*txn, actor, row, now).await?;
        txn.commit().await?;
        return Ok(CheckOutcome {
            verification: row,
            approved_now: false,
        });
    }
    let approval = approve(&*txn, actor, settings, row, now).await?;
    if let Approval::Approved(row) = &approval {
        let cause = decisions::Cause::Evidence;
        decisions::reconcile(&*txn, policy, master, now, &row.account_id, cause).await?;
    }
    txn.commit().await?;
    match approval {
        Approval::Approved(row) => Ok(CheckOutcome {
            verification: row,
            approved_now: true,
        }),
        Approval::Lost(row) => Ok(CheckOutcome {
            verification: row,
            approved_now: false,
        }),
        Approval::PhoneInUse => Err(phone_in_use(settings.phone_max_accounts)),
    }
}

enum Attempt {
    /// Not pending (or no attempts left): nothing was counted, nothing may be compared.
    Closed(verification::Model),
    /// The attempt is counted; the row as this check's increment left it (`attempts` is its own
    /// number).
    Counted(verification::Model),
}

/// Move from one of `from` to `to`; `false` if it was in none of them any more.
async fn set_status(
    conn: &impl ConnectionTrait,
    id: &str,
    from: &[VerificationStatus],
    to: VerificationStatus,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = verification::Entity::update_many()
        .col_expr(verification::Column::Status, Expr::value(to.as_str()))
        .col_expr(verification::Column::UpdatedAt, Expr::value(now))
        .filter(verification::Column::Id.eq(id))
        .filter(verification::Column::Status.is_in(from.iter().map(|s| s.as_str())))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Write down an expiry that time already decided, and audit it once. (Used-up attempts are
/// written by the check that used the last one, once its comparison failed: a correct code
/// still being compared may yet approve.)
async fn close(
    conn: &impl ConnectionTrait,
    actor: &str,
    row: verification::Model,
    now: DateTime<Utc>,
) -> Result<verification::Model, ApiError> {
    if row.status == VerificationStatus::Pending.as_str()
        && now >= row.expires_at
        && set_status(
            conn,
            &row.id,
            &[VerificationStatus::Pending],
            VerificationStatus::Expired,
            now,
        )
        .await?
    {
        outbox::cancel_for(conn, std::slice::from_ref(&row.id), now).await?;
        audit::append(
            conn,
            now,
            Entry {
                actor,
                action: AuditAction::VerificationExpired,
                target_type: AuditTarget::Account,
                target_id: &row.account_id,
                details: json!({"verification_id": row.id}),
            },
        )
        .await?;
        return require(conn, &row.id).await;
    }
    Ok(row)
}

async fn count_attempt(
    conn: &impl ConnectionTrait,
    actor: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Attempt, ApiError> {
    let row = require(conn, id).await?;
    if effective_status(&row, now)? != VerificationStatus::Pending {
        return Ok(Attempt::Closed(close(conn, actor, row, now).await?));
    }
    let counted = verification::Entity::update_many()
        .col_expr(
            verification::Column::Attempts,
            Expr::col(verification::Column::Attempts).add(1),
        )
        .col_expr(verification::Column::UpdatedAt, Expr::value(now))
        .filter(verification::Column::Id.eq(id))
        .filter(verification::Column::Status.eq(VerificationStatus::Pending.as_str()))
        .filter(
            Expr::col(verification::Column::Attempts)
                .lt(Expr::col(verification::Column::MaxAttempts)),
        )
        .exec_with_returning(conn)
        .await?;
    match counted.into_iter().next() {
        // The row as this statement left it: `attempts` is this check's own number.
        Some(row) => Ok(Attempt::Counted(row)),
        // Another check closed it or took the last attempt between our read and our write.
        None => Ok(Attempt::Closed(require(conn, id).await?)),
    }
}

async fn record_failure(
    conn: &impl ConnectionTrait,
    actor: &str,
    row: verification::Model,
    now: DateTime<Utc>,
) -> Result<verification::Model, ApiError> {
    // `row.attempts` is this check's own number: only the check that used the last attempt
    // closes the verification.
    let exhausted = row.attempts >= row.max_attempts;
    if exhausted
        && set_status(
            conn,
            &row.id,
            &[VerificationStatus::Pending],
            VerificationStatus::MaxAttemptsReached,
            now,
        )
        .await?
    {
        outbox::cancel_for(conn, std::slice::from_ref(&row.id), now).await?;
    }
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: AuditAction::VerificationCheckFailed,
            target_type: AuditTarget::Account,
            target_id: &row.account_id,
            details: json!({
                "verification_id": row.id,
                "attempts": row.attempts,
                "max_attempts_reached": exhausted,
            }),
        },
    )
    .await?;
    require(conn, &row.id).await
}

/// A check that holds a counted attempt and the right code approves even if a concurrent wrong
/// check has used the last attempt meanwhile: it is still one of the `max_attempts`
/// comparisons allowed.
const OPEN_TO_APPROVAL: [VerificationStatus; 2] = [
    VerificationStatus::Pending,
    VerificationStatus::MaxAttemptsReached,
];

enum Approval {
    Approved(verification::Model),
    /// Another check approved it first, or it closed meanwhile.
    Lost(verification::Model),
    /// The number already backs the maximum number of accounts; the verification is canceled.
    PhoneInUse,
}

async fn approve(
    conn: &impl ConnectionTrait,
    actor: &str,
    settings: &VerificationSettings,
    row: verification::Model,
    now: DateTime<Utc>,
) -> Result<Approval, ApiError> {
    let channel: Channel = super::stored("verification channel", &row.channel)?;
    if channel == Channel::Sms && refuse_shared_phone(conn, actor, settings, &row, now).await? {
        return Ok(Approval::PhoneInUse);
    }
    let won = verification::Entity::update_many()
        .col_expr(
            verification::Column::Status,
            Expr::value(VerificationStatus::Approved.as_str()),
        )
        .col_expr(verification::Column::ApprovedAt, Expr::value(now))
        .col_expr(verification::Column::UpdatedAt, Expr::value(now))
        .filter(verification::Column::Id.eq(row.id.as_str()))
        .filter(verification::Column::Status.is_in(OPEN_TO_APPROVAL.iter().map(|s| s.as_str())))
        .filter(verification::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await?;
    if won.rows_affected != 1 {
        return Ok(Approval::Lost(require(conn, &row.id).await?));
    }
    let (kind, source) = match channel {
        Channel::Email => (EvidenceKind::Email, "email"),
        Channel::Sms => (EvidenceKind::Phone, "sms"),
    };
    let change = EvidenceChange {
        kind,
        source: source.to_owned(),
        status: EvidenceStatus::Active,
        verified_at: now,
        expires_at: None,
    };
    evidence::record(conn, actor, &row.account_id, change, now).await?;
    if channel == Channel::Sms {
        remember_phone(conn, &row, now).await?;
    }
    audit::append(
        conn,
        now,
        Entry {
            actor,
            action: AuditAction::VerificationApproved,
            target_type: AuditTarget::Account,
            target_id: &row.account_id,
            details: json!({"verification_id": row.id, "channel": row.channel}),
        },
    )
    .await?;
    Ok(Approval::Approved(require(conn, &row.id).await?))
}

/// Whether the number already backs the maximum number of accounts; if so the verification
/// is canceled (audited once).
async fn refuse_shared_phone(
    conn: &impl ConnectionTrait,
    actor: &str,
    settings: &VerificationSettings,
    row: &verification::Model,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    // The same lock as sends to this number: approvals for one number run one at a time.
    lock(conn, "destination", &row.destination_hash).await?;
    let others = other_accounts_with_phone(conn, &row.destination_hash, &row.account_id).await?;
    if others < u64::from(settings.phone_max_accounts) {
        return Ok(false);
    }
    if set_status(
        conn,
        &row.id,
        &OPEN_TO_APPROVAL,
        VerificationStatus::Canceled,
        now,
    )
    .await?
    {
        audit::append(
            conn,
            now,
            Entry {
                actor,
                action: AuditAction::VerificationCanceled,
                target_type: AuditTarget::Account,
                target_id: &row.account_id,
                details: json!({"verification_id": row.id, "reason": "phone_in_use"}),
            },
        )
        .await?;
    }
    Ok(true)
}

/// The account's verified number is now this one (a later verification replaces it).
async fn remember_phone(
    conn: &impl ConnectionTrait,
    row: &verification::Model,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    match verified_phone::Entity::find_by_id(row.account_id.clone())
        .one(conn)
        .await?
    {
        Some(existing) => {
            let mut active = existing.into_active_model();
            active.phone_hash = Set(row.destination_hash.clone());
            active.phone_masked = Set(row.to_masked.clone());
            active.verification_id = Set(row.id.clone());
            active.verified_at = Set(now);
            active.update(conn).await?;
        }
        None => {
            verified_phone::Entity::insert(verified_phone::ActiveModel {
                account_id: Set(row.account_id.clone()),
                phone_hash: Set(row.destination_hash.clone()),
                phone_masked: Set(row.to_masked.clone()),
                verification_id: Set(row.id.clone()),
                verified_at: Set(now),
            })
            .exec_without_returning(conn)
            .await?;
        }
    }
    Ok(())
}

/// Whether any send is older than `before` (a read, so idle instances take no write lock).
pub async fn has_old_sends(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<bool, DbErr> {
    Ok(verification_send::Entity::find()
        .filter(verification_send::Column::SentAt.lt(before))
        .limit(1)
        .one(conn)
        .await?
        .is_some())
}

/// Forget sends older than every limit window.
pub async fn prune_sends(conn: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, DbErr> {
    let res = verification_send::Entity::delete_many()
        .filter(verification_send::Column::SentAt.lt(before))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}

/// The delivery state of a verification's message, if it has one.
pub async fn delivery_status(
    conn: &impl ConnectionTrait,
    verification_id: &str,
) -> Result<Option<String>, DbErr> {
    Ok(outbox_message::Entity::find()
        .filter(outbox_message::Column::VerificationId.eq(verification_id))
        .one(conn)
        .await?
        .map(|m| m.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_hashes_are_keyed_and_bound_to_the_verification() {
        let master = MasterKey::new([3u8; 32]);
        let code = Code::parse("123456").unwrap();
        let a = code_hash(&master, "ver_a", &code);
        assert_eq!(a, code_hash(&master, "ver_a", &code));
        assert_ne!(a, code_hash(&master, "ver_b", &code));
        assert_ne!(a, code_hash(&MasterKey::new([4u8; 32]), "ver_a", &code));
        assert!(!a.contains("123456"));
    }

    #[test]
    fn destinations_hash_case_insensitively_per_channel() {
        let master = MasterKey::new([3u8; 32]);
        let a = Destination::Email(Email::parse("Ann@Example.org").unwrap());
        let b = Destination::Email(Email::parse("ann@example.org").unwrap());
        assert_eq!(a.hash(&master), b.hash(&master));
        let p = Destination::Phone(PhoneNumber::parse("+14155552671", None, &[]).unwrap());
        assert_ne!(p.hash(&master), a.hash(&master));
        assert_eq!(p.masked(), "+1******2671");
        assert_eq!(p.channel(), Channel::Sms);
    }
}
