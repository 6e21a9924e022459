//! Account-wide token revocations (`POST /v1/accounts/{id}/tokens/revoke`): mirrored by every
//! instance by `seq`, like single revocations, and purged by `expires_at`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const EXPIRES_INDEX: &str = "idx_account_revocation_expires_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccountRevocation::Table)
                    .if_not_exists()
                    .col(big_pk_auto(AccountRevocation::Seq))
                    .col(string(AccountRevocation::AccountId))
                    .col(timestamp_with_time_zone(AccountRevocation::RevokedBefore))
                    .col(timestamp_with_time_zone(AccountRevocation::RevokedAt))
                    .col(timestamp_with_time_zone(AccountRevocation::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(EXPIRES_INDEX)
                    .table(AccountRevocation::Table)
                    .col(AccountRevocation::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccountRevocation::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AccountRevocation {
    Table,
    Seq,
    AccountId,
    RevokedBefore,
    RevokedAt,
    ExpiresAt,
}
