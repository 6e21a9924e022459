//! Jitsi Meet signing keys: RSA keys of their own, so the E2EE tokens keep their algorithm
//! while Prosody gets the RS256 it verifies. The same columns and life cycle as `signing_key`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(JitsiKey::Table)
                    .if_not_exists()
                    .col(string(JitsiKey::Kid).primary_key())
                    .col(string(JitsiKey::Alg))
                    .col(text(JitsiKey::PublicJwk))
                    .col(text(JitsiKey::PrivateKeySealed))
                    .col(timestamp_with_time_zone(JitsiKey::CreatedAt))
                    .col(timestamp_with_time_zone(JitsiKey::ActivatesAt))
                    .col(timestamp_with_time_zone_null(JitsiKey::RetiresAt))
                    .col(timestamp_with_time_zone_null(JitsiKey::RemovesAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(JitsiKey::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum JitsiKey {
    Table,
    Kid,
    Alg,
    PublicJwk,
    PrivateKeySealed,
    CreatedAt,
    ActivatesAt,
    RetiresAt,
    RemovesAt,
}
