//! Token signing keys; the private half is sealed under the master key.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_key")]
pub struct Model {
    /// RFC 7638 thumbprint of the public key: unique per key, never reused.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// `EdDSA`, `ES256` or `RS256`.
    pub alg: String,
    /// Public JWK (JSON object).
    #[sea_orm(column_type = "Text")]
    pub public_jwk: String,
    /// base64(nonce || AES-256-GCM(PKCS#8 DER)), the kid as associated data.
    #[sea_orm(column_type = "Text")]
    pub private_key_sealed: String,
    /// Published in the JWKS from this instant.
    pub created_at: DateTimeUtc,
    /// Signs from this instant (at least one JWKS max-age after `created_at`).
    pub activates_at: DateTimeUtc,
    /// Stops signing at this instant (set when a successor is scheduled).
    pub retires_at: Option<DateTimeUtc>,
    /// Leaves the JWKS at this instant (its last token has expired).
    pub removes_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
