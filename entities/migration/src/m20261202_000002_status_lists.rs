//! Token Status Lists: the lists and each account's place in one. Existing accounts get an
//! index here, in random order, with the value 1 (not entitled) until the service computes
//! their decision.

use std::collections::HashMap;

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_foundation::Account;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The size of the lists this migration fills (the service's default `status_lists.list_size`).
const LIST_SIZE: u64 = 1 << 20;
/// Rows per INSERT statement while filling.
const BATCH: usize = 500;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StatusList::Table)
                    .if_not_exists()
                    .col(big_integer(StatusList::Id).primary_key())
                    .col(big_integer(StatusList::Size))
                    .col(big_integer(StatusList::Allocated))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StatusListEntry::Table)
                    .if_not_exists()
                    // No foreign key: the entry outlives an erased account, so its index is
                    // never given to another account while the old tokens may be checked.
                    .col(string(StatusListEntry::AccountId).primary_key())
                    .col(big_integer(StatusListEntry::ListId))
                    .col(big_integer(StatusListEntry::Idx))
                    .col(small_integer(StatusListEntry::Value))
                    .col(big_integer(StatusListEntry::Seq))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_status_list_entry_list_idx",
                vec![StatusListEntry::ListId, StatusListEntry::Idx],
            ),
            ("idx_status_list_entry_seq", vec![StatusListEntry::Seq]),
        ] {
            let mut index = Index::create();
            index
                .name(name)
                .table(StatusListEntry::Table)
                .unique()
                .if_not_exists();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        backfill(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            StatusListEntry::Table.into_iden(),
            StatusList::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Give every existing account an index: list after list, each filled with distinct indices
/// drawn at random, so an index says nothing about when its account was created.
async fn backfill(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let conn = manager.get_connection();
    let rows = conn
        .query_all(
            Query::select()
                .column(Account::Id)
                .from(Account::Table)
                .order_by(Account::Id, Order::Asc),
        )
        .await?;
    let ids = rows
        .iter()
        .map(|row| row.try_get::<String>("", "id"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seq: i64 = 0;
    for (n, chunk) in ids.chunks(LIST_SIZE as usize).enumerate() {
        let list_id = n as i64 + 1;
        conn.execute(
            Query::insert()
                .into_table(StatusList::Table)
                .columns([StatusList::Id, StatusList::Size, StatusList::Allocated])
                .values_panic([
                    list_id.into(),
                    (LIST_SIZE as i64).into(),
                    (chunk.len() as i64).into(),
                ]),
        )
        .await?;
        let indices = random_distinct(chunk.len(), LIST_SIZE)?;
        let pairs: Vec<(&String, u64)> = chunk.iter().zip(indices).collect();
        for batch in pairs.chunks(BATCH) {
            let mut insert = Query::insert();
            insert.into_table(StatusListEntry::Table).columns([
                StatusListEntry::AccountId,
                StatusListEntry::ListId,
                StatusListEntry::Idx,
                StatusListEntry::Value,
                StatusListEntry::Seq,
            ]);
            for (account_id, idx) in batch {
                seq += 1;
                insert.values_panic([
                    (*account_id).clone().into(),
                    list_id.into(),
                    (*idx as i64).into(),
                    1i16.into(),
                    seq.into(),
                ]);
            }
            conn.execute(&insert).await?;
        }
    }
    Ok(())
}

/// `count` distinct numbers below `range`, in random order (a partial Fisher-Yates shuffle of
/// 0..range, kept sparse).
fn random_distinct(count: usize, range: u64) -> Result<Vec<u64>, DbErr> {
    let mut swapped: HashMap<u64, u64> = HashMap::new();
    let mut out = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let j = i + random_below(range - i)?;
        let at_j = *swapped.get(&j).unwrap_or(&j);
        let at_i = *swapped.get(&i).unwrap_or(&i);
        swapped.insert(j, at_i);
        out.push(at_j);
    }
    Ok(out)
}

fn random_below(bound: u64) -> Result<u64, DbErr> {
    let mut buf = [0u8; 8];
    getrandom::fill(&mut buf).map_err(|e| DbErr::Migration(format!("no randomness: {e}")))?;
    // The bias of a 64-bit draw reduced modulo at most 2^20 is negligible.
    Ok(u64::from_le_bytes(buf) % bound)
}

#[derive(DeriveIden)]
enum StatusList {
    Table,
    Id,
    Size,
    Allocated,
}

#[derive(DeriveIden)]
enum StatusListEntry {
    Table,
    AccountId,
    ListId,
    Idx,
    Value,
    Seq,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_distinct_and_in_range() {
        let drawn = random_distinct(1000, 1024).unwrap();
        let set: std::collections::HashSet<_> = drawn.iter().collect();
        assert_eq!(set.len(), 1000);
        assert!(drawn.iter().all(|i| *i < 1024));
        let all = random_distinct(16, 16).unwrap();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..16).collect::<Vec<_>>());
    }
}
