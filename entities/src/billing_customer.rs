//! The link between an account and its Stripe customer, set with `PUT /v1/accounts/{id}/billing`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "billing_customer")]
pub struct Model {
    /// Stripe's customer id (`cus_...`); one account per customer.
    #[sea_orm(primary_key, auto_increment = false)]
    pub customer_id: String,
    /// One customer per account.
    #[sea_orm(unique)]
    pub account_id: String,
    pub linked_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
