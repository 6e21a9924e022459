//! Small cryptographic helpers over aws-lc-rs: hashing, randomness, constant-time comparison,
//! and sealing secrets at rest under the master key (AES-256-GCM, record id as associated data).

use aws_lc_rs::{
    aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN},
    digest, hmac, rand,
};
use base64::{engine::general_purpose::STANDARD, Engine as _};

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&sha256(data))
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The system RNG failing is unrecoverable; nothing secure can be done without it.
    rand::fill(&mut buf).expect("system random number generator failed");
    buf
}

/// Constant-time equality for secrets of equal length.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, thiserror::Error)]
#[error("sealed data could not be opened (wrong master key or tampered data)")]
pub struct OpenError;

/// The master key, held in memory only.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        MasterKey(bytes)
    }

    /// A separate key for one purpose (HMAC-SHA256 of `purpose` under this key), so data of
    /// one kind is never sealed under the key that seals another.
    pub fn derive(&self, purpose: &str) -> MasterKey {
        MasterKey(hmac_sha256(&self.0, purpose.as_bytes()))
    }

    fn key(&self) -> LessSafeKey {
        // 32 bytes is always a valid AES-256 key.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).expect("32-byte AES key"))
    }

    /// HMAC-SHA256 of `data` under this key; use it on a `derive`d key, never on the master.
    pub fn hmac(&self, data: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, data)
    }

    /// base64(nonce || ciphertext || tag), bound to `aad` (e.g. the record's id).
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> String {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        self.key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM sealing cannot fail for in-memory buffers");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        STANDARD.encode(out)
    }

    pub fn open(&self, aad: &str, sealed: &str) -> Result<Vec<u8>, OpenError> {
        let raw = STANDARD.decode(sealed).map_err(|_| OpenError)?;
        if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(OpenError);
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError)?;
        let mut buf = rest.to_vec();
        let plain = self
            .key()
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| OpenError)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealing_round_trips_and_binds_the_record_id() {
        let k = MasterKey::new([7u8; 32]);
        let sealed = k.seal("key-1", b"secret");
        assert!(!sealed.contains("secret"));
        assert_eq!(k.open("key-1", &sealed).unwrap(), b"secret");
        assert!(k.open("key-2", &sealed).is_err(), "moved to another record");
        assert!(MasterKey::new([8u8; 32]).open("key-1", &sealed).is_err());
        assert!(k.open("key-1", "not base64!").is_err());
    }

    #[test]
    fn derived_keys_are_distinct_and_stable() {
        let k = MasterKey::new([7u8; 32]);
        let a = k.derive("vouch exceptions v1");
        let sealed = a.seal("exc_1", b"statement");
        assert_eq!(
            k.derive("vouch exceptions v1")
                .open("exc_1", &sealed)
                .unwrap(),
            b"statement"
        );
        assert!(
            k.open("exc_1", &sealed).is_err(),
            "not the master key itself"
        );
        assert!(k.derive("another purpose").open("exc_1", &sealed).is_err());
        assert!(MasterKey::new([8u8; 32])
            .derive("vouch exceptions v1")
            .open("exc_1", &sealed)
            .is_err());
    }

    #[test]
    fn helpers() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        // RFC 4231 test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let k = MasterKey::new([1u8; 32]);
        assert_eq!(k.derive("a").hmac(b"x"), k.derive("a").hmac(b"x"));
        assert_ne!(k.derive("a").hmac(b"x"), k.derive("b").hmac(b"x"));
        assert_eq!(
            k.derive("a").hmac(b"x"),
            hmac_sha256(&hmac_sha256(&[1u8; 32], b"a"), b"x")
        );
    }
}
