//! Billing: verified Stripe events (deduplicated by id) and account ↔ customer links.

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
                    .table(StripeEvent::Table)
                    .if_not_exists()
                    .col(string(StripeEvent::Id).primary_key())
                    .col(string(StripeEvent::EventType))
                    .col(timestamp_with_time_zone(StripeEvent::Created))
                    .col(boolean(StripeEvent::Livemode))
                    .col(string_null(StripeEvent::SubscriptionId))
                    .col(string_null(StripeEvent::CustomerId))
                    .col(string_null(StripeEvent::AccountRef))
                    .col(string_null(StripeEvent::Effect))
                    .col(string_null(StripeEvent::SubscriptionStatus))
                    .col(timestamp_with_time_zone_null(StripeEvent::CurrentPeriodEnd))
                    .col(string(StripeEvent::Outcome))
                    .col(timestamp_with_time_zone(StripeEvent::ReceivedAt))
                    .col(timestamp_with_time_zone_null(StripeEvent::AppliedAt))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_stripe_event_subscription", StripeEvent::SubscriptionId),
            ("idx_stripe_event_customer", StripeEvent::CustomerId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(StripeEvent::Table)
                        .col(col)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(BillingCustomer::Table)
                    .if_not_exists()
                    .col(string(BillingCustomer::CustomerId).primary_key())
                    .col(string_uniq(BillingCustomer::AccountId))
                    .col(timestamp_with_time_zone(BillingCustomer::LinkedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_billing_customer_account")
                            .from(BillingCustomer::Table, BillingCustomer::AccountId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            BillingCustomer::Table.into_iden(),
            StripeEvent::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum StripeEvent {
    Table,
    Id,
    EventType,
    Created,
    Livemode,
    SubscriptionId,
    CustomerId,
    AccountRef,
    Effect,
    SubscriptionStatus,
    CurrentPeriodEnd,
    Outcome,
    ReceivedAt,
    AppliedAt,
}

#[derive(DeriveIden)]
enum BillingCustomer {
    Table,
    CustomerId,
    AccountId,
    LinkedAt,
}
