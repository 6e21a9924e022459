//! Evidence, signing keys and revoked tokens.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_foundation::Account;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Evidence::Table)
                    .if_not_exists()
                    .col(string(Evidence::Id).primary_key())
                    .col(string(Evidence::AccountId))
                    .col(string(Evidence::Kind))
                    .col(string(Evidence::Status))
                    .col(string(Evidence::Source))
                    .col(timestamp_with_time_zone(Evidence::VerifiedAt))
                    .col(timestamp_with_time_zone_null(Evidence::ExpiresAt))
                    .col(timestamp_with_time_zone(Evidence::CreatedAt))
                    .col(timestamp_with_time_zone(Evidence::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_evidence_account")
                            .from(Evidence::Table, Evidence::AccountId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One row per (account, kind, source): a later change of the same evidence updates it.
        manager
            .create_index(
                Index::create()
                    .name("idx_evidence_account_kind_source")
                    .table(Evidence::Table)
                    .col(Evidence::AccountId)
                    .col(Evidence::Kind)
                    .col(Evidence::Source)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SigningKey::Table)
                    .if_not_exists()
                    .col(string(SigningKey::Kid).primary_key())
                    .col(string(SigningKey::Alg))
                    .col(text(SigningKey::PublicJwk))
                    .col(text(SigningKey::PrivateKeySealed))
                    .col(timestamp_with_time_zone(SigningKey::CreatedAt))
                    .col(timestamp_with_time_zone(SigningKey::ActivatesAt))
                    .col(timestamp_with_time_zone_null(SigningKey::RetiresAt))
                    .col(timestamp_with_time_zone_null(SigningKey::RemovesAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RevokedToken::Table)
                    .if_not_exists()
                    .col(big_pk_auto(RevokedToken::Seq))
                    .col(string_uniq(RevokedToken::Jti))
                    .col(string(RevokedToken::AccountId))
                    .col(timestamp_with_time_zone(RevokedToken::RevokedAt))
                    .col(timestamp_with_time_zone(RevokedToken::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RevokedToken::Table.into_iden(),
            SigningKey::Table.into_iden(),
            Evidence::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Evidence {
    Table,
    Id,
    AccountId,
    Kind,
    Status,
    Source,
    VerifiedAt,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SigningKey {
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

#[derive(DeriveIden)]
enum RevokedToken {
    Table,
    Seq,
    Jti,
    AccountId,
    RevokedAt,
    ExpiresAt,
}
