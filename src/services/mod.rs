//! The only code that talks to the database. Functions take `&impl ConnectionTrait` so they
//! compose inside one transaction with their audit entry.

pub mod accounts;
pub mod audit;
pub mod backlog;
pub mod billing;
pub mod clients;
pub mod decisions;
pub mod erasure;
pub mod evidence;
pub mod exceptions;
pub mod jitsi_keys;
pub mod keys;
pub mod livekit;
pub mod outbox;
pub mod overview;
pub mod page;
pub mod revocations;
pub mod status_lists;
pub mod verifications;
pub mod webhooks;

/// A stored enum column read back: a value this version does not know is a database error
/// (logged, a 500), never a guess at a default.
pub fn stored<T: std::str::FromStr>(
    column: &'static str,
    value: &str,
) -> Result<T, sea_orm::DbErr> {
    value
        .parse()
        .map_err(|_| sea_orm::DbErr::Custom(format!("unknown stored {column} `{value}`")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{account::AccountStatus, role::Role},
        error::{ApiError, ErrorCode},
    };

    #[test]
    fn an_unknown_stored_value_is_an_internal_error_not_a_default() {
        assert_eq!(
            stored::<AccountStatus>("account status", "suspended").unwrap(),
            AccountStatus::Suspended
        );
        let err = stored::<Role>("client role", "superuser").unwrap_err();
        assert!(matches!(err, sea_orm::DbErr::Custom(_)));
        let api = ApiError::from(err);
        assert_eq!(api.code, ErrorCode::InternalError);
        assert_eq!(api.status.as_u16(), 500);
        // Stored strings are matched exactly, as they were written.
        assert!(stored::<AccountStatus>("account status", "Active").is_err());
    }
}
