//! Revoked tokens: an index on `expires_at`, which every instance's purge reads every few
//! seconds. (The revocation mirror reads by `seq`, the primary key, which is indexed already.)

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_revoked_token_expires_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(RevokedToken::Table)
                    .col(RevokedToken::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(RevokedToken::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum RevokedToken {
    Table,
    ExpiresAt,
}
