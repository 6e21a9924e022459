//! Principals: each API client is bound to the person (or system) behind it, so four-eyes
//! review counts people rather than keys. Existing clients become their own principal.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        // A default is required to add a NOT NULL column to existing rows on SQLite; every row
        // is filled in right after, and new rows always carry a principal.
        manager
            .alter_table(
                Table::alter()
                    .table(ApiClient::Table)
                    .add_column(string(ApiClient::Principal).default(""))
                    .to_owned(),
            )
            .await?;
        conn.execute_unprepared("UPDATE api_client SET principal = name")
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(ExceptionApproval::Table)
                    .add_column(string(ExceptionApproval::ReviewerPrincipal).default(""))
                    .to_owned(),
            )
            .await?;
        conn.execute_unprepared(
            "UPDATE exception_approval SET reviewer_principal = COALESCE(\
             (SELECT c.principal FROM api_client c WHERE c.id = exception_approval.reviewer_client), \
             reviewer)",
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_exception_approval_principal")
                    .table(ExceptionApproval::Table)
                    .col(ExceptionApproval::ExceptionId)
                    .col(ExceptionApproval::ReviewerPrincipal)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(ExceptionRequest::Table)
                    .add_column(string(ExceptionRequest::SubmittedByPrincipal).default(""))
                    .to_owned(),
            )
            .await?;
        conn.execute_unprepared(
            "UPDATE exception_request SET submitted_by_principal = COALESCE(\
             (SELECT c.principal FROM api_client c WHERE c.id = exception_request.submitted_by_client), \
             submitted_by)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_exception_approval_principal")
                    .table(ExceptionApproval::Table)
                    .to_owned(),
            )
            .await?;
        for (table, column) in [
            (
                ExceptionRequest::Table.into_iden(),
                ExceptionRequest::SubmittedByPrincipal.into_iden(),
            ),
            (
                ExceptionApproval::Table.into_iden(),
                ExceptionApproval::ReviewerPrincipal.into_iden(),
            ),
            (
                ApiClient::Table.into_iden(),
                ApiClient::Principal.into_iden(),
            ),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum ApiClient {
    Table,
    Principal,
}

#[derive(DeriveIden)]
enum ExceptionApproval {
    Table,
    ExceptionId,
    ReviewerPrincipal,
}

#[derive(DeriveIden)]
enum ExceptionRequest {
    Table,
    SubmittedByPrincipal,
}
