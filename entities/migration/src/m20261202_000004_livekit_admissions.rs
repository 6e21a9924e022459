//! LiveKit admissions (who was let into which room, until when) and the removals outbox
//! (`RemoveParticipant` calls waiting to be sent when an admitted account lapses).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LivekitAdmission::Table)
                    .if_not_exists()
                    .col(string(LivekitAdmission::Id).primary_key())
                    .col(string(LivekitAdmission::AccountId))
                    .col(string(LivekitAdmission::Room))
                    .col(string(LivekitAdmission::Identity))
                    .col(string(LivekitAdmission::Jti))
                    .col(timestamp_with_time_zone(LivekitAdmission::ExpiresAt))
                    .col(timestamp_with_time_zone(LivekitAdmission::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LivekitRemoval::Table)
                    .if_not_exists()
                    .col(string(LivekitRemoval::Id).primary_key())
                    .col(string(LivekitRemoval::Room))
                    .col(string(LivekitRemoval::Identity))
                    // Set while the removal waits (room and identity), cleared once it settles:
                    // the unique index keeps one waiting removal per room and identity.
                    .col(string_null(LivekitRemoval::PendingKey))
                    .col(string(LivekitRemoval::Status))
                    .col(integer(LivekitRemoval::Attempts))
                    .col(timestamp_with_time_zone(LivekitRemoval::NextAttemptAt))
                    .col(integer_null(LivekitRemoval::LastStatusCode))
                    .col(string_null(LivekitRemoval::LastError))
                    .col(timestamp_with_time_zone(LivekitRemoval::CreatedAt))
                    .col(timestamp_with_time_zone(LivekitRemoval::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        let indexes: [(&str, LivekitAdmission, Vec<LivekitAdmission>); 3] = [
            (
                "idx_livekit_admission_account",
                LivekitAdmission::Table,
                vec![LivekitAdmission::AccountId],
            ),
            (
                "idx_livekit_admission_jti",
                LivekitAdmission::Table,
                vec![LivekitAdmission::Jti],
            ),
            (
                "idx_livekit_admission_expires",
                LivekitAdmission::Table,
                vec![LivekitAdmission::ExpiresAt],
            ),
        ];
        for (name, table, cols) in indexes {
            let mut index = Index::create();
            index.name(name).table(table).if_not_exists();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_livekit_removal_pending_key")
                    .table(LivekitRemoval::Table)
                    .col(LivekitRemoval::PendingKey)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_livekit_removal_due",
                [LivekitRemoval::Status, LivekitRemoval::NextAttemptAt],
            ),
            (
                "idx_livekit_removal_settled",
                [LivekitRemoval::Status, LivekitRemoval::UpdatedAt],
            ),
        ] {
            let mut index = Index::create();
            index
                .name(name)
                .table(LivekitRemoval::Table)
                .if_not_exists();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LivekitRemoval::Table.into_iden(),
            LivekitAdmission::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum LivekitAdmission {
    Table,
    Id,
    AccountId,
    Room,
    Identity,
    Jti,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LivekitRemoval {
    Table,
    Id,
    Room,
    Identity,
    PendingKey,
    Status,
    Attempts,
    NextAttemptAt,
    LastStatusCode,
    LastError,
    CreatedAt,
    UpdatedAt,
}
