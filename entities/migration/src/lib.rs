//! Schema migrations, applied in order by `vouch migrate` and on `vouch serve`.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_foundation;
mod m20261126_000002_tokens;
mod m20261126_000005_billing;
mod m20261126_000006_exceptions;
mod m20261127_000001_verification;
mod m20261201_100000_revocation_expiry_index;
mod m20261201_110000_principals;
mod m20261201_110001_audit_mac;
mod m20261201_110002_account_email_sealed;
mod m20261201_120000_sms_fraud_limits;
mod m20261202_000001_webhooks;
mod m20261202_000002_status_lists;
mod m20261202_000003_decisions;
mod m20261202_000004_livekit_admissions;
mod m20261202_000005_jitsi_keys;
mod m20261203_000001_account_revocations;
mod m20261203_000002_seal_categories;
mod m20261204_000001_outbox_created_index;
mod m20261206_000001_evidence_source_index;
mod m20261206_000002_traceparent;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_foundation::Migration),
            Box::new(m20261126_000002_tokens::Migration),
            Box::new(m20261126_000005_billing::Migration),
            Box::new(m20261126_000006_exceptions::Migration),
            Box::new(m20261127_000001_verification::Migration),
            Box::new(m20261201_100000_revocation_expiry_index::Migration),
            Box::new(m20261201_110000_principals::Migration),
            Box::new(m20261201_110001_audit_mac::Migration),
            Box::new(m20261201_110002_account_email_sealed::Migration),
            Box::new(m20261201_120000_sms_fraud_limits::Migration),
            Box::new(m20261202_000001_webhooks::Migration),
            Box::new(m20261202_000002_status_lists::Migration),
            Box::new(m20261202_000003_decisions::Migration),
            Box::new(m20261202_000004_livekit_admissions::Migration),
            Box::new(m20261202_000005_jitsi_keys::Migration),
            Box::new(m20261203_000001_account_revocations::Migration),
            Box::new(m20261203_000002_seal_categories::Migration),
            Box::new(m20261204_000001_outbox_created_index::Migration),
            Box::new(m20261206_000001_evidence_source_index::Migration),
            Box::new(m20261206_000002_traceparent::Migration),
        ]
    }
}
