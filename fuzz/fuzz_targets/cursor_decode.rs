//! `?cursor=` from callers: decoding never panics, refuses what we could not have issued, and
//! gives back exactly what we encoded.
#![no_main]

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use libfuzzer_sys::fuzz_target;
use vouch::services::page::PageQuery;

fuzz_target!(|data: &[u8]| {
    let cursor = String::from_utf8_lossy(data).into_owned();
    let query = PageQuery {
        limit: None,
        cursor: Some(cursor),
    };
    if let Ok(Some(after)) = query.after() {
        // At most 128 decoded bytes, each at worst a 3-byte replacement character.
        assert!(after.len() <= 3 * 128);
    }
    // Round trip of a cursor we issue for a sort key.
    if let Ok(key) = std::str::from_utf8(data) {
        // An empty cursor asks for the first page.
        if !key.is_empty() && key.len() <= 128 {
            let issued = PageQuery {
                limit: None,
                cursor: Some(URL_SAFE_NO_PAD.encode(key)),
            };
            assert_eq!(issued.after().ok().flatten().as_deref(), Some(key));
        }
    }
});
