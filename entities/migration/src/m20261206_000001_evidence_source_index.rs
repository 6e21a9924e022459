//! An index on `evidence.source`: every Stripe event looks up the payment evidence of its
//! subscription (`stripe:<subscription id>`) on whichever account holds it, by source alone. Without
//! it that lookup scanned the whole table: ~5 ms per event at 10,000 accounts, growing with
//! every account (the performance issue's webhook benchmark).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_evidence_source";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Evidence::Table)
                    .col(Evidence::Source)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(Evidence::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Evidence {
    Table,
    Source,
}
