//! Exception categories sealed at rest, and a retention hold on a request's sealed text.
//!
//! `exception_request.category_sealed` and `evidence.kind_sealed` hold the category
//! (`nonprofit`/`dissident`) sealed under the master key; the plaintext columns keep a neutral
//! value (`sealed`, `exception`). Migrations cannot see the master key, so this one only adds
//! the columns; at start-up the service seals what older versions stored in plaintext, clears
//! it, and re-chains the audit log it rewrites (`services::exceptions::seal_plaintext_categories`).
//!
//! The one-pending-request-per-category index named the category; it goes (writers run one at
//! a time, so the service checks it inside the submitting transaction instead).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_exception_request_one_pending")
                    .table(ExceptionRequest::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        // SQLite alters one column per statement.
        for column in [
            text_null(ExceptionRequest::CategorySealed),
            string_null(ExceptionRequest::RetentionHoldBy),
            timestamp_with_time_zone_null(ExceptionRequest::RetentionHoldAt),
            text_null(ExceptionRequest::RetentionHoldReasonSealed),
        ] {
            let mut column = column;
            manager
                .alter_table(
                    Table::alter()
                        .table(ExceptionRequest::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Evidence::Table)
                    .add_column(text_null(Evidence::KindSealed))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Evidence::Table)
                    .drop_column(Evidence::KindSealed)
                    .to_owned(),
            )
            .await?;
        for column in [
            ExceptionRequest::RetentionHoldReasonSealed,
            ExceptionRequest::RetentionHoldAt,
            ExceptionRequest::RetentionHoldBy,
            ExceptionRequest::CategorySealed,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ExceptionRequest::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ExceptionRequest {
    Table,
    CategorySealed,
    RetentionHoldBy,
    RetentionHoldAt,
    RetentionHoldReasonSealed,
}

#[derive(DeriveIden)]
enum Evidence {
    Table,
    KindSealed,
}
