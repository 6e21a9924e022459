//! Jitsi Meet signing keys (RS256, served as PEM for Prosody's `asap_key_server`); a key ring
//! of their own beside `signing_key`, the private half sealed under the master key alike.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jitsi_key")]
pub struct Model {
    /// RFC 7638 thumbprint of the public key; Prosody fetches `sha256_hex(kid).pem`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// Always `RS256` (what Prosody's token auth verifies with a fetched public key).
    pub alg: String,
    /// Public JWK (JSON object).
    #[sea_orm(column_type = "Text")]
    pub public_jwk: String,
    /// base64(nonce || AES-256-GCM(PKCS#8 DER)), the kid as associated data; empty once erased.
    #[sea_orm(column_type = "Text")]
    pub private_key_sealed: String,
    /// Served from this instant.
    pub created_at: DateTimeUtc,
    /// Signs from this instant.
    pub activates_at: DateTimeUtc,
    /// Stops signing at this instant (set when a successor is scheduled).
    pub retires_at: Option<DateTimeUtc>,
    /// No longer served from this instant (its last token has expired).
    pub removes_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
