//! Standard Webhooks secrets and signatures: `whsec_<base64 of 32 random bytes>`, and
//! `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the decoded secret.

use base64::{engine::general_purpose::STANDARD, Engine as _};

use crate::crypto::{hmac_sha256, random_bytes};

pub const SECRET_PREFIX: &str = "whsec_";

/// A fresh endpoint secret.
pub fn generate_secret() -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(random_bytes::<32>()))
}

/// The HMAC key a secret stands for (the bytes after `whsec_`, base64-decoded).
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .ok()
        .filter(|k| !k.is_empty())
}

/// One `v1,<signature>` for the message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mac = hmac_sha256(key, format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac))
}

/// The `webhook-signature` header value: one signature per key, space-separated (several while
/// a rotation overlaps).
pub fn header(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &str) -> String {
    keys.iter()
        .map(|k| sign(k, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks specification's examples.
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_32_random_bytes_and_rotation_signs_twice() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(secret_key(&a).unwrap().len(), 32);
        let keys = [secret_key(&a).unwrap(), secret_key(&b).unwrap()];
        let h = header(&keys, "msg_1", 1, "{}");
        let parts: Vec<_> = h.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign(&keys[0], "msg_1", 1, "{}"));
        assert_eq!(parts[1], sign(&keys[1], "msg_1", 1, "{}"));
        assert!(secret_key("whsec_!!").is_none());
    }
}
