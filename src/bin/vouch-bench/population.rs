//! A population of bench accounts, as a real platform's would look, and the request files the
//! load generator replays against it.
//!
//! Account `i` of the population is a pure function of `i`: its id (a hash of `i`, shaped like
//! the ids Vouch issues), its place in the population's status list (a bijection of `i`, so
//! indices say nothing about order) and what it has proved. The mix, by a second hash of `i`:
//!
//! | share | evidence                          | entitled |
//! | ----- | --------------------------------- | -------- |
//! | 68 %  | email                             | no       |
//! | 20 %  | email, phone                      | yes      |
//! |  9 %  | email, payment (Stripe, active)   | yes      |
//! |  1 %  | email, payment (Stripe, canceled) | no       |
//! |  2 %  | email, phone; account suspended   | no       |
//!
//! so `population --to N` can grow a database step by step (10k, 100k, 1M) and the request
//! generators know, without reading the database, which accounts are entitled.

use std::io::Write;

use aws_lc_rs::digest;
use chrono::{DateTime, Duration, Utc};
use entities::{account, evidence, status_list, status_list_entry};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, TransactionTrait,
};

/// The status list the population's indices are in (created on first use, 2^20 indices).
pub const LIST_ID: i64 = 1_000;
const LIST_SIZE: i64 = 1 << 20;
/// Accounts per transaction while seeding.
const BATCH: usize = 10_000;
/// Rows per INSERT statement (SQLite allows 32,766 bound parameters).
const ROWS_PER_INSERT: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    EmailOnly,
    Phone,
    Paying,
    Canceled,
    Suspended,
}

impl Kind {
    pub fn entitled(self) -> bool {
        matches!(self, Kind::Phone | Kind::Paying)
    }
    pub fn active(self) -> bool {
        self != Kind::Suspended
    }
}

fn hash64(tag: &str, i: u64) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(tag.as_bytes());
    ctx.update(&i.to_le_bytes());
    ctx.finish().as_ref().try_into().expect("32 bytes")
}

pub fn account_id(i: u64) -> String {
    format!(
        "acc_{}",
        vouch::crypto::hex(&hash64("vouch-bench account", i)[..16])
    )
}

pub fn kind(i: u64) -> Kind {
    let h = hash64("vouch-bench kind", i);
    match u16::from_le_bytes([h[0], h[1]]) % 100 {
        0..=67 => Kind::EmailOnly,
        68..=87 => Kind::Phone,
        88..=96 => Kind::Paying,
        97 => Kind::Canceled,
        _ => Kind::Suspended,
    }
}

/// Account `i`'s index in [`LIST_ID`]: an odd multiplier is a bijection modulo 2^20.
pub fn status_index(i: u64) -> u32 {
    ((i.wrapping_mul(0x9E37_79B1).wrapping_add(0x5bd1)) % LIST_SIZE as u64) as u32
}

/// How many accounts the population has now (those with an index in its list).
pub async fn size(conn: &impl ConnectionTrait) -> Result<u64, sea_orm::DbErr> {
    let n: Option<i64> = status_list_entry::Entity::find()
        .select_only()
        .column_as(status_list_entry::Column::AccountId.count(), "n")
        .filter(status_list_entry::Column::ListId.eq(LIST_ID))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(n.unwrap_or(0) as u64)
}

