//! SMS toll-fraud limits: the send log learns each SMS's country, number prefix (as a keyed
//! hash) and whether its account was young, and each account counts the SMS it was ever sent.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_foundation::Account;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time. Sends logged before
        // this migration have no country or prefix; they age out of every window within the
        // hour.
        for column in [
            string_null(VerificationSend::Region),
            string_null(VerificationSend::PrefixHash),
            boolean(VerificationSend::YoungAccount)
                .default(false)
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(VerificationSend::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Account::Table)
                    .add_column(big_integer(AccountSms::SmsSentTotal).default(0).to_owned())
                    .to_owned(),
            )
            .await?;
        // Every SMS ever sent started one verification, and verifications are not pruned (the
        // send log is): existing accounts start from what they were already sent.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE account SET sms_sent_total = (SELECT COUNT(*) FROM verification v \
                 WHERE v.account_id = account.id AND v.channel = 'sms')",
            )
            .await?;

        // Limits filter on these and a time window. Per-destination limits are now per account
        // and destination, so the destination-only index has no reader left.
        manager
            .drop_index(
                Index::drop()
                    .name("idx_verification_send_destination")
                    .table(VerificationSend::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_verification_send_account_destination",
                vec![
                    VerificationSend::AccountId,
                    VerificationSend::DestinationHash,
                ],
            ),
            (
                "idx_verification_send_region",
                vec![VerificationSend::Region],
            ),
            (
                "idx_verification_send_prefix",
                vec![VerificationSend::PrefixHash],
            ),
            (
                "idx_verification_send_young",
                vec![VerificationSend::YoungAccount],
            ),
        ] {
            let mut index = Index::create();
            index
                .name(name)
                .table(VerificationSend::Table)
                .if_not_exists();
            for col in cols {
                index.col(col);
            }
            manager
                .create_index(index.col(VerificationSend::SentAt).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "idx_verification_send_account_destination",
            "idx_verification_send_region",
            "idx_verification_send_prefix",
            "idx_verification_send_young",
        ] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(VerificationSend::Table)
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_verification_send_destination")
                    .table(VerificationSend::Table)
                    .col(VerificationSend::DestinationHash)
                    .col(VerificationSend::SentAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        for column in [
            VerificationSend::Region,
            VerificationSend::PrefixHash,
            VerificationSend::YoungAccount,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(VerificationSend::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Account::Table)
                    .drop_column(AccountSms::SmsSentTotal)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum VerificationSend {
    Table,
    AccountId,
    DestinationHash,
    SentAt,
    Region,
    PrefixHash,
    YoungAccount,
}

#[derive(DeriveIden)]
enum AccountSms {
    SmsSentTotal,
}
