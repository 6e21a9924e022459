//! Accounts, API clients and the audit log.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Account::Table)
                    .if_not_exists()
                    .col(string(Account::Id).primary_key())
                    .col(string_uniq(Account::ExternalId))
                    .col(string_null(Account::Email))
                    .col(string_null(Account::DisplayName))
                    .col(string(Account::Status))
                    .col(boolean(Account::EmailVerified))
                    .col(boolean(Account::PhoneVerified))
                    .col(timestamp_with_time_zone(Account::CreatedAt))
                    .col(timestamp_with_time_zone(Account::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApiClient::Table)
                    .if_not_exists()
                    .col(string(ApiClient::Id).primary_key())
                    .col(string_uniq(ApiClient::Name))
                    .col(string(ApiClient::Role))
                    .col(string_uniq(ApiClient::KeyHash))
                    .col(string(ApiClient::KeyPrefix))
                    .col(timestamp_with_time_zone(ApiClient::CreatedAt))
                    .col(string(ApiClient::CreatedBy))
                    .col(timestamp_with_time_zone_null(ApiClient::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .if_not_exists()
                    .col(big_integer(AuditLog::Seq).primary_key())
                    .col(timestamp_with_time_zone(AuditLog::At))
                    .col(string(AuditLog::Actor))
                    .col(string(AuditLog::Action))
                    .col(string(AuditLog::TargetType))
                    .col(string(AuditLog::TargetId))
                    .col(text(AuditLog::Details))
                    .col(string(AuditLog::PrevHash))
                    .col(string(AuditLog::Hash))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_audit_log_action", AuditLog::Action),
            ("idx_audit_log_target_id", AuditLog::TargetId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuditLog::Table)
                        .col(col)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuditLog::Table.into_iden(),
            ApiClient::Table.into_iden(),
            Account::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
pub enum Account {
    Table,
    Id,
    ExternalId,
    Email,
    DisplayName,
    Status,
    EmailVerified,
    PhoneVerified,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApiClient {
    Table,
    Id,
    Name,
    Role,
    KeyHash,
    KeyPrefix,
    CreatedAt,
    CreatedBy,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Seq,
    At,
    Actor,
    Action,
    TargetType,
    TargetId,
    Details,
    PrevHash,
    Hash,
}
