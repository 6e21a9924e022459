//! DPoP proofs from meeting servers (`dpop` at authorize and the exchanges): raw text, and
//! proofs whose claims are arbitrary bytes but carry a valid signature of a device key named in
//! the header (so the claim checks after the signature are reached too). Nothing may panic, and
//! a proof passes only with the endpoint's htu, POST, this token's ath, a Vouch nonce and an
//! iat inside the window.
#![no_main]

use std::sync::OnceLock;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use vouch::{
    config::{Algorithm, Settings},
    crypto::MasterKey,
    tokens::{
        dpop::{access_token_hash, Dpop, Endpoint, Proof},
        keys::{self, Signer},
    },
};

const TOKEN: &str = "the.token.presented";

struct Fixture {
    dpop: Dpop,
    signer: Signer,
    header: String,
    jkt: String,
    now: DateTime<Utc>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let generated = keys::generate(Algorithm::EdDSA).expect("a key");
        let (signer, jwk) = keys::parse(Algorithm::EdDSA, &generated.pkcs8).expect("parsed");
        let header = serde_json::json!({
            "typ": "dpop+jwt", "alg": "EdDSA",
            "jwk": {"kty": "OKP", "crv": "Ed25519", "x": jwk.x},
        });
        Fixture {
            dpop: Dpop::new(&Settings::defaults().tokens, &MasterKey::new([7; 32])),
            signer,
            header: B64.encode(header.to_string()),
            jkt: jwk.kid,
            now: DateTime::from_timestamp(1_800_000_000, 0).expect("a valid time"),
        }
    })
}

fn check(f: &Fixture, raw: &str) {
    let Ok(proof) = Proof::parse(raw) else {
        return;
    };
    if f
        .dpop
        .check(&proof, &f.jkt, TOKEN, Endpoint::Authorize, f.now)
        .is_ok()
    {
        // Only a proof with every claim right passes.
        let claims: serde_json::Value = raw
            .split('.')
            .nth(1)
            .and_then(|c| B64.decode(c).ok())
            .and_then(|c| serde_json::from_slice(&c).ok())
            .expect("a passing proof has JSON claims");
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["ath"], access_token_hash(TOKEN).as_str());
        assert!(claims["nonce"].is_string());
        let iat = claims["iat"].as_i64().expect("an integer iat");
        assert!(iat.abs_diff(f.now.timestamp()) <= 90);
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        check(f, &String::from_utf8_lossy(rest));
    } else {
        // Arbitrary claims under a real signature of the device key.
        let input = format!("{}.{}", f.header, B64.encode(rest));
        let sig = f.signer.sign(input.as_bytes()).expect("signed");
        check(f, &format!("{input}.{}", B64.encode(sig)));
    }
});
