//! The token verifier behind authorize and revocation, on raw token text and on tokens whose
//! header and claims are arbitrary JSON but carry a valid signature of our own key (so the
//! claim checks after the signature are reached too). Nothing may panic, and a token is
//! accepted only with our issuer, one of our audiences, our kid and our `typ`.
#![no_main]

use std::sync::OnceLock;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine as _};
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use vouch::{
    config::{Algorithm, Settings, TokenSettings},
    crypto::MasterKey,
    tokens::{
        keyring::{KeyRing, Keys},
        keys::{self, Signer},
        verify::verify,
    },
};

struct Fixture {
    ring: std::sync::Arc<KeyRing>,
    signer: Signer,
    kid: String,
    settings: TokenSettings,
    now: DateTime<Utc>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let now = DateTime::from_timestamp(1_800_000_000, 0).expect("a valid time");
        let master = MasterKey::new([7; 32]);
        let generated = keys::generate(Algorithm::EdDSA).expect("a key");
        let (signer, jwk) = keys::parse(Algorithm::EdDSA, &generated.pkcs8).expect("parsed");
        let row = entities::signing_key::Model {
            kid: jwk.kid.clone(),
            alg: "EdDSA".into(),
            public_jwk: serde_json::to_string(&jwk).expect("a JWK"),
            private_key_sealed: master.seal(&jwk.kid, &generated.pkcs8),
            created_at: now - chrono::Duration::hours(1),
            activates_at: now - chrono::Duration::minutes(30),
            retires_at: None,
            removes_at: None,
        };
        let keys = Keys::default();
        keys.load(&[row], &master).expect("the ring loads");
        Fixture {
            ring: keys.current(),
            signer,
            kid: jwk.kid,
            settings: Settings::defaults().tokens,
            now,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let token = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        // header JSON 0xFF claims JSON, signed with our key; `KID` in the header stands for our
        // key's id, which is new on every run.
        let mut parts = rest.splitn(2, |&b| b == 0xFF);
        let header =
            String::from_utf8_lossy(parts.next().unwrap_or_default()).replace("KID", &f.kid);
        let claims = parts.next().unwrap_or_default();
        let signing_input = format!("{}.{}", B64.encode(header), B64.encode(claims));
        let signature = f.signer.sign(signing_input.as_bytes()).expect("signs");
        format!("{signing_input}.{}", B64.encode(signature))
    };
    if let Ok(claims) = verify(&f.ring, &token, &f.settings, f.now) {
        assert_eq!(claims.iss, f.settings.issuer);
        assert!(f.settings.audiences.contains(&claims.aud));
        let header = token.split('.').next().and_then(|h| B64.decode(h).ok());
        let header: serde_json::Value =
            serde_json::from_slice(&header.expect("a header")).expect("a JSON header");
        assert_eq!(header["kid"], f.kid.as_str());
        assert_eq!(header["typ"], "e2ee-ent+jwt");
    }
});
