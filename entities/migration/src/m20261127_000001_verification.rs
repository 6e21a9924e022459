//! Email and phone verification: verifications, their send log (rate limits), the delivery
//! outbox, and the verified phone behind each account's `phone` evidence.

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
                    .table(Verification::Table)
                    .if_not_exists()
                    .col(string(Verification::Id).primary_key())
                    .col(string(Verification::AccountId))
                    .col(string(Verification::Channel))
                    .col(string(Verification::DestinationHash))
                    .col(string(Verification::ToMasked))
                    .col(string(Verification::CodeHash))
                    .col(string(Verification::Status))
                    .col(integer(Verification::Attempts))
                    .col(integer(Verification::MaxAttempts))
                    .col(timestamp_with_time_zone(Verification::ExpiresAt))
                    .col(timestamp_with_time_zone(Verification::CreatedAt))
                    .col(timestamp_with_time_zone(Verification::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Verification::ApprovedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_verification_account")
                            .from(Verification::Table, Verification::AccountId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_verification_account_destination")
                    .table(Verification::Table)
                    .col(Verification::AccountId)
                    .col(Verification::DestinationHash)
                    .col(Verification::Status)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(VerificationSend::Table)
                    .if_not_exists()
                    .col(big_pk_auto(VerificationSend::Seq))
                    .col(string(VerificationSend::AccountId))
                    .col(string(VerificationSend::Channel))
                    .col(string(VerificationSend::DestinationHash))
                    .col(timestamp_with_time_zone(VerificationSend::SentAt))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            (
                "idx_verification_send_destination",
                VerificationSend::DestinationHash,
            ),
            ("idx_verification_send_account", VerificationSend::AccountId),
            ("idx_verification_send_channel", VerificationSend::Channel),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(VerificationSend::Table)
                        .col(col)
                        .col(VerificationSend::SentAt)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(OutboxMessage::Table)
                    .if_not_exists()
                    .col(string(OutboxMessage::Id).primary_key())
                    .col(string_uniq(OutboxMessage::VerificationId))
                    .col(string(OutboxMessage::Channel))
                    .col(string(OutboxMessage::RecipientMasked))
                    .col(text_null(OutboxMessage::PayloadSealed))
                    .col(string(OutboxMessage::Status))
                    .col(integer(OutboxMessage::Attempts))
                    .col(timestamp_with_time_zone(OutboxMessage::NextAttemptAt))
                    .col(timestamp_with_time_zone(OutboxMessage::ExpiresAt))
                    .col(string_null(OutboxMessage::LastError))
                    .col(string_null(OutboxMessage::ProviderRef))
                    .col(timestamp_with_time_zone(OutboxMessage::CreatedAt))
                    .col(timestamp_with_time_zone(OutboxMessage::UpdatedAt))
                    .col(timestamp_with_time_zone_null(OutboxMessage::DeliveredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_outbox_message_verification")
                            .from(OutboxMessage::Table, OutboxMessage::VerificationId)
                            .to(Verification::Table, Verification::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_message_due")
                    .table(OutboxMessage::Table)
                    .col(OutboxMessage::Status)
                    .col(OutboxMessage::NextAttemptAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(VerifiedPhone::Table)
                    .if_not_exists()
                    .col(string(VerifiedPhone::AccountId).primary_key())
                    .col(string(VerifiedPhone::PhoneHash))
                    .col(string(VerifiedPhone::PhoneMasked))
                    .col(string(VerifiedPhone::VerificationId))
                    .col(timestamp_with_time_zone(VerifiedPhone::VerifiedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_verified_phone_account")
                            .from(VerifiedPhone::Table, VerifiedPhone::AccountId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_verified_phone_hash")
                    .table(VerifiedPhone::Table)
                    .col(VerifiedPhone::PhoneHash)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            VerifiedPhone::Table.into_iden(),
            OutboxMessage::Table.into_iden(),
            VerificationSend::Table.into_iden(),
            Verification::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Verification {
    Table,
    Id,
    AccountId,
    Channel,
    DestinationHash,
    ToMasked,
    CodeHash,
    Status,
    Attempts,
    MaxAttempts,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
    ApprovedAt,
}

#[derive(DeriveIden)]
enum VerificationSend {
    Table,
    Seq,
    AccountId,
    Channel,
    DestinationHash,
    SentAt,
}

#[derive(DeriveIden)]
enum OutboxMessage {
    Table,
    Id,
    VerificationId,
    Channel,
    RecipientMasked,
    PayloadSealed,
    Status,
    Attempts,
    NextAttemptAt,
    ExpiresAt,
    LastError,
    ProviderRef,
    CreatedAt,
    UpdatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum VerifiedPhone {
    Table,
    AccountId,
    PhoneHash,
    PhoneMasked,
    VerificationId,
    VerifiedAt,
}
