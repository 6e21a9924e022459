//! Status-list positions and values in the database: each account's `(list, index)`, handed
//! out in random order within fixed-size lists, and its current value. Every change bumps the
//! entry's `seq` above all others, and instances mirror the table by `seq` (see
//! `status_list::cache`).
//!
//! Write inside a write transaction (`Db::begin_write`): `seq` is the table's highest plus
//! one, which is sound because write transactions run one at a time and become visible in
//! that order (see `services::revocations::after`), and a random index is checked free
//! before it is taken.

use entities::{status_list, status_list_entry};
use sea_orm::{
    sea_query::{Expr, ExprTrait as _},
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::{
    crypto::random_bytes,
    status_list::{settings::new_list_size, StatusRef, StatusValue},
};

/// Random candidates tried at once before scanning the list for a gap.
const CANDIDATES: usize = 16;
/// Indices read per query while scanning for a gap.
const SCAN_PAGE: u64 = 4096;

/// A change to mirror: index `idx` of list `list_id` now holds `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub list_id: i64,
    pub idx: u32,
    pub value: u8,
    pub seq: i64,
}

/// The account's position, giving it one first if it has none (value 1, not entitled); new
/// lists get the configured `status_lists.list_size`. Call it in the transaction that creates
/// the account.
#[tracing::instrument(skip_all)]
pub async fn allocate(conn: &impl ConnectionTrait, account_id: &str) -> Result<StatusRef, DbErr> {
    allocate_sized(conn, account_id, new_list_size()).await
}

/// [`allocate`], with `new_list_size` indices in a list created for it.
pub async fn allocate_sized(
    conn: &impl ConnectionTrait,
    account_id: &str,
    new_list_size: u32,
) -> Result<StatusRef, DbErr> {
    if let Some(existing) = position(conn, account_id).await? {
        return Ok(existing);
    }
    // A list whose count says it has room but has none (it cannot happen while writers are
    // serialized) is marked full, and the next list is tried.
    for _ in 0..3 {
        let list = open_list(conn, new_list_size).await?;
        let Some(idx) = free_index(conn, &list).await? else {
            status_list::Entity::update_many()
                .col_expr(
                    status_list::Column::Allocated,
                    Expr::col(status_list::Column::Size),
                )
                .filter(status_list::Column::Id.eq(list.id))
                .exec(conn)
                .await?;
            continue;
        };
        let seq = next_seq(conn).await?;
        status_list_entry::Entity::insert(status_list_entry::ActiveModel {
            account_id: Set(account_id.to_owned()),
            list_id: Set(list.id),
            idx: Set(idx as i64),
            value: Set(StatusValue::NotEntitled.as_u8() as i16),
            seq: Set(seq),
        })
        .exec_without_returning(conn)
        .await?;
        status_list::Entity::update_many()
            .col_expr(
                status_list::Column::Allocated,
                Expr::col(status_list::Column::Allocated).add(1),
            )
            .filter(status_list::Column::Id.eq(list.id))
            .exec(conn)
            .await?;
        return Ok(StatusRef {
            list_id: list.id,
            idx,
        });
    }
    Err(DbErr::Custom("no status list index is free".into()))
}

/// The account's position, if it has one.
pub async fn position(
    conn: &impl ConnectionTrait,
    account_id: &str,
) -> Result<Option<StatusRef>, DbErr> {
    Ok(status_list_entry::Entity::find_by_id(account_id.to_owned())
        .one(conn)
        .await?
        .map(|e| StatusRef {
            list_id: e.list_id,
            idx: e.idx as u32,
        }))
}

/// The account's stored value, if it has a position; a value this version does not know is an
/// error, not "no value".
pub async fn value(
    conn: &impl ConnectionTrait,
    account_id: &str,
) -> Result<Option<StatusValue>, DbErr> {
    let Some(entry) = status_list_entry::Entity::find_by_id(account_id.to_owned())
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    u8::try_from(entry.value)
        .ok()
        .and_then(StatusValue::from_u8)
        .map(Some)
        .ok_or_else(|| DbErr::Custom(format!("unknown stored status-list value {}", entry.value)))
}

