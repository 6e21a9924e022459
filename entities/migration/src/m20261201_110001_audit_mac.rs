//! A keyed MAC on each audit entry (HMAC-SHA256 under a key derived from the master key), so
//! nobody without the master key can rewrite the chain. Migrations cannot see the master key:
//! existing entries stay unkeyed here, and the service keys the chain once at start-up by
//! appending a keyed `audit.chain_keyed` entry that covers them (see `services::audit`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuditLog::Table)
                    .add_column(string_null(AuditLog::Mac))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuditLog::Table)
                    .drop_column(AuditLog::Mac)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Mac,
}
