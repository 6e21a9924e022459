//! Meeting-server adapters: exchange a Vouch token for the token a meeting server understands
//! (LiveKit today), and remove participants from it when their right ends.
//!
//! Every exchange checks the presented Vouch token exactly as authorize does (signature, time,
//! revocation, device binding, then the account as it is now) through [`check_presented`], and
//! refuses with a 403 whose `code` is authorize's reason.

pub mod livekit;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::{
    error::{ApiError, ErrorCode},
    state::AppState,
    tokens::{
        authorize::{check_account, check_token, Presented},
        valid_jkt,
        verify::{Reason, Verified},
    },
};

/// Longest room name an exchange accepts, in bytes.
pub const MAX_ROOM_BYTES: usize = 256;
/// Longest display name an exchange accepts, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// The checks every exchange makes on its input before looking at the token: `invalid_room`,
/// `invalid_name`, `invalid_device_jkt`, in that order.
pub fn validate_request(
    room: &str,
    name: Option<&str>,
    device_jkt: Option<&str>,
) -> Result<(), ApiError> {
    if room.is_empty()
        || room.len() > MAX_ROOM_BYTES
        || room.chars().any(char::is_control)
        || room.trim() != room
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidRoom,
            format!(
                "room must be 1 to {MAX_ROOM_BYTES} bytes, without control characters or surrounding spaces"
            ),
        ));
    }
    if let Some(name) = name {
        if name.trim().is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidName,
                format!(
                    "name must be 1 to {MAX_NAME_CHARS} characters, without control characters"
                ),
            ));
        }
    }
    if device_jkt.is_some_and(|jkt| !valid_jkt(jkt)) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidDeviceJkt,
            "device_jkt must be an RFC 7638 SHA-256 thumbprint (43 base64url characters)",
        ));
    }
    Ok(())
}

/// The refusal an exchange answers when authorize would say no: 403, `code` = the reason.
pub fn refused(reason: Reason) -> ApiError {
    let detail = match reason {
        Reason::InvalidToken => "the token is not a valid Vouch token",
        Reason::Expired => "the token has expired",
        Reason::WrongAudience => "the token is not meant for this audience",
        Reason::Revoked => "the token has been revoked",
        Reason::NotEntitled => "the account is not entitled to E2EE now",
        Reason::DeviceMismatch => "the token is bound to another device",
        Reason::AccountSuspended => "the account is suspended",
        Reason::Ok => "refused",
    };
    let code = match reason {
        Reason::InvalidToken => ErrorCode::InvalidToken,
        Reason::Expired => ErrorCode::Expired,
        Reason::WrongAudience => ErrorCode::WrongAudience,
        Reason::Revoked => ErrorCode::Revoked,
        Reason::NotEntitled => ErrorCode::NotEntitled,
        Reason::DeviceMismatch => ErrorCode::DeviceMismatch,
        Reason::AccountSuspended => ErrorCode::AccountSuspended,
        Reason::Ok => ErrorCode::Forbidden,
    };
    debug_assert!(reason == Reason::Ok || code.as_str() == reason.as_str());
    ApiError::forbidden(code, detail)
}

/// Check a presented Vouch token as authorize would; the verified token, or the 403 refusal.
pub async fn check_presented(
    state: &AppState,
    presented: Presented<'_>,
    now: DateTime<Utc>,
) -> Result<Arc<Verified>, ApiError> {
    let ring = state.keys.current();
    let verified = check_token(
        &state.verified_tokens,
        &ring,
        &state.revocations,
        &state.settings.tokens,
        presented,
        now,
    )
    .map_err(|denied| refused(denied.reason))?;
    let claims = &verified.1;
    let snapshot = state
        .accounts
        .snapshot(state.db.conn(), &claims.sub)
        .await?;
    let decision = check_account(&state.policy, claims, snapshot.as_deref(), now);
    if !decision.allow {
        return Err(refused(decision.reason));
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_checked_in_order() {
        let jkt = "A".repeat(43);
        assert!(validate_request("standup", Some("Ada"), Some(&jkt)).is_ok());
        assert!(validate_request("standup", None, None).is_ok());
        for room in ["", " padded", "tab\there", &"r".repeat(MAX_ROOM_BYTES + 1)] {
            let err = validate_request(room, None, None).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRoom, "{room:?}");
        }
        for name in ["", "  ", "new\nline", &"n".repeat(MAX_NAME_CHARS + 1)] {
            let err = validate_request("standup", Some(name), None).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidName, "{name:?}");
        }
        let err = validate_request("standup", None, Some("short")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidDeviceJkt);
    }

    #[test]
    fn a_refusal_is_a_403_named_by_the_reason() {
        let err = refused(Reason::NotEntitled);
        assert_eq!(err.status.as_u16(), 403);
        assert_eq!(err.code, ErrorCode::NotEntitled);
    }
}
