//! Nonprofit and dissident exceptions: requests (statements sealed) and reviewers' approvals.

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
                    .table(ExceptionRequest::Table)
                    .if_not_exists()
                    .col(string(ExceptionRequest::Id).primary_key())
                    .col(string(ExceptionRequest::AccountId))
                    .col(string(ExceptionRequest::Category))
                    .col(string(ExceptionRequest::Status))
                    .col(text_null(ExceptionRequest::StatementSealed))
                    .col(text_null(ExceptionRequest::OrganizationSealed))
                    .col(text_null(ExceptionRequest::ReferenceSealed))
                    .col(string(ExceptionRequest::SubmittedBy))
                    .col(string(ExceptionRequest::SubmittedByClient))
                    .col(timestamp_with_time_zone(ExceptionRequest::SubmittedAt))
                    .col(string_null(ExceptionRequest::DecidedBy))
                    .col(timestamp_with_time_zone_null(ExceptionRequest::DecidedAt))
                    .col(text_null(ExceptionRequest::DecisionReasonSealed))
                    .col(timestamp_with_time_zone_null(ExceptionRequest::ExpiresAt))
                    .col(string_null(ExceptionRequest::EvidenceId))
                    .col(string_null(ExceptionRequest::RevokedBy))
                    .col(timestamp_with_time_zone_null(ExceptionRequest::RevokedAt))
                    .col(text_null(ExceptionRequest::RevokeReasonSealed))
                    .col(timestamp_with_time_zone_null(ExceptionRequest::PurgedAt))
                    .col(timestamp_with_time_zone(ExceptionRequest::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_exception_request_account")
                            .from(ExceptionRequest::Table, ExceptionRequest::AccountId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_exception_request_account",
                vec![ExceptionRequest::AccountId],
            ),
            (
                "idx_exception_request_status",
                vec![ExceptionRequest::Status, ExceptionRequest::Id],
            ),
            (
                "idx_exception_request_expires",
                vec![ExceptionRequest::Status, ExceptionRequest::ExpiresAt],
            ),
        ] {
            let mut index = Index::create();
            index
                .name(name)
                .table(ExceptionRequest::Table)
                .if_not_exists();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        // At most one open request per account and category, even under concurrent submissions.
        manager
            .create_index(
                Index::create()
                    .name("idx_exception_request_one_pending")
                    .table(ExceptionRequest::Table)
                    .col(ExceptionRequest::AccountId)
                    .col(ExceptionRequest::Category)
                    .unique()
                    .and_where(Expr::col(ExceptionRequest::Status).eq("pending"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ExceptionApproval::Table)
                    .if_not_exists()
                    .col(string(ExceptionApproval::Id).primary_key())
                    .col(string(ExceptionApproval::ExceptionId))
                    .col(string(ExceptionApproval::Reviewer))
                    .col(string(ExceptionApproval::ReviewerClient))
                    .col(text_null(ExceptionApproval::ReasonSealed))
                    .col(timestamp_with_time_zone_null(ExceptionApproval::ExpiresAt))
                    .col(timestamp_with_time_zone(ExceptionApproval::ApprovedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_exception_approval_request")
                            .from(ExceptionApproval::Table, ExceptionApproval::ExceptionId)
                            .to(ExceptionRequest::Table, ExceptionRequest::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A reviewer approves a request once: distinct reviewers are counted by the database.
        manager
            .create_index(
                Index::create()
                    .name("idx_exception_approval_reviewer")
                    .table(ExceptionApproval::Table)
                    .col(ExceptionApproval::ExceptionId)
                    .col(ExceptionApproval::ReviewerClient)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ExceptionApproval::Table.into_iden(),
            ExceptionRequest::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ExceptionRequest {
    Table,
    Id,
    AccountId,
    Category,
    Status,
    StatementSealed,
    OrganizationSealed,
    ReferenceSealed,
    SubmittedBy,
    SubmittedByClient,
    SubmittedAt,
    DecidedBy,
    DecidedAt,
    DecisionReasonSealed,
    ExpiresAt,
    EvidenceId,
    RevokedBy,
    RevokedAt,
    RevokeReasonSealed,
    PurgedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ExceptionApproval {
    Table,
    Id,
    ExceptionId,
    Reviewer,
    ReviewerClient,
    ReasonSealed,
    ExpiresAt,
    ApprovedAt,
}