/// Store the account's value (in the caller's transaction); `true` if it changed. An account
/// without a position gets one first. Every instance's lists show the change within a second
/// of the commit.
#[tracing::instrument(skip_all, fields(value = value.as_u8()))]
pub async fn set(
    conn: &impl ConnectionTrait,
    account_id: &str,
    value: StatusValue,
) -> Result<bool, DbErr> {
    let current = match status_list_entry::Entity::find_by_id(account_id.to_owned())
        .one(conn)
        .await?
    {
        Some(entry) => entry.value,
        None => {
            allocate(conn, account_id).await?;
            StatusValue::NotEntitled.as_u8() as i16
        }
    };
    if current == value.as_u8() as i16 {
        return Ok(false);
    }
    let seq = next_seq(conn).await?;
    status_list_entry::Entity::update_many()
        .col_expr(
            status_list_entry::Column::Value,
            Expr::value(value.as_u8() as i16),
        )
        .col_expr(status_list_entry::Column::Seq, Expr::value(seq))
        .filter(status_list_entry::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?;
    Ok(true)
}

/// Mark the account changed without changing its value: anything its snapshot is made of
/// (evidence, status) changed. Its entry's `seq` moves past every other, so every instance's
/// poll sees it and forgets its cached snapshot (`tokens::live::AccountCache`). Nothing for
/// an account without an entry.
pub async fn touch(conn: &impl ConnectionTrait, account_id: &str) -> Result<(), DbErr> {
    let seq = next_seq(conn).await?;
    status_list_entry::Entity::update_many()
        .col_expr(status_list_entry::Column::Seq, Expr::value(seq))
        .filter(status_list_entry::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// An entry that changed, and whose it is.
#[derive(Debug, Clone)]
pub struct Changed {
    pub account_id: String,
    pub change: Change,
}

/// Up to `limit` entries changed after `cursor`, in `seq` order. A poller pages with the last
/// `seq` it read until a page comes back short; from cursor 0 it reads every entry.
pub async fn changes_after(
    conn: &impl ConnectionTrait,
    cursor: i64,
    limit: u64,
) -> Result<Vec<Changed>, DbErr> {
    let rows: Vec<(String, i64, i64, i16, i64)> = status_list_entry::Entity::find()
        .select_only()
        .column(status_list_entry::Column::AccountId)
        .column(status_list_entry::Column::ListId)
        .column(status_list_entry::Column::Idx)
        .column(status_list_entry::Column::Value)
        .column(status_list_entry::Column::Seq)
        .filter(status_list_entry::Column::Seq.gt(cursor))
        .order_by_asc(status_list_entry::Column::Seq)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(account_id, list_id, idx, value, seq)| Changed {
            account_id,
            change: Change {
                list_id,
                idx: idx as u32,
                value: value as u8,
                seq,
            },
        })
        .collect())
}

/// Every list, in id order.
pub async fn lists(conn: &impl ConnectionTrait) -> Result<Vec<status_list::Model>, DbErr> {
    status_list::Entity::find()
        .order_by_asc(status_list::Column::Id)
        .all(conn)
        .await
}

/// The highest `seq` now, plus one.
async fn next_seq(conn: &impl ConnectionTrait) -> Result<i64, DbErr> {
    let max: Option<Option<i64>> = status_list_entry::Entity::find()
        .select_only()
        .column_as(status_list_entry::Column::Seq.max(), "max_seq")
        .into_tuple()
        .one(conn)
        .await?;
    Ok(max.flatten().unwrap_or(0) + 1)
}

/// The first list with room, or a new one after the last.
async fn open_list(
    conn: &impl ConnectionTrait,
    new_list_size: u32,
) -> Result<status_list::Model, DbErr> {
    if let Some(list) = status_list::Entity::find()
        .filter(Expr::col(status_list::Column::Allocated).lt(Expr::col(status_list::Column::Size)))
        .order_by_asc(status_list::Column::Id)
        .one(conn)
        .await?
    {
        return Ok(list);
    }
    let last: Option<Option<i64>> = status_list::Entity::find()
        .select_only()
        .column_as(status_list::Column::Id.max(), "max_id")
        .into_tuple()
        .one(conn)
        .await?;
    let list = status_list::Model {
        id: last.flatten().unwrap_or(0) + 1,
        size: Ord::max(new_list_size, 1) as i64,
        allocated: 0,
    };
    status_list::Entity::insert(status_list::ActiveModel {
        id: Set(list.id),
        size: Set(list.size),
        allocated: Set(0),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(list)
}

/// A free index of `list` chosen at random: a few random draws at once, then (in an almost
/// full list) the first gap after a random start, wrapping around. `None` if it is full.
async fn free_index(
    conn: &impl ConnectionTrait,
    list: &status_list::Model,
) -> Result<Option<u32>, DbErr> {
    let size = Ord::max(list.size, 1) as u64;
    let bytes = random_bytes::<{ CANDIDATES * 8 }>();
    let candidates: Vec<i64> = bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            (u64::from_le_bytes(b) % size) as i64
        })
        .collect();
    let taken: Vec<i64> = status_list_entry::Entity::find()
        .select_only()
        .column(status_list_entry::Column::Idx)
        .filter(status_list_entry::Column::ListId.eq(list.id))
        .filter(status_list_entry::Column::Idx.is_in(candidates.clone()))
        .into_tuple()
        .all(conn)
        .await?;
    if let Some(free) = candidates.iter().find(|c| !taken.contains(c)) {
        return Ok(Some(*free as u32));
    }
    let start = candidates[0];
    if let Some(free) = first_gap(conn, list.id, start, size as i64).await? {
        return Ok(Some(free));
    }
    first_gap(conn, list.id, 0, start).await
}

/// The lowest free index in `from..until` of the list.
async fn first_gap(
    conn: &impl ConnectionTrait,
    list_id: i64,
    from: i64,
    until: i64,
) -> Result<Option<u32>, DbErr> {
    let mut expected = from;
    while expected < until {
        let taken: Vec<i64> = status_list_entry::Entity::find()
            .select_only()
            .column(status_list_entry::Column::Idx)
            .filter(status_list_entry::Column::ListId.eq(list_id))
            .filter(status_list_entry::Column::Idx.gte(expected))
            .filter(status_list_entry::Column::Idx.lt(until))
            .order_by_asc(status_list_entry::Column::Idx)
            .limit(SCAN_PAGE)
            .into_tuple()
            .all(conn)
            .await?;
        let full_page = taken.len() as u64 == SCAN_PAGE;
        for idx in taken {
            if idx > expected {
                return Ok(Some(expected as u32));
            }
            expected = idx + 1;
        }
        if !full_page {
            break;
        }
    }
    Ok((expected < until).then_some(expected as u32))
}
