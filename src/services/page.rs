//! Cursor pagination: `?limit=` (default 50, max 200) and an opaque `?cursor=`.

use crate::error::ErrorCode;
use base64::{
    alphabet,
    engine::{
        general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD},
        DecodePaddingMode,
    },
    Engine as _,
};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const DEFAULT_LIMIT: u64 = 50;
const MAX_CURSOR_BYTES: usize = 128;

/// base64url without padding, as cursors are issued, read without insisting that the unused
/// bits of the last character are zero.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);
pub const MAX_LIMIT: u64 = 200;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// `next_cursor` from the previous page.
    #[param(pattern = r"^([A-Za-z0-9_-]{4}){0,42}([A-Za-z0-9_-]{2,3})?$")]
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<u64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::bad_request(
                ErrorCode::InvalidLimit,
                "limit must be between 1 and 200",
            )),
        }
    }

    /// The decoded cursor: the sort key of the last item already returned. A cursor is a
    /// position in the sort order and any text is one (a key no item has falls between two
    /// that do), so whatever decodes is taken: only text that is not base64url, or longer than
    /// any cursor we issue, is refused. An empty `?cursor=` asks for the first page.
    pub fn after(&self) -> Result<Option<String>, ApiError> {
        let Some(cursor) = self.cursor.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        LENIENT
            .decode(cursor)
            .ok()
            .filter(|b| b.len() <= MAX_CURSOR_BYTES)
            .map(|b| Some(String::from_utf8_lossy(&b).into_owned()))
            .ok_or_else(|| {
                ApiError::bad_request(ErrorCode::InvalidCursor, "cursor is not one we issued")
            })
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `?cursor=` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Build a page from up to `limit + 1` rows: the extra row only says there is more.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        limit: u64,
        key: impl Fn(&R) -> String,
        map: impl Fn(R) -> T,
    ) -> Page<T> {
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| URL_SAFE_NO_PAD.encode(key(r)))
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(map).collect(),
            next_cursor,
        }
    }

    /// `from_rows` with a mapping that can fail (a stored value this version does not know).
    pub fn try_from_rows<R, E>(
        rows: Vec<R>,
        limit: u64,
        key: impl Fn(&R) -> String,
        map: impl Fn(R) -> Result<T, E>,
    ) -> Result<Page<T>, E> {
        let page = Page::from_rows(rows, limit, key, map);
        Ok(Page {
            items: page.items.into_iter().collect::<Result<_, E>>()?,
            next_cursor: page.next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(cursor: &str) -> Result<Option<String>, ApiError> {
        PageQuery {
            limit: None,
            cursor: Some(cursor.to_owned()),
        }
        .after()
    }

    #[test]
    fn cursors_decode_leniently_and_an_empty_one_is_the_first_page() {
        // Found by the cursor_decode fuzz target and schemathesis: `?cursor=` is how many
        // clients spell "no cursor".
        assert_eq!(after("").unwrap(), None);
        let issued = URL_SAFE_NO_PAD.encode("acc_0192f5c8");
        assert_eq!(after(&issued).unwrap().as_deref(), Some("acc_0192f5c8"));
        // Any base64url text is a position in the sort order, even with stray trailing bits
        // or bytes that are not UTF-8.
        assert!(after("Oe7").unwrap().is_some());
        assert!(after("hDd").unwrap().is_some());
        // Not base64url, an impossible length, or longer than any cursor we issue: refused.
        for bad in ["!!!", "a", "abcde", &"A".repeat(200)] {
            assert!(after(bad).is_err(), "{bad}");
        }
    }
}
