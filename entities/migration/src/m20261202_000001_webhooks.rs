//! Webhook endpoints, the event outbox and one delivery row per event and endpoint.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoint::Table)
                    .if_not_exists()
                    .col(string(WebhookEndpoint::Id).primary_key())
                    .col(text(WebhookEndpoint::Url))
                    .col(string_null(WebhookEndpoint::Description))
                    .col(text_null(WebhookEndpoint::Events))
                    .col(string(WebhookEndpoint::Status))
                    .col(text(WebhookEndpoint::SecretSealed))
                    .col(text_null(WebhookEndpoint::PreviousSecretSealed))
                    .col(timestamp_with_time_zone_null(
                        WebhookEndpoint::PreviousSecretExpiresAt,
                    ))
                    .col(string(WebhookEndpoint::CreatedBy))
                    .col(timestamp_with_time_zone(WebhookEndpoint::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookEndpoint::UpdatedAt))
                    .col(timestamp_with_time_zone_null(WebhookEndpoint::DisabledAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookEvent::Table)
                    .if_not_exists()
                    .col(string(WebhookEvent::Id).primary_key())
                    .col(string(WebhookEvent::Type))
                    .col(text(WebhookEvent::Body))
                    .col(timestamp_with_time_zone(WebhookEvent::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDelivery::Table)
                    .if_not_exists()
                    .col(string(WebhookDelivery::Id).primary_key())
                    .col(string(WebhookDelivery::EndpointId))
                    .col(string(WebhookDelivery::EventId))
                    .col(string(WebhookDelivery::EventType))
                    .col(string(WebhookDelivery::Status))
                    .col(integer(WebhookDelivery::Attempts))
                    .col(timestamp_with_time_zone(WebhookDelivery::NextAttemptAt))
                    .col(integer_null(WebhookDelivery::LastStatusCode))
                    .col(string_null(WebhookDelivery::LastError))
                    .col(timestamp_with_time_zone(WebhookDelivery::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookDelivery::UpdatedAt))
                    .col(timestamp_with_time_zone_null(WebhookDelivery::DeliveredAt))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_webhook_delivery_due",
                vec![WebhookDelivery::Status, WebhookDelivery::NextAttemptAt],
            ),
            (
                "idx_webhook_delivery_endpoint",
                vec![WebhookDelivery::EndpointId, WebhookDelivery::Id],
            ),
            ("idx_webhook_delivery_event", vec![WebhookDelivery::EventId]),
            (
                "idx_webhook_delivery_settled",
                vec![WebhookDelivery::Status, WebhookDelivery::UpdatedAt],
            ),
        ] {
            let mut index = Index::create();
            index
                .name(name)
                .table(WebhookDelivery::Table)
                .if_not_exists();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_event_created")
                    .table(WebhookEvent::Table)
                    .col(WebhookEvent::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookDelivery::Table.into_iden(),
            WebhookEvent::Table.into_iden(),
            WebhookEndpoint::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum WebhookEndpoint {
    Table,
    Id,
    Url,
    Description,
    Events,
    Status,
    SecretSealed,
    PreviousSecretSealed,
    PreviousSecretExpiresAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    DisabledAt,
}

#[derive(DeriveIden)]
enum WebhookEvent {
    Table,
    Id,
    Type,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WebhookDelivery {
    Table,
    Id,
    EndpointId,
    EventId,
    EventType,
    Status,
    Attempts,
    NextAttemptAt,
    LastStatusCode,
    LastError,
    CreatedAt,
    UpdatedAt,
    DeliveredAt,
}