/// Grow the population to `to` accounts (accounts `size..to`), in transactions of [`BATCH`]
/// accounts with multi-row INSERTs. Seeding writes no audit entries: it stands for accounts
/// created over years, not for a request path being measured.
pub async fn grow(db: &sea_orm::DatabaseConnection, to: u64) -> Result<u64, sea_orm::DbErr> {
    let from = size(db).await?;
    if from >= to {
        return Ok(from);
    }
    if status_list::Entity::find_by_id(LIST_ID)
        .one(db)
        .await?
        .is_none()
    {
        // Full from the start: nothing else ever allocates in it.
        status_list::Entity::insert(status_list::ActiveModel {
            id: Set(LIST_ID),
            size: Set(LIST_SIZE),
            allocated: Set(LIST_SIZE),
        })
        .exec_without_returning(db)
        .await?;
    }
    let mut seq: i64 = status_list_entry::Entity::find()
        .select_only()
        .column_as(status_list_entry::Column::Seq.max(), "s")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?
        .flatten()
        .unwrap_or(0);
    let created = Utc::now() - Duration::days(400);
    let mut start = from;
    while start < to {
        let end = (start + BATCH as u64).min(to);
        let mut accounts = Vec::with_capacity(BATCH);
        let mut evidence_rows = Vec::with_capacity(BATCH * 2);
        let mut entries = Vec::with_capacity(BATCH);
        for i in start..end {
            let (id, kind) = (account_id(i), kind(i));
            let at = created + Duration::seconds((i % 30_000_000) as i64);
            accounts.push(
                account::Model {
                    id: id.clone(),
                    external_id: format!("pop-{i}"),
                    email: None,
                    // Not read by the paths measured here; a real row carries ~90 bytes more.
                    email_sealed: None,
                    display_name: None,
                    status: if kind.active() { "active" } else { "suspended" }.into(),
                    email_verified: true,
                    phone_verified: matches!(kind, Kind::Phone | Kind::Suspended),
                    created_at: at,
                    updated_at: at,
                    sms_sent_total: u64::from(matches!(kind, Kind::Phone | Kind::Suspended)) as i64,
                }
                .into_active_model(),
            );
            let row = |n: u8, kind: &str, status: &str, source: String| {
                evidence::Model {
                    id: format!(
                        "evd_{}",
                        vouch::crypto::hex(&hash64("vouch-bench evidence", i * 4 + n as u64)[..16])
                    ),
                    account_id: id.clone(),
                    kind: kind.into(),
                    kind_sealed: None,
                    status: status.into(),
                    source,
                    verified_at: at,
                    expires_at: None,
                    created_at: at,
                    updated_at: at,
                }
                .into_active_model()
            };
            evidence_rows.push(row(0, "email", "active", "email".into()));
            match kind {
                Kind::Phone | Kind::Suspended => {
                    evidence_rows.push(row(1, "phone", "active", "sms".into()))
                }
                Kind::Paying => {
                    evidence_rows.push(row(1, "payment", "active", format!("stripe:sub_pop{i}")))
                }
                Kind::Canceled => {
                    evidence_rows.push(row(1, "payment", "lapsed", format!("stripe:sub_pop{i}")))
                }
                Kind::EmailOnly => {}
            }
            seq += 1;
            entries.push(status_list_entry::ActiveModel {
                account_id: Set(id),
                list_id: Set(LIST_ID),
                idx: Set(status_index(i) as i64),
                value: Set(match kind {
                    k if k.entitled() => 0,
                    Kind::Suspended => 2,
                    _ => 1,
                }),
                seq: Set(seq),
            });
        }
        let txn = db.begin().await?;
        for chunk in accounts.chunks(ROWS_PER_INSERT) {
            account::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
        for chunk in evidence_rows.chunks(ROWS_PER_INSERT) {
            evidence::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
        for chunk in entries.chunks(ROWS_PER_INSERT) {
            status_list_entry::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
        txn.commit().await?;
        start = end;
    }
    Ok(to)
}

/// splitmix64: a small, fast, seedable generator (the draws only need to be well spread).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How requests pick their account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dist {
    Uniform,
    /// Zipf with exponent 1.1 over the accounts, ranked in a random order: a few accounts are
    /// asked about very often, most rarely, as in real traffic.
    Zipf,
}

/// Draws accounts from a set of population indices.
pub struct Sampler {
    set: Vec<u64>,
    /// Zipf: cumulative weights of the ranks; rank r is `set[r]` after the shuffle.
    cdf: Option<Vec<f64>>,
}

impl Sampler {
    pub fn new(mut set: Vec<u64>, dist: Dist, rng: &mut Rng) -> Self {
        // Shuffle, so a rank says nothing about an account's index.
        for i in (1..set.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            set.swap(i, j);
        }
        let cdf = (dist == Dist::Zipf).then(|| {
            let mut total = 0.0;
            set.iter()
                .enumerate()
                .map(|(r, _)| {
                    total += 1.0 / ((r + 1) as f64).powf(1.1);
                    total
                })
                .collect::<Vec<f64>>()
        });
        Sampler { set, cdf }
    }

    pub fn draw(&self, rng: &mut Rng) -> u64 {
        match &self.cdf {
            None => self.set[rng.below(self.set.len() as u64) as usize],
            Some(cdf) => {
                let x = rng.unit() * cdf[cdf.len() - 1];
                let r = cdf.partition_point(|c| *c < x).min(cdf.len() - 1);
                self.set[r]
            }
        }
    }

    /// The `n`-th account of the shuffled set (each once, for distinct draws).
    pub fn nth(&self, n: usize) -> u64 {
        self.set[n % self.set.len()]
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }
}

pub fn entitled(accounts: u64) -> Vec<u64> {
    (0..accounts).filter(|i| kind(*i).entitled()).collect()
}

pub fn active(accounts: u64) -> Vec<u64> {
    (0..accounts).filter(|i| kind(*i).active()).collect()
}

/// One request line for `bench/wrk-post.lua`: `PATH \t BODY [\t HEADER: VALUE]`.
pub fn line(
    out: &mut impl Write,
    path: &str,
    body: &str,
    header: Option<(&str, &str)>,
) -> std::io::Result<()> {
    match header {
        None => writeln!(out, "{path}\t{body}"),
        Some((name, value)) => writeln!(out, "{path}\t{body}\t{name}: {value}"),
    }
}

/// A Stripe `customer.subscription.updated` event for a new subscription of account `i`,
/// compact (no tabs or newlines), and its `Stripe-Signature` made as Stripe makes it.
pub fn stripe_event(
    run: &str,
    n: usize,
    account: &str,
    secret: &str,
    now: DateTime<Utc>,
) -> (String, String) {
    let t = now.timestamp();
    let body = serde_json::json!({
        "id": format!("evt_{run}{n}"),
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": t,
        "livemode": false,
        "type": "customer.subscription.updated",
        "data": {"object": {
            "id": format!("sub_{run}{n}"),
            "object": "subscription",
            "customer": format!("cus_{run}{n}"),
            "status": "active",
            "metadata": {"vouch_account_id": account},
            "items": {"object": "list", "data": [{"id": format!("si_{run}{n}"), "object": "subscription_item",
                "current_period_start": t, "current_period_end": t + 30 * 86_400}]},
        }},
    })
    .to_string();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let mac = aws_lc_rs::hmac::sign(&key, format!("{t}.{body}").as_bytes());
    (
        body,
        format!("t={t},v1={}", vouch::crypto::hex(mac.as_ref())),
    )
}

/// A distinct, valid North American mobile-format number for draw `n` (area codes that exist,
/// exchanges 200–999), so per-number and per-prefix limits see different destinations.
pub fn phone_number(n: usize) -> String {
    const AREAS: [u32; 16] = [
        201, 202, 212, 213, 305, 312, 415, 503, 617, 646, 702, 713, 718, 805, 917, 971,
    ];
    let area = AREAS[n % AREAS.len()];
    let rest = n / AREAS.len();
    let exchange = 200 + (rest / 10_000) % 800;
    let line = rest % 10_000;
    format!("+1{area}{exchange:03}{line:04}")
}
