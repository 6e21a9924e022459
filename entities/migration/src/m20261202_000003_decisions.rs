//! Decision changes: an index on `evidence.expires_at` (the maintenance loop looks for evidence
//! that lapsed by time alone every few seconds) and `instance_state`, small named values the
//! instances share (the fingerprint of the policy the stored decisions were computed with).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_evidence_expires_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Evidence::Table)
                    .col(Evidence::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InstanceState::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(InstanceState::Name)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(InstanceState::Value).string().not_null())
                    .col(
                        ColumnDef::new(InstanceState::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(InstanceState::Table).to_owned())
            .await?;
        manager
            .drop_index(Index::drop().name(INDEX).table(Evidence::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Evidence {
    Table,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum InstanceState {
    Table,
    Name,
    Value,
    UpdatedAt,
}
