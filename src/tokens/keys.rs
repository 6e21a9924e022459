//! Signing keys: generation, the public JWK and its RFC 7638 thumbprint (our `kid`), and a
//! signer whose private key is parsed once (jsonwebtoken would re-parse it on every token).

use aws_lc_rs::{
    encoding::AsDer,
    rand::SystemRandom,
    rsa::KeySize,
    signature::{
        EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
        RSA_PKCS1_SHA256,
    },
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use jsonwebtoken::DecodingKey;
use serde::{Deserialize, Serialize};

use crate::{config::Algorithm, crypto::sha256};

/// A public key as published in the JWKS (RFC 7517).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwk {
    /// `OKP`, `EC` or `RSA`.
    pub kty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

#[derive(Debug, thiserror::Error)]
#[error("signing key error: {0}")]
pub struct KeyError(pub &'static str);

/// RFC 7638: SHA-256 over the required members, lexicographically ordered, no whitespace.
pub fn thumbprint(jwk: &Jwk) -> String {
    let s = |o: &Option<String>| o.as_deref().unwrap_or("").to_owned();
    let canonical = match jwk.kty.as_str() {
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            s(&jwk.crv),
            s(&jwk.x)
        ),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s(&jwk.crv),
            s(&jwk.x),
            s(&jwk.y)
        ),
        _ => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s(&jwk.e), s(&jwk.n)),
    };
    B64.encode(sha256(canonical.as_bytes()))
}

enum Pair {
    Ed(Ed25519KeyPair),
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A parsed key pair, ready to sign.
pub struct Signer {
    pair: Pair,
    rng: SystemRandom,
}

impl Signer {
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Ed(k) => Ok(k.sign(message).as_ref().to_vec()),
            Pair::Ec(k) => k
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError("ECDSA signing failed")),
            Pair::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
                    .map_err(|_| KeyError("RSA signing failed"))?;
                Ok(sig)
            }
        }
    }
}

/// A freshly generated key: its PKCS#8 private half (to be sealed) and its public JWK.
pub struct Generated {
    pub pkcs8: Vec<u8>,
    pub jwk: Jwk,
}

pub fn generate(alg: Algorithm) -> Result<Generated, KeyError> {
    let pkcs8 = match alg {
        Algorithm::EdDSA => Ed25519KeyPair::generate()
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|_| KeyError("Ed25519 generation failed"))?
            .as_ref()
            .to_vec(),
        Algorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map_err(|_| KeyError("P-256 generation failed"))?
            .as_ref()
            .to_vec(),
        Algorithm::RS256 => {
            let k = RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| KeyError("RSA generation failed"))?;
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&k)
                .map_err(|_| KeyError("RSA encoding failed"))?;
            der.as_ref().to_vec()
        }
    };
    let (_, jwk) = parse(alg, &pkcs8)?;
    Ok(Generated { pkcs8, jwk })
}

/// Parse a stored private key into a signer and its public JWK (with the thumbprint as kid).
pub fn parse(alg: Algorithm, pkcs8: &[u8]) -> Result<(Signer, Jwk), KeyError> {
    let mut jwk = Jwk {
        kty: String::new(),
        crv: None,
        x: None,
        y: None,
        n: None,
        e: None,
        kid: String::new(),
        alg: alg.as_str().to_owned(),
        use_: "sig".to_owned(),
    };
    let pair = match alg {
        Algorithm::EdDSA => {
            let k = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| KeyError("bad Ed25519 key"))?;
            jwk.kty = "OKP".into();
            jwk.crv = Some("Ed25519".into());
            jwk.x = Some(B64.encode(k.public_key().as_ref()));
            Pair::Ed(k)
        }
        Algorithm::ES256 => {
            let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                .map_err(|_| KeyError("bad P-256 key"))?;
            let point = k.public_key().as_ref();
            if point.len() != 65 || point[0] != 4 {
                return Err(KeyError("unexpected P-256 public key encoding"));
            }
            jwk.kty = "EC".into();
            jwk.crv = Some("P-256".into());
            jwk.x = Some(B64.encode(&point[1..33]));
            jwk.y = Some(B64.encode(&point[33..65]));
            Pair::Ec(k)
        }
        Algorithm::RS256 => {
            let k = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| KeyError("bad RSA key"))?;
            let public = k.public_key();
            jwk.kty = "RSA".into();
            jwk.n = Some(B64.encode(public.modulus().big_endian_without_leading_zero()));
            jwk.e = Some(B64.encode(public.exponent().big_endian_without_leading_zero()));
            Pair::Rsa(k)
        }
    };
    jwk.kid = thumbprint(&jwk);
    Ok((
        Signer {
            pair,
            rng: SystemRandom::new(),
        },
        jwk,
    ))
}

/// The jsonwebtoken verification key for a published JWK.
pub fn decoding_key(jwk: &Jwk) -> Result<DecodingKey, KeyError> {
    fn get(o: &Option<String>) -> Result<&str, KeyError> {
        o.as_deref().ok_or(KeyError("incomplete JWK"))
    }
    match jwk.kty.as_str() {
        "OKP" => DecodingKey::from_ed_components(get(&jwk.x)?).map_err(|_| KeyError("bad OKP JWK")),
        "EC" => DecodingKey::from_ec_components(get(&jwk.x)?, get(&jwk.y)?)
            .map_err(|_| KeyError("bad EC JWK")),
        "RSA" => DecodingKey::from_rsa_components(get(&jwk.n)?, get(&jwk.e)?)
            .map_err(|_| KeyError("bad RSA JWK")),
        _ => Err(KeyError("unknown key type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 section 3.1.
        let jwk = Jwk {
            kty: "RSA".into(),
            crv: None,
            x: None,
            y: None,
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
            kid: String::new(),
            alg: "RS256".into(),
            use_: "sig".into(),
        };
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn every_algorithm_generates_signs_and_verifies_through_jsonwebtoken() {
        for alg in [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256] {
            let generated = generate(alg).unwrap();
            let (signer, jwk) = parse(alg, &generated.pkcs8).unwrap();
            assert_eq!(jwk, generated.jwk);
            assert_eq!(jwk.kid.len(), 43);
            let header = B64.encode(format!(
                r#"{{"alg":"{}","typ":"JWT","kid":"{}"}}"#,
                alg.as_str(),
                jwk.kid
            ));
            let claims = B64.encode(r#"{"sub":"x","exp":99999999999}"#);
            let input = format!("{header}.{claims}");
            let token = format!(
                "{input}.{}",
                B64.encode(signer.sign(input.as_bytes()).unwrap())
            );
            let jwt_alg = alg.to_jwt();
            let mut v = jsonwebtoken::Validation::new(jwt_alg);
            v.required_spec_claims.clear();
            v.validate_aud = false;
            let data =
                jsonwebtoken::decode::<serde_json::Value>(&token, &decoding_key(&jwk).unwrap(), &v);
            assert!(data.is_ok(), "{alg:?}: {data:?}");
        }
    }
}
