//! Token Status Lists (draft-ietf-oauth-status-list): the packed bit array, its zlib +
//! base64url encoding, the per-account status values and the `status` claim tokens carry.
//! The lists live in memory on every instance ([`cache`]); the database holds who has which
//! index and each index's value (`services::status_lists`).

pub mod cache;
pub mod settings;

use std::io::Write as _;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use flate2::{write::ZlibEncoder, Compression};
use serde_json::{json, Value};

/// Bits per index in Vouch's lists: three values are used (see [`StatusValue`]).
pub const BITS: u8 = 2;

/// The value of an account's index, as the draft's status types spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusValue {
    /// 0, VALID: the account is entitled to E2EE now.
    Entitled = 0,
    /// 1, INVALID: not entitled (never was, lapsed, revoked or erased). Also the value of every
    /// index no account holds, so a list fails closed.
    NotEntitled = 1,
    /// 2, SUSPENDED: the account is suspended.
    Suspended = 2,
}

impl StatusValue {
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(value: u8) -> Option<StatusValue> {
        match value {
            0 => Some(StatusValue::Entitled),
            1 => Some(StatusValue::NotEntitled),
            2 => Some(StatusValue::Suspended),
            _ => None,
        }
    }
}

/// Where an account's status lives: list `list_id`, index `idx`. All of an account's tokens
/// carry the same reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusRef {
    pub list_id: i64,
    pub idx: u32,
}

/// The URI of a list, which is also its `sub`: `<issuer>/v1/status-lists/<id>`.
pub fn list_uri(issuer: &str, list_id: i64) -> String {
    format!("{}/v1/status-lists/{list_id}", issuer.trim_end_matches('/'))
}

/// The value of a token's `status` claim: `{"status_list": {"idx", "uri"}}`.
pub fn status_claim(reference: &StatusRef, issuer: &str) -> Value {
    json!({
        "status_list": {
            "idx": reference.idx,
            "uri": list_uri(issuer, reference.list_id),
        }
    })
}

/// A fixed-size array of `bits`-bit values packed as the draft says: index 0 in the least
/// significant bits of byte 0, each byte filled from its least significant bits up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusArray {
    bits: u8,
    len: u32,
    bytes: Vec<u8>,
}

impl StatusArray {
    /// `len` indices of `bits` bits (1, 2, 4 or 8; anything else means 8), each set to `fill`.
    pub fn new(bits: u8, len: u32, fill: u8) -> StatusArray {
        let bits = if matches!(bits, 1 | 2 | 4 | 8) {
            bits
        } else {
            8
        };
        let per_byte = 8 / bits as u32;
        let mut byte = 0u8;
        for slot in 0..per_byte {
            byte |= (fill & mask(bits)) << (slot * bits as u32);
        }
        StatusArray {
            bits,
            len,
            bytes: vec![byte; len.div_ceil(per_byte) as usize],
        }
    }

