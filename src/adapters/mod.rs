//! Meeting-server adapters: exchange a Vouch token for the token a meeting server understands
//! (LiveKit today), and remove participants from it when their right ends.
//!
//! Every exchange checks the presented Vouch token exactly as authorize does (signature, time,
//! revocation, device binding with `device_jkt` or a DPoP proof for the exchange's own URL,
//! then the account as it is now) through [`check_presented`], and refuses with a 403 whose
//! `code` is authorize's reason.

pub mod jitsi;
pub mod livekit;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::{
    error::{ApiError, ErrorCode},
    state::AppState,
    tokens::{
        authorize::{check_account, check_token, Authorization, Presented},
        dpop::NONCE_HEADER,
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

/// The refusal an exchange answers when authorize would say no for `reason` with nothing the
/// person can do about it (the token itself is the problem): 403, `code` = the reason, as
/// [`Authorization::refusal`] writes every exchange refusal.
pub fn refused(reason: Reason) -> ApiError {
    Authorization {
        allow: false,
        reason,
        account_id: None,
        entitlements: None,
        expires_at: None,
        required_actions: Vec::new(),
        detail: None,
        dpop_error: None,
    }
    .refusal()
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
        &state.dpop,
        presented,
        now,
    )
    .map_err(|denied| {
        // A refused proof needs a nonce for the next try, as authorize gives.
        let nonce = denied.dpop_error.map(|_| state.dpop.nonce(now).value);
        let refusal = denied.refusal();
        match nonce {
            Some(nonce) => refusal.with_header(NONCE_HEADER, &nonce),
            None => refusal,
        }
    })?;
    let claims = &verified.1;
    let snapshot = state
        .accounts
        .snapshot(state.db.conn(), &state.master_key, &claims.sub)
        .await?;
    let decision = check_account(&state.policy, claims, snapshot.as_deref(), now);
    if !decision.allow {
        return Err(decision.refusal());
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