    pub fn bits(&self) -> u8 {
        self.bits
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn position(&self, idx: u32) -> (usize, u32) {
        let per_byte = 8 / self.bits as u32;
        (
            (idx / per_byte) as usize,
            (idx % per_byte) * self.bits as u32,
        )
    }

    /// The value at `idx`; `None` past the end.
    pub fn get(&self, idx: u32) -> Option<u8> {
        if idx >= self.len {
            return None;
        }
        let (byte, shift) = self.position(idx);
        Some((self.bytes[byte] >> shift) & mask(self.bits))
    }

    /// Set `idx` to `value`; `false` (and nothing changes) past the end or when the value
    /// does not fit in `bits`.
    pub fn set(&mut self, idx: u32, value: u8) -> bool {
        if idx >= self.len || value > mask(self.bits) {
            return false;
        }
        let (byte, shift) = self.position(idx);
        let b = &mut self.bytes[byte];
        *b = (*b & !(mask(self.bits) << shift)) | (value << shift);
        true
    }

    /// `lst`: base64url (no padding) of the zlib-compressed bytes.
    pub fn encode(&self) -> String {
        encode_lst(&self.bytes)
    }
}

fn mask(bits: u8) -> u8 {
    if bits >= 8 {
        0xff
    } else {
        (1u8 << bits) - 1
    }
}

/// base64url (no padding) of zlib (RFC 1950). The draft RECOMMENDS the highest level; level 4
/// is used instead, because lists are rebuilt on every instance whenever they change (every
/// 250 ms under steady changes) and level 9 is pathological on sparse lists.
pub fn encode_lst(bytes: &[u8]) -> String {
    let mut encoder = ZlibEncoder::new(
        Vec::with_capacity(bytes.len() / 16 + 64),
        // Level 4: a list with a tenth of 2^20 indices set compresses in ~6 ms (level 9: ~300 ms,
        // which under steady changes kept a core busy rebuilding every 250 ms) to ~14 % more bytes.
        Compression::new(4),
    );
    // Writing to a Vec cannot fail.
    let compressed: Vec<u8> = encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .unwrap_or_default();
    B64.encode(compressed)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn inflate(lst: &str) -> Vec<u8> {
        let compressed = B64.decode(lst).unwrap();
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(compressed.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// draft-ietf-oauth-status-list, "Status List" examples: a 1-bit list of 16 indices.
    #[test]
    fn the_drafts_one_bit_example() {
        let values = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1];
        let mut list = StatusArray::new(1, 16, 0);
        for (i, v) in values.iter().enumerate() {
            assert!(list.set(i as u32, *v));
        }
        assert_eq!(list.bytes(), &[0xb9, 0xa3]);
        assert_eq!(inflate("eNrbuRgAAhcBXQ"), vec![0xb9, 0xa3]);
        // The draft's encoding is zlib at level 9, this one at level 4 (`encode_lst`): the
        // bytes can differ, what they inflate to cannot.
        assert_eq!(inflate(&list.encode()), vec![0xb9, 0xa3]);
        for (i, v) in values.iter().enumerate() {
            assert_eq!(list.get(i as u32), Some(*v));
        }
    }

    /// The draft's 2-bit example: 12 indices, values 0 to 3.
    #[test]
    fn the_drafts_two_bit_example() {
        let values = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3];
        let mut list = StatusArray::new(2, 12, 0);
        for (i, v) in values.iter().enumerate() {
            assert!(list.set(i as u32, *v));
        }
        assert_eq!(list.bytes(), &[0xc9, 0x44, 0xf9]);
        assert_eq!(inflate("eNo76fITAAPfAgc"), vec![0xc9, 0x44, 0xf9]);
        assert_eq!(inflate(&list.encode()), vec![0xc9, 0x44, 0xf9]);
        for (i, v) in values.iter().enumerate() {
            assert_eq!(list.get(i as u32), Some(*v));
        }
    }

    #[test]
    fn a_new_list_is_filled_and_bounded() {
        let mut list = StatusArray::new(2, 1 << 20, StatusValue::NotEntitled.as_u8());
        assert_eq!(list.bytes().len(), 1 << 18);
        assert!(list.bytes().iter().all(|b| *b == 0x55));
        assert_eq!(list.get((1 << 20) - 1), Some(1));
        assert_eq!(list.get(1 << 20), None);
        assert!(!list.set(1 << 20, 0));
        assert!(!list.set(0, 4));
        assert!(list.set(5, StatusValue::Suspended.as_u8()));
        assert_eq!(list.get(5), Some(2));
        assert_eq!(list.get(4), Some(1));
        assert_eq!(list.get(6), Some(1));
        // A list whose length is not a multiple of the indices per byte still has a last byte.
        assert_eq!(StatusArray::new(2, 5, 0).bytes().len(), 2);
        let decoded = inflate(&list.encode());
        assert_eq!(decoded, list.bytes());
    }

    #[test]
    fn the_claim_names_the_list_and_index() {
        let claim = status_claim(
            &StatusRef {
                list_id: 3,
                idx: 12345,
            },
            "https://vouch.example/",
        );
        assert_eq!(
            claim,
            json!({"status_list": {"idx": 12345, "uri": "https://vouch.example/v1/status-lists/3"}})
        );
    }

    #[test]
    fn values_round_trip() {
        for v in [
            StatusValue::Entitled,
            StatusValue::NotEntitled,
            StatusValue::Suspended,
        ] {
            assert_eq!(StatusValue::from_u8(v.as_u8()), Some(v));
        }
        assert_eq!(StatusValue::from_u8(3), None);
    }
}
